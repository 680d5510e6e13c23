"""Inverted dropout: zero a random fraction of activations in training, scale the rest."""
import numbers

import numpy as np

from .base import Layer, register


@register
class Dropout(Layer):
    """Inverted dropout (identity at inference).

    Parameters
    ----------
    rate : float
        Fraction of units dropped in training, in [0, 1).
    n_units : int, optional
        Width; inferred from the previous layer when built into a Network.
    """

    def __init__(self, rate, n_units=None):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), not {rate!r}")
        self.rate = float(rate)
        self.n_inputs = self.n_outputs = n_units
        self.rng = np.random.default_rng()

    def forward(self, X, training=False, backend=None):
        if not training or self.rate == 0:
            self._mask = None
            return X
        keep = 1.0 - self.rate
        mask = self._buffer("mask", X.shape, X.dtype)
        # mask holds 0 or 1/keep, so backward is one multiply.
        mask[...] = (self.rng.random(X.shape, dtype=X.dtype if X.dtype == np.float32 else np.float64) < keep)
        mask *= X.dtype.type(1.0 / keep)
        out = self._buffer("out", X.shape, X.dtype)
        np.multiply(X, mask, out=out)
        self._mask = mask
        return out

    def backward(self, dA, backend=None, need_dX=True):
        if self._mask is None:
            return dA
        dX = self._buffer("dX", dA.shape, dA.dtype)
        np.multiply(dA, self._mask, out=dX)
        return dX

    def get_config(self):
        return {"rate": self.rate, "n_units": self.n_inputs}
