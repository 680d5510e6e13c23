"""One-channel conv rows run as direct convolutions in the Cython driver (csrc/conv_direct.pxi, chosen by
``_conv_direct`` in csrc/plan_conv.pxi): no im2col columns, the weight gradient from the input itself.
The path is taken where the rule says, and a training run on it equals the per-layer oracle and the
im2col path (``conv_direct(False)``) for odd filter counts, strides, paddings, fused pooling or not,
one and two shards, both dtypes; steps are deterministic."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.kernels import available_backends, codes

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
RNG = np.random.default_rng(11)
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}

# (filters, kernel, strides, padding, activation, pooled): F = 1, 5, 6, 7, 8 (partial vectors of a row)
CASES = [
    (6, 5, 1, "same", "relu", True),      # LeNet-5's first layer (fused with its max pooling)
    (5, 3, 1, "valid", "relu", False),    # ReLU without pooling: Z and A both written
    (1, 3, (2, 1), "same", "linear", True),
    (7, 3, 1, "same", "relu", True),      # an odd pooled map (15x15)
    (8, (2, 3), 1, "valid", None, False),
]


def _layers(F, k, s, padding, act, pooled):
    layers = [fnn.Conv2D(F, k, strides=s, padding=padding, activation=act)]
    if pooled:
        layers.append(fnn.MaxPool2D(2))
    return layers + [fnn.Conv2D(4, 3, activation="relu"), fnn.Flatten(), fnn.Dense(3)]


def _fit(case, dtype, backend, path, n_threads, X, y):
    net = fnn.Network(_layers(*case), input_shape=X.shape[1:], seed=3, dtype=dtype, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=10, seed=5, verbose=0,
                     n_threads=n_threads, parallel="shards" if n_threads > 1 else "auto", path=path)
    return net, tr, tr.fit(X, y, epochs=1)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shards", [1, 2])
def test_direct_conv_rows_equal_the_oracle_and_the_im2col_path(case, dtype, shards):
    from fastnn._ext import _kernels

    X = RNG.standard_normal((24, 15, 15, 1)).astype(dtype)
    y = RNG.integers(0, 3, 24)
    net, tr, hist = _fit(case, dtype, "cython", "fused", shards, X, y)
    plan = tr.plan
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == shards, tr.last_plan
    row = plan.ops[0]
    assert row[codes.P_OP] == codes.OP_CONV2D
    assert _kernels.conv_runs_direct(row, plan.wofs[codes.W_ROWS], np.dtype(dtype).itemsize)

    ref = fnn.Network(_layers(*case), input_shape=X.shape[1:], seed=3, dtype=dtype, backend="reference")
    ref_hist = fnn.Trainer(ref, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=10, seed=5, verbose=0,
                           path="per-layer").fit(X, y, epochs=1)
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])

    before = _kernels.conv_direct()
    try:
        assert _kernels.conv_direct(False) is False
        net2, _, hist2 = _fit(case, dtype, "cython", "fused", shards, X, y)
    finally:
        _kernels.conv_direct(before)
    np.testing.assert_allclose(net.params, net2.params, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], hist2["loss"], **TOL[dtype])


def test_direct_conv_steps_are_deterministic_for_a_thread_count():
    X = RNG.standard_normal((24, 15, 15, 1)).astype("float32")
    y = RNG.integers(0, 3, 24)
    runs = [_fit(CASES[0], "float32", "cython", "fused", 2, X, y)[0].params.copy() for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_wide_or_multichannel_convs_keep_the_im2col_path():
    from fastnn._ext import _kernels

    X = RNG.standard_normal((8, 15, 15, 1)).astype("float32")
    y = RNG.integers(0, 3, 8)
    layers = [fnn.Conv2D(16, 3, activation="relu"), fnn.Conv2D(4, 3, activation="relu"), fnn.Flatten(), fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(15, 15, 1), seed=3, dtype="float32", backend="cython")
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05), batch_size=8, seed=5, verbose=0, path="fused")
    tr.fit(X, y, epochs=1)
    m = tr.plan.wofs[codes.W_ROWS]
    assert not _kernels.conv_runs_direct(tr.plan.ops[0], m, 4)  # 16 filters fill the GEMM's register tile
    assert not _kernels.conv_runs_direct(tr.plan.ops[1], m, 4)  # 16 input channels
    with pytest.raises(ValueError, match="conv_runs_direct"):
        _kernels.conv_runs_direct(tr.plan.ops[-1], m, 4)
    with pytest.raises(ValueError, match="True, False or None"):
        _kernels.conv_direct(1)


@pytest.mark.parametrize("F", [6, 15])
def test_fused_small_channel_pooling_routes_ties_as_the_oracle(F):
    """Integer images and weights: many positive ties in the 2x2 windows of a map with C < 16 channels
    (the vectorized pooling of csrc/plan_conv.pxi); the first maximum must win, as in the oracle, or
    the first step's weight gradient goes to another input."""
    X = RNG.integers(-2, 3, (24, 14, 13, 1)).astype("float32")
    y = RNG.integers(0, 3, 24)

    def fit(backend, path):
        net = fnn.Network([fnn.Conv2D(F, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)],
                          input_shape=(14, 13, 1), seed=3, dtype="float32", backend=backend)
        n_w = 9 * F
        net.params[:n_w] = np.round(net.params[:n_w] * 8)  # integer kernels, zero bias: exact, tied sums
        net.params[n_w:n_w + F] = 0
        tr = fnn.Trainer(net, optimizer=fnn.SGD(0.01), batch_size=24, seed=5, verbose=0, path=path)
        tr.fit(X, y, epochs=1)
        return net.params

    np.testing.assert_allclose(fit("cython", "fused"), fit("reference", "per-layer"), rtol=1e-4, atol=1e-4)
