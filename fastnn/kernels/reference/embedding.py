"""Reference embedding kernels: a table lookup and its scatter-add gradient.

``ids (m,)`` int64 token ids, already validated in ``[0, V)`` (the layer checks them; kernels do not),
``E (V, D)`` the table, ``out (m, D)`` / ``dout (m, D)`` one row per token.
"""
import numpy as np


def embedding_forward(ids, E, out):
    """out[i] = E[ids[i]]."""
    np.take(E, ids, axis=0, out=out)


def embedding_backward(ids, dout, dE_out):
    """dE = 0; dE[ids[i]] += dout[i] (repeated ids accumulate, in row order)."""
    dE_out[...] = 0
    np.add.at(dE_out, ids, dout)
