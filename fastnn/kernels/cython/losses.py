"""Cython losses: the fused-loss switch ``_loss_fb``, ``_count_correct`` and the extra
losses ``_mae_fb`` / ``_huber_fb`` / ``_focal_fb`` (csrc/losses.pxi)."""
import numpy as np

from ._adapt import _back, _fast_path, _in, _k, _out


@_fast_path(_k.loss_forward_backward)
def loss_forward_backward(loss, out, target, scale, dout):
    """Sum over rows of the per-sample loss; write d(scale*sum)/d(out) into dout (see the reference)."""
    buf, dest = _out(dout)
    dt = buf.dtype
    total = _k.loss_forward_backward(loss, _in(out, dt), _in(target, dt), scale, buf)
    _back(buf, dest)
    return total


@_fast_path(_k.count_correct)
def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    out = _in(out)
    return _k.count_correct(loss, out, _in(target, out.dtype))


def _contig(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


@_fast_path(_k.mae_forward_backward)
def mae_forward_backward(out, target, scale, dout):
    """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k."""
    buf = dout if dout.flags.c_contiguous and dout.flags.writeable else np.empty(dout.shape, dout.dtype)
    total = _k.mae_forward_backward(_contig(out, buf.dtype), _contig(target, buf.dtype), scale, buf)
    _back(buf, dout if buf is not dout else None)
    return total


@_fast_path(_k.huber_forward_backward)
def huber_forward_backward(out, target, delta, scale, dout):
    """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
    buf = dout if dout.flags.c_contiguous and dout.flags.writeable else np.empty(dout.shape, dout.dtype)
    total = _k.huber_forward_backward(_contig(out, buf.dtype), _contig(target, buf.dtype), float(delta),
                                      scale, buf)
    _back(buf, dout if buf is not dout else None)
    return total


@_fast_path(_k.focal_forward_backward)
def focal_forward_backward(out, target, gamma, alpha, scale, dout):
    """sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout."""
    buf = dout if dout.flags.c_contiguous and dout.flags.writeable else np.empty(dout.shape, dout.dtype)
    total = _k.focal_forward_backward(_contig(out, buf.dtype), _contig(target, buf.dtype), float(gamma),
                                      _contig(alpha, np.float64), scale, buf)
    _back(buf, dout if buf is not dout else None)
    return total
