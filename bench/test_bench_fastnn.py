"""fastnn benchmarks: kernels, whole epochs, inference, start-up and memory.

Run:  FASTNN_DATA=/path/to/mnist pytest bench --benchmark-only
Smoke (every benchmark once, small data):  pytest bench --benchmark-disable
"""
import json
import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastnn as fnn
from bench import data
from bench.fastnn_runs import make_fastnn_epoch, make_fastnn_latency, make_fastnn_predict
from fastnn.kernels import available_backends, get_backend
from fastnn.kernels.codes import H_BETA1, H_BETA2, H_EPS, H_LR, H_MOMENTUM, N_HYPER, OPT_ADAM, OPT_SGD

BATCH_SIZES = (32, 64, 128, 256)
BACKENDS = available_backends()
COMPILED = [b for b in BACKENDS if b != "reference"]
N_PARAMS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # 235,146


# --------------------------------------------------------------------------- whole epoch
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("threads,parallel", [(1, "auto"), (2, "auto"), (2, "shards"), (2, "columns"), (2, "blas")])
def test_epoch_fastnn(bench_epoch, batch_size, backend, threads, parallel):
    if parallel == "columns" and backend != "cython":
        pytest.skip("the column split is a Cython driver")
    info = bench_epoch(make_fastnn_epoch, batch_size, threads, backend=backend, parallel=parallel)
    assert math.isfinite(info["result"])


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("variant", ["dropout", "batchnorm", "layernorm"])
def test_epoch_fastnn_layers(bench_epoch, batch_size, backend, variant):
    """The same MLP with Dropout(0.2), BatchNorm or LayerNorm after each hidden layer: still the fused plan."""
    info = bench_epoch(make_fastnn_epoch, batch_size, 2, backend=backend, parallel="auto", variant=variant)
    assert math.isfinite(info["result"])


@pytest.mark.parametrize("batch_size", [64])
def test_epoch_fastnn_reference(bench_epoch, bench_n, batch_size):
    """The numpy reference path, for scale (it is the oracle, not a contender)."""
    info = bench_epoch(make_fastnn_epoch, batch_size, 2, backend="reference")
    assert math.isfinite(info["result"])


# --------------------------------------------------------------------------- kernels
def _mlp_table():
    sizes, meta, off = (784, 256, 128, 10), [], 0
    for (a, b), act in zip(zip(sizes[:-1], sizes[1:]), (1, 1, 0)):
        meta.append([a, b, act, off, off + a * b])
        off += a * b + b
    return np.array(meta, np.int64), off


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_kernel_dense_forward(benchmark, backend, batch_size):
    k = get_backend(backend)
    rng = np.random.default_rng(0)
    X = rng.random((batch_size, 784), np.float32)
    W = rng.standard_normal((784, 256)).astype(np.float32)
    b = np.zeros(256, np.float32)
    Z, A = np.empty((batch_size, 256), np.float32), np.empty((batch_size, 256), np.float32)
    benchmark.group = "kernel-dense-forward"
    with fnn._config.thread_limits(1):
        benchmark(k.dense_forward, X, W, b, 1, 0.0, Z, A)
    benchmark.extra_info.update(impl=backend, batch_size=batch_size, samples_per_s=None)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_kernel_dense_backward(benchmark, backend, batch_size):
    k = get_backend(backend)
    rng = np.random.default_rng(0)
    X = rng.random((batch_size, 256), np.float32)
    W = rng.standard_normal((256, 128)).astype(np.float32)
    Z = rng.standard_normal((batch_size, 128)).astype(np.float32)
    A = np.maximum(Z, 0)
    dA = rng.standard_normal((batch_size, 128)).astype(np.float32)
    dZ, dW, db, dX = np.empty_like(Z), np.empty_like(W), np.empty(128, np.float32), np.empty_like(X)
    benchmark.group = "kernel-dense-backward"
    with fnn._config.thread_limits(1):
        benchmark(k.dense_backward, X, W, Z, A, dA, 1, 0.0, dZ, dW, db, dX)
    benchmark.extra_info.update(impl=backend, batch_size=batch_size)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_kernel_softmax_cross_entropy(benchmark, backend, batch_size):
    k = get_backend(backend)
    rng = np.random.default_rng(0)
    out = rng.standard_normal((batch_size, 10)).astype(np.float32)
    target = rng.integers(0, 10, (batch_size, 1)).astype(np.float32)
    dout = np.empty_like(out)
    benchmark.group = "kernel-softmax-ce"
    benchmark(k.loss_forward_backward, 0, out, target, 1.0 / batch_size, dout)
    benchmark.extra_info.update(impl=backend, batch_size=batch_size)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", ["adam", "sgd_momentum"])
def test_kernel_optimizer_update(benchmark, backend, opt):
    """One fused update over the 235k-parameter flat buffer (goal for Adam: <= 100 us)."""
    k = get_backend(backend)
    rng = np.random.default_rng(0)
    p = rng.standard_normal(N_PARAMS).astype(np.float32)
    g = rng.standard_normal(N_PARAMS).astype(np.float32) * 1e-3
    state = np.zeros((2, N_PARAMS), np.float32)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS, H_MOMENTUM]] = [1e-3, 0.9, 0.999, 1e-8, 0.9]
    code = OPT_ADAM if opt == "adam" else OPT_SGD
    benchmark.group = "kernel-optimizer"
    benchmark(k.optimizer_update, code, p, g, state, hyper, 1)
    benchmark.extra_info.update(impl=f"{backend}-{opt}", n_params=N_PARAMS)
    assert np.isfinite(p).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_kernel_gather(benchmark, backend, batch_size):
    k = get_backend(backend)
    X, _ = data.mnist_like(4096)
    idx = np.random.default_rng(0).integers(0, len(X), batch_size).astype(np.int64)
    out = np.empty((batch_size, X.shape[1]), np.float32)
    benchmark.group = "kernel-gather"
    benchmark(k.gather_rows, X, idx, out)
    benchmark.extra_info.update(impl=backend, batch_size=batch_size)
    np.testing.assert_array_equal(out, X[idx])


# --------------------------------------------------------------------------- inference
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("threads", [1, 2])
def test_inference_fastnn_predict(benchmark, bench_n, bench_record, backend, threads):
    X, _ = data.mnist_like(bench_n(10000))
    run = make_fastnn_predict(X, batch=1000, threads=threads, backend=backend)
    benchmark.group = "inference"
    pred = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert pred.shape == (X.shape[0],)
    bench_record(run)


@pytest.mark.parametrize("backend", COMPILED)
def test_inference_fastnn_latency(benchmark, bench_record, backend):
    """Single-sample predict (goal: <= 25 us)."""
    X, _ = data.mnist_like(64)
    run = make_fastnn_latency(X, backend=backend)
    benchmark.group = "inference"
    label = benchmark.pedantic(run, rounds=200, iterations=20, warmup_rounds=10)
    assert 0 <= label < 10
    info = bench_record(run)
    if not benchmark.disabled:
        benchmark.extra_info["latency_us"] = 1e6 / info["samples_per_s"]


# --------------------------------------------------------------------------- start-up
_STARTUP = """
import time, json, numpy as np
t0 = time.perf_counter()
import fastnn as fnn
t1 = time.perf_counter()
net = fnn.Network([fnn.Dense(784, 256, "relu"), fnn.Dense(256, 128, "relu"), fnn.Dense(128, 10)], seed=0,
                  backend={backend!r})
X = np.random.default_rng(0).random((64, 784), np.float32)
fnn.Trainer(net, batch_size=64, verbose=0).fit(X, np.arange(64) % 10, epochs=1)
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_step_s": t2 - t1}}))
"""


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_startup(benchmark, backend, cache, tmp_path):
    """``import fastnn`` + the first compiled training step, in a fresh process."""
    if cache == "cold" and backend != "numba":
        pytest.skip("only numba compiles at run time")
    env = dict(os.environ)
    if cache == "cold":
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    code = _STARTUP.format(backend=backend)

    def run():
        if cache == "cold":
            subprocess.run(["rm", "-rf", env["NUMBA_CACHE_DIR"]], check=True)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    if cache == "warm":
        run()  # fill the cache
    benchmark.group = "startup"
    result = benchmark.pedantic(run, rounds=1 if cache == "cold" else 3, iterations=1)
    benchmark.extra_info.update(impl=f"{backend}-{cache}", **result)
    assert result["import_s"] > 0


# --------------------------------------------------------------------------- memory
@pytest.mark.parametrize("backend", COMPILED)
def test_epoch_does_not_allocate_per_batch(benchmark, backend):
    """tracemalloc peak during an epoch does not grow with the number of batches."""
    X, y = data.mnist_like(4096)
    net = fnn.Network([fnn.Dense(784, 256, "relu"), fnn.Dense(256, 128, "relu"), fnn.Dense(128, 10)], seed=0,
                      backend=backend)
    trainer = fnn.Trainer(net, batch_size=32, verbose=0)
    trainer.fit(X[:256], y[:256])  # warm-up: compile, allocate optimizer state

    def peak(n):
        tracemalloc.start()
        trainer.fit(X[:n], y[:n], epochs=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1024), peak(4096)
    benchmark.group = "memory"
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    # 4x the batches: the peak may only grow by the per-sample bookkeeping (permutation, batch losses),
    # ~40 bytes/sample, never by a per-batch buffer (a 32x784 float32 batch alone is 100 KB).
    growth = large - small
    benchmark.extra_info.update(impl=backend, peak_small=small, peak_large=large, growth=growth)
    assert growth < 40 * (4096 - 1024) + 64 * 1024, f"peak grew by {growth} bytes for 3x more batches"
