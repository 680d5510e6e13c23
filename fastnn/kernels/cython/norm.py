"""Cython batch norm and layer norm (``_bn_fwd`` / ``_bn_bwd`` / ``_ln_fwd`` / ``_ln_bwd`` in csrc/norm.pxi).

Contracts: :mod:`fastnn.kernels.reference.norm`. The extension takes C-contiguous
buffers of ``X``'s float type; anything else is adapted (copied in, and out).
"""
import numpy as np

from ._adapt import _back, _fast_path, _k


def _inc(a, dt):
    return np.ascontiguousarray(a, dtype=dt)


def _io(a, dt):
    """(buffer the kernel reads and writes, array to copy it back into or None)."""
    if a is None:
        return None, None
    if a.dtype == dt and a.flags.c_contiguous and a.flags.writeable:
        return a, None
    return np.ascontiguousarray(a, dtype=dt), a


def _backward(ext_fn, dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """Batch and layer norm backward share their arguments: adapt them once for either."""
    dt = np.result_type(dout.dtype, np.float32)
    bufs = [_io(a, dt) for a in (dgamma_out, dbeta_out, dX_out)]
    ext_fn(_inc(dout, dt), _inc(Xhat, dt), _inc(inv_std, dt), _inc(gamma, dt), bufs[0][0], bufs[1][0], bufs[2][0])
    for buf, dest in bufs:
        if buf is not None:
            _back(buf, dest)


@_fast_path(_k.batchnorm_forward)
def batchnorm_forward(X, gamma, beta, eps, training, running_mean, running_var, momentum,
                      Xhat_out, inv_std_out, out):
    """Xhat = (X - mean) / sqrt(var + eps), out = gamma * Xhat + beta; batch stats in training."""
    dt = np.result_type(X.dtype, np.float32)
    bufs = [_io(a, dt) for a in (running_mean, running_var, Xhat_out, inv_std_out, out)]
    _k.batchnorm_forward(_inc(X, dt), _inc(gamma, dt), _inc(beta, dt), float(eps), bool(training),
                         bufs[0][0], bufs[1][0], float(momentum), bufs[2][0], bufs[3][0], bufs[4][0])
    for buf, dest in bufs:
        _back(buf, dest)


@_fast_path(_k.batchnorm_backward)
def batchnorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
    _backward(_k.batchnorm_backward, dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out)


@_fast_path(_k.layernorm_forward)
def layernorm_forward(X, gamma, beta, eps, Xhat_out, inv_std_out, out):
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    dt = np.result_type(X.dtype, np.float32)
    bufs = [_io(a, dt) for a in (Xhat_out, inv_std_out, out)]
    _k.layernorm_forward(_inc(X, dt), _inc(gamma, dt), _inc(beta, dt), float(eps),
                         bufs[0][0], bufs[1][0], bufs[2][0])
    for buf, dest in bufs:
        _back(buf, dest)


@_fast_path(_k.layernorm_backward)
def layernorm_backward(dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    _backward(_k.layernorm_backward, dout, Xhat, inv_std, gamma, dgamma_out, dbeta_out, dX_out)


@_fast_path(_k.layernorm_rows_forward)
def layernorm_rows_forward(X, gamma, beta, eps, mean_out, inv_std_out, out):
    """layernorm_forward keeping each row's float64 mean and inv_std instead of Xhat."""
    dt = np.result_type(X.dtype, np.float32)
    bufs = [_io(mean_out, np.float64), _io(inv_std_out, np.float64), _io(out, dt)]
    _k.layernorm_rows_forward(_inc(X, dt), _inc(gamma, dt), _inc(beta, dt), float(eps),
                              bufs[0][0], bufs[1][0], bufs[2][0])
    for buf, dest in bufs:
        _back(buf, dest)


@_fast_path(_k.layernorm_rows_backward)
def layernorm_rows_backward(dout, X, mean, inv_std, gamma, dgamma_out, dbeta_out, dX_out):
    """layernorm_backward with Xhat = (X - mean) * inv_std recomputed per row."""
    dt = np.result_type(dout.dtype, np.float32)
    bufs = [_io(a, dt) for a in (dgamma_out, dbeta_out, dX_out)]
    _k.layernorm_rows_backward(_inc(dout, dt), _inc(X, dt), _inc(mean, np.float64), _inc(inv_std, np.float64),
                               _inc(gamma, dt), bufs[0][0], bufs[1][0], bufs[2][0])
    for buf, dest in bufs:
        if buf is not None:
            _back(buf, dest)
