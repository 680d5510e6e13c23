"""Cython embedding kernels: ``csrc/embedding.pxi``; contracts in :mod:`fastnn.kernels.reference.embedding`."""
import numpy as np

from ._adapt import _k
from ._seq import Outs, dtype_of, inp


def embedding_forward(ids, E, out):
    """out[i] = E[ids[i]]."""
    dt = dtype_of(out)
    res = Outs(dt, out)
    _k.embedding_forward(np.ascontiguousarray(ids, dtype=np.int64), inp(E, dt), *res.bufs)
    res.back()


def embedding_backward(ids, dout, dE_out):
    """dE = 0; dE[ids[i]] += dout[i] (repeated ids accumulate, in row order)."""
    dt = dtype_of(dE_out)
    res = Outs(dt, dE_out)
    _k.embedding_backward(np.ascontiguousarray(ids, dtype=np.int64), inp(dout, dt), *res.bufs)
    res.back()
