"""Splitting, scaling and encoding helpers for in-memory datasets.

Everything here is plain numpy, validates its inputs with messages that say
what is wrong, and never guesses silently: ``scale_to_unit`` refuses float
input (it would scale twice), ``one_hot`` refuses labels that are not class
indices (compiled kernels downstream do no bounds checks).
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import is_int, is_real

__all__ = [
    "split_indices",
    "train_val_split",
    "train_test_split",
    "scale_to_unit",
    "Standardizer",
    "one_hot",
]


# --------------------------------------------------------------------------
# validation helpers

def _as_array(a, name):
    if a is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{name} has dtype object; pass a numeric (or string-label) array")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (samples), got a scalar")
    return arr


def _check_fraction(fraction, name):
    if not is_real(fraction):
        raise TypeError(f"{name} must be a float in (0, 1), got {fraction!r}")
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in (0, 1), got {fraction!r}")
    return fraction


def _check_seed(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not is_int(seed)):
        raise TypeError(f"seed must be an int, None or numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------
# splitting

def _stratified_counts(counts, n_val, rng):
    """Per-class validation counts summing to ``n_val``, each within one of
    ``count * n_val / n`` (largest-remainder rounding, ties broken at random)."""
    n = counts.sum()
    exact = counts * (n_val / n)
    take = np.floor(exact).astype(np.int64)
    short = n_val - int(take.sum())
    if short > 0:
        rem = exact - take
        # Random tie-breaking (lexsort: last key is primary) so that equal
        # remainders do not always favour the lowest class.
        order = np.lexsort((rng.random(len(counts)), -rem))
        take[order[:short]] += 1
    return take


def split_indices(y_or_n, fraction=0.1, *, seed=0, stratify=False):
    """Random (optionally stratified) split of sample indices into two sets.

    Parameters
    ----------
    y_or_n : int or array_like
        Number of samples, or the labels (1-D; required when ``stratify``).
    fraction : float, optional
        Fraction of samples in the second (held-out) set, in ``(0, 1)``. The
        held-out size is ``round(fraction * n)``; both sets must be non-empty.
    seed : int, None or numpy.random.Generator, optional
        Randomness source; the default ``0`` makes splits reproducible.
    stratify : bool, optional
        Keep each class's share equal in both sets (to within one sample per
        class).

    Returns
    -------
    keep_idx, held_idx : numpy.ndarray of int64
        Disjoint shuffled indices covering ``range(n)``.
    """
    return _split_indices(y_or_n, fraction, "fraction", seed, stratify)


def _split_indices(y_or_n, fraction, name, seed, stratify):
    fraction = _check_fraction(fraction, name)
    rng = _check_seed(seed)
    if isinstance(y_or_n, numbers.Integral) and not isinstance(y_or_n, bool):
        if stratify:
            raise ValueError("stratify=True needs the labels, not a sample count")
        n, y = int(y_or_n), None
    else:
        y = _as_array(y_or_n, "y")
        n = len(y)
    if n < 2:
        raise ValueError(f"need at least 2 samples to split, got {n}")
    n_held = int(round(fraction * n))
    if not 0 < n_held < n:
        raise ValueError(
            f"{name}={fraction} of {n} samples gives {n_held} held-out samples; "
            f"both sets must be non-empty"
        )
    if not stratify:
        perm = rng.permutation(n)
        return perm[n_held:].astype(np.int64), perm[:n_held].astype(np.int64)
    if y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels, got shape {y.shape}")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    take = _stratified_counts(counts, n_held, rng)
    by_class = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    keep, held = [], []
    for start, count, k in zip(starts, counts, take):
        members = rng.permutation(by_class[start : start + count])
        held.append(members[:k])
        keep.append(members[k:])
    keep = rng.permutation(np.concatenate(keep))
    held = rng.permutation(np.concatenate(held))
    return keep.astype(np.int64), held.astype(np.int64)


def _split(X, y, fraction, name, seed, stratify):
    X = _as_array(X, "X")
    y = _as_array(y, "y")
    if len(X) != len(y):
        raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
    if len(X) == 0:
        raise ValueError("cannot split empty arrays")
    keep, held = _split_indices(y, fraction, name, seed, stratify)
    return (X[keep], y[keep]), (X[held], y[held])


def train_val_split(X, y, val_fraction=0.1, *, seed=0, stratify=False):
    """Split a dataset into training and validation parts.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
    y : array_like, shape (n_samples, ...)
    val_fraction : float, optional
        Share of samples in the validation part, in ``(0, 1)``; the count is
        ``round(val_fraction * n_samples)`` and both parts must be non-empty.
    seed : int, None or numpy.random.Generator, optional
        Shuffling seed (default ``0``: reproducible).
    stratify : bool, optional
        Preserve class proportions in both parts (``y`` must be 1-D labels);
        each class's count is within one of its exact share.

    Returns
    -------
    (X_train, y_train), (X_val, y_val) : tuple of tuples of numpy.ndarray
        Shuffled copies. Note the grouping: same layout as
        :func:`fastnn.data.load_mnist`, not scikit-learn's flat 4-tuple.

    Raises
    ------
    ValueError
        Empty or mismatched inputs, a fraction outside ``(0, 1)``, or a
        fraction that leaves one part empty.
    """
    return _split(X, y, val_fraction, "val_fraction", seed, stratify)


def train_test_split(X, y, test_fraction=0.2, *, seed=0, stratify=False):
    """Split a dataset into training and test parts.

    Same as :func:`train_val_split` with a ``test_fraction`` (default 0.2).
    Returns ``(X_train, y_train), (X_test, y_test)`` -- grouped pairs, unlike
    scikit-learn's function of the same name.
    """
    return _split(X, y, test_fraction, "test_fraction", seed, stratify)


# --------------------------------------------------------------------------
# scaling

def scale_to_unit(X, dtype=np.float32):
    """Map 8-bit pixel values to ``[0, 1]``: ``X / 255`` as ``dtype``.

    Parameters
    ----------
    X : array_like of uint8 (or integers within 0..255)
    dtype : floating dtype, optional
        Output type, float32 by default.

    Returns
    -------
    numpy.ndarray
        New array of ``dtype``, same shape as ``X``.

    Raises
    ------
    TypeError
        If ``X`` is floating point (probably scaled already) or not numeric.
    ValueError
        If integer values lie outside ``0..255``.
    """
    X = np.asarray(X)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    if X.dtype.kind == "f":
        raise TypeError(
            f"scale_to_unit expects raw 8-bit pixel values, got {X.dtype} data "
            f"(already scaled?); use Standardizer or divide explicitly"
        )
    if X.dtype.kind not in "ui":
        raise TypeError(f"scale_to_unit expects uint8 pixel values, got dtype {X.dtype}")
    if X.dtype != np.uint8 and X.size:
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"pixel values must lie in 0..255, got range {lo}..{hi}")
    out = X.astype(dtype)
    out /= dtype.type(255)  # true division: 255 -> exactly 1.0
    return out


class Standardizer:
    """Per-feature standardization, ``(X - mean) / std``.

    Statistics are computed over the first axis (samples) in float64, so
    ``X`` may be ``(n, features)`` or ``(n, rows, cols)``. Features whose
    standard deviation is zero (or negligible next to their mean, i.e. a
    constant up to rounding) get scale 1, so they map to 0 instead of
    dividing by zero. Fit on the training set, then reuse on validation and
    test data.

    Parameters
    ----------
    with_mean : bool, optional
        Subtract the mean (default True).
    with_std : bool, optional
        Divide by the standard deviation (default True).
    dtype : floating dtype or None, optional
        Output type of :meth:`transform`. ``None`` keeps a floating input's
        type and gives float32 for integer input (e.g. uint8 pixels).

    Attributes
    ----------
    mean_ : numpy.ndarray of float64, shape X.shape[1:]
    scale_ : numpy.ndarray of float64, shape X.shape[1:]
    n_samples_seen_ : int
    """

    _CHUNK_ROWS = 4096  # bounds the float64 temporaries of fit()

    def __init__(self, *, with_mean=True, with_std=True, dtype=None):
        self.with_mean = bool(with_mean)
        self.with_std = bool(with_std)
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"dtype must be a floating type or None, got {np.dtype(dtype)}")
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.mean_ = None
        self.scale_ = None
        self.n_samples_seen_ = 0

    def __repr__(self):
        fitted = "fitted" if self.mean_ is not None else "not fitted"
        return (f"Standardizer(with_mean={self.with_mean}, with_std={self.with_std}, "
                f"dtype={self.dtype}) [{fitted}]")

    @staticmethod
    def _numeric(X, name="X"):
        X = _as_array(X, name)
        if X.dtype.kind not in "buif":
            raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
        return X

    def fit(self, X):
        """Compute per-feature mean and standard deviation of ``X``.

        Raises ValueError for empty input or non-finite values.
        """
        X = self._numeric(X)
        n = len(X)
        if n == 0:
            raise ValueError("cannot fit Standardizer on an empty array")
        mean = X.mean(axis=0, dtype=np.float64)
        if not np.all(np.isfinite(mean)):
            raise ValueError("X contains NaN or Inf; Standardizer needs finite values")
        # Second pass over row chunks: exact two-pass variance without a
        # full-size float64 copy of X.
        ssd = np.zeros(X.shape[1:], dtype=np.float64)
        for start in range(0, n, self._CHUNK_ROWS):
            d = X[start : start + self._CHUNK_ROWS] - mean
            ssd += np.einsum("i...,i...->...", d, d)
        std = np.sqrt(ssd / n)
        if not np.all(np.isfinite(std)):
            raise ValueError("X contains NaN or Inf; Standardizer needs finite values")
        constant = std <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        self.scale_ = np.where(constant, 1.0, std) if self.with_std else np.ones_like(std)
        self.n_samples_seen_ = int(n)
        return self

    def _check_fitted(self, X):
        if self.mean_ is None:
            raise RuntimeError("Standardizer is not fitted; call fit() first")
        X = self._numeric(X)
        if X.shape[1:] != self.mean_.shape:
            raise ValueError(
                f"X has feature shape {X.shape[1:]}, but the Standardizer was fitted "
                f"on {self.mean_.shape}"
            )
        return X

    def _out_dtype(self, X):
        if self.dtype is not None:
            return self.dtype
        return X.dtype if X.dtype.kind == "f" else np.dtype(np.float32)

    def transform(self, X):
        """Return ``(X - mean_) / scale_`` as a new array."""
        X = self._check_fitted(X)
        dt = self._out_dtype(X)
        out = np.subtract(X, self.mean_.astype(dt), dtype=dt)
        out /= self.scale_.astype(dt)
        return out

    def fit_transform(self, X):
        """Fit on ``X``, then transform it."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        """Return ``X * scale_ + mean_``, undoing :meth:`transform`."""
        X = self._check_fitted(X)
        dt = self._out_dtype(X)
        out = np.multiply(X, self.scale_.astype(dt), dtype=dt)
        out += self.mean_.astype(dt)
        return out

    def state_dict(self):
        """Fitted state as plain numpy arrays and Python scalars (no pickle).

        Returns
        -------
        dict
            ``{"mean": ndarray, "scale": ndarray, "n_samples_seen": int,
            "with_mean": bool, "with_std": bool}``; arrays are copies.
        """
        if self.mean_ is None:
            raise RuntimeError("Standardizer is not fitted; nothing to save")
        return {
            "mean": self.mean_.copy(),
            "scale": self.scale_.copy(),
            "n_samples_seen": int(self.n_samples_seen_),
            "with_mean": self.with_mean,
            "with_std": self.with_std,
        }

    def load_state_dict(self, state):
        """Restore the state returned by :meth:`state_dict`; returns self.

        Raises ValueError if keys are missing, shapes differ, or values are
        not finite / scales not positive.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        missing = {"mean", "scale"} - set(state)
        if missing:
            raise ValueError(f"state is missing keys: {', '.join(sorted(missing))}")
        mean = np.array(state["mean"], dtype=np.float64)
        scale = np.array(state["scale"], dtype=np.float64)
        if mean.shape != scale.shape:
            raise ValueError(f"mean and scale shapes differ: {mean.shape} vs {scale.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
            raise ValueError("state holds NaN or Inf")
        if np.any(scale <= 0):
            raise ValueError("state holds a non-positive scale")
        n_seen = np.asarray(state.get("n_samples_seen", 0))  # an int, or a 0-d array from np.load
        if n_seen.ndim != 0 or n_seen.dtype.kind not in "iu" or n_seen < 0:
            raise ValueError(f"state n_samples_seen must be a non-negative integer, not {n_seen!r}")
        # every check above, before anything is set: a refused state leaves the fitted one
        self.mean_, self.scale_ = mean, scale
        self.n_samples_seen_ = int(n_seen)
        self.with_mean = bool(state.get("with_mean", self.with_mean))
        self.with_std = bool(state.get("with_std", self.with_std))
        return self


# --------------------------------------------------------------------------
# labels

def one_hot(y, n_classes=None, dtype=np.float32):
    """One-hot encode integer class labels.

    Parameters
    ----------
    y : array_like, shape (n_samples,)
        Class indices in ``[0, n_classes)``. Integer or boolean arrays, or
        floating arrays holding whole numbers.
    n_classes : int, optional
        Number of classes; default ``y.max() + 1``.
    dtype : dtype, optional
        Output type, float32 by default.

    Returns
    -------
    numpy.ndarray, shape (n_samples, n_classes)

    Raises
    ------
    TypeError
        If ``y`` is not numeric or ``n_classes`` is not an int.
    ValueError
        If ``y`` is not 1-D, holds non-integer, NaN, negative or too large
        labels, or ``n_classes`` is not positive; the message names the
        offending value.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D class labels, got shape {y.shape}"
            + ("; use y.ravel() for a column vector" if y.ndim == 2 and y.shape[1] == 1 else "")
        )
    if y.dtype.kind not in "buif":
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if n_classes is not None:
        if not is_int(n_classes):
            raise TypeError(f"n_classes must be an int, got {n_classes!r}")
        n_classes = int(n_classes)
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"labels must be whole numbers; y[{i}] = {y[i].item()!r}")
    if len(y) == 0:
        if n_classes is None:
            raise ValueError("cannot infer n_classes from empty y; pass n_classes")
        return np.zeros((0, n_classes), dtype=dtype)
    if y.dtype.kind in "if" and y.min() < 0:
        i = int(np.argmin(y))
        raise ValueError(f"labels must be >= 0; y[{i}] = {y[i].item()!r}")
    top = y.max()
    if y.dtype.kind == "f" and top >= 2**53:
        raise ValueError(f"label {top.item()!r} is too large")
    idx = y.astype(np.int64)
    if n_classes is None:
        n_classes = int(idx.max()) + 1
    elif int(top) >= n_classes:
        i = int(np.argmax(y))
        raise ValueError(
            f"labels must be < n_classes={n_classes}; y[{i}] = {y[i].item()!r}"
        )
    out = np.zeros((len(idx), n_classes), dtype=dtype)
    out[np.arange(len(idx)), idx] = 1
    return out
