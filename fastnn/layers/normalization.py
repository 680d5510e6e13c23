"""Normalization layers: BatchNorm (per feature over the batch) and LayerNorm (per sample over its features).

Both own a learnable scale ``gamma`` (initialised to 1) and shift ``beta`` (0)
in the network's flat parameter buffer. BatchNorm also keeps running
statistics (``running_mean``, ``running_var``): non-trainable buffers declared
by :meth:`BatchNorm.buffer_shapes` and held in :attr:`BatchNorm.buffers`. They
are updated in training-mode forward passes and used at inference; they are
state of the model, not of the optimizer, so model files must store them.
Kernels: the ``norm`` family of each backend (``fastnn/kernels/<backend>/norm.py``),
reached through ``fastnn.kernels.get_backend``.
"""
import numpy as np

from .._validation import Integer, Param, Real
from ..kernels import get_backend
from ..kernels import norm as _norm
from ..kernels.codes import OP_BATCHNORM, OP_LAYERNORM
from .base import Layer, PlanRow, register


class _Normalization(Layer):
    """Shared parts: width inference, gamma/beta parameters, kernel selection."""

    n_inputs = Param(Integer(1, optional=True), label="n_units")
    n_outputs = Param(Integer(1, optional=True), label="n_outputs")
    eps = Param(Real(0, lo_open=True))

    def __init__(self, n_units, eps):
        self.n_inputs = self.n_outputs = n_units
        self.eps = eps

    def build(self, input_shape):
        """Infer the width from a flat per-sample shape."""
        if len(input_shape) != 1:
            raise ValueError(f"{type(self).__name__} takes flat samples here, got per-sample shape "
                             f"{tuple(input_shape)}")
        super().build(input_shape)
        self.n_inputs = self.n_outputs = int(input_shape[0])

    def _width(self):
        if self.n_inputs is None:
            raise ValueError(f"{type(self).__name__} width is unknown: give n_units or put it after a layer "
                             f"of known width in a Network")
        return self.n_inputs

    @property
    def gamma(self):
        """Scale, shape (n_units,): a view into the network's flat buffer."""
        return self.params["gamma"]

    @property
    def beta(self):
        """Shift, shape (n_units,): a view into the network's flat buffer."""
        return self.params["beta"]

    def param_shapes(self):
        k = self._width()
        return {"gamma": (k,), "beta": (k,)}

    def init_params(self, params, rng):
        params["gamma"][...] = 1
        params["beta"][...] = 0

    def _outputs(self, training, shape, stat_shape, dtype):
        """(Xhat, inv_std, out): cached work buffers in training; fresh arrays at inference, so the
        array predict returns is the caller's and concurrent predicts do not share buffers."""
        if training:
            return (self._buffer("Xhat", shape, dtype), self._buffer("inv_std", stat_shape, dtype),
                    self._buffer("out", shape, dtype))
        return np.empty(shape, dtype), np.empty(stat_shape, dtype), np.empty(shape, dtype)

    @staticmethod
    def _kernels(backend):
        return _norm.kernels_for(get_backend(backend).NAME)

    def _check_input(self, X):
        if X.ndim != 2 or X.shape[1] != self._width():
            raise ValueError(f"{type(self).__name__} expects input of shape (n, {self._width()}), got {X.shape}")
        dtype = self.params["gamma"].dtype
        if X.dtype != dtype or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=dtype)
        return X


@register
class BatchNorm(_Normalization):
    """Batch normalization (Ioffe & Szegedy, 2015) of each feature over the mini-batch.

    Training: ``out = gamma * (X - mean_B) / sqrt(var_B + eps) + beta`` with the
    batch mean and (biased) variance of every column, and the running
    statistics move towards the batch ones:
    ``running = momentum * running + (1 - momentum) * batch_stat`` (the
    running variance takes the unbiased batch variance, as PyTorch; a batch of
    one row leaves it unchanged). Inference uses the running statistics.

    Parameters
    ----------
    n_units : int, optional
        Width; inferred from the previous layer when built into a Network.
    momentum : float, default 0.9
        Weight of the old running statistics in each update (Keras convention;
        PyTorch's ``momentum=0.1`` is ``momentum=0.9`` here), in [0, 1).
    eps : float, default 1e-5
        Added to the variance before the square root.

    Attributes
    ----------
    buffers : dict
        ``{'running_mean': array, 'running_var': array}`` (start at 0 and 1), in
        the parameter dtype; non-trainable state that model files must keep.
    """

    momentum = Param(Real(0, 1, hi_open=True))

    def __init__(self, n_units=None, momentum=0.9, eps=1e-5):
        super().__init__(n_units, eps)
        self.momentum = momentum
        self.buffers = None
        self.channels = None  # feature maps (issue 11): statistics per channel over batch and positions

    # --- feature maps (issue 11): a per-sample shape (..., C) normalises each of the C channels over
    # the batch and every position, as Keras BatchNormalization(axis=-1) and PyTorch BatchNorm2d.
    def build(self, input_shape):
        """Flat samples: one statistic per feature; ``(H, W, C)`` feature maps: one per channel."""
        if len(input_shape) == 1:
            self.channels = None
            return super().build(input_shape)
        self.channels = int(input_shape[-1])
        self.n_inputs = self.n_outputs = int(np.prod(input_shape))

    def _width(self):
        return self.channels if self.channels is not None else super()._width()

    def _channel_rows(self, X):
        """Rows ``(n, H*W*C)`` as ``(n*H*W, C)``: one row per position, the kernels' layout."""
        if self.channels is None:
            return X
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"BatchNorm expects input of shape (n, {self.n_inputs}), got {X.shape}")
        return np.ascontiguousarray(X, dtype=self.params["gamma"].dtype).reshape(-1, self.channels)

    def buffer_shapes(self):
        """Ordered ``{name: shape}`` of non-trainable state (saved with the model, never optimized)."""
        k = self._width()
        return {"running_mean": (k,), "running_var": (k,)}

    def init_buffers(self, buffers):
        """Fill freshly bound buffer views: running mean 0, running variance 1."""
        buffers["running_mean"][...] = 0
        buffers["running_var"][...] = 1

    def bind_buffers(self, buffers):
        """Attach views of a network-owned state buffer ({name: array}), e.g. one flat array per network."""
        self.buffers = buffers

    def bind(self, params, grads):
        super().bind(params, grads)
        # Until a Network hands out buffer views (bind_buffers), own them; keep values across re-binds.
        dtype = params["gamma"].dtype
        b = self.buffers
        if b is None or any(b[name].shape != shape or b[name].dtype != dtype
                            for name, shape in self.buffer_shapes().items()):
            self.buffers = {name: np.empty(shape, dtype) for name, shape in self.buffer_shapes().items()}
            self.init_buffers(self.buffers)

    def check_state(self, params, buffers):
        """Finite values (the base rule) and a running variance that is not negative."""
        super().check_state(params, buffers)
        var = buffers.get("running_var")
        if var is not None and var.size and var.min() < 0:
            raise ValueError(f"buffer 'running_var' holds a negative variance {var.min()}")

    @property
    def running_mean(self):
        return self.buffers["running_mean"]

    @property
    def running_var(self):
        return self.buffers["running_var"]

    def forward(self, X, training=False, backend=None):
        n_samples = X.shape[0]
        X = self._check_input(self._channel_rows(X))
        kern = self._kernels(backend)
        n, k = X.shape
        dtype = X.dtype
        Xhat, inv_std, out = self._outputs(training, (n, k), (k,), dtype)
        kern.batchnorm_forward(X, self.params["gamma"], self.params["beta"], self.eps, bool(training),
                               self.buffers["running_mean"], self.buffers["running_var"], self.momentum,
                               Xhat, inv_std, out)
        self._cache = (Xhat, inv_std, bool(training))
        return out.reshape(n_samples, -1) if self.channels is not None else out

    def backward(self, dA, backend=None, need_dX=True):
        """Write dgamma, dbeta into the gradient views; return dX (None if ``need_dX`` is False)."""
        Xhat, inv_std, training = self._cache
        n_samples = dA.shape[0]
        dA = np.ascontiguousarray(dA, dtype=Xhat.dtype).reshape(Xhat.shape)
        dX = self._buffer("dX", Xhat.shape, Xhat.dtype) if need_dX else None
        gamma, dgamma, dbeta = self.params["gamma"], self.grads["gamma"], self.grads["beta"]
        if training:
            self._kernels(backend).batchnorm_backward(dA, Xhat, inv_std, gamma, dgamma, dbeta, dX)
        else:  # fixed (running) statistics: an affine map per feature
            dbeta[...] = dA.sum(axis=0)
            dgamma[...] = (dA * Xhat).sum(axis=0)
            if dX is not None:
                np.multiply(dA, gamma * inv_std, out=dX)
        if dX is not None and self.channels is not None:
            return dX.reshape(n_samples, -1)
        return dX

    def plan_rows(self, fuse_activation=None):
        """One OP_BATCHNORM row: batch statistics over all shards, running statistics updated.

        On feature maps the row carries the channel count: statistics per channel over the batch
        and every position, the rows of ``H*W*C`` values read as ``H*W`` rows of ``C``."""
        width = self.n_inputs if self.channels is not None else self._width()
        return [PlanRow(op=OP_BATCHNORM, n_in=width, n_out=width, params=("gamma", "beta"),
                        buffers=("running_mean", "running_var"),
                        floats={"eps": self.eps, "momentum": self.momentum},
                        channels=self.channels if self.channels is not None else -1)]

    def get_config(self):
        # On feature maps the channel count comes from the input shape (and gamma's stored shape is checked).
        n_units = None if self.channels is not None else self.n_inputs
        return {"n_units": n_units, "momentum": self.momentum, "eps": self.eps}


@register
class LayerNorm(_Normalization):
    """Layer normalization (Ba et al., 2016): each sample normalised over its features.

    ``out = gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta`` row by row, the
    same in training and inference (no running statistics).

    Parameters
    ----------
    n_units : int, optional
        Width; inferred from the previous layer when built into a Network.
    eps : float, default 1e-5
        Added to the variance before the square root.
    """

    def __init__(self, n_units=None, eps=1e-5):
        super().__init__(n_units, eps)

    def forward(self, X, training=False, backend=None):
        X = self._check_input(X)
        kern = self._kernels(backend)
        n, k = X.shape
        dtype = X.dtype
        Xhat, inv_std, out = self._outputs(training, (n, k), (n,), dtype)
        kern.layernorm_forward(X, self.params["gamma"], self.params["beta"], self.eps, Xhat, inv_std, out)
        self._cache = (Xhat, inv_std)
        return out

    def backward(self, dA, backend=None, need_dX=True):
        """Write dgamma, dbeta into the gradient views; return dX (None if ``need_dX`` is False)."""
        Xhat, inv_std = self._cache
        dA = np.ascontiguousarray(dA, dtype=Xhat.dtype)
        dX = self._buffer("dX", Xhat.shape, Xhat.dtype) if need_dX else None
        self._kernels(backend).layernorm_backward(dA, Xhat, inv_std, self.params["gamma"], self.grads["gamma"],
                                                  self.grads["beta"], dX)
        return dX

    def plan_rows(self, fuse_activation=None):
        """One OP_LAYERNORM row (per-row statistics: no cross-shard sync)."""
        k = self._width()
        # no Xhat block: the plan keeps each row's mean and inv_std, and backward recomputes Xhat from the input
        return [PlanRow(op=OP_LAYERNORM, n_in=k, n_out=k, params=("gamma", "beta"), floats={"eps": self.eps},
                        z_block=False)]

    def get_config(self):
        return {"n_units": self.n_inputs, "eps": self.eps}
