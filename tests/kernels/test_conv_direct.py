"""The one-channel convolution ops (``conv1ch_forward`` / ``conv1ch_weight_grad``; the Cython conv rows'
direct kernels, csrc/conv_direct.pxi): every backend against the reference (``check_op``), the reference
against the naive loop convolution of ``tests/naive.py``, odd widths (each row's partial last vector) and
bad arguments refused."""
import numpy as np
import pytest

import naive
from fastnn.kernels import get_backend

from .helpers import backends, check_op

# (n, H, W, kh, kw, sh, F, padding): F = 1..33 gives every partial last vector of a row (Wo*F lanes);
# strided rows, a 1x2 kernel, one image, LeNet-5's first layer
GEOMETRIES = [
    (2, 12, 12, 5, 5, 1, 6, "same"),
    (1, 7, 9, 3, 3, 1, 1, "valid"),
    (3, 9, 7, 5, 5, 2, 5, "same"),
    (2, 8, 9, 3, 2, 1, 15, "valid"),
    (1, 6, 5, 3, 3, 1, 16, "same"),
    (2, 5, 11, 2, 3, 2, 17, "valid"),
    (1, 5, 6, 3, 3, 1, 33, "valid"),
    (2, 28, 28, 5, 5, 1, 6, "same"),
]


def _geometry(H, W, kh, kw, sh, padding):
    if padding == "valid":
        return (H - kh) // sh + 1, W - kw + 1, 0, 0
    Ho, ph = naive.same_padding(H, kh, sh)
    Wo, pw = naive.same_padding(W, kw, 1)
    return Ho, Wo, ph, pw


def _fwd_args(g, relu=True, bias=True, with_a=True):
    n, H, W, kh, kw, sh, F, padding = g
    Ho, Wo, ph, pw = _geometry(H, W, kh, kw, sh, padding)

    def make(dtype, rng):
        return dict(X=rng.standard_normal((n, H, W, 1)).astype(dtype),
                    W=rng.standard_normal((kh, kw, 1, F)).astype(dtype),
                    b=rng.standard_normal(F).astype(dtype) if bias else None, sh=sh, ph=ph, pw=pw, relu=relu,
                    Z_out=np.full((n, Ho, Wo, F), np.nan, dtype),
                    A_out=np.full((n, Ho, Wo, F), np.nan, dtype) if with_a else None)
    return make


def _dw_args(fwd, dtype, rng):
    return dict(X=fwd["X"], dZ=rng.standard_normal(fwd["Z_out"].shape).astype(dtype), sh=fwd["sh"], ph=fwd["ph"],
                pw=fwd["pw"], dW_out=np.full(fwd["W"].shape, np.nan, dtype))


@pytest.mark.parametrize("g", GEOMETRIES, ids=str)
def test_conv1ch_every_backend(g):
    outputs = ["Z_out", "A_out"]
    check_op("conv1ch_forward", _fwd_args(g), outputs,
             backward=("conv1ch_weight_grad", _dw_args, ["dW_out"]), chain=4)


@pytest.mark.parametrize("relu,bias,with_a", [(False, True, True), (True, False, True), (False, False, False)])
def test_conv1ch_forward_without_relu_bias_or_a(relu, bias, with_a):
    outputs = ["Z_out", "A_out"] if with_a else ["Z_out"]
    check_op("conv1ch_forward", _fwd_args(GEOMETRIES[3], relu, bias, with_a), outputs)


@pytest.mark.parametrize("g", GEOMETRIES[:4], ids=str)
def test_conv1ch_reference_is_the_naive_convolution(g):
    n, H, W, kh, kw, sh, F, padding = g
    args = _fwd_args(g)(np.float64, np.random.default_rng(3))
    get_backend("reference").conv1ch_forward(*args.values())
    expected = naive.conv2d(args["X"], args["W"], args["b"], (sh, 1), padding)
    np.testing.assert_allclose(args["Z_out"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(args["A_out"], np.maximum(args["Z_out"], 0))


@pytest.mark.parametrize("g", [(1, 6, 7, 3, 3, 1, 2, "same"), (2, 7, 5, 3, 2, 2, 3, "valid")], ids=str)
def test_conv1ch_weight_grad_is_the_central_difference_gradient(g):
    """dW of the reference is the gradient of <conv(X, W), dZ> with respect to W (the naive convolution)."""
    n, H, W, kh, kw, sh, F, padding = g
    args = _fwd_args(g)(np.float64, np.random.default_rng(3))
    dz = np.random.default_rng(4).standard_normal(args["Z_out"].shape)
    dW = np.empty_like(args["W"])
    get_backend("reference").conv1ch_weight_grad(args["X"], dz, sh, args["ph"], args["pw"], dW)
    w = args["W"].copy()
    numeric = naive.numeric_grad(lambda: (naive.conv2d(args["X"], w, None, (sh, 1), padding) * dz).sum(), w)
    np.testing.assert_allclose(dW, numeric, rtol=1e-6, atol=1e-6)


def test_conv1ch_keeps_nan_through_the_relu():
    args = _fwd_args(GEOMETRIES[0])(np.float32, np.random.default_rng(5))
    args["X"][0, 3, 4, 0] = np.nan
    for backend in backends():
        a = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}
        get_backend(backend).conv1ch_forward(*a.values())
        assert np.isnan(a["A_out"][0, 3, 4]).all(), backend
        assert np.isnan(a["Z_out"]).sum() == np.isnan(a["A_out"]).sum(), backend


@pytest.mark.parametrize("backend", backends())
def test_conv1ch_refuses_bad_arguments(backend):
    k = get_backend(backend)
    X3 = np.zeros((1, 6, 6, 3), np.float32)
    W = np.zeros((3, 3, 1, 4), np.float32)
    with pytest.raises(ValueError, match="one channel|\\(n, H, W, 1\\)"):
        k.conv1ch_forward(X3, W, None, 1, 0, 0, True, np.zeros((1, 4, 4, 4), np.float32), None)
    X = np.zeros((1, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match="sh >= 1"):
        k.conv1ch_forward(X, W, None, 0, 0, 0, True, np.zeros((1, 4, 4, 4), np.float32), None)
    with pytest.raises(ValueError):
        k.conv1ch_forward(X, W, np.zeros(3, np.float32), 1, 0, 0, True, np.zeros((1, 4, 4, 4), np.float32), None)
    with pytest.raises(ValueError):
        k.conv1ch_weight_grad(X, np.zeros((1, 4, 4, 5), np.float32), 1, 0, 0, np.zeros((3, 3, 1, 4), np.float32))
