"""Slow loop-level oracles that deliberately do not share the fast algorithms (after stumpy's tests/naive.py).

Convolution and pooling: the numpy reference backend computes a convolution as
im2col + GEMM, like the compiled ones; the functions here compute every output
element by its definition, in float64, with padding handled by index tests (no
padded copy, no unfolding), so an error shared by im2col and its users shows up.

Recurrent cells and attention: plain Python loops over samples, steps and units
with ``math`` functions: no whole-sequence GEMM, no time-major layout, no
vectorised gate math. Inputs are batch-major ``X (n, T, F)``; weights use
fastnn's layout (``W (F, g*H)``, ``U (H, g*H)``, gate blocks side by side). Keep
them small: they are O(n T H^2) Python operations.
"""
import math

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to every entry of ``x`` (changed in place, restored)."""
    g = np.zeros_like(x)
    for i in range(x.size):
        old = x.flat[i]
        x.flat[i] = old + eps
        fp = f()
        x.flat[i] = old - eps
        fm = f()
        x.flat[i] = old
        g.flat[i] = (fp - fm) / (2 * eps)
    return g


# --------------------------------------------------------------------------- convolution and pooling


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


# --------------------------------------------------------------------------- recurrent cells


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _affine(x, W, h, U, bias, col):
    """x . W[:, col] + h . U[:, col] + bias[col], one unit at a time."""
    s = bias[col]
    for f in range(len(x)):
        s += x[f] * W[f, col]
    for j in range(len(h)):
        s += h[j] * U[j, col]
    return s


def simple_rnn(X, W, U, b):
    """Hidden states (n, T, H) of h_t = tanh(x_t W + h_{t-1} U + b), h_{-1} = 0."""
    n, T, _ = X.shape
    k = U.shape[0]
    out = np.zeros((n, T, k))
    for s in range(n):
        h = [0.0] * k
        for t in range(T):
            h = [math.tanh(_affine(X[s, t], W, h, U, b, u)) for u in range(k)]
            out[s, t] = h
    return out


def lstm(X, W, U, b):
    """Hidden states (n, T, H) of an LSTM, gates i, f, g, o (PyTorch/Keras order), zero initial state."""
    n, T, _ = X.shape
    k = U.shape[0]
    out = np.zeros((n, T, k))
    for s in range(n):
        h, c = [0.0] * k, [0.0] * k
        for t in range(T):
            new_h, new_c = [], []
            for u in range(k):
                i = _sig(_affine(X[s, t], W, h, U, b, u))
                f = _sig(_affine(X[s, t], W, h, U, b, k + u))
                g = math.tanh(_affine(X[s, t], W, h, U, b, 2 * k + u))
                o = _sig(_affine(X[s, t], W, h, U, b, 3 * k + u))
                cu = f * c[u] + i * g
                new_c.append(cu)
                new_h.append(o * math.tanh(cu))
            h, c = new_h, new_c
            out[s, t] = h
    return out


def gru(X, W, U, b, b_h=None, reset_after=True):
    """Hidden states (n, T, H) of a GRU, gates z, r, h (Keras order), zero initial state.

    ``reset_after``: ``n = tanh(x W_h + b_h + r * (h U_h + bh_h))`` (Keras default, PyTorch);
    else ``n = tanh(x W_h + b_h + (r * h) U_h)``.
    """
    n, T, F = X.shape
    k = U.shape[0]
    zeros = np.zeros(3 * k)
    bh = zeros if b_h is None else b_h
    out = np.zeros((n, T, k))
    for s in range(n):
        h = [0.0] * k
        for t in range(T):
            x = X[s, t]
            z = [_sig(_affine(x, W, h, U, b, u) + bh[u]) for u in range(k)]
            r = [_sig(_affine(x, W, h, U, b, k + u) + bh[k + u]) for u in range(k)]
            new_h = []
            for u in range(k):
                col = 2 * k + u
                xin = b[col] + sum(x[f] * W[f, col] for f in range(F))
                if reset_after:
                    rec = bh[col] + sum(h[j] * U[j, col] for j in range(k))
                    cand = math.tanh(xin + r[u] * rec)
                else:
                    cand = math.tanh(xin + sum(r[j] * h[j] * U[j, col] for j in range(k)))
                new_h.append(z[u] * h[u] + (1 - z[u]) * cand)
            h = new_h
            out[s, t] = h
    return out


# --------------------------------------------------------------------------- attention


def self_attention(X, Wqkv, bqkv, Wo, bo, num_heads, causal=False):
    """Multi-head self-attention outputs (n, T, D), one sample, head, query and key at a time."""
    n, T, D = X.shape
    dk = D // num_heads
    out = np.zeros((n, T, D))
    for s in range(n):
        qkv = [[bqkv[c] + sum(X[s, t, f] * Wqkv[f, c] for f in range(D)) for c in range(3 * D)] for t in range(T)]
        heads = [[0.0] * D for _ in range(T)]
        for h in range(num_heads):
            cols = range(h * dk, (h + 1) * dk)
            for a in range(T):
                keys = range(a + 1) if causal else range(T)
                scores = [sum(qkv[a][c] * qkv[b][D + c] for c in cols) / math.sqrt(dk) for b in keys]
                top = max(scores)
                weights = [math.exp(v - top) for v in scores]
                total = sum(weights)
                for c in cols:
                    heads[a][c] = sum(w / total * qkv[b][2 * D + c] for w, b in zip(weights, keys))
        for t in range(T):
            for j in range(D):
                out[s, t, j] = bo[j] + sum(heads[t][c] * Wo[c, j] for c in range(D))
    return out
