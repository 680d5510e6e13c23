"""Numba Dense layer: GEMMs to BLAS through ``np.dot(a, b, out)``; bias + activation after the
GEMM, and activation derivative + bias gradient before one, fused into single passes."""
import numpy as np
from numba import njit

from ..codes import ACT_LINEAR
from ._common import OPTS
from .activations import _activation_backward_db, activation_forward


@njit(**OPTS)
def _bias_activation(Z, b, act, alpha, A_out):
    n, k = Z.shape
    for i in range(n):
        for j in range(k):
            Z[i, j] += b[j]
    if act != ACT_LINEAR or A_out.ctypes.data != Z.ctypes.data:
        activation_forward(Z, act, alpha, A_out)


@njit(**OPTS)
def dense_forward(X, W, b, act, alpha, Z_out, A_out):
    """Z = X @ W + b; A = f(Z)."""
    np.dot(X, W, Z_out)
    _bias_activation(Z_out, b, act, alpha, A_out)


@njit(**OPTS)
def _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out, need_dX):
    _activation_backward_db(Z, A, dA, act, alpha, dZ_buf, db_out, True)
    np.dot(X.T, dZ_buf, dW_out)
    if need_dX:
        np.dot(dZ_buf, W.T, dX_out)


@njit(**OPTS)
def dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out):
    """dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)."""
    if dX_out is None:
        _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dZ_buf, False)
    else:
        _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out, True)
