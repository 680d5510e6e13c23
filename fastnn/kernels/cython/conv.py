"""Cython im2col / col2im (``_im2col_image`` / ``_col2im_image`` in csrc/conv.pxi, OpenMP over images).

Contracts: :mod:`fastnn.kernels.reference.conv`. The extension takes C-contiguous
4-D buffers of one float type; anything else is adapted (copied in, and out).
"""
import numpy as np

from ._adapt import _back, _fast_path, _k


def _io(a, dt):
    if a.dtype == dt and a.flags.c_contiguous and a.flags.writeable:
        return a, None
    return np.ascontiguousarray(a, dtype=dt), a


@_fast_path(_k.im2col)
def im2col(X, kh, kw, sh, sw, ph, pw, cols_out):
    """cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c], 0 in the padding."""
    buf, dest = _io(cols_out, cols_out.dtype)
    _k.im2col(np.ascontiguousarray(X, dtype=buf.dtype), kh, kw, sh, sw, ph, pw, buf)
    _back(buf, dest)


@_fast_path(_k.col2im)
def col2im(cols, kh, kw, sh, sw, ph, pw, dX_out):
    """dX[n, h, w, c] = sum of cols[n, ho, wo, (i*kw + j)*C + c] over the patches that read X[n, h, w, c]."""
    buf, dest = _io(dX_out, dX_out.dtype)
    _k.col2im(np.ascontiguousarray(cols, dtype=buf.dtype), kh, kw, sh, sw, ph, pw, buf)
    _back(buf, dest)
