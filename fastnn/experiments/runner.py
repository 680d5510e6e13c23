"""One run of a sweep: build the network of a configuration and seed, train it for the budget, record it.

A run is a plain dict (picklable, so worker processes can send it back):
``config``, ``seed``, ``status`` (``'ok'`` or ``'diverged'``), ``epochs``,
``seconds``, ``samples_per_s``, ``final`` and ``best`` (the sweep's metric),
``time_to_target`` / ``epochs_to_target`` (None when not reached) and
``curves``: one list per epoch of ``loss``, the validation metrics, and
``time`` (seconds since the start of training, for loss-per-second plots).
"""
import math
import time

from .._validation import is_int
from ..callbacks import Callback
from ..errors import ParameterError
from ..trainer import Trainer
from .grid import make_optimizer, split_config

#: Training settings every configuration starts from (a grid or ``fixed`` overrides them).
DEFAULT_TRAINING = {"optimizer": "adam", "batch_size": 32}
_CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def lower_is_better(metric):
    """Whether smaller values of ``metric`` are better (losses and errors)."""
    return any(word in metric for word in ("loss", "mse", "mae", "error"))


class _Recorder(Callback):
    """Keeps every epoch's logs and wall time, and stops at the seconds budget.

    Only epoch hooks: the trainer keeps running whole chunks of batches in one compiled call.
    """

    every_batch = False

    def __init__(self, seconds=None):
        self.seconds = seconds
        self.logs = []
        self.times = []
        self.t0 = None

    def on_train_begin(self, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)
        self.logs.append(dict(logs or {}))
        if self.seconds is not None and self.times[-1] >= self.seconds:
            self.trainer.stop_training = True


def _target_reached(value, target, lower):
    return value <= target if lower else value >= target


def run_one(make_network, config, seed, data, settings):
    """Train configuration ``config`` with ``seed`` and return its run record (see the module docstring).

    Parameters
    ----------
    make_network : callable
        ``make_network(seed=seed, **network_keys)`` -> Network.
    config : dict
        One configuration (already checked by :func:`fastnn.experiments.grid.expand_grid`).
    seed : int
        Seeds the network's weights and the trainer's shuffling.
    data : tuple
        ``(X, y, validation_data)``.
    settings : dict
        ``fixed``, ``loss``, ``epochs``, ``seconds``, ``metric``, ``target``, ``n_threads``, ``callbacks``.

    A run whose loss or weights become NaN/Inf (the trainer's guard raises
    :class:`~fastnn.errors.NonFiniteError`) is recorded as ``'diverged'`` with the epochs it finished.
    """
    X, y, validation_data = data
    full = {**settings["fixed"], **config}
    training, network_kw = split_config(full)
    training = {**DEFAULT_TRAINING, **training}
    batch_size = len(X) if training["batch_size"] == "full" else training["batch_size"]
    net = make_network(seed=seed, **network_kw)
    trainer = Trainer(net, loss=settings["loss"], optimizer=make_optimizer(training, {}), batch_size=batch_size,
                      clip_norm=training.get("clip_norm"), seed=seed, n_threads=settings["n_threads"], verbose=0)
    seconds = settings["seconds"]
    epochs = settings["epochs"] if seconds is None else 10 ** 9  # the recorder stops a timed run
    recorder = _Recorder(seconds)
    status = "ok"
    error = None
    try:
        trainer.fit(X, y, epochs=epochs, validation_data=validation_data,
                    callbacks=[recorder, *settings["callbacks"]])
    except FloatingPointError as exc:  # NonFiniteError: the guard restored the weights and stopped
        status, error = "diverged", str(exc)
    return summarize(config, seed, status, recorder.logs, recorder.times,
                     getattr(trainer, "n_samples_epoch", len(X)), settings, error)


def summarize(config, seed, status, logs, times, samples_per_epoch, settings, error=None):
    """The run record of a finished (or diverged) run from its per-epoch logs."""
    metric, target = settings["metric"], settings["target"]
    lower = lower_is_better(metric)
    curves = {key: [float(entry[key]) for entry in logs] for key in _CURVE_KEYS if logs and key in logs[0]}
    curves["time"] = [float(t) for t in times]
    values = [float(entry.get(metric, math.nan)) for entry in logs]
    if logs and metric not in logs[0]:
        raise ValueError(f"metric {metric!r} is not among the logged values {sorted(logs[0])}")
    finite = [v for v in values if math.isfinite(v)]
    train_time = sum(float(entry.get("epoch_time", 0.0)) for entry in logs)
    record = {"config": dict(config), "seed": seed, "status": status, "epochs": len(logs),
              "seconds": float(times[-1]) if times else 0.0,
              "samples_per_s": samples_per_epoch * len(logs) / train_time if train_time > 0 else math.nan,
              "final": values[-1] if values and status == "ok" else math.nan,
              "best": (min(finite) if lower else max(finite)) if finite else math.nan,
              "time_to_target": None, "epochs_to_target": None, "curves": curves, "error": error}
    if target is not None:
        for i, value in enumerate(values):
            if math.isfinite(value) and _target_reached(value, target, lower):
                record["time_to_target"] = float(times[i])
                record["epochs_to_target"] = i + 1
                break
    return record


def default_metric(loss_is_classification, has_validation):
    """The metric a sweep ranks by when none is given."""
    name = "accuracy" if loss_is_classification else "loss"
    return ("val_" + name) if has_validation else name


def as_seed_list(seeds):
    """``seeds`` as a list of distinct non-negative ints (an int n means ``range(n)``)."""
    if is_int(seeds):
        if seeds < 1:
            raise ParameterError(f"seeds must be a positive count or a list of seeds, not {seeds}")
        return list(range(int(seeds)))
    try:
        out = list(seeds)
    except TypeError:
        raise ParameterError(f"seeds must be an int count or a list of non-negative ints, not {seeds!r}") from None
    if not out or not all(is_int(s) and s >= 0 for s in out) or len(set(out)) != len(out):
        raise ParameterError(f"seeds must be a non-empty list of distinct non-negative ints, not {seeds!r}"[:300])
    return [int(s) for s in out]


