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
def _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out, need_dX, want_db=True):
    _activation_backward_db(Z, A, dA, act, alpha, dZ_buf, db_out, want_db)  # want_db False: no bias
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


@njit(**OPTS)
def _chain_layer(A_in, params, n_in, n_out, w, b, act, alpha, Z):
    np.dot(A_in, params[w:w + n_in * n_out].reshape(n_in, n_out), Z)
    if b >= 0:
        _bias_activation(Z, params[b:b + n_out], act, alpha, Z)
    else:
        activation_forward(Z, act, alpha, Z)


def dense_chain_forward(X, params, layers, alphas, work, out, n_threads):
    """Dense layers one after another on X: A = f(A @ W + b) per row of ``layers``; out = the last A.

    Runs on one thread whatever ``n_threads`` (the row split is the Cython backend's)."""
    if out.flags.c_contiguous:
        _dense_chain(np.ascontiguousarray(X), params, layers, alphas, work, out)
    else:  # np.dot in Numba writes only contiguous outputs
        buf = np.empty(out.shape, out.dtype)
        _dense_chain(np.ascontiguousarray(X), params, layers, alphas, work, buf)
        out[...] = buf


@njit(**OPTS)
def _dense_chain(X, params, layers, alphas, work, out):
    L, m = layers.shape[0], X.shape[0]
    if layers.shape[1] != 5 or L < 1 or alphas.shape[0] < L or X.shape[1] != layers[0, 0] \
            or out.shape[0] != m or out.shape[1] != layers[L - 1, 1]:
        raise ValueError("dense_chain_forward: layers, alphas, X and out do not fit")
    for q in range(L):  # every check before any work: bounds are not checked by Numba
        n_in, n_out, w, b = layers[q, 0], layers[q, 1], layers[q, 2], layers[q, 3]
        if n_in < 1 or n_out < 1 or (q > 0 and n_in != layers[q - 1, 1]) or w < 0 \
                or w + n_in * n_out > params.shape[0] or b + n_out > params.shape[0] \
                or (q < L - 1 and (work.shape[0] < 2 or work.shape[1] < m * n_out)):
            raise ValueError("dense_chain_forward: a chain row does not fit its widths, params or work")
    for q in range(L):
        n_in, n_out, w, b, act = layers[q, 0], layers[q, 1], layers[q, 2], layers[q, 3], layers[q, 4]
        Z = out if q == L - 1 else work[q % 2, :m * n_out].reshape(m, n_out)
        if q == 0:
            _chain_layer(X, params, n_in, n_out, w, b, act, alphas[q], Z)
        else:
            p = (q - 1) % 2
            _chain_layer(work[p, :m * n_in].reshape(m, n_in), params, n_in, n_out, w, b, act, alphas[q], Z)
