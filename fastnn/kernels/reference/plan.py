"""Reference plan driver (numpy): the schedule of :mod:`fastnn.engine.plan`, executed plainly.

The readable oracle of the compiled plan drivers: the same items, sections,
syncs and shard splits, in loops over shards instead of threads, with the
reference kernels. Same entry points as :mod:`fastnn.kernels.numba.plan`.
"""
import numpy as np

from . import dense, losses, norm, optim, plan_conv
from .activations import activation_backward, activation_forward
from ..plan_api import check_codes, entry_points
from ..codes import (
    ACT_RELU, F_ALPHA, F_EPS, F_L1, F_L2, F_MOMENTUM, F_RATE, IT_BACKWARD, IT_FORWARD, IT_GATHER, IT_LOSS, IT_PENALTY,
    LOSS_FOCAL, LOSS_HUBER, LOSS_MAE, LOSS_SOFTMAX_CE, OP_ACTIVATION, OP_AVGPOOL2D, OP_CONV2D, OP_DENSE, OP_DROPOUT,
    LN_STATS_K, OP_LAYERNORM, OP_MAXPOOL2D, P_ACT, P_C,
    P_BUF0, P_BUF1, P_IN, P_NEED_DX, P_N_IN, P_N_OUT, P_OP, P_OUT, P_PARAM0, P_PARAM1, P_SEED, P_STATS, P_Z,
    SYNC_BN_BACKWARD, SYNC_BN_FORWARD, W_DA, W_DX, W_DZ, W_GRAD, W_X, W_Y,
)
from ..dropout_ref import dropout_forward



def _view(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape(rows, cols)


def _channels(row):
    """``(k, positions)`` of a BatchNorm / Activation row: its n_out values are ``positions`` rows of k."""
    k = int(row[P_C]) if row[P_C] > 0 else int(row[P_N_OUT])
    return k, int(row[P_N_OUT]) // k


def _forward(q, phase, plan, wb, st, st0, m, row0, step):
    ops, fops, params = plan.ops, plan.fops, plan.params
    n_in, n_out = ops[q, P_N_IN], ops[q, P_N_OUT]
    A_in, Z, A = _view(wb, ops[q, P_IN], m, n_in), _view(wb, ops[q, P_Z], m, n_out), _view(wb, ops[q, P_OUT], m, n_out)
    op, p0, p1 = ops[q, P_OP], ops[q, P_PARAM0], ops[q, P_PARAM1]
    a = ops[q, P_STATS]  # BatchNorm's statistics; LayerNorm's: LN_STATS_K * k scratch, then m means, m inv_std
    if op in (OP_CONV2D, OP_MAXPOOL2D, OP_AVGPOOL2D):
        plan_conv.forward(ops[q], fops[q, F_ALPHA], params, wb, m)
    elif op == OP_DENSE:
        W = params[p0:p0 + n_in * n_out].reshape(n_in, n_out)
        dense.dense_forward(A_in, W, params[p1:p1 + n_out], ops[q, P_ACT], fops[q, F_ALPHA], Z, A)
    elif op == OP_DROPOUT:
        dropout_forward(A_in, int(ops[q, P_SEED]), step, row0, fops[q, F_RATE], Z, A)
    elif op == OP_LAYERNORM:
        a += LN_STATS_K * n_out
        norm.layernorm_rows_forward(A_in, params[p0:p0 + n_out], params[p1:p1 + n_out], fops[q, F_EPS],
                                    st[a:a + m], st[a + m:a + 2 * m], A)
    elif op == OP_ACTIVATION:
        k, pos = _channels(ops[q])
        activation_forward(A_in.reshape(m * pos, k), ops[q, P_ACT], fops[q, F_ALPHA], A.reshape(m * pos, k))
    elif phase == 0:  # BatchNorm: this shard's mean and M2 per feature (per channel of feature maps)
        k, pos = _channels(ops[q])
        x = A_in.reshape(m * pos, k).astype(np.float64)
        st[a:a + k] = x.mean(axis=0)
        st[a + k:a + 2 * k] = ((x - st[a:a + k]) ** 2).sum(axis=0)
    else:
        k, pos = _channels(ops[q])
        xhat = (A_in.reshape(m * pos, k).astype(np.float64) - st0[a + 2 * k:a + 3 * k]) * st0[a + 3 * k:a + 4 * k]
        Z.reshape(m * pos, k)[...] = xhat
        y = params[p0:p0 + k].astype(np.float64) * xhat + params[p1:p1 + k]
        A.reshape(m * pos, k)[...] = np.maximum(y, 0) if ops[q, P_ACT] == ACT_RELU else y  # a fused ReLU


def _backward(q, phase, plan, g, wb, st, st0, m, m_total):
    ops, fops, params, wofs = plan.ops, plan.fops, plan.params, plan.wofs
    n_in, n_out = ops[q, P_N_IN], ops[q, P_N_OUT]
    even = (len(ops) - 1 - q) % 2 == 0
    dA = _view(wb, wofs[W_DA] if even else wofs[W_DX], m, n_out)
    dX = _view(wb, wofs[W_DX] if even else wofs[W_DA], m, n_in) if ops[q, P_NEED_DX] else None
    A_in, Z, A = _view(wb, ops[q, P_IN], m, n_in), _view(wb, ops[q, P_Z], m, n_out), _view(wb, ops[q, P_OUT], m, n_out)
    op, p0, p1 = ops[q, P_OP], ops[q, P_PARAM0], ops[q, P_PARAM1]
    a = ops[q, P_STATS]  # BatchNorm's statistics; LayerNorm's: LN_STATS_K * k scratch, then m means, m inv_std
    if op in (OP_CONV2D, OP_MAXPOOL2D, OP_AVGPOOL2D):
        plan_conv.backward(ops[q], fops[q, F_ALPHA], params, g, wofs, wb, dA, dX, m)
    elif op == OP_DENSE:
        W = params[p0:p0 + n_in * n_out].reshape(n_in, n_out)
        dense.dense_backward(A_in, W, Z, A, dA, ops[q, P_ACT], fops[q, F_ALPHA], _view(wb, wofs[W_DZ], m, n_out),
                         g[p0:p0 + n_in * n_out].reshape(n_in, n_out), g[p1:p1 + n_out], dX)
    elif op == OP_DROPOUT:
        if dX is not None:
            np.multiply(dA, Z, out=dX)
    elif op == OP_LAYERNORM:
        a += LN_STATS_K * n_out
        norm.layernorm_rows_backward(dA, A_in, st[a:a + m], st[a + m:a + 2 * m], params[p0:p0 + n_out],
                                     g[p0:p0 + n_out], g[p1:p1 + n_out], dX)
    elif op == OP_ACTIVATION:
        k, pos = _channels(ops[q])
        if dX is not None:
            activation_backward(A_in.reshape(m * pos, k), A.reshape(m * pos, k), dA.reshape(m * pos, k),
                                ops[q, P_ACT], fops[q, F_ALPHA], dX.reshape(m * pos, k))
    elif phase == 0:  # BatchNorm: this shard's sums of dY and dY * Xhat, its dbeta and dgamma
        k, pos = _channels(ops[q])
        if ops[q, P_ACT] == ACT_RELU:  # the fused ReLU: mask the output gradient in place (phase 1 reads it)
            dA *= A > 0  # a NaN dY stays NaN, as the compiled kernels
        d = dA.reshape(m * pos, k).astype(np.float64)
        st[a + 4 * k:a + 5 * k] = d.sum(axis=0)
        st[a + 5 * k:a + 6 * k] = (d * Z.reshape(m * pos, k)).sum(axis=0)
        g[p1:p1 + k] = st[a + 4 * k:a + 5 * k]
        g[p0:p0 + k] = st[a + 5 * k:a + 6 * k]
    else:
        k, pos = _channels(ops[q])
        dX.reshape(m * pos, k)[...] = (st0[a + 2 * k:a + 3 * k] * dA.reshape(m * pos, k) - st0[a + 4 * k:a + 5 * k]
                                       - Z.reshape(m * pos, k) * st0[a + 5 * k:a + 6 * k])


def _loss(plan, wb, ny, m, scale):
    ops, wofs = plan.ops, plan.wofs
    k = ops[-1, P_N_OUT]
    out, Yg, dA = _view(wb, ops[-1, P_OUT], m, k), _view(wb, wofs[W_Y], m, ny), _view(wb, wofs[W_DA], m, k)
    code, lf = plan.loss_code, plan.loss_f
    if code == LOSS_MAE:
        return losses.mae_forward_backward(out, Yg, scale, dA), 0
    if code == LOSS_HUBER:
        return losses.huber_forward_backward(out, Yg, lf[0], scale, dA), 0
    if code == LOSS_FOCAL:
        return losses.focal_forward_backward(out, Yg, lf[0], lf[1:1 + k], scale, dA), \
            losses.count_correct(LOSS_SOFTMAX_CE, out, Yg)
    return losses.loss_forward_backward(code, out, Yg, scale, dA), losses.count_correct(code, out, Yg)


def _penalties(plan, g):
    total = 0.0
    for q in range(len(plan.ops)):
        l1, l2 = plan.fops[q, F_L1], plan.fops[q, F_L2]
        if plan.ops[q, P_OP] != OP_DENSE or (l1 <= 0 and l2 <= 0):
            continue
        p0, size = plan.ops[q, P_PARAM0], plan.ops[q, P_N_IN] * plan.ops[q, P_N_OUT]
        W = plan.params[p0:p0 + size]
        g[p0:p0 + size] += W.dtype.type(l1) * np.sign(W) + W.dtype.type(2 * l2) * W
        total += l1 * float(np.abs(W).sum(dtype=np.float64)) + l2 * float(np.square(W, dtype=np.float64).sum())
    return total


def _sync(kind, q, plan, m, splits):
    ops, fops, stats, buffers = plan.ops, plan.fops, plan.stats, plan.buffers
    if kind in (SYNC_BN_FORWARD, SYNC_BN_BACKWARD):
        k, pos = _channels(ops[q])
        m = m * pos  # the statistics' count: rows x positions
        a = ops[q, P_STATS]
    if kind == SYNC_BN_FORWARD:
        n_acc, mean, m2 = 0, None, None
        for s, (_, m_s) in enumerate(splits):  # Chan et al.'s pairwise combination, in shard order
            if m_s <= 0:
                continue
            m_s *= pos
            mb, m2b = stats[s, a:a + k], stats[s, a + k:a + 2 * k]
            if n_acc == 0:
                mean, m2 = mb.copy(), m2b.copy()
            else:
                delta = mb - mean
                n_t = n_acc + m_s
                mean = mean + delta * m_s / n_t
                m2 = m2 + m2b + delta * delta * n_acc * m_s / n_t
            n_acc += m_s
        mom, eps = fops[q, F_MOMENTUM], fops[q, F_EPS]
        rm, rv = ops[q, P_BUF0], ops[q, P_BUF1]
        buffers[rm:rm + k] = mom * buffers[rm:rm + k] + (1.0 - mom) * mean
        if m > 1:
            buffers[rv:rv + k] = mom * buffers[rv:rv + k] + (1.0 - mom) * (m2 / (m - 1.0))
        stats[0, a + 2 * k:a + 3 * k] = mean
        stats[0, a + 3 * k:a + 4 * k] = 1.0 / np.sqrt(m2 / m + eps)
    elif kind == SYNC_BN_BACKWARD:
        for s in range(1, len(splits)):
            if splits[s][1] > 0:
                stats[0, a + 4 * k:a + 6 * k] += stats[s, a + 4 * k:a + 6 * k]
        # dX = c*dY - c*sum(dY)/m - Xhat*c*sum(dY*Xhat)/m with c = gamma*inv_std: the factors, once.
        p0 = ops[q, P_PARAM0]
        c = plan.params[p0:p0 + k].astype(np.float64) * stats[0, a + 3 * k:a + 4 * k]
        stats[0, a + 2 * k:a + 3 * k] = c
        stats[0, a + 4 * k:a + 6 * k] *= np.concatenate([c, c]) / m


def _step_gradient(plan, X, Y, perm, start, step, grads_out):
    """One batch through every section; the batch's gradient into grads_out. Returns (loss sum, correct, penalty, m)."""
    n_shards = plan.n_shards
    m = min(plan.batch_size, len(perm) - int(start))
    per = -(-m // n_shards)
    splits = [(s * per, min(per, m - s * per)) for s in range(n_shards)]
    shard_g = [grads_out] if n_shards == 1 else [plan.work[s, plan.wofs[W_GRAD]:] for s in range(n_shards)]
    results = np.zeros((n_shards, 3))
    n_in0, ny = plan.ops[0, P_N_IN], Y.shape[1]
    for s in range(n_shards):
        shard_g[s][...] = 0
    for lo, hi, kind, row in plan.sections:
        for s, (row0, m_s) in enumerate(splits):
            if m_s <= 0:
                continue
            wb, st, st0 = plan.work[s], plan.stats[s], plan.stats[0]
            for it_kind, q, phase in plan.items[lo:hi]:
                if it_kind == IT_GATHER:
                    idx = perm[start + row0:start + row0 + m_s]
                    _view(wb, plan.wofs[W_X], m_s, n_in0)[...] = X[idx]
                    _view(wb, plan.wofs[W_Y], m_s, ny)[...] = Y[idx]
                elif it_kind == IT_FORWARD:
                    _forward(q, phase, plan, wb, st, st0, m_s, row0, step)
                elif it_kind == IT_LOSS:
                    results[s, 0], results[s, 1] = _loss(plan, wb, ny, m_s, 1.0 / m)
                elif it_kind == IT_BACKWARD:
                    _backward(q, phase, plan, shard_g[s], wb, st, st0, m_s, m)
                elif it_kind == IT_PENALTY and s == 0:
                    results[s, 2] = _penalties(plan, shard_g[s])
        _sync(kind, row, plan, m, splits)
    if n_shards > 1:
        grads_out[...] = shard_g[0]
        for s in range(1, n_shards):
            grads_out += shard_g[s]
    return results[:, 0].sum(), results[:, 1].sum(), results[:, 2].sum(), m


def _run(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct, update):
    """One step per batch start; ``update=False`` sums the batches' gradients into plan.grads instead."""
    check_codes(plan)
    total = None if update else np.zeros_like(plan.grads)
    for j, start in enumerate(batch_starts):
        loss, correct, penalty, m = _step_gradient(plan, X, Y, perm, start, step0 + j + 1, plan.grads)
        batch_loss[j] = loss / m + penalty
        batch_correct[j] = correct
        if update:
            apply_update(plan, lrs[j], step0 + j + 1)
        else:
            total += plan.grads
    if not update:
        plan.grads[...] = total


train_steps, grad_steps, apply_update = entry_points(_run, optim.clip_gradients, optim.optimizer_update)
