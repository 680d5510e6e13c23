"""Numba multi-head self-attention; contract in :mod:`fastnn.kernels.reference.attention`.

One (sample, head) pair per ``prange`` iteration: pairs write disjoint columns, so
threads never share an output and the result does not depend on the thread count.
Per pair the T x T scores, the stable softmax (row maximum subtracted) and the
products with the values are fused loops over contiguous head slices; sums
accumulate in float64. Nothing is allocated.
"""
import math

import numpy as np
from numba import njit, prange

from ._common import OPTS

_PAR = dict(OPTS, parallel=True)


@njit(**_PAR)
def attention_forward(QKV, n_heads, causal, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    n, T, D = O_out.shape
    dk = D // n_heads
    scale = 1.0 / math.sqrt(dk)
    for pair in prange(n * n_heads):
        i = pair // n_heads
        h = pair % n_heads
        qo = h * dk
        ko = D + h * dk
        vo = 2 * D + h * dk
        for a in range(T):
            lim = a + 1 if causal else T
            top = -np.inf
            for c in range(lim):
                s = 0.0
                for d in range(dk):
                    s += QKV[i, a, qo + d] * QKV[i, c, ko + d]
                s *= scale
                P_out[i, h, a, c] = s
                if s > top:
                    top = s
            tot = 0.0
            for c in range(lim):
                e = math.exp(P_out[i, h, a, c] - top)
                P_out[i, h, a, c] = e
                tot += e
            inv = 1.0 / tot
            for c in range(lim):
                P_out[i, h, a, c] *= inv
            for c in range(lim, T):
                P_out[i, h, a, c] = 0
            for d in range(dk):
                O_out[i, a, qo + d] = 0
            for c in range(lim):
                p = P_out[i, h, a, c]
                for d in range(dk):
                    O_out[i, a, qo + d] += p * QKV[i, c, vo + d]


@njit(**_PAR)
def attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out):
    """Gradients of attention_forward w.r.t. the queries, keys and values, into dQKV_out (n, T, 3*D)."""
    n, T, D = dO.shape
    dk = D // n_heads
    scale = 1.0 / math.sqrt(dk)
    for pair in prange(n * n_heads):
        i = pair // n_heads
        h = pair % n_heads
        qo = h * dk
        ko = D + h * dk
        vo = 2 * D + h * dk
        for a in range(T):
            for d in range(dk):
                dQKV_out[i, a, qo + d] = 0
                dQKV_out[i, a, ko + d] = 0
                dQKV_out[i, a, vo + d] = 0
        for a in range(T):
            lim = a + 1 if causal else T
            row = 0.0
            for c in range(lim):
                dp = 0.0
                for d in range(dk):
                    dp += dO[i, a, qo + d] * QKV[i, c, vo + d]
                dS_buf[i, h, a, c] = dp
                row += dp * P[i, h, a, c]
            for c in range(lim):
                p = P[i, h, a, c]
                ds = p * (dS_buf[i, h, a, c] - row) * scale
                dS_buf[i, h, a, c] = ds
                for d in range(dk):
                    dQKV_out[i, a, qo + d] += ds * QKV[i, c, ko + d]
                    dQKV_out[i, c, ko + d] += ds * QKV[i, a, qo + d]
                    dQKV_out[i, c, vo + d] += p * dO[i, a, qo + d]
            for c in range(lim, T):
                dS_buf[i, h, a, c] = 0
