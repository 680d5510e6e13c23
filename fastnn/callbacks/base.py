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
import warnings

from ..diagnostics import FastnnWarning

__all__ = ["Callback", "CallbackList", "wants_batch_hooks"]


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


def _warn(message):
    warnings.warn(message, FastnnWarning, stacklevel=3)
