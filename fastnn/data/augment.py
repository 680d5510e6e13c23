"""Data augmentation for images: random shifts, small rotations, Gaussian noise.

Each epoch sees a freshly perturbed copy of the training images, so the
network learns that a digit moved by a pixel or tilted by a few degrees is
still the same digit::

    from fastnn.data.augment import Augmenter, RandomShift, RandomRotation, GaussianNoise

    augment = Augmenter([RandomShift(2), RandomRotation(10), GaussianNoise(0.05)], seed=0)
    X_aug = augment(X_train)            # same shape and dtype, a new random draw every call

Images are rows of ``X``: ``(n, H*W)`` flat (as :func:`fastnn.data.load_mnist`
gives them), ``(n, H, W)`` or one-channel NHWC ``(n, H, W, 1)`` (``load_mnist(flatten=False)``,
what ``Conv2D`` takes); the output has the same shape and dtype.
``image_shape`` defaults to ``X.shape[1:]`` for 3-D input and to a square
for flat input (784 features -> 28 x 28). The images must be floating point
(scale 8-bit pixels first, e.g. :func:`fastnn.data.scale_to_unit`) and finite.

Training with augmentation
--------------------------
The trainer's compiled loop consumes whole arrays, so augmentation happens
once per epoch, between ``fit`` calls::

    for X_epoch, y_epoch in augment_epochs(X_train, y_train, augment, epochs=10):
        trainer.fit(X_epoch, y_epoch, epochs=1, validation_data=(X_val, y_val))

The optimizer state, the epoch counter and learning-rate schedules carry
over between ``fit`` calls; callbacks that keep state across epochs
(``EarlyStopping``, ``ReduceLROnPlateau``) start afresh in each call, so
use ``ModelCheckpoint`` or compare ``val_loss`` yourself in that loop.
``augment_epochs`` reuses one output buffer: each epoch's array replaces
the previous one (copy it to keep it).

Cost: work is done in chunks of ``batch_size`` rows into preallocated
buffers. A rotation applies one precomputed bilinear map per angle (angles
are drawn on a grid of ``resolution`` degrees, 0.5 by default, so there are
at most ``2 * max_degrees / resolution + 1`` maps). Shifts and rotations
run in small compiled Numba loops (compiled once, ~1 s, then loaded from
Numba's cache), or with ``backend='reference'`` in numpy, grouping the
images of a chunk that share a shift or an angle (no per-image Python loop;
the same results, 2-3x slower). Noise is a vectorized numpy Box-Muller
draw. On 60,000 MNIST images (one core of a busy 2-core machine): shift
0.05 s, rotation 0.12 s, noise 0.25 s -- 0.38 s for all three (0.60 s
with the reference kernels), next to 0.85 s for a 1-thread training epoch
of a 784-256-128-10 MLP at batch 128, or ~0.5 s with 2 threads on a quiet
machine (``examples/mnist_augmented.py`` prints the ratio it measures).

Randomness: an :class:`Augmenter` owns a ``numpy.random.Generator``
(``seed``: None, an int or a Generator). The same seed gives the same
sequence of outputs, independent of ``batch_size``; each transform draws
from its own child stream, so adding a transform to the end of a pipeline
does not change what the earlier ones do.
"""
from __future__ import annotations

import numbers
import os
from types import SimpleNamespace

import numpy as np

from ..errors import BackendUnavailableError
from ..kernels import available_backends, get_backend

__all__ = ["Augmenter", "Transform", "RandomShift", "RandomRotation", "GaussianNoise",
           "random_shift", "random_rotation", "gaussian_noise", "shift", "rotate", "augment_epochs",
           "get_kernels"]

_DEFAULT_BATCH = 1024


# --------------------------------------------------------------------------- validation
def _as_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")


def _check_real(value, name, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"in [{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return value


def _check_image_shape(image_shape):
    try:
        shape = tuple(int(s) for s in image_shape)
        ok = len(shape) == 2 and all(s >= 1 for s in shape) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in image_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image_shape must be two positive integers (height, width), got {image_shape!r}")
    return shape


def _check_images(X, image_shape):
    """``(X as an array, its 2-D (n, H*W) view, (H, W))``, or a clear error."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"X must be an array of images, not {type(X).__name__}")
    X = np.asarray(X)
    if X.dtype.kind != "f":
        hint = (" (scale 8-bit pixels to [0, 1] first, e.g. fastnn.data.scale_to_unit)"
                if X.dtype.kind in "biu" else "")
        raise TypeError(f"X must hold floating-point images, got dtype {X.dtype}{hint}")
    if X.ndim == 4 and X.shape[3] != 1:
        raise ValueError(f"X has images of {X.shape[3]} channels (shape {X.shape}); the transforms take "
                         f"one-channel images (n, H, W, 1), (n, H, W) or (n, H*W)")
    if X.ndim in (3, 4):  # (n, H, W) or NHWC with one channel, as load_mnist(flatten=False) gives
        shape = X.shape[1:3] if image_shape is None else _check_image_shape(image_shape)
        if tuple(X.shape[1:3]) != tuple(shape):
            raise ValueError(f"X has images of shape {X.shape[1:3]} but image_shape is {tuple(shape)}")
    elif X.ndim == 2:
        if image_shape is None:
            side = int(round(np.sqrt(X.shape[1])))
            if side * side != X.shape[1] or side == 0:
                raise ValueError(f"X has {X.shape[1]} features, not a square image: pass image_shape=(H, W)")
            shape = (side, side)
        else:
            shape = _check_image_shape(image_shape)
            if shape[0] * shape[1] != X.shape[1]:
                raise ValueError(f"X has {X.shape[1]} features but image_shape {shape} has "
                                 f"{shape[0] * shape[1]} pixels")
    else:
        raise ValueError(f"X must be (n, H*W) flat images, (n, H, W) or (n, H, W, 1), got shape {X.shape}")
    shape = (int(shape[0]), int(shape[1]))
    return X, X.reshape(X.shape[0], shape[0] * shape[1]), shape


def _check_finite(chunk, offset):
    if not np.isfinite(chunk).all():
        bad = np.argwhere(~np.isfinite(chunk))[0]
        kind = "NaN" if np.isnan(chunk[tuple(bad)]) else "Inf"
        raise ValueError(f"X contains {kind} (first in image {offset + int(bad[0])}, pixel {int(bad[1])})")


def _check_out(out, X):
    if out is None:
        return np.empty(X.shape, X.dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != X.shape or out.dtype != X.dtype:
        raise ValueError(f"out must have the shape and dtype of X, {X.shape} {X.dtype}; "
                         f"got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")
    if np.shares_memory(out, X) and not (out.__array_interface__["data"][0] == X.__array_interface__["data"][0]
                                         and out.strides == X.strides):
        raise ValueError("out overlaps X partially; pass a separate array or X itself")
    return out


# --------------------------------------------------------------------------- kernels
# The shift/rotate kernels are ops of fastnn.kernels (the ``image`` family of each backend:
# reference = numpy, numba = a compiled loop with the same arithmetic, so identical results;
# cython declares the numba fallback in fastnn.kernels.spec).
def get_kernels(backend=None):
    """The augmentation kernels: ``'numba'`` (default when Numba imports) or ``'reference'`` (numpy).

    ``None`` follows ``FASTNN_BACKEND``: ``reference`` selects the numpy
    kernels, anything else the Numba ones. Their results are identical;
    the Numba kernels are ~2-3x faster (compiled once, then cached).
    Returns a namespace with ``NAME``, ``shift`` and ``rotate`` (a thin
    compatibility view of ``fastnn.kernels.get_backend(name).image_shift`` /
    ``image_rotate``).
    """
    if backend is None:
        backend = "reference" if os.environ.get("FASTNN_BACKEND", "").lower() == "reference" else "auto"
    if backend not in ("auto", "numba", "reference"):
        raise ValueError(f"backend must be 'numba', 'reference' or None, got {backend!r}")
    if backend == "auto":
        backend = "numba" if "numba" in available_backends() else "reference"
    if backend not in _VIEWS:
        try:
            kern = get_backend(backend)
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(f"the numba augmentation kernels need numba ({exc}); "
                                          f"pip install numba") from exc
        _VIEWS[backend] = SimpleNamespace(NAME=kern.NAME, shift=kern.image_shift, rotate=kern.image_rotate)
    return _VIEWS[backend]


_VIEWS = {}


class _RotationMaps:
    """Bilinear inverse maps of rotations by ``angles`` degrees about the image centre, stacked.

    For angle ``a = angles[c]`` and output pixel ``p``: ``index[c, k, p]``
    (k = 0..3) are the flat indices of the four source pixels around the
    point that the rotation by ``a`` (counter-clockwise as displayed) brings
    to ``p``, ``weight[c, k, p]`` their bilinear weights (0 for neighbours
    outside the image), and ``fill_term[c, p] = fill * (1 - sum_k weight)``
    the share of ``fill`` for what came from outside the frame.
    """

    def __init__(self, angles, shape, dtype, fill):
        H, W = shape
        self.angles = np.asarray(angles, dtype=np.float64)
        t = np.deg2rad(self.angles)[:, None]
        c, s = np.cos(t), np.sin(t)
        cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
        r, col = np.divmod(np.arange(H * W), W)
        x, y_up = col - cx, cy - r                    # display coordinates: x right, y up
        src_c = c * x + s * y_up + cx                 # the inverse rotation (by -a) of each output pixel
        src_r = cy - (-s * x + c * y_up)
        r0, c0 = np.floor(src_r), np.floor(src_c)
        fr, fc = src_r - r0, src_c - c0
        r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
        k = len(self.angles)
        self.index = np.empty((k, 4, H * W), np.int32)
        weight = np.empty((k, 4, H * W), np.float64)
        for j, (dr, dc, w) in enumerate(((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                                         (1, 0, fr * (1 - fc)), (1, 1, fr * fc))):
            rr, cc = r0 + dr, c0 + dc
            inside = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
            self.index[:, j] = np.where(inside, rr * W + cc, 0)   # outside: weight 0 on a valid index
            weight[:, j] = np.where(inside, w, 0.0)
        self.weight = weight.astype(dtype)
        self.has_fill = fill != 0.0
        self.fill_term = (fill * (1.0 - weight.sum(axis=1))).astype(dtype)


def _standard_normal_into(dst, streams, scratch):
    """Fill ``dst`` (m, cols) with standard normal values by Box-Muller, row by row.

    ``Generator.standard_normal`` in float32 costs ~10 ns a value here
    (0.5 s for 60,000 MNIST images); Box-Muller from two uniform draws with
    numpy's SIMD log/sqrt/sin/cos is ~2.5x faster and exact up to the
    uniforms' resolution (float32: tails cut at 5.8 sigma). Row ``i`` pairs
    its first ``ceil(cols/2)`` values (cosines) with the rest (sines).
    """
    m, cols = dst.shape
    half = (cols + 1) // 2
    radius = scratch[0].reshape(-1)[:m * half].reshape(m, half)
    angle = scratch[1].reshape(-1)[:m * half].reshape(m, half)
    streams[0].random(dtype=dst.dtype, out=radius)
    np.subtract(1, radius, out=radius)                 # (0, 1]: log is finite
    np.log(radius, out=radius)
    radius *= -2
    np.sqrt(radius, out=radius)
    streams[1].random(dtype=dst.dtype, out=angle)
    angle *= dst.dtype.type(2 * np.pi)
    rest = cols - half
    np.sin(angle[:, :rest], out=dst[:, half:])
    dst[:, half:] *= radius[:, :rest]
    np.cos(angle, out=angle)
    np.multiply(angle, radius, out=dst[:, :half])


# --------------------------------------------------------------------------- transforms
class Transform:
    """One step of an :class:`Augmenter` pipeline.

    Subclasses implement ``draw(n, rng)``, called once per augmenter call
    with the transform's own Generator, and ``apply(src, dst, params, rng,
    ctx)``, called per chunk: it writes the transformed chunk ``src`` (2-D,
    ``(m, H*W)``) into ``dst`` (same shape, never the same memory).
    ``params`` is the chunk's rows of what ``draw`` returned when that is an
    array with one row per image, else it as is (e.g. None). ``ctx`` holds
    ``image_shape`` ``(H, W)``, ``kernels`` (see :func:`get_kernels`) and
    ``scratch``, two spare C-contiguous arrays of at least ``src``'s shape.
    """

    def check(self, image_shape):
        """Raise ValueError if the transform cannot apply to images of ``image_shape``."""

    def draw(self, n, rng):
        return None

    def apply(self, src, dst, params, rng, ctx):  # pragma: no cover - interface
        raise NotImplementedError


class RandomShift(Transform):
    """Move each image by a random whole number of pixels, ``-max_shift..max_shift`` on each axis.

    Pixels shifted in from outside the frame are ``fill``. Each image draws
    its vertical and horizontal shift independently and uniformly.
    """

    def __init__(self, max_shift, fill=0.0):
        if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative integer, got {max_shift!r}")
        self.max_shift = int(max_shift)
        self.fill = _check_real(fill, "fill")

    def check(self, image_shape):
        if self.max_shift >= min(image_shape):
            raise ValueError(f"max_shift={self.max_shift} would move {image_shape[0]}x{image_shape[1]} images "
                             f"out of the frame; use less than {min(image_shape)}")

    def draw(self, n, rng):
        return rng.integers(-self.max_shift, self.max_shift + 1, size=(n, 2))

    def apply(self, src, dst, params, rng, ctx):
        ctx.kernels.shift(src, dst, params[:, 0], params[:, 1], *ctx.image_shape, self.fill)

    def __repr__(self):
        return f"RandomShift({self.max_shift}" + (f", fill={self.fill:g})" if self.fill else ")")


class RandomRotation(Transform):
    """Rotate each image about its centre by a random angle in ``[-max_degrees, max_degrees]`` (bilinear).

    Angles are drawn uniformly from a grid of ``resolution`` degrees (0
    included), so one precomputed map serves every image with the same angle. Corners
    rotated in from outside the frame are ``fill``. Positive angles turn the
    image counter-clockwise as displayed (row 0 at the top).
    """

    def __init__(self, max_degrees, fill=0.0, resolution=0.5):
        self.max_degrees = _check_real(max_degrees, "max_degrees", 0.0, 180.0)
        self.fill = _check_real(fill, "fill")
        self.resolution = _check_real(resolution, "resolution", 0.0)
        if self.resolution <= 0:
            raise ValueError(f"resolution must be > 0, got {resolution!r}")
        half = int(np.floor(self.max_degrees / self.resolution + 1e-9))
        self.angles = np.arange(-half, half + 1) * self.resolution
        self._maps = {}  # (image_shape, dtype) -> _RotationMaps of self.angles

    def draw(self, n, rng):
        return rng.integers(0, len(self.angles), size=n)  # index into self.angles

    def apply(self, src, dst, params, rng, ctx):
        key = (ctx.image_shape, dst.dtype.str)
        if key not in self._maps:
            self._maps[key] = _RotationMaps(self.angles, ctx.image_shape, dst.dtype, self.fill)
        ctx.kernels.rotate(src, dst, params, self._maps[key], ctx.scratch)

    def __repr__(self):
        return f"RandomRotation({self.max_degrees:g}" + (f", fill={self.fill:g}" if self.fill else "") + ")"


class GaussianNoise(Transform):
    """Add independent Gaussian noise of standard deviation ``std`` to every pixel, then clip to ``clip``.

    ``clip=(0, 1)`` (default) keeps pixels in the range of scaled images;
    ``None`` leaves the values unclipped.
    """

    def __init__(self, std, clip=(0.0, 1.0)):
        self.std = _check_real(std, "std", 0.0)
        if clip is not None:
            try:
                lo, hi = clip
            except (TypeError, ValueError):
                raise ValueError(f"clip must be None or a pair (low, high), got {clip!r}") from None
            lo, hi = _check_real(lo, "clip[0]"), _check_real(hi, "clip[1]")
            if not lo < hi:
                raise ValueError(f"clip must be (low, high) with low < high, got {clip!r}")
            clip = (lo, hi)
        self.clip = clip

    def draw(self, n, rng):
        # two streams, radii and angles of the Box-Muller pairs: drawn row by row, so the
        # noise does not depend on how the rows are chunked
        return tuple(rng.spawn(2))

    def apply(self, src, dst, params, rng, ctx):
        if self.std > 0:
            _standard_normal_into(dst, params, ctx.scratch)
            dst *= self.std
            dst += src
        else:
            dst[...] = src
        if self.clip is not None:
            np.clip(dst, self.clip[0], self.clip[1], out=dst)

    def __repr__(self):
        return f"GaussianNoise({self.std:g}, clip={self.clip})"


# --------------------------------------------------------------------------- pipeline
class Augmenter:
    """Apply a pipeline of transforms to a batch of images, chunk by chunk, into one output array.

    Parameters
    ----------
    transforms : list of Transform
        E.g. ``[RandomShift(2), RandomRotation(10), GaussianNoise(0.05)]``,
        applied in this order.
    seed : None, int or numpy.random.Generator
        Source of randomness; an int makes the sequence of outputs reproducible.
    image_shape : (int, int), optional
        ``(H, W)``; default from ``X`` (see the module docstring).
    batch_size : int, default 1024
        Rows processed at a time (bounds the scratch memory; the result does
        not depend on it).
    backend : {'numba', 'reference'}, optional
        Kernels for shifts and rotations (see :func:`get_kernels`); the
        results are the same with either.

    Calling the augmenter, ``augmenter(X, out=None)``, returns the
    augmented images, of ``X``'s shape and dtype, in ``out`` when given
    (which may be ``X`` itself, for in-place augmentation). ``X`` is not
    modified otherwise.
    """

    def __init__(self, transforms, seed=None, *, image_shape=None, batch_size=_DEFAULT_BATCH, backend=None):
        transforms = list(transforms)
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Augmenter takes Transform objects (RandomShift, RandomRotation, GaussianNoise), "
                                f"got {t!r}")
        self.transforms = transforms
        self.rng = _as_rng(seed)
        self.image_shape = None if image_shape is None else _check_image_shape(image_shape)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.kernels = get_kernels(backend)
        self._scratch = None

    def __repr__(self):
        return f"Augmenter({self.transforms!r})"

    def _buffers(self, rows, cols, dtype):
        s = self._scratch
        if s is None or s[0].shape[0] < rows or s[0].shape[1] != cols or s[0].dtype != dtype:
            s = self._scratch = [np.empty((rows, cols), dtype) for _ in range(4)]
        return s

    def __call__(self, X, out=None):
        X, flat, shape = _check_images(X, self.image_shape)
        for t in self.transforms:
            t.check(shape)
        out = _check_out(out, X)
        out_flat = out.reshape(flat.shape)
        n, cols = flat.shape
        if n == 0:
            return out
        children = self.rng.spawn(len(self.transforms)) if self.transforms else []
        params = [t.draw(n, r) for t, r in zip(self.transforms, children)]
        bs = min(self.batch_size, n)
        stage = self._buffers(bs, cols, X.dtype)
        ctx = SimpleNamespace(image_shape=shape, kernels=self.kernels, scratch=stage[:2])
        in_place = np.shares_memory(out, X)
        for lo in range(0, n, bs):
            hi = min(lo + bs, n)
            src = flat[lo:hi]
            _check_finite(src, lo)
            if not self.transforms:
                out_flat[lo:hi] = src
                continue
            if in_place:  # the last stage writes over src: read it into a stage buffer first
                stage[2][:hi - lo] = src
                src = stage[2][:hi - lo]
            cur = src
            for i, (t, p, r) in enumerate(zip(self.transforms, params, children)):
                if i == len(self.transforms) - 1:
                    dst = out_flat[lo:hi]
                else:
                    dst = next(b[:hi - lo] for b in stage[2:] if not np.shares_memory(b, cur))
                t.apply(cur, dst, p[lo:hi] if isinstance(p, np.ndarray) else p, r, ctx)
                cur = dst
        return out


# --------------------------------------------------------------------------- functions
def random_shift(X, max_shift, image_shape=None, rng=None, *, fill=0.0, out=None, backend=None):
    """Each image moved by a random whole number of pixels in ``[-max_shift, max_shift]`` per axis.

    Parameters
    ----------
    X : array of shape (n, H*W) or (n, H, W), floating point
    max_shift : int
        Largest shift in pixels (less than the image side).
    image_shape : (int, int), optional
        Default: ``X.shape[1:]`` or a square.
    rng : None, int or numpy.random.Generator
    fill : float, default 0
        Value of the pixels shifted in from outside.
    out : array, optional
        Preallocated result (``X``'s shape and dtype; may be ``X``).
    backend : {'numba', 'reference'}, optional
        See :func:`get_kernels`.

    Returns
    -------
    ndarray of ``X``'s shape and dtype
    """
    return Augmenter([RandomShift(max_shift, fill)], rng, image_shape=image_shape, backend=backend)(X, out)


def random_rotation(X, max_degrees, image_shape=None, rng=None, *, fill=0.0, resolution=0.5, out=None,
                    backend=None):
    """Each image rotated about its centre by a random angle in ``[-max_degrees, max_degrees]`` (bilinear).

    Angles fall on a grid of ``resolution`` degrees; see :class:`RandomRotation`.
    Other parameters as :func:`random_shift`.
    """
    return Augmenter([RandomRotation(max_degrees, fill, resolution)], rng, image_shape=image_shape,
                     backend=backend)(X, out)


def gaussian_noise(X, std, clip=(0.0, 1.0), rng=None, *, image_shape=None, out=None):
    """``X`` plus Gaussian noise of standard deviation ``std``, clipped to ``clip`` (None: no clipping)."""
    return Augmenter([GaussianNoise(std, clip)], rng, image_shape=image_shape)(X, out)


class _GivenShift(Transform):
    """Shifts fixed in advance: one ``(dy, dx)`` per image."""

    def __init__(self, dy, dx, fill):
        self.dydx, self.fill = np.column_stack([dy, dx]), fill

    def draw(self, n, rng):
        return self.dydx

    def apply(self, src, dst, params, rng, ctx):
        ctx.kernels.shift(src, dst, params[:, 0], params[:, 1], *ctx.image_shape, self.fill)


class _GivenRotation(Transform):
    """Angles fixed in advance: ``angles[codes[i]]`` degrees for image ``i``."""

    def __init__(self, angles, codes, fill):
        self.angles, self.codes, self.fill = angles, codes, fill

    def draw(self, n, rng):
        return self.codes

    def apply(self, src, dst, params, rng, ctx):
        # maps for the chunk's distinct angles only: any number of angles in bounded memory
        present, local = np.unique(params, return_inverse=True)
        maps = _RotationMaps(self.angles[present], ctx.image_shape, dst.dtype, self.fill)
        ctx.kernels.rotate(src, dst, local.reshape(-1), maps, ctx.scratch)


def _per_image(values, n, name, kind):
    values = np.asarray(values)
    if values.dtype.kind not in kind or values.ndim > 1 or (values.ndim == 1 and len(values) != n):
        what = "integers" if kind == "iu" else "numbers"
        raise ValueError(f"{name} must be {what}: one, or one per image ({n}), got {values!r}")
    return np.broadcast_to(values, (n,))


def shift(X, dy, dx, image_shape=None, *, fill=0.0, out=None, backend=None):
    """Images moved down by ``dy`` and right by ``dx`` whole pixels (one value, or one per image).

    Pixels moved in from outside the frame are ``fill``. ``out`` as in
    :func:`random_shift`; ``backend`` as in :class:`Augmenter`.
    """
    n = len(np.asarray(X)) if np.ndim(X) else 0
    dy = _per_image(dy, n, "dy", "iu").astype(np.int64)
    dx = _per_image(dx, n, "dx", "iu").astype(np.int64)
    return Augmenter([_GivenShift(dy, dx, _check_real(fill, "fill"))], 0, image_shape=image_shape,
                     backend=backend)(X, out)


def rotate(X, degrees, image_shape=None, *, fill=0.0, out=None, backend=None):
    """Images rotated by ``degrees`` (one angle, or one per image), counter-clockwise as displayed, bilinear.

    Images sharing an angle share one bilinear map: each distinct angle
    costs one map (use :class:`RandomRotation` for random angles on a grid).
    """
    n = len(np.asarray(X)) if np.ndim(X) else 0
    degrees = _per_image(degrees, n, "degrees", "iuf").astype(np.float64)
    if not np.isfinite(degrees).all():
        raise ValueError("degrees must be finite")
    angles, codes = np.unique(degrees, return_inverse=True)
    rotation = _GivenRotation(angles, codes.reshape(-1), _check_real(fill, "fill"))
    return Augmenter([rotation], 0, image_shape=image_shape, backend=backend)(X, out)


def augment_epochs(X, y, augmenter, epochs, *, out=None):
    """Yield ``(augmenter(X), y)`` once per epoch, for ``epochs`` epochs, reusing one output array.

    ::

        for X_epoch, y_epoch in augment_epochs(X_train, y_train, augmenter, epochs=10):
            trainer.fit(X_epoch, y_epoch, epochs=1)

    Each yielded array is overwritten by the next epoch's: copy it to keep it.
    """
    if not callable(augmenter):
        raise TypeError(f"augmenter must be callable (an Augmenter), got {augmenter!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    X = np.asarray(X)
    if np.ndim(y) == 0 or len(y) != len(X):
        raise ValueError(f"len(X) = {len(X)} but len(y) = {np.size(y) if np.ndim(y) else 0}")
    buffer = np.empty(X.shape, X.dtype) if out is None else out
    for _ in range(int(epochs)):
        yield augmenter(X, out=buffer), y
