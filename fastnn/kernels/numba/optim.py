"""Numba gradient clipping and fused optimizer updates (an unknown optimizer code raises ValueError).

:func:`_reduce_and_update` sums the row shards' gradients in a fixed order,
clips and updates chunk by chunk over threads: results do not depend on the
thread schedule.
"""
import math

from numba import njit, prange

from ..codes import (
    OPT_ADAGRAD, OPT_ADAM, OPT_RMSPROP, OPT_SGD,
    H_LR, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_MOMENTUM, H_NESTEROV, H_DECOUPLED,
)
from ._common import CHUNK, OPTS

@njit(**OPTS)
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
@njit(**OPTS)
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
    else:
        raise ValueError("unknown optimizer code")


@njit(**OPTS)
def optimizer_update(opt, params, grads, state, hyper, step):
    """One fused in-place update of the flat ``params``; see the reference for the math."""
    _update_slice(opt, params, grads, state, 0, params.shape[0], hyper, step)


@njit(parallel=True, **OPTS)
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
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
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
            lo = c * CHUNK
            hi = min(n, lo + CHUNK)
            g = grads[lo:hi]
            for i in range(hi - lo):
                g[i] *= f
            _update_slice(opt, params, grads, state, lo, hi, hyper, step)


# --------------------------------------------------------------------------- row shards (issue 12)
@njit(**OPTS)
def _reduce_span(shard_grads, lo, hi, clip_value, want_norm, grads_out):
    g = grads_out[lo:hi]
    n = hi - lo
    sg = shard_grads[0, lo:hi]
    for i in range(n):
        g[i] = sg[i]
    for s in range(1, shard_grads.shape[0]):  # one pass per shard: the fixed order numpy's += had
        sg = shard_grads[s, lo:hi]
        for i in range(n):
            g[i] += sg[i]
    if clip_value > 0:
        hi_v = grads_out.dtype.type(clip_value)
        for i in range(n):
            if g[i] > hi_v:
                g[i] = hi_v
            elif g[i] < -hi_v:
                g[i] = -hi_v
    if not want_norm:
        return -1.0
    ss = 0.0
    for i in range(n):
        ss += float(g[i]) * float(g[i])
    return ss


def reduce_gradients(shard_grads, lo, hi, clip_value, want_norm, grads_out):
    """grads_out[lo:hi] = the shard rows' sum in row order, clipped to +-clip_value (if > 0); return the
    span's sum of squares if ``want_norm``, else -1 (compiled without the GIL)."""
    n = grads_out.shape[0]
    if shard_grads.ndim != 2 or shard_grads.shape[0] < 1 or shard_grads.shape[1] != n:
        raise ValueError(f"shard_grads must be (n_shards >= 1, {n}) like grads_out, got {shard_grads.shape}")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} gradients")
    return _reduce_span(shard_grads, int(lo), int(hi), float(clip_value), bool(want_norm), grads_out)


@njit(**OPTS)
def _update_span(opt, params, grads, state, hyper, step, lo, hi, scale):
    _update_slice(opt, params, grads, state, lo, lo, hyper, step)  # an unknown code raises before any write
    if scale != 1:
        f = grads.dtype.type(scale)
        for i in range(lo, hi):
            grads[i] *= f
    _update_slice(opt, params, grads, state, lo, hi, hyper, step)


def update_span(opt, params, grads, state, hyper, step, lo, hi, scale):
    """grads[lo:hi] *= scale (if != 1), then the fused update of params[lo:hi] (compiled without the GIL)."""
    n = params.shape[0]
    if grads.shape[0] != n or (state.size and state.shape[-1] != n):
        raise ValueError(f"grads and the state rows must have the {n} entries of params")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} parameters")
    _update_span(opt, params, grads, state, hyper, step, int(lo), int(hi), float(scale))
