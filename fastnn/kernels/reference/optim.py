"""Reference gradient clipping and optimizers (numpy, PyTorch semantics)."""
import math

import numpy as np

from ..codes import (
    OPT_ADAGRAD, OPT_ADAM, OPT_RMSPROP, OPT_SGD,
    H_LR, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_MOMENTUM, H_NESTEROV, H_DECOUPLED,
)


def clip_gradients(grads, clip_norm, clip_value):
    """Clip elementwise to [-clip_value, clip_value] (if > 0), then scale to global norm <= clip_norm (if > 0).

    Returns the global L2 norm after value clipping and before norm scaling.
    """
    if clip_value > 0:
        np.clip(grads, -clip_value, clip_value, out=grads)
    norm = float(np.sqrt(np.dot(grads.astype(np.float64), grads.astype(np.float64))))
    if clip_norm > 0 and norm > clip_norm:
        grads *= grads.dtype.type(clip_norm / (norm + 1e-12))
    return norm


# --------------------------------------------------------------------------- optimizers
def optimizer_update(opt, params, grads, state, hyper, step):
    """One in-place update of the flat ``params`` from ``grads``.

    ``state`` is a (n_slots, n_params) array owned by the optimizer
    (SGD: velocity; Adam: m, v; RMSprop: mean square; Adagrad: sum of squares);
    ``hyper`` a float64 vector indexed by the ``H_*`` codes; ``step`` counts from 1.
    PyTorch semantics: L2 weight decay is added to the gradient, except for
    decoupled (AdamW) decay which shrinks the weights by ``lr*weight_decay``.
    """
    dt = params.dtype.type
    lr = hyper[H_LR]
    wd = hyper[H_WEIGHT_DECAY]
    g = grads.astype(params.dtype, copy=True)
    if wd != 0 and not (opt == OPT_ADAM and hyper[H_DECOUPLED] != 0):
        g += dt(wd) * params
    if opt == OPT_SGD:
        mu = hyper[H_MOMENTUM]
        if mu != 0:
            vel = state[0]
            vel *= dt(mu)
            vel += g
            if hyper[H_NESTEROV] != 0:
                g = g + dt(mu) * vel
            else:
                g = vel.copy()
        params -= dt(lr) * g
    elif opt == OPT_ADAM:
        b1, b2, eps = hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPS]
        if wd != 0 and hyper[H_DECOUPLED] != 0:
            params *= dt(1 - lr * wd)
        m, v = state[0], state[1]
        m *= dt(b1)
        m += dt(1 - b1) * g
        v *= dt(b2)
        v += dt(1 - b2) * g * g
        step_size = lr / (1 - b1 ** step)
        bc2_sqrt = math.sqrt(1 - b2 ** step)
        params -= dt(step_size) * m / (np.sqrt(v) / dt(bc2_sqrt) + dt(eps))
    elif opt == OPT_RMSPROP:
        rho, eps = hyper[H_BETA2], hyper[H_EPS]
        sq = state[0]
        sq *= dt(rho)
        sq += dt(1 - rho) * g * g
        params -= dt(lr) * g / (np.sqrt(sq) + dt(eps))
    elif opt == OPT_ADAGRAD:
        eps = hyper[H_EPS]
        acc = state[0]
        acc += g * g
        params -= dt(lr) * g / (np.sqrt(acc) + dt(eps))
    else:
        raise ValueError(f"unknown optimizer code {opt}")



# --------------------------------------------------------------------------- row shards (issue 12)
def reduce_gradients(shard_grads, lo, hi, clip_value, want_norm, grads_out):
    """``grads_out[lo:hi]`` = the sum of the rows ``shard_grads[s, lo:hi]``, in row order, then clipped to
    ``[-clip_value, clip_value]`` (if > 0).

    The row-sharded runner's reduction of one thread's span of the parameters. A row may be
    ``grads_out`` itself (the one-row sum is then only the clip).

    Returns
    -------
    float
        The span's sum of squares (float64) if ``want_norm``, else -1.
    """
    n = len(grads_out)
    if shard_grads.ndim != 2 or shard_grads.shape[0] < 1 or shard_grads.shape[1] != n:
        raise ValueError(f"shard_grads must be (n_shards >= 1, {n}) like grads_out, got {shard_grads.shape}")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} gradients")
    g = grads_out[lo:hi]
    total = shard_grads[0, lo:hi].astype(grads_out.dtype)
    for s in range(1, shard_grads.shape[0]):
        total += shard_grads[s, lo:hi]
    g[...] = total
    if clip_value > 0:
        np.clip(g, -clip_value, clip_value, out=g)
    if not want_norm:
        return -1.0
    g64 = g.astype(np.float64)
    return float(np.dot(g64, g64))


def update_span(opt, params, grads, state, hyper, step, lo, hi, scale):
    """``grads[lo:hi] *= scale`` (if != 1: a clip-by-norm factor), then :func:`optimizer_update` of
    ``params[lo:hi]`` with its state columns: one thread's span of the row-sharded runner's update."""
    n = len(params)
    if len(grads) != n or (state.size and state.shape[-1] != n):
        raise ValueError(f"grads and the state rows must have the {n} entries of params")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} parameters")
    optimizer_update(opt, params[:0], grads[:0], state[:, :0], hyper, step)  # an unknown code raises first
    if scale != 1:
        grads[lo:hi] *= params.dtype.type(scale)
    optimizer_update(opt, params[lo:hi], grads[lo:hi], state[:, lo:hi], hyper, step)
