"""Regression metrics: MAE, MSE, RMSE, R^2."""

from __future__ import annotations


import numpy as np

from ._common import _as_numeric_array, _check_same_length


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
