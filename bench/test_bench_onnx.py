"""ONNX export benchmarks (issue 13): inference of exported sequence models in onnxruntime vs fastnn's predict.

Group ``onnx``: row-sequential MNIST (28 steps x 28 pixels, float32) through
LSTM(128) -> Dense(10) and the transformer of the ``sequence`` group, as
``predict_proba`` in fastnn (numba kernels) and in onnxruntime (CPU provider,
``intra_op_num_threads`` = the thread count) for both forms the exporter writes
for a recurrent layer: ONNX's own LSTM op, and the ``Scan`` of fastnn's cell
(what a padding mask or float64 gets; here forced by a ``Masking`` layer whose
value never occurs, so both graphs compute the same numbers).

Run:    FASTNN_DATA=../shared/data/mnist pytest bench/test_bench_onnx.py --benchmark-only
Smoke:  pytest bench -q --benchmark-disable -k onnx
Interleaved ratios (one process, the variants alternate round by round):
        FASTNN_DATA=../shared/data/mnist python -m bench.test_bench_onnx [--n 10000] [--rounds 5] [--threads 2]
"""
import argparse
import os

import numpy as np
import pytest

from bench.peers import PeerRun
from bench.timing import interleaved_times

STEPS = FEATURES = 28
THREADS = 2
VARIANTS = ("fastnn", "onnx-op", "onnx-scan")


def _sequences(X):
    return np.ascontiguousarray(np.asarray(X).reshape(len(X), STEPS, FEATURES), dtype=np.float32)


def make_network(model, scan_form=False, seed=0):
    """The benchmarked network; ``scan_form`` puts a never-matching Masking in front (the Scan export)."""
    import fastnn as fnn

    head = [fnn.Masking(mask_value=-12345.0)] if scan_form else []
    if model == "lstm":
        layers = [fnn.LSTM(128), fnn.Dense(10)]
    else:
        layers = [fnn.TimeDistributed(fnn.Dense(64)), fnn.PositionalEncoding(), fnn.TransformerBlock(4, 128),
                  fnn.GlobalAveragePooling1D(), fnn.Dense(10)]
    return fnn.Network(head + layers, input_shape=(STEPS, FEATURES), seed=seed)


def make_inference(X, model, variant, threads=THREADS):
    """A :class:`PeerRun` of one ``predict_proba`` pass over ``X`` (n, 28, 28) for ``variant`` in VARIANTS."""
    import fastnn as fnn

    net = make_network(model, scan_form=variant == "onnx-scan")
    if variant == "fastnn":
        fnn.set_num_threads(threads)
        net.predict_proba(X[:64])  # compile outside the timing
        return PeerRun(lambda: net.predict_proba(X), f"fastnn-{model}", len(X), len(X), threads)
    import onnxruntime as ort

    from fastnn.integrations.onnx import export_onnx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    session = ort.InferenceSession(export_onnx(net).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: X[:64]})
    return PeerRun(lambda: session.run(None, {name: X})[0], f"{variant}-{model}", len(X), len(X), threads)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_onnx_inference(benchmark, train_data, bench_rounds, bench_record, model, variant):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    X = _sequences(train_data[0][:10000])
    run = make_inference(X, model, variant)
    benchmark.group = "onnx"
    proba = benchmark.pedantic(run.fn, rounds=bench_rounds, iterations=1, warmup_rounds=0)
    assert proba.shape == (len(X), 10) and np.isfinite(proba).all()
    bench_record(run)


def main(argv=None):
    """Interleaved rounds of every variant; prints samples/s (median) and the ratios to fastnn."""
    from bench import data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    X = _sequences(data.mnist_like(args.n)[0])
    print(f"data: {data.data_source()}, n={len(X)}, threads={args.threads}, load average {os.getloadavg()}")
    for model in ("lstm", "transformer"):
        runs = {v: make_inference(X, model, v, args.threads) for v in VARIANTS}
        times = interleaved_times({v: run.fn for v, run in runs.items()}, args.rounds, warmup=False)
        base = np.median(times["fastnn"])
        for v in VARIANTS:
            med = np.median(times[v])
            print(f"{model:12s} {v:10s} {len(X) / med:10.0f} samples/s  x{base / med:.2f} vs fastnn")


if __name__ == "__main__":
    main()
