"""Runtime configuration: compute backend and thread count, with FASTNN_* environment overrides.

- ``FASTNN_BACKEND``: ``reference`` | ``numba`` | ``cython`` (default: fastest available).
- ``FASTNN_NUM_THREADS``: threads for Numba, OpenMP and BLAS (default: all cores).
- ``FASTNN_DTYPE``: ``float32`` (default) or ``float64`` for new networks.
"""
import contextlib
import numbers
import os
import threading

import numpy as np

from .errors import ParameterError

# libgomp (Numba's "omp" threading layer, the Cython extension's OpenMP) reads these once, when it
# loads, which is after this import. Its default lets idle workers spin for ~300k rounds: with another
# process busy on the machine the sharded step collapsed 20-40x (2.7k-3.9k vs 50k-119k samples/s).
# Never spinning (OMP_WAIT_POLICY=PASSIVE) costs a futex wake-up at every parallel section, which a
# BatchNorm sync point makes several per step. A short spin is the compromise, measured on 2 cores,
# MNIST 784-256-128-10 at batch 128, cython, samples/s (plain / BatchNorm after each hidden layer; one
# run, before the driver's persistent parallel region and branch-free ReLU made both faster):
#   idle:                 PASSIVE 110k / 75k   GOMP_SPINCOUNT=2000 130k / 117k   20000 126k / 111k
#   other core busy:      PASSIVE  77k / 71k   GOMP_SPINCOUNT=2000  70k /  56k   20000  57k /  43k
# A user's own setting of either variable (made before importing fastnn) wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "2000"

_state = {"num_threads": None}


def default_dtype():
    """The dtype new networks use unless told otherwise (``FASTNN_DTYPE``)."""
    name = os.environ.get("FASTNN_DTYPE", "float32")
    if name not in ("float32", "float64"):
        raise ValueError(f"FASTNN_DTYPE must be 'float32' or 'float64', not {name!r}")
    return np.dtype(name)


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads():
    """Number of threads fastnn uses for Numba, OpenMP and BLAS work."""
    if _state["num_threads"] is None:
        env = os.environ.get("FASTNN_NUM_THREADS")
        if env is not None:
            _state["num_threads"] = _parse_threads(env, "FASTNN_NUM_THREADS")
        else:
            _state["num_threads"] = _cpu_count()
    return _state["num_threads"]


def _parse_threads(value, what):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a positive integer, not {value!r}") from None
    if n < 1:
        raise ParameterError(f"{what} must be a positive integer, not {n}")
    return n


def set_num_threads(n):
    """Set the one thread knob that drives Numba, the Cython/OpenMP kernels and BLAS.

    Parameters
    ----------
    n : int
        Number of threads, at least 1. Numba's pool is capped at the number it
        started with (``NUMBA_NUM_THREADS``, by default the core count).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:  # "2" is not a count (env vars are)
        raise ParameterError(f"set_num_threads n must be a positive integer, not {n!r}")
    n = int(n)
    _state["num_threads"] = min(n, _cpu_count()) if n > _cpu_count() else n
    return _state["num_threads"]


def thread_limits(blas_threads):
    """Context manager limiting every BLAS library loaded in the process (numpy's and scipy's)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=blas_threads, user_api="blas")


_blas_one = {"controller": None, "users": 0, "limiter": None, "lock": threading.Lock()}


@contextlib.contextmanager
def blas_single_thread():
    """Context manager putting every loaded BLAS on one thread, cheaply (~10 us, against ~2 ms for
    :func:`thread_limits`, which looks the libraries up again at every call): for compiled code that
    runs its own threads, each calling BLAS. The libraries are looked up at the first call, after
    loading scipy's. Safe from several Python threads at once: the
    first to enter sets the limit, the last to leave restores the previous one. (OpenBLAS 0.3.30
    ignores a thread count set from a thread other than the main one: there the limit does not
    take, which costs speed, never correctness.)"""
    state = _blas_one
    with state["lock"]:
        if state["controller"] is None:
            import scipy.linalg  # noqa: F401  (its own OpenBLAS, the one the Cython kernels call: load it first)
            from threadpoolctl import ThreadpoolController

            state["controller"] = ThreadpoolController().select(user_api="blas")
        if state["users"] == 0:
            state["limiter"] = state["controller"].limit(limits=1)
        state["users"] += 1
    try:
        yield
    finally:
        with state["lock"]:
            state["users"] -= 1
            if state["users"] == 0:
                state["limiter"].restore_original_limits()


def apply_numba_threads(n):
    """Set Numba's thread count to ``n`` (capped at its pool size); return the value set."""
    import numba

    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n
