"""Conv and pooling rows of the Numba plan driver (:mod:`fastnn.kernels.numba.plan`).

The per-layer algorithm on the shard's work blocks, inlined into the driver:
``im2col`` into the row's column block, one GEMM with bias and activation in
its epilogue, and in backward the Dense backward on the columns plus
``col2im`` (skipped for the first conv, whose input gradient nobody reads).
A conv row runs in tiles of images, as the Cython rows do (the tile rule is
:func:`fastnn.kernels.tiling.conv_tile_images`, compiled here): im2col of a
tile, then its GEMM while the columns are in L2; in backward per tile the
activation derivative, the input-gradient columns (the first tile's slot of
the W_DCOLS block, reused) and their col2im. The weight gradient is one GEMM
over the whole shard after the tiles (``np.dot`` cannot accumulate, and the
columns and dZ of the shard are kept anyway), so it sums as before.
Max pooling keeps no argmax mask: backward rescans the kept input of each
window for its first maximum, with the forward pass's comparison, so the
winners are the same (one pass over the input instead of writing and reading
an int64 mask as large as the output).
"""
import numpy as np
from numba import njit

from . import activations, conv, dense, pool
from ._common import OPTS
from .. import tiling
from ..codes import (
    OP_CONV2D, OP_MAXPOOL2D, P_ACT, P_C, P_COLS, P_H, P_HO, P_IN, P_KH, P_KW, P_NEED_DX, P_N_OUT,
    P_OUT, P_PARAM0, P_PARAM1, P_PH, P_PW, P_SH, P_SW, P_W, P_WO, P_Z, W_DCOLS, W_DZ,
)


conv_tile_images = njit(**OPTS)(tiling.conv_tile_images)


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
        HoWo = Ho * Wo
        F = r[P_N_OUT] // HoWo
        K = kh * kw * C
        p0, p1 = r[P_PARAM0], r[P_PARAM1]
        Wk = params[p0:p0 + K * F].reshape(K, F)
        T = conv_tile_images(HoWo, K, F, m, wb.itemsize)
        for b0 in range(0, m, T):
            t = min(T, m - b0)
            if r[P_COLS] >= 0:  # kept for the weight gradient
                cols = wb[r[P_COLS] + b0 * HoWo * K:r[P_COLS] + (b0 + t) * HoWo * K]
                conv.im2col(X[b0:b0 + t], kh, kw, sh, sw, ph, pw, cols.reshape(t, Ho, Wo, K))
            else:  # a 1x1 kernel: the columns are the input
                cols = wb[r[P_IN] + b0 * H * W * C:r[P_IN] + (b0 + t) * H * W * C]
            z0, z1 = b0 * HoWo * F, (b0 + t) * HoWo * F
            Z = wb[r[P_Z] + z0:r[P_Z] + z1].reshape(t * HoWo, F)
            A = wb[r[P_OUT] + z0:r[P_OUT] + z1].reshape(t * HoWo, F)
            np.dot(cols.reshape(t * HoWo, K), Wk, Z)
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
        HoWo = Ho * Wo
        F = n_out // HoWo
        K, P = kh * kw * C, m * HoWo
        p0, p1 = r[P_PARAM0], r[P_PARAM1]
        pointwise = r[P_COLS] < 0
        cols = wb[r[P_IN]:r[P_IN] + P * K] if pointwise else wb[r[P_COLS]:r[P_COLS] + P * K]
        dZ = wb[wofs[W_DZ]:wofs[W_DZ] + P * F]
        Wk = params[p0:p0 + K * F].reshape(K, F)
        db = g[p1:p1 + F] if p1 >= 0 else g[:0]
        db[:] = 0
        T = conv_tile_images(HoWo, K, F, m, wb.itemsize)
        for b0 in range(0, m, T):
            t = min(T, m - b0)
            z0, z1 = b0 * HoWo * F, (b0 + t) * HoWo * F
            dZt = dZ[z0:z1].reshape(t * HoWo, F)
            activations._activation_backward_db(
                wb[r[P_Z] + z0:r[P_Z] + z1].reshape(t * HoWo, F), wb[r[P_OUT] + z0:r[P_OUT] + z1].reshape(t * HoWo, F),
                dA[z0:z1].reshape(t * HoWo, F), r[P_ACT], alpha, dZt, db, False)
            for i in range(t * HoWo):  # the bias gradient over the tiles, rows in order
                for j in range(db.shape[0]):
                    db[j] += dZt[i, j]
            if need:
                if pointwise:
                    np.dot(dZt, Wk.T, dX[b0 * HoWo * K:(b0 + t) * HoWo * K].reshape(t * HoWo, K))
                else:
                    dcols = wb[wofs[W_DCOLS]:wofs[W_DCOLS] + t * HoWo * K]
                    np.dot(dZt, Wk.T, dcols.reshape(t * HoWo, K))
                    conv.col2im(dcols.reshape(t, Ho, Wo, K), kh, kw, sh, sw, ph, pw,
                                dX[b0 * H * W * C:(b0 + t) * H * W * C].reshape(t, H, W, C))
        np.dot(cols.reshape(P, K).T, dZ.reshape(P, F), g[p0:p0 + K * F].reshape(K, F))
    elif not need:
        return
    elif r[0] == OP_MAXPOOL2D:
        _maxpool_backward_rescan(X, dA.reshape(m, Ho, Wo, C), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
    else:
        pool.avgpool_backward(dA.reshape(m, Ho, Wo, C), kh, kw, sh, sw, ph, pw, dX.reshape(m, H, W, C))
