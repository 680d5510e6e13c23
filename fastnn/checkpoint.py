"""Shim: training checkpoints now live in :mod:`fastnn.io.checkpoint`, ``ModelCheckpoint`` in :mod:`fastnn.callbacks`.

Kept so that ``from fastnn.checkpoint import save_checkpoint, load_checkpoint, ModelCheckpoint`` keeps working.
"""
from .callbacks.checkpoint import ModelCheckpoint
from .io.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "ModelCheckpoint"]
