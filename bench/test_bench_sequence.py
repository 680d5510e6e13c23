"""Sequence-model benchmarks (issue 12): one epoch of row-sequential MNIST at batch 64, fastnn vs peers.

Group ``sequence``; the models and contenders are :mod:`bench.sequence`'s (peers are skipped, not
failed, when missing). The goal of the issue is fastnn >= 1.5x PyTorch; this is measured, not asserted.

Run:    FASTNN_DATA=../shared/data/mnist pytest bench/test_bench_sequence.py --benchmark-only
Smoke:  pytest bench -q --benchmark-disable -k sequence
Interleaved table with ratios, at 1 and 2 threads:  python -m bench.sequence --threads 1 (and 2)
Kernel threads vs row shards:  python -m bench.sequence --threads 2 --splits kernels,shards --batches 32,64,128
"""
import math
import os

import pytest

from bench import sequence as seq


def _bench(benchmark, bench_rounds, run):
    benchmark.group = "sequence"
    return benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
@pytest.mark.parametrize("backend", ["cython", "numba", "reference"])
def test_sequence_fastnn(benchmark, train_data, bench_rounds, bench_record, model, backend):
    import fastnn as fnn

    if backend not in fnn.available_backends():
        pytest.skip(f"{backend} backend not available")
    run = seq.make_fastnn_sequence_epoch(*seq.sequences(*train_data), model, backend, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)


@pytest.mark.parametrize("model", ["lstm", "gru", "transformer"])
def test_sequence_torch(benchmark, train_data, bench_rounds, bench_record, model):
    pytest.importorskip("torch")
    run = seq.make_torch_sequence_epoch(*seq.sequences(*train_data), model, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_sequence_jax(benchmark, train_data, bench_rounds, bench_record, model):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    X, y = seq.sequences(*train_data)
    make = seq.make_jax_lstm_epoch if model == "lstm" else seq.make_jax_transformer_epoch
    run = make(X, y, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)


@pytest.mark.parametrize("model", ["lstm", "gru"])
@pytest.mark.parametrize("backend", ["cython", "cython-avx2", "cython-blas"])
def test_sequence_micro_kernel_isas(benchmark, train_data, bench_rounds, bench_record, backend, model):
    """LSTM(128) and GRU(128), the Cython backend's float32 recurrent micro-kernel in its default ISA, forced
    to AVX2, and off (then back to the default)."""
    import fastnn as fnn

    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    from fastnn._ext import _kernels

    was = _kernels.rnn_tiles_isa()
    if backend == "cython-avx2" and was not in ("avx2", "avx512"):
        pytest.skip("no AVX2+FMA on this CPU")
    run = seq.make_fastnn_sequence_epoch(*seq.sequences(*train_data), model, backend, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss) and _kernels.rnn_tiles_isa() == was
    bench_record(run, result=loss)


def test_sequence_cli_compares_kernel_threads_with_row_shards(capsys):
    import fastnn as fnn

    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    cpu = ["--cpu"] if os.path.isdir("/proc/self/task") else []  # the free-core estimate reads Linux's /proc
    seq.main(["--models", "transformer", "--threads", "2", "--splits", "kernels,shards", "--peers", "none",
              "--backends", "cython", "--batches", "32", "--n", "128", "--rounds", "1"] + cpu)
    out = capsys.readouterr().out
    assert "transformer, batch 32, 2 thread(s)" in out
    assert "fastnn-cython-transformer-kernels" in out and "fastnn-cython-transformer-shards" in out
    assert out.count("free-core estimate") == (2 if cpu else 0)


def test_rnn_kernels_cli_times_every_micro_kernel_isa(capsys):
    import fastnn as fnn

    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    from bench import rnn_kernels
    from fastnn._ext import _kernels

    was = _kernels.rnn_tiles_isa()
    rnn_kernels.main(["--cells", "lstm,gru", "--rounds", "1"])
    out = capsys.readouterr().out
    for isa in rnn_kernels.isas():
        assert f"lstm {isa}" in out and f"gru {isa}" in out
    assert "blas" in rnn_kernels.isas() and _kernels.rnn_tiles_isa() == was


def test_shard_phases_cli_times_every_phase(capsys):
    import fastnn as fnn

    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    from bench import shard_phases

    shard_phases.main(["--models", "lstm", "--rounds", "1", "--n", "128", "--repeats", "1"])
    out = capsys.readouterr().out
    for phase in ("gather (shard)", "shard", "numpy sum", "reduce+update (half)", "serial tail", "per-thread tail",
                  "step"):
        assert f"  {phase} " in out
