"""Reference Dense layer (numpy): Z = X @ W + b, A = f(Z) and its gradients."""
import numpy as np

from .activations import activation_backward, activation_forward


def dense_forward(X, W, b, act, alpha, Z_out, A_out):
    """Z = X @ W + b; A = f(Z)."""
    np.matmul(X, W, out=Z_out)
    Z_out += b
    activation_forward(Z_out, act, alpha, A_out)


def dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out):
    """dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)."""
    activation_backward(Z, A, dA, act, alpha, dZ_buf)
    np.matmul(X.T, dZ_buf, out=dW_out)
    db_out[...] = dZ_buf.sum(axis=0)
    if dX_out is not None:
        np.matmul(dZ_buf, W.T, out=dX_out)



def dense_chain_forward(X, params, layers, alphas, work, out, n_threads):
    """Dense layers one after another on X: A = f(A @ W + b) per row of ``layers``; out = the last A.

    ``layers`` is int64 ``(L, 5)``: n_in, n_out, W offset, b offset (-1: no bias), activation
    code; ``params`` the flat parameters; ``alphas`` float64 ``(L,)``; ``work`` ``(2, >= m * width)``
    holds the hidden activations (layer q writes ``work[q % 2]``); ``out`` is ``(m, n_out of the last)``.
    ``n_threads`` is a bound: the oracle runs on one.
    """
    _check_chain(X, params, layers, alphas, work, out)
    m, A = X.shape[0], X
    for q in range(layers.shape[0]):
        n_in, n_out, w, b, act = (int(v) for v in layers[q])
        Z = out if q == layers.shape[0] - 1 else work[q % 2, :m * n_out].reshape(m, n_out)
        np.matmul(A, params[w:w + n_in * n_out].reshape(n_in, n_out), out=Z)
        if b >= 0:
            Z += params[b:b + n_out]
        activation_forward(Z, act, float(alphas[q]), Z)
        A = Z


def _check_chain(X, params, layers, alphas, work, out):
    """ValueError unless the chain's widths, offsets and buffers fit (the compiled kernels check the same)."""
    L = layers.shape[0]
    if layers.ndim != 2 or layers.shape[1] != 5 or L < 1 or alphas.shape[0] < L:
        raise ValueError("layers must be (L >= 1, 5) and alphas have L entries")
    m = X.shape[0]
    if X.shape[1] != layers[0, 0] or out.shape[0] != m or out.shape[1] != layers[L - 1, 1]:
        raise ValueError(f"X must be (m, {layers[0, 0]}) and out (m, {layers[L - 1, 1]}), not {X.shape}, {out.shape}")
    for q in range(L):
        n_in, n_out, w, b = (int(v) for v in layers[q, :4])
        if n_in < 1 or n_out < 1 or (q > 0 and n_in != layers[q - 1, 1]) or w < 0 \
                or w + n_in * n_out > params.shape[0] or b + n_out > params.shape[0] \
                or (q < L - 1 and (work.shape[0] < 2 or work.shape[1] < m * n_out)):
            raise ValueError(f"chain row {q} does not fit its widths, params or work")
