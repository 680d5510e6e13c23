"""Regression losses: mean squared error, mean absolute error and Huber (all on the compiled plan)."""
import numpy as np

from .._validation import Param, Real
from ..kernels import codes
from .base import GenericLoss, Loss, regression_targets

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "Huber"]


class MeanSquaredError(Loss):
    """Mean over outputs of (output - target)^2, averaged over samples."""

    def __init__(self):
        super().__init__("mse", codes.LOSS_MSE)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        return regression_targets(self.name, y, n_outputs, dtype, name)


class MeanAbsoluteError(GenericLoss):
    """Mean over outputs of ``|output - target|``, averaged over samples (L1 loss)."""

    def __init__(self):
        super().__init__("mae")

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        return regression_targets(self.name, y, n_outputs, dtype, name)

    def _kernel_call(self, kern, out, target, scale, dout):
        return kern.mae_forward_backward(out, target, float(scale), dout)

    def plan_loss(self, n_outputs):
        return codes.LOSS_MAE, np.zeros(0)


class Huber(GenericLoss):
    """Huber loss: quadratic within ``delta`` of the target, linear beyond; mean over outputs and samples.

    ``h(d) = d^2 / 2`` for ``|d| <= delta``, else ``delta * (|d| - delta / 2)``
    (PyTorch ``HuberLoss(delta)``, Keras ``Huber(delta)``).

    Parameters
    ----------
    delta : float > 0, default 1.0
    """

    delta = Param(Real(0, lo_open=True))

    def __init__(self, delta=1.0):
        super().__init__("huber")
        self.delta = delta

    def __repr__(self):
        return f"Huber(delta={self.delta})"

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        return regression_targets(self.name, y, n_outputs, dtype, name)

    def _kernel_call(self, kern, out, target, scale, dout):
        return kern.huber_forward_backward(out, target, self.delta, float(scale), dout)

    def plan_loss(self, n_outputs):
        return codes.LOSS_HUBER, np.array([self.delta])
