"""Metrics by name for training loops: :class:`Metric`, :func:`get_metric`, :func:`register_metric`."""

from __future__ import annotations

import functools
import re
from typing import Callable

import numpy as np

from ._common import _as_numeric_array
from .classification import accuracy, precision_recall_f1, roc_auc, top_k_accuracy
from .regression import mean_absolute_error, mean_squared_error, r2_score, root_mean_squared_error


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
