"""Conv and pooling rows of the Numba plan driver (:mod:`fastnn.kernels.numba.plan`).

The per-layer algorithm on the shard's work blocks, inlined into the driver:
``im2col`` into the row's column block, one GEMM with bias and activation in
its epilogue, and in backward the Dense backward on the columns plus
``col2im`` (skipped for the first conv, whose input gradient nobody reads).
Max pooling keeps no argmax mask: backward rescans the kept input of each
window for its first maximum, with the forward pass's comparison, so the
winners are the same (one pass over the input instead of writing and reading
an int64 mask as large as the output).
"""
import numpy as np
from numba import njit

from . import activations, conv, dense, pool
from ._common import OPTS
from ..codes import (
    OP_CONV2D, OP_MAXPOOL2D, P_ACT, P_C, P_COLS, P_H, P_HO, P_IN, P_KH, P_KW, P_NEED_DX, P_N_OUT,
    P_OUT, P_PARAM0, P_PARAM1, P_PH, P_PW, P_SH, P_SW, P_W, P_WO, P_Z, W_DCOLS, W_DZ,
)


@njit(**OPTS)
def _images(wb, off, m, h, w, c):
    return wb[off:off + m * h * w * c].reshape(m, h, w, c)


@njit(**OPTS)
def _maxpool_forward(X, kh, kw, sh, sw, ph, pw, out):
    """out = max of each window (padding ignored); NaN wins once it is the maximum (as the pool kernels)."""
    n, H, W, C = X.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for b in range(n):
        for ho in range(Ho):
            h0, h1 = max(ho * sh - ph, 0), min(ho * sh - ph + kh, H)
            for wo in range(Wo):
                w0, w1 = max(wo * sw - pw, 0), min(wo * sw - pw + kw, W)
                o = out[b, ho, wo]
                first = X[b, h0, w0]
                for c in range(C):
                    o[c] = first[c]
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        x = X[b, h, w]
                        for c in range(C):
                            if x[c] > o[c] or (x[c] != x[c] and o[c] == o[c]):
                                o[c] = x[c]


@njit(**OPTS)
def _maxpool_backward_rescan(X, dout, kh, kw, sh, sw, ph, pw, dX_out):
    """dX = 0, then each window's gradient to its first maximum in X, found as the forward pass does."""
    n, H, W, C = X.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    dX_out[...] = 0
    for b in range(n):
        for ho in range(Ho):
            h0, h1 = max(ho * sh - ph, 0), min(ho * sh - ph + kh, H)
            for wo in range(Wo):
                w0, w1 = max(wo * sw - pw, 0), min(wo * sw - pw + kw, W)
                d = dout[b, ho, wo]
                for c in range(C):
                    best, bh, bw = X[b, h0, w0, c], h0, w0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            x = X[b, h, w, c]
                            if x > best or (x != x and best == best):
                                best, bh, bw = x, h, w
                    dX_out[b, bh, bw, c] += d[c]


@njit(**OPTS)
def forward_row(r, alpha, params, wb, m):
    """Forward of the conv / pool plan row ``r`` (its int columns) on the shard's m rows."""
    H, W, C, Ho, Wo = r[P_H], r[P_W], r[P_C], r[P_HO], r[P_WO]
    kh, kw, sh, sw, ph, pw = r[P_KH], r[P_KW], r[P_SH], r[P_SW], r[P_PH], r[P_PW]
    X = _images(wb, r[P_IN], m, H, W, C)
    if r[0] == OP_CONV2D:
        F = r[P_N_OUT] // (Ho * Wo)
        K = kh * kw * C
        if r[P_COLS] >= 0:
            cols = wb[r[P_COLS]:r[P_COLS] + m * Ho * Wo * K]
            conv.im2col(X, kh, kw, sh, sw, ph, pw, cols.reshape(m, Ho, Wo, K))
        else:
            cols = wb[r[P_IN]:r[P_IN] + m * H * W * C]
        p0, p1 = r[P_PARAM0], r[P_PARAM1]
        Z = wb[r[P_Z]:r[P_Z] + m * r[P_N_OUT]].reshape(m * Ho * Wo, F)
        A = wb[r[P_OUT]:r[P_OUT] + m * r[P_N_OUT]].reshape(m * Ho * Wo, F)
        np.dot(cols.reshape(m * Ho * Wo, K), params[p0:p0 + K * F].reshape(K, F), Z)
        if p1 >= 0:
            dense._bias_activation(Z, params[p1:p1 + F], r[P_ACT], alpha, A)
        else:  # a bias-free conv
            activations.activation_forward(Z, r[P_ACT], alpha, A)
    elif r[0] == OP_MAXPOOL2D:
        _maxpool_forward(X, kh, kw, sh, sw, ph, pw, _images(wb, r[P_OUT], m, Ho, Wo, C))
    else:
        pool.avgpool_forward(X, kh, kw, sh, sw, ph, pw, _images(wb, r[P_OUT], m, Ho, Wo, C))


@njit(**OPTS)
def backward_row(r, alpha, params, g, wofs, wb, dA_off, dX_off, m):
    """Backward of the conv / pool plan row ``r``: parameter gradients into g, the input gradient
    (when the row needs one) into the block at ``dX_off``; its output gradient is at ``dA_off``."""
    H, W, C, Ho, Wo = r[P_H], r[P_W], r[P_C], r[P_HO], r[P_WO]
    kh, kw, sh, sw, ph, pw = r[P_KH], r[P_KW], r[P_SH], r[P_SW], r[P_PH], r[P_PW]
    need = r[P_NEED_DX] != 0
    X = _images(wb, r[P_IN], m, H, W, C)
    n_out = r[P_N_OUT]
    dA = wb[dA_off:dA_off + m * n_out]
    dX = wb[dX_off:dX_off + m * H * W * C]
    if r[0] == OP_CONV2D:
        F = n_out // (Ho * Wo)
        K, P = kh * kw * C, m * Ho * Wo
        p0, p1 = r[P_PARAM0], r[P_PARAM1]
        pointwise = r[P_COLS] < 0
        cols = wb[r[P_IN]:r[P_IN] + P * K] if pointwise else wb[r[P_COLS]:r[P_COLS] + P * K]
        dcols = dX if pointwise else wb[wofs[W_DCOLS]:wofs[W_DCOLS] + P * K] if need else cols
        dense._dense_backward(cols.reshape(P, K), params[p0:p0 + K * F].reshape(K, F),
                              wb[r[P_Z]:r[P_Z] + P * F].reshape(P, F), wb[r[P_OUT]:r[P_OUT] + P * F].reshape(P, F),
                              dA.reshape(P, F), r[P_ACT], alpha, wb[wofs[W_DZ]:wofs[W_DZ] + P * F].reshape(P, F),
                              g[p0:p0 + K * F].reshape(K, F), g[p1:p1 + F] if p1 >= 0 else g[:0], dcols.reshape(P, K),
                              need, p1 >= 0)
        if need and not pointwise:
            conv.col2im(dcols.reshape(m, Ho, Wo, K), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
    elif not need:
        return
    elif r[0] == OP_MAXPOOL2D:
        _maxpool_backward_rescan(X, dA.reshape(m, Ho, Wo, C), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
    else:
        pool.avgpool_backward(dA.reshape(m, Ho, Wo, C), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
