"""More losses: MAE, Huber, focal; label smoothing, class and sample weights for cross-entropy.

Two kinds:

- **Cross-entropy variants keep the fused kernel.** The softmax-CE kernel
  takes (n, k) target rows ``t`` and computes ``loss = -sum_j t_j log p_j``,
  ``grad = p * sum_j t_j - t``, which is the exact gradient of that loss for any
  non-negative ``t``. So label smoothing, class weights and sample weights are
  folded into the targets by :func:`soft_targets`:
  ``t_i = w_i * ((1 - eps) * onehot(y_i) + eps / k)`` gives ``w_i`` times the
  smoothed cross-entropy of sample ``i``. :class:`WeightedCrossEntropy` /
  :class:`LabelSmoothingCrossEntropy` do this in ``prepare_targets`` (class
  weights and smoothing); per-sample weights go through :func:`soft_targets`
  directly (``trainer.fit(X, soft_targets(y, k, sample_weight=w))`` with the
  plain ``'cross_entropy'`` loss). These run on every path, fused included.

  Normalisation: the reported/optimised loss is ``sum_i w_i l_i / n`` (the
  batch mean of the weighted per-sample losses, as Keras's ``sample_weight`` /
  ``class_weight``), *not* PyTorch's weighted mean ``sum_i w_i l_i / sum_i w_i``.
  Weights whose mean over the data is 1 (e.g. :func:`balanced_class_weight`)
  keep the loss and the effective learning rate on the unweighted scale.
  Class weights scale whole rows by the weight of the true class (Keras
  semantics; for soft rows, the ``t``-weighted mean class weight), so the
  target's argmax, which accuracy reads, stays the true class.

- **MAE, Huber and focal are not in the fused kernel** (``code = None``): the
  trainer runs them on the generic per-layer path through
  :meth:`GenericLoss.forward_backward` (numpy for the reference backend, Numba
  otherwise; kernels in :mod:`fastnn.kernels.losses_extra`).
"""
import math
import numbers

import numpy as np

from . import losses as _losses
from .kernels import codes, get_backend
from .kernels import losses_extra as _kernels

__all__ = ["GenericLoss", "MeanAbsoluteError", "Huber", "FocalLoss", "WeightedCrossEntropy",
           "LabelSmoothingCrossEntropy", "soft_targets", "balanced_class_weight", "REGISTRY"]


# --------------------------------------------------------------------------- cross-entropy target folding
def _check_smoothing(label_smoothing):
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], not {label_smoothing!r}")
    return float(label_smoothing)


def _check_class_weight(class_weight, n_classes):
    """A float64 vector of k non-negative finite weights from a dict {class: w} or a sequence."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        raise ValueError("class_weight must be a dict or a sequence of weights; for 'balanced' weights use "
                         "fastnn.losses_extra.balanced_class_weight(y, n_classes)")
    if isinstance(class_weight, dict):
        cw = np.ones(n_classes)
        for cls, w in class_weight.items():
            if isinstance(cls, bool) or not isinstance(cls, numbers.Integral) or not 0 <= cls < n_classes:
                raise ValueError(f"class_weight key {cls!r} is not a class index in [0, {n_classes})")
            cw[int(cls)] = w
    else:
        cw = np.asarray(class_weight, dtype=np.float64)
        if cw.shape != (n_classes,):
            raise ValueError(f"class_weight must have one weight per class ({n_classes}), got shape {cw.shape}")
    if not np.isfinite(cw).all() or (cw < 0).any():
        raise ValueError("class weights must be finite and non-negative")
    return cw


def balanced_class_weight(y, n_classes=None):
    """``n_samples / (n_classes * count_c)`` per class, as scikit-learn's ``class_weight='balanced'``.

    Weights average to 1 over the samples, so the weighted loss keeps the
    unweighted scale. Classes absent from ``y`` (which scikit-learn refuses)
    get weight 1 and are left out of ``n_classes`` so that the average stays 1.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size == 0:
        raise ValueError("y is empty")
    if y.dtype.kind == "f" and (y != np.round(y)).any():
        raise ValueError("balanced_class_weight needs integer class labels (or one-hot rows)")
    y = y.astype(np.int64)
    if (y < 0).any():
        raise ValueError("class labels must be non-negative")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if y.max() >= k:
        raise ValueError(f"labels go up to {y.max()} but n_classes is {k}")
    counts = np.bincount(y, minlength=k).astype(np.float64)
    weights = np.ones(k)
    present = counts > 0
    weights[present] = y.size / (present.sum() * counts[present])
    return weights


def soft_targets(y, n_classes, *, label_smoothing=0.0, class_weight=None, sample_weight=None, dtype=np.float32):
    """(n, k) cross-entropy target rows with label smoothing and weights folded in.

    ``t_i = sample_weight_i * cw_i * ((1 - eps) * r_i + eps * sum(r_i) / k)``,
    where ``r_i`` is the one-hot row of label ``y_i`` (or the given row when ``y``
    holds rows) and ``cw_i`` the class weight of sample ``i`` (``class_weight[y_i]``;
    for soft rows ``sum_j r_ij cw_j / sum_j r_ij``). The fused softmax-CE
    kernel then computes ``w_i`` times the smoothed cross-entropy and its exact
    gradient; the trainer divides by the batch size (see the module docstring).

    Parameters
    ----------
    y : array-like
        Integer labels ``(n,)`` or non-negative rows ``(n, k)``.
    n_classes : int
    label_smoothing : float in [0, 1], default 0
        ``eps``: PyTorch's ``CrossEntropyLoss(label_smoothing=eps)`` (mass ``eps/k`` to every class).
    class_weight : dict or sequence of k floats, optional
    sample_weight : array-like of shape (n,), optional
        Non-negative, finite.
    dtype : default float32
        The network's dtype.
    """
    eps = _check_smoothing(label_smoothing)
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, not {n_classes!r}")
    k = int(n_classes)
    base = _losses.CrossEntropy().prepare_targets(y, k, np.float64)
    n = base.shape[0]
    if base.shape[1] == 1:
        rows = np.zeros((n, k))
        labels = base[:, 0].astype(np.int64)
        rows[np.arange(n), labels] = 1.0
    else:
        rows = base
    sums = rows.sum(axis=1, keepdims=True)
    if eps:
        rows = (1.0 - eps) * rows + (eps / k) * sums
    cw = _check_class_weight(class_weight, k)
    if cw is not None:
        if base.shape[1] == 1:
            rows *= cw[labels][:, None]
        else:
            safe = np.where(sums > 0, sums, 1.0)
            rows *= ((base * cw).sum(axis=1, keepdims=True) / safe)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
        rows *= sw[:, None]
    return np.ascontiguousarray(rows, dtype=dtype)


class WeightedCrossEntropy(_losses.CrossEntropy):
    """Softmax cross-entropy with class weights and/or label smoothing, on the fused kernel.

    ``prepare_targets`` turns labels (or rows) into weighted, smoothed rows with
    :func:`soft_targets`; everything else is the ``cross_entropy`` loss. The loss
    is ``sum_i w_{y_i} l_i / n`` (see the module docstring for the normalisation).

    Parameters
    ----------
    class_weight : dict or sequence of floats, optional
        Weight per class index (see :func:`balanced_class_weight`).
    label_smoothing : float in [0, 1], default 0
    """

    def __init__(self, class_weight=None, label_smoothing=0.0):
        super().__init__()
        self.name = "weighted_cross_entropy"
        self.label_smoothing = _check_smoothing(label_smoothing)
        if isinstance(class_weight, dict):
            class_weight = dict(class_weight)
        elif class_weight is not None:
            class_weight = np.asarray(class_weight, dtype=np.float64).copy()
            if class_weight.ndim != 1 or not np.isfinite(class_weight).all() or (class_weight < 0).any():
                raise ValueError("class_weight must be a 1-D sequence of finite, non-negative weights")
        self.class_weight = class_weight

    def __repr__(self):
        return f"{type(self).__name__}(class_weight={self.class_weight!r}, label_smoothing={self.label_smoothing})"

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        base = super().prepare_targets(y, n_outputs, dtype, name=name)  # validates labels / rows
        if self.class_weight is None and self.label_smoothing == 0:
            return base
        return soft_targets(base if base.shape[1] > 1 else base[:, 0], n_outputs,
                            label_smoothing=self.label_smoothing, class_weight=self.class_weight, dtype=dtype)


class LabelSmoothingCrossEntropy(WeightedCrossEntropy):
    """Softmax cross-entropy against smoothed targets ``(1 - eps) * onehot + eps / k`` (fused kernel).

    Equivalent to PyTorch's ``CrossEntropyLoss(label_smoothing=eps)``.
    """

    def __init__(self, label_smoothing=0.1, class_weight=None):
        super().__init__(class_weight=class_weight, label_smoothing=label_smoothing)
        self.name = "label_smoothing_cross_entropy"


# --------------------------------------------------------------------------- generic-path losses
class GenericLoss(_losses.Loss):
    """A loss without a fused-kernel code: the trainer calls :meth:`forward_backward` on the per-layer path.

    Subclasses implement :meth:`_kernel_call` (one kernel of
    :mod:`fastnn.kernels.losses_extra` with their hyper-parameters).
    """

    def __init__(self, name):
        super().__init__(name, None)

    def _kernel_call(self, kern, out, target, scale, dout):
        raise NotImplementedError

    def forward_backward(self, out, target, scale, dout, backend=None):
        """Sum over rows of the per-sample loss; writes ``d(scale * sum)/d(out)`` into ``dout``.

        The signature of ``kernels.loss_forward_backward`` without the code;
        ``backend`` picks numpy (``'reference'``) or Numba (``'numba'``, ``'cython'``).
        """
        kern = _kernels.kernels_for(get_backend(backend).NAME)
        return self._kernel_call(kern, out, target, scale, dout)

    def count_correct(self, out, target, backend=None):
        """Rows predicted correctly (classification losses); 0 for regression losses."""
        return 0

    def __call__(self, output, y, backend=None):
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        return self.forward_backward(output, target, 1.0 / len(output), dout, backend) / len(output)

    def gradient(self, output, y, backend=None):
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        self.forward_backward(output, target, 1.0 / len(output), dout, backend)
        return dout


def _regression_targets(loss_name, y, n_outputs, dtype, name):
    arr = _losses._as_numeric_array(y, name)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape (n, {n_outputs}) for {loss_name}, got {np.shape(y)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return np.ascontiguousarray(arr, dtype=dtype)


class MeanAbsoluteError(GenericLoss):
    """Mean over outputs of ``|output - target|``, averaged over samples (L1 loss)."""

    def __init__(self):
        super().__init__("mae")

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        return _regression_targets(self.name, y, n_outputs, dtype, name)

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

    def __init__(self, delta=1.0):
        super().__init__("huber")
        if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not delta > 0 \
                or not math.isfinite(delta):
            raise ValueError(f"Huber delta must be a positive finite number, not {delta!r}")
        self.delta = float(delta)

    def __repr__(self):
        return f"Huber(delta={self.delta})"

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        return _regression_targets(self.name, y, n_outputs, dtype, name)

    def _kernel_call(self, kern, out, target, scale, dout):
        return kern.huber_forward_backward(out, target, self.delta, float(scale), dout)

    def plan_loss(self, n_outputs):
        return codes.LOSS_HUBER, np.array([self.delta])


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

    def __init__(self, gamma=2.0, alpha=None):
        super().__init__("focal")
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma >= 0 \
                or not math.isfinite(gamma):
            raise ValueError(f"focal gamma must be a non-negative finite number, not {gamma!r}")
        self.gamma = float(gamma)
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
        return _losses.CrossEntropy.prepare_targets(self, y, n_outputs, dtype, name=name)

    def _kernel_call(self, kern, out, target, scale, dout):
        return kern.focal_forward_backward(out, target, self.gamma, self._alpha_vector(out.shape[1]),
                                           float(scale), dout)

    def plan_loss(self, n_outputs):
        return codes.LOSS_FOCAL, np.concatenate([[self.gamma], self._alpha_vector(n_outputs)])

    def count_correct(self, out, target, backend=None):
        # the softmax-CE rule (argmax of the output vs label / argmax of the target row)
        return get_backend(backend).count_correct(codes.LOSS_SOFTMAX_CE, out, target)


#: name -> class, for the lead to merge into ``fastnn.losses._REGISTRY`` (all constructible without arguments)
REGISTRY = {
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
    """Like :func:`fastnn.losses.get`, knowing the extra names too (until the registries are merged)."""
    if isinstance(loss, str) and loss.lower() in REGISTRY:
        return REGISTRY[loss.lower()]()
    return _losses.get(loss)
