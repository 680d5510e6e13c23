"""Reference normalization kernels (batch norm, layer norm) in numpy: the contract of the family.

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
    The ``layernorm_rows_*`` pair is what the plan rows run: forward keeps each
    row's ``mean`` and ``inv_std`` in float64 (two numbers a row) instead of
    Xhat (k values), and backward recomputes Xhat from the row input ``X``.

``dX_out`` may be None (first layer: no input gradient needed).
"""
import numpy as np


def batchnorm_forward(X, gamma, beta, eps, training, running_mean, running_var, momentum,
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


def batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
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


def layernorm_forward(X, gamma, beta, eps, Xhat_out, inv_std_out, out):
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    X64 = X.astype(np.float64)
    mean = X64.mean(axis=1, keepdims=True)
    var = ((X64 - mean) ** 2).mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (X64 - mean) * inv_std
    inv_std_out[...] = inv_std[:, 0]
    Xhat_out[...] = xhat
    out[...] = gamma.astype(np.float64) * xhat + beta


def layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
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


def layernorm_rows_forward(X, gamma, beta, eps, mean_out, inv_std_out, out):
    """layernorm_forward keeping each row's float64 mean and inv_std (``mean_out``, ``inv_std_out``) instead of Xhat."""
    X64 = X.astype(np.float64)
    mean_out[...] = X64.mean(axis=1)
    inv_std_out[...] = 1.0 / np.sqrt(((X64 - mean_out[:, None]) ** 2).mean(axis=1) + eps)
    out[...] = gamma.astype(np.float64) * ((X64 - mean_out[:, None]) * inv_std_out[:, None]) + beta


def layernorm_rows_backward(dout, X, mean, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """layernorm_backward with Xhat = (X - mean) * inv_std per row (float64), recomputed from the row input."""
    xhat = (X.astype(np.float64) - mean[:, None]) * inv_std[:, None]
    layernorm_backward(dout, xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out)
