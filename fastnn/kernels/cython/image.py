"""Cython image kernels: none yet.

:mod:`fastnn.kernels.spec` declares ``fallback="numba"`` for ``image_shift`` and
``image_rotate``, so ``get_backend("cython")`` serves the Numba kernels for them
and says so (``backend.fallbacks()``, ``fastnn.show_config()``). To give them a
Cython implementation: add ``csrc/image.pxi`` (included by ``_kernels.pyx``),
wrap it here, export it from ``__init__.py`` and add ``"cython"`` to the ops'
``backends`` in the spec.
"""
