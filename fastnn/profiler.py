"""Where the time of a training step goes: :func:`profile`.

::

    report = fastnn.profile(trainer, X_train, y_train)
    print(report)                 # one line per phase: time, share, GFLOP/s, share of the GEMM floor
    report.rows                   # the same as a list of dicts
    report.plot("profile.png")    # a bar chart (needs matplotlib)

    history = trainer.fit(X_train, y_train, epochs=5, profile=True)
    print(history.profile)        # the same report, of the trained step, after the fit

How it measures, and what that distorts
---------------------------------------
The fused path runs a whole chunk of steps inside one compiled call, so a
timer around each phase of that call cannot be read from Python. The profile
therefore combines three measurements, all on the trainer's own backend,
thread count and plan:

1. **The real thing.** ``trainer.fit`` runs ``n_steps`` steps (after one
   warm-up fit); a callback times each compiled call. Time outside those
   calls is *Python overhead* (argument checks, the shuffle, the plan,
   callbacks, logging), measured directly.
2. **A replay of the same step, phase by phase.** The same kernels (batch
   gather, each layer's forward and backward, the loss, the shard-gradient
   reduction, the optimizer update) are called one at a time from Python on
   one shard's rows with preallocated buffers, each phase timed over
   ``repeats`` steps (median). Shards run in parallel, so a phase's time on
   one shard is its share of the step; the reduction and the update are
   split over the threads and are counted as such.
3. **Scaling.** The replayed phase times are scaled so that they sum to the
   compiled time of step 1: the shares come from the replay, the total from
   the real run, and *phases + Python overhead = the measured wall time per
   step* exactly (up to float rounding). ``report.replay_ratio`` is the
   replay's sum over the compiled time: the distortion of the shares. Each
   replayed call pays a Python round trip (~1-5 us) that the compiled driver
   does not (small phases such as the loss and the last layer look somewhat
   too big at small batches), while a replay on one shard misses the other
   thread's competition for memory and cache (ratios below 1); measured
   0.78 at batch 128 (2 shards) and 1.03 at batch 32 (one thread) for
   784-256-128-10 with Adam, on a shared 2-core machine; 0.2 when other
   processes kept both cores busy (load 10): the timed run then competes for
   the cores, the replay and the floor less so. Non-Dense layers are
   replayed through their per-layer code (which allocates), so their shares
   are upper bounds. Conv layers in particular: the compiled drivers run a
   conv row in L2-sized tiles of images (``fastnn.kernels.tiling``), im2col
   and GEMM per tile, while the replay runs the per-layer kernels on the
   whole shard at once; the report marks those rows (``row["replay"]`` is
   ``"per-layer, untiled"``) and says so under its table, so a conv share
   describes the per-layer kernels, not what the driver spent.

The GEMM floor of a phase is the time of only its GEMMs with preallocated
outputs (``numpy.matmul``, the whole batch): the practical limit
:mod:`bench.peers` calls the GEMM floor. With several threads it is the
faster of BLAS threaded over them and one thread's time split perfectly.

The network, the optimizer and the trainer are left as they were: weights,
buffers, optimizer state and step count, the shuffling generator, the epoch
counter and the history are saved first and restored afterwards.

A :class:`fastnn.distributed.RayTrainer` profiles itself: its workers time
every call, so ``profile`` runs a short fit and returns the per-step compute
vs communication table of :mod:`fastnn.integrations.ray_profile` instead of a
replay.
"""
import time

import numpy as np

from ._config import get_num_threads, thread_limits
from .kernels.threads import blas_limits
from ._validation import check_batch_size, check_int_min
from .callbacks import Callback
from .kernels import codes, get_backend
from .layers import Conv2D, Dense

__all__ = ["profile", "ProfileReport"]

_UNTILED = "per-layer, untiled"  # a conv layer's replay: the driver runs it in tiles of images


class _ChunkTimer(Callback):
    """Wall time inside the trainer's compiled calls (one per chunk of batches)."""

    every_batch = False  # keep the trainer's chunking: the profile must not change what it measures

    def __init__(self):
        self.inside = 0.0
        self._t0 = None

    def on_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_batch_end(self, batch, logs=None):
        self.inside += time.perf_counter() - self._t0


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class ProfileReport:
    """What :func:`profile` measured: per-phase time per step, GFLOP/s and share of the GEMM floor.

    Attributes
    ----------
    rows : list of dict
        One per phase, in step order, keys ``phase``, ``layer`` (network index or None),
        ``seconds`` (per step), ``share`` (of the step), ``flops`` (per step, GEMMs only),
        ``gflops`` (achieved), ``floor_seconds`` and ``floor_share`` (GEMM floor time / phase
        time; None for phases without GEMMs), ``replay`` (how the phase was replayed: ``"kernels"``,
        the step's own kernels; ``"per-layer"``, the layer's per-layer code; ``"per-layer,
        untiled"``, a conv layer the compiled driver runs in tiles of images).
    step_seconds : float
        Wall time per step of the real fit (the sum of every row's ``seconds``).
    compiled_seconds : float
        Of that, time inside the compiled calls (or the per-layer runner).
    floor_seconds : float
        The step's GEMMs alone (see the module docstring).
    replay_ratio : float
        Replayed phase sum / compiled time: the distortion of the shares (1 = none).
    batch_size, n_steps, n_shards, path, backend, threads
        The configuration profiled.
    """

    def __init__(self, rows, step_seconds, compiled_seconds, floor_seconds, replay_ratio, config):
        self.rows = rows
        self.step_seconds = step_seconds
        self.compiled_seconds = compiled_seconds
        self.floor_seconds = floor_seconds
        self.replay_ratio = replay_ratio
        for key, value in config.items():
            setattr(self, key, value)
        self._config = config

    @property
    def samples_per_s(self):
        """Training samples per second of the profiled steps."""
        return self.batch_size / self.step_seconds

    @property
    def floor_share(self):
        """GEMM-floor time / step time: the step's share of the practical limit."""
        return self.floor_seconds / self.step_seconds

    def as_dict(self):
        """Plain data: the configuration, the totals and the rows."""
        return dict(self._config, step_seconds=self.step_seconds, compiled_seconds=self.compiled_seconds,
                    floor_seconds=self.floor_seconds, floor_share=self.floor_share,
                    replay_ratio=self.replay_ratio, samples_per_s=self.samples_per_s,
                    rows=[dict(r) for r in self.rows])

    def __str__(self):
        head = f"{'phase':34s}{'us/step':>10s}{'share':>8s}{'GFLOP/s':>9s}{'floor':>8s}"
        split = f"columns over {self.col_threads} threads" if self.col_threads > 1 else f"{self.n_shards} shard(s)"
        lines = [f"profile: {self.path} path, {self.backend}, batch {self.batch_size}, {split}, "
                 f"{self.threads} thread(s), {self.n_steps} steps", head, "-" * len(head)]
        for r in self.rows:
            gf = f"{r['gflops']:9.1f}" if r["gflops"] is not None else " " * 9
            fl = f"{r['floor_share']:8.0%}" if r["floor_share"] is not None else " " * 8
            mark = "*" if r.get("replay") == _UNTILED else ""
            lines.append(f"{(r['phase'][:33] + mark):34s}{r['seconds'] * 1e6:10.1f}{r['share']:8.1%}{gf}{fl}")
        lines.append("-" * len(head))
        flops = sum(r["flops"] for r in self.rows)
        lines.append(f"{'step':34s}{self.step_seconds * 1e6:10.1f}{1:8.1%}"
                     f"{flops / self.step_seconds / 1e9:9.1f}{self.floor_share:8.0%}")
        lines.append(f"{self.samples_per_s:,.0f} samples/s; GEMM floor {self.floor_seconds * 1e6:.1f} us/step; "
                     f"replay/compiled {self.replay_ratio:.2f}")
        untiled = [r["phase"] for r in self.rows if r.get("replay") == _UNTILED]
        if untiled:
            lines.append(f"* conv rows replayed untiled through the per-layer kernels ({len(untiled)} phases): the "
                         f"{self.backend} driver runs them in L2-sized tiles of images, so their shares describe "
                         "the per-layer kernels, not the driver")
        return "\n".join(lines)

    __repr__ = __str__

    def plot(self, path=None, ax=None):
        """Horizontal bars of time per phase, the GEMM floor of each phase beside it (needs matplotlib).

        Returns the matplotlib ``Figure``; with ``path`` it is written there and closed.
        """
        from .plotting import _finish, _pyplot

        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 0.35 * len(self.rows) + 1.5))
        else:
            fig = ax.figure
        names = [r["phase"] for r in self.rows][::-1]
        y = np.arange(len(names))
        ax.barh(y, [r["seconds"] * 1e6 for r in self.rows][::-1], color="tab:blue", label="measured")
        ax.barh(y, [(r["floor_seconds"] or 0) * 1e6 for r in self.rows][::-1], height=0.4,
                color="tab:orange", label="GEMM floor")
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.set_xlabel("microseconds per step")
        ax.set_title(f"batch {self.batch_size}: {self.samples_per_s:,.0f} samples/s, "
                     f"{self.floor_share:.0%} of the GEMM floor")
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _finish(fig, path, plt)


def _snapshot(trainer):
    net, opt = trainer.network, trainer.optimizer
    state = {"params": net.params.copy(), "buffers": net.buffers.copy(), "task": net.task,
             "epoch": trainer.epoch, "rng": trainer.rng.bit_generator.state,
             "history": getattr(trainer, "history", None), "last_plan": trainer.last_plan,
             "iterations": opt.iterations,
             "opt_state": None if opt.state is None else opt.state.copy(),
             "steps": [(layer, layer.step) for layer in net.layers if hasattr(layer, "step")],
             "rngs": [(layer, layer.rng.bit_generator.state) for layer in net.layers
                      if isinstance(getattr(layer, "rng", None), np.random.Generator)]}
    return state


def _restore(trainer, s):
    net, opt = trainer.network, trainer.optimizer
    net.params[...] = s["params"]
    net.buffers[...] = s["buffers"]
    net.task = s["task"]
    trainer.epoch = s["epoch"]
    trainer.rng.bit_generator.state = s["rng"]
    trainer.history = s["history"]
    trainer.last_plan = s["last_plan"]
    opt.iterations = s["iterations"]
    opt.state = s["opt_state"]
    for layer, step in s["steps"]:
        layer.step = step
    for layer, rng_state in s["rngs"]:
        layer.rng.bit_generator.state = rng_state


def _dense_flops(layer, m, need_dx):
    """GEMM flops of a Dense layer on m rows: forward, backward (dW, and dX unless first)."""
    f = 2.0 * m * layer.n_inputs * layer.n_outputs
    return f, f * (2 if need_dx else 1)


def _replay(trainer, kern, Xc, Y, m, n_shards, split, repeats):
    """Median seconds of each phase of one step on one shard's m rows (see the module docstring)."""
    net, loss, opt = trainer.network, trainer.loss, trainer.optimizer
    backend = trainer.backend
    rng = np.random.default_rng(0)
    idx = rng.integers(0, Xc.shape[0], m).astype(np.int64)
    xb = np.empty((m, Xc.shape[1]), Xc.dtype)
    yb = np.empty((m, Y.shape[1]), Y.dtype)
    fused = loss.fused_activation
    last = len(net.layers) - 1
    logits = fused is not None and getattr(net.layers[-1], "activation", None) == fused
    bufs = {}
    for i, layer in enumerate(net.layers):
        if type(layer) is Dense:
            act = codes.ACT_LINEAR if (i == last and logits) else layer.act_code
            Z = np.empty((m, layer.n_outputs), net.dtype)
            bufs[i] = (act, Z, Z if act == codes.ACT_LINEAR else np.empty_like(Z), np.empty_like(Z),
                       np.empty((m, layer.n_inputs), net.dtype) if i > 0 else None)
    dout = np.empty((m, net.n_outputs), net.dtype)
    times = {}

    def timed(key, fn):
        t0 = time.perf_counter()
        out = fn()
        times.setdefault(key, []).append(time.perf_counter() - t0)
        return out

    grads_copies = [np.zeros_like(net.grads) for _ in range(max(n_shards - 1, 0))]
    hyper = opt.hyper_vector(trainer.clip_norm, trainer.clip_value)
    params0 = net.params.copy()
    for _ in range(repeats + 1):  # the first step warms caches and any lazy compilation
        timed("gather", lambda: (kern.gather_rows(Xc, idx, xb), kern.gather_rows(Y, idx, yb)))
        A = xb
        inputs = []
        for i, layer in enumerate(net.layers):
            inputs.append(A)
            if i in bufs:
                act, Z, out, _, _ = bufs[i]
                a_in = A
                timed(("forward", i), lambda: kern.dense_forward(a_in, layer.params["W"], layer.params["b"], act,
                                                                 layer.alpha, Z, out))
                A = out
            else:
                a_in = A
                A = timed(("forward", i), lambda: layer.forward(a_in, training=True, backend=backend))
        out_final = A
        if loss.code is None:
            timed("loss", lambda: loss.forward_backward(out_final, yb, 1.0 / m, dout, backend=backend))
        else:
            timed("loss", lambda: kern.loss_forward_backward(loss.code, out_final, yb, 1.0 / m, dout))
        dA = dout
        for i in range(last, -1, -1):
            layer = net.layers[i]
            if i in bufs:
                act, Z, out, dZ, dX = bufs[i]
                d_in, a_in = dA, inputs[i]
                timed(("backward", i), lambda: kern.dense_backward(
                    a_in, layer.params["W"], Z, out, d_in, act, layer.alpha, dZ, layer.grads["W"],
                    layer.grads["b"], dX))
                dA = dX
            else:
                d_in = dA
                dA = timed(("backward", i), lambda: layer.backward(d_in, backend=backend, need_dX=i > 0))
        if grads_copies:
            def reduce():
                for g in grads_copies:
                    np.add(net.grads, g, out=net.grads)
            timed("reduction", reduce)

        def update():
            if trainer.clip_norm or trainer.clip_value:
                kern.clip_gradients(net.grads, trainer.clip_norm, trainer.clip_value)
            kern.optimizer_update(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1)
        timed("optimizer", update)
        net.params[...] = params0  # replay steps do not train
    med = {k: float(np.median(v[1:])) for k, v in times.items()}
    for k in ("reduction", "optimizer"):  # split over the threads
        if k in med:
            med[k] /= split
    return med


def _floor(net, m, threads, repeats):
    """Seconds of the GEMMs alone of each Dense layer's forward and backward, on the whole batch.

    With several threads, the faster of threaded BLAS and one thread's time divided by the
    thread count (a perfect split): threaded BLAS on small GEMMs, or on a busy machine, is far
    from the limit it stands for.
    """
    if threads > 1:
        one = _floor(net, m, 1, repeats)
        many = _floor_at(net, m, threads, repeats)
        return {k: min(many[k], one[k] / threads) for k in one}
    return _floor_at(net, m, 1, repeats)


def _floor_at(net, m, threads, repeats):
    rng = np.random.default_rng(0)
    out = {}
    mm = np.matmul
    with thread_limits(threads):
        for i, layer in enumerate(net.layers):
            if type(layer) is not Dense:
                continue
            a, b = layer.n_inputs, layer.n_outputs
            X = rng.standard_normal((m, a)).astype(net.dtype)
            W = rng.standard_normal((a, b)).astype(net.dtype)
            Z, dZ, dW, dX = np.empty((m, b), net.dtype), rng.standard_normal((m, b)).astype(net.dtype), \
                np.empty((a, b), net.dtype), np.empty((m, a), net.dtype)
            need = i > 0
            mm(X, W, out=Z)
            out[("forward", i)] = _median_time(lambda: mm(X, W, out=Z), repeats)

            def bwd():
                mm(X.T, dZ, out=dW)
                if need:
                    mm(dZ, W.T, out=dX)
            bwd()
            out[("backward", i)] = _median_time(bwd, repeats)
    return out


def profile(trainer, X, y, *, n_steps=64, batch_size=None, repeats=20):
    """Time per phase of the trainer's training step, with GFLOP/s and share of the GEMM floor.

    Runs a warm-up fit and a timed fit of ``n_steps`` steps on (a subset of) ``X``/``y``,
    then replays one step phase by phase with the same kernels (the module docstring says
    how, and what that distorts). The trainer, its network and its optimizer are restored
    afterwards: profiling does not train.

    Parameters
    ----------
    trainer : Trainer
    X, y : array-like
        Training data, as for :meth:`Trainer.fit`.
    n_steps : int, default 64
        Steps of the timed fit (fewer if ``X`` is smaller).
    batch_size : int, optional
        Default: the trainer's.
    repeats : int, default 20
        Replayed steps per phase (the median is taken); unused for a distributed trainer.

    Returns
    -------
    ProfileReport or RayProfileReport
        ``print(report)`` for the table; ``report.rows``, ``report.as_dict()``, ``report.plot()``.
        For a :class:`fastnn.distributed.RayTrainer` it is the Ray run's per-step compute vs
        communication (serialisation, transfer and wait, reduce, update) from the timings its
        workers send (:meth:`RayTrainer.profile_report`): a short fit, no replay.

    Raises
    ------
    TypeError, ValueError
        On a trainer that is not a :class:`fastnn.Trainer` or bad arguments.
    """
    from .trainer import Trainer

    if not isinstance(trainer, Trainer):
        raise TypeError(f"profile needs a fastnn.Trainer, not {type(trainer).__name__}")
    if hasattr(trainer, "profile_report"):  # a distributed trainer times its own steps (RayTrainer)
        return trainer.profile_report(X, y, n_steps=n_steps, batch_size=batch_size)
    n_steps = check_int_min(n_steps, "n_steps", 1)
    repeats = check_int_min(repeats, "repeats", 1)
    bs = trainer.batch_size if batch_size is None else check_batch_size(batch_size)
    Xc, Y = trainer._prepare(X, y)
    n = min(Xc.shape[0], n_steps * bs)
    bs = min(bs, n)
    steps = -(-n // bs)
    # fit takes samples in the network's shape (images for a CNN); _prepare gave rows
    shape = trainer.network.input_shape or Xc.shape[1:]
    Xs, ys = Xc[:n].reshape((n, *shape)), np.asarray(y)[:n]
    saved = _snapshot(trainer)
    try:
        trainer.fit(Xs, ys, epochs=1, batch_size=bs, verbose=0)  # warm-up: compile, first-touch buffers
        walls, inside = [], []
        for _ in range(3):
            timer = _ChunkTimer()
            t0 = time.perf_counter()
            trainer.fit(Xs, ys, epochs=1, batch_size=bs, verbose=0, callbacks=[timer])
            walls.append(time.perf_counter() - t0)
            inside.append(timer.inside)
        plan = dict(trainer.last_plan)
        best = int(np.argsort(walls)[len(walls) // 2])  # the median run, wall and inside together
        step_s, compiled_s = walls[best] / steps, inside[best] / steps
        kern = get_backend(trainer.backend)
        n_shards = plan["n_shards"]
        split = max(n_shards, plan.get("col_threads", 1))  # threads that share the update
        threads = trainer.n_threads or get_num_threads()
        m_s = -(-bs // n_shards)
        with blas_limits(plan["blas_threads"]):
            replay = _replay(trainer, kern, Xc, Y, m_s, n_shards, split, repeats)
        floor = _floor(trainer.network, bs, threads, repeats)
    finally:
        _restore(trainer, saved)
    total = sum(replay.values())
    scale = compiled_s / total if total > 0 else 0.0
    net = trainer.network
    rows = []

    # The compiled drivers run conv rows in tiles of images; the replay runs the per-layer kernels untiled.
    tiled = plan["path"] == "fused" and plan["backend"] in ("cython", "numba")

    def add(phase, layer, seconds, flops=0.0, floor_s=None):
        replay = "kernels"
        if layer is not None and type(net.layers[layer]) is not Dense:
            replay = _UNTILED if tiled and isinstance(net.layers[layer], Conv2D) else "per-layer"
        rows.append({"phase": phase, "layer": layer, "seconds": seconds, "share": seconds / step_s,
                     "flops": flops, "gflops": flops / seconds / 1e9 if flops and seconds > 0 else None,
                     "floor_seconds": floor_s, "floor_share": floor_s / seconds if floor_s and seconds > 0 else None,
                     "replay": replay})

    add("batch gather", None, replay["gather"] * scale)
    for kind in ("forward", "backward"):
        order = range(len(net.layers)) if kind == "forward" else range(len(net.layers) - 1, -1, -1)
        if kind == "backward":
            add("loss", None, replay["loss"] * scale)
        for i in order:
            layer = net.layers[i]
            flops = 0.0
            if type(layer) is Dense:
                fwd, bwd = _dense_flops(layer, bs, i > 0)
                flops = fwd if kind == "forward" else bwd
            add(f"{kind} {i} {_layer_name(layer)}", i, replay[(kind, i)] * scale, flops, floor.get((kind, i)))
    if "reduction" in replay:
        add("reduction", None, replay["reduction"] * scale)
    add("optimizer", None, replay["optimizer"] * scale)
    add("python (fit loop)", None, max(step_s - compiled_s, 0.0))
    floor_total = sum(floor.values())
    config = {"path": plan["path"], "backend": plan["backend"], "n_shards": n_shards,
              "col_threads": plan.get("col_threads", 1), "threads": threads,
              "batch_size": bs, "n_steps": steps, "reason": plan.get("reason", "")}
    return ProfileReport(rows, step_s, compiled_s, floor_total, total / compiled_s if compiled_s > 0 else 0.0,
                         config)


def _layer_name(layer):
    if type(layer) is Dense:
        return f"Dense {layer.n_inputs}->{layer.n_outputs} {layer.activation}"
    return type(layer).__name__
