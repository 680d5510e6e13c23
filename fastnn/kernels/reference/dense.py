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

