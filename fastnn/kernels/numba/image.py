"""Numba image kernels for augmentation: a compiled loop over the images.

Same arithmetic in the same order as :mod:`fastnn.kernels.reference.image`,
so the results are identical.
"""
from numba import njit

from ._common import OPTS


@njit(**OPTS)
def shift_kernel(src, dst, dy, dx, H, W, fill):
    """dst[i, r, c] = src[i, r - dy[i], c - dx[i]], or fill outside the frame."""
    for i in range(src.shape[0]):
        a, b = dy[i], dx[i]
        s, d = src[i], dst[i]
        for r in range(H):
            sr = r - a
            if sr < 0 or sr >= H:
                for c in range(W):
                    d[r * W + c] = fill
                continue
            for c in range(W):
                sc = c - b
                d[r * W + c] = s[sr * W + sc] if 0 <= sc < W else fill

@njit(**OPTS)
def rotate_kernel(src, dst, codes, index, weight, fill_term, has_fill):
    """dst[i, p] = sum_k weight[c, k, p] * src[i, index[c, k, p]] (+ fill_term[c, p]), c = codes[i]."""
    m = src.shape[1]
    for i in range(src.shape[0]):
        c = codes[i]
        x, out = src[i], dst[i]
        i0, i1, i2, i3 = index[c, 0], index[c, 1], index[c, 2], index[c, 3]
        w0, w1, w2, w3 = weight[c, 0], weight[c, 1], weight[c, 2], weight[c, 3]
        if has_fill:
            f = fill_term[c]
            for p in range(m):
                out[p] = x[i0[p]] * w0[p] + x[i1[p]] * w1[p] + x[i2[p]] * w2[p] + x[i3[p]] * w3[p] + f[p]
        else:
            for p in range(m):
                out[p] = x[i0[p]] * w0[p] + x[i1[p]] * w1[p] + x[i2[p]] * w2[p] + x[i3[p]] * w3[p]


def image_shift(src, dst, dy, dx, H, W, fill):
    """``dst[i] = src[i]`` moved down ``dy[i]`` and right ``dx[i]`` pixels; uncovered pixels = ``fill``."""
    shift_kernel(src, dst, dy, dx, H, W, float(fill))


def image_rotate(src, dst, codes, maps, scratch):
    """``dst[i] = sum_k maps.weight[c, k] * src[i, maps.index[c, k]] + maps.fill_term[c]`` with ``c = codes[i]``."""
    rotate_kernel(src, dst, codes, maps.index, maps.weight, maps.fill_term, maps.has_fill)
