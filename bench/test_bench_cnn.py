"""CNN epoch benchmarks (issue 11): the example CNN (also as Conv-BatchNorm-ReLU) and a LeNet-5-sized CNN,
batch 32 and 128, one epoch, fastnn vs PyTorch vs JAX vs the im2col-GEMM floor (peers skipped when not
installed).

Run:  FASTNN_DATA=/path/to/mnist pytest bench/test_bench_cnn.py --benchmark-only
Interleaved table with ratios:  python -m bench.cnn
"""
import importlib.util
import math

import pytest

from bench import cnn

BATCH_SIZES = (32, 128)
MODELS = tuple(cnn.MODELS)


@pytest.fixture
def bench_cnn_epoch(benchmark, train_data, bench_rounds, bench_record):
    def run_epoch(peer, model, batch_size, threads=2):
        X, y = train_data
        run = cnn.FACTORIES[peer](X, y, batch_size, threads, model=model)
        benchmark.group = f"cnn-epoch-{model}"
        result = benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=1)
        return bench_record(run, result=result, gemm_flops_per_sample=cnn.gemm_flops_per_sample(model))
    return run_epoch


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("peer", ["fastnn", "fastnn-im2col", "fastnn-numba", "torch", "jax", "gemm-floor"])
def test_cnn_epoch(bench_cnn_epoch, peer, model, batch_size):
    if peer == "fastnn-im2col" and importlib.util.find_spec("fastnn._ext._kernels") is None:
        pytest.skip("the Cython backend is not built")
    if peer == "jax" and model in cnn.BN_MODELS:
        pytest.skip("the JAX peer has no BatchNorm model")
    for module in {"torch": ("torch",), "jax": ("jax", "optax")}.get(peer, ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    info = bench_cnn_epoch(peer, model, batch_size)
    result = info["result"]
    assert result is None or math.isfinite(result)


@pytest.mark.parametrize("model", MODELS)
def test_the_floor_tiles_its_conv_gemms_as_the_cython_driver(model):
    """The floor's conv GEMMs run in the driver's tiles (so it still bounds the tiled algorithm)."""
    kernels = pytest.importorskip("fastnn._ext._kernels")
    import fastnn as fnn
    from fastnn import engine
    from fastnn.kernels import codes

    convs, hidden = cnn.MODELS[model]
    layers = []
    for F, k, padding in convs:
        layers += [fnn.Conv2D(F, k, padding=padding, activation="relu"), fnn.MaxPool2D(2)]
    layers += [fnn.Flatten(), *[fnn.Dense(u, "relu") for u in hidden], fnn.Dense(10)]
    net = fnn.Network(layers, input_shape=(28, 28, 1), seed=0, backend="cython")
    plan = engine.build_plan(net, fnn.losses.get("cross_entropy"), 128, 2, 1)
    rows = [r for r in plan.ops if r[codes.P_OP] == codes.OP_CONV2D]
    cap = int(plan.wofs[codes.W_ROWS])
    for r, (_, _, C, Ho, Wo, F, k, _) in zip(rows, cnn._geometry(model)[0]):
        driver = kernels.conv_tile_images(r, cap, 4)
        assert cnn._conv_tile(Ho, Wo, k, C, F, cap) == driver < cap


def test_the_im2col_peer_restores_the_direct_conv_setting():
    """fastnn-im2col switches the Cython conv rows to im2col for its epochs only."""
    kernels = pytest.importorskip("fastnn._ext._kernels")
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = rng.random((16, 784), dtype=np.float32), rng.integers(0, 10, 16)
    assert kernels.conv_direct() is True
    cnn.FACTORIES["fastnn-im2col"](X, y, 8, 1, model="lenet5").fn()
    assert kernels.conv_direct() is True
