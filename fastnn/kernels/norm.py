"""Normalization kernels (batch norm, layer norm): a numpy reference and Numba versions, same signatures.

DESIGN assigns normalization to Numba, so the ``numba`` and ``cython``
backends both run the Numba kernels; the ``reference`` backend runs numpy.
Pick a set with :func:`kernels_for` (a backend name) and call its functions;
:data:`REFERENCE` and :data:`NUMBA` are the two sets.

Conventions: ``X (n, k)``; batch norm normalises every column over the rows
of a batch, layer norm every row over its columns. Statistics are
accumulated in float64 for both dtypes (a float32 variance over a batch
drifts otherwise); outputs are written into caller-owned buffers of ``X``'s
dtype and nothing is allocated. ``Xhat`` is the normalised input and
``inv_std = 1 / sqrt(var + eps)``, kept by the forward pass for the backward.

Batch norm
    training: ``mean, var`` (biased) of each column over the batch;
    ``running = momentum * running + (1 - momentum) * stat`` with the
    *unbiased* batch variance ``var * n / (n - 1)`` (PyTorch's rule; with
    ``momentum = 0.9`` as Keras's default). A batch of one row leaves the
    running variance unchanged (one sample says nothing about spread) and
    gives ``Xhat = 0``. Inference: ``mean, var`` are the running statistics.
    ``out = gamma * Xhat + beta``.
    backward (training statistics): ``dbeta = sum_i dout``,
    ``dgamma = sum_i dout * Xhat``,
    ``dX = gamma * inv_std / n * (n * dout - dbeta - Xhat * dgamma)``.

Layer norm
    the same per row (statistics over the ``k`` columns), gamma/beta per column:
    ``g = dout * gamma``,
    ``dX = inv_std / k * (k * g - sum_j g - Xhat * sum_j g * Xhat)``.

``dX_out`` may be None (first layer: no input gradient needed).
"""
import math
from types import SimpleNamespace

import numpy as np

__all__ = ["REFERENCE", "NUMBA", "kernels_for"]


# --------------------------------------------------------------------------- numpy reference
def _ref_batchnorm_forward(X, gamma, beta, eps, training, running_mean, running_var, momentum,
                           Xhat_out, inv_std_out, out):
    """Xhat = (X - mean) / sqrt(var + eps), out = gamma * Xhat + beta; batch stats in training."""
    n = X.shape[0]
    if training:
        X64 = X.astype(np.float64)
        mean = X64.mean(axis=0)
        var = ((X64 - mean) ** 2).mean(axis=0)
        running_mean[...] = momentum * running_mean.astype(np.float64) + (1.0 - momentum) * mean
        if n > 1:
            running_var[...] = momentum * running_var.astype(np.float64) + (1.0 - momentum) * var * (n / (n - 1.0))
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (X.astype(np.float64) - mean) * inv_std
    inv_std_out[...] = inv_std
    Xhat_out[...] = xhat
    out[...] = gamma.astype(np.float64) * xhat + beta


def _ref_batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
    n = dout.shape[0]
    d = dout.astype(np.float64)
    xh = Xhat.astype(np.float64)
    dbeta = d.sum(axis=0)
    dgamma = (d * xh).sum(axis=0)
    dbeta_out[...] = dbeta
    dgamma_out[...] = dgamma
    if dX_out is not None:
        dX_out[...] = (gamma.astype(np.float64) * inv_std.astype(np.float64) / n) * (n * d - dbeta - xh * dgamma)


def _ref_layernorm_forward(X, gamma, beta, eps, Xhat_out, inv_std_out, out):
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    X64 = X.astype(np.float64)
    mean = X64.mean(axis=1, keepdims=True)
    var = ((X64 - mean) ** 2).mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (X64 - mean) * inv_std
    inv_std_out[...] = inv_std[:, 0]
    Xhat_out[...] = xhat
    out[...] = gamma.astype(np.float64) * xhat + beta


def _ref_layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    k = dout.shape[1]
    d = dout.astype(np.float64)
    xh = Xhat.astype(np.float64)
    dbeta_out[...] = d.sum(axis=0)
    dgamma_out[...] = (d * xh).sum(axis=0)
    if dX_out is not None:
        g = d * gamma.astype(np.float64)
        s1 = g.sum(axis=1, keepdims=True)
        s2 = (g * xh).sum(axis=1, keepdims=True)
        dX_out[...] = inv_std.astype(np.float64)[:, None] / k * (k * g - s1 - xh * s2)


REFERENCE = SimpleNamespace(
    NAME="reference",
    batchnorm_forward=_ref_batchnorm_forward,
    batchnorm_backward=_ref_batchnorm_backward,
    layernorm_forward=_ref_layernorm_forward,
    layernorm_backward=_ref_layernorm_backward,
)


# --------------------------------------------------------------------------- numba
def _build_numba():
    from numba import njit

    opts = dict(cache=True, nogil=True, error_model="numpy")

    @njit(**opts)
    def batchnorm_forward(X, gamma, beta, eps, training, running_mean, running_var, momentum,
                          Xhat_out, inv_std_out, out):
        """Xhat = (X - mean) / sqrt(var + eps), out = gamma * Xhat + beta; batch stats in training."""
        n, k = X.shape
        # Row-major passes (contiguous, 3x faster than column walks) need per-column float64
        # accumulators: a 2*k scratch, negligible next to the n*k passes.
        mean = np.zeros(k)
        inv = np.zeros(k)
        if training:
            for i in range(n):
                for j in range(k):
                    mean[j] += X[i, j]
            for j in range(k):
                mean[j] /= n
            for i in range(n):
                for j in range(k):
                    d = X[i, j] - mean[j]
                    inv[j] += d * d
            for j in range(k):
                ss = inv[j]
                running_mean[j] = momentum * running_mean[j] + (1.0 - momentum) * mean[j]
                if n > 1:
                    running_var[j] = momentum * running_var[j] + (1.0 - momentum) * (ss / (n - 1.0))
                inv[j] = 1.0 / math.sqrt(ss / n + eps)
        else:
            for j in range(k):
                mean[j] = running_mean[j]
                inv[j] = 1.0 / math.sqrt(float(running_var[j]) + eps)
        for j in range(k):
            inv_std_out[j] = inv[j]
        for i in range(n):
            for j in range(k):
                xh = (X[i, j] - mean[j]) * inv[j]
                Xhat_out[i, j] = xh
                out[i, j] = float(gamma[j]) * xh + float(beta[j])

    @njit(**opts)
    def _batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out, need_dX):
        n, k = dout.shape
        sb = np.zeros(k)
        sg = np.zeros(k)
        for i in range(n):
            for j in range(k):
                d = float(dout[i, j])
                sb[j] += d
                sg[j] += d * Xhat[i, j]
        for j in range(k):
            dbeta_out[j] = sb[j]
            dgamma_out[j] = sg[j]
        if need_dX:
            c = np.empty(k)
            for j in range(k):
                c[j] = float(gamma[j]) * float(inv_std[j]) / n
            for i in range(n):
                for j in range(k):
                    dX_out[i, j] = c[j] * (n * float(dout[i, j]) - sb[j] - Xhat[i, j] * sg[j])

    @njit(**opts)
    def batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
        """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
        if dX_out is None:
            _batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dout, False)
        else:
            _batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out, True)

    @njit(**opts)
    def layernorm_forward(X, gamma, beta, eps, Xhat_out, inv_std_out, out):
        """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
        n, k = X.shape
        for i in range(n):
            s = 0.0
            for j in range(k):
                s += X[i, j]
            mean = s / k
            ss = 0.0
            for j in range(k):
                d = X[i, j] - mean
                ss += d * d
            inv = 1.0 / math.sqrt(ss / k + eps)
            inv_std_out[i] = inv
            for j in range(k):
                xh = (X[i, j] - mean) * inv
                Xhat_out[i, j] = xh
                out[i, j] = float(gamma[j]) * xh + float(beta[j])

    @njit(**opts)
    def _layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out, need_dX):
        n, k = dout.shape
        zero = dgamma_out.dtype.type(0)
        for j in range(k):
            dgamma_out[j] = zero
            dbeta_out[j] = zero
        for i in range(n):
            s1 = 0.0
            s2 = 0.0
            for j in range(k):
                d = float(dout[i, j])
                xh = float(Xhat[i, j])
                dbeta_out[j] += d
                dgamma_out[j] += d * xh
                g = d * float(gamma[j])
                s1 += g
                s2 += g * xh
            if need_dX:
                c = float(inv_std[i]) / k
                for j in range(k):
                    g = float(dout[i, j]) * float(gamma[j])
                    dX_out[i, j] = c * (k * g - s1 - Xhat[i, j] * s2)

    @njit(**opts)
    def layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
        """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
        if dX_out is None:
            _layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dout, False)
        else:
            _layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out, True)

    return SimpleNamespace(
        NAME="numba",
        batchnorm_forward=batchnorm_forward,
        batchnorm_backward=batchnorm_backward,
        layernorm_forward=layernorm_forward,
        layernorm_backward=layernorm_backward,
    )


try:
    NUMBA = _build_numba()
except ImportError:  # numba missing: every backend name falls back to the reference kernels
    NUMBA = None


def kernels_for(backend_name):
    """The kernel set for a backend name: ``'reference'`` → numpy, ``'numba'``/``'cython'`` → Numba."""
    if backend_name == "reference" or NUMBA is None:
        return REFERENCE
    return NUMBA
