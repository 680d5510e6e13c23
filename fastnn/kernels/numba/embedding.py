"""Numba embedding kernels; contracts in :mod:`fastnn.kernels.reference.embedding`.

The gradient is a serial scatter-add in row order (rows sharing an id would race across threads,
and the sum order must not depend on the thread count); it is O(m*D), next to O(m*D*width) GEMMs.
"""
from numba import njit

from ._common import OPTS


@njit(**OPTS)
def embedding_forward(ids, E, out):
    """out[i] = E[ids[i]]."""
    m, D = out.shape
    for i in range(m):
        r = ids[i]
        for j in range(D):
            out[i, j] = E[r, j]


@njit(**OPTS)
def embedding_backward(ids, dout, dE_out):
    """dE = 0; dE[ids[i]] += dout[i] (repeated ids accumulate, in row order)."""
    V, D = dE_out.shape
    for r in range(V):
        for j in range(D):
            dE_out[r, j] = 0
    for i in range(ids.shape[0]):
        r = ids[i]
        for j in range(D):
            dE_out[r, j] += dout[i, j]
