"""Benchmark data: the MNIST training set, or random data of the same shape.

Self-contained on purpose: the benchmark must not depend on fastnn's own
loader (it is one of the things being measured/tested), so the IDX decoder
here is a minimal gzip + numpy one.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["mnist_like", "data_source", "read_idx"]

N_FEATURES = 784
N_CLASSES = 10
_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"

# IDX type codes -> numpy big-endian dtypes (only ubyte is used by MNIST).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Decode one IDX file (optionally ``.gz``) into a numpy array.

    Parameters
    ----------
    path : str or Path
        File in the IDX format (magic ``0x0000TTDD``: type code TT, DD dims,
        then DD big-endian uint32 sizes, then the data).

    Returns
    -------
    ndarray
        Array of shape given by the header, native byte order.

    Raises
    ------
    ValueError
        If the header is malformed or the payload size does not match it.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: payload is {len(raw) - offset} bytes, header says {expected}")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory, stem):
    for name in (stem + ".gz", stem):
        p = Path(directory) / name
        if p.is_file():
            return p
    return None


def _mnist_dir():
    d = os.environ.get("FASTNN_DATA")
    if not d:
        return None
    if _find(d, _TRAIN_IMAGES) and _find(d, _TRAIN_LABELS):
        return Path(d)
    # FASTNN_DATA may point at the data root holding an ``mnist/`` folder.
    sub = Path(d) / "mnist"
    if _find(sub, _TRAIN_IMAGES) and _find(sub, _TRAIN_LABELS):
        return sub
    return None


@functools.lru_cache(maxsize=None)
def _load_train(directory):
    images = read_idx(_find(directory, _TRAIN_IMAGES))
    labels = read_idx(_find(directory, _TRAIN_LABELS))
    if images.ndim != 3 or images.shape[1] * images.shape[2] != N_FEATURES:
        raise ValueError(f"{directory}: expected 28x28 images, got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{directory}: {labels.shape[0]} labels for {images.shape[0]} images")
    X = images.reshape(images.shape[0], N_FEATURES).astype(np.float32)
    X *= np.float32(1.0 / 255.0)
    return X, labels.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _mnist_like(n, seed, directory):
    if directory is not None:
        X, y = _load_train(directory)
        if n > X.shape[0]:
            raise ValueError(f"asked for {n} samples, MNIST train has {X.shape[0]}")
        X, y = np.ascontiguousarray(X[:n]), y[:n].copy()
    else:
        rng = np.random.default_rng(seed)
        X = rng.random((n, N_FEATURES), dtype=np.float32)
        y = rng.integers(0, N_CLASSES, size=n, dtype=np.int64)
    # Shared through the cache: make accidental in-place edits fail loudly.
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def mnist_like(n=60000, seed=0):
    """MNIST training data, or a random stand-in of the same shape.

    Parameters
    ----------
    n : int, default 60000
        Number of samples (the first ``n`` MNIST training images).
    seed : int, default 0
        Seed of the random stand-in; unused for real MNIST.

    Returns
    -------
    X : ndarray of float32, shape (n, 784)
        Pixels scaled to [0, 1], C-contiguous, read-only (cached).
    y : ndarray of int64, shape (n,)
        Labels in 0..9, read-only (cached).

    Notes
    -----
    Real data is used when the environment variable ``FASTNN_DATA`` names a
    directory holding ``train-images-idx3-ubyte[.gz]`` and
    ``train-labels-idx1-ubyte[.gz]`` (directly or in ``mnist/``). Results are
    cached in-process per ``(n, seed, directory)``; see :func:`data_source`.
    """
    n = int(n)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return _mnist_like(n, int(seed), _mnist_dir())


def data_source():
    """Where :func:`mnist_like` gets its data: ``"mnist:<dir>"`` or ``"random"``."""
    d = _mnist_dir()
    return f"mnist:{d}" if d is not None else "random"
