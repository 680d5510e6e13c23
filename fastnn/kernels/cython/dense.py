"""Cython Dense layer (``_dense_fwd`` / ``_dense_bwd`` in csrc/dense.pxi)."""
import numpy as np

from ._adapt import _back, _fast_path, _in, _in1, _k, _out, _out1


@_fast_path(_k.dense_forward)
def dense_forward(X, W, b, act, alpha, Z_out, A_out):
    """Z = X @ W + b; A = f(Z)."""
    zbuf, zdest = _out(Z_out)
    if A_out is Z_out:
        abuf, adest = zbuf, None
    else:
        abuf, adest = _out(A_out)
    dt = zbuf.dtype
    _k.dense_forward(_in(X, dt), _in(W, dt), _in1(b, dt), act, alpha, zbuf, abuf)
    _back(zbuf, zdest)
    _back(abuf, adest)


@_fast_path(_k.dense_backward)
def dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out):
    """dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)."""
    zbuf, zdest = _out(dZ_buf)
    wbuf, wdest = _out(dW_out)
    bbuf, bdest = _out1(db_out)
    xbuf, xdest = (None, None) if dX_out is None else _out(dX_out)
    dt = zbuf.dtype
    _k.dense_backward(_in(X, dt), _in(W, dt), _in(Z, dt), _in(A, dt), _in(dA, dt), act, alpha,
                      zbuf, wbuf, bbuf, xbuf)
    _back(zbuf, zdest)
    _back(wbuf, wdest)
    _back(bbuf, bdest)
    if xbuf is not None:
        _back(xbuf, xdest)


@_fast_path(_k.dense_chain_forward)
def dense_chain_forward(X, params, layers, alphas, work, out, n_threads):
    """Dense layers one after another on X: A = f(A @ W + b) per row of ``layers``; out = the last A.

    ``n_threads`` > 1 splits the rows into one block per thread (at least 32 rows each); the caller
    limits BLAS to one thread for the call."""
    obuf, odest = _out(out)
    dt = obuf.dtype
    wbuf = np.ascontiguousarray(work, dt)
    _k.dense_chain_forward(_in(X, dt), np.ascontiguousarray(params, dt), np.ascontiguousarray(layers, np.int64),
                           np.ascontiguousarray(alphas, np.float64), wbuf, obuf, int(n_threads))
    if wbuf is not work:
        work[...] = wbuf
    _back(obuf, odest)
