"""Conv and pooling rows of the reference plan driver (:mod:`fastnn.kernels.reference.plan`).

A conv row is the layer's own algorithm on the shard's work blocks: ``im2col``
into the row's column block, the Dense GEMM on the columns, and in backward
the Dense backward on the columns plus ``col2im`` (skipped when no input
gradient is needed). Max pooling keeps no argmax mask: backward recomputes it
from the kept input, which gives the same winners as the forward pass.
"""
import numpy as np

from . import conv, dense, pool
from ..codes import (
    OP_CONV2D, OP_MAXPOOL2D, P_ACT, P_C, P_COLS, P_H, P_HO, P_IN, P_KH, P_KW, P_N_OUT,
    P_OUT, P_PARAM0, P_PARAM1, P_PH, P_PW, P_SH, P_SW, P_W, P_WO, P_Z, W_DCOLS, W_DZ,
)


def geometry(row):
    """``(H, W, C, Ho, Wo, kh, kw, sh, sw, ph, pw)`` of a conv / pool plan row."""
    return tuple(int(row[c]) for c in (P_H, P_W, P_C, P_HO, P_WO, P_KH, P_KW, P_SH, P_SW, P_PH, P_PW))


def _images(wb, off, m, h, w, c):
    return wb[off:off + m * h * w * c].reshape(m, h, w, c)


def _columns(row, wb, A_in, m):
    """The GEMM operand of a conv row: its im2col block, or the input itself for a 1x1 kernel."""
    H, W, C, Ho, Wo, kh, kw = geometry(row)[:7]
    if row[P_COLS] < 0:
        return A_in.reshape(m * H * W, C)
    return wb[row[P_COLS]:row[P_COLS] + m * Ho * Wo * kh * kw * C].reshape(m * Ho * Wo, kh * kw * C)


def forward(row, alpha, params, wb, m):
    """Forward of one conv / pool row on the shard's m rows."""
    H, W, C, Ho, Wo, kh, kw, sh, sw, ph, pw = geometry(row)
    X = _images(wb, row[P_IN], m, H, W, C)
    if row[0] == OP_CONV2D:
        F = row[P_N_OUT] // (Ho * Wo)
        K = kh * kw * C
        if row[P_COLS] >= 0:
            conv.im2col(X, kh, kw, sh, sw, ph, pw, _columns(row, wb, X, m).reshape(m, Ho, Wo, K))
        p0, p1 = row[P_PARAM0], row[P_PARAM1]
        Z = wb[row[P_Z]:row[P_Z] + m * row[P_N_OUT]].reshape(m * Ho * Wo, F)
        A = wb[row[P_OUT]:row[P_OUT] + m * row[P_N_OUT]].reshape(m * Ho * Wo, F)
        b = params[p1:p1 + F] if p1 >= 0 else 0  # p1 < 0: a bias-free conv
        dense.dense_forward(_columns(row, wb, X, m), params[p0:p0 + K * F].reshape(K, F), b, row[P_ACT], alpha, Z, A)
    elif row[0] == OP_MAXPOOL2D:
        out = _images(wb, row[P_OUT], m, Ho, Wo, C)
        pool.maxpool_forward(X, kh, kw, sh, sw, ph, pw, out, np.empty(out.shape, np.int64))
    else:
        pool.avgpool_forward(X, kh, kw, sh, sw, ph, pw, _images(wb, row[P_OUT], m, Ho, Wo, C))


def backward(row, alpha, params, g, wofs, wb, dA, dX, m):
    """Backward of one conv / pool row: parameter gradients into g, the input gradient into dX (or None)."""
    H, W, C, Ho, Wo, kh, kw, sh, sw, ph, pw = geometry(row)
    X = _images(wb, row[P_IN], m, H, W, C)
    if row[0] == OP_CONV2D:
        F = row[P_N_OUT] // (Ho * Wo)
        K, P = kh * kw * C, m * Ho * Wo
        p0, p1 = row[P_PARAM0], row[P_PARAM1]
        pointwise = row[P_COLS] < 0
        dcols = None
        if dX is not None:
            dcols = dX.reshape(P, K) if pointwise else wb[wofs[W_DCOLS]:wofs[W_DCOLS] + P * K].reshape(P, K)
        Z = wb[row[P_Z]:row[P_Z] + m * row[P_N_OUT]].reshape(P, F)
        A = wb[row[P_OUT]:row[P_OUT] + m * row[P_N_OUT]].reshape(P, F)
        dense.dense_backward(_columns(row, wb, X, m), params[p0:p0 + K * F].reshape(K, F), Z, A, dA.reshape(P, F),
                             row[P_ACT], alpha, wb[wofs[W_DZ]:wofs[W_DZ] + P * F].reshape(P, F),
                             g[p0:p0 + K * F].reshape(K, F), g[p1:p1 + F] if p1 >= 0 else np.empty(F, g.dtype), dcols)
        if dX is not None and not pointwise:
            conv.col2im(dcols.reshape(m, Ho, Wo, K), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
    elif dX is None:
        return
    elif row[0] == OP_MAXPOOL2D:
        out = np.empty((m, Ho, Wo, C), X.dtype)
        argmax = np.empty(out.shape, np.int64)
        pool.maxpool_forward(X, kh, kw, sh, sw, ph, pw, out, argmax)
        pool.maxpool_backward(dA.reshape(m, Ho, Wo, C), argmax, dX.reshape(m, H, W, C))
    else:
        pool.avgpool_backward(dA.reshape(m, Ho, Wo, C), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
