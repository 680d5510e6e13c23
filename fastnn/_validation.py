"""Input checks shared by Network and Trainer: clear errors before any state changes."""
import math
import numbers

import numpy as np


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy) and not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def is_real(value):
    """Whether ``value`` is a real number (Python or numpy, int or float) and not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def check_array_X(X, n_features=None, dtype=np.float32, name="X"):
    """Return ``X`` as a C-contiguous 2-D float array of ``dtype``, or raise a clear error.

    Rejects: non-numeric dtypes (object, str, bool is accepted as 0/1), arrays
    that are not 2-D, zero samples or zero features, NaN/Inf, and a feature
    count other than ``n_features``.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 2-D array, not {type(X).__name__}")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype} "
                        f"(convert strings/objects to floats first)")
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the network expects {n_features}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        kind = "NaN" if np.isnan(arr[tuple(bad)]) else "Inf"
        raise ValueError(f"{name} contains {kind} (first at row {bad[0]}, column {bad[1]}); "
                         f"clean or impute the data first")
    return arr


def check_batch_size(batch_size):
    """Return ``batch_size`` as a positive int or raise ValueError/TypeError."""
    if not is_int(batch_size):
        raise TypeError(f"batch_size must be a positive integer, not {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size}")
    return int(batch_size)


def check_nonneg_int(value, name):
    """Return ``value`` as a non-negative int or raise ValueError."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


#: the historical name of :func:`check_nonneg_int` (it accepts 0)
check_positive_int = check_nonneg_int


def check_nonneg_float(value, name):
    """Return ``value`` as a finite float >= 0 or raise ValueError."""
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def check_real(value, name, *, lo=None, hi=None, lo_open=False, hi_open=False):
    """Return ``value`` as a finite float within the given bounds (open or closed) or raise ValueError."""
    if not is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, not {value!r}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, not {value!r}")
    return float(value)


def check_positive_real(value, name):
    """Return ``value`` as a finite float > 0 or raise ValueError."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")
    return float(value)


def check_int_min(value, name, minimum, *, verb="not"):
    """Return ``value`` as an int >= ``minimum`` or raise ValueError ("... , {verb} {value!r}")."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, {verb} {value!r}")
    return int(value)
