"""Numba max and average pooling; contracts in :mod:`fastnn.kernels.reference.pool`.

Window loops with the channels innermost (contiguous in NHWC); nothing is allocated.
"""
from numba import njit

from ._common import OPTS


@njit(**OPTS)
def maxpool_forward(X, kh, kw, sh, sw, ph, pw, out, argmax_out):
    """out = max of each window (padding ignored); argmax_out = flat index h*W + w of the first maximum."""
    n, H, W, C = X.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for b in range(n):
        for ho in range(Ho):
            h0 = max(ho * sh - ph, 0)
            h1 = min(ho * sh - ph + kh, H)
            for wo in range(Wo):
                w0 = max(wo * sw - pw, 0)
                w1 = min(wo * sw - pw + kw, W)
                o = out[b, ho, wo]
                a = argmax_out[b, ho, wo]
                first = X[b, h0, w0]
                for c in range(C):
                    o[c] = first[c]
                    a[c] = h0 * W + w0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        x = X[b, h, w]
                        for c in range(C):
                            # NaN wins (as numpy's argmax): it is kept once it is the maximum
                            if x[c] > o[c] or (x[c] != x[c] and o[c] == o[c]):
                                o[c] = x[c]
                                a[c] = h * W + w


@njit(**OPTS)
def maxpool_backward(dout, argmax, dX_out):
    """dX = 0, then dX[n, argmax // W, argmax % W, c] += dout[n, ho, wo, c]."""
    n, H, W, C = dX_out.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    zero = dX_out.dtype.type(0)
    for b in range(n):
        img = dX_out[b]
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    img[h, w, c] = zero
        for ho in range(Ho):
            for wo in range(Wo):
                d = dout[b, ho, wo]
                a = argmax[b, ho, wo]
                for c in range(C):
                    k = a[c]
                    img[k // W, k % W, c] += d[c]


@njit(**OPTS)
def avgpool_forward(X, kh, kw, sh, sw, ph, pw, out):
    """out = mean of each window over its valid (non-padding) entries."""
    n, H, W, C = X.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for b in range(n):
        for ho in range(Ho):
            h0 = max(ho * sh - ph, 0)
            h1 = min(ho * sh - ph + kh, H)
            for wo in range(Wo):
                w0 = max(wo * sw - pw, 0)
                w1 = min(wo * sw - pw + kw, W)
                o = out[b, ho, wo]
                inv = 1.0 / ((h1 - h0) * (w1 - w0))
                for c in range(C):
                    s = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s += X[b, h, w, c]
                    o[c] = s * inv


@njit(**OPTS)
def avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dX_out):
    """dX = sum over the windows holding each input of dout / (valid entries of that window)."""
    n, H, W, C = dX_out.shape
    Ho, Wo = dout.shape[1], dout.shape[2]
    zero = dX_out.dtype.type(0)
    for b in range(n):
        img = dX_out[b]
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    img[h, w, c] = zero
        for ho in range(Ho):
            h0 = max(ho * sh - ph, 0)
            h1 = min(ho * sh - ph + kh, H)
            for wo in range(Wo):
                w0 = max(wo * sw - pw, 0)
                w1 = min(wo * sw - pw + kw, W)
                d = dout[b, ho, wo]
                inv = 1.0 / ((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        x = img[h, w]
                        for c in range(C):
                            x[c] += d[c] * inv
