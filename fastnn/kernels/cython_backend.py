"""Cython kernels: same signatures as :mod:`fastnn.kernels.reference`, compiled in ``csrc/_kernels.pyx``.

GEMMs call the BLAS that scipy ships (``scipy.linalg.cython_blas``) on the
row-major buffers directly; bias + activation after a GEMM, and activation
derivative + bias gradient before one, are fused into single passes. The
whole-run driver :func:`train_batches` runs every mini-batch of a call without
the GIL; with ``n_shards > 1`` each batch is split into row shards computed in
an OpenMP ``prange`` (limit BLAS to one thread around such a call, e.g. with
``threadpoolctl.threadpool_limits(1)``, or BLAS threads oversubscribe the
cores), and the shard gradients are summed in a fixed order, so results do not
depend on thread scheduling.

The compiled module takes float32/float64 arrays whose rows have unit stride
(any row stride, so BLAS ``ld*`` arguments absorb row-strided views without a
copy). Each op here calls it directly (about 1 microsecond of overhead); only
when it refuses the arguments -- it checks dtypes and layouts before computing
anything -- does the op fall back to adapting them (a contiguous copy of an
input, a contiguous scratch copied back into an output, int64 indices), so
every op accepts what the reference accepts.
"""
import functools

import numpy as np

from . import codes as _codes
from . import layout as _layout

try:
    from fastnn._ext import _kernels as _k
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "fastnn's Cython extension is not built: run `pip install .` (needs a C compiler) "
        "or, in a source checkout, `python setup.py build_ext --inplace`; or use backend='numba'. "
        f"(import of fastnn._ext._kernels failed: {exc})"
    ) from exc

NAME = "cython"
#: True when the extension was compiled with OpenMP (``n_shards > 1`` really runs in parallel).
OPENMP = _k.OPENMP

_mismatch = {name: (value, getattr(_codes, name, None)) for name, value in _k.CODES.items()
             if getattr(_codes, name, None) != value}
if _mismatch:  # pragma: no cover - a stale build against edited codes.py
    raise ImportError(
        "fastnn's Cython extension is out of date (integer codes differ from "
        f"fastnn.kernels.codes: {_mismatch}); rebuild it with `pip install .` or "
        "`python setup.py build_ext --inplace`"
    )

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- layout adapters
def _rows_ok(a):
    """True if ``a`` is a float32/float64 array whose rows (last axis) have unit stride and
    whose row stride is a non-negative multiple of the item size that does not overlap rows."""
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS or not a.dtype.isnative:
        return False
    size = a.itemsize
    if a.ndim == 1:
        return a.shape[0] <= 1 or a.strides[0] == size
    if a.ndim != 2:
        return False
    n, k = a.shape
    if k > 1 and a.strides[1] != size:
        return False
    if n > 1 and (a.strides[0] % size or a.strides[0] < max(k, 1) * size):
        return False
    return True


def _in(a, dtype=None):
    """An input view the kernels can read: ``a`` itself when possible, else a C-contiguous copy."""
    if dtype is not None and getattr(a, "dtype", None) != dtype:
        return np.ascontiguousarray(a, dtype=dtype)
    if _rows_ok(a):
        return a
    return np.ascontiguousarray(a)


def _in1(a, dtype=None):
    """A 1-D contiguous input (copied only if needed)."""
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    if a.ndim == 1 and (a.shape[0] <= 1 or a.strides[0] == a.itemsize) and a.dtype.isnative:
        return a
    return np.ascontiguousarray(a)


def _out(a):
    """(buffer the kernel writes, array to copy it back into or None)."""
    if _rows_ok(a) and a.flags.writeable:
        return a, None
    return np.empty(a.shape, a.dtype), a


def _out1(a):
    if isinstance(a, np.ndarray) and a.ndim == 1 and a.flags.c_contiguous and a.flags.writeable \
            and a.dtype.isnative:
        return a, None
    return np.ascontiguousarray(a), a


def _f64_out(a):
    """A float64 C-contiguous 1-D buffer for per-batch results (``a`` itself when it is one)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1 \
            and a.flags.c_contiguous and a.flags.writeable:
        return a, None
    return np.zeros(len(a)), a


def _back(buf, dest):
    if dest is not None:
        dest[...] = buf


def _fast_path(ext_fn):
    """Decorate an adapting op: try the extension function first, adapt only if it refuses.

    The extension raises TypeError/ValueError from its argument checks, before it writes
    anything, so retrying with adapted arguments is safe.
    """
    def decorate(adapt):
        @functools.wraps(adapt)
        def op(*args, **kwargs):
            try:
                return ext_fn(*args, **kwargs)
            except (TypeError, ValueError):
                return adapt(*args, **kwargs)
        return op
    return decorate


# --------------------------------------------------------------------------- ops
@_fast_path(_k.activation_forward)
def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    if A_out is Z:
        buf, dest = _out(A_out)
        if dest is not None:
            buf[...] = Z
        _k.activation_forward(buf, act, alpha, buf)
        _back(buf, dest)
        return
    buf, dest = _out(A_out)
    _k.activation_forward(_in(Z, buf.dtype), act, alpha, buf)
    _back(buf, dest)


@_fast_path(_k.activation_backward)
def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    buf, dest = _out(dZ_out)
    dt = buf.dtype
    _k.activation_backward(_in(Z, dt), _in(A, dt), _in(dA, dt), act, alpha, buf)
    _back(buf, dest)


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


@_fast_path(_k.loss_forward_backward)
def loss_forward_backward(loss, out, target, scale, dout):
    """Sum over rows of the per-sample loss; write d(scale*sum)/d(out) into dout (see the reference)."""
    buf, dest = _out(dout)
    dt = buf.dtype
    total = _k.loss_forward_backward(loss, _in(out, dt), _in(target, dt), scale, buf)
    _back(buf, dest)
    return total


@_fast_path(_k.count_correct)
def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    out = _in(out)
    return _k.count_correct(loss, out, _in(target, out.dtype))


@_fast_path(_k.gather_rows)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    if not _rows_ok(X):  # never copy a whole dataset to gather a batch
        np.take(X, idx, axis=0, out=out)
        return
    buf, dest = _out(out)
    _k.gather_rows(_in(X, buf.dtype) if X.dtype != buf.dtype else X, _in1(idx, np.int64), buf)
    _back(buf, dest)


@_fast_path(_k.clip_gradients)
def clip_gradients(grads, clip_norm, clip_value):
    """Clip to +-clip_value (if > 0), then scale to global L2 norm <= clip_norm (if > 0); return the norm."""
    buf, dest = _out1(grads)
    norm = _k.clip_gradients(buf, float(clip_norm), float(clip_value))
    _back(buf, dest)
    return norm


@_fast_path(_k.optimizer_update)
def optimizer_update(opt, params, grads, state, hyper, step):
    """One fused in-place update of the flat ``params``; see the reference for the math."""
    pbuf, pdest = _out1(params)
    st = state
    sdest = None
    if not (isinstance(state, np.ndarray) and state.ndim == 2 and state.flags.c_contiguous
            and state.flags.writeable and state.dtype == pbuf.dtype):
        st = np.ascontiguousarray(state, dtype=pbuf.dtype).reshape(-1, pbuf.shape[0])
        sdest = state
    _k.optimizer_update(int(opt), pbuf, _in1(grads, pbuf.dtype), st,
                        _in1(hyper, np.float64), int(step))
    _back(pbuf, pdest)
    if sdest is not None:
        sdest[...] = st.reshape(np.shape(sdest))


# --------------------------------------------------------------------------- whole training run
def _check_buffer(name, a, dtype, shape=None, ndim=1):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim \
            or not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"train_batches: {name} must be a writeable C-contiguous {ndim}-D "
                         f"{np.dtype(dtype).name} array, got {type(a).__name__} "
                         f"{getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"train_batches: {name} has shape {a.shape}, expected {shape}")


def train_batches(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                  loss, opt, state, hyper, lrs, step0, n_shards, work, batch_loss, batch_correct):
    """Run many mini-batch steps of a Dense stack in compiled code; see the reference for the contract.

    ``work`` is a C-contiguous (n_shards, shard_stride) buffer of ``params``' dtype
    (:func:`fastnn.kernels.layout.shard_stride`); with ``n_shards > 1`` limit BLAS to one
    thread around the call. Buffers that are written (params, grads, state, work) must
    already have the right dtype and be C-contiguous; read-only inputs are converted if needed
    (once per call).
    """
    params_dt = getattr(params, "dtype", None)
    if params_dt not in _FLOATS:
        raise ValueError(f"train_batches: params must be float32 or float64, got {params_dt}")
    n_params = params.shape[0] if params.ndim == 1 else -1
    n_shards = int(n_shards)
    batch_size = int(batch_size)
    if n_shards < 1 or batch_size < 1:
        raise ValueError("train_batches: n_shards and batch_size must be >= 1")
    _check_buffer("params", params, params_dt)
    _check_buffer("grads", grads, params_dt, (n_params,))
    _check_buffer("state", state, params_dt, ndim=2)
    _check_buffer("work", work, params_dt, ndim=2)
    meta = np.ascontiguousarray(meta, dtype=np.int64)
    X = _in(X, params_dt)
    Y = _in(Y, params_dt)
    if X.ndim != 2 or Y.ndim != 2 or meta.ndim != 2 or meta.shape[0] == 0:
        raise ValueError("train_batches: X, Y and meta must be 2-D (meta with one row per layer)")
    rows = batch_size if n_shards == 1 else _layout.shard_rows(batch_size, n_shards)
    need = _layout.shard_stride(meta, rows, Y.shape[1], n_params, n_shards)
    if work.shape[0] != n_shards or work.shape[1] < need:
        raise ValueError(f"train_batches: work has shape {work.shape}, needs ({n_shards}, >= {need})")
    if state.shape[1] != n_params and state.shape[0] > 0:
        raise ValueError(f"train_batches: state has shape {state.shape}, expected (n_slots, {n_params})")
    loss_buf, loss_dest = _f64_out(batch_loss)
    corr_buf, corr_dest = _f64_out(batch_correct)
    _k.train_batches(X, Y, _in1(perm, np.int64), _in1(batch_starts, np.int64), batch_size, meta,
                     _in1(alphas, np.float64), params, grads, int(loss), int(opt), state,
                     _in1(hyper, np.float64), _in1(lrs, np.float64), int(step0), n_shards, work,
                     loss_buf, corr_buf)
    _back(loss_buf, loss_dest)
    _back(corr_buf, corr_dest)
