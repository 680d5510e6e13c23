"""Numba batch gather and the helpers the plan driver (:mod:`.plan`) launches with.

``_parallel_call`` serializes parallel launches where Numba's threading layer is not
thread-safe; ``_ftz_on``/``_ftz_restore`` come from the Cython extension (Numba cannot
set the FPU's flush-to-zero mode itself).
"""
import threading

import numba
from numba import njit

from ._common import OPTS


@njit(**OPTS)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    k = X.shape[1]
    for i in range(idx.shape[0]):
        src = X[idx[i]]
        dst = out[i]
        for j in range(k):
            dst[j] = src[j]


try:
    from ..._ext._kernels import flush_denormals_on as _ftz_on, flush_denormals_restore as _ftz_restore
except ImportError:  # the Cython extension is not built: numba runs without flush-to-zero
    _ftz_on = _ftz_restore = None


_PARALLEL_LOCK = threading.Lock()


def _parallel_call(fn, args):
    """Call a parallel=True kernel; serialized unless Numba's threading layer is thread-safe.

    The ``workqueue`` layer (what Numba falls back to without TBB or OpenMP) aborts the
    process when two Python threads launch parallel regions at once. The layer is known
    only after the first launch, so launches are serialized until it is known to be safe.
    """
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region launched yet
        layer = None
    if layer in ("omp", "tbb"):
        return fn(*args)
    with _PARALLEL_LOCK:
        return fn(*args)
