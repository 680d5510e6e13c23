"""Callbacks that steer training: early stopping, NaN guard, learning-rate schedules and plateaus."""
import inspect
import math

import numpy as np

from .._validation import Integer, Param, Real, is_real
from .base import Callback, _warn

__all__ = ["resolve_mode", "EarlyStopping", "TerminateOnNaN", "LearningRateScheduler", "ReduceLROnPlateau"]


def resolve_mode(monitor, mode="auto"):
    """'min' or 'max' for a monitored quantity: explicit, or inferred from its name.

    ``auto``: losses (names ending in ``loss``) go down; a known metric
    (:func:`fastnn.metrics.get_metric`) goes the way its ``greater_is_better``
    says; anything else needs an explicit ``mode``.
    """
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor must be a metric name such as 'val_loss', not {monitor!r}")
    base = monitor[4:] if monitor.startswith("val_") else monitor
    if base.endswith("loss") or base in ("epoch_time", "lr"):
        return "min"
    if base == "samples_per_s":
        return "max"
    from ..metrics import get_metric

    try:
        return "max" if get_metric(base).greater_is_better else "min"
    except ValueError:
        raise ValueError(f"cannot tell whether {monitor!r} should go up or down; pass mode='min' or "
                         f"mode='max'") from None


class _Monitor(Callback):
    """Shared bookkeeping of callbacks that watch one logged quantity for improvement."""

    min_delta = Param(Real(0))
    patience = Param(Integer(0))

    def __init__(self, monitor, mode, min_delta):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = min_delta
        self._warned_missing = False

    def _reset_best(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def _improved(self, current):
        if not math.isfinite(current):
            return False
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def _current(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            if not self._warned_missing:
                self._warned_missing = True
                hint = (" (pass validation_data to fit, or monitor the training metric)"
                        if self.monitor.startswith("val_") else "")
                _warn(f"{type(self).__name__} monitors {self.monitor!r}, which the epoch logs do not have; "
                      f"available: {sorted(logs)}{hint}. It does nothing this run.")
            return None
        return float(value)


class EarlyStopping(_Monitor):
    """Stop training when a monitored quantity has stopped improving.

    Parameters
    ----------
    monitor : str, default 'val_loss'
        A key of the epoch logs (``loss``, ``accuracy``, ``val_loss``, ``val_<metric>``...).
    patience : int, default 5
        Epochs without improvement after which training stops.
    min_delta : float, default 0
        An improvement must beat the best value by more than this (absolute).
    mode : {'auto', 'min', 'max'}, default 'auto'
        Whether the quantity should go down or up; ``auto`` infers it from the name.
    restore_best_weights : bool, default False
        When training ends (stopped or not), put back the network's weights
        from the end of the best epoch.
    verbose : int, default 0
        1 prints a line when stopping and when restoring.

    Attributes
    ----------
    best, best_epoch : float, int
        Best value seen in the last ``fit`` and its (0-based, trainer-wide) epoch.
    stopped_epoch : int or None
        The epoch after which training was stopped, or None.
    restored : bool
        Whether the best weights were put back at the end of the last ``fit``.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best_weights=False,
                 verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self.best_weights = None
        self._reset()

    def _reset(self):
        self._reset_best()
        self.wait = 0
        self.best_epoch = None
        self.stopped_epoch = None
        self.restored = False
        self._last_epoch = None

    def on_train_begin(self, logs=None):
        self._reset()
        self._warned_missing = False

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        current = self._current(logs)
        if current is None:
            return
        if self._improved(current):
            self.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                params = self.trainer.network.params
                if self.best_weights is None or self.best_weights.shape != params.shape or \
                        self.best_weights.dtype != params.dtype:
                    self.best_weights = params.copy()
                else:
                    np.copyto(self.best_weights, params)
                buffers = getattr(self.trainer.network, "buffers", None)  # BatchNorm running statistics
                self.best_buffers = None if buffers is None else buffers.copy()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs "
                      f"(best {self.best:.6g} at epoch {self.best_epoch + 1 if self.best_epoch is not None else '-'}); "
                      f"stopping after epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        if (self.restore_best_weights and self.best_weights is not None and self.best_epoch is not None
                and self.best_epoch != self._last_epoch):
            self.trainer.network.params[...] = self.best_weights
            if self.best_buffers is not None:
                self.trainer.network.buffers[...] = self.best_buffers
            self.restored = True
            if self.verbose:
                print(f"EarlyStopping: restored the weights from the end of epoch {self.best_epoch + 1} "
                      f"({self.monitor} {self.best:.6g})")


class TerminateOnNaN(Callback):
    """Stop cleanly at the end of an epoch whose loss or metrics are NaN/Inf.

    The trainer already raises :class:`~fastnn.errors.NonFiniteError` the moment a
    batch loss is non-finite when ``check_finite=True`` (the default); this
    callback covers ``check_finite=False`` and non-finite validation metrics,
    and ends training with a :class:`~fastnn.diagnostics.FastnnWarning`
    instead of an exception.

    Parameters
    ----------
    monitor : list of str, optional
        Keys to check; default every metric in the logs (not ``lr``/timings).

    Attributes
    ----------
    stopped_epoch : int or None
    """

    def __init__(self, monitor=None):
        self.monitor = None if monitor is None else ([monitor] if isinstance(monitor, str) else list(monitor))
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        from ..diagnostics import check_non_finite

        logs = logs or {}
        if self.monitor is not None:
            logs = {k: logs[k] for k in self.monitor if k in logs}
        finding = check_non_finite(logs)
        if finding is not None:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            _warn(f"TerminateOnNaN: stopping after epoch {epoch + 1}: {finding}")


def _check_rate(value, source):
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{source} gave the learning rate {value!r}; it must be a positive finite number")
    return float(value)


def _require_float_lr(callback, trainer):
    lr = trainer.optimizer.lr
    if callable(lr):
        raise ValueError(f"{type(callback).__name__} sets the optimizer's learning rate between epochs, but "
                         f"optimizer.lr is a per-step schedule ({lr!r}); use one or the other: "
                         f"a float lr with {type(callback).__name__}, or the schedule alone")


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch from ``schedule(epoch)``.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch) -> lr`` with the 0-based epoch number, or
        ``schedule(epoch, lr) -> lr`` given the current rate (Keras' form). A
        :mod:`fastnn.schedules` object works too, counting epochs instead of steps.
    verbose : int, default 0
        1 prints the rate when it changes.

    The rate of each epoch appears in the logs and the history as ``lr``. The
    optimizer's ``lr`` must be a float (not a per-step schedule).
    """

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch -> lr), not {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = self._takes_two(schedule)

    @staticmethod
    def _takes_two(fn):
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return False
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            return False
        required = [p for p in positional if p.default is p.empty]
        return len(required) >= 2

    def on_train_begin(self, logs=None):
        _require_float_lr(self, self.trainer)

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.trainer.optimizer
        old = float(opt.lr)
        new = self.schedule(epoch, old) if self._two_args else self.schedule(epoch)
        new = _check_rate(float(new) if isinstance(new, (np.floating, np.ndarray)) else new,
                          f"LearningRateScheduler at epoch {epoch}")
        opt.lr = new
        if self.verbose and new != old:
            print(f"LearningRateScheduler: epoch {epoch + 1}: learning rate {new:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.setdefault("lr", float(self.trainer.optimizer.lr))


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when a monitored quantity stops improving.

    Parameters
    ----------
    monitor : str, default 'val_loss'
    factor : float, default 0.1
        New rate = old rate × factor, in (0, 1).
    patience : int, default 10
        Epochs without improvement before a reduction.
    min_delta : float, default 1e-4
        An improvement must beat the best value by more than this (absolute).
    cooldown : int, default 0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default 0
        The rate never goes below this.
    mode : {'auto', 'min', 'max'}, default 'auto'
    verbose : int, default 0
        1 prints each reduction.

    The optimizer's ``lr`` must be a float; with a schedule, training stops
    with a ValueError at the start. Attribute ``reductions`` lists
    ``(epoch, old_lr, new_lr)``.
    """

    factor = Param(Real(0, 1, lo_open=True, hi_open=True))
    cooldown = Param(Integer(0))
    min_lr = Param(Real(0))

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0,
                 mode="auto", verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.factor = factor
        self.patience = patience
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.verbose = verbose
        self.reductions = []
        self._reset()

    def _reset(self):
        self._reset_best()
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        _require_float_lr(self, self.trainer)
        self._reset()
        self._warned_missing = False

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= max(self.patience, 1):
                opt = self.trainer.optimizer
                old = float(opt.lr)
                if old > self.min_lr * (1 + 1e-12):
                    new = max(old * self.factor, self.min_lr)
                    opt.lr = new
                    self.reductions.append((epoch, old, new))
                    if self.verbose:
                        print(f"ReduceLROnPlateau: {self.monitor} has not improved for {self.wait} epochs; "
                              f"learning rate {old:.6g} -> {new:.6g}")
                self.cooldown_counter = self.cooldown
                self.wait = 0
