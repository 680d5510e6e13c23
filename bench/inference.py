"""Inference of the benchmark MLP (784-256-128-10 ReLU): fastnn next to PyTorch, one interleaved run.

    python -m bench.inference                  # batch predict of 10,000 rows in batches of 1000, and latency
    python -m bench.inference --rounds 9 --threads 1 2

Batch predict: samples/s over all rows, batches of ``--batch`` (fastnn ``Network.predict`` under
``fastnn.set_num_threads``; PyTorch eager ``inference_mode`` under ``torch.set_num_threads``). On the
Cython backend fastnn runs twice: with its float32 GEMM micro-kernels (csrc/gemm_tiles.pxi, the default)
and with them switched off (``gemm_tiles("off")``: OpenBLAS + the bias/activation pass), the "blas" column.
Latency: one ``(1, 784)`` row per call, microseconds per call (fastnn ``predict``; PyTorch eager
and TorchScript-frozen, one thread). Every configuration is built and warmed up first, then each
round times every configuration in turn (interleaved, so load changes hit all alike); the table
shows the median round.

Sequence models (row-sequential MNIST, 28 steps x 28 features, float32): LSTM(128) -> Dense(10), GRU(128)
(``gru``: reset_after, ``gru-v1``: the original form) and SimpleRNN(128) (``rnn``) -> Dense(10), and the
transformer of ``bench.sequence``, ``Network.predict`` next to PyTorch eager ``inference_mode`` (the
same architecture, its own random weights; ``gru-v1`` against ``nn.GRU``, which has only the reset_after
form) and, for the LSTM and the transformer, onnxruntime running fastnn's ONNX export (CPU provider,
``intra_op_num_threads`` = the thread count): samples/s over ``--seq-n`` rows in batches of ``--batch``
at each thread count, and microseconds per single-sample call (one thread). The GRU and SimpleRNN rows
also time ``fastnn-train``: predict through the training forward (every step's gates and states kept,
what predict ran before ``gru_infer`` / ``simple_rnn_infer``). ``--seq-n 0`` skips them.
"""
import argparse
import os
import time

import numpy as np

from bench import data, peers
from bench.fastnn_runs import make_fastnn_latency, make_fastnn_predict, without_gemm_tiles
from bench.peers import PeerRun
from bench.timing import interleaved_times

SEQ_MODELS = ("lstm", "gru", "gru-v1", "rnn", "transformer")
SEQ_IMPLS = ("fastnn", "fastnn-train", "torch", "onnxruntime")
#: the recurrent models beside the LSTM: (fastnn layer, its arguments); their impls
RNN_MODELS = {"gru": ("GRU", {}), "gru-v1": ("GRU", {"reset_after": False}), "rnn": ("SimpleRNN", {})}
RNN_IMPLS = ("fastnn", "fastnn-train", "torch")


def _time(run, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - t0) / calls


def measure(n=10000, batch=1000, threads=(1, 2), rounds=5, latency_calls=2000, backend="cython"):
    """``{name: median seconds per call}`` and ``{name: samples per call}`` of every configuration."""
    X, _ = data.mnist_like(n)
    runs = {}
    for t in threads:
        runs[f"fastnn-predict-{t}t"] = make_fastnn_predict(X, batch=batch, threads=t, backend=backend)
        if backend == "cython":
            runs[f"fastnn-blas-predict-{t}t"] = without_gemm_tiles(make_fastnn_predict(X, batch=batch, threads=t,
                                                                               backend=backend))
        try:
            runs[f"torch-predict-{t}t"] = peers.make_torch_predict(X, batch=batch, threads=t)
        except ImportError:
            pass
    lat = {"fastnn-latency": make_fastnn_latency(X[:64], backend=backend)}
    try:
        for mode in ("eager", "jit"):
            lat[f"torch-latency-{mode}"] = peers.make_torch_latency(X[:64], threads=1, mode=mode)
    except ImportError:
        pass
    for run in [*runs.values(), *lat.values()]:
        for _ in range(3):
            run()
    times = {k: [] for k in [*runs, *lat]}
    for _ in range(rounds):
        for k, run in runs.items():
            times[k].append(_time(run, 1))
        for k, run in lat.items():
            times[k].append(_time(run, latency_calls))
    return {k: float(np.median(v)) for k, v in times.items()}, {k: r.n_samples for k, r in {**runs, **lat}.items()}


def _rnn_network(model):
    """``model`` of RNN_MODELS as a fastnn Network: the recurrent layer of 128 units, then Dense(10)."""
    import fastnn as fnn
    from bench.test_bench_onnx import FEATURES, STEPS

    name, kwargs = RNN_MODELS[model]
    return fnn.Network([getattr(fnn, name)(128, **kwargs), fnn.Dense(10)], input_shape=(STEPS, FEATURES), seed=0)


def _through_training_forward(net):
    """``net`` predicting as before the inference kernels: its recurrent layers run their training forward
    on fresh arrays (as predict did; cached buffers would be shared by predict's row-block threads)."""
    from fastnn.layers.recurrent import _Recurrent

    for layer in net.layers:
        if isinstance(layer, _Recurrent):
            layer._work = lambda key, shape, dtype, training: np.empty(shape, dtype)
            layer.forward = lambda X, training=False, _forward=layer.forward, **kw: _forward(X, training=True, **kw)
    return net


def _torch_rnn_net(model):
    """The PyTorch twin of a model of RNN_MODELS (nn.GRU for both GRU forms, nn.RNN with tanh)."""
    import torch

    from bench.test_bench_onnx import FEATURES

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = (torch.nn.RNN if model == "rnn" else torch.nn.GRU)(FEATURES, 128, batch_first=True)
            self.head = torch.nn.Linear(128, 10)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])
    return Net()


def _sequence_predictor(model, impl, threads):
    """``predict(Xb) -> labels`` of ``model`` for a batch ``Xb`` (n, 28, 28) float32, by ``impl``."""
    if model in RNN_MODELS and impl not in RNN_IMPLS or model not in RNN_MODELS and impl == "fastnn-train":
        raise ImportError(f"{impl} is not benchmarked for {model}")  # left out like a missing package
    if impl in ("fastnn", "fastnn-train"):
        import fastnn as fnn
        from bench.test_bench_onnx import make_network

        net = _rnn_network(model) if model in RNN_MODELS else make_network(model)
        if impl == "fastnn-train":
            _through_training_forward(net)

        def predict(Xb):
            old = fnn.get_num_threads()
            fnn.set_num_threads(threads)
            try:
                return net.predict(Xb)
            finally:
                fnn.set_num_threads(old)
        return predict
    if impl == "torch":
        import torch

        from bench.sequence import torch_sequence_net

        tnet = (_torch_rnn_net(model) if model in RNN_MODELS else torch_sequence_net(model)).eval()

        def predict(Xb):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return tnet(torch.from_numpy(Xb)).argmax(1).numpy()
        return predict
    import onnxruntime as ort

    from bench.test_bench_onnx import make_network
    from fastnn.integrations.onnx import export_onnx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(export_onnx(make_network(model)).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda Xb: session.run(None, {name: Xb})[0].argmax(1)


def make_sequence_run(X, model, impl, batch, threads):
    """A :class:`PeerRun` predicting ``X`` (n, 28, 28) in batches of ``batch``; at batch 1, one row a call
    (cycling through the rows). Raises ImportError when ``impl`` is not installed."""
    predict = _sequence_predictor(model, impl, threads)
    if batch == 1:
        rows = [np.ascontiguousarray(X[i:i + 1]) for i in range(min(64, len(X)))]
        state = {"i": 0}

        def one():
            state["i"] = (state["i"] + 1) % len(rows)
            return predict(rows[state["i"]])
        return PeerRun(one, f"{impl}-{model}-latency", 1, 1, threads)

    def run():
        return np.concatenate([predict(X[i:i + batch]) for i in range(0, len(X), batch)])
    return PeerRun(run, f"{impl}-{model}-predict", len(X), batch, threads)


def measure_sequences(n=2000, batch=1000, threads=(1, 2), rounds=5, latency_calls=100, models=SEQ_MODELS):
    """``{(model, impl, batch, threads): median seconds per sample}`` for the sequence models (median of
    ``rounds`` interleaved rounds; a batch-1 round is ``latency_calls`` single-sample calls). An impl that
    is not installed is left out."""
    from bench.test_bench_onnx import _sequences

    X = np.array(_sequences(data.mnist_like(n)[0]))  # writable (torch.from_numpy warns on read-only data)
    runs = {}
    for model in models:
        for impl in SEQ_IMPLS:
            try:
                for t in threads:
                    runs[(model, impl, batch, t)] = make_sequence_run(X, model, impl, batch, t)
                runs[(model, impl, 1, 1)] = make_sequence_run(X, model, impl, 1, 1)
            except ImportError:
                continue

    def timed(run, calls):
        return lambda: [run() for _ in range(calls)]
    times = interleaved_times({k: timed(r, latency_calls if k[2] == 1 else 1) for k, r in runs.items()}, rounds)
    per = {k: (latency_calls if k[2] == 1 else 1) * r.n_samples for k, r in runs.items()}
    return {k: float(np.median(v)) / per[k] for k, v in times.items()}


def print_sequences(med, batch, threads):
    """The sequence rows of the table: samples/s per thread count, single-sample microseconds."""
    print(f"sequence models (28 steps x 28 features): samples/s at batch {batch}; us per single-sample call")
    head = "".join(f"{f'{t}t b{batch}':>12s}" for t in threads)
    print(f"  {'model':12s}{'impl':13s}{head}{'b1 us':>10s}{'fastnn/impl b' + str(batch):>18s}")
    for model in SEQ_MODELS:
        for impl in SEQ_IMPLS:
            if (model, impl, 1, 1) not in med:
                continue
            cells = "".join(f"{1 / med[(model, impl, batch, t)]:12,.0f}" for t in threads)
            ratios = " ".join(f"{med[(model, impl, batch, t)] / med[(model, 'fastnn', batch, t)]:5.2f}"
                              for t in threads)
            print(f"  {model:12s}{impl:13s}{cells}{med[(model, impl, 1, 1)] * 1e6:10.1f}    {ratios}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--seq-n", type=int, default=2000, help="rows for the sequence models (0: skip them)")
    parser.add_argument("--seq-models", default=",".join(SEQ_MODELS), help="sequence models, of " + ",".join(SEQ_MODELS))
    parser.add_argument("--no-mlp", action="store_true", help="only the sequence models")
    args = parser.parse_args(argv)
    seq_models = tuple(args.seq_models.split(","))
    if any(m not in SEQ_MODELS for m in seq_models):
        parser.error(f"--seq-models takes {', '.join(SEQ_MODELS)}")
    if args.no_mlp:
        batch = min(args.batch, args.seq_n)
        print(f"load average {os.getloadavg()[0]:.2f}")
        print_sequences(measure_sequences(args.seq_n, batch, tuple(args.threads), args.rounds, models=seq_models),
                        batch, tuple(args.threads))
        return
    med, n = measure(args.n, args.batch, tuple(args.threads), args.rounds, backend=args.backend)
    print(f"load average {os.getloadavg()[0]:.2f}; batch predict of {args.n} rows in batches of {args.batch}")
    for t in args.threads:
        f, p = med.get(f"fastnn-predict-{t}t"), med.get(f"torch-predict-{t}t")
        line = f"  {t} thread(s): fastnn {args.n / f:12,.0f} samples/s"
        blas = med.get(f"fastnn-blas-predict-{t}t")
        if blas:
            line += f"   blas {args.n / blas:12,.0f} samples/s   fastnn/blas {blas / f:5.2f}"
        if p:
            line += f"   torch {args.n / p:12,.0f} samples/s   fastnn/torch {p / f:5.2f}"
        print(line)
    print("single-sample latency (one thread)")
    for k in med:
        if "latency" in k:
            print(f"  {k:24s}{med[k] * 1e6:8.1f} us")
    if args.seq_n > 0:
        batch = min(args.batch, args.seq_n)
        print_sequences(measure_sequences(args.seq_n, batch, tuple(args.threads), args.rounds, models=seq_models),
                        batch, tuple(args.threads))


if __name__ == "__main__":
    main()
