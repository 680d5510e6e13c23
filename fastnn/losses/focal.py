"""Multiclass focal loss from logits."""

import numpy as np

from .._validation import Param, Real
from ..kernels import codes, get_backend
from .base import GenericLoss
from .cross_entropy import CrossEntropy

__all__ = ["FocalLoss"]


class FocalLoss(GenericLoss):
    """Multiclass focal loss from logits (Lin et al., 2017): cross-entropy that down-weights easy samples.

    Per sample ``-alpha_y (1 - p_y)^gamma log p_y`` with ``p = softmax(logits)``;
    ``gamma = 0`` and no ``alpha`` is the cross-entropy. Targets as for
    ``cross_entropy``: integer labels or non-negative rows (soft or weighted, e.g.
    from :func:`soft_targets`: then ``-sum_j t_j alpha_j (1 - p_j)^gamma log p_j``).

    Parameters
    ----------
    gamma : float >= 0, default 2.0
        Focusing parameter.
    alpha : float or sequence of floats, optional
        Class weights: one per class, or one number for all (a plain factor).
    """

    fused_activation = "softmax"
    is_classification = True

    gamma = Param(Real(0))

    def __init__(self, gamma=2.0, alpha=None):
        super().__init__("focal")
        self.gamma = gamma
        if alpha is not None:
            a = np.asarray(alpha, dtype=np.float64)
            if a.ndim > 1 or not np.isfinite(a).all() or (a < 0).any():
                raise ValueError("focal alpha must be a non-negative number or a 1-D sequence of them")
            alpha = float(a) if a.ndim == 0 else a.copy()
        self.alpha = alpha

    def __repr__(self):
        return f"FocalLoss(gamma={self.gamma}, alpha={self.alpha!r})"

    def _alpha_vector(self, k):
        if self.alpha is None:
            return np.ones(k)
        if isinstance(self.alpha, float):
            return np.full(k, self.alpha)
        if self.alpha.shape != (k,):
            raise ValueError(f"focal alpha has {self.alpha.size} class weights but the network has {k} outputs")
        return self.alpha

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        self._alpha_vector(n_outputs)  # fail before training, not at the first batch
        return CrossEntropy.prepare_targets(self, y, n_outputs, dtype, name=name)

    def _kernel_call(self, kern, out, target, scale, dout):
        return kern.focal_forward_backward(out, target, self.gamma, self._alpha_vector(out.shape[1]),
                                           float(scale), dout)

    def plan_loss(self, n_outputs):
        return codes.LOSS_FOCAL, np.concatenate([[self.gamma], self._alpha_vector(n_outputs)])

    def count_correct(self, out, target, backend=None):
        # the softmax-CE rule (argmax of the output vs label / argmax of the target row)
        return get_backend(backend).count_correct(codes.LOSS_SOFTMAX_CE, out, target)
