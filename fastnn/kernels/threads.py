"""The one thread knob's reach into the backends' own parallel kernels (recurrent, attention).

Those kernels split rows over threads themselves (Numba's pool, OpenMP for Cython) and call BLAS
from each thread; the engine's runners and the network's predict set their thread count here.
"""
import contextlib


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
