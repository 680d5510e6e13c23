"""Cython recurrent kernels: none yet.

:mod:`fastnn.kernels.spec` declares ``fallback="numba"`` for the ``rnn``
family (``simple_rnn_*``, ``lstm_*``, ``gru_*``), so ``get_backend("cython")``
serves the Numba kernels for them and says so (``backend.fallbacks()``,
``fastnn.show_config()``). The Numba kernels already call BLAS for every GEMM
and compile only the per-step gate math, so a Cython port would mainly save
Numba's dispatch per call. To add one: ``csrc/rnn.pxi`` (included by
``_kernels.pyx``), wrap it here, export it from ``__init__.py`` and add
``"cython"`` to ``_RNN_BACKENDS`` in the spec.
"""
