"""Compatibility shim: the Cython kernels now live in :mod:`fastnn.kernels.cython` (one module per family).

Kept because tests, benchmarks and user code import ``fastnn.kernels.cython_backend``;
prefer ``fastnn.kernels.get_backend("cython")``. Importing it without the built
extension raises the same actionable ImportError as the package.
"""
from .._ext import missing_extension_error

try:  # checked on every import of this shim, even when the package is already imported
    from fastnn._ext import _kernels as _k  # noqa: F401
except ImportError as exc:
    raise missing_extension_error(exc) from exc

from .cython import *  # noqa: F401,F403,E402
from .cython import NAME, OPENMP  # noqa: F401,E402
