"""Input checks and label helpers shared by the metrics."""

from __future__ import annotations

import math

import numpy as np


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------

def _as_numeric_array(values, name: str) -> np.ndarray:
    """Return ``values`` as a non-empty numeric ndarray without NaN/Inf."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold numbers (bool, int or float), got dtype {array.dtype}"
        )
    if array.ndim == 0:
        raise ValueError(f"{name} must be an array, got the scalar {array!r}")
    if array.shape[0] == 0 or array.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            n_bad = int(array.size - np.count_nonzero(finite))
            kind = "NaN" if np.isnan(array).any() else "infinite"
            raise ValueError(
                f"{name} contains {n_bad} {kind} value(s) out of {array.size}; "
                "metrics are undefined on non-finite input (did training diverge?)"
            )
    return array


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} have different numbers of samples: "
            f"{a.shape[0]} != {b.shape[0]}"
        )


def _to_labels(values, name: str, *, threshold: float = 0.5,
               allow_threshold: bool = True) -> np.ndarray:
    """Reduce labels, one-hot rows, scores or a probability column to int64 labels.

    Returns a 1-D int64 array of non-negative labels. Raises ValueError for
    non-integer 1-D floats (ambiguous: labels or probabilities?) and for
    negative labels.
    """
    array = _as_numeric_array(values, name)
    if array.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {array.shape}")
    if array.ndim == 2:
        if array.shape[1] > 1:
            # Scores, logits, probabilities or one-hot: the column index is the class.
            return np.argmax(array, axis=1).astype(np.int64, copy=False)
        array = array[:, 0]
        is_integral = array.dtype.kind != "f" or bool(np.all(array == np.round(array)))
        if not is_integral:
            if not allow_threshold:
                raise ValueError(
                    f"{name} holds non-integer values; it must hold class labels"
                )
            # One sigmoid output per sample: a binary decision at `threshold`.
            return (array > threshold).astype(np.int64)
    elif array.dtype.kind == "f" and not np.all(array == np.round(array)):
        hint = (" Pass 2-D scores (n_samples, n_classes) to take the argmax, or "
                "probabilities as a column (n_samples, 1) to threshold them."
                if allow_threshold else "")
        raise ValueError(f"{name} holds non-integer values; expected class labels.{hint}")
    labels = array.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(
            f"{name} holds the negative label {int(labels.min())}; "
            "class labels must be integers 0 .. n_classes-1"
        )
    return labels


def _label_pair(y_true, y_pred, threshold: float = 0.5):
    """Validate and convert a (true, predicted) pair to equal-length int64 labels."""
    true_labels = _to_labels(y_true, "y_true", allow_threshold=False)
    pred_labels = _to_labels(y_pred, "y_pred", threshold=threshold)
    _check_same_length(true_labels, pred_labels, "y_true", "y_pred")
    pred_array = np.asarray(y_pred)
    if pred_array.ndim == 2 and pred_array.shape[1] > 1:
        n_columns = pred_array.shape[1]
        if true_labels.max() >= n_columns:
            # A label with no score column is a shape bug upstream, not a miss.
            raise ValueError(
                f"y_true holds label {int(true_labels.max())} but y_pred has only "
                f"{n_columns} columns (classes 0..{n_columns - 1})"
            )
    return true_labels, pred_labels


def _check_zero_division(zero_division) -> float:
    if isinstance(zero_division, (int, float, np.floating, np.integer)) and (
        math.isnan(zero_division) or zero_division in (0, 1)
    ):
        return float(zero_division)
    raise ValueError(f"zero_division must be 0.0, 1.0 or np.nan, got {zero_division!r}")


def _resolve_labels(true_labels, pred_labels, labels) -> np.ndarray:
    """The class ids to report: ``labels`` if given, else the sorted union present."""
    if labels is None:
        return np.union1d(true_labels, pred_labels)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D sequence of class ids")
    if labels.dtype.kind not in "biu":
        if labels.dtype.kind != "f" or not np.all(labels == np.round(labels)):
            raise ValueError(f"labels must be integer class ids, got {labels!r}")
    labels = labels.astype(np.int64)
    if np.unique(labels).size != labels.size:
        raise ValueError(f"labels contains duplicates: {labels.tolist()}")
    return labels


def _position_in(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value within ``labels`` (any order); ``len(labels)`` if absent."""
    n_labels = labels.size
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.searchsorted(sorted_labels, values)
    pos_clipped = np.minimum(pos, n_labels - 1)
    found = sorted_labels[pos_clipped] == values
    return np.where(found, order[pos_clipped], n_labels)


def _per_class_counts(true_labels, pred_labels, labels):
    """True positives, predicted counts and true counts (support) per label."""
    n_labels = labels.size
    true_pos = _position_in(labels, true_labels)
    pred_pos = _position_in(labels, pred_labels)
    # Bin n_labels collects samples whose class is outside `labels`; dropped below.
    correct = true_pos[(true_pos == pred_pos) & (true_pos < n_labels)]
    tp = np.bincount(correct, minlength=n_labels + 1)[:n_labels]
    pred_sum = np.bincount(pred_pos, minlength=n_labels + 1)[:n_labels]
    true_sum = np.bincount(true_pos, minlength=n_labels + 1)[:n_labels]
    return tp, pred_sum, true_sum


def _safe_divide(numerator, denominator, zero_value: float) -> np.ndarray:
    numerator, denominator = np.broadcast_arrays(np.asarray(numerator, dtype=np.float64),
                                                 np.asarray(denominator, dtype=np.float64))
    zero = denominator == 0
    result = numerator / np.where(zero, 1.0, denominator)
    result[zero] = zero_value
    return result


def _nan_average(values: np.ndarray, weights=None) -> float:
    """Weighted mean ignoring NaN entries (sklearn's ``_nanaverage`` semantics)."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if weights is None:
        return float(np.mean(values[keep]))
    weights = np.asarray(weights, dtype=np.float64)[keep]
    if weights.sum() == 0:
        # All weights zero (no support for any requested label): plain mean.
        return float(np.mean(values[keep]))
    return float(np.average(values[keep], weights=weights))
