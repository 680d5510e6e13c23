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


def _conv1ch_check(X, sh, ph, pw, Ho, Wo):
    """The conv1ch ops' common contract: one input channel, stride (sh, 1), a non-empty output."""
    if X.ndim != 4 or X.shape[3] != 1:
        raise ValueError(f"conv1ch: X must be (n, H, W, 1); got shape {X.shape}")
    if sh < 1 or ph < 0 or pw < 0 or Ho < 1 or Wo < 1:
        raise ValueError(f"conv1ch: need sh >= 1, ph, pw >= 0 and a non-empty output; got sh={sh}, ph={ph}, "
                         f"pw={pw}, output {Ho}x{Wo}")


def _conv1ch_cols(X, kh, kw, sh, ph, pw, Ho, Wo):
    cols = np.empty((X.shape[0], Ho, Wo, kh * kw), np.result_type(X.dtype, np.float32))
    im2col(X, kh, kw, sh, 1, ph, pw, cols)
    return cols.reshape(-1, kh * kw)


def conv1ch_forward(X, W, b, sh, ph, pw, relu, Z_out, A_out):
    """Z = X (n, H, W, 1) cross-correlated with W (kh, kw, 1, F), stride (sh, 1), zero padding (ph, pw
    top / left) + b (None: none); A_out = max(Z, 0) if relu else Z (None: not written).

    The one-channel convolution the compiled conv rows run directly, without im2col
    (``csrc/conv_direct.pxi``); here it is the im2col GEMM.
    """
    kh, kw, F = W.shape[0], W.shape[1], W.shape[3]
    n, Ho, Wo = Z_out.shape[0], Z_out.shape[1], Z_out.shape[2]
    _conv1ch_check(X, sh, ph, pw, Ho, Wo)
    if W.shape[2] != 1 or n != X.shape[0] or Z_out.shape[3] != F or (b is not None and b.shape != (F,)) \
            or (A_out is not None and A_out.shape != Z_out.shape):
        raise ValueError(f"conv1ch_forward: W {W.shape}, b, Z_out {Z_out.shape} or A_out do not fit X {X.shape}")
    Z = _conv1ch_cols(X, kh, kw, sh, ph, pw, Ho, Wo) @ W.reshape(kh * kw, F)
    if b is not None:
        Z = Z + b
    Z_out[...] = Z.reshape(Z_out.shape)
    if A_out is not None:
        A_out[...] = np.maximum(Z_out, 0) if relu else Z_out


def conv1ch_weight_grad(X, dZ, sh, ph, pw, dW_out):
    """dW[i, j, 0, f] = sum over n, ho, wo of X[n, ho*sh - ph + i, wo - pw + j, 0] * dZ[n, ho, wo, f]
    (zero in the padding), X (n, H, W, 1), dZ (n, Ho, Wo, F), dW_out (kh, kw, 1, F)."""
    kh, kw, F = dW_out.shape[0], dW_out.shape[1], dW_out.shape[3]
    n, Ho, Wo = dZ.shape[0], dZ.shape[1], dZ.shape[2]
    _conv1ch_check(X, sh, ph, pw, Ho, Wo)
    if dW_out.shape[2] != 1 or n != X.shape[0] or dZ.shape[3] != F:
        raise ValueError(f"conv1ch_weight_grad: dZ {dZ.shape} or dW_out {dW_out.shape} do not fit X {X.shape}")
    dW_out[...] = (_conv1ch_cols(X, kh, kw, sh, ph, pw, Ho, Wo).T @ dZ.reshape(-1, F)).reshape(dW_out.shape)
