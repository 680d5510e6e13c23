"""Fully connected layer: Z = X @ W + b, A = f(Z)."""
import math

import numpy as np

from .. import activations
from .._validation import Integer, OneOf, Param, Real
from ..errors import ParameterError
from ..kernels import get_backend
from ..kernels.codes import ACT_LINEAR, OP_DENSE
from .base import Layer, PlanRow, register

_HE_FAMILY = {"relu", "leaky_relu", "elu", "gelu", "silu"}
INITS = ("auto", "he_normal", "he_uniform", "glorot_uniform", "glorot_normal", "lecun_normal", "zeros")


@register
class Dense(Layer):
    """Fully connected layer.

    ``Dense(units)`` (Keras habit: the input width is inferred when the layer is
    built into a Network) or ``Dense(n_in, n_out)``; ``Dense(64, "relu")`` reads
    the string as the activation.

    Parameters
    ----------
    units : int
        Output width; with a second integer ``n_out``, the first one is the input width.
    n_out : int, optional
        Output width when ``units`` gives the input width (``Dense(n_in, n_out)``).
    activation : str or None, default None (linear)
        One of ``fastnn.activations.NAMES`` (or an alias such as ``'swish'``).
    init : str, default 'auto'
        Weight initialisation: ``'auto'`` picks He-normal for the ReLU family and
        Glorot-uniform otherwise; or one of ``he_normal``, ``he_uniform``,
        ``glorot_uniform``, ``glorot_normal``, ``lecun_normal``, ``zeros``.
        Biases start at zero.
    alpha : float, optional
        Negative slope of ``leaky_relu`` (default 0.01) or saturation of ``elu`` (1.0).
    l1, l2 : float, default 0
        Penalties ``l1 * sum(|W|) + l2 * sum(W**2)`` on the weights (not the biases), added
        to the training loss as in Keras (on the fused path too); for a global L2 use the
        optimizer's ``weight_decay``.
    n_in : int, optional
        Input width by keyword (model files and ``get_config`` use ``n_in``/``n_out``).
    """

    # Declared rules: checked on every assignment -- here, by users later, and when a model file is loaded
    # (it is built through this constructor).
    n_inputs = Param(Integer(1, optional=True), label="n_in")
    n_outputs = Param(Integer(1), label="n_out")
    activation = Param(activations.CONSTRAINT)
    init = Param(OneOf(INITS))
    alpha = Param(Real())
    l1 = Param(Real(0))
    l2 = Param(Real(0))

    def __init__(self, units=None, n_out=None, activation=None, init="auto", alpha=None, l1=0.0, l2=0.0, *,
                 n_in=None):
        if isinstance(n_out, str) and n_in is None:  # Dense(64, "relu")
            if activation is not None:
                raise TypeError(f"Dense got two activations: {n_out!r} and {activation!r}")
            activation, n_out = n_out, None
        if n_out is not None:  # Dense(n_in, n_out) or Dense(n_in=..., n_out=...)
            if units is not None and n_in is not None:
                raise ParameterError("Dense: give the input width once (units as n_in, or n_in=)")
            n_in = units if n_in is None else n_in
        elif units is not None:
            n_out = units
        else:
            raise ParameterError("Dense n_out is missing: Dense needs its output width: Dense(units) or "
                                 "Dense(n_in, n_out)")
        self.n_inputs = n_in
        self.n_outputs = n_out
        self.activation = activation
        self.alpha = activations.default_alpha(self.activation) if alpha is None else alpha
        self.init = init
        self.l1 = l1
        self.l2 = l2

    @property
    def act_code(self):
        """Kernel code of :attr:`activation`."""
        return activations.code_of(self.activation)

    @property
    def W(self):
        """Weights, shape (n_in, n_out): a view into the network's flat buffer."""
        return self.params["W"]

    @property
    def b(self):
        """Biases, shape (n_out,): a view into the network's flat buffer."""
        return self.params["b"]

    @property
    def units(self):
        """Output width (Keras name)."""
        return self.n_outputs

    def output_shape(self, input_shape):
        """``(units,)``: a Dense layer maps each flat sample row to ``units`` values."""
        return (self.n_outputs,)

    def build(self, input_shape):
        """Infer ``n_in`` from a 1-D per-sample shape (multi-dimensional samples need flattening first)."""
        if len(input_shape) != 1:
            raise ValueError(f"Dense takes flat samples, got per-sample shape {tuple(input_shape)}; "
                             f"put Flatten() before it")
        if self.n_inputs is None:
            self.n_inputs = int(input_shape[0])
        super().build(input_shape)

    def _check_built(self):
        if self.n_inputs is None:
            raise ValueError("Dense input width is unknown: give Dense(n_in, n_out), or build the layer "
                             "into a Network after a layer of known width or with input_shape=...")

    def param_shapes(self):
        self._check_built()
        return {"W": (self.n_inputs, self.n_outputs), "b": (self.n_outputs,)}

    def plan_rows(self, fuse_activation=None):
        """One OP_DENSE row (linear when the loss applies this layer's activation)."""
        act = self.act_code
        if fuse_activation is not None and self.activation == fuse_activation:
            act = ACT_LINEAR
        return [PlanRow(op=OP_DENSE, n_in=self.n_inputs, n_out=self.n_outputs, act=act, params=("W", "b"),
                        floats={"alpha": self.alpha, "l1": self.l1, "l2": self.l2},
                        z_block=True)]

    def init_params(self, params, rng):
        n_in, n_out = self.n_inputs, self.n_outputs
        init = self.init
        if init == "auto":
            init = "he_normal" if self.activation in _HE_FAMILY else "glorot_uniform"
        W = params["W"]
        if init == "he_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(2.0 / n_in)
        elif init == "he_uniform":
            lim = math.sqrt(6.0 / n_in)
            W[...] = rng.uniform(-lim, lim, W.shape)
        elif init == "glorot_uniform":
            lim = math.sqrt(6.0 / (n_in + n_out))
            W[...] = rng.uniform(-lim, lim, W.shape)
        elif init == "glorot_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(2.0 / (n_in + n_out))
        elif init == "lecun_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(1.0 / n_in)
        else:
            W[...] = 0
        params["b"][...] = 0

    def forward(self, X, training=False, backend=None, logits=False):
        """A = f(X @ W + b); with ``logits=True`` return Z (the activation is fused into the loss)."""
        kern = get_backend(backend)
        n = X.shape[0]
        dtype = self.params["W"].dtype
        # Cached buffers in training; fresh arrays at inference, so concurrent predicts of a network
        # holding this layer (TimeDistributed, TransformerBlock) never share one.
        work = self._buffer if training else (lambda key, shape, dt: np.empty(shape, dt))
        Z = work("Z", (n, self.n_outputs), dtype)
        act = ACT_LINEAR if logits else self.act_code
        A = Z if act == ACT_LINEAR else work("A", (n, self.n_outputs), dtype)
        kern.dense_forward(X, self.params["W"], self.params["b"], act, self.alpha, Z, A)
        self._cache = (X, Z, A, act)
        return A

    def backward(self, dA, backend=None, need_dX=True):
        """Write dW, db into the gradient views; return dX (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        X, Z, A, act = self._cache
        dZ = self._buffer("dZ", Z.shape, Z.dtype)
        dX = self._buffer("dX", X.shape, X.dtype) if need_dX else None
        kern.dense_backward(X, self.params["W"], Z, A, dA, act, self.alpha, dZ,
                            self.grads["W"], self.grads["b"], dX)
        return dX

    @property
    def has_penalty(self):
        """True if the layer adds an L1/L2 penalty to the loss."""
        return self.l1 > 0 or self.l2 > 0

    def penalty(self):
        """The penalty term ``l1*sum|W| + l2*sum(W^2)`` (float64)."""
        W = self.params["W"]
        value = 0.0
        if self.l1:
            value += self.l1 * float(np.abs(W).sum(dtype=np.float64))
        if self.l2:
            value += self.l2 * float(np.square(W, dtype=np.float64).sum())
        return value

    def add_penalty_gradient(self):
        """dW += l1*sign(W) + 2*l2*W (after :meth:`backward`)."""
        W, dW = self.params["W"], self.grads["W"]
        if self.l1:
            dW += W.dtype.type(self.l1) * np.sign(W)
        if self.l2:
            dW += W.dtype.type(2 * self.l2) * W

    def get_config(self):
        cfg = {"n_in": self.n_inputs, "n_out": self.n_outputs, "activation": self.activation, "init": self.init}
        if self.has_penalty:
            cfg["l1"], cfg["l2"] = self.l1, self.l2
        if self.alpha != activations.default_alpha(self.activation):
            cfg["alpha"] = self.alpha
        return cfg
