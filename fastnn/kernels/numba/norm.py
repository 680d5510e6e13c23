"""Numba batch norm and layer norm; contracts in :mod:`fastnn.kernels.reference.norm`.

Statistics accumulate in float64 for both dtypes; nothing is allocated but
2*k float64 scratch per batch-norm call.
"""
import math

import numpy as np
from numba import njit

from ._common import OPTS


@njit(**OPTS)
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

@njit(**OPTS)
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

@njit(**OPTS)
def batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
    if dX_out is None:
        _batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dout, False)
    else:
        _batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out, True)

@njit(**OPTS)
def _row_stats(X, i, eps):
    """Row i's float64 mean and 1 / sqrt(var + eps) (two passes)."""
    k = X.shape[1]
    s = 0.0
    for j in range(k):
        s += X[i, j]
    mean = s / k
    ss = 0.0
    for j in range(k):
        d = X[i, j] - mean
        ss += d * d
    return mean, 1.0 / math.sqrt(ss / k + eps)


@njit(**OPTS)
def layernorm_forward(X, gamma, beta, eps, Xhat_out, inv_std_out, out):
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    n, k = X.shape
    for i in range(n):
        mean, inv = _row_stats(X, i, eps)
        inv_std_out[i] = inv
        for j in range(k):
            xh = (X[i, j] - mean) * inv
            Xhat_out[i, j] = xh
            out[i, j] = float(gamma[j]) * xh + float(beta[j])


@njit(**OPTS)
def layernorm_rows_forward(X, gamma, beta, eps, mean_out, inv_std_out, out):
    """layernorm_forward keeping each row's float64 mean and inv_std instead of Xhat."""
    n, k = X.shape
    for i in range(n):
        mean, inv = _row_stats(X, i, eps)
        mean_out[i] = mean
        inv_std_out[i] = inv
        for j in range(k):
            out[i, j] = float(gamma[j]) * ((X[i, j] - mean) * inv) + float(beta[j])


@njit(**OPTS)
def _layernorm_backward(dout, src, mean, inv_std, shifted, gamma, dgamma_out, dbeta_out, dX_out, need_dX):
    """Xhat = (src - mean) * inv_std per row when ``shifted``, else src itself."""
    n, k = dout.shape
    zero = dgamma_out.dtype.type(0)
    for j in range(k):
        dgamma_out[j] = zero
        dbeta_out[j] = zero
    for i in range(n):
        mu = float(mean[i]) if shifted else 0.0
        sc = float(inv_std[i]) if shifted else 1.0
        s1 = 0.0
        s2 = 0.0
        for j in range(k):
            d = float(dout[i, j])
            xh = (float(src[i, j]) - mu) * sc
            dbeta_out[j] += d
            dgamma_out[j] += d * xh
            g = d * float(gamma[j])
            s1 += g
            s2 += g * xh
        if need_dX:
            c = float(inv_std[i]) / k
            for j in range(k):
                g = float(dout[i, j]) * float(gamma[j])
                dX_out[i, j] = c * (k * g - s1 - (float(src[i, j]) - mu) * sc * s2)


@njit(**OPTS)
def layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    if dX_out is None:
        _layernorm_backward(dout, Xhat, inv_std, inv_std, False, gamma, dgamma_out, dbeta_out, dout, False)
    else:
        _layernorm_backward(dout, Xhat, inv_std, inv_std, False, gamma, dgamma_out, dbeta_out, dX_out, True)


@njit(**OPTS)
def layernorm_rows_backward(dout, X, mean, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """layernorm_backward with Xhat = (X - mean) * inv_std recomputed per row."""
    if dX_out is None:
        _layernorm_backward(dout, X, mean, inv_std, True, gamma, dgamma_out, dbeta_out, dout, False)
    else:
        _layernorm_backward(dout, X, mean, inv_std, True, gamma, dgamma_out, dbeta_out, dX_out, True)
