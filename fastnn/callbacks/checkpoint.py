"""The ModelCheckpoint callback: save the model or a full training checkpoint at the end of epochs."""
import math
import warnings

from .._validation import is_real
from ..errors import NonFiniteError
from ..io.checkpoint import check_finite_state, save_checkpoint
from ..io.container import _is_int
from ..io.model_file import _check_metadata, save_network
from .base import Callback
from .control import resolve_mode

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Save the model (or a full training checkpoint) at the end of epochs.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; may hold ``str.format`` fields filled from the epoch
        (1-based) and its logs, e.g. ``"model-{epoch:02d}-{val_loss:.4f}.fnn"``.
        Every write is atomic.
    monitor : str, default 'val_loss'
        The logged quantity that decides "best" (needs ``validation_data``
        for ``val_*``).
    mode : {'auto', 'min', 'max'}, default 'auto'
        ``'auto'``: minimise losses, maximise accuracy-like metrics (see
        :func:`fastnn.callbacks.resolve_mode`).
    save_best_only : bool, default False
        Save only when ``monitor`` improves on the best value seen (also across
        ``fit`` calls, and across a resume when this callback is one of the
        trainer's callbacks).
    save_training_state : bool, default False
        Write a training checkpoint (optimizer state, epoch, RNGs) that
        ``Trainer.fit(resume_from=...)`` accepts, instead of a plain model file.
    metadata : dict of str -> str, optional
        Stored in every file written (plus ``epoch`` and the monitored value).
    verbose : int, default 0
        1 prints a line whenever a file is written.

    Attributes
    ----------
    best : float or None
        Best monitored value so far.
    best_epoch : int or None
        0-based epoch of ``best``.
    last_path : str or None
        The last file written.
    """

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=False,
                 save_training_state=False, metadata=None, verbose=0, print_fn=print):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a metric name such as 'val_loss', not {monitor!r}")
        self.path = path
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        try:
            self.mode = resolve_mode(monitor, mode)
        except ValueError:
            if self.save_best_only:
                raise
            self.mode = "min"  # not used to decide anything when every epoch is saved
        self.save_training_state = bool(save_training_state)
        self.metadata = _check_metadata(metadata)
        self.verbose = verbose
        self.print_fn = print_fn
        self.best = None
        self.best_epoch = None
        self.last_path = None
        self._warned = False

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        opt = getattr(self.trainer, "optimizer", None) if self.save_training_state else None
        try:  # never replace a good file with NaN weights (possible with check_finite=False)
            check_finite_state(self.trainer.network, getattr(opt, "state", None))
        except NonFiniteError as exc:
            warnings.warn(f"ModelCheckpoint: epoch {epoch + 1} not saved: {exc}", stacklevel=2)
            return
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is not None:
            value = float(value)
        if self.save_best_only:
            if value is None:
                if not self._warned:
                    warnings.warn(f"ModelCheckpoint: {self.monitor!r} is not in the logs "
                                  f"(available: {sorted(logs)}); nothing saved. Pass validation_data to fit "
                                  f"to get val_* metrics.", stacklevel=2)
                    self._warned = True
                return
            if not self._improves(value):
                return
            previous = self.best
            self.best, self.best_epoch = value, epoch
        path = str(self.path)
        if "{" in path:
            path = path.format(epoch=epoch + 1, **logs)
        meta = dict(self.metadata, epoch=str(epoch + 1))
        if value is not None:
            meta[self.monitor] = repr(value)
        if self.save_training_state:
            # the trainer's epoch counter already counts this epoch
            save_checkpoint(path, self.trainer, metadata=meta, logs=logs)
        else:
            save_network(self.trainer.network, path, metadata=meta)
        self.last_path = path
        if self.verbose:
            if self.save_best_only:
                was = "none" if previous is None else f"{previous:.5g}"
                self.print_fn(f"epoch {epoch + 1}: {self.monitor} improved from {was} to {value:.5g}, "
                              f"saved {path}")
            else:
                self.print_fn(f"epoch {epoch + 1}: saved {path}")

    def state_dict(self):
        """JSON-able state (best value so far), stored in training checkpoints."""
        return {"monitor": self.monitor, "mode": self.mode, "best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        if not isinstance(state, dict):
            raise TypeError("ModelCheckpoint state must be a dict")
        if state.get("monitor") != self.monitor or state.get("mode") != self.mode:
            return  # tracking something else: start afresh
        best, best_epoch = state.get("best"), state.get("best_epoch")
        if best is not None and (not is_real(best)):
            raise ValueError(f"best must be a number or None, not {best!r}")
        if best_epoch is not None and not _is_int(best_epoch):
            raise ValueError(f"best_epoch must be an integer or None, not {best_epoch!r}")
        self.best = None if best is None else float(best)
        self.best_epoch = best_epoch
