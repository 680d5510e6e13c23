"""Plain-numpy reference kernels: the readable oracle every backend is tested against.

Every op here has the same signature in :mod:`fastnn.kernels.numba_backend`
and :mod:`fastnn.kernels.cython_backend`. Ops write into caller-owned ``out``
buffers and return only scalars (a loss sum, a norm), so the compiled
backends can run them without allocating.

Conventions: ``X (n, n_in)``, ``W (n_in, n_out)``, ``b (n_out,)``, ``Z`` the
pre-activation, ``A`` the activation, ``dA/dZ/dW/db/dX`` gradients of the loss.
Activation, loss and optimizer kinds are small integers (see
:mod:`fastnn.kernels.codes`) so compiled code can dispatch without strings.
"""
import math

import numpy as np

from .codes import (
    ACT_ELU, ACT_GELU, ACT_LEAKY_RELU, ACT_LINEAR, ACT_RELU, ACT_SIGMOID,
    ACT_SILU, ACT_SOFTMAX, ACT_TANH,
    LOSS_BCE_LOGITS, LOSS_MSE, LOSS_SOFTMAX_CE,
    OPT_ADAGRAD, OPT_ADAM, OPT_RMSPROP, OPT_SGD,
    H_LR, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_MOMENTUM, H_NESTEROV,
    H_DECOUPLED, H_CLIP_NORM, H_CLIP_VALUE,
)

NAME = "reference"
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# --------------------------------------------------------------------------- activations
def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    if act == ACT_LINEAR:
        A_out[...] = Z
    elif act == ACT_RELU:
        np.maximum(Z, 0, out=A_out)
    elif act == ACT_LEAKY_RELU:
        A_out[...] = np.where(Z > 0, Z, alpha * Z)
    elif act == ACT_ELU:
        A_out[...] = np.where(Z > 0, Z, alpha * np.expm1(np.minimum(Z, 0)))
    elif act == ACT_SIGMOID:
        # Stable for both signs: exp of a non-positive number never overflows.
        e = np.exp(-np.abs(Z))
        A_out[...] = np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
    elif act == ACT_TANH:
        np.tanh(Z, out=A_out)
    elif act == ACT_GELU:
        # tanh approximation (Hendrycks & Gimpel), as in Keras/PyTorch approximate="tanh".
        A_out[...] = 0.5 * Z * (1 + np.tanh(_SQRT_2_OVER_PI * (Z + 0.044715 * Z ** 3)))
    elif act == ACT_SILU:
        e = np.exp(-np.abs(Z))
        A_out[...] = Z * np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
    elif act == ACT_SOFTMAX:
        shifted = Z - Z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        A_out[...] = e / e.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown activation code {act}")


def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    if act == ACT_LINEAR:
        dZ_out[...] = dA
    elif act == ACT_RELU:
        dZ_out[...] = np.where(Z > 0, dA, 0)
    elif act == ACT_LEAKY_RELU:
        dZ_out[...] = np.where(Z > 0, dA, alpha * dA)
    elif act == ACT_ELU:
        dZ_out[...] = np.where(Z > 0, dA, dA * (A + alpha))
    elif act == ACT_SIGMOID:
        dZ_out[...] = dA * A * (1 - A)
    elif act == ACT_TANH:
        dZ_out[...] = dA * (1 - A * A)
    elif act == ACT_GELU:
        inner = _SQRT_2_OVER_PI * (Z + 0.044715 * Z ** 3)
        t = np.tanh(inner)
        dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * Z * Z)
        dZ_out[...] = dA * (0.5 * (1 + t) + 0.5 * Z * (1 - t * t) * dinner)
    elif act == ACT_SILU:
        e = np.exp(-np.abs(Z))
        s = np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
        dZ_out[...] = dA * (s + Z * s * (1 - s))
    elif act == ACT_SOFTMAX:
        dZ_out[...] = A * (dA - (dA * A).sum(axis=1, keepdims=True))
    else:
        raise ValueError(f"unknown activation code {act}")


# --------------------------------------------------------------------------- dense layer
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


# --------------------------------------------------------------------------- losses
def _log_softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_forward_backward(loss, out, target, scale, dout):
    """Return sum over rows of the per-sample loss; write d(scale*sum)/d(out) into dout.

    ``target`` is 2-D with ``out``'s dtype. ``softmax_ce``: ``out`` are logits,
    ``target`` an (n, 1) column of class indices or an (n, k) one-hot /
    probability matrix. ``mse``: mean over outputs of (out-target)^2.
    ``bce_logits``: mean over outputs of the stable binary cross-entropy of logits.
    """
    n, k = out.shape
    if loss == LOSS_SOFTMAX_CE:
        logp = _log_softmax(out.astype(np.float64))
        if target.shape[1] == 1 and k > 1:
            rows = np.arange(n)
            cls = target[:, 0].astype(np.int64)
            total = -logp[rows, cls].sum()
            grad = np.exp(logp)
            grad[rows, cls] -= 1.0
        else:
            t = target.astype(np.float64)
            total = -(t * logp).sum()
            grad = np.exp(logp) * t.sum(axis=1, keepdims=True) - t
        dout[...] = grad * scale
        return float(total)
    if loss == LOSS_MSE:
        diff = out.astype(np.float64) - target
        dout[...] = diff * (2.0 * scale / k)
        return float((diff * diff).sum() / k)
    if loss == LOSS_BCE_LOGITS:
        z = out.astype(np.float64)
        t = target.astype(np.float64)
        per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        dout[...] = (sig - t) * (scale / k)
        return float(per.sum() / k)
    raise ValueError(f"unknown loss code {loss}")


def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    if loss == LOSS_SOFTMAX_CE:
        true = target[:, 0] if target.shape[1] == 1 and out.shape[1] > 1 else target.argmax(axis=1)
        return int((out.argmax(axis=1) == true).sum())
    if loss == LOSS_BCE_LOGITS:
        return int(((out > 0) == (target > 0.5)).all(axis=1).sum())
    return 0


# --------------------------------------------------------------------------- batch gather
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    np.take(X, idx, axis=0, out=out)


# --------------------------------------------------------------------------- gradient clipping
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


# --------------------------------------------------------------------------- whole training run
def train_batches(X, Y, perm, batch_starts, batch_size, meta, alphas, params, grads,
                  loss, opt, state, hyper, lrs, step0, n_shards, work, batch_loss, batch_correct):
    """Run ``len(batch_starts)`` mini-batch steps of a Dense stack; the compiled backends' fast path.

    For batch ``j``: rows ``perm[batch_starts[j] : batch_starts[j] + batch_size]``
    (clipped to ``len(perm)``) of ``X``/``Y`` → forward through the layers described
    by ``meta`` (rows ``(n_in, n_out, act, W_offset, b_offset)`` into the flat
    ``params``) → loss and its gradient → backward into the flat ``grads`` →
    gradient clipping → optimizer update with learning rate ``lrs[j]`` at step
    ``step0 + j + 1``. Writes the batch's mean loss into ``batch_loss[j]`` and its
    number of correct predictions into ``batch_correct[j]``. ``n_shards`` and
    ``work`` only matter to the compiled backends (row shards run in parallel,
    buffers preallocated); the reference allocates freely.
    """
    n = perm.shape[0]
    n_layers = meta.shape[0]
    for j in range(batch_starts.shape[0]):
        start = batch_starts[j]
        rows = perm[start:min(start + batch_size, n)]
        m = rows.shape[0]
        A = X[rows]
        target = Y[rows]
        acts = [A]
        Zs = []
        for li in range(n_layers):
            n_in, n_out, act, w_off, b_off = meta[li]
            W = params[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
            b = params[b_off:b_off + n_out]
            Z = np.empty((m, n_out), params.dtype)
            A_next = np.empty((m, n_out), params.dtype)
            dense_forward(acts[-1], W, b, act, alphas[li], Z, A_next)
            Zs.append(Z)
            acts.append(A_next)
        out = acts[-1]
        dA = np.empty_like(out)
        batch_loss[j] = loss_forward_backward(loss, out, target, 1.0 / m, dA) / m
        batch_correct[j] = count_correct(loss, out, target)
        for li in range(n_layers - 1, -1, -1):
            n_in, n_out, act, w_off, b_off = meta[li]
            W = params[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
            dW = grads[w_off:w_off + n_in * n_out].reshape(n_in, n_out)
            db = grads[b_off:b_off + n_out]
            dZ = np.empty_like(Zs[li])
            dX = np.empty((m, n_in), params.dtype) if li > 0 else None
            dense_backward(acts[li], W, Zs[li], acts[li + 1], dA, act, alphas[li], dZ, dW, db, dX)
            dA = dX
        clip_gradients(grads, hyper[H_CLIP_NORM], hyper[H_CLIP_VALUE])
        h = hyper.copy()
        h[H_LR] = lrs[j]
        optimizer_update(opt, params, grads, state, h, step0 + j + 1)
