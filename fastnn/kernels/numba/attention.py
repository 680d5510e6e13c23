"""Numba multi-head self-attention; contract in :mod:`fastnn.kernels.reference.attention`.

The (sample, head) pairs are split into one block per thread (``prange``): pairs
write disjoint columns, so threads never share an output and the result does not
depend on the thread count. Per pair the head's q, k, v are copied into the
thread's contiguous (T, dk) scratch and the four products are BLAS GEMMs
(``np.dot(a, b, out)``); the stable softmax (row maximum subtracted) and the
masks are fused loops. The only allocation is that scratch, once per thread per
call (a few kB), never per pair.
"""
import math

import numpy as np
from numba import get_num_threads, njit, prange

from ._common import OPTS

# 'reassoc' + 'contract' only (no nnan/ninf: NaN still propagates): lets LLVM vectorize the dot products
# over a head's dk columns. Sums accumulate in the array dtype, as the reference's BLAS GEMMs do.
_PAR = dict(OPTS, parallel=True, fastmath={"reassoc", "contract"})


def attention_forward(QKV, n_heads, causal, key_mask, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    nt = get_num_threads()
    if key_mask is None:
        _attention_forward(QKV, n_heads, causal, P_out[0, 0], False, P_out, O_out, nt)
    else:
        _attention_forward(QKV, n_heads, causal, key_mask, True, P_out, O_out, nt)


@njit(**OPTS)
def _copy_head(src, col, dst):
    """dst (T, dk) = src[:, col:col + dk] (a contiguous copy for BLAS)."""
    T, dk = dst.shape
    for a in range(T):
        for d in range(dk):
            dst[a, d] = src[a, col + d]


@njit(**_PAR)
def _attention_forward(QKV, n_heads, causal, key_mask, has_mask, P_out, O_out, nt):
    n, T, D = O_out.shape
    dk = D // n_heads
    t = O_out.dtype.type
    scale = t(1.0 / math.sqrt(dk))
    pairs = n * n_heads
    per = (pairs + nt - 1) // nt
    nb = (pairs + per - 1) // per
    for blk in prange(nb):
        # Per-thread copies of one head's q, k, v (T x dk, contiguous): the products are then BLAS GEMMs.
        # One small allocation per thread per call, none per pair.
        buf = np.empty((4, T, dk), O_out.dtype)
        q, k, v, o = buf[0], buf[1], buf[2], buf[3]
        for pair in range(blk * per, min(pairs, (blk + 1) * per)):
            i = pair // n_heads
            h = pair % n_heads
            X = QKV[i]
            _copy_head(X, h * dk, q)
            _copy_head(X, D + h * dk, k)
            _copy_head(X, 2 * D + h * dk, v)
            P = P_out[i, h]
            np.dot(q, k.T, P)
            for a in range(T):
                lim = a + 1 if causal else T
                p = P[a]
                top = t(-np.inf)
                for c in range(lim):
                    if has_mask and key_mask[i, c] == 0:  # a padded key: weight 0
                        p[c] = -np.inf
                        continue
                    p[c] *= scale
                    if p[c] > top:
                        top = p[c]
                if top == -np.inf:  # no key left (a fully padded sequence): P = 0, O = 0
                    top = t(0)
                tot = t(0)
                for c in range(lim):
                    e = math.exp(p[c] - top)
                    p[c] = e
                    tot += e
                inv = t(1) / tot if tot > 0 else t(0)
                for c in range(lim):
                    p[c] *= inv
                for c in range(lim, T):
                    p[c] = 0
            np.dot(P, v, o)
            Oi = O_out[i]
            for a in range(T):
                for d in range(dk):
                    Oi[a, h * dk + d] = o[a, d]


def attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out):
    """Gradients of attention_forward w.r.t. the queries, keys and values, into dQKV_out (n, T, 3*D)."""
    _attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out, get_num_threads())


@njit(**_PAR)
def _attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out, nt):
    n, T, D = dO.shape
    dk = D // n_heads
    t = dO.dtype.type
    scale = t(1.0 / math.sqrt(dk))
    pairs = n * n_heads
    per = (pairs + nt - 1) // nt
    nb = (pairs + per - 1) // per
    for blk in prange(nb):
        buf = np.empty((5, T, dk), dO.dtype)
        q, k, v, g, r = buf[0], buf[1], buf[2], buf[3], buf[4]
        for pair in range(blk * per, min(pairs, (blk + 1) * per)):
            i = pair // n_heads
            h = pair % n_heads
            X = QKV[i]
            _copy_head(X, h * dk, q)
            _copy_head(X, D + h * dk, k)
            _copy_head(X, 2 * D + h * dk, v)
            _copy_head(dO[i], h * dk, g)
            Pi = P[i, h]
            dS = dS_buf[i, h]
            np.dot(g, v.T, dS)  # dP
            for a in range(T):  # dS = P * (dP - rowsum(dP * P)) * scale
                row = t(0)
                for c in range(T):
                    row += dS[a, c] * Pi[a, c]
                for c in range(T):
                    dS[a, c] = Pi[a, c] * (dS[a, c] - row) * scale
            G = dQKV_out[i]
            np.dot(dS, k, r)  # dq
            for a in range(T):
                for d in range(dk):
                    G[a, h * dk + d] = r[a, d]
            np.dot(dS.T, q, r)  # dk
            for a in range(T):
                for d in range(dk):
                    G[a, D + h * dk + d] = r[a, d]
            np.dot(Pi.T, g, r)  # dv
            for a in range(T):
                for d in range(dk):
                    G[a, 2 * D + h * dk + d] = r[a, d]
