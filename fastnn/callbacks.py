"""Training callbacks: hook points of :meth:`fastnn.Trainer.fit`.

A callback subclasses :class:`Callback` and overrides any of the ``on_*``
hooks; ``self.trainer`` (and ``self.trainer.network``) is set before
``on_train_begin``. Setting ``trainer.stop_training = True`` ends training
after the current epoch.

Batch hooks and speed: the compiled training path runs many mini-batches per
call. A callback that overrides ``on_batch_begin``/``on_batch_end`` makes the
trainer return to Python after every batch (still compiled, slower at small
batch sizes) unless it sets ``every_batch = False``, in which case its
``on_batch_end`` is called once per chunk of batches with ``logs['batches']``
saying how many batches the call covers (as the progress bar does).
"""
import sys
import time


class Callback:
    """Base class: every hook does nothing."""

    #: whether on_batch_* must see every single batch (see the module docstring)
    every_batch = True
    trainer = None

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch (also after early stopping)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch (0-based)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after each epoch with the epoch's metrics (loss, accuracy, val_*, ...)."""

    def on_batch_begin(self, batch, logs=None):
        """Called before a batch (or chunk of batches)."""

    def on_batch_end(self, batch, logs=None):
        """Called after a batch (or chunk of batches) with its mean loss."""


def wants_batch_hooks(callback):
    """True if ``callback`` overrides a batch hook."""
    cls = type(callback)
    return cls.on_batch_begin is not Callback.on_batch_begin or cls.on_batch_end is not Callback.on_batch_end


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks, trainer):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastnn.callbacks.Callback instances, got {type(cb).__name__}")
            cb.set_trainer(trainer)
        self.batch_callbacks = [cb for cb in self.callbacks if wants_batch_hooks(cb)]
        self.needs_every_batch = any(cb.every_batch for cb in self.batch_callbacks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        targets = self.batch_callbacks if hook.startswith("on_batch") else self.callbacks

        def call(*args, **kwargs):
            for cb in targets:
                getattr(cb, hook)(*args, **kwargs)
        return call


class ProgressBar(Callback):
    """A tqdm progress bar per epoch showing loss, accuracy and samples/s.

    Parameters
    ----------
    file : file-like, default sys.stderr
    """

    every_batch = False

    def __init__(self, file=None):
        self.file = file
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm.auto import tqdm

        t = self.trainer
        self._bar = tqdm(total=t.n_samples_epoch, unit="samples", unit_scale=True, leave=False,
                         desc=f"epoch {epoch + 1}/{t.epochs}", file=self.file or sys.stderr,
                         dynamic_ncols=True, mininterval=0.2)
        self._start = time.perf_counter()
        self._seen = 0

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        n = logs.get("samples", 0)
        self._seen += n
        self._bar.update(n)
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        post = {"loss": f"{logs.get('loss', float('nan')):.4f}"}
        if "accuracy" in logs:
            post["acc"] = f"{logs['accuracy']:.4f}"
        post["samples/s"] = f"{self._seen / elapsed:,.0f}"
        self._bar.set_postfix(post, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochLogger(Callback):
    """Prints one summary line per epoch (loss, accuracy, validation metrics, time, samples/s)."""

    def __init__(self, print_fn=print):
        self.print_fn = print_fn

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.trainer.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        for key, value in logs.items():
            if key.startswith("val_") and key not in ("val_loss", "val_accuracy"):
                parts.append(f"{key} {value:.4f}")
        parts.append(f"{logs.get('epoch_time', 0):.2f}s")
        parts.append(f"{logs.get('samples_per_s', 0):,.0f} samples/s")
        self.print_fn(" - ".join(parts))


# ======================================================================================
# Training-toolkit callbacks: early stopping, NaN guard, CSV log, learning-rate control,
# live plots and diagnostics. (ModelCheckpoint lives in fastnn.checkpoint.)
# ======================================================================================
import csv as _csv
import inspect as _inspect
import math as _math
import numbers as _numbers
import os as _os
import warnings as _warnings

import numpy as _np

from .diagnostics import FastnnWarning


def _warn(message):
    _warnings.warn(message, FastnnWarning, stacklevel=3)


def _check_nonneg_int(value, name):
    if isinstance(value, bool) or not isinstance(value, _numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _check_nonneg_float(value, name):
    if isinstance(value, bool) or not isinstance(value, _numbers.Real) or not _math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


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
    from .metrics import get_metric

    try:
        return "max" if get_metric(base).greater_is_better else "min"
    except ValueError:
        raise ValueError(f"cannot tell whether {monitor!r} should go up or down; pass mode='min' or "
                         f"mode='max'") from None


class _Monitor(Callback):
    """Shared bookkeeping of callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor, mode, min_delta):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = _check_nonneg_float(min_delta, "min_delta")
        self._warned_missing = False

    def _reset_best(self):
        self.best = _math.inf if self.mode == "min" else -_math.inf

    def _improved(self, current):
        if not _math.isfinite(current):
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
        self.patience = _check_nonneg_int(patience, "patience")
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
                    _np.copyto(self.best_weights, params)
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
        from .diagnostics import check_non_finite

        logs = logs or {}
        if self.monitor is not None:
            logs = {k: logs[k] for k in self.monitor if k in logs}
        finding = check_non_finite(logs)
        if finding is not None:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            _warn(f"TerminateOnNaN: stopping after epoch {epoch + 1}: {finding}")


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based) and every logged value.

    The header comes from the first epoch's keys; the file is flushed after
    every row, so it is complete up to the last finished epoch even if
    training is interrupted.

    Parameters
    ----------
    path : str or path
    append : bool, default False
        Add to an existing file (keeping its header and columns) instead of
        overwriting it; useful when resuming training.
    separator : str, default ','
    """

    def __init__(self, path, append=False, separator=","):
        self.path = _os.fspath(path)
        self.append = bool(append)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, not {separator!r}")
        self.separator = separator
        self._file = None
        self._writer = None
        self.fieldnames = None

    def on_train_begin(self, logs=None):
        self.close()
        self.fieldnames = None
        if self.append and _os.path.isfile(self.path) and _os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as f:
                header = next(_csv.reader(f, delimiter=self.separator), None)
            self.fieldnames = header or None
            self._file = open(self.path, "a", newline="")
        else:
            self._file = open(self.path, "w", newline="")
        self._writer = None
        self._warned_dropped = False

    @staticmethod
    def _format(value):
        if isinstance(value, (bool, _np.bool_)):
            return str(bool(value))
        if isinstance(value, _numbers.Integral):
            return str(int(value))
        if isinstance(value, _numbers.Real):
            return repr(float(value))
        return str(value)

    def on_epoch_end(self, epoch, logs=None):
        if self._file is None:  # used without on_train_begin (e.g. called by hand)
            self.on_train_begin()
        row = {"epoch": epoch, **(logs or {})}
        if self.fieldnames is None:
            self.fieldnames = list(row)
            self._writer = _csv.DictWriter(self._file, fieldnames=self.fieldnames, delimiter=self.separator,
                                           restval="", extrasaction="ignore", lineterminator="\n")
            self._writer.writeheader()
        elif self._writer is None:
            self._writer = _csv.DictWriter(self._file, fieldnames=self.fieldnames, delimiter=self.separator,
                                           restval="", extrasaction="ignore", lineterminator="\n")
        dropped = [k for k in row if k not in self.fieldnames]
        if dropped and not self._warned_dropped:
            self._warned_dropped = True
            _warn(f"CSVLogger: {self.path} has no column for {dropped}; those values are not written")
        self._writer.writerow({k: self._format(v) for k, v in row.items()})
        self._file.flush()

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Close the file (done at the end of training)."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


def _check_rate(value, source):
    if isinstance(value, bool) or not isinstance(value, _numbers.Real) or not _math.isfinite(value) or value <= 0:
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
            params = list(_inspect.signature(fn).parameters.values())
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
        new = _check_rate(float(new) if isinstance(new, (_np.floating, _np.ndarray)) else new,
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

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0,
                 mode="auto", verbose=0):
        super().__init__(monitor, mode, min_delta)
        if isinstance(factor, bool) or not isinstance(factor, _numbers.Real) or not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), not {factor!r}")
        self.factor = float(factor)
        self.patience = _check_nonneg_int(patience, "patience")
        self.cooldown = _check_nonneg_int(cooldown, "cooldown")
        self.min_lr = _check_nonneg_float(min_lr, "min_lr")
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


class LivePlot(Callback):
    """Redraw the training curves (loss, accuracy, learning rate) after every epoch.

    Parameters
    ----------
    path : str or path, optional
        Write the figure to this file (PNG unless the suffix says otherwise)
        after each redraw, atomically (viewers never see half a file). Works
        on machines without a display. Without ``path`` the curves go to a
        window (needs an interactive matplotlib backend; under a headless
        backend a warning says to pass ``path``).
    metrics : list of str, optional
        Base names (``'loss'``, ``'accuracy'``, ``'lr'``, an extra metric);
        default loss, accuracy (classification) and lr.
    every : int, default 1
        Redraw every ``every`` epochs (and after the last).
    figsize : tuple, optional

    Successive ``fit`` calls of the same trainer extend the same curves.
    Needs matplotlib (``pip install fastnn[plot]``).
    """

    def __init__(self, path=None, metrics=None, every=1, figsize=None):
        self.path = None if path is None else _os.fspath(path)
        self.metrics = None if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
        if isinstance(every, bool) or not isinstance(every, _numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive integer, not {every!r}")
        self.every = int(every)
        self.figsize = figsize
        self.history = {}
        self.epochs = []
        self.figure = None
        self.n_draws = 0
        self._owner = None
        self._disabled = False
        self._dirty = False

    def on_train_begin(self, logs=None):
        from .plotting import _matplotlib

        _matplotlib()  # a clear ImportError now rather than after the first epoch
        if self._owner is not self.trainer:
            self._owner = self.trainer
            self.history, self.epochs = {}, []

    def _metrics(self):
        if self.metrics is not None:
            return [m for m in self.metrics if m in self.history or "val_" + m in self.history]
        return [m for m in ("loss", "accuracy", "lr") if m in self.history]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if isinstance(value, _numbers.Real):
                self.history.setdefault(key, [None] * len(self.epochs)).append(float(value))
        self.epochs.append(epoch)
        for values in self.history.values():  # keys missing this epoch
            if len(values) < len(self.epochs):
                values.append(_math.nan)
        self._dirty = True
        last = getattr(self.trainer, "epochs", None) == epoch + 1
        if len(self.epochs) % self.every == 0 or last:
            self.redraw()

    def on_train_end(self, logs=None):
        if self._dirty:
            self.redraw()

    def redraw(self):
        """Draw the curves recorded so far (to ``path`` or the window)."""
        if self._disabled or not self.epochs:
            return
        from .plotting import draw_history

        metrics = self._metrics()
        if not metrics:
            return
        hist = {k: [_math.nan if v is None else v for v in vals] for k, vals in self.history.items()}
        size = self.figsize or (4.5 * len(metrics), 3.6)
        if self.path is not None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            if self.figure is None:
                self.figure = Figure(figsize=size)
                FigureCanvasAgg(self.figure)
            self.figure.set_size_inches(*size)
            draw_history(self.figure, hist, metrics, epochs=self.epochs)
            root, ext = _os.path.splitext(self.path)
            fmt = ext[1:].lower() or "png"
            tmp = f"{root}.tmp-{_os.getpid()}{ext}"
            self.figure.savefig(tmp, format=fmt, dpi=100)
            _os.replace(tmp, self.path)
        else:
            from .plotting import _pyplot, is_interactive_backend

            plt = _pyplot()
            if not is_interactive_backend():
                self._disabled = True
                _warn(f"LivePlot: matplotlib's backend {plt.get_backend()!r} cannot open a window; "
                      f"pass LivePlot(path='curves.png') to write the plot to a file instead")
                return
            if self.figure is None or not plt.fignum_exists(self.figure.number):
                plt.ion()
                self.figure = plt.figure(figsize=size)
            draw_history(self.figure, hist, metrics, epochs=self.epochs)
            self.figure.canvas.draw_idle()
            plt.pause(0.001)
        self.n_draws += 1
        self._dirty = False


class Diagnostics(Callback):
    """Warn (:class:`~fastnn.diagnostics.FastnnWarning`) about the usual training failures, with a hint.

    After every epoch it checks, as the troubleshooting tables advise:

    * loss NaN/Inf, rising for ``patience`` epochs, or above chance level (the
      loss of a uniform guess) for ``patience`` epochs → learning rate too high;
    * loss flat from the start for ``patience`` epochs → learning rate too low,
      or clipping too tight;
    * ``val_loss`` rising while the loss falls → overfitting;
    * all predictions one class (on ``validation_data``, else on the data the
      trainer exposes) → learning rate too high or imbalanced classes;
    * negative loss, or targets that suit another loss → loss/target mismatch.

    Each kind of finding is reported once per instance and trainer (the list
    is kept in ``findings``). See :mod:`fastnn.diagnostics` for the checks.

    Parameters
    ----------
    patience : int, default 5
    validation_data : tuple (X, y), optional
        Data for the one-class check; default: the trainer's validation data,
        then its training data, when the trainer exposes them
        (``trainer.validation_data`` / ``trainer.fit_data``).
    flat_tol : float, default 1e-3
    check_predictions : bool, default True
    max_samples : int, default 4096
        Rows used by the one-class check.
    warn : bool, default True
        Emit warnings (False: only collect ``findings``).
    """

    def __init__(self, patience=5, validation_data=None, *, flat_tol=1e-3, check_predictions=True,
                 max_samples=4096, warn=True):
        self.patience = _check_nonneg_int(patience, "patience")
        if self.patience < 1:
            raise ValueError("patience must be at least 1")
        if validation_data is not None and (not isinstance(validation_data, (tuple, list))
                                            or len(validation_data) != 2):
            raise ValueError("validation_data must be a tuple (X, y)")
        self.validation_data = validation_data
        self.flat_tol = _check_nonneg_float(flat_tol, "flat_tol")
        self.check_predictions = bool(check_predictions)
        self.max_samples = int(max_samples)
        self.warn = bool(warn)
        self.findings = []
        self._owner = None
        self.reset()

    def reset(self):
        """Forget the recorded losses and the findings already reported."""
        self.losses, self.val_losses, self.findings = [], [], []
        self._reported = set()
        self._epochs_this_fit = 0

    def _report(self, finding):
        if finding is None or finding.kind in self._reported:
            return
        self._reported.add(finding.kind)
        self.findings.append(finding)
        if self.warn:
            _warnings.warn(str(finding), FastnnWarning, stacklevel=4)

    def on_train_begin(self, logs=None):
        from .diagnostics import check_targets

        if self._owner is not self.trainer:
            self._owner = self.trainer
            self.reset()
        self._epochs_this_fit = 0
        data = getattr(self.trainer, "fit_data", None)
        if data is not None:
            for finding in check_targets(self.trainer.loss, data[1]):
                self._report(finding)

    def _prediction_data(self):
        if self.validation_data is not None:
            return self.validation_data, "the validation data"
        for attr, name in (("validation_data", "the validation data"), ("fit_data", "the training data")):
            data = getattr(self.trainer, attr, None)
            if data is not None:
                return data, name
        return None, None

    def on_epoch_end(self, epoch, logs=None):
        from . import diagnostics as d

        logs = logs or {}
        t = self.trainer
        self._epochs_this_fit += 1
        self._report(d.check_non_finite(logs))
        if "loss" in logs:
            self._report(d.check_negative_loss(logs["loss"], t.loss))
            self.losses.append(float(logs["loss"]))
            self._report(d.check_loss_trend(self.losses, self.patience, flat_tol=self.flat_tol,
                                            clip_norm=t.clip_norm, clip_value=t.clip_value))
            self._report(d.check_worse_than_chance(self.losses, t.loss, t.network.n_outputs, self.patience))
        if "val_loss" in logs:
            self.val_losses.append(float(logs["val_loss"]))
            self._report(d.check_overfitting(self.losses, self.val_losses, self.patience))
        last = getattr(t, "epochs", None) == epoch + 1
        if self.check_predictions and "one_class" not in self._reported and (self._epochs_this_fit >= 2 or last):
            (data, name) = self._prediction_data()
            if data is not None and all(_np.isfinite(v) for k, v in logs.items() if k == "loss"):
                self._report(d.check_predictions(t.network, data[0], data[1], max_samples=self.max_samples,
                                                 data_name=name))
