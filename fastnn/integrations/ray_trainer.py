"""Data-parallel training on Ray: :class:`RayTrainer` (public path: :mod:`fastnn.distributed`).

How a step runs (``sync_every=1``, the default):

1. the driver puts the flat parameter buffer into the object store once (``ray.put``) and sends
   its reference to every worker with the batch's start (the epoch's permutation went to every
   worker once, at the start of the epoch; the training data once, when the workers started);
2. worker ``k`` copies the parameters in, takes its part of the global batch (rows split as the
   engine splits a batch into shards) and runs the engine's ``grad_steps`` on it, single-threaded:
   the compiled entry point on the fused path, :func:`fastnn.engine.layerwise_grad` on the
   per-layer path (conv and sequence nets) -- whichever the engine's plan for the network chose;
3. the driver sums the workers' gradients in worker order 0..N-1 (each weighted by its share of
   the batch's rows, accumulated in float64) and applies the update once with ``apply_update``
   -- clipping and the optimizer see the gradient of the whole batch, as in serial training.

With ``sync_every=k > 1`` it is *parameter averaging* (local SGD), not gradient averaging: each
worker runs ``k`` optimizer steps on its parts of ``k`` global batches with its own copy of
the parameters and optimizer state, then the driver averages parameters *and* optimizer state in
worker order (weighted by rows), and broadcasts them as one flat buffer. A sync also happens at
the end of every epoch, so callbacks and checkpoints at epoch ends see the averaged model.

With ``data='sharded'`` worker ``k`` holds only rows ``k, k + N, ...``, gets the epoch's permutation
filtered to them, and gives the next ``batch_size / N`` of them to every batch.

BatchNorm normalises each worker's part with that part's statistics (as PyTorch's
DistributedDataParallel does without SyncBatchNorm): synchronising them would cost two round
trips per BatchNorm layer per step. The workers return their running statistics with every
result, and the driver averages them (weighted by rows) into the network's: with equal parts the
running mean is the combined batch's, the running variance the mean of the parts' variances.

Everything else is the :class:`~fastnn.Trainer`'s: argument checks, shuffling (same seed, same
permutation), callbacks, history, the non-finite guard, checkpoints and ``resume_from``.
"""
import time

import numpy as np

from .._validation import check_batch_size, check_int_min, check_positive_real
from ..errors import FastnnError
from ..trainer import Trainer
from ._ray_worker import ShardWorker
from .ray_profile import RayProfile, RayProfileReport, scaling_estimate

__all__ = ["RayTrainer", "WorkerError", "RayProfile", "RayProfileReport", "scaling_estimate"]


class WorkerError(FastnnError, RuntimeError):
    """A Ray worker died, raised, or did not answer in time.

    Attributes: ``worker`` (its index), ``step`` (the optimizer step that failed), ``kind``
    (``'died'``, ``'raised'`` or ``'timeout'``). The driver's network holds the weights of the last
    completed step; nothing of the failed step was applied. Resume with ``fit(...,
    resume_from=<last checkpoint>)``: new workers are started.
    """

    def __init__(self, message, worker=None, step=None, kind=None):
        super().__init__(message)
        self.worker, self.step, self.kind = worker, step, kind


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - the tests skip without ray
        raise ImportError('RayTrainer needs Ray: pip install "fastnn[ray]" (or pip install "ray>=2.9")') from exc
    return ray


class RayTrainer(Trainer):
    """Data-parallel :class:`~fastnn.Trainer` on Ray actors (``pip install "fastnn[ray]"``).

    With ``sync_every=1`` the weights equal those of serial training on the combined batch (same
    seed, same permutation, same dropout masks; the gradient is reduced in worker order 0..N-1, so
    results are deterministic for a given worker count) -- for every network the engine trains,
    on the fused or the per-layer path, except with BatchNorm: its batch statistics are each
    worker's part's (see Notes), so serial training on the combined batch differs. ``fit``,
    ``evaluate`` (run on the driver), callbacks, checkpoints and ``resume_from`` are the Trainer's.

    Parameters
    ----------
    network, loss, optimizer, batch_size
        As for :class:`~fastnn.Trainer`; ``batch_size`` is the *global* batch, split over the workers.
    num_workers : int, default 2
        Ray actors, one CPU each, each running single-threaded compiled kernels. More than the
        cluster's CPUs is a ValueError.
    sync_every : int, default 1
        1: reduce gradients and update once per step (identical to serial). ``k > 1``: parameter
        averaging -- every worker runs ``k`` local steps, then parameters and optimizer state are
        averaged (and at every epoch's end).
    data : {'shared', 'sharded'}, default 'shared'
        Where the training rows live. ``'shared'``: the whole set is put into the object store
        once per fit -- one copy per node, mapped without copying by every worker on it -- and a
        global batch is split as the engine splits shards (its first rows to worker 0, ...): the
        weights equal :class:`~fastnn.Trainer`'s with the same seed. ``'sharded'``: worker ``k``
        holds only rows ``k, k + N, ...`` (for sets too big for every node); each epoch's
        permutation is filtered per worker, and batch ``j`` is the ``j``-th ``batch_size / N``
        rows of every worker, concatenated in worker order: the weights equal serial training on
        those batches (not the Trainer's batches). Needs ``batch_size % num_workers == 0``.
    address : str, optional
        Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``, a GCS address, ...) when
        this process is not connected yet; a process already connected (``ray.init`` called) keeps
        its cluster. Without it: ``ray.init()``'s default, the cluster ``RAY_ADDRESS`` names, or a
        new local one with every CPU of this machine.
    max_restarts : int, default 0
        Dead workers to replace per ``fit`` (``sync_every=1`` only): a new actor starts and the
        failed step is re-run by every worker from the driver's weights, so the result is exactly
        that of a run without the failure. 0: a dead worker stops ``fit`` with :class:`WorkerError`.
        A worker that *raises* always stops ``fit`` (restarting would raise again).
    timeout : float, default 300
        Seconds to wait for one synchronisation before raising :class:`WorkerError` naming the
        workers that did not answer (start-up waits ``max(timeout, 60)``). A dead worker is
        reported as soon as Ray sees it die.
    clip_norm, clip_value, callbacks, seed, check_finite, backend, verbose, metrics
        As for :class:`~fastnn.Trainer`.

    Attributes
    ----------
    profile : RayProfile
        Per-sync compute / communication / reduce / update times of the last fit (``profile.summary()``;
        ``profile.report()`` for a table, as :meth:`profile_report` and ``fastnn.profile`` give).
    workers : list
        The Ray actor handles during ``fit`` (empty outside it).
    restarts, restart_log
        Workers replaced in the last ``fit``, and ``{'worker', 'step'}`` of each.

    Notes
    -----
    The training data goes into the object store once per fit (see ``data``), each epoch's
    permutation once per epoch; every step then ships only the parameters (one flat buffer) out
    and the gradients back.

    BatchNorm: every worker normalises its part of a batch with its part's statistics, and the
    running statistics are averaged over the workers (weighted by rows) at every sync. So with
    ``sync_every=1`` a BatchNorm network trains as serial training would if each batch's
    statistics came from its ``num_workers`` parts ("ghost batches" of ``batch_size /
    num_workers`` rows) -- not as on the combined batch, which would need the statistics
    synchronised inside every forward and backward pass. ``augment=``, and layers that draw
    random masks without a row key (user-defined ones), are not supported and raise ValueError
    (Dropout and TransformerBlock key theirs by the row in the batch).
    """

    def __init__(self, network, loss="cross_entropy", optimizer="adam", batch_size=32, *, num_workers=2,
                 sync_every=1, data="shared", address=None, timeout=300.0, max_restarts=0, clip_norm=None,
                 clip_value=None, callbacks=None, seed=None, check_finite=True, backend=None, verbose=1, metrics=None):
        super().__init__(network, loss, optimizer, batch_size, clip_norm=clip_norm, clip_value=clip_value,
                         callbacks=callbacks, seed=seed, n_threads=1, parallel="blas", check_finite=check_finite,
                         backend=backend, verbose=verbose, metrics=metrics, path="auto")
        self.num_workers = check_int_min(num_workers, "num_workers", 1)
        self.sync_every = check_int_min(sync_every, "sync_every", 1)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string such as 'auto' or 'ray://host:10001', not {address!r}")
        self.address = address
        self.timeout = check_positive_real(timeout, "timeout")
        if data not in ("shared", "sharded"):
            raise ValueError(f"data must be 'shared' or 'sharded', not {data!r}")
        self.data = data
        self.max_restarts = check_int_min(max_restarts, "max_restarts", 0)
        if self.max_restarts and self.sync_every > 1:
            raise ValueError(f"max_restarts={self.max_restarts} needs sync_every=1: with parameter averaging a "
                             f"dead worker's local steps since the last sync are lost (resume from a checkpoint)")
        self.restarts = 0
        self.restart_log = []
        if self.batch_size < self.num_workers:
            raise ValueError(f"batch_size ({self.batch_size}) must be at least num_workers ({self.num_workers}): "
                             f"every worker needs rows of each batch")
        self.profile = RayProfile()
        self.workers = []

    # ------------------------------------------------------------------ the fit
    def fit(self, X, y, epochs=1, batch_size=None, *, augment=None, **kwargs):
        """Train on the Ray workers; the arguments and the returned History are those of :meth:`Trainer.fit`.

        The history gains per-epoch ``compute_time``, ``communication_time``, ``update_time`` (seconds,
        summed over the epoch's syncs); ``self.profile`` holds every sync.

        Raises
        ------
        WorkerError
            A worker died, raised (its exception is the ``__cause__``) or did not answer within ``timeout``.
        ValueError
            Bad input (as :meth:`Trainer.fit`), ``num_workers`` above the cluster's CPUs, a layer
            with row-unkeyed random masks, ``augment``; with ``data='sharded'`` a batch not divisible
            by ``num_workers`` or ``samples_per_epoch``.
        """
        if augment is not None:
            raise ValueError("augment is not supported by RayTrainer yet (the workers hold the data fixed); "
                             "augment the data beforehand or use Trainer")
        if batch_size is not None:
            batch_size = check_batch_size(batch_size)
        if batch_size is not None and batch_size < self.num_workers:
            raise ValueError(f"batch_size ({batch_size}) must be at least num_workers ({self.num_workers})")
        if self.data == "sharded":
            bs = self.batch_size if batch_size is None else batch_size
            if bs % self.num_workers:
                raise ValueError(f"data='sharded' needs batch_size ({bs}) divisible by num_workers "
                                 f"({self.num_workers}): every worker gives batch_size / num_workers rows per step")
            if kwargs.get("samples_per_epoch") is not None:
                raise ValueError("samples_per_epoch is not supported with data='sharded' (a subset would leave the "
                                 "shards uneven); use data='shared'")
        self.profile = RayProfile()
        self._epoch_marks = []
        self.restarts, self.restart_log = 0, []
        try:
            history = super().fit(X, y, epochs, batch_size, **kwargs)
        finally:
            self._stop_workers()
        # Per-epoch sums of the profile: History gets them after the loop (logs are appended before
        # callbacks run), so the EpochLogger does not print them.
        a = self.profile.arrays()
        bounds = [0] + self._epoch_marks
        for key, field in (("compute_time", "compute"), ("communication_time", "communication"),
                           ("update_time", "update")):
            history.history[key] = [float(a[field][lo:hi].sum()) for lo, hi in zip(bounds[:-1], bounds[1:])]
        return history

    def profile_report(self, X, y, *, n_steps=64, batch_size=None):
        """Per-step compute vs communication of a short fit as a table (``fastnn.profile`` of a RayTrainer).

        Fits one epoch of at most ``n_steps`` steps on the first rows of ``X``/``y`` and reports
        :attr:`profile` (the first sync, which carries the workers' first-call costs, left out);
        the network, optimizer and trainer are restored afterwards, as :func:`fastnn.profile` does.
        ``self.profile.report()`` gives the same table for the last real fit.

        Returns
        -------
        RayProfileReport
        """
        from ..profiler import _restore, _snapshot

        n_steps = check_int_min(n_steps, "n_steps", 1)
        bs = self.batch_size if batch_size is None else check_batch_size(batch_size)
        X, y = np.asarray(X), np.asarray(y)
        n = min(len(X), (n_steps + 1) * bs)  # one step more: the first sync is left out
        saved = _snapshot(self)
        try:
            self.fit(X[:n], y[:n], epochs=1, batch_size=bs, verbose=0)
            return self.profile.report(skip=1, **self._profile_config(min(bs, n)))
        finally:
            _restore(self, saved)

    def _profile_config(self, batch_size):
        plan = self.last_plan or {}
        return {"workers": self.num_workers, "sync_every": self.sync_every, "batch": batch_size,
                "path": plan.get("path"), "backend": plan.get("backend")}

    def _plan_shards(self, n_threads, batch_size):
        return 1  # the driver only applies updates; the workers plan their own single shard

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            if self.address is None:
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=self.address, log_to_driver=False)
        cpus = ray.cluster_resources().get("CPU", 0)
        if self.num_workers > cpus:
            raise ValueError(f"num_workers={self.num_workers} is more than the Ray cluster's {int(cpus)} CPUs "
                             f"(one worker per CPU)")
        return ray

    def _check_plan(self, plan):
        # Workers draw the dropout masks of their rows of the whole batch: a layer whose masks are
        # not keyed by the row in the batch would draw different ones on every split.
        for i, layer in enumerate(self.network.layers):
            if getattr(layer, "dropout", 0) and hasattr(layer, "step") and not hasattr(layer, "row0"):
                raise ValueError(f"layer {i} ({type(layer).__name__}) draws dropout masks that do not follow "
                                 f"a row split, so workers would not reproduce serial training; set its "
                                 f"dropout to 0 or use Trainer")

    def _start_workers(self, ray, X, Y, batch_size, hyper, path):
        # Once per fit: every step ships only parameters and gradients. Shared: one object (one copy per
        # node, mapped by every worker there); sharded: worker k's rows k, k + N, ... only.
        n_w = self.num_workers
        if self.data == "sharded":
            refs = [(ray.put(np.ascontiguousarray(X[k::n_w])), ray.put(np.ascontiguousarray(Y[k::n_w])))
                    for k in range(n_w)]
        else:
            refs = [(ray.put(X), ray.put(Y))] * n_w
        remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(ShardWorker)
        self._new_worker = lambda k: remote.remote(k, n_w, self.network, self.loss, self.optimizer, refs[k][0],
                                                   refs[k][1], batch_size, hyper, self.backend, path=path,
                                                   pin_threads=True)
        self.workers = [self._new_worker(k) for k in range(self.num_workers)]
        # start-up (a new process, imports) may take longer than a step on a busy machine
        self._get([w.ready.remote() for w in self.workers], "start", timeout=max(self.timeout, 60.0))

    def _replace_worker(self, err, perm_ref):
        """Start a new actor for the dead worker ``err.worker`` (``max_restarts``), or re-raise ``err``."""
        if err.kind != "died" or self.restarts >= self.max_restarts:
            raise err
        ray = _ray()
        k = err.worker
        try:
            ray.kill(self.workers[k])
        except Exception:  # noqa: BLE001 - it is dead already
            pass
        self.workers[k] = self._new_worker(k)
        if perm_ref is not None:
            self.workers[k].set_perm.remote(perm_ref)
        self._get([self.workers[k].ready.remote()], "a restart", err.step, timeout=max(self.timeout, 60.0))
        self.restarts += 1
        self.restart_log.append({"worker": k, "step": err.step})

    def _stop_workers(self):
        if self.workers:
            ray = _ray()
            for w in self.workers:
                try:
                    ray.kill(w)
                except Exception:  # noqa: BLE001 - already dead: nothing to release
                    pass
        self.workers = []

    def _get(self, refs, what, step=None, timeout=None):
        """``ray.get`` of one result per worker, in worker order, never waiting past ``timeout``."""
        ray = _ray()
        timeout = self.timeout if timeout is None else timeout
        try:
            return ray.get(refs, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - diagnosed below, per worker
            first = exc
        # Which worker? A dead actor's or a raising task's reference is ready with its error at once.
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.1)
        ready = set(ready)
        at = f" at step {step}" if step is not None else ""
        for k, ref in enumerate(refs):
            if ref not in ready:
                continue
            try:
                ray.get(ref, timeout=0.1)
            except ray.exceptions.RayActorError as exc:
                raise WorkerError(f"Ray worker {k} of {len(refs)} died during {what}{at}; the network holds the "
                                  f"weights of the last completed step. Resume from the last checkpoint "
                                  f"with fit(..., resume_from=...)", worker=k, step=step, kind="died") from exc
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                raise WorkerError(f"Ray worker {k} of {len(refs)} raised {type(cause).__name__} during "
                                  f"{what}{at}: {cause}", worker=k, step=step, kind="raised") from cause
            except Exception as exc:  # noqa: BLE001
                raise WorkerError(f"Ray worker {k} of {len(refs)} failed during {what}{at}: {exc!r}",
                                  worker=k, step=step, kind="raised") from exc
        late = [k for k, ref in enumerate(refs) if ref not in ready]
        if late or isinstance(first, ray.exceptions.GetTimeoutError):
            raise WorkerError(f"Ray worker(s) {late} did not answer within {timeout:g} s during "
                              f"{what}{at} (busy cluster, too few free CPUs, or a hung worker)",
                              worker=late[0] if late else None, step=step, kind="timeout") from first
        raise first

    def _make_runner(self, kern, plan, X, Y, batch_size, hyper, layer_shards=1):
        self._check_plan(plan)
        if self.data == "sharded" and batch_size % self.num_workers:  # fit clips the batch to the samples
            raise ValueError(f"data='sharded' needs the batch ({batch_size}: batch_size clipped to the number of "
                             f"samples) divisible by num_workers ({self.num_workers})")
        ray = self._connect()
        net, opt = self.network, self.optimizer
        plan.bind(net, opt, hyper)
        self._start_workers(ray, X, Y, batch_size, hyper, plan.path)
        workers, n_w = self.workers, self.num_workers
        self.last_plan.update({"num_workers": n_w, "sync_every": self.sync_every,
                               "mode": "gradient averaging" if self.sync_every == 1 else "parameter averaging"})
        dropouts = [layer for layer in net.layers if hasattr(layer, "step") and hasattr(layer, "key")]
        n_bufs = net.buffers.size  # BatchNorm running statistics: averaged over the workers at every sync
        acc = np.zeros(net.n_params if self.sync_every == 1 else net.n_params + opt.state.size + n_bufs)
        tmp = np.empty_like(acc)
        bacc, btmp = np.zeros(n_bufs), np.empty(n_bufs)
        state = {"perm": None, "perm_refs": [None] * n_w, "n": 0, "since": 0, "fresh": True, "rows": np.zeros(n_w),
                 "local_n": None}
        sharded = self.data == "sharded"
        b = batch_size // n_w  # sharded: rows per worker per full batch (batch_size % num_workers == 0)

        def new_epoch(perm):
            # identity check: the Trainer draws one permutation array per epoch
            if perm is not state["perm"]:
                perm = np.ascontiguousarray(perm, np.int64)
                if sharded:
                    # worker k holds rows k, k + N, ...: its order is the epoch's permutation filtered to
                    # its rows, as positions in its shard (one small int array per worker and epoch)
                    local = [perm[perm % n_w == k] // n_w for k in range(n_w)]
                    refs = [ray.put(loc) for loc in local]
                    state["local_n"] = np.array([len(loc) for loc in local], np.int64)
                else:
                    refs = [ray.put(perm)] * n_w
                for w, ref in zip(workers, refs):
                    w.set_perm.remote(ref)  # actor calls run in order: before the epoch's steps
                state["perm"], state["n"], state["perm_refs"] = perm, len(perm), refs

        def parts_of(start):
            """Sharded data: ``(lo, m, row0)`` of each worker in the global batch at ``start``."""
            j = int(start) // batch_size
            m = np.clip(state["local_n"] - j * b, 0, b)
            row0 = np.concatenate([[0], np.cumsum(m)[:-1]])
            return [(j * b, int(m[k]), int(row0[k])) for k in range(n_w)]

        def finish_epoch(starts):
            for layer in dropouts:  # as the fused runner does: a later training forward continues the count
                layer.step = opt.iterations + 1
            if int(starts[-1]) + batch_size >= state["n"]:
                self._epoch_marks.append(len(self.profile))

        def run_sync(perm, starts, batch_loss, batch_correct):
            new_epoch(perm)
            n = state["n"]
            for j, start in enumerate(starts):
                t0 = time.perf_counter()
                step = opt.iterations + 1
                m_total = min(batch_size, n - int(start))
                lr = opt.learning_rates(opt.iterations, 1)[0]
                p_ref = ray.put(net.params)
                b_ref = ray.put(net.buffers) if n_bufs else None
                t_put = time.perf_counter() - t0
                while True:
                    try:
                        parts = parts_of(start) if sharded else [None] * n_w
                        res = self._get([w.grad_step.remote(p_ref, int(start), m_total, step, part, b_ref)
                                         for w, part in zip(workers, parts)], "a gradient step", step)
                        break
                    except WorkerError as err:
                        # The driver holds the weights before this step: a new actor and a re-run of the
                        # whole step (every worker) give exactly the step that failed.
                        self._replace_worker(err, state["perm_refs"][err.worker])
                t1 = time.perf_counter()
                loss = correct = 0.0
                first = True
                for g, l_k, c_k, m_k, _, bufs in res:  # fixed order 0..N-1: deterministic
                    if m_k:  # the row-weighted mean, accumulated in float64 without temporaries
                        np.multiply(g, m_k / m_total, out=acc if first else tmp)
                        if n_bufs:
                            np.multiply(bufs, m_k / m_total, out=bacc if first else btmp)
                        if not first:
                            np.add(acc, tmp, out=acc)
                            if n_bufs:
                                np.add(bacc, btmp, out=bacc)
                        first = False
                        loss += l_k * (m_k / m_total)
                        correct += c_k
                net.grads[...] = acc
                if n_bufs:
                    net.buffers[...] = bacc
                t2 = time.perf_counter()
                kern.apply_update(plan, lr, step)
                opt.iterations += 1
                batch_loss[j], batch_correct[j] = loss, correct
                t3 = time.perf_counter()
                times = [r[4] for r in res]
                self.profile.add(1, t3 - t0, max(times), t2 - t1, t3 - t2, t_put, max(times) - min(times))
            finish_epoch(starts)

        def run_avg(perm, starts, batch_loss, batch_correct):
            new_epoch(perm)
            n, k = state["n"], self.sync_every
            epoch_end = int(starts[-1]) + batch_size >= n
            i = 0
            # Syncs every k steps since the last one, and at every epoch's end, wherever the Trainer's
            # chunks (128 batches, or 1 with per-batch callbacks) fall: the same for any callbacks.
            while i < len(starts):
                t0 = time.perf_counter()
                take = min(k - state["since"], len(starts) - i)
                seg = [int(s) for s in starts[i:i + take]]
                sync = state["since"] + take == k or (epoch_end and i + take == len(starts))
                m_tot = [min(batch_size, n - s) for s in seg]
                lrs = opt.learning_rates(opt.iterations, take)
                # after a sync the driver's parameters and state are the newest: broadcast them once
                ps_ref = ray.put(np.concatenate([net.params, opt.state.reshape(-1), net.buffers])) \
                    if state["fresh"] else None
                t_put = time.perf_counter() - t0
                parts = [[parts_of(s)[kk] for s in seg] for kk in range(n_w)] if sharded else [None] * n_w
                res = self._get([w.local_steps.remote(ps_ref, seg, m_tot, opt.iterations, lrs, sync, parts[kk])
                                 for kk, w in enumerate(workers)], "local steps", opt.iterations + 1)
                t1 = time.perf_counter()
                rows = np.array([r[3] for r in res], np.float64)  # (worker, batch)
                share = rows / np.array(m_tot, np.float64)
                batch_loss[i:i + take] = sum(r[1] * share[kk] for kk, r in enumerate(res))
                batch_correct[i:i + take] = sum(r[2] for r in res)
                state["rows"] += rows.sum(axis=1)
                if sync:
                    weight = state["rows"] / state["rows"].sum()
                    acc[...] = 0.0
                    for r, w_k in zip(res, weight):  # fixed order 0..N-1, weighted by rows since the last sync
                        if w_k > 0:
                            np.multiply(r[0], w_k, out=tmp)
                            np.add(acc, tmp, out=acc)
                    n_ps = net.n_params + opt.state.size
                    net.params[...] = acc[:net.n_params]
                    opt.state.reshape(-1)[...] = acc[net.n_params:n_ps]
                    net.buffers[...] = acc[n_ps:]
                    state["since"], state["fresh"], state["rows"] = 0, True, np.zeros(n_w)
                else:
                    state["since"], state["fresh"] = state["since"] + take, False
                opt.iterations += take
                i += take
                t2 = time.perf_counter()
                times = [r[4] for r in res]
                self.profile.add(take, t2 - t0, max(times), t2 - t1, 0.0, t_put, max(times) - min(times))
            finish_epoch(starts)

        return run_sync if self.sync_every == 1 else run_avg
