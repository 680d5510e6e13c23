"""The Activation layer: ``A = f(X)`` on its own, e.g. the ReLU of Conv2D -> BatchNorm -> ReLU.

Keras' ``Activation``: a layer that applies one of :data:`fastnn.activations.NAMES`
elementwise (softmax over the last axis: the channels of a feature map, the
features of a flat row). It is what follows a normalization layer, which has
no activation of its own. Kernels: the ``activations`` family of each backend.
"""
import numpy as np

from .. import activations
from .._validation import Param, Real
from ..kernels import get_backend
from ..kernels.codes import ACT_LINEAR, OP_ACTIVATION
from .base import Layer, PlanRow, register


@register
class Activation(Layer):
    """Apply an activation function to the previous layer's output.

    Parameters
    ----------
    activation : str or None
        One of ``fastnn.activations.NAMES`` (None: linear, the identity). Softmax normalises the
        last axis of each sample: the channels of an ``(H, W, C)`` feature map.
    alpha : float, optional
        Negative slope of ``leaky_relu`` / saturation of ``elu``.

    Notes
    -----
    The per-sample shape is unchanged. On the fused path it is one ``OP_ACTIVATION`` plan row.
    """

    activation = Param(activations.CONSTRAINT)
    alpha = Param(Real())

    def __init__(self, activation, alpha=None):
        self.activation = activation
        self.alpha = activations.default_alpha(self.activation) if alpha is None else alpha
        self.channels = None  # the last axis of a multi-dimensional sample (softmax normalises it)

    @property
    def act_code(self):
        """Kernel code of :attr:`activation`."""
        return activations.code_of(self.activation)

    def build(self, input_shape):
        """Take the width (and, for multi-dimensional samples, the last axis) of the input."""
        self.channels = int(input_shape[-1]) if len(input_shape) > 1 else None
        width = int(np.prod(input_shape))
        self.n_inputs = self.n_outputs = width

    def _rows(self, X):
        """``X`` as the 2-D block the kernels normalise row by row: one row per position of a feature map."""
        if self.n_inputs is not None and (X.ndim != 2 or X.shape[1] != self.n_inputs):
            raise ValueError(f"Activation expects input of shape (n, {self.n_inputs}), got {X.shape}")
        X = np.ascontiguousarray(X)
        return X.reshape(-1, self.channels) if self.channels is not None else X

    def plan_rows(self, fuse_activation=None):
        """One OP_ACTIVATION row (linear, a copy, when the loss applies this activation itself)."""
        act = self.act_code
        if fuse_activation is not None and self.activation == fuse_activation:
            act = ACT_LINEAR
        return [PlanRow(op=OP_ACTIVATION, n_in=self.n_inputs, n_out=self.n_outputs, act=act,
                        floats={"alpha": self.alpha}, z_block=False, channels=self.channels or -1)]

    def forward(self, X, training=False, backend=None, logits=False):
        """``f(X)`` as rows ``(n, width)``; ``logits=True`` (the loss applies f itself) returns X."""
        if logits or self.act_code == ACT_LINEAR:
            self._cache = None
            return X
        Z = self._rows(X)
        A = self._buffer("A", Z.shape, Z.dtype) if training else np.empty_like(Z)
        get_backend(backend).activation_forward(Z, self.act_code, self.alpha, A)
        self._cache = (Z, A) if training else None
        return A.reshape(X.shape[0], -1)

    def backward(self, dA, backend=None, need_dX=True):
        """``dX = dA * f'(X)`` (None if ``need_dX`` is False)."""
        if not need_dX:
            return None
        if self._cache is None:  # the identity (linear, or logits for the loss)
            return dA
        Z, A = self._cache
        dA = np.ascontiguousarray(dA, dtype=Z.dtype).reshape(Z.shape)
        dX = self._buffer("dX", Z.shape, Z.dtype)
        get_backend(backend).activation_backward(Z, A, dA, self.act_code, self.alpha, dX)
        return dX.reshape(-1, self.n_outputs)

    def get_config(self):
        cfg = {"activation": self.activation}
        if self.alpha != activations.default_alpha(self.activation):
            cfg["alpha"] = self.alpha
        return cfg
