"""Callbacks that show or check training as it runs: live training curves, data and gradient diagnostics."""
import math
import numbers
import os
import warnings

import numpy as np

from .._validation import check_nonneg_float, check_nonneg_int, is_int
from ..diagnostics import FastnnWarning
from .base import Callback, _warn

__all__ = ["LivePlot", "Diagnostics"]


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
        self.path = None if path is None else os.fspath(path)
        self.metrics = None if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
        if not is_int(every) or every < 1:
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
        from ..plotting import _matplotlib

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
            if isinstance(value, numbers.Real):
                self.history.setdefault(key, [None] * len(self.epochs)).append(float(value))
        self.epochs.append(epoch)
        for values in self.history.values():  # keys missing this epoch
            if len(values) < len(self.epochs):
                values.append(math.nan)
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
        from ..plotting import draw_history

        metrics = self._metrics()
        if not metrics:
            return
        hist = {k: [math.nan if v is None else v for v in vals] for k, vals in self.history.items()}
        size = self.figsize or (4.5 * len(metrics), 3.6)
        if self.path is not None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            if self.figure is None:
                self.figure = Figure(figsize=size)
                FigureCanvasAgg(self.figure)
            self.figure.set_size_inches(*size)
            draw_history(self.figure, hist, metrics, epochs=self.epochs)
            root, ext = os.path.splitext(self.path)
            fmt = ext[1:].lower() or "png"
            tmp = f"{root}.tmp-{os.getpid()}{ext}"
            self.figure.savefig(tmp, format=fmt, dpi=100)
            os.replace(tmp, self.path)
        else:
            from ..plotting import _pyplot, is_interactive_backend

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
        self.patience = check_nonneg_int(patience, "patience")
        if self.patience < 1:
            raise ValueError("patience must be at least 1")
        if validation_data is not None and (not isinstance(validation_data, (tuple, list))
                                            or len(validation_data) != 2):
            raise ValueError("validation_data must be a tuple (X, y)")
        self.validation_data = validation_data
        self.flat_tol = check_nonneg_float(flat_tol, "flat_tol")
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
            warnings.warn(str(finding), FastnnWarning, stacklevel=4)

    def on_train_begin(self, logs=None):
        from ..diagnostics import check_targets

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
        from .. import diagnostics as d

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
            if data is not None and all(np.isfinite(v) for k, v in logs.items() if k == "loss"):
                self._report(d.check_predictions(t.network, data[0], data[1], max_samples=self.max_samples,
                                                 data_name=name))
