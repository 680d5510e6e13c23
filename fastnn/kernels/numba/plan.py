"""Numba plan driver: runs the steps of a compiled plan (see :mod:`fastnn.engine.plan`).

Per step, for each section of the schedule, every row shard runs the
section's items on its rows (``prange`` over shards, single-threaded BLAS),
then the section's sync runs serially; after the last section the shard
gradients are summed in a fixed order, clipped and applied in one pass
(:func:`fastnn.kernels.numba.optim._reduce_and_update`). With one shard the
same items run on the whole batch and write the gradient directly. Results do
not depend on the thread schedule; dropout masks do not depend on the shard
count either (counter-based, :mod:`fastnn.kernels.dropout_ref`).
"""
import math

import numpy as np
from numba import njit, prange, uint64

from . import _common, activations, dense, driver, losses, norm, optim, plan_conv
from ..plan_api import check_codes, entry_points
from ..codes import (
    ACT_RELU, F_ALPHA, F_EPS, F_L1, F_L2, F_MOMENTUM, F_RATE, H_CLIP_NORM, H_CLIP_VALUE, H_LR, IT_BACKWARD, IT_FORWARD,
    IT_GATHER, IT_LOSS, IT_PENALTY, LN_STATS_K, LOSS_FOCAL, LOSS_HUBER, LOSS_MAE, LOSS_SOFTMAX_CE, OP_ACTIVATION, OP_AVGPOOL2D,
    OP_BATCHNORM, OP_CONV2D, OP_DENSE, OP_MAXPOOL2D, OP_DROPOUT, OP_LAYERNORM, P_ACT, P_BUF0, P_BUF1, P_C, P_IN, P_NEED_DX, P_N_IN, P_N_OUT, P_OP,
    P_OUT, P_PARAM0, P_PARAM1, P_SEED, P_STATS, P_Z, SYNC_BN_BACKWARD, SYNC_BN_FORWARD, W_DA, W_DX, W_DZ,
    W_GRAD, W_X, W_Y,
)
from ..dropout_ref import GOLDEN

_OPTS = _common.OPTS
_mae = losses.mae_forward_backward
_huber = losses.huber_forward_backward
_focal = losses.focal_forward_backward
_ln_forward = norm.layernorm_rows_forward
_ln_backward = norm.layernorm_rows_backward



# --------------------------------------------------------------------------- dropout
@njit(inline="always", **_OPTS)
def _mix64(z):
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    return z ^ (z >> uint64(31))


@njit(**_OPTS)
def dropout_forward(X, key, step, row0, rate, mask_out, out):
    """mask = (draw < threshold) / keep, out = X * mask: the bits of :func:`dropout_ref.dropout_forward`."""
    n, k = X.shape
    t = X.dtype.type
    keep = 1.0 - rate
    thr = uint64(np.int64(keep * 65536.0))
    scale, zero = t(1.0 / keep), t(0)
    g = uint64(GOLDEN)
    base = uint64(key) + (uint64(step) << uint64(32)) * g
    low = uint64(0xFFFF)
    for i in range(n):
        rk = _mix64(base + uint64(row0 + i) * g)
        x, mk, o = X[i], mask_out[i], out[i]
        for p in range((k + 3) // 4):  # one hash, four 16-bit draws
            h = _mix64(rk + uint64(p + 1) * g)
            for u in range(min(4, k - 4 * p)):
                j = 4 * p + u
                m = scale if ((h >> uint64(16 * u)) & low) < thr else zero
                mk[j] = m
                o[j] = x[j] * m


# --------------------------------------------------------------------------- one item on one shard
@njit(**_OPTS)
def _view(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape(rows, cols)


@njit(**_OPTS)
def _channels(r):
    """``(k, positions)`` of a BatchNorm / Activation row: its n_out values are ``positions`` rows of k."""
    k = r[P_C] if r[P_C] > 0 else r[P_N_OUT]
    return k, r[P_N_OUT] // k


@njit(**_OPTS)
def _forward_row(q, phase, ops, fops, params, wb, st, st0, m, row0, step):
    n_in, n_out = ops[q, P_N_IN], ops[q, P_N_OUT]
    A_in = _view(wb, ops[q, P_IN], m, n_in)
    Z = _view(wb, ops[q, P_Z], m, n_out)
    A = _view(wb, ops[q, P_OUT], m, n_out)
    op = ops[q, P_OP]
    p0, p1 = ops[q, P_PARAM0], ops[q, P_PARAM1]
    if op == OP_CONV2D or op == OP_MAXPOOL2D or op == OP_AVGPOOL2D:
        plan_conv.forward_row(ops[q], fops[q, F_ALPHA], params, wb, m)
    elif op == OP_DENSE:
        np.dot(A_in, params[p0:p0 + n_in * n_out].reshape(n_in, n_out), Z)
        dense._bias_activation(Z, params[p1:p1 + n_out], ops[q, P_ACT], fops[q, F_ALPHA], A)
    elif op == OP_DROPOUT:
        dropout_forward(A_in, ops[q, P_SEED], step, row0, fops[q, F_RATE], Z, A)
    elif op == OP_LAYERNORM:  # stats: LN_STATS_K * k scratch (the Cython row's), the m rows' means, inv_std
        a = ops[q, P_STATS] + LN_STATS_K * n_out
        _ln_forward(A_in, params[p0:p0 + n_out], params[p1:p1 + n_out], fops[q, F_EPS], st[a:a + m],
                    st[a + m:a + 2 * m], A)
    elif op == OP_ACTIVATION:
        k, pos = _channels(ops[q])
        activations.activation_forward(_view(wb, ops[q, P_IN], m * pos, k), ops[q, P_ACT], fops[q, F_ALPHA],
                                       _view(wb, ops[q, P_OUT], m * pos, k))
    elif op == OP_BATCHNORM:
        # per feature, or per channel of feature maps: rows of n_out values read as m * pos rows of k
        k, pos = _channels(ops[q])
        rows = m * pos
        X2, A2 = _view(wb, ops[q, P_IN], rows, k), _view(wb, ops[q, P_OUT], rows, k)
        a = ops[q, P_STATS]
        if phase == 0:  # this shard's mean and sum of squared deviations: one pass, as the Cython row
            for j in range(k):  # float64 sums of x - K with K = the first row (robust at large means)
                st[a + j] = 0.0
                st[a + k + j] = 0.0
            for i in range(1, rows):
                for j in range(k):
                    d = float(X2[i, j]) - float(X2[0, j])
                    st[a + j] += d
                    st[a + k + j] += d * d
            for j in range(k):
                s1 = st[a + j]
                st[a + j] = float(X2[0, j]) + s1 / rows
                st[a + k + j] = max(st[a + k + j] - s1 * s1 / rows, 0.0)
        else:  # normalize with the batch statistics the sync left in shard 0's stats; Xhat is not stored
            gamma, beta = params[p0:p0 + k], params[p1:p1 + k]
            relu = ops[q, P_ACT] == ACT_RELU  # a ReLU folded into the row (engine.plan)
            for i in range(rows):
                for j in range(k):
                    xh = (X2[i, j] - st0[a + 2 * k + j]) * st0[a + 3 * k + j]
                    y = float(gamma[j]) * xh + float(beta[j])
                    A2[i, j] = 0.0 if (relu and y <= 0.0) else y  # NaN propagates, as the ReLU kernels
    # other codes are refused by plan_api.check_codes before any step runs


@njit(**_OPTS)
def _backward_row(q, phase, ops, fops, params, g, wofs, wb, st, st0, m, m_total):
    n_rows = ops.shape[0]
    n_in, n_out = ops[q, P_N_IN], ops[q, P_N_OUT]
    # The output gradient of row q sits in the W_DA block for the last row, then alternates.
    if (n_rows - 1 - q) % 2 == 0:
        dA_off, dX_off = wofs[W_DA], wofs[W_DX]
    else:
        dA_off, dX_off = wofs[W_DX], wofs[W_DA]
    dA = _view(wb, dA_off, m, n_out)
    A_in = _view(wb, ops[q, P_IN], m, n_in)
    need = ops[q, P_NEED_DX] != 0
    # Gradient blocks are sized for the input gradients backward computes: no view when none is needed.
    dX = _view(wb, dX_off, m, n_in) if need else A_in
    Z = _view(wb, ops[q, P_Z], m, n_out)
    A = _view(wb, ops[q, P_OUT], m, n_out)
    op = ops[q, P_OP]
    p0, p1 = ops[q, P_PARAM0], ops[q, P_PARAM1]
    if op == OP_CONV2D or op == OP_MAXPOOL2D or op == OP_AVGPOOL2D:
        plan_conv.backward_row(ops[q], fops[q, F_ALPHA], params, g, wofs, wb, dA_off, dX_off, m)
    elif op == OP_DENSE:
        dense._dense_backward(A_in, params[p0:p0 + n_in * n_out].reshape(n_in, n_out), Z, A, dA, ops[q, P_ACT],
                            fops[q, F_ALPHA], _view(wb, wofs[W_DZ], m, n_out),
                            g[p0:p0 + n_in * n_out].reshape(n_in, n_out), g[p1:p1 + n_out], dX, need)
    elif op == OP_DROPOUT:
        if need:
            for i in range(m):
                for j in range(n_in):
                    dX[i, j] = dA[i, j] * Z[i, j]
    elif op == OP_LAYERNORM:  # Xhat recomputed from the row input and the forward's means and inv_std
        a = ops[q, P_STATS] + LN_STATS_K * n_out
        mean, inv = st[a:a + m], st[a + m:a + 2 * m]
        if need:
            _ln_backward(dA, A_in, mean, inv, params[p0:p0 + n_out], g[p0:p0 + n_out], g[p1:p1 + n_out], dX)
        else:
            _ln_backward(dA, A_in, mean, inv, params[p0:p0 + n_out], g[p0:p0 + n_out], g[p1:p1 + n_out], None)
    elif op == OP_ACTIVATION:
        if need:
            k, pos = _channels(ops[q])
            activations.activation_backward(_view(wb, ops[q, P_IN], m * pos, k), _view(wb, ops[q, P_OUT], m * pos, k),
                                            _view(wb, dA_off, m * pos, k), ops[q, P_ACT], fops[q, F_ALPHA],
                                            _view(wb, dX_off, m * pos, k))
    elif op == OP_BATCHNORM:
        k, pos = _channels(ops[q])  # per channel of feature maps: m * pos rows of k
        rows = m * pos
        dA2, X2 = _view(wb, dA_off, rows, k), _view(wb, ops[q, P_IN], rows, k)  # Xhat recomputed from x
        a = ops[q, P_STATS]
        if phase == 0:  # this shard's sums of dY and dY * Xhat: its dbeta and dgamma
            relu = ops[q, P_ACT] == ACT_RELU  # the folded ReLU: dY masked in place (phase 1 reads it too)
            A2 = _view(wb, ops[q, P_OUT], rows, k)
            zero, one = dA2.dtype.type(0), dA2.dtype.type(1)
            for j in range(k):
                st[a + 4 * k + j] = 0.0
                st[a + 5 * k + j] = 0.0
            for i in range(rows):
                for j in range(k):
                    if relu:  # a multiply by (out > 0), as the Cython kernel: a NaN dY stays NaN
                        dA2[i, j] = dA2[i, j] * (one if A2[i, j] > zero else zero)
                    d = float(dA2[i, j])
                    st[a + 4 * k + j] += d
                    st[a + 5 * k + j] += d * (float(X2[i, j]) - st0[a + 2 * k + j])
            for j in range(k):
                st[a + 5 * k + j] *= st0[a + 3 * k + j]  # sum dY * (x - mean) * inv_std = sum dY * Xhat
                g[p1 + j] = st[a + 4 * k + j]
                g[p0 + j] = st[a + 5 * k + j]
        else:  # input gradient from the factors the sync left in shard 0's stats (see _sync)
            dX2 = _view(wb, dX_off, rows, k)
            for i in range(rows):
                for j in range(k):
                    dX2[i, j] = st0[a + 2 * k + j] * dA2[i, j] - st0[a + 4 * k + j] - X2[i, j] * st0[a + 5 * k + j]


@njit(**_OPTS)
def _loss(ops, wofs, wb, ny, loss_code, loss_f, m, scale, result):
    """Loss sum and correct count of the shard into result[0:2]; output gradient into the W_DA block."""
    q = ops.shape[0] - 1
    k = ops[q, P_N_OUT]
    out = _view(wb, ops[q, P_OUT], m, k)
    Yg = _view(wb, wofs[W_Y], m, ny)
    dA = _view(wb, wofs[W_DA], m, k)
    if loss_code == LOSS_MAE:
        result[0] = _mae(out, Yg, scale, dA)
        result[1] = 0.0
    elif loss_code == LOSS_HUBER:
        result[0] = _huber(out, Yg, loss_f[0], scale, dA)
        result[1] = 0.0
    elif loss_code == LOSS_FOCAL:
        result[0] = _focal(out, Yg, loss_f[0], loss_f[1:1 + k], scale, dA)
        result[1] = losses.count_correct(LOSS_SOFTMAX_CE, out, Yg)
    else:
        result[0] = losses.loss_forward_backward(loss_code, out, Yg, scale, dA)
        result[1] = losses.count_correct(loss_code, out, Yg)


@njit(**_OPTS)
def _penalties(ops, fops, params, g):
    """Add the L1/L2 gradients of every penalised dense weight to ``g``; return the penalty value."""
    total = 0.0
    for q in range(ops.shape[0]):
        l1, l2 = fops[q, F_L1], fops[q, F_L2]
        if ops[q, P_OP] != OP_DENSE or (l1 <= 0 and l2 <= 0):
            continue
        p0 = ops[q, P_PARAM0]
        size = ops[q, P_N_IN] * ops[q, P_N_OUT]
        W = params[p0:p0 + size]
        dW = g[p0:p0 + size]
        t = W.dtype.type
        a1, a2 = t(l1), t(2.0 * l2)
        zero = t(0)
        s1, s2 = 0.0, 0.0
        for i in range(size):
            w = W[i]
            s1 += abs(float(w))
            s2 += float(w) * float(w)
            sign = t(1) if w > zero else (t(-1) if w < zero else zero)
            dW[i] += a1 * sign + a2 * w
        total += l1 * s1 + l2 * s2
    return total


@njit(**_OPTS)
def _run_items(items, lo, hi, X, Y, perm, start, ops, fops, wofs, params, g, wb, st, st0,
               loss_code, loss_f, m, m_total, row0, step, result):
    """Items lo..hi-1 of the schedule on one shard: rows row0 .. row0+m-1 of the batch at perm[start:]."""
    n_in0 = ops[0, P_N_IN]
    ny = Y.shape[1]
    for it in range(lo, hi):
        kind, q, phase = items[it, 0], items[it, 1], items[it, 2]
        if kind == IT_GATHER:
            idx = perm[start + row0:start + row0 + m]
            driver.gather_rows(X, idx, _view(wb, wofs[W_X], m, n_in0))
            driver.gather_rows(Y, idx, _view(wb, wofs[W_Y], m, ny))
        elif kind == IT_FORWARD:
            _forward_row(q, phase, ops, fops, params, wb, st, st0, m, row0, step)
        elif kind == IT_LOSS:
            _loss(ops, wofs, wb, ny, loss_code, loss_f, m, 1.0 / m_total, result)
        elif kind == IT_BACKWARD:
            _backward_row(q, phase, ops, fops, params, g, wofs, wb, st, st0, m, m_total)
        elif kind == IT_PENALTY:
            if row0 == 0:  # once per step, by the first shard
                result[2] = _penalties(ops, fops, params, g)


@njit(**_OPTS)
def _shard_rows_of(m, n_shards, s):
    per = (m + n_shards - 1) // n_shards
    return s * per, min(per, m - s * per)


@njit(**_OPTS)
def _sync(kind, q, ops, fops, params, buffers, stats, m, n_shards):
    """The serial combine after a section: BatchNorm statistics across shards, in shard order."""
    if kind != SYNC_BN_FORWARD and kind != SYNC_BN_BACKWARD:
        return
    k, pos = _channels(ops[q])
    a = ops[q, P_STATS]
    m_all = m * pos  # the statistics' count: rows x positions
    if kind == SYNC_BN_FORWARD:
        n_acc = 0
        for s in range(n_shards):  # Chan et al.'s pairwise combination of (count, mean, M2)
            _, m_s = _shard_rows_of(m, n_shards, s)
            if m_s <= 0:
                continue
            m_s *= pos
            for j in range(k):
                mean_b, m2_b = stats[s, a + j], stats[s, a + k + j]
                if n_acc == 0:
                    stats[0, a + 2 * k + j] = mean_b
                    stats[0, a + 3 * k + j] = m2_b
                else:
                    n_t = n_acc + m_s
                    delta = mean_b - stats[0, a + 2 * k + j]
                    stats[0, a + 2 * k + j] += delta * m_s / n_t
                    stats[0, a + 3 * k + j] += m2_b + delta * delta * n_acc * m_s / n_t
            n_acc += m_s
        mom, eps = fops[q, F_MOMENTUM], fops[q, F_EPS]
        rm, rv = ops[q, P_BUF0], ops[q, P_BUF1]
        for j in range(k):
            mean, m2 = stats[0, a + 2 * k + j], stats[0, a + 3 * k + j]
            buffers[rm + j] = mom * buffers[rm + j] + (1.0 - mom) * mean
            if m_all > 1:
                buffers[rv + j] = mom * buffers[rv + j] + (1.0 - mom) * (m2 / (m_all - 1.0))
            stats[0, a + 3 * k + j] = 1.0 / math.sqrt(m2 / m_all + eps)
    else:
        for s in range(1, n_shards):
            _, m_s = _shard_rows_of(m, n_shards, s)
            if m_s <= 0:
                continue
            for j in range(4 * k, 6 * k):
                stats[0, a + j] += stats[s, a + j]
        # dX = c*dY - c*sum(dY)/m - Xhat*c*sum(dY*Xhat)/m with c = gamma*inv_std and Xhat = (x - mean)*inv_std
        # recomputed: c*dY - (cb - mean*cx) - x*cx with cx = inv_std*c*sum(dY*Xhat)/m: the factors, once.
        p0 = ops[q, P_PARAM0]
        for j in range(k):
            mean, inv = stats[0, a + 2 * k + j], stats[0, a + 3 * k + j]
            c = float(params[p0 + j]) * inv
            cx = stats[0, a + 5 * k + j] * c / m_all * inv
            stats[0, a + 2 * k + j] = c  # the batch mean is not needed any more
            stats[0, a + 4 * k + j] = stats[0, a + 4 * k + j] * c / m_all - mean * cx
            stats[0, a + 5 * k + j] = cx


@njit(**_OPTS)
def _steps_serial(X, Y, perm, starts, batch_size, ops, fops, items, sections, wofs, loss_code, loss_f,
                  params, grads, buffers, stats, work, opt, state, hyper, lrs, step0, update,
                  batch_loss, batch_correct):
    n = perm.shape[0]
    h = hyper.copy()
    result = np.zeros(3)
    wb = work[0]
    st = stats[0]
    clip = hyper[H_CLIP_NORM] > 0 or hyper[H_CLIP_VALUE] > 0
    if not update:
        grads[:] = 0
    acc = grads if update else np.empty_like(grads)
    g = grads if update else acc
    for j in range(starts.shape[0]):
        start = starts[j]
        m = min(batch_size, n - start)
        step = step0 + j + 1
        result[:] = 0.0
        for sec in range(sections.shape[0]):
            _run_items(items, sections[sec, 0], sections[sec, 1], X, Y, perm, start, ops, fops, wofs, params,
                       g, wb, st, st, loss_code, loss_f, m, m, 0, step, result)
            _sync(sections[sec, 2], sections[sec, 3], ops, fops, params, buffers, stats, m, 1)
        batch_loss[j] = result[0] / m + result[2]
        batch_correct[j] = result[1]
        if update:
            if clip:  # the norm pass costs as much as Adam: only when asked
                optim.clip_gradients(grads, hyper[H_CLIP_NORM], hyper[H_CLIP_VALUE])
            h[H_LR] = lrs[j]
            optim._update_slice(opt, params, grads, state, 0, params.shape[0], h, step)
        else:
            for i in range(grads.shape[0]):
                grads[i] += acc[i]


@njit(parallel=True, **_OPTS)
def _steps_sharded(X, Y, perm, starts, batch_size, ops, fops, items, sections, wofs, loss_code, loss_f,
                   params, grads, buffers, stats, work, opt, state, hyper, lrs, step0, update,
                   batch_loss, batch_correct):
    n = perm.shape[0]
    n_shards = work.shape[0]
    n_params = params.shape[0]
    g_off = wofs[W_GRAD]
    h = hyper.copy()
    result = np.zeros((n_shards, 3))
    partial = np.zeros((n_params + _common.CHUNK - 1) // _common.CHUNK)
    if not update:
        grads[:] = 0
    for j in range(starts.shape[0]):
        start = starts[j]
        m = min(batch_size, n - start)
        step = step0 + j + 1
        for sec in range(sections.shape[0]):
            lo, hi = sections[sec, 0], sections[sec, 1]
            for s in prange(n_shards):
                row0, m_s = _shard_rows_of(m, n_shards, s)
                if m_s <= 0:
                    if sec == 0:  # an idle shard adds nothing to the sums
                        work[s, g_off:g_off + n_params] = 0
                        result[s, 0] = 0.0
                        result[s, 1] = 0.0
                        result[s, 2] = 0.0
                    continue
                if sec == 0:
                    result[s, 0] = 0.0
                    result[s, 1] = 0.0
                    result[s, 2] = 0.0
                _run_items(items, lo, hi, X, Y, perm, start, ops, fops, wofs, params,
                           work[s, g_off:g_off + n_params], work[s], stats[s], stats[0],
                           loss_code, loss_f, m_s, m, row0, step, result[s])
            _sync(sections[sec, 2], sections[sec, 3], ops, fops, params, buffers, stats, m, n_shards)
        loss_sum, correct, penalty = 0.0, 0.0, 0.0
        for s in range(n_shards):  # fixed order: results do not depend on the thread schedule
            loss_sum += result[s, 0]
            correct += result[s, 1]
            penalty += result[s, 2]
        batch_loss[j] = loss_sum / m + penalty
        batch_correct[j] = correct
        if update:
            h[H_LR] = lrs[j]
            optim._reduce_and_update(opt, params, grads, work, g_off, state, h, step,
                                   hyper[H_CLIP_NORM], hyper[H_CLIP_VALUE], partial)
        else:
            for s in range(n_shards):
                for i in range(n_params):
                    grads[i] += work[s, g_off + i]


def _run(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct, update):
    check_codes(plan)
    args = (X, Y, perm, batch_starts, plan.batch_size, plan.ops, plan.fops, plan.items, plan.sections,
            plan.wofs, plan.loss_code, plan.loss_f, plan.params, plan.grads, plan.buffers, plan.stats, plan.work,
            plan.opt_code, plan.state, plan.hyper, lrs, step0, update, batch_loss, batch_correct)
    # Numba cannot set the FPU's flush-to-zero mode; the Cython extension can, for this thread.
    csr = driver._ftz_on() if driver._ftz_on is not None else None
    try:
        if plan.n_shards == 1:
            _steps_serial(*args)
        else:
            driver._parallel_call(_steps_sharded, args)
    finally:
        if csr is not None:
            driver._ftz_restore(csr)


train_steps, grad_steps, apply_update = entry_points(_run, optim.clip_gradients, optim.optimizer_update)
