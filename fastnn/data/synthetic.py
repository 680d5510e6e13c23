"""Small generated problems for learning, demos and tests.

The toy problems from the learners' guides fastnn grew from: XOR, the nnfs
spiral, points above/below a sine curve, a checkerboard, naming RGB
colours, sklearn-style circles and moons, and a linear regression with
known true weights (the "employee bonus" exercise).

Every generator

* takes ``seed`` -- ``None`` (fresh entropy), an ``int``, or a
  ``numpy.random.Generator`` (used and advanced in place) -- and gives the
  same data for the same integer seed;
* returns ``X`` as float32 of shape ``(n_samples, n_features)``;
* returns classification labels ``y`` as int64 of shape ``(n_samples,)``
  (``0 .. n_classes-1``), regression targets as float32 of shape
  ``(n_samples, 1)``;
* is vectorized numpy (no Python loop over samples).

Classes are balanced: exactly equal counts, or differing by at most one
when ``n_samples`` does not divide evenly. The accuracies quoted in the
docstrings were measured on held-out data with a one- or two-hidden-layer
MLP (ReLU, Adam) on default settings; they are a guide to what "trained"
looks like, not a promise.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int_min

__all__ = [
    "RGB_COLOR_NAMES",
    "RGB_COLOR_VALUES",
    "xor",
    "spiral_data",
    "sine",
    "checkerboard",
    "rgb_colors",
    "circles",
    "moons",
    "linear_regression",
]

#: Class names of :func:`rgb_colors`; label ``k`` is ``RGB_COLOR_NAMES[k]``.
RGB_COLOR_NAMES = (
    "black", "white", "gray", "red", "green",
    "blue", "yellow", "cyan", "magenta", "orange",
)

#: Reference RGB value in [0, 1] of each named colour, shape (10, 3), float32.
RGB_COLOR_VALUES = np.array(
    [
        [0.0, 0.0, 0.0],  # black
        [1.0, 1.0, 1.0],  # white
        [0.5, 0.5, 0.5],  # gray
        [1.0, 0.0, 0.0],  # red
        [0.0, 1.0, 0.0],  # green
        [0.0, 0.0, 1.0],  # blue
        [1.0, 1.0, 0.0],  # yellow
        [0.0, 1.0, 1.0],  # cyan
        [1.0, 0.0, 1.0],  # magenta
        [1.0, 0.5, 0.0],  # orange
    ],
    dtype=np.float32,
)
RGB_COLOR_VALUES.setflags(write=False)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def _rng(seed) -> np.random.Generator:
    """A Generator from None, an int, or an existing Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")


def _check_count(value, name: str, minimum: int = 1) -> int:
    return check_int_min(value, name, minimum, verb="got")


def _check_nonnegative(value, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _class_quotas(n_samples: int, n_classes: int) -> np.ndarray:
    """Per-class counts summing to n_samples, differing by at most one."""
    quotas = np.full(n_classes, n_samples // n_classes, dtype=np.int64)
    quotas[: n_samples % n_classes] += 1
    return quotas


def _balanced_by_rejection(n_samples: int, n_classes: int, draw, label, rng):
    """Draw points uniformly, keep the first ``quota[k]`` of each class k.

    Keeps the distribution within each class uniform over its region while
    making the class counts exact. ``draw(rng, m)`` returns m candidate
    points; ``label(points)`` returns their int labels.
    """
    quotas = _class_quotas(n_samples, n_classes)
    kept_points, kept_labels = [], []
    still_needed = quotas.copy()
    batch = max(64, 2 * n_samples)
    for _ in range(1000):  # rounds of vectorized draws, not samples
        points = draw(rng, batch)
        labels = label(points)
        # Rank of each candidate within its class, in draw order.
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        class_start = np.searchsorted(sorted_labels, np.arange(n_classes))
        rank_in_class = np.empty(batch, dtype=np.int64)
        rank_in_class[order] = np.arange(batch) - class_start[sorted_labels]
        keep = rank_in_class < still_needed[labels]
        kept_points.append(points[keep])
        kept_labels.append(labels[keep])
        still_needed -= np.bincount(labels[keep], minlength=n_classes)
        if not still_needed.any():
            break
    else:  # pragma: no cover - a class region of (near) zero area
        raise RuntimeError("could not fill every class; a class region is too small")
    X = np.concatenate(kept_points)
    y = np.concatenate(kept_labels)
    shuffle = rng.permutation(n_samples)
    return X[shuffle], y[shuffle]


def _finish(X, y, rng, shuffle: bool):
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if shuffle:
        order = rng.permutation(y.size)
        X, y = X[order], y[order]
    return X, y


# --------------------------------------------------------------------------
# Classification problems
# --------------------------------------------------------------------------

def xor(n_samples: int = 4, *, noise: float = 0.0, seed=None):
    """The XOR problem: label 1 exactly when one of the two inputs is 1.

    With ``n_samples=4`` (the default) this is the truth table in order:
    ``X = [[0, 0], [0, 1], [1, 0], [1, 1]]``, ``y = [0, 1, 1, 0]``. A larger
    ``n_samples`` cycles through the four corners (balanced to within one per
    corner), adds Gaussian jitter of standard deviation ``noise`` to the
    inputs, and shuffles; each point keeps its corner's label, so the
    classes stay separable while ``noise`` is below about 0.25.

    XOR is the smallest problem no linear model can solve: a single hidden
    layer of 2-4 units (tanh or sigmoid, lr ~0.1-1, a few hundred to 1000
    epochs) reaches 100%, though with plain gradient descent some
    initializations stall at 75% or 50% -- rerun with another seed.

    Parameters
    ----------
    n_samples : int, default=4
        Number of points.
    noise : float, default=0.0
        Standard deviation of the Gaussian jitter added to the inputs.
    seed : None, int or numpy.random.Generator
        Source of randomness (unused for the noiseless 4-point table).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_count(n_samples, "n_samples")
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    corner_index = np.arange(n_samples) % 4
    X = corners[corner_index]
    y = np.array([0, 1, 1, 0])[corner_index]
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return _finish(X, y, rng, shuffle=n_samples > 4)


def spiral_data(samples: int, classes: int, *, noise: float = 0.2, seed=None,
                shuffle: bool = False):
    """The nnfs spiral: ``classes`` interleaved arms of ``samples`` points each.

    For class ``k`` and point ``i``: radius ``r = linspace(0, 1, samples)[i]``,
    ``t = linspace(4k, 4(k+1), samples)[i] + noise * N(0, 1)``, and
    ``X = (r sin(2.5 t), r cos(2.5 t))`` -- the ``create_data`` of
    "Neural Networks from Scratch" (nnfs.io), points ordered class by class
    unless ``shuffle``. So arm ``k`` sits at angle ``10 k + 10 r`` (measured
    from the +y axis towards +x), plus noise.

    Not linearly separable (a linear softmax gets ~40% with 3 classes). A
    2-64-3 ReLU MLP with Adam (lr 0.02) reaches ~90% training accuracy on
    3 x 100 points at noise 0.2 after a few thousand steps, but only ~70-75%
    on held-out points (the noisy arms overlap); 3 x 1000 points give ~88%
    held-out, and noise 0.1 with two hidden layers of 64 gives ~95%.

    Parameters
    ----------
    samples : int
        Points per class.
    classes : int
        Number of arms (classes).
    noise : float, default=0.2
        Standard deviation of the Gaussian noise added to ``t`` (the angle
        before the factor 2.5).
    seed : None, int or numpy.random.Generator
        Source of randomness.
    shuffle : bool, default=False
        Shuffle the points; by default they are grouped by class, as nnfs.

    Returns
    -------
    X : ndarray of shape (samples * classes, 2), float32
    y : ndarray of shape (samples * classes,), int64
    """
    samples = _check_count(samples, "samples")
    classes = _check_count(classes, "classes")
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    y = np.repeat(np.arange(classes), samples)
    radius = np.tile(np.linspace(0.0, 1.0, samples), classes)
    # linspace(4k, 4(k+1)) == 4k + linspace(0, 4): one vectorized expression for all arms.
    t = np.tile(np.linspace(0.0, 4.0, samples), classes) + 4.0 * y
    t = t + rng.standard_normal(t.size) * noise
    X = np.column_stack([radius * np.sin(t * 2.5), radius * np.cos(t * 2.5)])
    return _finish(X, y, rng, shuffle)


def sine(n_samples: int = 1000, *, amplitude: float = 0.8, periods: float = 1.0,
         noise: float = 0.0, seed=None):
    """Points in the square [-1, 1]^2 labelled by which side of a sine curve they lie.

    ``y = 1`` when ``x2 > amplitude * sin(pi * periods * x1)``, else 0: one
    full sine period across the square by default. Points are uniform within
    each class region and the classes are balanced exactly. ``noise`` adds
    Gaussian jitter to the inputs after labelling (points near the curve
    then cross it, capping the reachable accuracy).

    A linear model gets ~86%; an MLP 2-16-16-2 (ReLU, Adam, lr 0.01)
    reaches ~98% held-out accuracy on 1000 points within a few hundred
    epochs (the guides budget 1000-3000 epochs of plain SGD). ``periods=2``
    is harder (~95%).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    amplitude : float, default=0.8
        Height of the curve (keep it below 1 so both classes exist everywhere).
    periods : float, default=1.0
        Number of sine periods across ``x1`` in [-1, 1]; more is harder.
    noise : float, default=0.0
        Standard deviation of the Gaussian jitter added to the inputs.
    seed : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_count(n_samples, "n_samples", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    amplitude = float(amplitude)
    if not 0 <= amplitude < 1:
        raise ValueError(f"amplitude must be in [0, 1) so both classes fit in the square, got {amplitude}")
    rng = _rng(seed)

    def draw(generator, m):
        return generator.uniform(-1.0, 1.0, size=(m, 2))

    def label(points):
        return (points[:, 1] > amplitude * np.sin(np.pi * periods * points[:, 0])).astype(np.int64)

    X, y = _balanced_by_rejection(n_samples, 2, draw, label, rng)
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return _finish(X, y, rng, shuffle=False)


def checkerboard(n_samples: int = 1000, tiles: int = 4, *, noise: float = 0.0, seed=None):
    """Points in [-1, 1]^2 coloured like a ``tiles`` x ``tiles`` checkerboard.

    The square is cut into ``tiles`` equal columns and rows; the label is
    ``(column + row) % 2``. Points are uniform within each class and the two
    classes are balanced exactly. ``noise`` adds Gaussian jitter to the
    inputs after labelling.

    The hardest of the 2-D toys: every tile boundary must be learned, and a
    linear model is at chance (~50%). An MLP 2-64-64-2 (ReLU, Adam, lr
    0.01) reaches ~93% held-out accuracy on 1000 points of the 4 x 4 board
    and ~97% on 2000 after a few hundred epochs -- the guides budget
    3000-5000 epochs of plain SGD. Accuracy drops as ``tiles`` grows unless
    data and width grow with it.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    tiles : int, default=4
        Tiles per side.
    noise : float, default=0.0
        Standard deviation of the Gaussian jitter added to the inputs.
    seed : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_count(n_samples, "n_samples", minimum=2)
    tiles = _check_count(tiles, "tiles", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)

    def draw(generator, m):
        return generator.uniform(-1.0, 1.0, size=(m, 2))

    def label(points):
        # Clip so that a point exactly at +1 falls in the last tile.
        cell = np.minimum(np.floor((points + 1.0) * (tiles / 2.0)), tiles - 1).astype(np.int64)
        return (cell[:, 0] + cell[:, 1]) % 2

    X, y = _balanced_by_rejection(n_samples, 2, draw, label, rng)
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return _finish(X, y, rng, shuffle=False)


def rgb_colors(n_samples: int = 1000, *, noise: float = 0.0, balanced: bool = True, seed=None):
    """Name the colour of an RGB triple: the nearest of :data:`RGB_COLOR_NAMES`.

    Inputs are RGB values in [0, 1]^3; the label ``k`` is the index of the
    reference colour in :data:`RGB_COLOR_VALUES` (black, white, gray, red,
    green, blue, yellow, cyan, magenta, orange) nearest in Euclidean
    distance. The classes are the cells of that Voronoi partition: gray owns
    the middle ~47% of the cube, red and yellow ~4.5% each.

    With ``balanced=True`` (default) points are uniform within each cell and
    every class gets an equal share; with ``balanced=False`` they are uniform
    over the cube and the counts follow the cell volumes. ``noise`` adds
    Gaussian jitter after labelling, clipped back into [0, 1].

    An MLP 3-32-32-10 (ReLU, Adam, lr 0.01) reaches ~96-97% held-out
    accuracy on 2000 balanced points. Nearest-colour cells are convex, so
    even a linear softmax can represent the rule exactly (class scores
    ``2 c.x - |c|^2``); regularized logistic regression gets ~91%.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    noise : float, default=0.0
        Standard deviation of the Gaussian jitter added to the inputs.
    balanced : bool, default=True
        Equal class counts (True) or uniform over the cube (False).
    seed : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_samples, 3), float32
        RGB values in [0, 1].
    y : ndarray of shape (n_samples,), int64
        Index into :data:`RGB_COLOR_NAMES`.
    """
    n_samples = _check_count(n_samples, "n_samples")
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    references = RGB_COLOR_VALUES.astype(np.float64)

    def draw(generator, m):
        return generator.uniform(0.0, 1.0, size=(m, 3))

    def label(points):
        # ||p - c||^2 = ||p||^2 - 2 p.c + ||c||^2; ||p||^2 is common to all c.
        return np.argmin((references ** 2).sum(axis=1) - 2.0 * points @ references.T, axis=1)

    if balanced:
        X, y = _balanced_by_rejection(n_samples, len(RGB_COLOR_NAMES), draw, label, rng)
    else:
        X = draw(rng, n_samples)
        y = label(X)
    if noise > 0:
        X = np.clip(X + rng.normal(0.0, noise, size=X.shape), 0.0, 1.0)
    return _finish(X, y, rng, shuffle=False)


def circles(n_samples: int = 1000, *, noise: float = 0.0, factor: float = 0.5, seed=None,
            shuffle: bool = True):
    """Two concentric circles: outer (radius 1) is class 0, inner (radius ``factor``) class 1.

    Same construction as ``sklearn.datasets.make_circles``: evenly spaced
    angles on each circle, then Gaussian noise of standard deviation
    ``noise`` on both coordinates. The outer circle gets ``n_samples // 2``
    points.

    A linear model is at chance (~50%); an MLP with one hidden layer of
    8+ ReLU units reaches ~100% at noise 0.05 (and ~90% at noise 0.2,
    factor 0.5, where the rings overlap).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise on the coordinates.
    factor : float, default=0.5
        Inner radius relative to the outer one, in (0, 1) (scikit-learn's
        default is 0.8, a harder problem once noise is added).
    seed : None, int or numpy.random.Generator
        Source of randomness.
    shuffle : bool, default=True
        Shuffle the points (otherwise outer circle first).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_count(n_samples, "n_samples", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}")
    rng = _rng(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    angle_outer = np.linspace(0.0, 2.0 * np.pi, n_outer, endpoint=False)
    angle_inner = np.linspace(0.0, 2.0 * np.pi, n_inner, endpoint=False)
    X = np.vstack([
        np.column_stack([np.cos(angle_outer), np.sin(angle_outer)]),
        factor * np.column_stack([np.cos(angle_inner), np.sin(angle_inner)]),
    ])
    y = np.repeat([0, 1], [n_outer, n_inner])
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return _finish(X, y, rng, shuffle)


def moons(n_samples: int = 1000, *, noise: float = 0.0, seed=None, shuffle: bool = True):
    """Two interleaving half circles ("moons"), as ``sklearn.datasets.make_moons``.

    Class 0 is the upper arc ``(cos a, sin a)``, class 1 the lower arc
    ``(1 - cos a, 0.5 - sin a)`` for ``a`` evenly spaced in [0, pi], then
    Gaussian noise of standard deviation ``noise``. Class 0 gets
    ``n_samples // 2`` points.

    A linear model gets ~86%; an MLP with one hidden layer of 16 ReLU
    units reaches ~100% at noise 0.1 and ~96% at noise 0.2.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise on the coordinates.
    seed : None, int or numpy.random.Generator
        Source of randomness.
    shuffle : bool, default=True
        Shuffle the points (otherwise class 0 first).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = _check_count(n_samples, "n_samples", minimum=2)
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    angle_upper = np.linspace(0.0, np.pi, n_upper)
    angle_lower = np.linspace(0.0, np.pi, n_lower)
    X = np.vstack([
        np.column_stack([np.cos(angle_upper), np.sin(angle_upper)]),
        np.column_stack([1.0 - np.cos(angle_lower), 0.5 - np.sin(angle_lower)]),
    ])
    y = np.repeat([0, 1], [n_upper, n_lower])
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return _finish(X, y, rng, shuffle)


# --------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------

def linear_regression(n_samples: int = 1000, n_features: int = 3, *, noise: float = 0.1,
                      weights=None, bias=None, seed=None):
    """A linear target with known true weights, to check that training recovers them.

    ``y = X @ true_w + true_b + noise * N(0, 1)`` with standard-normal
    features ``X``. This is the "employee bonus" exercise from the guides
    (e.g. bonus = w1 * performance + w2 * years + w3 * projects + base):
    generate data from weights you chose, fit, and compare the learned
    weights with the true ones.

    ``true_w`` and ``true_b`` follow fastnn's ``Dense`` layout (``W`` of
    shape ``(n_in, n_out)``, ``b`` of shape ``(n_out,)``), so after training
    a single linear layer ``Dense(n_features, 1)`` with MSE,
    ``layer.W ~ true_w`` and ``layer.b ~ true_b``. Least squares (or any
    converged linear model) recovers them to within ~``noise / sqrt(n)``;
    the best reachable MSE is ``noise ** 2`` (R^2 near 1 when the noise is
    small against ``||true_w||``).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples.
    n_features : int, default=3
        Number of input features.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to ``y``.
    weights : array-like of shape (n_features,), optional
        True weights. Default: drawn from ``seed``, uniform in [-3, 3] and
        rounded to one decimal so they are easy to read back.
    bias : float, optional
        True bias. Default: drawn like ``weights``.
    seed : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples, 1), float32
    true_w : ndarray of shape (n_features, 1), float32
    true_b : ndarray of shape (1,), float32

    Examples
    --------
    >>> X, y, true_w, true_b = linear_regression(500, 2, weights=[2.0, -1.0], bias=0.5, seed=0)
    >>> X.shape, y.shape, true_w.ravel().tolist(), true_b.tolist()
    ((500, 2), (500, 1), [2.0, -1.0], [0.5])
    """
    n_samples = _check_count(n_samples, "n_samples")
    n_features = _check_count(n_features, "n_features")
    noise = _check_nonnegative(noise, "noise")
    rng = _rng(seed)
    if weights is None:
        true_w = np.round(rng.uniform(-3.0, 3.0, size=n_features), 1)
    else:
        true_w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if true_w.size != n_features:
            raise ValueError(f"weights has {true_w.size} values but n_features={n_features}")
    true_b = np.round(rng.uniform(-3.0, 3.0), 1) if bias is None else float(bias)
    if not (np.all(np.isfinite(true_w)) and np.isfinite(true_b)):
        raise ValueError("weights and bias must be finite")
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    # Compute the target in float64 from the float32 X the caller receives, so
    # the residual y - (X @ w + b) is only the noise (plus float32 rounding of y).
    y = X.astype(np.float64) @ true_w + true_b + noise * rng.standard_normal(n_samples)
    return (X, y.astype(np.float32).reshape(-1, 1),
            true_w.astype(np.float32).reshape(-1, 1), np.array([true_b], dtype=np.float32))
