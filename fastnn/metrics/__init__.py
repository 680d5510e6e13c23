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
from .classification import (accuracy, confusion_matrix, f1_score, precision, precision_recall_f1, recall,
                             roc_auc, top_k_accuracy)
from .registry import Metric, available_metrics, get_metric, register_metric
from .regression import mean_absolute_error, mean_squared_error, r2_score, root_mean_squared_error
from .report import classification_report

# scikit-learn's names, for users who type them first (the same functions).
accuracy_score = accuracy
precision_score = precision
recall_score = recall
roc_auc_score = roc_auc

__all__ = [
    "accuracy",
    "accuracy_score",
    "precision_score",
    "recall_score",
    "roc_auc_score",
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
