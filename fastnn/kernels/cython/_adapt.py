"""The Cython backend's import boundary and layout adapters.

Imports the compiled extension ``fastnn._ext._kernels`` (an actionable
ImportError if it is not built; an ImportError if it was built against other
integer codes than :mod:`fastnn.kernels.codes`). The extension takes
float32/float64 arrays whose rows have unit stride (any row stride, so BLAS
``ld*`` arguments absorb row-strided views without a copy). Each op calls it
directly (about 1 microsecond of overhead); only when it refuses the
arguments -- it checks dtypes, layouts and codes before computing anything --
does the op fall back to adapting them (a contiguous copy of an input, a
contiguous scratch copied back into an output, int64 indices), so every op
accepts what the reference accepts.
"""
import functools

import numpy as np

from .. import codes as _codes

from ..._ext import missing_extension_error

try:
    from fastnn._ext import _kernels as _k
except ImportError as exc:  # pragma: no cover - depends on the build
    raise missing_extension_error(exc) from exc

_mismatch = {name: (value, getattr(_codes, name, None)) for name, value in _k.CODES.items()
             if getattr(_codes, name, None) != value}
_mismatch.update({name: (None, getattr(_codes, name)) for name in dir(_codes)
                  if name.isupper() and isinstance(getattr(_codes, name), int) and name not in _k.CODES})
if _mismatch:  # pragma: no cover - a stale build against edited codes.py
    raise ImportError(
        "fastnn's Cython extension is out of date (integer codes differ from "
        f"fastnn.kernels.codes: {_mismatch}); rebuild it with `pip install .` or "
        "`python setup.py build_ext --inplace`"
    )

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- layout adapters
def _rows_ok(a):
    """True if ``a`` is a float32/float64 array whose rows (last axis) have unit stride and
    whose row stride is a non-negative multiple of the item size that does not overlap rows."""
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS or not a.dtype.isnative:
        return False
    size = a.itemsize
    if a.ndim == 1:
        return a.shape[0] <= 1 or a.strides[0] == size
    if a.ndim != 2:
        return False
    n, k = a.shape
    if k > 1 and a.strides[1] != size:
        return False
    if n > 1 and (a.strides[0] % size or a.strides[0] < max(k, 1) * size):
        return False
    return True


def _in(a, dtype=None):
    """An input view the kernels can read: ``a`` itself when possible, else a C-contiguous copy."""
    if dtype is not None and getattr(a, "dtype", None) != dtype:
        return np.ascontiguousarray(a, dtype=dtype)
    if _rows_ok(a):
        return a
    return np.ascontiguousarray(a)


def _in1(a, dtype=None):
    """A 1-D contiguous input (copied only if needed)."""
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    if a.ndim == 1 and (a.shape[0] <= 1 or a.strides[0] == a.itemsize) and a.dtype.isnative:
        return a
    return np.ascontiguousarray(a)


def _out(a):
    """(buffer the kernel writes, array to copy it back into or None)."""
    if _rows_ok(a) and a.flags.writeable:
        return a, None
    return np.empty(a.shape, a.dtype), a


def _out1(a):
    if isinstance(a, np.ndarray) and a.ndim == 1 and a.flags.c_contiguous and a.flags.writeable \
            and a.dtype.isnative:
        return a, None
    return np.ascontiguousarray(a), a


def _f64_out(a):
    """A float64 C-contiguous 1-D buffer for per-batch results (``a`` itself when it is one)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1 \
            and a.flags.c_contiguous and a.flags.writeable:
        return a, None
    return np.zeros(len(a)), a


def _back(buf, dest):
    if dest is not None:
        dest[...] = buf


def _fast_path(ext_fn):
    """Decorate an adapting op: try the extension function first, adapt only if it refuses.

    The extension raises TypeError/ValueError from its argument checks, before it writes
    anything, so retrying with adapted arguments is safe.
    """
    def decorate(adapt):
        @functools.wraps(adapt)
        def op(*args, **kwargs):
            try:
                return ext_fn(*args, **kwargs)
            except (TypeError, ValueError):
                return adapt(*args, **kwargs)
        return op
    return decorate
