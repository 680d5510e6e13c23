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
