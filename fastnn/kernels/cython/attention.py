"""Cython attention kernels: none yet; the spec declares ``fallback="numba"`` (see ``cython/rnn.py``)."""
