"""Peer benchmarks: one training epoch per round, samples/s in ``extra_info``.

Run:  FASTNN_DATA=/path/to/mnist python -m pytest bench --benchmark-only
Smoke (fast, 1000 samples, one call each):  pytest bench --benchmark-disable

Groups: ``epoch`` (one full shuffled epoch: forward, softmax-CE, backward,
Adam) and ``inference`` (batched predict, single-sample latency).
fastnn's own epoch benchmark plugs into the same ``bench_epoch`` fixture.
"""

import math

import pytest

from bench import data, peers

BATCH_SIZES = (32, 64, 128, 256)
THREADS = (1, 2)
PREDICT_N = 10000  # MNIST test-set size


def _check_loss(info):
    # A benchmark of a diverging loop is worthless: the loss must stay finite.
    loss = info.get("result")
    assert loss is None or math.isfinite(loss), f"{info['impl']}: non-finite loss {loss}"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_epoch_gemm_floor(bench_epoch, batch_size, threads):
    bench_epoch(peers.make_gemm_floor_epoch, batch_size, threads)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_epoch_numpy(bench_epoch, batch_size):
    _check_loss(bench_epoch(peers.make_numpy_epoch, batch_size, 2))


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_epoch_sklearn(bench_epoch, batch_size):
    pytest.importorskip("sklearn")
    info = bench_epoch(peers.make_sklearn_epoch, batch_size, 2)
    _check_loss(info)
    assert info["dtype"] == "float32", "sklearn silently promoted to float64"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("adam", ["fused", "default"])
def test_epoch_torch(bench_epoch, batch_size, threads, adam):
    pytest.importorskip("torch")
    _check_loss(bench_epoch(peers.make_torch_epoch, batch_size, threads, adam=adam))


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("mode", ["jit", "scan"])
def test_epoch_jax(bench_epoch, batch_size, mode):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    import os

    _check_loss(bench_epoch(peers.make_jax_epoch, batch_size, os.cpu_count() or 1, mode=mode))


@pytest.mark.parametrize("threads", THREADS)
def test_inference_torch_predict(benchmark, bench_n, bench_record, threads):
    pytest.importorskip("torch")
    X, _ = data.mnist_like(bench_n(PREDICT_N))
    run = peers.make_torch_predict(X, batch=1000, threads=threads)
    benchmark.group = "inference"
    pred = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert pred.shape == (X.shape[0],)
    bench_record(run)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_inference_torch_latency(benchmark, bench_record, mode):
    pytest.importorskip("torch")
    X, _ = data.mnist_like(64)
    run = peers.make_torch_latency(X, threads=1, mode=mode)
    benchmark.group = "inference"
    label = benchmark.pedantic(run, rounds=200, iterations=20, warmup_rounds=10)
    assert 0 <= label < 10
    info = bench_record(run)
    if not benchmark.disabled:
        benchmark.extra_info["latency_us"] = 1e6 / info["samples_per_s"]

