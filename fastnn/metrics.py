"""Evaluation metrics for classification and regression.

Every metric validates its inputs at the door (lengths, emptiness, NaN/Inf,
label ranges) and raises ``ValueError`` with a message that names the
problem, then computes with vectorized numpy (``np.bincount``,
``np.argsort``), never a Python loop over samples. Results agree with
``sklearn.metrics`` (the test-suite checks this on random data); the few
places where fastnn chooses differently are stated in the docstrings.

Labels are non-negative integers ``0 .. n_classes-1``. Wherever a metric
takes predicted labels it also accepts what a network emits:

* 1-D integer-valued labels,
* 2-D scores of shape ``(n_samples, n_classes)`` -- probabilities, logits or
  one-hot rows -- reduced with ``argmax``,
* a single column ``(n_samples, 1)`` of probabilities, thresholded at
  ``threshold`` (default 0.5; use 0.0 for logits).

``y_true`` may likewise be labels or one-hot rows.

:func:`get_metric` turns a name such as ``"accuracy"``, ``"top5"``,
``"f1_macro"`` or ``"rmse"`` into a callable ``f(y_true, y_out) -> float``
on the raw network output, for use by a training loop.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Callable

import numpy as np

__all__ = [
    "accuracy",
    "top_k_accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "precision",
    "recall",
    "f1_score",
    "roc_auc",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "r2_score",
    "classification_report",
    "Metric",
    "get_metric",
    "register_metric",
    "available_metrics",
]


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


# --------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------

def accuracy(y_true, y_pred, *, threshold: float = 0.5, normalize: bool = True):
    """Fraction (or count) of samples whose predicted class equals the true class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels, or one-hot rows.
    y_pred : array-like of shape (n_samples,), (n_samples, n_classes) or (n_samples, 1)
        Predicted labels; or scores/probabilities/logits (argmax is taken);
        or one column of probabilities (thresholded at ``threshold``).
    threshold : float, default=0.5
        Decision threshold for a single probability column; use 0.0 for logits.
    normalize : bool, default=True
        Return the fraction correct; if False, the number correct.

    Returns
    -------
    float or int
        Accuracy in [0, 1], or the count of correct predictions.

    Raises
    ------
    ValueError
        On empty, NaN/Inf, mismatched-length or non-label input.

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1],
    ...                         [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]])
    0.75
    """
    true_labels, pred_labels = _label_pair(y_true, y_pred, threshold)
    n_correct = int(np.count_nonzero(true_labels == pred_labels))
    return n_correct / true_labels.size if normalize else n_correct


def top_k_accuracy(y_true, scores, k: int = 5, *, normalize: bool = True):
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Ties are broken like ``sklearn.metrics.top_k_accuracy_score``: among equal
    scores the class with the higher index ranks first.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows).
    scores : array-like of shape (n_samples, n_classes) or (n_samples,)
        Class scores (probabilities or logits). A 1-D array is a binary
        problem's positive-class score; as in scikit-learn, ``k=1``
        thresholds it at 0.5 (or 0 when the scores leave [0, 1]) and ``k>=2``
        counts every sample as a hit.
    k : int, default=5
        How many of the top-ranked classes count as a hit. ``k >= n_classes``
        makes every sample a hit.
    normalize : bool, default=True
        Return the fraction of hits; if False, the number of hits.

    Returns
    -------
    float or int
        Top-k accuracy.

    Raises
    ------
    ValueError
        On invalid ``k``, empty, NaN/Inf or mismatched input, or a label with
        no score column.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    true_labels = _to_labels(y_true, "y_true", allow_threshold=False)
    score_array = _as_numeric_array(scores, "scores").astype(np.float64, copy=False)
    _check_same_length(true_labels, score_array, "y_true", "scores")
    if score_array.ndim == 2 and score_array.shape[1] == 1:
        score_array = score_array[:, 0]
    if score_array.ndim == 1:
        if true_labels.max() > 1:
            raise ValueError("1-D scores describe a binary problem but y_true has labels > 1")
        if k == 1:
            in_unit = score_array.min() >= 0 and score_array.max() <= 1
            hits = (score_array > (0.5 if in_unit else 0.0)) == (true_labels == 1)
        else:
            hits = np.ones(true_labels.size, dtype=bool)
    elif score_array.ndim == 2:
        n_classes = score_array.shape[1]
        if true_labels.max() >= n_classes:
            raise ValueError(
                f"y_true holds label {int(true_labels.max())} but scores has only "
                f"{n_classes} columns"
            )
        true_score = score_array[np.arange(true_labels.size), true_labels][:, None]
        column = np.arange(n_classes)[None, :]
        # Rank of the true class: strictly higher scores, plus equal scores at a
        # higher column index (sklearn's reversed stable argsort). O(n * C).
        outranking = (score_array > true_score) | (
            (score_array == true_score) & (column > true_labels[:, None]))
        hits = np.count_nonzero(outranking, axis=1) < k
    else:
        raise ValueError(f"scores must be 1-D or 2-D, got shape {score_array.shape}")
    n_hits = int(np.count_nonzero(hits))
    return n_hits / true_labels.size if normalize else n_hits


_MAX_INFERRED_CLASSES = 10_000


def confusion_matrix(y_true, y_pred, n_classes: int | None = None, *,
                     normalize: str | None = None, threshold: float = 0.5) -> np.ndarray:
    """Count matrix ``C[i, j]`` = samples of true class ``i`` predicted as ``j``.

    Rows and columns are indexed by class id ``0 .. n_classes-1`` (a class
    that never occurs gets a zero row and column; scikit-learn instead drops
    it unless ``labels=range(n_classes)`` is passed).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows).
    y_pred : array-like
        Predicted labels, scores (argmax) or a probability column (threshold).
    n_classes : int, optional
        Matrix size. Defaults to ``max(label) + 1`` over both inputs, or the
        number of score columns of ``y_pred``. A label ``>= n_classes``
        raises ValueError instead of being silently dropped.
    normalize : {None, 'true', 'pred', 'all'}, default=None
        Divide by row sums (recall view), column sums (precision view) or
        the total. Empty rows/columns stay 0.
    threshold : float, default=0.5
        Decision threshold for a single probability column.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)
        int64 counts, or float64 when normalized.
    """
    true_labels, pred_labels = _label_pair(y_true, y_pred, threshold)
    largest = int(max(true_labels.max(), pred_labels.max()))
    if n_classes is None:
        pred_array = np.asarray(y_pred)
        n_score_columns = pred_array.shape[1] if pred_array.ndim == 2 and pred_array.shape[1] > 1 else 0
        n_classes = max(largest + 1, n_score_columns)
        if n_classes > _MAX_INFERRED_CLASSES:
            # A stray huge label would otherwise allocate an n^2 matrix.
            raise ValueError(
                f"label {largest} implies a {n_classes} x {n_classes} confusion matrix; "
                "check the labels or pass n_classes explicitly"
            )
    else:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        if largest >= n_classes:
            raise ValueError(
                f"label {largest} is out of range for n_classes={n_classes} "
                f"(labels must be 0..{n_classes - 1})"
            )
    n_classes = int(n_classes)
    counts = np.bincount(true_labels * n_classes + pred_labels,
                         minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    if normalize is None:
        return counts
    if normalize == "true":
        return _safe_divide(counts, counts.sum(axis=1, keepdims=True), 0.0)
    if normalize == "pred":
        return _safe_divide(counts, counts.sum(axis=0, keepdims=True), 0.0)
    if normalize == "all":
        return counts / counts.sum()
    raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")


_AVERAGES = (None, "binary", "micro", "macro", "weighted")


def precision_recall_f1(y_true, y_pred, *, average: str | None = None, labels=None,
                        pos_label: int = 1, zero_division: float = 0.0,
                        threshold: float = 0.5):
    """Precision, recall, F1 and support per class, or averaged.

    precision = TP / (TP + FP), recall = TP / (TP + FN),
    F1 = 2 TP / (2 TP + FP + FN) (the harmonic mean of the two).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows).
    y_pred : array-like
        Predicted labels, scores (argmax) or a probability column (threshold).
    average : {None, 'binary', 'micro', 'macro', 'weighted'}, default=None
        ``None``: per-class arrays. ``'macro'``: unweighted mean over classes.
        ``'weighted'``: mean weighted by support. ``'micro'``: from global
        TP/FP/FN counts (equals accuracy when all classes are included).
        ``'binary'``: the scores of class ``pos_label`` of a two-class problem.
    labels : sequence of int, optional
        Classes to report, in this order. Default: the sorted union of the
        classes present in ``y_true`` and ``y_pred`` (as scikit-learn).
    pos_label : int, default=1
        Positive class for ``average='binary'``.
    zero_division : {0.0, 1.0, np.nan}, default=0.0
        Value used where a ratio has a zero denominator (a class never
        predicted, or absent). NaN entries are left out of the averages.
    threshold : float, default=0.5
        Decision threshold for a single probability column.

    Returns
    -------
    precision, recall, f1 : ndarray of shape (n_labels,) or float
    support : ndarray of shape (n_labels,) or int
        Number of true samples per class; when averaged, the total over the
        reported classes (scikit-learn returns None there).

    Raises
    ------
    ValueError
        On invalid input, an unknown ``average``, or ``average='binary'``
        with more than two classes.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    zero_value = _check_zero_division(zero_division)
    true_labels, pred_labels = _label_pair(y_true, y_pred, threshold)
    if average == "binary":
        present = np.union1d(true_labels, pred_labels)
        if present.size > 2:
            raise ValueError(
                f"average='binary' needs a two-class problem, but the data holds "
                f"classes {present.tolist()}; use average='macro', 'micro' or 'weighted'"
            )
        if present.size == 2 and pos_label not in present:
            raise ValueError(f"pos_label={pos_label} is not one of the classes {present.tolist()}")
        label_set = np.array([pos_label], dtype=np.int64)
    else:
        label_set = _resolve_labels(true_labels, pred_labels, labels)

    tp, pred_sum, true_sum = _per_class_counts(true_labels, pred_labels, label_set)
    if average == "micro":
        tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), true_sum.sum(keepdims=True)
    precision_values = _safe_divide(tp, pred_sum, zero_value)
    recall_values = _safe_divide(tp, true_sum, zero_value)
    # F1 from counts, so it is defined whenever the class occurs at all.
    f1_values = _safe_divide(2 * tp, true_sum + pred_sum, zero_value)

    if average is None:
        return precision_values, recall_values, f1_values, true_sum.astype(np.int64)
    weights = true_sum if average == "weighted" else None
    return (_nan_average(precision_values, weights), _nan_average(recall_values, weights),
            _nan_average(f1_values, weights), int(true_sum.sum()))


def precision(y_true, y_pred, *, average: str | None = "macro", labels=None,
              pos_label: int = 1, zero_division: float = 0.0, threshold: float = 0.5):
    """Precision TP / (TP + FP); see :func:`precision_recall_f1`.

    The default ``average='macro'`` works for binary and multiclass problems
    alike (scikit-learn defaults to ``'binary'``).

    Parameters
    ----------
    y_true, y_pred, labels, pos_label, zero_division, threshold
        As in :func:`precision_recall_f1`.
    average : {'macro', 'micro', 'weighted', 'binary', None}, default='macro'

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average=average, labels=labels,
                               pos_label=pos_label, zero_division=zero_division,
                               threshold=threshold)[0]


def recall(y_true, y_pred, *, average: str | None = "macro", labels=None,
           pos_label: int = 1, zero_division: float = 0.0, threshold: float = 0.5):
    """Recall TP / (TP + FN); see :func:`precision_recall_f1`.

    Parameters
    ----------
    y_true, y_pred, labels, pos_label, zero_division, threshold
        As in :func:`precision_recall_f1`.
    average : {'macro', 'micro', 'weighted', 'binary', None}, default='macro'

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average=average, labels=labels,
                               pos_label=pos_label, zero_division=zero_division,
                               threshold=threshold)[1]


def f1_score(y_true, y_pred, *, average: str | None = "macro", labels=None,
             pos_label: int = 1, zero_division: float = 0.0, threshold: float = 0.5):
    """F1 score 2 TP / (2 TP + FP + FN); see :func:`precision_recall_f1`.

    Parameters
    ----------
    y_true, y_pred, labels, pos_label, zero_division, threshold
        As in :func:`precision_recall_f1`.
    average : {'macro', 'micro', 'weighted', 'binary', None}, default='macro'

    Returns
    -------
    float or ndarray
    """
    return precision_recall_f1(y_true, y_pred, average=average, labels=labels,
                               pos_label=pos_label, zero_division=zero_division,
                               threshold=threshold)[2]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing their mean rank."""
    n = values.size
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts_group[1:])
    group_of_position = np.cumsum(starts_group) - 1
    group_start = np.flatnonzero(starts_group)
    group_end = np.append(group_start[1:], n)
    # Positions start..end-1 carry ranks start+1..end; their mean:
    mean_rank = (group_start + 1 + group_end) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = mean_rank[group_of_position]
    return ranks


def _binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic; a tie counts one half.

    This equals the trapezoidal area under the ROC curve that scikit-learn
    integrates, ties included.
    """
    n_pos = int(np.count_nonzero(is_positive))
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "ROC AUC is undefined when y_true holds only one class "
            f"({n_pos} positive, {n_neg} negative samples)"
        )
    rank_sum = _average_ranks(scores)[is_positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true, scores, *, multi_class: str = "ovr", average: str | None = "macro"):
    """Area under the ROC curve: P(score of a random positive > a random negative).

    Computed from ranks (Mann-Whitney U, ties counting one half), which
    matches ``sklearn.metrics.roc_auc_score`` including ties.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows). Binary problems use labels {0, 1}.
    scores : array-like of shape (n_samples,), (n_samples, 1), (n_samples, 2) or (n_samples, n_classes)
        Binary: the positive-class score (1-D or one column), or two columns
        of which column 1 is used. Multiclass (> 2 columns): one score per
        class. Any monotone score works for the binary and one-vs-rest
        cases (logits are fine); ``'ovo'`` compares columns, so pass
        probabilities there. Unlike scikit-learn, rows need not sum to 1.
    multi_class : {'ovr', 'ovo'}, default='ovr'
        One-vs-rest: AUC of each class against all others. One-vs-one: mean
        AUC over class pairs (Hand & Till, 2001).
    average : {'macro', 'weighted', 'micro', None}, default='macro'
        Multiclass only. ``'macro'``: plain mean over classes (or pairs);
        ``'weighted'``: weighted by class prevalence (pair prevalence for
        ovo); ``'micro'`` (ovr only): one AUC over all flattened one-vs-rest
        decisions; ``None`` (ovr only): per-class AUCs.

    Returns
    -------
    float or ndarray of shape (n_classes,)

    Raises
    ------
    ValueError
        When a class needed for the AUC has no positive (or no negative)
        sample, on label/column mismatch, or on invalid input.
    """
    true_labels = _to_labels(y_true, "y_true", allow_threshold=False)
    score_array = _as_numeric_array(scores, "scores").astype(np.float64, copy=False)
    _check_same_length(true_labels, score_array, "y_true", "scores")
    if score_array.ndim > 2:
        raise ValueError(f"scores must be 1-D or 2-D, got shape {score_array.shape}")
    if score_array.ndim == 1 or score_array.shape[1] <= 2:
        if score_array.ndim == 2:
            score_array = score_array[:, -1]  # column 1 of 2, or the only column
        if true_labels.max() > 1:
            raise ValueError(
                f"binary scores given but y_true holds label {int(true_labels.max())}; "
                "pass one score column per class for multiclass ROC AUC"
            )
        return _binary_auc(true_labels == 1, score_array)

    n_classes = score_array.shape[1]
    if true_labels.max() >= n_classes:
        raise ValueError(
            f"y_true holds label {int(true_labels.max())} but scores has only {n_classes} columns"
        )
    class_counts = np.bincount(true_labels, minlength=n_classes)
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"multi_class must be 'ovr' or 'ovo', got {multi_class!r}")
    allowed = ("macro", "weighted", "micro", None) if multi_class == "ovr" else ("macro", "weighted")
    if average not in allowed:
        raise ValueError(f"average must be one of {allowed} for multi_class={multi_class!r}, got {average!r}")
    absent = np.flatnonzero(class_counts == 0)
    if absent.size:
        raise ValueError(
            f"class(es) {absent.tolist()} never occur in y_true, so their ROC AUC is "
            f"undefined; scores has {n_classes} columns"
        )

    if multi_class == "ovr":
        if average == "micro":
            one_hot = true_labels[:, None] == np.arange(n_classes)[None, :]
            return _binary_auc(one_hot.ravel(), score_array.ravel())
        per_class = np.array([_binary_auc(true_labels == c, score_array[:, c])
                              for c in range(n_classes)])  # loop over classes, not samples
        if average is None:
            return per_class
        weights = class_counts if average == "weighted" else None
        return float(np.average(per_class, weights=weights))

    pair_scores, pair_weights = [], []
    for a in range(n_classes):  # O(C^2) pairs, each vectorized over its samples
        for b in range(a + 1, n_classes):
            in_pair = (true_labels == a) | (true_labels == b)
            pair_true = true_labels[in_pair]
            auc_a = _binary_auc(pair_true == a, score_array[in_pair, a])
            auc_b = _binary_auc(pair_true == b, score_array[in_pair, b])
            pair_scores.append((auc_a + auc_b) / 2.0)
            pair_weights.append(np.count_nonzero(in_pair))
    weights = pair_weights if average == "weighted" else None
    return float(np.average(pair_scores, weights=weights))


def classification_report(y_true, y_pred, *, labels=None, target_names=None, digits: int = 4,
                          output_dict: bool = False, zero_division: float = 0.0,
                          threshold: float = 0.5):
    """Text (or dict) summary of per-class precision, recall, F1 and support.

    Formatted like ``sklearn.metrics.classification_report``: one row per
    class, then ``accuracy`` (``micro avg`` when ``labels`` leaves classes
    out), ``macro avg`` and ``weighted avg``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows).
    y_pred : array-like
        Predicted labels, scores (argmax) or a probability column (threshold).
    labels : sequence of int, optional
        Classes to report. Default: the classes present in either input, or
        every class ``0 .. len(target_names)-1`` when ``target_names`` names
        more classes than are present.
    target_names : sequence of str, optional
        Display names: one per reported label, or one per class id.
    digits : int, default=4
        Decimal places in the text report (the dict is unrounded).
    output_dict : bool, default=False
        Return ``{name: {'precision', 'recall', 'f1-score', 'support'}, ...,
        'accuracy': float, 'macro avg': {...}, 'weighted avg': {...}}``.
    zero_division : {0.0, 1.0, np.nan}, default=0.0
        See :func:`precision_recall_f1`.
    threshold : float, default=0.5
        Decision threshold for a single probability column.

    Returns
    -------
    str or dict
    """
    true_labels, pred_labels = _label_pair(y_true, y_pred, threshold)
    present = np.union1d(true_labels, pred_labels)
    labels_given = labels is not None
    if target_names is not None:
        target_names = [str(name) for name in target_names]
        if not labels_given and len(target_names) != present.size:
            if present.max() >= len(target_names):
                raise ValueError(
                    f"target_names has {len(target_names)} names but the data holds "
                    f"class {int(present.max())}; give one name per class id or per label"
                )
            labels = np.arange(len(target_names))  # names indexed by class id
    label_set = _resolve_labels(true_labels, pred_labels, labels)
    if target_names is None:
        names = [str(label) for label in label_set]
    elif len(target_names) == label_set.size:
        names = target_names
    elif label_set.max() < len(target_names):
        names = [target_names[label] for label in label_set]
    else:
        raise ValueError(
            f"target_names has {len(target_names)} names for {label_set.size} labels"
        )
    micro_is_accuracy = not labels_given or bool(np.all(np.isin(present, label_set)))

    p, r, f1, support = precision_recall_f1(true_labels, pred_labels, labels=label_set,
                                            zero_division=zero_division)
    headers = ("precision", "recall", "f1-score", "support")
    rows = {name: dict(zip(headers, (float(pi), float(ri), float(fi), int(si))))
            for name, pi, ri, fi, si in zip(names, p, r, f1, support)}
    summary = {}
    total_support = int(support.sum())
    for average in ("micro", "macro", "weighted"):
        heading = "accuracy" if average == "micro" and micro_is_accuracy else f"{average} avg"
        avg_p, avg_r, avg_f1, _ = precision_recall_f1(true_labels, pred_labels, labels=label_set,
                                                      average=average, zero_division=zero_division)
        summary[heading] = dict(zip(headers, (avg_p, avg_r, avg_f1, total_support)))

    if output_dict:
        report = dict(rows)
        for heading, values in summary.items():
            report[heading] = values["precision"] if heading == "accuracy" else values
        return report

    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    lines = [f"{'':>{width}s} " + "".join(f" {h:>9}" for h in headers), ""]
    def format_row(name, values):
        numbers = "".join(f" {values[h]:>9.{digits}f}" for h in headers[:3])
        return f"{name:>{width}s} {numbers} {values['support']:>9}"
    lines += [format_row(name, values) for name, values in rows.items()]
    lines.append("")
    for heading, values in summary.items():
        if heading == "accuracy":
            lines.append(f"{heading:>{width}s}  {'':>9} {'':>9} "
                         f"{values['f1-score']:>9.{digits}f} {values['support']:>9}")
        else:
            lines.append(format_row(heading, values))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------

def _regression_pair(y_true, y_pred):
    """Validate and return float64 2-D (n_samples, n_outputs) arrays."""
    true_values = _as_numeric_array(y_true, "y_true").astype(np.float64, copy=False)
    pred_values = _as_numeric_array(y_pred, "y_pred").astype(np.float64, copy=False)
    for name, values in (("y_true", true_values), ("y_pred", pred_values)):
        if values.ndim > 2:
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {values.shape}")
    _check_same_length(true_values, pred_values, "y_true", "y_pred")
    # (n,) and (n, 1) are the same single-output target.
    true_values = true_values.reshape(true_values.shape[0], -1)
    pred_values = pred_values.reshape(pred_values.shape[0], -1)
    if true_values.shape[1] != pred_values.shape[1]:
        raise ValueError(
            f"y_true has {true_values.shape[1]} outputs but y_pred has {pred_values.shape[1]}"
        )
    return true_values, pred_values


def _combine_outputs(per_output: np.ndarray, multioutput: str):
    if multioutput == "raw_values":
        return per_output
    if multioutput == "uniform_average":
        return float(np.mean(per_output))
    raise ValueError(f"multioutput must be 'uniform_average' or 'raw_values', got {multioutput!r}")


def mean_absolute_error(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Mean of ``|y_true - y_pred|``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets and predictions; ``(n,)`` and ``(n, 1)`` are interchangeable.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'
        Average over outputs, or return one value per output.

    Returns
    -------
    float or ndarray of shape (n_outputs,)
    """
    true_values, pred_values = _regression_pair(y_true, y_pred)
    return _combine_outputs(np.mean(np.abs(true_values - pred_values), axis=0), multioutput)


def mean_squared_error(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Mean of ``(y_true - y_pred) ** 2``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets and predictions; ``(n,)`` and ``(n, 1)`` are interchangeable.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Returns
    -------
    float or ndarray of shape (n_outputs,)
    """
    true_values, pred_values = _regression_pair(y_true, y_pred)
    return _combine_outputs(np.mean((true_values - pred_values) ** 2, axis=0), multioutput)


def root_mean_squared_error(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Square root of the mean squared error, in the units of the target.

    With several outputs, the RMSE of each output is averaged (as scikit-learn).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Returns
    -------
    float or ndarray of shape (n_outputs,)
    """
    true_values, pred_values = _regression_pair(y_true, y_pred)
    return _combine_outputs(np.sqrt(np.mean((true_values - pred_values) ** 2, axis=0)), multioutput)


def r2_score(y_true, y_pred, *, multioutput: str = "uniform_average"):
    """Coefficient of determination ``1 - SS_res / SS_tot``.

    1.0 is a perfect fit, 0.0 is no better than predicting the mean, and it
    can be negative. A constant ``y_true`` gives 1.0 for a perfect fit and
    0.0 otherwise (scikit-learn's ``force_finite=True``).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        At least two samples.
    multioutput : {'uniform_average', 'raw_values'}, default='uniform_average'

    Returns
    -------
    float or ndarray of shape (n_outputs,)

    Raises
    ------
    ValueError
        With fewer than two samples (R^2 is undefined), or invalid input.
    """
    true_values, pred_values = _regression_pair(y_true, y_pred)
    if true_values.shape[0] < 2:
        raise ValueError("r2_score needs at least two samples")
    ss_res = np.sum((true_values - pred_values) ** 2, axis=0)
    ss_tot = np.sum((true_values - np.mean(true_values, axis=0)) ** 2, axis=0)
    scores = np.ones_like(ss_res)
    valid = (ss_tot != 0) & (ss_res != 0)
    scores[valid] = 1.0 - ss_res[valid] / ss_tot[valid]
    scores[(ss_res != 0) & (ss_tot == 0)] = 0.0
    return _combine_outputs(scores, multioutput)


# --------------------------------------------------------------------------
# Registry: metric names -> f(y_true, y_out) on raw network output
# --------------------------------------------------------------------------

class Metric:
    """A named metric ``f(y_true, y_out) -> float`` on raw network output.

    Parameters
    ----------
    name : str
        Display name (used in training history and logs).
    function : callable
        ``function(y_true, y_out) -> float``.
    greater_is_better : bool, default=True
        False for errors (mae, rmse...): lets early stopping and
        checkpointing pick the right direction.
    """

    __slots__ = ("name", "function", "greater_is_better")

    def __init__(self, name: str, function: Callable, greater_is_better: bool = True):
        self.name = name
        self.function = function
        self.greater_is_better = bool(greater_is_better)

    def __call__(self, y_true, y_out) -> float:
        return float(self.function(y_true, y_out))

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, greater_is_better={self.greater_is_better})"


def _probability_scores(y_out) -> np.ndarray:
    """Softmax rows of >= 2 logits unless they already are probabilities.

    AUC one-vs-one compares columns, which only means something for
    probabilities; a softmax keeps every one-vs-rest ranking of binary
    outputs and makes multiclass scores comparable.
    """
    scores = _as_numeric_array(y_out, "y_out").astype(np.float64, copy=False)
    if scores.ndim != 2 or scores.shape[1] < 2:
        return scores
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _accuracy_metric(y_true, y_out, threshold=0.5):
    return accuracy(y_true, y_out, threshold=threshold)


def _top_k_metric(y_true, y_out, k=5):
    return top_k_accuracy(y_true, y_out, k)


def _prf_metric(y_true, y_out, *, which, average="macro", pos_label=1,
                zero_division=0.0, threshold=0.5):
    scores = precision_recall_f1(y_true, y_out, average=average, pos_label=pos_label,
                                 zero_division=zero_division, threshold=threshold)
    return scores[which]


def _roc_auc_metric(y_true, y_out, multi_class="ovr", average="macro"):
    return roc_auc(y_true, _probability_scores(y_out), multi_class=multi_class, average=average)


# name -> (function, greater_is_better, default keyword arguments)
_REGISTRY: dict[str, tuple[Callable, bool, dict]] = {}


def register_metric(name: str, function: Callable, *, greater_is_better: bool = True,
                    **defaults) -> None:
    """Add a metric to the registry used by :func:`get_metric`.

    Parameters
    ----------
    name : str
        Lookup name (case-insensitive; ``-`` and spaces read as ``_``).
    function : callable
        ``function(y_true, y_out, **kwargs) -> float``.
    greater_is_better : bool, default=True
        Direction of improvement.
    **defaults
        Keyword arguments bound when the metric is fetched.
    """
    _REGISTRY[_normalize_name(name)] = (function, greater_is_better, defaults)


def _normalize_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


for _alias in ("accuracy", "acc"):
    register_metric(_alias, _accuracy_metric)
register_metric("top_k_accuracy", _top_k_metric)
for _which, _stem in enumerate(("precision", "recall", "f1")):
    register_metric(_stem, _prf_metric, which=_which, average="macro")
    for _average in ("macro", "micro", "weighted", "binary"):
        register_metric(f"{_stem}_{_average}", _prf_metric, which=_which, average=_average)
register_metric("f1_score", _prf_metric, which=2, average="macro")
for _alias in ("roc_auc", "auc", "roc_auc_ovr"):
    register_metric(_alias, _roc_auc_metric)
register_metric("roc_auc_ovr_weighted", _roc_auc_metric, average="weighted")
register_metric("roc_auc_ovo", _roc_auc_metric, multi_class="ovo")
register_metric("roc_auc_ovo_weighted", _roc_auc_metric, multi_class="ovo", average="weighted")
for _names, _function in ((("mae", "mean_absolute_error"), mean_absolute_error),
                          (("mse", "mean_squared_error"), mean_squared_error),
                          (("rmse", "root_mean_squared_error"), root_mean_squared_error)):
    for _alias in _names:
        register_metric(_alias, _function, greater_is_better=False)
for _alias in ("r2", "r2_score"):
    register_metric(_alias, r2_score)

_TOP_K_NAME = re.compile(r"^top_?(\d+)(?:_acc(?:uracy)?)?$")


def available_metrics() -> list[str]:
    """Sorted names accepted by :func:`get_metric` (plus any ``top<k>``).

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY) + ["top<k>"]


def get_metric(name, **kwargs) -> Metric:
    """Look up a metric by name as a callable on raw network output.

    Classification metrics take ``y_out`` as the network emits it (logits
    or probabilities, one column per class, or one sigmoid column), and
    ``y_true`` as labels or one-hot rows. Regression metrics take values.

    Parameters
    ----------
    name : str or callable or Metric
        A registered name -- ``"accuracy"``/``"acc"``, ``"top_k_accuracy"``
        (k=5), ``"top5"``/``"top_3_accuracy"``/..., ``"precision"``,
        ``"recall"``, ``"f1"`` (macro averages) and their ``_macro``,
        ``_micro``, ``_weighted``, ``_binary`` variants, ``"roc_auc"``,
        ``"roc_auc_ovo"``, ``"mae"``, ``"mse"``, ``"rmse"``, ``"r2"`` and
        long forms such as ``"mean_absolute_error"``. A callable is wrapped
        as is; a :class:`Metric` is returned unchanged.
    **kwargs
        Options bound to the metric, e.g. ``get_metric("accuracy",
        threshold=0.0)`` for a single logit column, or
        ``get_metric("top_k_accuracy", k=3)``.

    Returns
    -------
    Metric
        Callable ``metric(y_true, y_out) -> float`` with ``.name`` and
        ``.greater_is_better``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if isinstance(name, Metric) and not kwargs:
        return name
    if callable(name):
        function = functools.partial(name, **kwargs) if kwargs else name
        return Metric(getattr(name, "__name__", repr(name)),
                      function, getattr(name, "greater_is_better", True))
    if not isinstance(name, str):
        raise ValueError(f"metric must be a name or a callable, got {name!r}")
    key = _normalize_name(name)
    top_k_match = _TOP_K_NAME.match(key)
    if top_k_match:
        if "k" in kwargs:
            raise ValueError(f"metric {name!r} already fixes k; do not pass k={kwargs['k']}")
        function, greater_is_better, defaults = _top_k_metric, True, {"k": int(top_k_match.group(1))}
    elif key in _REGISTRY:
        function, greater_is_better, defaults = _REGISTRY[key]
    else:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(available_metrics())}")
    bound = {**defaults, **kwargs}
    return Metric(name, functools.partial(function, **bound) if bound else function,
                  greater_is_better)
