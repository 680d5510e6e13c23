"""Reference convolution kernels in numpy: im2col and col2im, the contract of the ``conv`` family.

A 2-D convolution (cross-correlation, as Keras and PyTorch) of NHWC images is
one GEMM on unfolded patches: ``cols @ W.reshape(kh*kw*C, F)``, where
``cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c]``
(zero where the index falls into the padding). The layer runs that GEMM with
the ``dense`` kernels; these ops only move data.

Conventions: ``X (n, H, W, C)``, ``cols (n, Ho, Wo, kh*kw*C)``; ``Ho, Wo``
are read from the shape of ``cols``; ``ph, pw`` are the top and left padding
(bottom and right padding are implied by ``Ho, Wo``). ``col2im`` is the
adjoint of ``im2col``: it overwrites ``dX_out`` with the sum of every patch
entry's gradient at the input position it came from.
"""
import numpy as np


def _spans(n_out, stride, pad, k_index, size):
    """Output positions ``o0 <= o < o1`` whose input index ``o*stride - pad + k_index`` is in [0, size),
    and the input index of ``o0``."""
    first = k_index - pad
    o0 = max(0, (-first + stride - 1) // stride)
    o1 = min(n_out, (size - 1 - first) // stride + 1) if size - 1 - first >= 0 else 0
    return o0, max(o0, o1), o0 * stride + first


def im2col(X, kh, kw, sh, sw, ph, pw, cols_out):
    """cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c], 0 in the padding."""
    n, H, W, C = X.shape
    Ho, Wo = cols_out.shape[1], cols_out.shape[2]
    cols_out[...] = 0
    for i in range(kh):
        h0, h1, hi = _spans(Ho, sh, ph, i, H)
        for j in range(kw):
            w0, w1, wi = _spans(Wo, sw, pw, j, W)
            if h1 > h0 and w1 > w0:
                k0 = (i * kw + j) * C
                cols_out[:, h0:h1, w0:w1, k0:k0 + C] = \
                    X[:, hi:hi + (h1 - h0 - 1) * sh + 1:sh, wi:wi + (w1 - w0 - 1) * sw + 1:sw, :]


def col2im(cols, kh, kw, sh, sw, ph, pw, dX_out):
    """dX[n, h, w, c] = sum of cols[n, ho, wo, (i*kw + j)*C + c] over the patches that read X[n, h, w, c]."""
    n, H, W, C = dX_out.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    acc = np.zeros(dX_out.shape, np.result_type(dX_out.dtype, cols.dtype))
    for i in range(kh):
        h0, h1, hi = _spans(Ho, sh, ph, i, H)
        for j in range(kw):
            w0, w1, wi = _spans(Wo, sw, pw, j, W)
            if h1 > h0 and w1 > w0:
                k0 = (i * kw + j) * C
                acc[:, hi:hi + (h1 - h0 - 1) * sh + 1:sh, wi:wi + (w1 - w0 - 1) * sw + 1:sw, :] += \
                    cols[:, h0:h1, w0:w1, k0:k0 + C]
    dX_out[...] = acc
