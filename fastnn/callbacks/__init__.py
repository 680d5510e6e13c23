"""Training callbacks: hook points of :meth:`fastnn.Trainer.fit`.

- :mod:`.base` — :class:`Callback` and :class:`CallbackList` (the hook protocol);
- :mod:`.progress` — :class:`ProgressBar`, :class:`EpochLogger`, :class:`CSVLogger`;
- :mod:`.control` — :class:`EarlyStopping`, :class:`ReduceLROnPlateau`, :class:`LearningRateScheduler`,
  :class:`TerminateOnNaN`, :func:`resolve_mode`;
- :mod:`.live` — :class:`LivePlot`, :class:`Diagnostics`;
- :mod:`.gradflow` — :class:`GradientFlow` (per-layer gradient and update norms, vanishing/exploding warnings);
- :mod:`.checkpoint` — :class:`ModelCheckpoint` (writes through :mod:`fastnn.io`).
"""
from .base import Callback, CallbackList, wants_batch_hooks
from .checkpoint import ModelCheckpoint
from .gradflow import GradientFlow
from .control import EarlyStopping, LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN, resolve_mode
from .live import Diagnostics, LivePlot
from .progress import CSVLogger, EpochLogger, ProgressBar

__all__ = ["Callback", "CallbackList", "wants_batch_hooks", "ProgressBar", "EpochLogger", "CSVLogger",
           "EarlyStopping", "TerminateOnNaN", "LearningRateScheduler", "ReduceLROnPlateau", "LivePlot",
           "Diagnostics", "GradientFlow", "ModelCheckpoint", "resolve_mode"]
