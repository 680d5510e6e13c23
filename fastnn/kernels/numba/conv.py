"""Numba im2col / col2im; contracts in :mod:`fastnn.kernels.reference.conv`.

Plain loops (the layer's GEMM goes to BLAS through the ``dense`` kernels);
each patch row ``j = 0..kw-1`` of a window is ``kw*C`` contiguous input
values, copied as one run. Nothing is allocated.
"""
from numba import njit

from ._common import OPTS


@njit(**OPTS)
def im2col(X, kh, kw, sh, sw, ph, pw, cols_out):
    """cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c], 0 in the padding."""
    n, H, W, C = X.shape
    Ho, Wo = cols_out.shape[1], cols_out.shape[2]
    zero = cols_out.dtype.type(0)
    for b in range(n):
        for ho in range(Ho):
            for wo in range(Wo):
                dst = cols_out[b, ho, wo]
                for i in range(kh):
                    h = ho * sh - ph + i
                    for j in range(kw):
                        w = wo * sw - pw + j
                        k0 = (i * kw + j) * C
                        if 0 <= h < H and 0 <= w < W:
                            src = X[b, h, w]
                            for c in range(C):
                                dst[k0 + c] = src[c]
                        else:
                            for c in range(C):
                                dst[k0 + c] = zero


@njit(**OPTS)
def col2im(cols, kh, kw, sh, sw, ph, pw, dX_out):
    """dX[n, h, w, c] = sum of cols[n, ho, wo, (i*kw + j)*C + c] over the patches that read X[n, h, w, c]."""
    n, H, W, C = dX_out.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    zero = dX_out.dtype.type(0)
    for b in range(n):
        img = dX_out[b]
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    img[h, w, c] = zero
        for ho in range(Ho):
            for wo in range(Wo):
                src = cols[b, ho, wo]
                for i in range(kh):
                    h = ho * sh - ph + i
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = wo * sw - pw + j
                        if w < 0 or w >= W:
                            continue
                        k0 = (i * kw + j) * C
                        dst = img[h, w]
                        for c in range(C):
                            dst[c] += src[k0 + c]
