"""Conv + bias + ReLU -> MaxPool2D fused in the Cython driver's conv tiles (csrc/plan_conv.pxi):
the pooling runs on each tile's Z in cache, its backward builds the tile's dZ from the pooled
gradient, and the conv row's whole-shard A block is never written. The result equals the
per-layer oracle in several tiles, in both tile orders of the backward pass, and its gradient
passes the central-difference check."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.kernels import available_backends, codes
from fused_check import check_fused_grad_steps, fit_sgd  # tests/fused_check.py (tests/ is on sys.path: its conftest.py)

BACKENDS = available_backends()
RNG = np.random.default_rng(7)
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}


def _layers():
    """Three fused conv -> max-pool pairs whose conv rows run in several tiles: the first conv (no
    input gradient; 2x2 windows of stride 2 on an odd 15x15 map, a row and column in no window); a conv whose pooled output image (6*6*24) is larger than its input image
    (7*7*16), so its backward tiles run first to last, with overlapping pooling windows; and one
    whose pooled image (3*3*8) is smaller, so its tiles run last to first, with a padded window."""
    return [fnn.Conv2D(16, 3, activation="relu"), fnn.MaxPool2D(2),
            fnn.Conv2D(24, 3, padding="same", activation="relu"), fnn.MaxPool2D(2, strides=1),
            fnn.Conv2D(8, 3, padding="same", activation="relu"), fnn.MaxPool2D(2, padding="same"),
            fnn.Flatten(), fnn.Dense(3)]


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shards", [1, 2])
def test_fused_conv_pool_rows_in_several_tiles_equal_the_per_layer_oracle(dtype, shards):
    from fastnn._ext import _kernels

    X = RNG.standard_normal((40, 17, 17, 16)).astype(dtype)
    y = RNG.integers(0, 3, 40)

    net, tr, hist = fit_sgd(_layers, X, y, backend="cython", path="fused", n_threads=shards, batch_size=18)
    plan = tr.plan
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == shards, tr.last_plan
    m = plan.wofs[codes.W_ROWS]
    convs = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_CONV2D]
    assert all(plan.ops[q + 1, codes.P_OP] == codes.OP_MAXPOOL2D for q in convs)
    tiles = [_kernels.conv_tile_images(plan.ops[q], m, np.dtype(dtype).itemsize) for q in convs]
    assert all(t < m for t in tiles), (tiles, m)
    in_img, pooled = plan.ops[convs, codes.P_N_IN], plan.ops[[q + 1 for q in convs], codes.P_N_OUT]
    assert in_img[1] < pooled[1] and in_img[2] > pooled[2]  # both backward tile orders
    for q in convs:  # the fused path was taken: the conv rows' A blocks stay as allocated (zeros)
        a = plan.ops[q, codes.P_OUT]
        assert not plan.work[:, a:a + m * plan.ops[q, codes.P_N_OUT]].any()
        p = plan.ops[q + 1, codes.P_OUT]
        assert plan.work[0, p:p + plan.ops[q + 1, codes.P_N_OUT]].any()

    ref, _, ref_hist = fit_sgd(_layers, X, y, backend="reference", path="per-layer", batch_size=18)
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_fused_conv_pool_steps_are_deterministic_for_a_thread_count():
    X = RNG.standard_normal((40, 17, 17, 16)).astype("float32")
    y = RNG.integers(0, 3, 40)
    params = []
    for _ in range(2):
        net, _, _ = fit_sgd(_layers, X, y, backend="cython", path="auto", n_threads=2, batch_size=18)
        params.append(net.params.copy())
    np.testing.assert_array_equal(params[0], params[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_conv_relu_maxpool_gradients_pass_a_central_difference_check(backend):
    """float64 grad_steps of conv + ReLU -> max pooling pairs (overlapping windows; then 2x2 windows of
    stride 2 on an odd 5x5 map, with an input gradient), 1 and 2 shards."""
    layers = [fnn.Conv2D(2, 2, activation="relu"), fnn.MaxPool2D(2, strides=1),
              fnn.Conv2D(3, 2, padding="same", activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(7, 7, 1), seed=2, dtype="float64", backend=backend)  # 5x5 -> 2x2 pooled
    labels = RNG.integers(0, 3, 6)
    plans = check_fused_grad_steps(net, RNG.standard_normal((6, 49)), labels, 3)
    assert all(plan.path == "fused" for plan in plans)
