"""Reference batch gather and whole-run driver (numpy): the oracle of the compiled drivers."""
import numpy as np

from ..codes import H_CLIP_NORM, H_CLIP_VALUE, H_LR
from .dense import dense_backward, dense_forward
from .losses import count_correct, loss_forward_backward
from .optim import clip_gradients, optimizer_update


def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    np.take(X, idx, axis=0, out=out)


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
