"""Loss functions by name: one registry, each loss with a fused kernel or a per-layer kernel.

- ``cross_entropy`` (aliases ``categorical_crossentropy``, ``sparse_categorical_crossentropy``):
  softmax + cross-entropy from logits, integer labels or one-hot/probability rows.
- ``binary_cross_entropy`` (``bce``): sigmoid + binary cross-entropy from logits, in the
  stable form ``max(z,0) - z*t + log1p(exp(-|z|))``; targets in [0, 1].
- ``mse`` (``mean_squared_error``): mean over outputs of the squared error.
- ``weighted_cross_entropy``, ``label_smoothing_cross_entropy``: cross-entropy with class
  weights / label smoothing folded into the targets (fused kernel, :mod:`.cross_entropy`).
- ``mae`` (``l1``), ``huber``, ``focal``: no code of the per-op loss kernel (``code = None``);
  on the per-layer path the trainer calls :meth:`GenericLoss.forward_backward` (kernels in
  :mod:`fastnn.kernels.losses_extra`); the compiled plan runs them by their plan code
  (:meth:`Loss.plan_loss`), like every other loss.

The network's last layer produces logits for the cross-entropies; a final
``softmax`` / ``sigmoid`` activation is also accepted and fused into the loss
(it is then applied only at prediction time).
"""
from .base import GenericLoss, Loss
from .cross_entropy import (BinaryCrossEntropy, CrossEntropy, LabelSmoothingCrossEntropy, WeightedCrossEntropy,
                            balanced_class_weight, soft_targets)
from .focal import FocalLoss
from .regression import Huber, MeanAbsoluteError, MeanSquaredError

__all__ = ["Loss", "GenericLoss", "CrossEntropy", "BinaryCrossEntropy", "MeanSquaredError", "MeanAbsoluteError",
           "Huber", "FocalLoss", "WeightedCrossEntropy", "LabelSmoothingCrossEntropy", "soft_targets",
           "balanced_class_weight", "REGISTRY", "get"]

#: name -> class; every entry is constructible without arguments
REGISTRY = {
    "cross_entropy": CrossEntropy,
    "categorical_crossentropy": CrossEntropy,
    "sparse_categorical_crossentropy": CrossEntropy,
    "softmax_cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "l1": MeanAbsoluteError,
    "huber": Huber,
    "focal": FocalLoss,
    "focal_loss": FocalLoss,
    "label_smoothing_cross_entropy": LabelSmoothingCrossEntropy,
    "weighted_cross_entropy": WeightedCrossEntropy,
}


def get(loss):
    """Return a :class:`Loss` for a name or pass a Loss instance through."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in REGISTRY:
        return REGISTRY[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(REGISTRY)}")
