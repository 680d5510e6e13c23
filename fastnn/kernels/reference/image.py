"""Reference image kernels (numpy) for augmentation: whole-pixel shifts and bilinear rotations.

Whole groups of images that share a shift or an angle are moved per slice /
gather (no per-image Python loop). The numba kernels do the same arithmetic in
the same order, so their results are identical.
"""
import numpy as np


def _group(codes, n_codes):
    """Sample indices grouped by code: ``[(code, rows), ...]`` for the codes present."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_codes)
    ends = np.cumsum(counts)
    return [(int(c), order[ends[c] - counts[c]:ends[c]]) for c in np.flatnonzero(counts)]


def image_shift(src, dst, dy, dx, H, W, fill):
    """``dst[i] = src[i]`` moved down ``dy[i]`` and right ``dx[i]`` pixels; uncovered pixels = ``fill``."""
    s3 = src.reshape(-1, H, W)
    d3 = dst.reshape(-1, H, W)
    span = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    side = 2 * span + 1
    dst[...] = fill
    for code, rows in _group((dy + span) * side + (dx + span), side * side):
        a, b = divmod(code, side)
        a, b = a - span, b - span
        if abs(a) >= H or abs(b) >= W:
            continue  # moved out of the frame entirely
        d3[rows, max(a, 0):H + min(a, 0), max(b, 0):W + min(b, 0)] = \
            s3[rows, max(-a, 0):H - max(a, 0), max(-b, 0):W - max(b, 0)]


def image_rotate(src, dst, codes, maps, scratch):
    """``dst[i] = sum_k maps.weight[c, k] * src[i, maps.index[c, k]] + maps.fill_term[c]`` with ``c = codes[i]``."""
    for code, rows in _group(codes, len(maps.angles)):
        if maps.angles[code] == 0.0:
            dst[rows] = src[rows]
            continue
        g = src[rows]
        m = len(rows)
        acc, tap = scratch[0][:m], scratch[1][:m]
        index, weight = maps.index[code], maps.weight[code]
        np.take(g, index[0], axis=1, out=acc)
        acc *= weight[0]
        for k in range(1, 4):
            np.take(g, index[k], axis=1, out=tap)
            tap *= weight[k]
            acc += tap
        if maps.has_fill:
            acc += maps.fill_term[code]
        dst[rows] = acc

