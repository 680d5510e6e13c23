"""Cython batch gather and whole-run driver (csrc/driver.pxi).

The driver runs every mini-batch of a call without the GIL; with ``n_shards > 1``
each batch is split into row shards computed in an OpenMP ``prange`` (limit BLAS
to one thread around such a call, e.g. with ``threadpoolctl.threadpool_limits(1)``,
or BLAS threads oversubscribe the cores), and the shard gradients are summed in a
fixed order, so results do not depend on thread scheduling.
"""
import numpy as np

from .. import layout as _layout
from ._adapt import _FLOATS, _back, _f64_out, _fast_path, _in, _in1, _k, _out, _rows_ok


@_fast_path(_k.gather_rows)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    if not _rows_ok(X):  # never copy a whole dataset to gather a batch
        np.take(X, idx, axis=0, out=out)
        return
    buf, dest = _out(out)
    _k.gather_rows(_in(X, buf.dtype) if X.dtype != buf.dtype else X, _in1(idx, np.int64), buf)
    _back(buf, dest)


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
