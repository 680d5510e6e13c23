"""The one thread knob's reach into the backends' own parallel kernels (recurrent, attention).

Those kernels split rows over threads themselves (Numba's pool, OpenMP for Cython) and call BLAS
from each thread; the engine's runners and the network's predict set their thread count here.
"""
import contextlib

from .._config import thread_limits


@contextlib.contextmanager
def layer_threads(kern, n):
    """Run the per-layer path's own parallel kernels (recurrent, attention) on ``n`` threads, then restore.

    The one thread knob (``Trainer(n_threads=)`` / :func:`fastnn.set_num_threads`) reaches them here:
    Numba's pool for the numba backend, the calling thread's OpenMP setting for the cython one. Their
    threads call BLAS themselves, so BLAS runs one thread alongside (the trainer's ``thread_limits``).
    """
    name = getattr(kern, "NAME", None)
    if name == "numba":
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(before)
    elif name == "cython":
        before = set_omp_threads(n)
        try:
            yield
        finally:
            if before is not None:
                set_omp_threads(before)
    else:
        yield


def set_omp_threads(n):
    """Set the Cython kernels' OpenMP loop threads of the calling thread (1 on a row shard: no nested
    teams); return the previous setting (None without the extension, which then runs nothing)."""
    try:
        from .._ext._kernels import set_omp_threads as _set
    except ImportError:
        return None
    return _set(n)


@contextlib.contextmanager
def blas_limits(n):
    """Limit every loaded BLAS to ``n`` threads (:func:`fastnn._config.thread_limits`) and tell the Cython
    Dense kernels of the calling thread: with ``n > 1`` its float32 GEMMs run on BLAS's threads rather than
    the one-thread micro-kernels (``gemm_tiles``), which win only where each thread runs its own GEMMs."""
    try:
        from .._ext._kernels import gemm_blas_threaded
    except ImportError:
        gemm_blas_threaded = None
    with thread_limits(n):
        before = gemm_blas_threaded(n > 1) if gemm_blas_threaded is not None else None
        try:
            yield
        finally:
            if before is not None:
                gemm_blas_threaded(before)
