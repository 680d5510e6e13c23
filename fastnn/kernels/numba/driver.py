"""Numba batch gather and the whole-run driver :func:`train_batches`.

The driver runs every mini-batch of a call in compiled code; with
``n_shards > 1`` each batch is split into row shards processed in parallel
(``prange``) with single-threaded BLAS, and the shard gradients are summed in
a fixed order, so results do not depend on thread scheduling. It calls the
``@njit`` functions of the other families directly (Numba inlines only what
it can see). Codes are checked once per call (:func:`_probe_codes`) before any
parallel region, so the switches' ValueError never has to leave a ``prange``.
"""
import threading

import numba
import numpy as np
from numba import njit, prange

from .. import layout as _layout
from ..codes import ACT_LINEAR, H_CLIP_NORM, H_CLIP_VALUE, H_LR
from ._common import CHUNK, OPTS
from .activations import _activation_backward_db, activation_forward
from .dense import _bias_activation, _dense_backward
from .losses import count_correct, loss_forward_backward
from .optim import _reduce_and_update, _update_slice, clip_gradients

_shard_rows = njit(cache=True)(_layout.shard_rows)
_max_width = njit(cache=True)(_layout.max_width)


@njit(**OPTS)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    k = X.shape[1]
    for i in range(idx.shape[0]):
        src = X[idx[i]]
        dst = out[i]
        for j in range(k):
            dst[j] = src[j]


@njit(**OPTS)
def _work_offsets(meta, rows_cap, ny):
    """Offsets into one shard's work slice, following fastnn.kernels.layout:
    [X, Y, Z_0, A_0, ..., Z_L-1, A_L-1, dA, dX, dZ] (A_l = Z_l for linear layers)."""
    n_layers = meta.shape[0]
    w = _max_width(meta)
    offs = np.empty(2 * n_layers + 5, np.int64)
    offs[0] = 0
    offs[1] = rows_cap * meta[0, 0]
    off = offs[1] + rows_cap * ny
    for li in range(n_layers):
        offs[2 + 2 * li] = off
        off += rows_cap * meta[li, 1]
        offs[3 + 2 * li] = offs[2 + 2 * li] if meta[li, 2] == ACT_LINEAR else off
        off += rows_cap * meta[li, 1]
    offs[2 * n_layers + 2] = off
    offs[2 * n_layers + 3] = off + rows_cap * w
    offs[2 * n_layers + 4] = off + 2 * rows_cap * w
    return offs


@njit(**OPTS)
def _shard_step(X, Y, perm, row0, m_shard, scale, meta, alphas, params, grads_out,
                loss, wbuf, offs, result, s):
    """Forward + loss + backward of one shard (rows perm[row0 : row0+m_shard]) into grads_out."""
    n_layers = meta.shape[0]
    n_in0 = meta[0, 0]
    ny = Y.shape[1]
    Xg = wbuf[offs[0]:offs[0] + m_shard * n_in0].reshape(m_shard, n_in0)
    Yg = wbuf[offs[1]:offs[1] + m_shard * ny].reshape(m_shard, ny)
    gather_rows(X, perm[row0:row0 + m_shard], Xg)
    gather_rows(Y, perm[row0:row0 + m_shard], Yg)
    z_off = offs[2:2 + 2 * n_layers:2]
    a_off = offs[3:3 + 2 * n_layers:2]
    dA_off = offs[2 * n_layers + 2]
    dX_off = offs[2 * n_layers + 3]
    dZ_off = offs[2 * n_layers + 4]
    A_prev = Xg
    for li in range(n_layers):
        n_in, n_out, act, w_off, b_off = meta[li, 0], meta[li, 1], meta[li, 2], meta[li, 3], meta[li, 4]
        W = params[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
        Z = wbuf[z_off[li]:z_off[li] + m_shard * n_out].reshape(m_shard, n_out)
        A = wbuf[a_off[li]:a_off[li] + m_shard * n_out].reshape(m_shard, n_out)
        np.dot(A_prev, W, Z)
        _bias_activation(Z, params[b_off:b_off + n_out], act, alphas[li], A)
        A_prev = A
    k = meta[n_layers - 1, 1]
    out = A_prev
    dA = wbuf[dA_off:dA_off + m_shard * k].reshape(m_shard, k)
    result[s, 0] = loss_forward_backward(loss, out, Yg, scale, dA)
    result[s, 1] = count_correct(loss, out, Yg)
    for li in range(n_layers - 1, -1, -1):
        n_in, n_out, act, w_off, b_off = meta[li, 0], meta[li, 1], meta[li, 2], meta[li, 3], meta[li, 4]
        W = params[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
        Z = wbuf[z_off[li]:z_off[li] + m_shard * n_out].reshape(m_shard, n_out)
        A = wbuf[a_off[li]:a_off[li] + m_shard * n_out].reshape(m_shard, n_out)
        dZ = wbuf[dZ_off:dZ_off + m_shard * n_out].reshape(m_shard, n_out)
        if li > 0:
            A_in = wbuf[a_off[li - 1]:a_off[li - 1] + m_shard * n_in].reshape(m_shard, n_in)
        else:
            A_in = Xg
        dX = wbuf[dX_off:dX_off + m_shard * n_in].reshape(m_shard, n_in)
        _dense_backward(A_in, W, Z, A, dA, act, alphas[li], dZ,
                        grads_out[w_off:w_off + n_in * n_out].reshape(n_in, n_out),
                        grads_out[b_off:b_off + n_out], dX, li > 0)
        # The input gradient of this layer is the output gradient of the one below: swap.
        dA_off, dX_off = dX_off, dA_off
        dA = dX


@njit(**OPTS)
def _run_serial(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                loss, opt, state, hyper, lrs, step0, work, batch_loss, batch_correct):
    n = perm.shape[0]
    h = hyper.copy()
    result = np.zeros((1, 2))
    offs = _work_offsets(meta, batch_size, Y.shape[1])
    for j in range(batch_starts.shape[0]):
        start = batch_starts[j]
        m = min(batch_size, n - start)
        _shard_step(X, Y, perm, start, m, 1.0 / m, meta, alphas, params, grads,
                    loss, work[0], offs, result, 0)
        batch_loss[j] = result[0, 0] / m
        batch_correct[j] = result[0, 1]
        if hyper[H_CLIP_NORM] > 0 or hyper[H_CLIP_VALUE] > 0:  # the norm pass costs as much as Adam
            clip_gradients(grads, hyper[H_CLIP_NORM], hyper[H_CLIP_VALUE])
        h[H_LR] = lrs[j]
        _update_slice(opt, params, grads, state, 0, params.shape[0], h, step0 + j + 1)


@njit(parallel=True, **OPTS)
def _run_sharded(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                 loss, opt, state, hyper, lrs, step0, work, batch_loss, batch_correct):
    n = perm.shape[0]
    n_shards = work.shape[0]
    n_params = params.shape[0]
    rows_cap = _shard_rows(batch_size, n_shards)
    g_off = work.shape[1] - n_params
    h = hyper.copy()
    result = np.zeros((n_shards, 2))
    partial = np.zeros((params.shape[0] + CHUNK - 1) // CHUNK)
    offs = _work_offsets(meta, rows_cap, Y.shape[1])
    for j in range(batch_starts.shape[0]):
        start = batch_starts[j]
        m = min(batch_size, n - start)
        per = _shard_rows(m, n_shards)
        for s in prange(n_shards):
            lo = s * per
            m_s = min(per, m - lo)
            if m_s <= 0:
                work[s][g_off:] = 0
                result[s, 0] = 0.0
                result[s, 1] = 0.0
            else:
                _shard_step(X, Y, perm, start + lo, m_s, 1.0 / m, meta, alphas, params,
                            work[s][g_off:], loss, work[s], offs, result, s)
        loss_sum, correct = 0.0, 0.0
        for s in range(n_shards):  # fixed order (see _reduce_and_update)
            loss_sum += result[s, 0]
            correct += result[s, 1]
        batch_loss[j] = loss_sum / m
        batch_correct[j] = correct
        h[H_LR] = lrs[j]
        _reduce_and_update(opt, params, grads, work, g_off, state, h, step0 + j + 1,
                           hyper[H_CLIP_NORM], hyper[H_CLIP_VALUE], partial)


@njit(**OPTS)
def _probe_codes(meta, alphas, loss, opt, params, state, hyper):
    """Take every switch the driver will take once, on a 1x1 scratch (or an empty slice):
    an unknown activation, loss or optimizer code raises ValueError here, outside ``prange``."""
    z = np.zeros((1, 1), params.dtype)
    a = np.zeros((1, 1), params.dtype)
    for li in range(meta.shape[0]):
        activation_forward(z, meta[li, 2], alphas[li], a)
        _activation_backward_db(z, a, a, meta[li, 2], alphas[li], a, a[0], False)
    loss_forward_backward(loss, z, z, 1.0, a)
    count_correct(loss, z, z)
    _update_slice(opt, params, params, state, 0, 0, hyper, 1)


def train_batches(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                  loss, opt, state, hyper, lrs, step0, n_shards, work, batch_loss, batch_correct):
    """Run many mini-batch steps of a Dense stack in compiled code; see the reference for the contract.

    ``work`` is a (n_shards, shard_stride) buffer from :func:`fastnn.kernels.layout.shard_stride`.
    """
    args = (X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
            loss, opt, state, hyper, lrs, step0, work, batch_loss, batch_correct)
    # Numba cannot set the FPU's flush-to-zero mode; the Cython extension can, for this thread
    # (the serial driver runs here). Denormals otherwise halve the speed of long Adam runs.
    _probe_codes(meta, alphas, loss, opt, params, state, hyper)
    csr = _ftz_on() if _ftz_on is not None else None
    try:
        if n_shards == 1:
            _run_serial(*args)
        else:
            _parallel_call(_run_sharded, args)
    finally:
        if csr is not None:
            _ftz_restore(csr)


try:
    from ..._ext._kernels import flush_denormals_on as _ftz_on, flush_denormals_restore as _ftz_restore
except ImportError:  # the Cython extension is not built: numba runs without flush-to-zero
    _ftz_on = _ftz_restore = None


_PARALLEL_LOCK = threading.Lock()


def _parallel_call(fn, args):
    """Call a parallel=True kernel; serialized unless Numba's threading layer is thread-safe.

    The ``workqueue`` layer (what Numba falls back to without TBB or OpenMP) aborts the
    process when two Python threads launch parallel regions at once. The layer is known
    only after the first launch, so launches are serialized until it is known to be safe.
    """
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region launched yet
        layer = None
    if layer in ("omp", "tbb"):
        return fn(*args)
    with _PARALLEL_LOCK:
        return fn(*args)
