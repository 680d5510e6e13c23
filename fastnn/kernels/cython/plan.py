"""Cython plan driver: runs the steps of a compiled plan (see :mod:`fastnn.engine.plan`).

Same contract and semantics as :mod:`fastnn.kernels.numba.plan` (the reference of
the driver): per step, for each section of the schedule, every row shard runs the
section's items on its rows (single-threaded BLAS), then the section's sync runs
on one thread; after the last section the shard gradients are summed in a fixed
order, clipped and applied chunk by chunk. Unlike Numba, the whole call is one
OpenMP parallel region: sections, syncs and the update are separated by
barriers, not by a fork/join each. With one
shard the same items run on the whole batch and write the gradient directly. The
loop lives in ``csrc/plan.pxi`` (compiled into :mod:`fastnn._ext._kernels`), which
checks every buffer it writes and every code and offset of the plan before running.
"""
import numpy as np

from . import optim
from ._adapt import _k
from ..codes import H_CLIP_NORM, H_CLIP_VALUE, H_LR



def dropout_forward(X, key, step, row0, rate, mask_out, out):
    """mask = (draw < threshold) / keep, out = X * mask (the bits of the reference)."""
    dt = out.dtype
    _k.plan_dropout_forward(np.ascontiguousarray(X, dt), int(key), int(step), int(row0), float(rate),
                            mask_out, out)


def _run(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct, update):
    # Inputs are adapted (no copy when already right); outputs are checked by the extension.
    _k.plan_train_steps(X, Y, np.ascontiguousarray(perm, np.int64), np.ascontiguousarray(batch_starts, np.int64),
                        int(plan.batch_size), plan.ops, plan.fops, plan.items, plan.sections, plan.wofs,
                        int(plan.loss_code), plan.loss_f, plan.params, plan.grads, plan.buffers, plan.stats,
                        plan.work, int(plan.opt_code), plan.state, np.ascontiguousarray(plan.hyper, np.float64),
                        np.ascontiguousarray(lrs, np.float64), int(step0), bool(update),
                        batch_loss, batch_correct)


def train_steps(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct):
    """Run one optimizer step per batch start: forward, loss, backward, clip, update (the fused path).

    Batch ``j`` is rows ``perm[batch_starts[j]:][:plan.batch_size]`` of ``X``/``Y``; it is
    optimizer step ``step0 + j + 1`` with learning rate ``lrs[j]``. Writes the batch's mean
    loss (plus penalties) into ``batch_loss[j]`` and its correct count into ``batch_correct[j]``.
    """
    _run(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct, True)


def grad_steps(plan, X, Y, perm, batch_starts, step0, batch_loss, batch_correct):
    """Forward + backward of each batch into ``plan.grads`` without updating: their summed gradient.

    With one batch start ``plan.grads`` is exactly the gradient :func:`train_steps` applies
    at that step; pair it with :func:`apply_update` (gradient accumulation, distributed training).
    """
    _run(plan, X, Y, perm, batch_starts, np.zeros(len(batch_starts)), step0, batch_loss, batch_correct, False)


def apply_update(plan, lr, step):
    """Clip ``plan.grads`` (the plan's hyper-parameters say how) and apply one optimizer step."""
    h = np.array(plan.hyper, dtype=np.float64)
    if h[H_CLIP_NORM] > 0 or h[H_CLIP_VALUE] > 0:
        optim.clip_gradients(plan.grads, h[H_CLIP_NORM], h[H_CLIP_VALUE])
    h[H_LR] = lr
    optim.optimizer_update(plan.opt_code, plan.params, plan.grads, plan.state, h, step)
