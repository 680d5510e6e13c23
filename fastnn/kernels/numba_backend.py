"""Numba kernels: same signatures as :mod:`fastnn.kernels.reference`, compiled.

Elementwise work is fused into single passes (bias + activation after the
GEMM, activation derivative + bias gradient before it); GEMMs go to BLAS
through ``np.dot(a, b, out)``. The whole-run driver :func:`train_batches`
runs every mini-batch of an epoch in one call; with ``n_shards > 1`` each
batch is split into row shards processed in parallel (``prange``) with
single-threaded BLAS, and the shard gradients are summed in a fixed order,
so results do not depend on thread scheduling.

Why the odd-looking constants: an int literal such as ``1 - x`` promotes a
float32 loop to float64 and blocks SIMD, so hot loops take their constants
pre-cast with ``dtype.type``; ``error_model='numpy'`` lets divisions
vectorize. No ``fastmath`` flags that assume finite values: NaN must
propagate so the non-finite guard can see it.
"""
import math
import threading

import numba
import numpy as np
from numba import njit, prange

from . import layout as _layout
from .codes import (
    ACT_ELU, ACT_GELU, ACT_LEAKY_RELU, ACT_LINEAR, ACT_RELU, ACT_SIGMOID,
    ACT_SOFTMAX, ACT_TANH,
    LOSS_BCE_LOGITS, LOSS_MSE, LOSS_SOFTMAX_CE,
    OPT_ADAGRAD, OPT_ADAM, OPT_RMSPROP, OPT_SGD,
    H_LR, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_MOMENTUM, H_NESTEROV,
    H_DECOUPLED, H_CLIP_NORM, H_CLIP_VALUE,
)

NAME = "numba"
_OPTS = dict(cache=True, nogil=True, error_model="numpy")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CHUNK = 16384  # elements per parallel chunk of the flat-buffer passes

_shard_rows = njit(cache=True)(_layout.shard_rows)
_max_width = njit(cache=True)(_layout.max_width)


# --------------------------------------------------------------------------- activations
@njit(**_OPTS)
def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    n, k = Z.shape
    t = Z.dtype.type
    zero, one, half = t(0), t(1), t(0.5)
    a = t(alpha)
    c0, c1 = t(_SQRT_2_OVER_PI), t(0.044715)
    if act == ACT_SOFTMAX:
        for i in range(n):
            mx = Z[i, 0]
            for j in range(1, k):
                if Z[i, j] > mx:
                    mx = Z[i, j]
            s = zero
            for j in range(k):
                e = math.exp(Z[i, j] - mx)
                A_out[i, j] = e
                s += e
            inv = one / s
            for j in range(k):
                A_out[i, j] *= inv
        return
    for i in range(n):
        for j in range(k):
            z = Z[i, j]
            if act == ACT_LINEAR:
                r = z
            elif act == ACT_RELU:
                r = zero if z <= zero else z  # written so NaN propagates, like np.maximum
            elif act == ACT_LEAKY_RELU:
                r = z if z > zero else a * z
            elif act == ACT_ELU:
                r = z if z > zero else a * math.expm1(z)
            elif act == ACT_SIGMOID:
                e = math.exp(-abs(z))
                r = one / (one + e) if z >= zero else e / (one + e)
            elif act == ACT_TANH:
                r = math.tanh(z)
            elif act == ACT_GELU:
                r = half * z * (one + math.tanh(c0 * (z + c1 * z * z * z)))
            else:  # ACT_SILU
                e = math.exp(-abs(z))
                s = one / (one + e) if z >= zero else e / (one + e)
                r = z * s
            A_out[i, j] = r


@njit(inline="always", **_OPTS)
def _dact(z, a_val, g, act, alpha, zero, one, half, c0, c1, three):
    """dZ element from Z, A and dA (everything but softmax)."""
    if act == ACT_LINEAR:
        return g
    if act == ACT_RELU:
        return g if z > zero else zero
    if act == ACT_LEAKY_RELU:
        return g if z > zero else alpha * g
    if act == ACT_ELU:
        return g if z > zero else g * (a_val + alpha)
    if act == ACT_SIGMOID:
        return g * a_val * (one - a_val)
    if act == ACT_TANH:
        return g * (one - a_val * a_val)
    if act == ACT_GELU:
        t = math.tanh(c0 * (z + c1 * z * z * z))
        return g * (half * (one + t) + half * z * (one - t * t) * c0 * (one + three * c1 * z * z))
    # ACT_SILU
    e = math.exp(-abs(z))
    s = one / (one + e) if z >= zero else e / (one + e)
    return g * (s + z * s * (one - s))


@njit(**_OPTS)
def _activation_backward_db(Z, A, dA, act, alpha, dZ_out, db_out, want_db):
    """dZ = dA * f'(Z); optionally db = column sums of dZ, in the same pass."""
    n, k = Z.shape
    t = Z.dtype.type
    zero, one, half, three = t(0), t(1), t(0.5), t(3)
    a = t(alpha)
    c0, c1 = t(_SQRT_2_OVER_PI), t(0.044715)
    if want_db:
        for j in range(k):
            db_out[j] = zero
    if act == ACT_SOFTMAX:
        for i in range(n):
            s = zero
            for j in range(k):
                s += dA[i, j] * A[i, j]
            for j in range(k):
                dZ_out[i, j] = A[i, j] * (dA[i, j] - s)
    else:
        for i in range(n):
            for j in range(k):
                dZ_out[i, j] = _dact(Z[i, j], A[i, j], dA[i, j], act, a, zero, one, half, c0, c1, three)
    if want_db:
        for i in range(n):
            for j in range(k):
                db_out[j] += dZ_out[i, j]


@njit(**_OPTS)
def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    _activation_backward_db(Z, A, dA, act, alpha, dZ_out, dZ_out[0], False)


# --------------------------------------------------------------------------- dense layer
@njit(**_OPTS)
def _bias_activation(Z, b, act, alpha, A_out):
    n, k = Z.shape
    for i in range(n):
        for j in range(k):
            Z[i, j] += b[j]
    if act != ACT_LINEAR or A_out.ctypes.data != Z.ctypes.data:
        activation_forward(Z, act, alpha, A_out)


@njit(**_OPTS)
def dense_forward(X, W, b, act, alpha, Z_out, A_out):
    """Z = X @ W + b; A = f(Z)."""
    np.dot(X, W, Z_out)
    _bias_activation(Z_out, b, act, alpha, A_out)


@njit(**_OPTS)
def _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out, need_dX):
    _activation_backward_db(Z, A, dA, act, alpha, dZ_buf, db_out, True)
    np.dot(X.T, dZ_buf, dW_out)
    if need_dX:
        np.dot(dZ_buf, W.T, dX_out)


@njit(**_OPTS)
def dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out):
    """dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)."""
    if dX_out is None:
        _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dZ_buf, False)
    else:
        _dense_backward(X, W, Z, A, dA, act, alpha, dZ_buf, dW_out, db_out, dX_out, True)


# --------------------------------------------------------------------------- losses
@njit(**_OPTS)
def loss_forward_backward(loss, out, target, scale, dout):
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). See the reference."""
    n, k = out.shape
    t = out.dtype.type
    zero, one = t(0), t(1)
    total = 0.0  # float64 accumulator: the loss sum over a batch must not drift
    if loss == LOSS_SOFTMAX_CE:
        sc = t(scale)
        as_index = target.shape[1] == 1 and k > 1
        for i in range(n):
            mx = out[i, 0]
            for j in range(1, k):
                if out[i, j] > mx:
                    mx = out[i, j]
            s = zero
            for j in range(k):
                e = math.exp(out[i, j] - mx)
                dout[i, j] = e
                s += e
            log_s = math.log(s)
            inv = one / s
            if as_index:
                c = int(target[i, 0])
                total -= out[i, c] - mx - log_s
                for j in range(k):
                    dout[i, j] *= inv * sc
                dout[i, c] -= sc
            else:
                tsum = zero
                for j in range(k):
                    tj = target[i, j]
                    tsum += tj
                    if tj != zero:
                        total -= tj * (out[i, j] - mx - log_s)
                for j in range(k):
                    dout[i, j] = (dout[i, j] * inv * tsum - target[i, j]) * sc
    elif loss == LOSS_MSE:
        sc = t(2.0 * scale / k)
        for i in range(n):
            for j in range(k):
                d = out[i, j] - target[i, j]
                total += d * d
                dout[i, j] = d * sc
        total /= k
    elif loss == LOSS_BCE_LOGITS:
        sc = t(scale / k)
        for i in range(n):
            for j in range(k):
                z = out[i, j]
                y = target[i, j]
                e = math.exp(-abs(z))
                total += (z if z > zero else zero) - z * y + math.log1p(e)
                sig = one / (one + e) if z >= zero else e / (one + e)
                dout[i, j] = (sig - y) * sc
        total /= k
    return total


@njit(**_OPTS)
def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    n, k = out.shape
    correct = 0
    if loss == LOSS_SOFTMAX_CE:
        as_index = target.shape[1] == 1 and k > 1
        for i in range(n):
            best = 0
            for j in range(1, k):
                if out[i, j] > out[i, best]:
                    best = j
            if as_index:
                true = int(target[i, 0])
            else:
                true = 0
                for j in range(1, k):
                    if target[i, j] > target[i, true]:
                        true = j
            if best == true:
                correct += 1
    elif loss == LOSS_BCE_LOGITS:
        for i in range(n):
            ok = True
            for j in range(k):
                if (out[i, j] > 0) != (target[i, j] > 0.5):
                    ok = False
            if ok:
                correct += 1
    return correct


# --------------------------------------------------------------------------- batch gather
@njit(**_OPTS)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    k = X.shape[1]
    for i in range(idx.shape[0]):
        src = X[idx[i]]
        dst = out[i]
        for j in range(k):
            dst[j] = src[j]


# --------------------------------------------------------------------------- gradient clipping
@njit(**_OPTS)
def clip_gradients(grads, clip_norm, clip_value):
    """Clip to +-clip_value (if > 0), then to global L2 norm clip_norm (if > 0); return the norm."""
    n = grads.shape[0]
    t = grads.dtype.type
    if clip_value > 0:
        hi = t(clip_value)
        lo = -hi
        for i in range(n):
            g = grads[i]
            if g > hi:
                grads[i] = hi
            elif g < lo:
                grads[i] = lo
    ss = 0.0
    for i in range(n):
        ss += float(grads[i]) * float(grads[i])
    norm = math.sqrt(ss)
    if clip_norm > 0 and norm > clip_norm:
        f = t(clip_norm / (norm + 1e-12))
        for i in range(n):
            grads[i] *= f
    return norm


# --------------------------------------------------------------------------- optimizers
@njit(**_OPTS)
def _update_slice(opt, p, g, state, lo, hi, hyper, step):
    """Fused update of p[lo:hi] (slices taken first so the inner loops carry no index checks)."""
    t = p.dtype.type
    n = hi - lo
    p = p[lo:hi]
    g = g[lo:hi]
    lr = hyper[H_LR]
    wd = hyper[H_WEIGHT_DECAY]
    decoupled = opt == OPT_ADAM and hyper[H_DECOUPLED] != 0
    l2 = t(0.0 if decoupled else wd)
    if opt == OPT_SGD:
        mu = t(hyper[H_MOMENTUM])
        lr_t = t(lr)
        if hyper[H_MOMENTUM] == 0:
            for i in range(n):
                p[i] -= lr_t * (g[i] + l2 * p[i])
        else:
            vel = state[0, lo:hi]
            if hyper[H_NESTEROV] != 0:
                for i in range(n):
                    gi = g[i] + l2 * p[i]
                    v = mu * vel[i] + gi
                    vel[i] = v
                    p[i] -= lr_t * (gi + mu * v)
            else:
                for i in range(n):
                    v = mu * vel[i] + g[i] + l2 * p[i]
                    vel[i] = v
                    p[i] -= lr_t * v
    elif opt == OPT_ADAM:
        b1, b2 = hyper[H_BETA1], hyper[H_BETA2]
        m = state[0, lo:hi]
        v = state[1, lo:hi]
        b1_t, c1_t = t(b1), t(1 - b1)
        b2_t, c2_t = t(b2), t(1 - b2)
        step_size = t(lr / (1 - b1 ** step))
        inv_bc2_sqrt = t(1.0 / math.sqrt(1 - b2 ** step))
        eps = t(hyper[H_EPS])
        shrink = t(1 - lr * wd if decoupled else 1.0)
        for i in range(n):
            gi = g[i] + l2 * p[i]
            mi = b1_t * m[i] + c1_t * gi
            vi = b2_t * v[i] + c2_t * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] = p[i] * shrink - step_size * mi / (math.sqrt(vi) * inv_bc2_sqrt + eps)
    elif opt == OPT_RMSPROP:
        rho = hyper[H_BETA2]
        sq = state[0, lo:hi]
        rho_t, c_t = t(rho), t(1 - rho)
        lr_t, eps = t(lr), t(hyper[H_EPS])
        for i in range(n):
            gi = g[i] + l2 * p[i]
            s = rho_t * sq[i] + c_t * gi * gi
            sq[i] = s
            p[i] -= lr_t * gi / (math.sqrt(s) + eps)
    elif opt == OPT_ADAGRAD:
        acc = state[0, lo:hi]
        lr_t, eps = t(lr), t(hyper[H_EPS])
        for i in range(n):
            gi = g[i] + l2 * p[i]
            s = acc[i] + gi * gi
            acc[i] = s
            p[i] -= lr_t * gi / (math.sqrt(s) + eps)


@njit(**_OPTS)
def optimizer_update(opt, params, grads, state, hyper, step):
    """One fused in-place update of the flat ``params``; see the reference for the math."""
    _update_slice(opt, params, grads, state, 0, params.shape[0], hyper, step)


@njit(parallel=True, **_OPTS)
def _reduce_and_update(opt, params, grads, work, g_off, state, hyper, step, clip_norm, clip_value,
                       partial):
    """grads = sum of the shard gradients work[s, g_off:] (fixed order), clip, update: chunked over threads.

    ``partial`` (one float64 per chunk) receives per-chunk squared norms, summed serially
    so the global norm is the same whatever the thread schedule.
    """
    n = params.shape[0]
    n_chunks = partial.shape[0]
    t = params.dtype.type
    hi_v = t(clip_value)
    for c in prange(n_chunks):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        g = grads[lo:hi]
        sg = work[0, g_off + lo:g_off + hi]
        for i in range(hi - lo):
            g[i] = sg[i]
        for s in range(1, work.shape[0]):
            sg = work[s, g_off + lo:g_off + hi]
            for i in range(hi - lo):
                g[i] += sg[i]
        ss = 0.0
        for i in range(hi - lo):
            if clip_value > 0:
                if g[i] > hi_v:
                    g[i] = hi_v
                elif g[i] < -hi_v:
                    g[i] = -hi_v
            ss += float(g[i]) * float(g[i])
        partial[c] = ss
        if clip_norm <= 0:
            _update_slice(opt, params, grads, state, lo, hi, hyper, step)
    if clip_norm > 0:
        # A plain loop, not partial.sum(): inside a parallel function Numba turns .sum() into a
        # threaded reduction whose rounding depends on the thread count.
        ss = 0.0
        for c in range(n_chunks):
            ss += partial[c]
        norm = math.sqrt(ss)
        f = t(clip_norm / (norm + 1e-12)) if norm > clip_norm else t(1)
        for c in prange(n_chunks):
            lo = c * _CHUNK
            hi = min(n, lo + _CHUNK)
            g = grads[lo:hi]
            for i in range(hi - lo):
                g[i] *= f
            _update_slice(opt, params, grads, state, lo, hi, hyper, step)


# --------------------------------------------------------------------------- whole-run driver
@njit(**_OPTS)
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


@njit(**_OPTS)
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


@njit(**_OPTS)
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


@njit(parallel=True, **_OPTS)
def _run_sharded(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                 loss, opt, state, hyper, lrs, step0, work, batch_loss, batch_correct):
    n = perm.shape[0]
    n_shards = work.shape[0]
    n_params = params.shape[0]
    rows_cap = _shard_rows(batch_size, n_shards)
    g_off = work.shape[1] - n_params
    h = hyper.copy()
    result = np.zeros((n_shards, 2))
    partial = np.zeros((params.shape[0] + _CHUNK - 1) // _CHUNK)
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


def train_batches(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                  loss, opt, state, hyper, lrs, step0, n_shards, work, batch_loss, batch_correct):
    """Run many mini-batch steps of a Dense stack in compiled code; see the reference for the contract.

    ``work`` is a (n_shards, shard_stride) buffer from :func:`fastnn.kernels.layout.shard_stride`.
    """
    args = (X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
            loss, opt, state, hyper, lrs, step0, work, batch_loss, batch_correct)
    # Numba cannot set the FPU's flush-to-zero mode; the Cython extension can, for this thread
    # (the serial driver runs here). Denormals otherwise halve the speed of long Adam runs.
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
    from .._ext._kernels import flush_denormals_on as _ftz_on, flush_denormals_restore as _ftz_restore
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
