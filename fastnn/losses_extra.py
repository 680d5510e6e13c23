"""Shim: the extra losses now live in the :mod:`fastnn.losses` package; import them from there.

Kept so that ``from fastnn.losses_extra import FocalLoss`` (and friends) keeps working.
``REGISTRY`` and ``get`` are the one registry of :mod:`fastnn.losses`.
"""
from .losses import (REGISTRY, FocalLoss, GenericLoss, Huber, LabelSmoothingCrossEntropy, MeanAbsoluteError,
                     WeightedCrossEntropy, balanced_class_weight, get, soft_targets)

__all__ = ["GenericLoss", "MeanAbsoluteError", "Huber", "FocalLoss", "WeightedCrossEntropy",
           "LabelSmoothingCrossEntropy", "soft_targets", "balanced_class_weight", "REGISTRY", "get"]
