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
from ..plan_api import entry_points



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
                        batch_loss, batch_correct, int(getattr(plan, "col_threads", 1)))


train_steps, grad_steps, apply_update = entry_points(_run, optim.clip_gradients, optim.optimizer_update)
