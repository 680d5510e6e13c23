"""Numba multi-head self-attention; contract in :mod:`fastnn.kernels.reference.attention`.

One (sample, head) pair per ``prange`` iteration: pairs write disjoint columns, so
threads never share an output and the result does not depend on the thread count.
Per pair the T x T scores, the stable softmax (row maximum subtracted) and the
products with the values are fused loops over contiguous head slices. Nothing
is allocated.
"""
import math

import numpy as np
from numba import njit, prange

from ._common import OPTS

# 'reassoc' + 'contract' only (no nnan/ninf: NaN still propagates): lets LLVM vectorize the dot products
# over a head's dk columns. Sums accumulate in the array dtype, as the reference's BLAS GEMMs do.
_PAR = dict(OPTS, parallel=True, fastmath={"reassoc", "contract"})


def attention_forward(QKV, n_heads, causal, key_mask, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    if key_mask is None:
        _attention_forward(QKV, n_heads, causal, P_out[0, 0], False, P_out, O_out)
    else:
        _attention_forward(QKV, n_heads, causal, key_mask, True, P_out, O_out)


@njit(**_PAR)
def _attention_forward(QKV, n_heads, causal, key_mask, has_mask, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    n, T, D = O_out.shape
    dk = D // n_heads
    t = O_out.dtype.type
    scale = t(1.0 / math.sqrt(dk))
    for pair in prange(n * n_heads):
        i = pair // n_heads
        h = pair % n_heads
        Q = QKV[i, :, h * dk:(h + 1) * dk]   # (T, dk) views: slice first, then loop (vectorizes)
        K = QKV[i, :, D + h * dk:D + (h + 1) * dk]
        V = QKV[i, :, 2 * D + h * dk:2 * D + (h + 1) * dk]
        O = O_out[i, :, h * dk:(h + 1) * dk]
        Pi = P_out[i, h]
        for a in range(T):
            lim = a + 1 if causal else T
            q = Q[a]
            p = Pi[a]
            top = t(-np.inf)
            for c in range(lim):
                if has_mask and key_mask[i, c] == 0:  # a padded key: weight 0
                    p[c] = -np.inf
                    continue
                k = K[c]
                s = t(0)
                for d in range(dk):
                    s += q[d] * k[d]
                s *= scale
                p[c] = s
                if s > top:
                    top = s
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
            o = O[a]
            for d in range(dk):
                o[d] = 0
            for c in range(lim):
                w = p[c]
                v = V[c]
                for d in range(dk):
                    o[d] += w * v[d]


@njit(**_PAR)
def attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out):
    """Gradients of attention_forward w.r.t. the queries, keys and values, into dQKV_out (n, T, 3*D)."""
    n, T, D = dO.shape
    dk = D // n_heads
    t = dO.dtype.type
    scale = t(1.0 / math.sqrt(dk))
    for pair in prange(n * n_heads):
        i = pair // n_heads
        h = pair % n_heads
        Q = QKV[i, :, h * dk:(h + 1) * dk]
        K = QKV[i, :, D + h * dk:D + (h + 1) * dk]
        V = QKV[i, :, 2 * D + h * dk:2 * D + (h + 1) * dk]
        dQ = dQKV_out[i, :, h * dk:(h + 1) * dk]
        dK = dQKV_out[i, :, D + h * dk:D + (h + 1) * dk]
        dV = dQKV_out[i, :, 2 * D + h * dk:2 * D + (h + 1) * dk]
        dOh = dO[i, :, h * dk:(h + 1) * dk]
        Pi = P[i, h]
        dS = dS_buf[i, h]
        for a in range(T):  # dS = P * (dO v.T - rowsum(dO v.T * P)) * scale
            lim = a + 1 if causal else T
            g = dOh[a]
            p = Pi[a]
            ds = dS[a]
            row = t(0)
            for c in range(lim):
                v = V[c]
                dp = t(0)
                for d in range(dk):
                    dp += g[d] * v[d]
                ds[c] = dp
                row += dp * p[c]
            for c in range(lim):
                ds[c] = p[c] * (ds[c] - row) * scale
            for c in range(lim, T):
                ds[c] = 0
        for a in range(T):  # dq = dS k
            dq = dQ[a]
            ds = dS[a]
            for d in range(dk):
                dq[d] = 0
            lim = a + 1 if causal else T
            for c in range(lim):
                w = ds[c]
                k = K[c]
                for d in range(dk):
                    dq[d] += w * k[d]
        for c in range(T):  # dk = dS.T q, dv = P.T dO
            dkc = dK[c]
            dvc = dV[c]
            for d in range(dk):
                dkc[d] = 0
                dvc[d] = 0
            first = c if causal else 0
            for a in range(first, T):
                w = dS[a, c]
                p = Pi[a, c]
                q = Q[a]
                g = dOh[a]
                for d in range(dk):
                    dkc[d] += w * q[d]
                    dvc[d] += p * g[d]
