"""Recurrent layers: SimpleRNN, LSTM and GRU over sequences ``(timesteps, features)``, one sequence per row.

Each layer runs a whole batch of sequences in two kernel calls (the ``rnn``
family: :mod:`fastnn.kernels.reference.rnn` states the contract): forward,
with the input projection of the whole sequence as one GEMM and the
recurrence step by step; backward, backpropagation through time inside the
kernel. Inference (``training=False``: predict) runs the layer's ``*_infer`` kernel
instead, which keeps only the state (no per-step gates for backward). The kernels work time-major ``(T, n, .)``; the layer transposes its
sample rows in and out (cached buffers in training, so no per-batch
allocation). Parameters follow Keras: ``W`` (the input kernel, ``(F, g*units)``),
``U`` (the recurrent kernel, ``(units, g*units)``) and ``b``, with ``g`` gate
blocks side by side -- LSTM ``i, f, c, o`` (the same as PyTorch's ``i, f, g, o``),
GRU ``z, r, h`` (Keras; PyTorch orders ``r, z, n``). The initial state is zero.
"""
import math

import numpy as np

from .._validation import Boolean, Integer, Param
from ..kernels import get_backend
from .base import Layer, register


def check_mask(mask, n, T, cls):
    """A padding mask as an (n, T) array of 0/1, or ValueError naming the layer and the sizes."""
    m = np.asarray(mask)
    if m.shape != (n, T):
        raise ValueError(f"{cls} mask must have shape (n, T) = ({n}, {T}), one flag per step, got {m.shape}")
    if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
        raise ValueError(f"{cls} mask must hold 0/1 (or booleans): 1 for a real step, 0 for padding")
    return m


def _orthogonal(rng, shape):
    """Keras's orthogonal initializer: a (semi-)orthogonal matrix of ``shape`` from the QR of a normal one."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


class _Recurrent(Layer):
    """Shared parts: shapes, parameters, the sample-rows <-> time-major moves, the input check."""

    n_gates = 1
    splits_rows = True  # the rnn kernels run one block of rows per thread
    # declared rules: checked in the constructor, on every later assignment and in model files
    units = Param(Integer(1))
    return_sequences = Param(Boolean())

    def __init__(self, units, return_sequences=False):
        self.units = units
        self.return_sequences = return_sequences
        self.timesteps = self.features = None

    # ------------------------------------------------------------------ shapes
    def output_shape(self, input_shape):
        """``(timesteps, units)`` with ``return_sequences``, else ``(units,)``."""
        self._check_shape(input_shape)
        return (int(input_shape[0]), self.units) if self.return_sequences else (self.units,)

    def _check_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} takes sequences: a per-sample shape (timesteps, features), "
                             f"got {tuple(input_shape)}; give the Network input_shape=(T, F) and data of shape "
                             f"(n, T, F)")

    def build(self, input_shape):
        """Fix ``timesteps`` and ``features`` from the per-sample shape ``(T, F)``."""
        self._check_shape(input_shape)
        self.timesteps, self.features = int(input_shape[0]), int(input_shape[1])
        self.n_inputs = self.timesteps * self.features
        self.n_outputs = int(np.prod(self.output_shape(input_shape)))

    def _check_built(self):
        if self.features is None:
            raise ValueError(f"{type(self).__name__} input shape is unknown: build it into a Network with "
                             f"input_shape=(timesteps, features)")

    def param_shapes(self):
        self._check_built()
        g = self.n_gates * self.units
        return {"W": (self.features, g), "U": (self.units, g), "b": (g,)}

    def init_params(self, params, rng):
        """Keras defaults: W Glorot-uniform, U orthogonal, b zeros."""
        W = params["W"]
        lim = math.sqrt(6.0 / (W.shape[0] + W.shape[1]))
        W[...] = rng.uniform(-lim, lim, W.shape)
        params["U"][...] = _orthogonal(rng, params["U"].shape)
        params["b"][...] = 0

    # ------------------------------------------------------------------ data movement
    def _time_major(self, X, training):
        """Validated ``X`` as a time-major (T, n, F) array of the parameter dtype."""
        self._check_built()
        T, F = self.timesteps, self.features
        X = np.asarray(X)
        if X.ndim == 3 and X.shape[1:] == (T, F):
            pass
        elif X.ndim == 2 and X.shape[1] == T * F:
            X = X.reshape(X.shape[0], T, F)
        else:
            raise ValueError(f"{type(self).__name__} expects sequences of shape (n, {T}, {F}) (or rows of "
                             f"{T * F} values), got an array of shape {X.shape}")
        n = X.shape[0]
        dtype = self.params["W"].dtype
        Xt = self._work("Xt", (T, n, F), dtype, training)
        Xt[...] = X.transpose(1, 0, 2)
        return Xt

    def _time_major_mask(self, mask, n, dtype, training):
        """The kernels' (T, n) mask from ``mask`` or the previous layer's output mask (None: no padding).
        Sets :attr:`output_mask` for the next layer (the mask goes on with ``return_sequences``)."""
        if mask is None:
            mask = self.incoming_mask()
        if mask is not None:
            mask = check_mask(mask, n, self.timesteps, type(self).__name__)
        self.output_mask = mask if self.return_sequences else None
        if mask is None:
            return None
        mt = self._work("mask", (self.timesteps, n), dtype, training)
        mt[...] = mask.T
        return mt

    def _work(self, key, shape, dtype, training):
        """A cached buffer in training (reused every batch); a fresh array at inference (thread-safe predict)."""
        return self._buffer(key, shape, dtype) if training else np.empty(shape, dtype)

    def _output(self, Hs, training):
        """Rows (n, T*units) of every hidden state, or the last state (n, units)."""
        T, n, k = Hs.shape
        if not self.return_sequences:
            return Hs[T - 1] if training else Hs[T - 1].copy()
        out = self._work("out", (n, T * k), Hs.dtype, training)
        out.reshape(n, T, k)[...] = Hs.transpose(1, 0, 2)
        return out

    def _infer(self, kern, Xt, mt):
        """Inference: only the state is kept (the layer's ``*_infer`` kernel), nothing is cached for
        backward; fresh arrays, so concurrent predicts share nothing."""
        T, n, _ = Xt.shape
        Hs = np.empty((T if self.return_sequences else 1, n, self.units), Xt.dtype)
        self._infer_kernel(kern, Xt, mt, Hs)
        return self._output(Hs, False) if self.return_sequences else Hs[0]

    def _dH(self, dA, shape, dtype):
        """The time-major gradient w.r.t. every hidden state, from the gradient of the output rows."""
        T, n, k = shape
        dH = self._buffer("dH", shape, dtype)
        dA = np.asarray(dA)
        if self.return_sequences:
            dH[...] = dA.reshape(n, T, k).transpose(1, 0, 2)
        else:
            dH[:T - 1] = 0
            dH[T - 1] = dA.reshape(n, k)
        return dH

    def _dX_rows(self, dXt):
        T, n, F = dXt.shape
        dX = self._buffer("dX", (n, T * F), dXt.dtype)
        dX.reshape(n, T, F)[...] = dXt.transpose(1, 0, 2)
        return dX

    def get_config(self):
        return {"units": self.units, "return_sequences": self.return_sequences}


@register
class SimpleRNN(_Recurrent):
    """Fully connected recurrent layer (Keras ``SimpleRNN``): ``h_t = tanh(x_t W + h_{t-1} U + b)``.

    Parameters
    ----------
    units : int
        Width of the hidden state.
    return_sequences : bool, default False
        Output every step's state, ``(T, units)`` per sample, instead of the last one, ``(units,)``.
    """

    def forward(self, X, training=False, backend=None, mask=None):
        """Run every step; ``mask`` (n, T) of 0/1 marks padding (default: the previous layer's mask)."""
        kern = get_backend(backend)
        Xt = self._time_major(X, training)
        T, n, _ = Xt.shape
        dtype = Xt.dtype
        mt = self._time_major_mask(mask, n, dtype, training)
        if not training:
            return self._infer(kern, Xt, mt)
        Hs = self._work("H", (T, n, self.units), dtype, training)
        scratch = self._work("scratch", (n, self.units), dtype, training)
        kern.simple_rnn_forward(Xt, self.params["W"], self.params["U"], self.params["b"], mt, Hs, scratch)
        self._cache = (Xt, Hs, mt)
        return self._output(Hs, training)

    def _infer_kernel(self, kern, Xt, mt, Hs):
        kern.simple_rnn_infer(Xt, self.params["W"], self.params["U"], self.params["b"], mt, Hs,
                              np.empty((2,) + Hs.shape[1:], Xt.dtype))

    def backward(self, dA, backend=None, need_dX=True):
        """Write dW, dU, db into the gradient views; return dX rows (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        Xt, Hs, mt = self._cache
        dtype = Xt.dtype
        dH = self._dH(dA, Hs.shape, dtype)
        dXt = self._buffer("dXt", Xt.shape, dtype) if need_dX else None
        g = self.grads
        kern.simple_rnn_backward(Xt, self.params["W"], self.params["U"], Hs, dH, mt, g["W"], g["U"], g["b"], dXt,
                                 self._buffer("dZ", Hs.shape, dtype), self._buffer("dh", (2,) + Hs.shape[1:], dtype))
        return self._dX_rows(dXt) if need_dX else None


@register
class LSTM(_Recurrent):
    """Long short-term memory layer (Hochreiter & Schmidhuber, 1997; Keras ``LSTM``, PyTorch ``nn.LSTM``).

    Gates ``i, f, g, o`` = sigmoid, sigmoid, tanh, sigmoid of ``x W + h U + b``;
    ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``. The forget-gate bias starts
    at 1 (Keras ``unit_forget_bias``), the rest of ``b`` at 0.

    Parameters
    ----------
    units : int
        Width of the hidden (and cell) state.
    return_sequences : bool, default False
        Output every step's hidden state, ``(T, units)`` per sample, instead of the last one.
    """

    n_gates = 4

    def init_params(self, params, rng):
        super().init_params(params, rng)
        params["b"][self.units:2 * self.units] = 1  # unit_forget_bias

    def forward(self, X, training=False, backend=None, mask=None):
        """Run every step; ``mask`` (n, T) of 0/1 marks padding (default: the previous layer's mask)."""
        kern = get_backend(backend)
        Xt = self._time_major(X, training)
        T, n, _ = Xt.shape
        dtype = Xt.dtype
        k = self.units
        mt = self._time_major_mask(mask, n, dtype, training)
        if not training:
            return self._infer(kern, Xt, mt)
        Hs = self._work("H", (T, n, k), dtype, training)
        Cs = self._work("C", (T, n, k), dtype, training)
        Gs = self._work("G", (T, n, 4 * k), dtype, training)
        scratch = self._work("scratch", (n, 4 * k), dtype, training)
        kern.lstm_forward(Xt, self.params["W"], self.params["U"], self.params["b"], mt, Hs, Cs, Gs, scratch)
        self._cache = (Xt, Hs, Cs, Gs, mt)
        return self._output(Hs, training)

    def _infer_kernel(self, kern, Xt, mt, Hs):
        n, k = Hs.shape[1:]
        kern.lstm_infer(Xt, self.params["W"], self.params["U"], self.params["b"], mt, Hs,
                        np.empty((n, k), Xt.dtype), np.empty((2, n, 4 * k), Xt.dtype))

    def backward(self, dA, backend=None, need_dX=True):
        """Write dW, dU, db into the gradient views; return dX rows (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        Xt, Hs, Cs, Gs, mt = self._cache
        dtype = Xt.dtype
        dH = self._dH(dA, Hs.shape, dtype)
        dXt = self._buffer("dXt", Xt.shape, dtype) if need_dX else None
        g = self.grads
        kern.lstm_backward(Xt, self.params["W"], self.params["U"], Hs, Cs, Gs, dH, mt, g["W"], g["U"], g["b"], dXt,
                           self._buffer("dG", Gs.shape, dtype), self._buffer("dh", (2,) + Hs.shape[1:], dtype),
                           self._buffer("dc", Hs.shape[1:], dtype))
        return self._dX_rows(dXt) if need_dX else None


@register
class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al., 2014; Keras ``GRU``, PyTorch ``nn.GRU``).

    ``z, r = sigmoid(...)``, ``h_t = z h_{t-1} + (1 - z) n``; gate blocks in
    Keras order ``z, r, h``.

    Parameters
    ----------
    units : int
        Width of the hidden state.
    return_sequences : bool, default False
        Output every step's state, ``(T, units)`` per sample, instead of the last one.
    reset_after : bool, default True
        Keras's flag: True applies the reset gate after the recurrent matrix product,
        ``n = tanh(x W_h + b_h + r * (h U_h + bh_h))`` (Keras's default, PyTorch's and
        cuDNN's form; ``b`` then has shape ``(2, 3*units)``: input and recurrent
        biases); False is the original GRU, ``n = tanh(x W_h + b_h + (r * h) U_h)``
        with one bias ``(3*units,)``.
    """

    n_gates = 3
    reset_after = Param(Boolean())

    def __init__(self, units, return_sequences=False, reset_after=True):
        super().__init__(units, return_sequences)
        self.reset_after = reset_after

    def param_shapes(self):
        shapes = super().param_shapes()
        if self.reset_after:
            shapes["b"] = (2, 3 * self.units)
        return shapes

    def _biases(self, dtype):
        b = self.params["b"]
        if self.reset_after:
            return b[0], b[1]
        return b, self._buffer("zero_bh", (3 * self.units,), dtype)  # unused by the kernels' other form

    def forward(self, X, training=False, backend=None, mask=None):
        """Run every step; ``mask`` (n, T) of 0/1 marks padding (default: the previous layer's mask)."""
        kern = get_backend(backend)
        Xt = self._time_major(X, training)
        T, n, _ = Xt.shape
        dtype = Xt.dtype
        k = self.units
        mt = self._time_major_mask(mask, n, dtype, training)
        if not training:
            return self._infer(kern, Xt, mt)
        Hs = self._work("H", (T, n, k), dtype, training)
        Gs = self._work("G", (T, n, 3 * k), dtype, training)
        HH = self._work("HH", (T, n, k), dtype, training)
        scratch = self._work("scratch", (n, 3 * k), dtype, training)
        b, b_h = self._biases(dtype)
        if not self.reset_after:
            b_h[...] = 0
        kern.gru_forward(Xt, self.params["W"], self.params["U"], b, b_h, self.reset_after, mt, Hs, Gs, HH, scratch)
        self._cache = (Xt, Hs, Gs, HH, mt)
        return self._output(Hs, training)

    def _infer_kernel(self, kern, Xt, mt, Hs):
        b = self.params["b"]
        b, b_h = (b[0], b[1]) if self.reset_after else (b, b)  # b_h: unused by the original form
        kern.gru_infer(Xt, self.params["W"], self.params["U"], b, b_h, self.reset_after, mt, Hs,
                       np.empty((2,) + Hs.shape[1:2] + (3 * self.units,), Xt.dtype))

    def backward(self, dA, backend=None, need_dX=True):
        """Write dW, dU, db into the gradient views; return dX rows (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        Xt, Hs, Gs, HH, mt = self._cache
        dtype = Xt.dtype
        dH = self._dH(dA, Hs.shape, dtype)
        dXt = self._buffer("dXt", Xt.shape, dtype) if need_dX else None
        g = self.grads
        if self.reset_after:
            db, db_h = g["b"][0], g["b"][1]
        else:
            db, db_h = g["b"], self._buffer("db_h_unused", (3 * self.units,), dtype)
        kern.gru_backward(Xt, self.params["W"], self.params["U"], Hs, Gs, HH, dH, self.reset_after, mt,
                          g["W"], g["U"], db, db_h, dXt, self._buffer("dGx", Gs.shape, dtype),
                          self._buffer("dGh", Gs.shape, dtype), self._buffer("dh", (2,) + Hs.shape[1:], dtype))
        return self._dX_rows(dXt) if need_dX else None

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@register
class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards in time; concatenate both (Keras ``Bidirectional``).

    Output per sample: ``(2 * units,)`` (the forward layer's last state, then the
    backward layer's, which has read the whole sequence from its end), or
    ``(T, 2 * units)`` with ``return_sequences`` (step ``t`` of both directions
    side by side). The two directions have their own weights.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        The forward layer; the backward one is a fresh layer of the same configuration.
    """

    def __init__(self, layer=None, *, layer_type=None, layer_config=None):
        if layer_type is not None or layer_config is not None:  # model files: the constructor is the validator
            if layer is not None:
                raise TypeError("Bidirectional: give a layer, or layer_type and layer_config, not both")
            if layer_type not in ("SimpleRNN", "LSTM", "GRU") or not isinstance(layer_config, list) or \
                    not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in layer_config):
                raise ValueError("Bidirectional config needs layer_type (SimpleRNN, LSTM or GRU) and layer_config "
                                 "(a list of [name, value] pairs)")
            layer = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}[layer_type](**dict(layer_config))
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional wraps a SimpleRNN, LSTM or GRU, not {type(layer).__name__}")
        self.forward_layer = layer
        self.backward_layer = type(layer)(**layer.get_config())
        self.return_sequences = layer.return_sequences
        self.timesteps = self.features = None

    splits_rows = True  # two recurrent layers

    def output_shape(self, input_shape):
        inner = self.forward_layer.output_shape(input_shape)
        return inner[:-1] + (2 * inner[-1],)

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        self.timesteps, self.features = self.forward_layer.timesteps, self.forward_layer.features
        self.n_inputs = self.forward_layer.n_inputs
        self.n_outputs = 2 * self.forward_layer.n_outputs

    def _parts(self):
        return (("forward", self.forward_layer), ("backward", self.backward_layer))

    def param_shapes(self):
        return {f"{d}.{name}": shape for d, part in self._parts() for name, shape in part.param_shapes().items()}

    def _split(self, flat):
        return {d: {name: flat[f"{d}.{name}"] for name in part.param_shapes()} for d, part in self._parts()}

    def init_params(self, params, rng):
        split = self._split(params)
        for d, part in self._parts():
            part.init_params(split[d], rng)

    def bind(self, params, grads):
        super().bind(params, grads)
        ps, gs = self._split(params), self._split(grads)
        for d, part in self._parts():
            part.bind(ps[d], gs[d])

    def _reversed(self, A, width, key, training=True):
        """Rows (n, T*width) with the time axis reversed: into a cached buffer in training, a fresh
        array at inference (concurrent predicts never share one)."""
        n = A.shape[0]
        shape = (n, self.timesteps * width)
        out = self._buffer(key, shape, A.dtype) if training else np.empty(shape, A.dtype)
        out.reshape(n, self.timesteps, width)[...] = np.asarray(A).reshape(n, self.timesteps, width)[:, ::-1]
        return out

    def forward(self, X, training=False, backend=None, mask=None):
        """Both directions; ``mask`` (n, T) of 0/1 marks padding (default: the previous layer's mask)."""
        Xt = self.forward_layer._time_major(X, False)  # validates the shape; rows below
        n = Xt.shape[1]
        if mask is None:
            mask = self.incoming_mask()
        if mask is not None:
            mask = check_mask(mask, n, self.timesteps, "Bidirectional")
        self.output_mask = mask if self.return_sequences else None
        rows = np.ascontiguousarray(Xt.transpose(1, 0, 2)).reshape(n, -1)
        a = self.forward_layer.forward(rows, training=training, backend=backend, mask=mask)
        b = self.backward_layer.forward(self._reversed(rows, self.features, "Xrev", training), training=training,
                                        backend=backend, mask=None if mask is None else mask[:, ::-1])
        k = self.forward_layer.units
        out = np.empty((n, self.n_outputs), a.dtype)
        if self.return_sequences:
            o = out.reshape(n, self.timesteps, 2 * k)
            o[:, :, :k] = a.reshape(n, self.timesteps, k)
            o[:, :, k:] = b.reshape(n, self.timesteps, k)[:, ::-1]
        else:
            out[:, :k], out[:, k:] = a, b
        return out

    def backward(self, dA, backend=None, need_dX=True):
        """Write both directions' gradients; return dX rows (None if ``need_dX`` is False)."""
        n = dA.shape[0]
        k = self.forward_layer.units
        dA = np.asarray(dA)
        if self.return_sequences:
            d = dA.reshape(n, self.timesteps, 2 * k)
            da = np.ascontiguousarray(d[:, :, :k]).reshape(n, -1)
            db = np.ascontiguousarray(d[:, ::-1, k:]).reshape(n, -1)
        else:
            da, db = np.ascontiguousarray(dA[:, :k]), np.ascontiguousarray(dA[:, k:])
        dXa = self.forward_layer.backward(da, backend=backend, need_dX=need_dX)
        dXb = self.backward_layer.backward(db, backend=backend, need_dX=need_dX)
        if not need_dX:
            return None
        dX = self._buffer("dX", dXa.shape, dXa.dtype)
        np.add(dXa, self._reversed(dXb, self.features, "dXrev"), out=dX)
        return dX

    def get_config(self):
        return {"layer_type": type(self.forward_layer).__name__,
                "layer_config": [[key, value] for key, value in self.forward_layer.get_config().items()]}

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r})"
