"""Flatten: per-sample shape (d1, d2, ...) -> (d1*d2*...,)."""
import numpy as np

from .base import Layer, register


@register
class Flatten(Layer):
    """Flatten each sample to one vector (Keras ``Flatten``).

    fastnn stores every sample as one row, so this changes only the declared
    per-sample shape: no data moves and the compiled plan gets no row for it.
    """

    def output_shape(self, input_shape):
        """``(prod(input_shape),)``."""
        return (int(np.prod(input_shape)),)

    def build(self, input_shape):
        self.n_inputs = self.n_outputs = int(np.prod(input_shape))

    def plan_rows(self, fuse_activation=None):
        """No plan row: the rows are already flat."""
        return []

    def forward(self, X, training=False, backend=None):
        return X.reshape(X.shape[0], -1)

    def backward(self, dA, backend=None, need_dX=True):
        return dA

    def get_config(self):
        return {}
