"""The non-finite guard: snapshot before a chunk of steps, restore and raise if a loss or weight is NaN/Inf."""
import numpy as np

from ..errors import NonFiniteError


def guarded(step_fn, network, optimizer, describe_batch):
    """Wrap a runner ``step_fn(perm, starts, batch_loss, batch_correct)`` with the guard.

    Before each chunk the weights, non-trainable buffers and optimizer state are
    copied into buffers allocated once; after it, a non-finite batch loss, weight,
    buffer or optimizer moment restores them and raises :class:`~fastnn.errors.NonFiniteError` naming
    the step (``describe_batch(start)`` names the epoch and batch).
    """
    net, opt = network, optimizer
    saved_params = np.empty_like(net.params)
    saved_buffers = np.empty_like(net.buffers)
    saved_state = np.empty_like(opt.state)

    def run(perm, starts, batch_loss, batch_correct):
        saved_params[...] = net.params
        saved_buffers[...] = net.buffers
        saved_state[...] = opt.state
        saved_iterations = opt.iterations
        step_fn(perm, starts, batch_loss, batch_correct)
        finite = np.isfinite(batch_loss)
        what = None
        if finite.all():
            # A finite loss can hide non-finite state: Adam's second moment overflowing to Inf
            # (g**2 > 3.4e38 in float32) freezes those weights at a finite value, silently.
            for name, arr in (("weights", net.params), ("BatchNorm statistics", net.buffers),
                              ("optimizer state", opt.state)):
                if arr.size and not np.isfinite(arr).all():
                    finite[-1] = False  # which step of the chunk is unknown: report the chunk's last
                    what = name
                    break
        if not finite.all():
            bad = int(np.argmin(finite))
            net.params[...] = saved_params
            net.buffers[...] = saved_buffers
            opt.state[...] = saved_state
            opt.iterations = saved_iterations
            became = f"the training loss became {batch_loss[bad]}" if what is None else \
                f"the {what} became non-finite (NaN/Inf) while the loss stayed finite"
            raise NonFiniteError(
                f"{became} at step {saved_iterations + bad + 1} "
                f"({describe_batch(int(starts[bad]))}); "
                f"weights restored to their values before step {saved_iterations + 1}. "
                f"Usual causes: learning rate too high, NaN/Inf in the data, or no gradient clipping."
            )
    return run
