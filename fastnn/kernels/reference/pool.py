"""Reference pooling kernels in numpy (max and average over windows of NHWC images), the ``pool`` contract.

Conventions: ``X (n, H, W, C)``, ``out (n, Ho, Wo, C)`` (``Ho, Wo`` read from
its shape); window ``(ho, wo)`` covers rows ``ho*sh - ph .. + kh - 1`` and
columns ``wo*sw - pw .. + kw - 1``; positions in the padding are ignored
(Keras: a max over the valid entries, an average over the valid entries only).
Every window must hold at least one valid entry (the layers guarantee it).

Max pooling records the winner of each window in ``argmax_out`` (int64, the
flat spatial index ``h*W + w`` in the input image; the first maximum in
row-major window order wins), so the backward pass routes each gradient to
exactly one input: ``dX[n, h, w, c] = sum of dout over the windows h*W + w won``.
"""
import numpy as np


def _window(o, stride, pad, k, size):
    lo = o * stride - pad
    return max(lo, 0), min(lo + k, size)


def maxpool_forward(X, kh, kw, sh, sw, ph, pw, out, argmax_out):
    """out = max of each window (padding ignored); argmax_out = flat index h*W + w of the first maximum."""
    n, H, W, C = X.shape
    Ho, Wo = out.shape[1], out.shape[2]
    flat = np.arange(H * W).reshape(H, W)
    for ho in range(Ho):
        h0, h1 = _window(ho, sh, ph, kh, H)
        for wo in range(Wo):
            w0, w1 = _window(wo, sw, pw, kw, W)
            win = X[:, h0:h1, w0:w1, :].reshape(n, -1, C)
            k = np.argmax(win, axis=1)                      # first maximum (NaN counts as the maximum)
            out[:, ho, wo, :] = np.take_along_axis(win, k[:, None, :], axis=1)[:, 0, :]
            argmax_out[:, ho, wo, :] = flat[h0:h1, w0:w1].reshape(-1)[k]


def maxpool_backward(dout, argmax, dX_out):
    """dX = 0, then dX[n, argmax // W, argmax % W, c] += dout[n, ho, wo, c]."""
    n, H, W, C = dX_out.shape
    acc = np.zeros((n, H * W, C), np.float64)
    rows = np.arange(n)[:, None, None, None]
    chans = np.arange(C)[None, None, None, :]
    np.add.at(acc, (np.broadcast_to(rows, argmax.shape), argmax, np.broadcast_to(chans, argmax.shape)),
              dout.astype(np.float64))
    dX_out[...] = acc.reshape(dX_out.shape)


def avgpool_forward(X, kh, kw, sh, sw, ph, pw, out):
    """out = mean of each window over its valid (non-padding) entries."""
    Ho, Wo = out.shape[1], out.shape[2]
    H, W = X.shape[1], X.shape[2]
    for ho in range(Ho):
        h0, h1 = _window(ho, sh, ph, kh, H)
        for wo in range(Wo):
            w0, w1 = _window(wo, sw, pw, kw, W)
            out[:, ho, wo, :] = X[:, h0:h1, w0:w1, :].astype(np.float64).mean(axis=(1, 2))


def avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dX_out):
    """dX = sum over the windows holding each input of dout / (valid entries of that window)."""
    Ho, Wo = dout.shape[1], dout.shape[2]
    H, W = dX_out.shape[1], dX_out.shape[2]
    acc = np.zeros(dX_out.shape, np.float64)
    for ho in range(Ho):
        h0, h1 = _window(ho, sh, ph, kh, H)
        for wo in range(Wo):
            w0, w1 = _window(wo, sw, pw, kw, W)
            acc[:, h0:h1, w0:w1, :] += dout[:, ho, wo, None, None, :].astype(np.float64) / ((h1 - h0) * (w1 - w0))
    dX_out[...] = acc
