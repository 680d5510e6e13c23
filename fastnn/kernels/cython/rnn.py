"""Cython recurrent kernels (SimpleRNN, LSTM, GRU): ``csrc/rnn.pxi``; contracts in :mod:`fastnn.kernels.reference.rnn`.

The batch's rows run in one OpenMP block per thread through every step (per
step one ``h_{t-1} @ U`` product accumulated into the projected gates, then the
fused gate math), forward and backward through time; the weight gradients are
whole-sequence GEMMs split by output columns across the threads. BLAS is called
from every thread, so it must run one thread itself (the trainer limits it).
In float32 on AVX-512F or AVX2+FMA CPUs the per-step products run ``csrc/rnn_tiles.pxi``'s
micro-kernel instead (the LSTM cell fused into it), on ``U`` packed once per call,
and so do the weight gradients (``_k.rnn_tiles(False)`` switches back to BLAS,
``_k.rnn_tiles_isa('avx2')`` forces the AVX2 variant, for benchmarks and tests).
Threads: :func:`fastnn.set_num_threads`, capped by the calling thread's OpenMP
setting. ``U`` is packed (or, for BLAS, transposed) once per call into a per-thread workspace kept
between calls (:func:`fastnn.kernels.cython._seq.workspace`; the spec's buffers have no room for it). ``scratch``
of ``lstm_forward`` / ``simple_rnn_forward`` and the product half of ``dh_buf`` (LSTM, SimpleRNN)
are not needed: the GEMMs accumulate in place.
"""
import numpy as np

from ._adapt import _k
from ._seq import Outs, dtype_of, inp, mask_args, threads, workspace


def _packed(U, gates, dt):
    """The per-thread workspace for ``U`` packed once per call (``csrc/rnn_tiles.pxi``), or transposed."""
    return workspace((max(1, _k.rnn_pack_size(U.shape[0], gates)),), dt)


def simple_rnn_forward(X, W, U, b, mask, H_out, scratch):
    """h_t = tanh(x_t W + h_{t-1} U + b) for every step; H_out (T, n, H)."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out)
    _k.simple_rnn_forward(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), *mask_args(mask, dt), *out.bufs,
                          _packed(U, 1, dt), threads())
    out.back()


def simple_rnn_backward(X, W, U, H, dH, mask, dW_out, dU_out, db_out, dX_out, dZ_buf, dh_buf):
    """BPTT of simple_rnn_forward (dX skipped if dX_out is None)."""
    dt = dtype_of(dW_out)
    out = Outs(dt, dW_out, dU_out, db_out, dX_out, dZ_buf, dh_buf)
    dW, dU, db, dX, dZ, dh = out.bufs
    _k.simple_rnn_backward(inp(X, dt), inp(W, dt), inp(U, dt), inp(H, dt), inp(dH, dt), *mask_args(mask, dt),
                           dW, dU, db, dX, dX_out is not None, dZ, dh, _packed(U, 1, dt), threads())
    out.back()


def lstm_forward(X, W, U, b, mask, H_out, C_out, G_out, scratch):
    """LSTM over every step; G_out (T, n, 4H) keeps the activated gates i, f, g, o for backward."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out, C_out, G_out)
    _k.lstm_forward(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), *mask_args(mask, dt), *out.bufs,
                    _packed(U, 4, dt), threads())
    out.back()


def lstm_backward(X, W, U, H, C, G, dH, mask, dW_out, dU_out, db_out, dX_out, dG_buf, dh_buf, dc_buf):
    """BPTT of lstm_forward: gate pre-activation gradients into dG_buf, weight grads as GEMMs."""
    dt = dtype_of(dW_out)
    out = Outs(dt, dW_out, dU_out, db_out, dX_out, dG_buf, dh_buf, dc_buf)
    dW, dU, db, dX, dG, dh, dc = out.bufs
    _k.lstm_backward(inp(X, dt), inp(W, dt), inp(U, dt), inp(H, dt), inp(C, dt), inp(G, dt), inp(dH, dt),
                     *mask_args(mask, dt), dW, dU, db, dX, dX_out is not None, dG, dh, dc,
                     _packed(U, 4, dt), threads())
    out.back()


def gru_forward(X, W, U, b, b_h, reset_after, mask, H_out, G_out, HH_out, scratch):
    """GRU over every step; G_out (T, n, 3H) keeps z, r, n; HH_out the recurrent candidate term."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out, G_out, HH_out, scratch)
    _k.gru_forward(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), inp(b_h, dt), bool(reset_after),
                   *mask_args(mask, dt), *out.bufs, _packed(U, 3, dt), threads())
    out.back()


def gru_backward(X, W, U, H, G, HH, dH, reset_after, mask, dW_out, dU_out, db_out, db_h_out, dX_out,
                 dGx_buf, dGh_buf, dh_buf):
    """BPTT of gru_forward; ``dh_buf`` is (2, n, H): the carried gradient and a product scratch."""
    dt = dtype_of(dW_out)
    out = Outs(dt, dW_out, dU_out, db_out, db_h_out, dX_out, dGx_buf, dGh_buf, dh_buf)
    dW, dU, db, db_h, dX, dGx, dGh, dh = out.bufs
    _k.gru_backward(inp(X, dt), inp(W, dt), inp(U, dt), inp(H, dt), inp(G, dt), inp(HH, dt), inp(dH, dt),
                    bool(reset_after), *mask_args(mask, dt), dW, dU, db, db_h, dX, dX_out is not None, dGx, dGh,
                    dh, _packed(U, 3, dt), threads())
    out.back()


def lstm_infer(X, W, U, b, mask, H_out, C_buf, G_buf):
    """LSTM forward keeping only h and c (csrc/rnn_infer.pxi): H_out (T, n, H) every step's h, or
    (1, n, H) the last one; C_buf (n, H) ends as the last cell state; G_buf (2, n, 4H) gate scratch."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out, C_buf)
    G = G_buf[0] if isinstance(G_buf, np.ndarray) and G_buf.ndim == 3 and G_buf.dtype == dt \
        and G_buf[0].flags.c_contiguous else np.empty(G_buf.shape[1:], dt)  # scratch: never copied back
    _k.lstm_infer(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), *mask_args(mask, dt), *out.bufs, G, threads())
    out.back()


def gru_infer(X, W, U, b, b_h, reset_after, mask, H_out, G_buf):
    """GRU forward keeping only h (csrc/rnn_infer.pxi): H_out (T, n, H) every step's h, or (1, n, H) the
    last one. ``G_buf`` is not used: the kernel's scratch is one L2 tile per thread, allocated per call."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out)
    _k.gru_infer(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), inp(b_h, dt), bool(reset_after),
                 *mask_args(mask, dt), *out.bufs, threads())
    out.back()


def simple_rnn_infer(X, W, U, b, mask, H_out, G_buf):
    """SimpleRNN forward keeping only h (csrc/rnn_infer.pxi): H_out (T, n, H) every step's h, or (1, n, H)
    the last one. ``G_buf`` is not used (per-thread tile scratch, as gru_infer)."""
    dt = dtype_of(H_out)
    out = Outs(dt, H_out)
    _k.simple_rnn_infer(inp(X, dt), inp(W, dt), inp(U, dt), inp(b, dt), *mask_args(mask, dt), *out.bufs,
                        threads())
    out.back()
