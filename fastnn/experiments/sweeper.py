"""``sweep``: train every configuration of a grid with several seeds on a fixed budget, and compare them.

Where the runs execute (the rule, also in :func:`sweep`'s docstring): a run
whose batches the trainer would split over threads (row shards or a column
split: wide networks, large batches) always trains in this process with all
threads, one run after another. Every other run trains on one thread -- here,
or, when that is faster, in worker processes (``spawn``, one thread each),
several runs at once. Either way a run computes exactly the same numbers, so
the table does not depend on ``n_jobs``.
"""
import math
import os
import pickle
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

import numpy as np

from .. import losses as _losses
from .._config import get_num_threads
from .._validation import is_int, is_real
from ..callbacks import Callback
from ..engine import build_plan, choose_layer_shards
from ..errors import ParameterError
from ..kernels import get_backend
from ..trainer import Trainer
from .grid import config_label, expand_grid, split_config
from .result import SweepResult
from .runner import DEFAULT_TRAINING, as_seed_list, default_metric, run_one

#: Worker processes pay for themselves only when the one-thread runs left after the first one would take
#: at least this long one after another. Starting two spawn workers (interpreter, numpy, fastnn, the
#: compiled kernels) and sending them the data was measured at 4.0 s on the shared 2-core machine at load
#: average 10 (``python -m bench.sweep``, A); two workers can at best halve the work, so the work must be
#: well above twice that.
MIN_PARALLEL_SECONDS = 10.0
#: Workers only help on idle cores: at load average 10 on 2 cores, 8 small runs took 3.5 s serially and
#: 8.1 s on two workers (bench.sweep, B), 4.1 s of it after the start-up.
MIN_IDLE_CORES = 1.5


def idle_cores(cores):
    """Cores the 1-minute load average leaves idle, counting this process's own load as ours."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform: assume an idle machine
        return float(cores)
    return max(0.0, cores - max(0.0, load - 1.0))


def _check_budget(epochs, seconds):
    if epochs is not None and seconds is not None:
        raise ParameterError("give the budget as epochs= or seconds=, not both")
    if seconds is not None:
        if not is_real(seconds) or not math.isfinite(seconds) or seconds <= 0:
            raise ParameterError(f"seconds must be a positive finite number, not {seconds!r}")
        return None, float(seconds), f"{seconds:g} s per run"
    epochs = 10 if epochs is None else epochs
    if not is_int(epochs) or epochs < 1:
        raise ParameterError(f"epochs must be a positive integer, not {epochs!r}")
    return int(epochs), None, f"{epochs} epochs per run"


def _check_n_jobs(n_jobs):
    if n_jobs == "auto" or (is_int(n_jobs) and n_jobs >= 1):
        return n_jobs
    raise ParameterError(f"n_jobs must be 'auto' or a positive integer, not {n_jobs!r}")


def _would_split(make_network, config, seed, fixed, loss, X, y):
    """Whether the trainer, given every thread, would split this configuration's batches over threads."""
    n_threads = get_num_threads()
    if n_threads <= 1:
        return False
    training, network_kw = split_config({**fixed, **config})
    training = {**DEFAULT_TRAINING, **training}
    batch_size = min(len(X), len(X) if training["batch_size"] == "full" else training["batch_size"])
    net = make_network(seed=seed, **network_kw)
    trainer = Trainer(net, loss=loss, batch_size=batch_size, verbose=0)
    kern = get_backend(trainer.backend)
    split = trainer._split(kern, n_threads, batch_size)
    if split.kind in ("columns", "blas"):
        return True
    ny = 1 if np.ndim(y) == 1 else np.shape(y)[1]
    plan = build_plan(net, trainer.loss, batch_size, split.threads if split.kind == "shards" else 1, ny,
                      backend_has_driver=hasattr(kern, "train_steps"))
    if plan.path == "fused":
        return plan.n_shards > 1
    return choose_layer_shards(net, trainer.loss, kern.NAME, n_threads, batch_size, trainer.parallel)[0] > 1


def _picklable(*objects):
    try:
        pickle.dumps(objects)
        return ""
    except Exception as exc:  # pickling raises many kinds (PicklingError, AttributeError, TypeError)
        return f"{type(exc).__name__}: {exc}"[:200]


# ---------------------------------------------------------------------------- worker processes
_WORKER = {}


def _init_worker(make_network, data, settings):
    # The parent decides what an interrupt means: a worker finishes its run and is shut down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(make_network=make_network, data=data, settings=settings)


def _work(task):
    index, seed_index, config, seed = task
    w = _WORKER
    return index, seed_index, run_one(w["make_network"], config, seed, w["data"], w["settings"])


class _OneThreadEnv:
    """Worker processes inherit the environment: one thread for every library they load."""

    NAMES = ("FASTNN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS")

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in self.NAMES}
        os.environ.update({name: "1" for name in self.NAMES})

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_pool(tasks, n_workers, make_network, data, settings, on_done):
    """Run ``tasks`` on ``n_workers`` spawn processes; ``on_done(index, seed_index, record)`` per run.

    A KeyboardInterrupt cancels what has not started, waits for the runs in flight (at most one
    per worker), reports every run that finished -- those too -- and is re-raised.
    """
    pool = ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(make_network, data, settings))
    unreported = set()
    try:
        with _OneThreadEnv():  # the workers start as the tasks are submitted
            unreported = {pool.submit(_work, task) for task in tasks}
        pending = set(unreported)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                result = fut.result()
                unreported.discard(fut)
                on_done(*result)
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)
        for fut in unreported:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                on_done(*fut.result())
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------- the public function
def sweep(make_network, grid, X, y, *, validation_data=None, loss="cross_entropy", fixed=None, epochs=None,
          seconds=None, seeds=(0, 1, 2), metric=None, target=None, n_jobs="auto", callbacks=None, verbose=0):
    """Train every configuration of ``grid`` with every seed on the same budget; return a :class:`SweepResult`.

    Parameters
    ----------
    make_network : callable
        ``make_network(seed=seed, **network_keys)`` returns a fresh :class:`~fastnn.Network`; the grid
        keys that are not training settings are passed to it (e.g. ``activation``, ``hidden``).
        :class:`fastnn.experiments.MLPFactory` is one. For worker processes it must be picklable (a
        module-level function or such an object); otherwise every run trains here.
    grid : dict of lists, or list of dicts
        Every combination of a dict's values (``{'optimizer': ['sgd', 'adam'], 'lr': [0.1, 0.001]}``:
        four configurations), or exactly the configurations of a list. Training keys:
        ``optimizer`` (``'sgd'``, ``'sgd_momentum'`` = SGD with momentum 0.9, ``'adam'``, ``'adamw'``,
        ``'rmsprop'``, ``'adagrad'``; default adam), ``lr`` (default: the optimizer's), ``batch_size``
        (int or ``'full'``, batch gradient descent; default 32), ``momentum`` (SGD), ``weight_decay``,
        ``clip_norm``.
    X, y : array-like
        Training data, as :meth:`fastnn.Trainer.fit` takes it.
    validation_data : tuple (X_val, y_val), optional
        Evaluated after every epoch; the default metric is then ``val_accuracy`` (classification)
        or ``val_loss``.
    loss : str or Loss, default 'cross_entropy'
    fixed : dict, optional
        Settings every configuration shares (same keys as the grid), e.g. ``{'batch_size': 64}``.
    epochs : int, optional
        The budget of every run: this many epochs (default 10)...
    seconds : float, optional
        ...or this many seconds of training (whole epochs; at least one). Timed budgets depend on
        the machine and its load, so they are not reproducible.
    seeds : int or list of int, default (0, 1, 2)
        Every configuration is trained once per seed (the seed of the weights and the shuffling);
        an int ``n`` means ``range(n)``.
    metric : str, optional
        A logged per-epoch value to compare (``'val_accuracy'``, ``'val_loss'``, ``'loss'``...).
    target : float, optional
        Record the time (and epochs) each run took to reach ``metric >= target`` (``<=`` for losses).
    n_jobs : 'auto' or int, default 'auto'
        Worker processes for the runs that train on one thread. ``'auto'``: several (one per thread
        of :func:`fastnn.get_num_threads`) when there is more than one run and more than one core,
        ``make_network`` and the callbacks pickle, the first such run -- trained here -- shows
        that the rest would take at least :data:`MIN_PARALLEL_SECONDS` one after another, and the
        load average leaves at least :data:`MIN_IDLE_CORES` cores idle (one worker per idle core);
        otherwise all train here. ``SweepResult.execution`` says which rule decided. Runs the trainer would thread (its plan splits the batch) always train here
        with all threads. A run gives the same numbers wherever it trains.
    callbacks : list of Callback, optional
        Added to every run's trainer (e.g. to stop early).
    verbose : int, default 0
        1: print one line per finished run.

    Returns
    -------
    SweepResult
        ``.table()``, ``.rows``, ``.runs`` (with loss curves), ``.to_csv(path)``, ``.plot(path)``.
        A run whose loss becomes NaN/Inf is recorded with status ``'diverged'``. A KeyboardInterrupt
        returns the runs finished so far, with ``interrupted=True``.

    Raises
    ------
    ParameterError
        (a ``ValueError`` and ``TypeError``) for a bad grid (unknown key, empty list, wrong type),
        budget, seeds, metric or n_jobs, before the first run.
    """
    configs = expand_grid(grid, make_network)
    fixed = expand_grid([fixed], make_network)[0] if fixed else {}
    epochs, seconds, budget = _check_budget(epochs, seconds)
    seeds = as_seed_list(seeds)
    n_jobs = _check_n_jobs(n_jobs)
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ParameterError(f"callbacks must be fastnn Callbacks, not {type(cb).__name__}")
    loss = _losses.get(loss)
    if metric is None:
        metric = default_metric(loss.is_classification, validation_data is not None)
    elif not isinstance(metric, str) or not metric:
        raise ParameterError(f"metric must be the name of a logged value such as 'val_loss', not {metric!r}")
    if target is not None and (not is_real(target) or not math.isfinite(target)):
        raise ParameterError(f"target must be a finite number or None, not {target!r}")
    settings = {"fixed": fixed, "loss": loss, "epochs": epochs, "seconds": seconds, "metric": metric,
                "target": None if target is None else float(target), "n_threads": 1, "callbacks": callbacks}
    data = (X, y, validation_data)
    tasks = [(i, j, config, seed) for i, config in enumerate(configs) for j, seed in enumerate(seeds)]
    records = {}
    n_total = len(tasks)

    def on_done(i, j, record):
        records[(i, j)] = record
        if verbose:
            value = record["final"] if record["status"] == "ok" else math.nan
            print(f"[{len(records)}/{n_total}] {config_label(record['config'])} seed {record['seed']}: "
                  f"{record['status']}, {metric} {value:.4g}, {record['seconds']:.2f} s", flush=True)

    threaded_configs = {i for i, config in enumerate(configs)
                        if _would_split(make_network, config, seeds[0], fixed, loss, X, y)}
    threaded = [t for t in tasks if t[0] in threaded_configs]
    single = [t for t in tasks if t[0] not in threaded_configs]
    interrupted = False
    execution = "serial"
    try:
        for i, j, config, seed in threaded:
            on_done(i, j, run_one(make_network, config, seed, data, {**settings, "n_threads": None}))
        if single:
            i, j, config, seed = single[0]
            t0 = time.perf_counter()
            on_done(i, j, run_one(make_network, config, seed, data, settings))
            first = time.perf_counter() - t0
            n_workers, execution = _choose_workers(n_jobs, len(single) - 1, first, make_network, callbacks)
            rest = single[1:]
            if n_workers > 1:
                _run_pool(rest, n_workers, make_network, data, settings, on_done)
            else:
                for i, j, config, seed in rest:
                    on_done(i, j, run_one(make_network, config, seed, data, settings))
        if threaded:
            here = f"{len(threaded)} runs threaded over {get_num_threads()} threads here"
            execution = here if not single else f"{here}; the one-thread runs: {execution}"
    except KeyboardInterrupt:
        interrupted = True
    runs = [records[key] for key in sorted(records)]
    return SweepResult(configs, seeds, runs, metric=metric, target=settings["target"], budget=budget,
                       interrupted=interrupted, execution=execution)


def _choose_workers(n_jobs, n_left, first_seconds, make_network, callbacks):
    """``(workers, why)`` for the one-thread runs left after the first one (see :func:`sweep`)."""
    if n_left < 1:
        return 1, "serial: a single one-thread run"
    if n_jobs != "auto":
        n = min(int(n_jobs), n_left)
        if n > 1:
            problem = _picklable(make_network, callbacks)
            if problem:
                raise ParameterError(f"n_jobs={n_jobs} needs a picklable make_network and callbacks "
                                     f"(a module-level function): {problem}")
            return n, f"{n} worker processes: n_jobs={n_jobs}"
        return 1, "serial: n_jobs=1"
    cores = get_num_threads()
    if cores < 2:
        return 1, "serial: one thread"
    estimate = first_seconds * n_left
    if estimate < MIN_PARALLEL_SECONDS:
        return 1, (f"serial: the {n_left} one-thread runs left take about {estimate:.1f} s, less than the "
                   f"{MIN_PARALLEL_SECONDS:g} s worker processes need to pay for their start")
    idle = idle_cores(cores)
    if idle < MIN_IDLE_CORES:
        return 1, (f"serial: the load average leaves {idle:.1f} of {cores} cores idle (worker processes "
                   f"need {MIN_IDLE_CORES:g})")
    problem = _picklable(make_network, callbacks)
    if problem:
        return 1, f"serial: make_network or the callbacks cannot be sent to worker processes ({problem})"
    n = min(cores, n_left, int(idle))
    return n, (f"{n} worker processes, one thread each: {n_left} one-thread runs left, about "
               f"{estimate:.1f} s one after another")
