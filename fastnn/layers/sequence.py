"""Sequence helpers: Embedding, PositionalEncoding, GlobalAveragePooling1D and TimeDistributed.

Per-sample shapes: token ids ``(T,)``, sequences ``(T, F)``; every sample is one
row of the network's 2-D batches, as everywhere in fastnn.
"""
import math

import numpy as np

from .._validation import Boolean, Integer, Param, Real
from ..kernels import get_backend
from .base import Layer, layer_from_config, register


def _sequence_shape(input_shape, cls):
    if len(input_shape) != 2:
        raise ValueError(f"{cls} takes sequences: a per-sample shape (timesteps, features), got "
                         f"{tuple(input_shape)}")
    return int(input_shape[0]), int(input_shape[1])


def _rows(X, n_values, cls):
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[0] == 0 or int(np.prod(X.shape[1:])) != n_values:
        raise ValueError(f"{cls} expects {n_values} values per sample, got an array of shape {X.shape}")
    return X.reshape(X.shape[0], n_values)


@register
class Embedding(Layer):
    """Token embedding (Keras ``Embedding``): integer ids ``(T,)`` per sample -> vectors ``(T, output_dim)``.

    Ids arrive in the network's float rows; they must be whole numbers in
    ``[0, input_dim)`` (checked before anything runs: a ValueError names the
    first bad id). The table starts uniform in [-0.05, 0.05] (Keras's default).

    Parameters
    ----------
    input_dim : int
        Vocabulary size.
    output_dim : int
        Width of each embedding vector.
    mask_zero : bool, default False
        Id 0 is padding: the layer's :attr:`output_mask` marks those steps, and the
        sequence layers after it (recurrent layers, attention, pooling) skip them.
    """

    takes_token_ids = True  # the Trainer validates ids up front and does not warn about unscaled integers

    @property
    def makes_mask(self):
        """True with ``mask_zero`` (see :attr:`Layer.makes_mask`)."""
        return self.mask_zero

    # declared rules: checked in the constructor, on every later assignment and in model files
    input_dim = Param(Integer(1))
    output_dim = Param(Integer(1))
    mask_zero = Param(Boolean())

    def __init__(self, input_dim, output_dim, mask_zero=False):
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero
        self.timesteps = None

    def output_shape(self, input_shape):
        """``(T, output_dim)`` for ``(T,)`` ids per sample."""
        if len(input_shape) != 1:
            raise ValueError(f"Embedding takes token ids, a per-sample shape (timesteps,), got {tuple(input_shape)}")
        return (int(input_shape[0]), self.output_dim)

    def build(self, input_shape):
        self.output_shape(input_shape)
        self.timesteps = int(input_shape[0])
        self.n_inputs = self.timesteps
        self.n_outputs = self.timesteps * self.output_dim

    def param_shapes(self):
        return {"E": (self.input_dim, self.output_dim)}

    def init_params(self, params, rng):
        params["E"][...] = rng.uniform(-0.05, 0.05, params["E"].shape)

    def check_ids(self, X, name="X"):
        """Raise ValueError unless every entry of ``X`` is a whole number in ``[0, input_dim)``."""
        X = np.asarray(X)
        bad = ~((X >= 0) & (X < self.input_dim) & (X == np.floor(X)))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"Embedding token ids must be integers in [0, {self.input_dim}) (input_dim); {name} "
                             f"holds {X[where]!r} at index {where}")

    def forward(self, X, training=False, backend=None):
        X = _rows(X, self.n_inputs, "Embedding")
        self.check_ids(X)
        n = X.shape[0]
        m = n * self.timesteps
        dtype = self.params["E"].dtype
        ids = self._buffer("ids", (m,), np.int64) if training else np.empty(m, np.int64)
        ids[...] = X.reshape(m)
        out = self._buffer("out", (n, self.n_outputs), dtype) if training else np.empty((n, self.n_outputs), dtype)
        get_backend(backend).embedding_forward(ids, self.params["E"], out.reshape(m, self.output_dim))
        self._ids = ids
        self.output_mask = (ids.reshape(n, self.timesteps) != 0).astype(dtype) if self.mask_zero else None
        return out

    def backward(self, dA, backend=None, need_dX=True):
        """Write dE; ids have no gradient (zeros when ``need_dX``)."""
        ids = self._ids
        dA = np.ascontiguousarray(dA, dtype=self.params["E"].dtype)
        get_backend(backend).embedding_backward(ids, dA.reshape(ids.shape[0], self.output_dim), self.grads["E"])
        if not need_dX:
            return None
        dX = self._buffer("dX", (dA.shape[0], self.n_inputs), dA.dtype)
        dX[...] = 0
        return dX

    def get_config(self):
        cfg = {"input_dim": self.input_dim, "output_dim": self.output_dim}
        if self.mask_zero:
            cfg["mask_zero"] = True
        return cfg


def sinusoidal_encoding(timesteps, width):
    """The (timesteps, width) table of Vaswani et al. (2017): sin on even columns, cos on odd ones."""
    pos = np.arange(timesteps, dtype=np.float64)[:, None]
    freq = np.exp(-math.log(10000.0) * (np.arange(0, width, 2, dtype=np.float64) / width))
    pe = np.zeros((timesteps, width))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, :width // 2]
    return pe


@register
class PositionalEncoding(Layer):
    """Adds the fixed sinusoidal position table to ``(T, D)`` sequences (Vaswani et al., 2017); no parameters."""

    def __init__(self):
        self.timesteps = self.width = None

    def build(self, input_shape):
        self.timesteps, self.width = _sequence_shape(input_shape, "PositionalEncoding")
        self.n_inputs = self.n_outputs = self.timesteps * self.width
        self._table = sinusoidal_encoding(self.timesteps, self.width).reshape(-1)

    def forward(self, X, training=False, backend=None):
        X = _rows(X, self.n_inputs, "PositionalEncoding")
        out = self._buffer("out", X.shape, X.dtype) if training else np.empty(X.shape, X.dtype)
        np.add(X, self._table.astype(X.dtype, copy=False), out=out)
        self.output_mask = self.incoming_mask()
        return out

    def backward(self, dA, backend=None, need_dX=True):
        return dA

    def get_config(self):
        return {}


@register
class Masking(Layer):
    """Mark padding steps of ``(T, F)`` sequences (Keras ``Masking``): a step whose features all equal
    ``mask_value`` is padding. Those steps come out as zeros, and the sequence layers after this one
    (recurrent layers, attention, pooling) skip them (:attr:`output_mask`).

    Parameters
    ----------
    mask_value : float, default 0.0
    """

    mask_value = Param(Real())  # a finite number (declared rule)
    makes_mask = True

    def __init__(self, mask_value=0.0):
        self.mask_value = mask_value
        self.timesteps = self.features = None

    def build(self, input_shape):
        self.timesteps, self.features = _sequence_shape(input_shape, "Masking")
        self.n_inputs = self.n_outputs = self.timesteps * self.features

    def forward(self, X, training=False, backend=None):
        X = _rows(X, self.n_inputs, "Masking")
        n = X.shape[0]
        X3 = X.reshape(n, self.timesteps, self.features)
        mask = (X3 != self.mask_value).any(axis=2).astype(X.dtype)
        out = np.multiply(X3, mask[:, :, None]).reshape(n, self.n_inputs)
        self.output_mask = mask
        return out

    def backward(self, dA, backend=None, need_dX=True):
        if not need_dX:
            return None
        n = dA.shape[0]
        return (np.asarray(dA).reshape(n, self.timesteps, self.features) * self.output_mask[:, :, None]).reshape(
            n, self.n_inputs)

    def get_config(self):
        return {"mask_value": self.mask_value}


@register
class GlobalAveragePooling1D(Layer):
    """Mean over the time axis: ``(T, F)`` -> ``(F,)`` per sample (Keras ``GlobalAveragePooling1D``)."""

    def __init__(self):
        self.timesteps = self.features = None

    def output_shape(self, input_shape):
        return (_sequence_shape(input_shape, "GlobalAveragePooling1D")[1],)

    def build(self, input_shape):
        self.timesteps, self.features = _sequence_shape(input_shape, "GlobalAveragePooling1D")
        self.n_inputs = self.timesteps * self.features
        self.n_outputs = self.features

    def forward(self, X, training=False, backend=None, mask=None):
        """Mean over the steps; with a padding ``mask`` (n, T) of 0/1 (default: the previous layer's), over
        the real steps only (a sequence without any counts as one step of zeros)."""
        X = _rows(X, self.n_inputs, "GlobalAveragePooling1D")
        n = X.shape[0]
        if mask is None:
            mask = self.incoming_mask()
        out = self._buffer("out", (n, self.features), X.dtype) if training else np.empty((n, self.features), X.dtype)
        X3 = X.reshape(n, self.timesteps, self.features)
        if mask is None:
            np.mean(X3, axis=1, out=out)
            self._weights = None
        else:
            from .recurrent import check_mask

            m = check_mask(mask, n, self.timesteps, "GlobalAveragePooling1D").astype(X.dtype)
            w = m / np.maximum(m.sum(axis=1, keepdims=True), 1)  # (n, T) weight of each step
            np.einsum("nt,ntf->nf", w, X3, out=out)
            self._weights = w
        return out

    def backward(self, dA, backend=None, need_dX=True):
        if not need_dX:
            return None
        n = dA.shape[0]
        dX = self._buffer("dX", (n, self.n_inputs), dA.dtype)
        d3 = np.asarray(dA).reshape(n, 1, self.features)
        if self._weights is None:
            np.multiply(d3, dA.dtype.type(1.0 / self.timesteps), out=dX.reshape(n, self.timesteps, self.features))
        else:
            np.multiply(d3, self._weights[:, :, None], out=dX.reshape(n, self.timesteps, self.features))
        return dX

    def get_config(self):
        return {}


@register
class TimeDistributed(Layer):
    """Apply a flat-row layer (e.g. ``Dense``) to every step of ``(T, F)`` sequences: ``(T, F)`` -> ``(T, F')``.

    The wrapped layer sees the ``n * T`` steps as rows of one batch (one GEMM
    for a Dense), with one set of weights shared by all steps.

    Parameters
    ----------
    layer : Layer
        A layer taking flat samples (``Dense``, ``LayerNorm``, ...).
    """

    def __init__(self, layer=None, *, layer_type=None, layer_config=None):
        if layer_type is not None or layer_config is not None:  # model files: the constructor is the validator
            if layer is not None:
                raise TypeError("TimeDistributed: give a layer, or layer_type and layer_config, not both")
            layer = self._inner_from_config(layer_type, layer_config)
        if not isinstance(layer, Layer) or isinstance(layer, TimeDistributed):
            raise TypeError(f"TimeDistributed wraps a fastnn layer, not {type(layer).__name__}")
        self.layer = layer
        self.timesteps = self.features = None

    def output_shape(self, input_shape):
        T, F = _sequence_shape(input_shape, "TimeDistributed")
        inner = tuple(self.layer.output_shape((F,)))
        return (T,) + inner

    def build(self, input_shape):
        self.timesteps, self.features = _sequence_shape(input_shape, "TimeDistributed")
        try:
            self.layer.build((self.features,))
        except ValueError as exc:
            raise ValueError(f"TimeDistributed({type(self.layer).__name__}): {exc}") from None
        out = self.output_shape(input_shape)
        if len(out) != 2:
            raise ValueError(f"TimeDistributed needs a layer with flat outputs, got step shape {out[1:]}")
        self.n_inputs = self.timesteps * self.features
        self.n_outputs = self.timesteps * out[1]

    def param_shapes(self):
        return self.layer.param_shapes()

    def init_params(self, params, rng):
        self.layer.init_params(params, rng)

    def bind(self, params, grads):
        super().bind(params, grads)
        self.layer.bind(params, grads)

    def buffer_shapes(self):
        return self.layer.buffer_shapes()

    def init_buffers(self, buffers):
        self.layer.init_buffers(buffers)

    def bind_buffers(self, buffers):
        super().bind_buffers(buffers)
        self.layer.bind_buffers(buffers)

    def forward(self, X, training=False, backend=None):
        X = _rows(X, self.n_inputs, "TimeDistributed")
        n = X.shape[0]
        A = self.layer.forward(X.reshape(n * self.timesteps, self.features), training=training, backend=backend)
        self.output_mask = self.incoming_mask()
        return A.reshape(n, self.n_outputs)

    def backward(self, dA, backend=None, need_dX=True):
        n = dA.shape[0]
        dA = np.ascontiguousarray(dA).reshape(n * self.timesteps, self.n_outputs // self.timesteps)
        dX = self.layer.backward(dA, backend=backend, need_dX=need_dX)
        return None if dX is None else dX.reshape(n, self.n_inputs)

    @property
    def has_penalty(self):
        """The wrapped layer's L1/L2 penalty joins the loss (Dense(l1=, l2=))."""
        return getattr(self.layer, "has_penalty", False)

    def penalty(self):
        return self.layer.penalty()

    def add_penalty_gradient(self):
        self.layer.add_penalty_gradient()

    def get_config(self):
        # Model-file configs hold JSON scalars and lists only: the wrapped layer's config as [key, value] pairs.
        return {"layer_type": type(self.layer).__name__,
                "layer_config": [[key, value] for key, value in self.layer.get_config().items()]}

    @staticmethod
    def _inner_from_config(type_name, pairs):
        if not isinstance(type_name, str) or not isinstance(pairs, list) or \
                not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise ValueError("TimeDistributed config needs layer_type (a layer type name) and layer_config "
                             "(a list of [name, value] pairs)")
        return layer_from_config(type_name, dict(pairs))

    def __repr__(self):
        return f"TimeDistributed({self.layer!r})"
