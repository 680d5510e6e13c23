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


def _c4(a, dt):
    return np.ascontiguousarray(a, dtype=dt)


def conv1ch_forward(X, W, b, sh, ph, pw, relu, Z_out, A_out):
    """Z = X (n, H, W, 1) cross-correlated with W (kh, kw, 1, F), stride (sh, 1), zero padding (ph, pw
    top / left) + b (None: none); A_out = max(Z, 0) if relu else Z (None: not written).
    ``_k.conv1ch_forward`` (csrc/conv_direct.pxi): the direct kernel of the compiled conv rows."""
    buf, dest = _io(Z_out, Z_out.dtype)
    dt = buf.dtype
    abuf, adest = (None, None) if A_out is None else _io(A_out, dt)
    _k.conv1ch_forward(_c4(X, dt), _c4(W, dt), None if b is None else _c4(b, dt), sh, ph, pw, bool(relu), buf, abuf)
    _back(buf, dest)
    if abuf is not None:
        _back(abuf, adest)


def conv1ch_weight_grad(X, dZ, sh, ph, pw, dW_out):
    """dW[i, j, 0, f] = sum over n, ho, wo of X[n, ho*sh - ph + i, wo - pw + j, 0] * dZ[n, ho, wo, f]
    (zero in the padding). ``_k.conv1ch_weight_grad`` (csrc/conv_direct.pxi)."""
    buf, dest = _io(dW_out, dW_out.dtype)
    _k.conv1ch_weight_grad(_c4(X, buf.dtype), _c4(dZ, buf.dtype), sh, ph, pw, buf)
    _back(buf, dest)
