"""Compatibility shim: the numba kernels now live in :mod:`fastnn.kernels.numba` (one module per family).

Kept because tests, benchmarks and user code import ``fastnn.kernels.numba_backend``;
prefer ``fastnn.kernels.get_backend("numba")``.
"""
from .numba import *  # noqa: F401,F403
from .numba import NAME  # noqa: F401
