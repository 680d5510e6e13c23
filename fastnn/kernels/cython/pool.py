"""Cython max and average pooling (csrc/pool.pxi, OpenMP over images).

Contracts: :mod:`fastnn.kernels.reference.pool`. The extension takes C-contiguous
4-D buffers (float32/float64, int64 argmax); anything else is adapted (copied in, and out).
"""
import numpy as np

from ._adapt import _back, _fast_path, _k


def _io(a, dt):
    if a.dtype == dt and a.flags.c_contiguous and a.flags.writeable:
        return a, None
    return np.ascontiguousarray(a, dtype=dt), a


@_fast_path(_k.maxpool_forward)
def maxpool_forward(X, kh, kw, sh, sw, ph, pw, out, argmax_out):
    """out = max of each window (padding ignored); argmax_out = flat index h*W + w of the first maximum."""
    buf, dest = _io(out, out.dtype)
    abuf, adest = _io(argmax_out, np.int64)
    _k.maxpool_forward(np.ascontiguousarray(X, dtype=buf.dtype), kh, kw, sh, sw, ph, pw, buf, abuf)
    _back(buf, dest)
    _back(abuf, adest)


@_fast_path(_k.maxpool_backward)
def maxpool_backward(dout, argmax, dX_out):
    """dX = 0, then dX[n, argmax // W, argmax % W, c] += dout[n, ho, wo, c]."""
    buf, dest = _io(dX_out, dX_out.dtype)
    _k.maxpool_backward(np.ascontiguousarray(dout, dtype=buf.dtype), np.ascontiguousarray(argmax, np.int64), buf)
    _back(buf, dest)


@_fast_path(_k.avgpool_forward)
def avgpool_forward(X, kh, kw, sh, sw, ph, pw, out):
    """out = mean of each window over its valid (non-padding) entries."""
    buf, dest = _io(out, out.dtype)
    _k.avgpool_forward(np.ascontiguousarray(X, dtype=buf.dtype), kh, kw, sh, sw, ph, pw, buf)
    _back(buf, dest)


@_fast_path(_k.avgpool_backward)
def avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dX_out):
    """dX = sum over the windows holding each input of dout / (valid entries of that window)."""
    buf, dest = _io(dX_out, dX_out.dtype)
    _k.avgpool_backward(np.ascontiguousarray(dout, dtype=buf.dtype), kh, kw, sh, sw, ph, pw, buf)
    _back(buf, dest)
