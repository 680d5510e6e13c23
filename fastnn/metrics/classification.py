"""Classification metrics: accuracy, top-k, confusion matrix, precision/recall/F1, ROC AUC."""

from __future__ import annotations


import numpy as np

from .._validation import is_int
from ._common import (_as_numeric_array, _check_same_length, _check_zero_division, _label_pair, _nan_average,
                      _per_class_counts, _resolve_labels, _safe_divide, _to_labels)


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
    if not is_int(k) or k < 1:
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
        if not is_int(n_classes) or n_classes < 1:
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
