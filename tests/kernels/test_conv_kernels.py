"""Conv and pool kernels: every backend against the reference (``check_op``), the reference against
the loop oracles of ``tests/naive.py``, and the adjoint identities of the backward kernels."""
import numpy as np
import pytest

import naive
from fastnn.kernels import get_backend

from .helpers import backends, check_op

# (n, H, W, C, kh, kw, sh, sw, padding): odd sizes, strides, 1x1 and 5x5 kernels, batch 1
GEOMETRIES = [
    (2, 7, 6, 3, 3, 3, 1, 1, "valid"),
    (3, 7, 6, 2, 3, 3, 1, 1, "same"),
    (1, 9, 8, 2, 3, 2, 2, 3, "same"),
    (2, 8, 8, 4, 1, 1, 1, 1, "valid"),
    (2, 9, 7, 1, 5, 5, 2, 1, "same"),
    (1, 5, 5, 3, 5, 5, 1, 1, "valid"),
    (2, 6, 5, 2, 2, 3, 2, 2, "valid"),
    (3, 12, 12, 1, 5, 5, 1, 1, "same"),   # LeNet-5's first layer: 16-value copies of 5-value patch rows
    (2, 4, 4, 1, 3, 3, 1, 1, "valid"),    # ... where the excess would leave the image's columns or input
]


def _geometry(H, W, kh, kw, sh, sw, padding):
    if padding == "valid":
        return (H - kh) // sh + 1, (W - kw) // sw + 1, 0, 0
    Ho, ph = naive.same_padding(H, kh, sh)
    Wo, pw = naive.same_padding(W, kw, sw)
    return Ho, Wo, ph, pw


def _im2col_args(g):
    n, H, W, C, kh, kw, sh, sw, padding = g
    Ho, Wo, ph, pw = _geometry(H, W, kh, kw, sh, sw, padding)

    def make(dtype, rng):
        return dict(X=rng.standard_normal((n, H, W, C)).astype(dtype), kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw,
                    cols_out=np.full((n, Ho, Wo, kh * kw * C), np.nan, dtype))
    return make


def _col2im_args(fwd, dtype, rng):
    X = fwd["X"]
    return dict(cols=rng.standard_normal(fwd["cols_out"].shape).astype(dtype), kh=fwd["kh"], kw=fwd["kw"],
                sh=fwd["sh"], sw=fwd["sw"], ph=fwd["ph"], pw=fwd["pw"], dX_out=np.full(X.shape, np.nan, dtype))


@pytest.mark.parametrize("g", GEOMETRIES, ids=str)
def test_im2col_col2im_every_backend(g):
    check_op("im2col", _im2col_args(g), ["cols_out"], backward=("col2im", _col2im_args, ["dX_out"]))


@pytest.mark.parametrize("g", GEOMETRIES, ids=str)
def test_im2col_gemm_is_the_naive_convolution(g):
    n, H, W, C, kh, kw, sh, sw, padding = g
    rng = np.random.default_rng(1)
    args = _im2col_args(g)(np.float64, rng)
    F = 4
    Wk = rng.standard_normal((kh, kw, C, F))
    bias = rng.standard_normal(F)
    for backend in backends():
        cols = args["cols_out"].copy()
        get_backend(backend).im2col(args["X"], kh, kw, sh, sw, args["ph"], args["pw"], cols)
        got = cols.reshape(-1, kh * kw * C) @ Wk.reshape(-1, F) + bias
        expected = naive.conv2d(args["X"], Wk, bias, (sh, sw), padding)
        np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12, err_msg=backend)


@pytest.mark.parametrize("g", GEOMETRIES[:3], ids=str)
def test_col2im_is_the_adjoint_of_im2col(g):
    """<im2col(X), G> == <X, col2im(G)> for random X, G: col2im is exactly the transpose."""
    rng = np.random.default_rng(2)
    args = _im2col_args(g)(np.float64, rng)
    G = rng.standard_normal(args["cols_out"].shape)
    for backend in backends():
        k = get_backend(backend)
        cols, dX = np.empty_like(G), np.empty_like(args["X"])
        k.im2col(args["X"], args["kh"], args["kw"], args["sh"], args["sw"], args["ph"], args["pw"], cols)
        k.col2im(G, args["kh"], args["kw"], args["sh"], args["sw"], args["ph"], args["pw"], dX)
        assert np.isclose((cols * G).sum(), (args["X"] * dX).sum(), rtol=1e-12), backend


POOLS = [
    (2, 6, 6, 3, 2, 2, 2, 2, "valid"),
    (1, 7, 5, 2, 2, 2, 2, 2, "valid"),
    (2, 7, 5, 2, 3, 3, 2, 2, "same"),
    (3, 5, 6, 1, 3, 2, 1, 1, "same"),
    (2, 4, 4, 5, 4, 4, 4, 4, "valid"),   # a global pool
]


def _pool_args(g, with_argmax, ties=False):
    n, H, W, C, kh, kw, sh, sw, padding = g
    Ho, Wo, ph, pw = _geometry(H, W, kh, kw, sh, sw, padding)

    def make(dtype, rng):
        X = rng.standard_normal((n, H, W, C))
        if ties:
            X = np.round(X)  # many equal maxima: the first one must win everywhere
        args = dict(X=X.astype(dtype), kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, out=np.full((n, Ho, Wo, C), np.nan, dtype))
        if with_argmax:
            args["argmax_out"] = np.full((n, Ho, Wo, C), -7, np.int64)
        return args
    return make


def _maxpool_bwd_args(fwd, dtype, rng):
    return dict(dout=rng.standard_normal(fwd["out"].shape).astype(dtype), argmax=fwd["argmax_out"],
                dX_out=np.full(fwd["X"].shape, np.nan, dtype))


def _avgpool_bwd_args(fwd, dtype, rng):
    return dict(dout=rng.standard_normal(fwd["out"].shape).astype(dtype), kh=fwd["kh"], kw=fwd["kw"],
                sh=fwd["sh"], sw=fwd["sw"], ph=fwd["ph"], pw=fwd["pw"], dX_out=np.full(fwd["X"].shape, np.nan, dtype))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("g", POOLS, ids=str)
def test_maxpool_every_backend(g, ties):
    check_op("maxpool_forward", _pool_args(g, True, ties), ["out", "argmax_out"],
             backward=("maxpool_backward", _maxpool_bwd_args, ["dX_out"]))


@pytest.mark.parametrize("g", POOLS, ids=str)
def test_avgpool_every_backend(g):
    check_op("avgpool_forward", _pool_args(g, False), ["out"],
             backward=("avgpool_backward", _avgpool_bwd_args, ["dX_out"]))


@pytest.mark.parametrize("g", POOLS, ids=str)
def test_pooling_is_the_naive_pooling(g):
    n, H, W, C, kh, kw, sh, sw, padding = g
    args = _pool_args(g, True)(np.float64, np.random.default_rng(3))
    for kind in ("max", "avg"):
        expected = naive.pool2d(args["X"], (kh, kw), (sh, sw), padding, kind)
        out = np.empty_like(args["out"])
        if kind == "max":
            get_backend("reference").maxpool_forward(args["X"], kh, kw, sh, sw, args["ph"], args["pw"], out,
                                                     np.empty(out.shape, np.int64))
        else:
            get_backend("reference").avgpool_forward(args["X"], kh, kw, sh, sw, args["ph"], args["pw"], out)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=kind)
