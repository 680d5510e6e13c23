"""Argument adapters shared by the Cython sequence families (``rnn``, ``attention``, ``embedding``).

The extension's sequence kernels take C-contiguous buffers of one float type,
an explicit ``has_mask`` flag beside a mask buffer, and the thread count.
Inputs already in that form pass through untouched (no copy); anything else
is copied in, and outputs that are not are computed into a contiguous buffer
and copied back, so every op accepts what the reference accepts.
"""
import threading

import numpy as np

from ..._config import get_num_threads
from ._adapt import _k

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_PLACEHOLDERS = {}
_WORKSPACES = threading.local()  # per calling thread: concurrent calls (predict threads) never share one


def threads():
    """Threads for a kernel call: fastnn's knob (:func:`fastnn.set_num_threads`), capped by the calling
    thread's OpenMP setting (a row shard of the per-layer path sets 1: no nested teams)."""
    return max(1, min(get_num_threads(), _k.omp_max_threads()))


def dtype_of(a):
    """The float type the kernel computes in: the output's (float64 for anything not float32/64)."""
    return a.dtype if a.dtype in _FLOATS else np.dtype(np.float64)


def placeholder(dt, ndim):
    """A one-element buffer standing for an absent (None) argument; the kernels never read or write it
    (writable only because an output argument's memoryview must be)."""
    key = (np.dtype(dt), ndim)
    if key not in _PLACEHOLDERS:
        _PLACEHOLDERS[key] = np.zeros((1,) * ndim, dt)
    return _PLACEHOLDERS[key]


def workspace(shape, dt):
    """A C-contiguous ``dt`` scratch array of ``shape`` for the calling thread, kept between calls
    (allocated once per shape, not per batch); its contents are undefined."""
    cache = getattr(_WORKSPACES, "arrays", None)
    if cache is None:
        cache = _WORKSPACES.arrays = {}
    key = (tuple(int(s) for s in shape), np.dtype(dt))
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= 8:  # a few layer shapes per model: do not keep every shape ever seen
            cache.clear()
        buf = cache[key] = np.empty(key[0], key[1])
    return buf


def inp(a, dt):
    """``a`` as a C-contiguous ``dt`` array (itself when it already is one)."""
    return np.ascontiguousarray(a, dtype=dt)


def mask_args(mask, dt):
    """``(mask buffer, has_mask)``: a placeholder and False when there is no mask."""
    if mask is None:
        return placeholder(dt, 2), False
    return inp(mask, dt), True


class Outs:
    """Writable C-contiguous buffers for the output arguments; :meth:`back` copies adapted ones back.

    ``None`` outputs (an input gradient not needed) become a placeholder.
    """

    def __init__(self, dt, *outs, ndims=None):
        self.bufs, self._back = [], []
        for q, a in enumerate(outs):
            if a is None:
                self.bufs.append(placeholder(dt, ndims[q] if ndims else 3))
            elif isinstance(a, np.ndarray) and a.dtype == dt and a.flags.c_contiguous and a.flags.writeable:
                self.bufs.append(a)
            else:
                buf = np.ascontiguousarray(a, dtype=dt)
                self.bufs.append(buf)
                self._back.append((buf, a))

    def back(self):
        for buf, dest in self._back:
            dest[...] = buf
