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


def check_shape(shape, name):
    """Return ``shape`` as a tuple of positive ints (a per-sample shape), or raise ValueError."""
    if isinstance(shape, (numbers.Integral,)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of positive integers, not {shape!r}") from None
    if not dims or len(dims) > 8 or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
                                        for d in dims):
        raise ValueError(f"{name} must be a tuple of 1 to 8 positive integers, not {shape!r}")
    if int(np.prod([int(d) for d in dims], dtype=object)) > 2 ** 31:
        raise ValueError(f"{name} {dims} has more than 2**31 values per sample")
    return tuple(int(d) for d in dims)


def check_array_X(X, n_features=None, dtype=np.float32, name="X", sample_shape=None):
    """Return ``X`` as a C-contiguous float array of ``dtype`` with one row per sample, or raise.

    Rejects: non-numeric dtypes (object, str, bool is accepted as 0/1), zero
    samples or zero features, NaN/Inf, and a feature count other than
    ``n_features``. With a ``sample_shape`` of several dimensions, ``X`` must
    have shape ``(n, *sample_shape)`` and comes back as ``(n, prod(sample_shape))``
    rows (a view when it is already contiguous); otherwise ``X`` must be 2-D.
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
    if sample_shape is not None and len(sample_shape) > 1:
        if arr.ndim < 2 or arr.shape[1:] != tuple(sample_shape):
            raise ValueError(f"{name} must have shape (n_samples, {', '.join(map(str, sample_shape))}), "
                             f"got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} has 0 samples")
        arr = arr.reshape(arr.shape[0], -1)
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
