"""Cython multi-head self-attention: ``csrc/attention.pxi``; contract in :mod:`fastnn.kernels.reference.attention`.

The (sample, head) pairs are split over the threads; each pair's four products
are BLAS GEMMs reading the head's columns of ``QKV`` in place (leading
dimensions, no copies), the stable row softmax one fused pass. Threads:
:func:`fastnn.set_num_threads`, capped by the calling thread's OpenMP setting.
"""
from ._adapt import _k
from ._seq import Outs, dtype_of, inp, mask_args, threads


def attention_forward(QKV, n_heads, causal, key_mask, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    dt = dtype_of(O_out)
    out = Outs(dt, P_out, O_out)
    _k.attention_forward(inp(QKV, dt), int(n_heads), bool(causal), *mask_args(key_mask, dt), *out.bufs, threads())
    out.back()


def attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out):
    """Gradients of attention_forward w.r.t. q, k, v into dQKV_out (P already holds the causal zeros)."""
    dt = dtype_of(dQKV_out)
    out = Outs(dt, dS_buf, dQKV_out)
    _k.attention_backward(inp(QKV, dt), inp(P, dt), inp(dO, dt), int(n_heads), *out.bufs, threads())
    out.back()
