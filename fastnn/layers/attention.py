"""Self-attention: MultiHeadAttention and a pre-LayerNorm TransformerBlock over ``(T, D)`` sequences.

MultiHeadAttention runs three kernel calls each way: the fused query/key/value
projection of all ``n*T`` steps as one GEMM (``dense_forward``), the
attention of every (sample, head) pair (the ``attention`` family: batched
GEMMs per head, stable row softmax), and the output projection (one GEMM).
TransformerBlock calls the kernels of its parts itself (nine kernel calls and
two residual adds each way), not the parts' ``forward``/``backward``; at
inference its work buffers are per-thread scratch kept between calls
(:func:`_scratch`), so a chunked predict allocates only each block's output.
"""
import math
import threading

import numpy as np

from .._validation import Boolean, Integer, Param, Real
from ..kernels import get_backend
from ..kernels.codes import ACT_LINEAR
from .base import Layer, register
from .dense import Dense
from .normalization import LayerNorm
from .recurrent import check_mask


def _sequence_shape(input_shape, cls):
    if len(input_shape) != 2:
        raise ValueError(f"{cls} takes sequences: a per-sample shape (timesteps, width), got {tuple(input_shape)}")
    return int(input_shape[0]), int(input_shape[1])


_SCRATCH = threading.local()  # per thread: concurrent predicts (row blocks) never share a buffer


def _scratch(owner):
    """``work(key, shape, dtype)`` for inference: a C-contiguous buffer of the calling thread, kept between
    calls (one per owner, key and shape), contents undefined. Only for buffers that do not escape the
    call: the predict of a batch-1000 transformer in 64-row chunks otherwise allocated ~4 MB per chunk
    (page faults on every first touch)."""
    cache = getattr(_SCRATCH, "arrays", None)
    if cache is None:
        cache = _SCRATCH.arrays = {}
    oid = id(owner)

    def work(key, shape, dtype):
        full = (oid, key)
        buf = cache.get(full)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            if len(cache) >= 256:  # a few dozen buffers per model: do not keep every layer ever seen
                cache.clear()
            buf = cache[full] = np.empty(shape, dtype)
        return buf
    return work


def _glorot(rng, W):
    lim = math.sqrt(6.0 / (W.shape[0] + W.shape[1]))
    W[...] = rng.uniform(-lim, lim, W.shape)


@register
class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product self-attention (Vaswani et al., 2017), ``(T, D)`` -> ``(T, D)``.

    ``Q, K, V = X Wq + bq, X Wk + bk, X Wv + bv`` (one fused kernel ``Wqkv (D, 3*D)``),
    per head ``softmax(q k.T / sqrt(key_dim)) v``, heads concatenated, then
    ``@ Wo + bo``. The same computation as ``torch.nn.MultiheadAttention`` with
    ``in_proj_weight = Wqkv.T``, ``out_proj.weight = Wo.T``.

    Parameters
    ----------
    num_heads : int
    key_dim : int, optional
        Width of each head; ``num_heads * key_dim`` must equal the input width
        ``D`` (default ``D // num_heads``, which must divide evenly).
    causal : bool, default False
        Step ``t`` attends only to steps ``<= t`` (language models).
    """

    # declared rules: checked in the constructor, on every later assignment and in model files
    num_heads = Param(Integer(1))
    key_dim = Param(Integer(1, optional=True))
    causal = Param(Boolean())
    splits_rows = True  # the attention kernel runs one block of (sample, head) pairs per thread
    # QKV, scores and outputs are ~6 T*D values a sample: 64 samples keep them cache-sized. Measured on
    # the bench.inference transformer, batch 1000, 1 thread (loaded machine): 64-sample chunks 1.38x
    # 4096 (32: 1.29x, 128: 1.28x, 256: 1.13x); 2 threads 1.18x.
    predict_chunk = 64

    def __init__(self, num_heads, key_dim=None, causal=False):
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.causal = causal
        self.timesteps = self.width = None

    def build(self, input_shape):
        T, D = _sequence_shape(input_shape, "MultiHeadAttention")
        h = self.num_heads
        dk = self.key_dim if self.key_dim is not None else D // h
        if dk < 1 or h * dk != D:
            raise ValueError(f"MultiHeadAttention: key_dim={dk if self.key_dim is not None else 'D // num_heads'} "
                             f"with num_heads={h} does not split the width D={D} (need num_heads * key_dim == D)")
        self.timesteps, self.width, self.head_dim = T, D, dk
        self.n_inputs = self.n_outputs = T * D

    def _check_built(self):
        if self.width is None:
            raise ValueError("MultiHeadAttention input shape is unknown: build it into a Network with "
                             "input_shape=(timesteps, width)")

    def param_shapes(self):
        self._check_built()
        D = self.width
        return {"Wqkv": (D, 3 * D), "bqkv": (3 * D,), "Wo": (D, D), "bo": (D,)}

    def init_params(self, params, rng):
        """Glorot-uniform kernels (each of q, k, v on its own D x D block), zero biases."""
        D = self.width
        for j in range(3):
            _glorot(rng, params["Wqkv"][:, j * D:(j + 1) * D])
        _glorot(rng, params["Wo"])
        params["bqkv"][...] = 0
        params["bo"][...] = 0

    def _rows(self, X):
        self._check_built()
        X = np.asarray(X)
        n_values = self.timesteps * self.width
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != n_values:
            raise ValueError(f"MultiHeadAttention expects sequences of shape (n, {self.timesteps}, {self.width}), "
                             f"got an array of shape {X.shape}")
        return np.ascontiguousarray(X.reshape(X.shape[0] * self.timesteps, self.width),
                                    dtype=self.params["Wqkv"].dtype)

    def _key_mask(self, mask, n, dtype):
        """The padding mask for ``n`` sequences (default: the previous layer's), checked, in ``dtype``."""
        if mask is None:
            mask = self.incoming_mask()
        if mask is not None:
            mask = np.ascontiguousarray(check_mask(mask, n, self.timesteps, type(self).__name__), dtype=dtype)
        self.output_mask = mask
        return mask

    def _forward_rows(self, kern, X2, n, mask, work, out):
        """The three kernel calls on rows ``X2`` (n*T, D) into ``out`` (n*T, D); ``work(key, shape, dtype)``
        gives the buffers that :meth:`backward` reads (cached by it)."""
        m, D = X2.shape
        T, h = self.timesteps, self.num_heads
        dtype = X2.dtype
        QKV = work("QKV", (m, 3 * D), dtype)
        P = work("P", (n, h, T, T), dtype)
        O = work("O", (m, D), dtype)
        p = self.params
        kern.dense_forward(X2, p["Wqkv"], p["bqkv"], ACT_LINEAR, 0.0, QKV, QKV)
        kern.attention_forward(QKV.reshape(n, T, 3 * D), h, self.causal, mask, P, O.reshape(n, T, D))
        kern.dense_forward(O, p["Wo"], p["bo"], ACT_LINEAR, 0.0, out, out)
        self._cache = (X2, QKV, P, O, out)

    def forward(self, X, training=False, backend=None, mask=None):
        """Self-attention; ``mask`` (n, T) of 0/1 marks padded steps, which no query attends to (default:
        the previous layer's mask; it is passed on)."""
        kern = get_backend(backend)
        X2 = self._rows(X)
        m, D = X2.shape
        n = m // self.timesteps
        mask = self._key_mask(mask, n, X2.dtype)
        out = self._buffer("out", (m, D), X2.dtype) if training else np.empty((m, D), X2.dtype)
        self._forward_rows(kern, X2, n, mask, self._buffer if training else _scratch(self), out)
        return out.reshape(n, self.timesteps * D)

    def backward(self, dA, backend=None, need_dX=True):
        """Write the four parameter gradients; return dX rows (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        X2, QKV, P, O, out = self._cache
        m, D = X2.shape
        T, h = self.timesteps, self.num_heads
        n = m // T
        dtype = X2.dtype
        dA2 = np.ascontiguousarray(dA, dtype=dtype).reshape(m, D)
        p, g = self.params, self.grads
        dO = self._buffer("dO", (m, D), dtype)
        kern.dense_backward(O, p["Wo"], out, out, dA2, ACT_LINEAR, 0.0, self._buffer("dZo", (m, D), dtype),
                            g["Wo"], g["bo"], dO)
        dQKV = self._buffer("dQKV", (m, 3 * D), dtype)
        kern.attention_backward(QKV.reshape(n, T, 3 * D), P, dO.reshape(n, T, D), h, self.causal,
                                self._buffer("dS", P.shape, dtype), dQKV.reshape(n, T, 3 * D))
        dX = self._buffer("dX", (m, D), dtype) if need_dX else None
        kern.dense_backward(X2, p["Wqkv"], QKV, QKV, dQKV, ACT_LINEAR, 0.0, self._buffer("dZqkv", (m, 3 * D), dtype),
                            g["Wqkv"], g["bqkv"], dX)
        return None if dX is None else dX.reshape(n, T * D)

    def get_config(self):
        return {"num_heads": self.num_heads, "key_dim": self.key_dim, "causal": self.causal}


@register
class TransformerBlock(Layer):
    """A pre-LayerNorm transformer encoder block over ``(T, D)`` sequences (shape unchanged).

    ``x = x + MultiHeadAttention(LayerNorm(x))``, then
    ``x = x + Dense(D)(relu(Dense(ff_dim)(LayerNorm(x))))``, with inverted
    dropout on both residual branches in training when ``dropout > 0``
    (counter-based masks keyed by the layer's seed, the optimizer step and the
    row, as :class:`~fastnn.layers.Dropout`).

    Parameters
    ----------
    num_heads : int
    ff_dim : int
        Hidden width of the feed-forward part.
    dropout : float, default 0.0
        Rate in [0, 1).
    causal : bool, default False
        Causal self-attention (no look-ahead), for language models.
    """

    # declared rules: checked in the constructor, on every later assignment and in model files
    num_heads = Param(Integer(1))
    ff_dim = Param(Integer(1))
    dropout = Param(Real(0, 1, hi_open=True))
    causal = Param(Boolean())
    splits_rows = True  # its attention
    predict_chunk = MultiHeadAttention.predict_chunk

    def __init__(self, num_heads, ff_dim, dropout=0.0, causal=False):
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.causal = causal
        self.attention = MultiHeadAttention(self.num_heads, causal=self.causal)
        self.rng = np.random.default_rng()  # key of the dropout masks (the Network seeds it; checkpoints keep it)
        self.step = 0
        self.timesteps = self.width = None

    _PARTS = ("ln1", "attention", "ln2", "ff1", "ff2")
    #: row of the batch that X's first row is: a row shard (fastnn.engine.sharded) or a distributed worker
    #: draws the dropout masks its rows have in the whole batch
    row0 = 0

    def build(self, input_shape):
        T, D = _sequence_shape(input_shape, "TransformerBlock")
        self.timesteps, self.width = T, D
        self.ln1, self.ln2 = LayerNorm(D), LayerNorm(D)
        self.ln1.build((D,))
        self.ln2.build((D,))
        try:
            self.attention.build((T, D))
        except ValueError as exc:
            raise ValueError(f"TransformerBlock: {exc}") from None
        self.ff1 = Dense(D, self.ff_dim, "relu")
        self.ff2 = Dense(self.ff_dim, D)
        self.n_inputs = self.n_outputs = T * D

    def _parts(self):
        if self.width is None:
            raise ValueError("TransformerBlock input shape is unknown: build it into a Network with "
                             "input_shape=(timesteps, width)")
        return [(name, getattr(self, name)) for name in self._PARTS]

    def param_shapes(self):
        return {f"{name}.{p}": shape for name, part in self._parts() for p, shape in part.param_shapes().items()}

    def _split(self, flat):
        return {name: {p: flat[f"{name}.{p}"] for p in part.param_shapes()} for name, part in self._parts()}

    def init_params(self, params, rng):
        for name, part in self._parts():
            part.init_params(self._split(params)[name], rng)

    def bind(self, params, grads):
        super().bind(params, grads)
        ps, gs = self._split(params), self._split(grads)
        for name, part in self._parts():
            part.bind(ps[name], gs[name])

    @property
    def key(self):
        """63-bit key of the dropout mask streams (as Dropout.key)."""
        from .dropout import Dropout

        return Dropout.key.fget(self)

    def _dropout(self, kern, A, which, training):
        if not training or self.dropout == 0:
            return A, None
        mask = self._buffer(f"mask{which}", A.shape, A.dtype)
        out = self._buffer(f"drop{which}", A.shape, A.dtype)
        # A is (n*T, D): step t of sample i is mask row (row0 + i)*T + t, whatever part of the batch this is.
        kern.dropout_forward(A, (self.key + which) & (2 ** 63 - 1), self.step, self.row0 * self.timesteps,
                             self.dropout, mask, out)
        return out, mask

    def forward(self, X, training=False, backend=None, mask=None):
        """The block; ``mask`` (n, T) of 0/1 marks padded steps, which attention skips (default: the previous
        layer's mask; it is passed on)."""
        kern = get_backend(backend)
        self._parts()
        T, D = self.timesteps, self.width
        X = np.asarray(X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != T * D:
            raise ValueError(f"TransformerBlock expects sequences of shape (n, {T}, {D}), got an array of shape "
                             f"{X.shape}")
        n = X.shape[0]
        m = n * T
        ln1, ln2, ff1, ff2, att = self.ln1, self.ln2, self.ff1, self.ff2, self.attention
        dtype = ln1.params["gamma"].dtype
        x = np.ascontiguousarray(X.reshape(m, D), dtype=dtype)
        key_mask = att._key_mask(self.incoming_mask() if mask is None else mask, n, dtype)
        self.output_mask = att.output_mask
        # The parts' kernels called here, not their forward(): their checks and buffer look-ups were a
        # third of the block's Python time per step (measured in the report of this change).
        work = self._buffer if training else _scratch(self)
        Xh1, s1, a = work("ln1.Xhat", (m, D), dtype), work("ln1.inv_std", (m,), dtype), work("ln1.out", (m, D), dtype)
        kern.layernorm_forward(x, ln1.params["gamma"], ln1.params["beta"], ln1.eps, Xh1, s1, a)
        y = work("attention.out", (m, D), dtype)
        att._forward_rows(kern, a, n, key_mask, att._buffer if training else _scratch(att), y)
        y, mask1 = self._dropout(kern, y, 1, training)
        x1 = work("x1", (m, D), dtype)
        np.add(x, y, out=x1)
        Xh2, s2, b = work("ln2.Xhat", (m, D), dtype), work("ln2.inv_std", (m,), dtype), work("ln2.out", (m, D), dtype)
        kern.layernorm_forward(x1, ln2.params["gamma"], ln2.params["beta"], ln2.eps, Xh2, s2, b)
        Z1, A1 = work("ff1.Z", (m, self.ff_dim), dtype), work("ff1.A", (m, self.ff_dim), dtype)
        kern.dense_forward(b, ff1.params["W"], ff1.params["b"], ff1.act_code, ff1.alpha, Z1, A1)
        f = work("ff2.Z", (m, D), dtype)
        kern.dense_forward(A1, ff2.params["W"], ff2.params["b"], ff2.act_code, ff2.alpha, f, f)
        fd, mask2 = self._dropout(kern, f, 2, training)
        out = self._buffer("out", (m, D), dtype) if training else np.empty((m, D), dtype)
        np.add(x1, fd, out=out)
        if training:
            self._cache = (Xh1, s1, Xh2, s2, b, Z1, A1, f, mask1, mask2)
            if self.dropout > 0:
                self.step += 1
        return out.reshape(n, T * D)

    def backward(self, dA, backend=None, need_dX=True):
        """Write every part's gradients; return dX rows (None if ``need_dX`` is False)."""
        kern = get_backend(backend)
        T, D = self.timesteps, self.width
        n = dA.shape[0]
        m = n * T
        ln1, ln2, ff1, ff2 = self.ln1, self.ln2, self.ff1, self.ff2
        Xh1, s1, Xh2, s2, b, Z1, A1, f, mask1, mask2 = self._cache
        dtype = Xh1.dtype
        work = self._buffer
        dout = np.ascontiguousarray(dA, dtype=dtype).reshape(m, D)
        df = dout if mask2 is None else np.multiply(dout, mask2, out=work("dmask2", dout.shape, dtype))
        dA1 = work("ff1.dA", (m, self.ff_dim), dtype)
        kern.dense_backward(A1, ff2.params["W"], f, f, df, ff2.act_code, ff2.alpha, work("ff2.dZ", (m, D), dtype),
                            ff2.grads["W"], ff2.grads["b"], dA1)
        db = work("ln2.dout", (m, D), dtype)
        kern.dense_backward(b, ff1.params["W"], Z1, A1, dA1, ff1.act_code, ff1.alpha,
                            work("ff1.dZ", (m, self.ff_dim), dtype), ff1.grads["W"], ff1.grads["b"], db)
        dx1 = work("dx1", (m, D), dtype)
        kern.layernorm_backward(db, Xh2, s2, ln2.params["gamma"], ln2.grads["gamma"], ln2.grads["beta"], dx1)
        np.add(dout, dx1, out=dx1)
        dm = dx1 if mask1 is None else np.multiply(dx1, mask1, out=work("dmask1", dx1.shape, dtype))
        da = self.attention.backward(dm.reshape(n, T * D), backend=backend).reshape(m, D)
        dX = work("dX", (m, D), dtype) if need_dX else None
        kern.layernorm_backward(da, Xh1, s1, ln1.params["gamma"], ln1.grads["gamma"], ln1.grads["beta"], dX)
        if dX is None:
            return None
        np.add(dx1, dX, out=dX)
        return dX.reshape(n, T * D)

    def get_config(self):
        return {"num_heads": self.num_heads, "ff_dim": self.ff_dim, "dropout": self.dropout, "causal": self.causal}
