"""Cross-entropy losses: softmax and binary from logits, class weights, label smoothing, soft targets.

The softmax-CE kernel takes (n, k) target rows ``t`` and computes
``loss = -sum_j t_j log p_j``, ``grad = p * sum_j t_j - t``, which is the exact
gradient of that loss for any non-negative ``t``. So label smoothing, class
weights and sample weights are folded into the targets by :func:`soft_targets`:
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
"""

import numpy as np

from .._validation import Param, Real, is_int
from ..kernels import codes
from .base import Loss, as_numeric_array as _as_numeric_array

__all__ = ["CrossEntropy", "BinaryCrossEntropy", "WeightedCrossEntropy", "LabelSmoothingCrossEntropy",
           "soft_targets", "balanced_class_weight"]


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits; integer class labels or one-hot rows."""

    fused_activation = "softmax"
    is_classification = True

    def __init__(self):
        super().__init__("cross_entropy", codes.LOSS_SOFTMAX_CE)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        if n_outputs < 2:
            raise ValueError("cross_entropy needs at least 2 outputs (one per class); "
                             "for a single output use loss='binary_cross_entropy'")
        arr = _as_numeric_array(y, name)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 1:
            if arr.dtype.kind == "f":
                if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
                    raise ValueError(f"{name} holds non-integer labels; cross_entropy needs class "
                                     f"indices 0..{n_outputs - 1} (or one-hot rows)")
            lo, hi = arr.min(), arr.max()
            if lo < 0 or hi >= n_outputs:
                raise ValueError(f"{name} has labels outside [0, {n_outputs}): min {lo}, max {hi}; "
                                 f"the network has {n_outputs} outputs")
            return np.ascontiguousarray(arr.reshape(-1, 1), dtype=dtype)
        if arr.ndim == 2:
            if arr.shape[1] != n_outputs:
                raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_outputs} outputs")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ValueError(f"{name} rows must be finite, non-negative class probabilities (one-hot)")
            return np.ascontiguousarray(arr, dtype=dtype)
        raise ValueError(f"{name} must be 1-D labels or 2-D one-hot rows, got shape {arr.shape}")


class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits, one column per independent binary target."""

    fused_activation = "sigmoid"
    is_classification = True

    def __init__(self):
        super().__init__("binary_cross_entropy", codes.LOSS_BCE_LOGITS)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        arr = _as_numeric_array(y, name)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != n_outputs:
            raise ValueError(f"{name} must have shape (n, {n_outputs}) for binary_cross_entropy, got {np.shape(y)}")
        if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
            raise ValueError(f"{name} must hold targets in [0, 1] for binary_cross_entropy "
                             f"(found min {arr.min()}, max {arr.max()})")
        return np.ascontiguousarray(arr, dtype=dtype)


#: the one rule of a label-smoothing factor (soft_targets and the losses' checked attribute)
_SMOOTHING = Real(0, 1)


def _check_smoothing(label_smoothing):
    return _SMOOTHING.check(label_smoothing, "label_smoothing")


def _check_class_weight(class_weight, n_classes):
    """A float64 vector of k non-negative finite weights from a dict {class: w} or a sequence."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        raise ValueError("class_weight must be a dict or a sequence of weights; for 'balanced' weights use "
                         "fastnn.losses.balanced_class_weight(y, n_classes)")
    if isinstance(class_weight, dict):
        cw = np.ones(n_classes)
        for cls, w in class_weight.items():
            if not is_int(cls) or not 0 <= cls < n_classes:
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
    if not is_int(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, not {n_classes!r}")
    k = int(n_classes)
    base = CrossEntropy().prepare_targets(y, k, np.float64)
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


class WeightedCrossEntropy(CrossEntropy):
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

    label_smoothing = Param(_SMOOTHING)

    def __init__(self, class_weight=None, label_smoothing=0.0):
        super().__init__()
        self.name = "weighted_cross_entropy"
        self.label_smoothing = label_smoothing
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
