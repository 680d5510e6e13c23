"""``Trainer(parallel='probe')``: time the thread splits on a few real steps, keep the fastest.

:func:`~fastnn.engine.split.choose_split` is a static rule measured on a quiet 2-core machine. Two
things it cannot know: how busy the machine is (with other processes on the cores every split loses
to one thread, PyTorch's too), and the odd shape between its thresholds (a narrow layer in a deep
stack, a tiny batch of a wide network). The probe asks the machine instead: at the first fused fit
of a shape it runs every candidate split ('one', 'shards', and 'columns' where the column driver can
run; :func:`probe_candidates`) on the fit's first rows, in interleaved rounds, and takes the fastest
(the minimum round of each: load spikes only slow a round down; a candidate twice as slow as the
fastest is not timed again). Then:

- **No trace.** Weights, BatchNorm statistics, optimizer state and step count are restored, the
  fit's shuffling generator is not touched: the fit trains exactly as one forced to the chosen plan
  (results are deterministic *given* the plan; which plan wins may change with the machine's load).
- **Once per shape.** The choice is cached per (backend, dtype, plan rows, loss, optimizer, batch
  size, threads) for the process; :func:`clear_probe_cache` forgets it.
- **Stated cost.** ``trainer.last_plan['reason']`` lists each candidate's ms/step and what the probe
  cost: each candidate runs one warm-up call and ``ROUNDS`` timed calls of ``steps`` steps, the
  steps sized from a warm-up step to about ``CALL_SECONDS`` a call (one round of one step each for
  steps over ``SLOW_STEP`` seconds).

It is opt-in (``parallel='auto'`` keeps the static rule) because its choice depends on timings: two
runs of one script can pick different plans, and row shards sum the gradient in another order.
"""
import time

import numpy as np

from ..kernels.threads import blas_limits
from ..kernels import codes as C
from .plan import build_plan
from .split import Split

__all__ = ["probe_split", "clear_probe_cache", "probe_candidates"]

#: timed rounds per candidate, interleaved (the fastest round counts)
ROUNDS = 3
#: target seconds of one timed call; its steps = CALL_SECONDS / (one warm-up step), in [1, MAX_STEPS]
CALL_SECONDS = 0.005
MAX_STEPS = 16
#: a warm-up step longer than this (seconds): one timed round of one step per candidate
SLOW_STEP = 0.05
#: a candidate this many times slower than the fastest after a round is not timed again
DROP_RATIO = 2.0

_CACHE = {}


def clear_probe_cache():
    """Forget every probed choice (the next ``parallel='probe'`` fit of each shape probes again)."""
    _CACHE.clear()


def probe_candidates(batch_size, columns_ok):
    """The splits a probe times: one thread, row shards (batch >= 2), columns (where they can run).

    Not ``'blas'``: it never beat the best of these on a quiet machine (``fastnn.engine.split``), and
    under load its spinning threads collapse (195 ms/step against 1 ms for one thread, measured on the
    benchmark MLP at batch 32, load 7 on 2 cores), which would make the probe itself slow."""
    kinds = ["one"]
    if batch_size >= 2:
        kinds.append("shards")
    if columns_ok:
        kinds.append("columns")
    return kinds


def _key(kern, network, plan, optimizer, batch_size, n_threads):
    shape = plan.ops[:, [C.P_OP, C.P_ACT, C.P_N_IN, C.P_N_OUT]]
    return (kern.NAME, network.dtype.str, shape.tobytes(), len(plan.ops), plan.loss_code, optimizer.code,
            int(batch_size), int(n_threads))


def probe_split(kern, network, loss, optimizer, X, Y, batch_size, n_threads, columns_ok, hyper):
    """The fastest split of this fit's steps, timed (the module docstring has the protocol).

    Parameters
    ----------
    kern : module
        The backend (``get_backend(name)``): only the Cython drivers are probed (Numba would compile
        every candidate's driver first, seconds each).
    network, loss, optimizer
        The fit's objects; ``optimizer`` built for ``network``.
    X, Y : ndarray
        The fit's prepared data (the first rows are used, in order).
    batch_size, n_threads : int
    columns_ok : bool
        Whether the column-split driver can run this network.
    hyper : ndarray
        The optimizer's hyper vector (clipping included).

    Returns
    -------
    Split or None
        None when the network has no fused plan or the backend is not Cython (the caller keeps its rule).
    """
    if getattr(kern, "NAME", None) != "cython":
        return None
    base = build_plan(network, loss, batch_size, 1, Y.shape[1])
    if base.path != "fused":
        return None
    key = _key(kern, network, base, optimizer, batch_size, n_threads)
    if key in _CACHE:
        kind, threads, reason = _CACHE[key]
        return Split(kind, threads, f"{reason}; probed at an earlier fit of this shape")
    kinds = probe_candidates(batch_size, columns_ok)
    plans = {}
    for kind in kinds:
        plan = base if kind == "one" else build_plan(network, loss, batch_size, n_threads if kind == "shards" else 1,
                                                     Y.shape[1])
        plan.col_threads = n_threads if kind == "columns" else 1
        plans[kind] = plan.bind(network, optimizer, hyper)
    dropouts = [layer for layer in network.layers if hasattr(layer, "step") and hasattr(layer, "key")]
    saved = (network.params.copy(), network.buffers.copy(), optimizer.state.copy(), optimizer.iterations,
             [layer.step for layer in dropouts])
    perm = np.arange(X.shape[0], dtype=np.int64)
    n_full = X.shape[0] // batch_size  # the fit's batch size is at most len(X)
    t_start = time.perf_counter()

    def restore():
        network.params[...] = saved[0]
        network.buffers[...] = saved[1]
        optimizer.state[...] = saved[2]
        optimizer.iterations = saved[3]
        for layer, step in zip(dropouts, saved[4]):
            layer.step = step

    def call(kind, steps):
        """Seconds of ``steps`` training steps on ``kind``'s plan, from the fit's start state."""
        restore()
        starts = (np.arange(steps, dtype=np.int64) % n_full) * batch_size
        lrs = optimizer.learning_rates(saved[3], steps)
        loss_out, correct_out = np.zeros(steps), np.zeros(steps)
        with blas_limits(n_threads if kind == "blas" else 1):
            t0 = time.perf_counter()
            kern.train_steps(plans[kind], X, Y, perm, starts, lrs, saved[3], loss_out, correct_out)
            return time.perf_counter() - t0

    try:
        for kind in kinds:  # first calls pay for page faults and thread start-up: untimed
            call(kind, 1)
        one_step = min(call("one", 2), call("one", 2)) / 2  # the steps per timed call, from the fastest
        slow = one_step > SLOW_STEP
        steps = 1 if slow else int(np.clip(CALL_SECONDS / max(one_step, 1e-9), 1, MAX_STEPS))
        best = {kind: float("inf") for kind in kinds}
        timing = list(kinds)
        for _ in range(1 if slow else ROUNDS):
            for kind in timing:
                best[kind] = min(best[kind], call(kind, steps) / steps)
            fastest = min(best.values())
            timing = [k for k in timing if best[k] <= DROP_RATIO * fastest]  # clear losers: no more rounds
    finally:
        restore()
    cost = time.perf_counter() - t_start
    kind = min(kinds, key=best.get)
    timed = ", ".join(f"{k} {best[k] * 1e3:.3g}" for k in kinds)
    reason = (f"probe: {kind} was fastest over {n_threads} threads (ms/step: {timed}; {1 if slow else ROUNDS} "
              f"round(s) of {steps} step(s) each after a warm-up, {cost * 1e3:.0f} ms in all)")
    threads = 1 if kind == "one" else (min(n_threads, batch_size) if kind == "shards" else n_threads)
    _CACHE[key] = (kind, threads, reason)
    return Split(kind, threads, reason)
