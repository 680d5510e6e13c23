"""Slow loop-level oracles that deliberately do not share the fast algorithms (after stumpy's naive.py).

The numpy reference backend computes a convolution as im2col + GEMM, like the
compiled ones; the functions here compute every output element by its
definition, in float64, with padding handled by index tests (no padded
copy, no unfolding), so an error shared by im2col and its users shows up.
"""
import math

import numpy as np


def same_padding(size, k, stride):
    """Keras 'same' padding of one axis: (output size, padding before)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2


def _geometry(H, W, kh, kw, sh, sw, padding):
    if padding == "valid":
        return (H - kh) // sh + 1, (W - kw) // sw + 1, 0, 0
    Ho, ph = same_padding(H, kh, sh)
    Wo, pw = same_padding(W, kw, sw)
    return Ho, Wo, ph, pw


def conv2d(X, W, b, strides=(1, 1), padding="valid"):
    """Cross-correlation of NHWC images ``X`` with an HWIO kernel ``W`` plus bias ``b``, element by element."""
    n, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    sh, sw = strides
    Ho, Wo, ph, pw = _geometry(H, Wd, kh, kw, sh, sw, padding)
    out = np.zeros((n, Ho, Wo, F))
    for s in range(n):
        for ho in range(Ho):
            for wo in range(Wo):
                for f in range(F):
                    acc = 0.0 if b is None else float(b[f])
                    for i in range(kh):
                        h = ho * sh - ph + i
                        if not 0 <= h < H:
                            continue
                        for j in range(kw):
                            w = wo * sw - pw + j
                            if not 0 <= w < Wd:
                                continue
                            for c in range(C):
                                acc += float(X[s, h, w, c]) * float(W[i, j, c, f])
                    out[s, ho, wo, f] = acc
    return out


def pool2d(X, pool, strides, padding="valid", kind="max"):
    """Max or average pooling of NHWC images, window by window (padding ignored, Keras semantics)."""
    n, H, Wd, C = X.shape
    kh, kw = pool
    sh, sw = strides
    Ho, Wo, ph, pw = _geometry(H, Wd, kh, kw, sh, sw, padding)
    out = np.zeros((n, Ho, Wo, C))
    for s in range(n):
        for ho in range(Ho):
            for wo in range(Wo):
                for c in range(C):
                    vals = [float(X[s, h, w, c])
                            for h in range(ho * sh - ph, ho * sh - ph + kh) if 0 <= h < H
                            for w in range(wo * sw - pw, wo * sw - pw + kw) if 0 <= w < Wd]
                    out[s, ho, wo, c] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return out
