"""Progress and logging callbacks: progress bar, per-epoch log lines, CSV log."""
import csv
import numbers
import os
import sys
import time

import numpy as np

from .base import Callback, _warn

__all__ = ["ProgressBar", "EpochLogger", "CSVLogger"]


class ProgressBar(Callback):
    """A tqdm progress bar per epoch showing loss, accuracy and samples/s.

    Shown only when ``file`` is a terminal: in a log (``2>&1``, CI, a notebook's
    captured stream) a bar is a line of carriage returns, and the per-epoch lines
    of :class:`EpochLogger` already say what it would.

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

        stream = self.file or sys.stderr
        isatty = getattr(stream, "isatty", None)
        if not (callable(isatty) and isatty()):
            self._bar = None
            return
        t = self.trainer
        self._bar = tqdm(total=t.n_samples_epoch, unit="samples", unit_scale=True, leave=False,
                         desc=f"epoch {epoch + 1}/{t.epochs}", file=self.file or sys.stderr,
                         dynamic_ncols=True, mininterval=0.2)
        self._start = time.perf_counter()
        self._seen = 0

    def on_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
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
        self.path = os.fspath(path)
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
        if self.append and os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.fieldnames = header or None
            self._file = open(self.path, "a", newline="")
        else:
            self._file = open(self.path, "w", newline="")
        self._writer = None
        self._warned_dropped = False

    @staticmethod
    def _format(value):
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, numbers.Integral):
            return str(int(value))
        if isinstance(value, numbers.Real):
            return repr(float(value))
        return str(value)

    def on_epoch_end(self, epoch, logs=None):
        if self._file is None:  # used without on_train_begin (e.g. called by hand)
            self.on_train_begin()
        row = {"epoch": epoch, **(logs or {})}
        if self.fieldnames is None:
            self.fieldnames = list(row)
            self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames, delimiter=self.separator,
                                           restval="", extrasaction="ignore", lineterminator="\n")
            self._writer.writeheader()
        elif self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames, delimiter=self.separator,
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
