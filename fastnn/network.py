"""Network: an ordered stack of layers whose parameters live in one flat buffer."""
import contextlib
import threading

import numpy as np

from ._config import blas_single_thread, default_dtype, get_num_threads
from ._validation import Custom, OneOf, Param, check_array_X, check_seed, check_shape
from .kernels import codes, get_backend
from .kernels.threads import layer_threads
from .layers import Dense, Dropout, Flatten, Layer

_PREDICT_CHUNK = 4096  # rows per forward chunk in predict: bounds memory, keeps GEMMs large
_CHAIN_SIZES = 4       # batch sizes whose inference buffers each thread keeps (least recently used dropped)
_SPLIT_ROWS = 64       # from this many rows predict splits the rows over fastnn's threads (one-thread BLAS)
_CHAIN_PASS = (Dropout, Flatten)  # identity at inference: no chain row
_LOGITS, _RAW, _PROBA = 0, 1, 2    # what the chain's last row applies (see Network._chain)
_BLOCK_ROWS = 64        # rows per thread from which a sequence network's predict splits rows over threads
_PREDICT_CHUNK_CONV = 256  # the same for networks with a compute-bound (conv) layer


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(Z):
    e = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + e), e / (1 + e))


class Network:
    """An ordered stack of layers, trained by :class:`fastnn.Trainer`.

    All parameters are views into one contiguous array, :attr:`params` (and
    their gradients into :attr:`grads`), so an optimizer update is one fused
    kernel over one array and a checkpoint is one array.

    Parameters
    ----------
    layers : list of Layer
        E.g. ``[Dense(784, 256, "relu"), Dense(256, 10)]`` (widths must chain) or, with
        ``input_shape=(784,)``, ``[Dense(256, "relu"), Dense(10)]`` (widths inferred).
        The last layer produces logits for the cross-entropy losses (a final
        ``softmax``/``sigmoid`` is also fine: it is fused into the loss).
    input_shape : tuple of int, optional
        Shape of one sample, e.g. ``(784,)`` or ``(28, 28)``; default: the first layer's
        input width. Data then has shape ``(n_samples, *input_shape)``; each sample is
        stored as one row of ``prod(input_shape)`` values.
    seed : int or numpy.random.Generator, optional
        Seeds weight initialisation and dropout masks.
    dtype : {'float32', 'float64'}, optional
        Parameter dtype; default float32 (``FASTNN_DTYPE``).
    backend : {'reference', 'numba', 'cython'}, optional
        Kernel backend for predict and training; default: fastest available.

    Attributes
    ----------
    task : {'classification', 'regression'} or None
        Set by training from the loss; decides what :meth:`predict` returns.
    """

    task = Param(OneOf(("classification", "regression"), optional=True))
    #: a backend name that imports here (checked now, not at the next predict)
    backend = Param(Custom(lambda name: (get_backend(name), name)[1], "a backend name or None",
                           invalid=["cuda", 3, ""]))

    def __init__(self, layers, *, input_shape=None, seed=None, dtype=None, backend=None):
        seed = check_seed(seed, "Network seed")
        layers = list(layers)
        if not layers:
            raise ValueError("a Network needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"Network layers must be fastnn layers, got {type(layer).__name__}")
        self.dtype = np.dtype(default_dtype() if dtype is None else dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {self.dtype}")
        self.backend = backend  # fails now, not at the first fit, if it is missing
        self.layers = layers
        self._build_shapes(input_shape)
        self.task = None
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._allocate()
        for layer in self.layers:
            layer.init_params(layer.params, self.rng)
            layer.init_buffers(layer.buffers)
        # Random layers (dropout) are seeded after the weights, so adding one does not change them.
        for layer in self.layers:
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(self.rng.integers(2 ** 63))

    def __getstate__(self):
        # Inference buffers and chain tables are caches (per thread, rebuilt on demand): never pickled.
        state = self.__dict__.copy()
        state.pop("_infer_local", None)
        state.pop("_chains", None)
        state.pop("_mask_lock", None)
        return state

    _KERAS_HABITS = {"fit": "fastnn.Trainer(net, loss=..., optimizer=...).fit(X, y)",
                     "compile": "fastnn.Trainer(net, loss=..., optimizer=...) (no compile step)",
                     "evaluate": "fastnn.Trainer(net, loss=...).evaluate(X, y)"}

    def __getattr__(self, name):
        # Called only for attributes that do not exist: the Keras names get a hint.
        hint = Network._KERAS_HABITS.get(name)
        if hint is not None:
            raise AttributeError(f"'Network' object has no attribute {name!r}: training goes through a Trainer, "
                                 f"e.g. {hint}")
        raise AttributeError(f"'Network' object has no attribute {name!r}")

    # ------------------------------------------------------------------ structure
    def _build_shapes(self, input_shape):
        """Build every layer on the per-sample shape it receives; set the network's shapes."""
        if input_shape is None:
            first = self.layers[0]
            if first.n_inputs is None:
                raise ValueError(f"layer 0 ({type(first).__name__}) cannot be first: its width is unknown "
                                 f"(give the Network input_shape=..., or Dense(n_in, n_out) first)")
            input_shape = (first.n_inputs,)
        input_shape = check_shape(input_shape, "input_shape")
        shape = input_shape
        self.layer_shapes = []
        for i, layer in enumerate(self.layers):
            width = int(np.prod(shape))
            if layer.n_inputs is not None and layer.n_inputs != width and i > 0:
                raise ValueError(f"layer {i} ({type(layer).__name__}) expects {layer.n_inputs} inputs "
                                 f"but the previous layer gives {width}")
            try:
                layer.build(shape)
            except ValueError as exc:
                raise ValueError(f"layer {i} ({type(layer).__name__}): {exc}") from None
            shape = tuple(layer.output_shape(shape))
            self.layer_shapes.append(shape)
        # Padding masks (sequence layers) flow from each layer to the next: Layer.incoming_mask reads this link.
        for prev, layer in zip([None] + self.layers[:-1], self.layers):
            layer._mask_source = prev
        self.input_shape = input_shape
        self.output_shape = shape
        self.n_inputs = int(np.prod(input_shape))
        self.n_outputs = int(np.prod(shape))

    def _allocate(self):
        self._slots = []  # (layer index, name, offset, shape)
        offset = 0
        for i, layer in enumerate(self.layers):
            for name, shape in layer.param_shapes().items():
                size = int(np.prod(shape))
                self._slots.append((i, name, offset, tuple(shape)))
                offset += size
        self.params = np.zeros(offset, self.dtype)
        self.grads = np.zeros(offset, self.dtype)
        # Non-trainable state (BatchNorm running statistics): saved with the model, never optimized.
        self._buffer_slots = []  # (layer index, name, offset, shape)
        offset = 0
        for i, layer in enumerate(self.layers):
            for name, shape in layer.buffer_shapes().items():
                self._buffer_slots.append((i, name, offset, tuple(shape)))
                offset += int(np.prod(shape))
        self.buffers = np.zeros(offset, self.dtype)
        self._bind()

    def _bind(self):
        views = [({}, {}) for _ in self.layers]
        for i, name, off, shape in self._slots:
            size = int(np.prod(shape))
            views[i][0][name] = self.params[off:off + size].reshape(shape)
            views[i][1][name] = self.grads[off:off + size].reshape(shape)
        for layer, (p, g) in zip(self.layers, views):
            layer.bind(p, g)
        bufs = [{} for _ in self.layers]
        for i, name, off, shape in self._buffer_slots:
            bufs[i][name] = self.buffers[off:off + int(np.prod(shape))].reshape(shape)
        for layer, b in zip(self.layers, bufs):
            layer.bind_buffers(b)

    @property
    def n_params(self):
        """Total number of trainable parameters."""
        return self.params.size

    def parameters(self):
        """List of ``(name, array)`` views, e.g. ``('0.W', W)``, in buffer order."""
        return [(f"{i}.{name}", self.layers[i].params[name]) for i, name, _, _ in self._slots]

    # ------------------------------------------------------------------ inference
    def forward(self, X, training=False, logits=False):
        """Raw network output for ``X``, shape (n, n_outputs): the last layer's activation.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape)
        training : bool, default False
            Training-mode behaviour of layers such as Dropout.
        logits : bool, default False
            Skip the last layer's activation (its pre-activation is returned).
        """
        X = self._check_input(X)
        return self._forward_checked(X, training, logits)

    def _check_input(self, X, name="X"):
        """``check_array_X`` for this network; a shape error names the first layer and its input shape."""
        try:
            return check_array_X(X, self.n_inputs, self.dtype, name=name, sample_shape=self.input_shape)
        except ValueError as exc:
            if len(self.input_shape) > 1 and "shape" in str(exc):  # image input (issue 11)
                first = self.layers[0]
                raise ValueError(f"{exc}: layer 0 ({type(first).__name__}) takes samples of shape "
                                 f"{self.input_shape} (the network's input_shape)") from None
            raise

    __call__ = forward

    def _forward_checked(self, X, training=False, logits=False):
        """forward() for an X already validated and converted to the network dtype."""
        if not training and self._chain(_LOGITS if logits else _RAW) is not None:
            return self._infer(X, _LOGITS if logits else _RAW, copy=True)
        # Conv layers (issue 11) hold ~100x more values per sample than their input (im2col columns,
        # feature maps): smaller chunks bound the memory (4096 MNIST images would need ~1.5 GB).
        chunk = _PREDICT_CHUNK_CONV if any(getattr(l, "compute_bound", False) for l in self.layers) \
            else _PREDICT_CHUNK
        chunk = min([chunk] + [l.predict_chunk for l in self.layers if l.predict_chunk]) if not training else chunk
        with contextlib.ExitStack() as stack:
            if not training:
                self._enter_inference(stack)
                blocks = self._predict_blocks(X.shape[0])
                if blocks > 1:
                    return self._forward_blocks(X, logits, chunk, blocks)
            if X.shape[0] <= chunk:
                return self._forward_chunk(X, training, logits)
            out = np.empty((X.shape[0], self.n_outputs), self.dtype)
            for lo in range(0, X.shape[0], chunk):
                out[lo:lo + chunk] = self._forward_chunk(X[lo:lo + chunk], training, logits)
            return out

    def _predict_blocks(self, n):
        """Row blocks (one Python thread each) for a layer-loop predict of ``n`` rows.

        Networks whose kernels split rows over fastnn's threads themselves (recurrent, attention) on the
        Cython backend predict in row blocks, one per thread, every kernel on one thread, as training's row
        shards run them: the kernels' own threads reach only the recurrence and attention, so the Dense
        parts and the per-layer Python ran on one core (LSTM batch-1000 predict gained 6% from a second
        thread, the transformer none). Not for networks that start a padding mask (their predicts take
        turns, see :meth:`_enter_inference`), nor on Numba (its default threading layer aborts when two
        threads run parallel kernels at once). 1: the layer loop on the calling thread.
        """
        threads = get_num_threads()
        if threads == 1 or n < 2 * _BLOCK_ROWS or get_backend(self.backend).NAME != "cython" \
                or not any(layer.splits_rows for layer in self.layers) \
                or any(layer.makes_mask for layer in self.layers):
            return 1
        return min(threads, n // _BLOCK_ROWS)

    def _forward_blocks(self, X, logits, chunk, blocks):
        """The layer-loop predict of ``X`` in ``blocks`` row blocks on as many Python threads (the kernels
        release the GIL), each running its kernels on one thread; the rows' results do not depend on
        the blocks (every kernel computes a row from that row alone)."""
        out = np.empty((X.shape[0], self.n_outputs), self.dtype)
        bounds = np.linspace(0, X.shape[0], blocks + 1).astype(int)
        errors = []
        kern = get_backend(self.backend)

        def block(k):
            try:
                with layer_threads(kern, 1):
                    for lo in range(bounds[k], bounds[k + 1], chunk):
                        hi = min(lo + chunk, bounds[k + 1])
                        out[lo:hi] = self._forward_chunk(X[lo:hi], False, logits)
            except BaseException as exc:  # re-raised on the calling thread below
                errors.append(exc)

        workers = [threading.Thread(target=block, args=(k,), daemon=True) for k in range(1, blocks)]
        for t in workers:
            t.start()
        block(0)
        for t in workers:
            t.join()
        if errors:
            raise errors[0]
        return out

    def _enter_inference(self, stack):
        """Enter on ``stack`` what the layer loop's inference needs: one-thread BLAS when a layer's kernels
        split the rows over fastnn's threads themselves (recurrent, attention; as the trainer runs
        them: BLAS threads inside those threads oversubscribed the cores, 3.3x slower LSTM predict)
        or when fastnn.set_num_threads(1) asks for one thread (a conv net's GEMMs thread otherwise),
        and the network's lock when a layer starts a padding mask, which reaches the next layers
        through layer attributes (concurrent predicts would read each other's masks)."""
        if get_num_threads() == 1 or any(layer.splits_rows for layer in self.layers):
            stack.enter_context(blas_single_thread())  # at one thread: the knob holds BLAS to it too
        if any(layer.makes_mask for layer in self.layers):
            stack.enter_context(self.__dict__.setdefault("_mask_lock", threading.Lock()))

    def _forward_chunk(self, X, training, logits):
        kern = get_backend(self.backend)
        A = X
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if type(layer) is Dense:
                # Local buffers, not the layer's cached ones: predict is safe from several threads.
                act = codes.ACT_LINEAR if (logits and i == last) else layer.act_code
                Z = np.empty((A.shape[0], layer.n_outputs), self.dtype)
                out = Z if act == codes.ACT_LINEAR else np.empty_like(Z)
                kern.dense_forward(A, layer.params["W"], layer.params["b"], act, layer.alpha, Z, out)
                A = out
            else:
                A = layer.forward(A, training=training, backend=self.backend)
        return A

    # ------------------------------------------------------------------ compiled inference
    def _chain(self, mode):
        """``(layers, alphas)`` of the compiled inference chain, or None when a layer has no chain row.

        Dense layers are rows, Dropout and Flatten (identity at inference) none. ``mode``: the last
        row's activation as the layer says (_RAW), linear (_LOGITS), or the probabilities predict_proba
        gives over several outputs, softmax for a linear or softmax last layer (_PROBA; None otherwise).
        Built once per mode; the per-row tables never change (the layers are fixed, params in place).
        """
        cache = self.__dict__.setdefault("_chains", {})
        if mode in cache:
            return cache[mode]
        chain = None
        dense = [i for i, layer in enumerate(self.layers) if type(layer) is Dense]
        if dense and all(type(layer) is Dense or type(layer) in _CHAIN_PASS for layer in self.layers):
            offs = {(i, name): off for i, name, off, _ in self._slots}
            rows = [[l.n_inputs, l.n_outputs, offs[(i, "W")], offs.get((i, "b"), -1), l.act_code]
                    for i, l in ((i, self.layers[i]) for i in dense)]
            last = self.layers[dense[-1]]
            chain = (np.array(rows, np.int64), np.array([self.layers[i].alpha for i in dense]))
            if dense[-1] != len(self.layers) - 1 and mode != _RAW:
                chain = None  # a layer after the last Dense: leave logits and probabilities to the loop
            elif mode == _LOGITS:
                chain[0][-1, 4] = codes.ACT_LINEAR
            elif mode == _PROBA:
                if self.n_outputs > 1 and last.activation in ("linear", "softmax"):
                    chain[0][-1, 4] = codes.ACT_SOFTMAX
                else:
                    chain = None
        cache[mode] = chain
        return chain

    def _infer(self, X, mode, copy):
        """The chain's output for validated X: one compiled call per chunk, buffers kept per thread.

        ``copy=False`` returns the thread's own buffer (valid until its next call); predict reads
        it at once. Buffers are per thread, so predict stays safe from several threads.
        """
        layers, alphas = self._chain(mode)
        kern = get_backend(self.backend)
        n = X.shape[0]
        if n > _PREDICT_CHUNK:
            out = np.empty((n, self.n_outputs), self.dtype)
            for lo in range(0, n, _PREDICT_CHUNK):
                out[lo:lo + _PREDICT_CHUNK] = self._infer(X[lo:lo + _PREDICT_CHUNK], mode, False)
            return out
        local = self.__dict__.setdefault("_infer_local", threading.local())
        bufs = getattr(local, "bufs", None)
        if bufs is None:
            bufs = local.bufs = {}
        got = bufs.pop(n, None)  # re-inserted below: the dict keeps the least recently used first
        if got is None:
            width = max([int(r[1]) for r in layers[:-1]], default=1)
            got = (np.empty((2, n * width), self.dtype), np.empty((n, self.n_outputs), self.dtype))
            while len(bufs) >= _CHAIN_SIZES:
                del bufs[next(iter(bufs))]
        bufs[n] = got
        work, out = got
        if n == 1 or kern.NAME != "cython":
            # One sample: GEMVs on the calling thread, no BLAS setting touched (a limit costs more than
            # the products: 10-40 us). The other backends' chains run on one thread: their BLAS keeps
            # threading each GEMM instead.
            kern.dense_chain_forward(X, self.params, layers, alphas, work, out, 1)
        else:
            # One-thread BLAS, the rows split over fastnn's threads from _SPLIT_ROWS rows: measured faster
            # than BLAS threading each GEMM (bench/inference.py; at batch 64 under load 2.7x), and it
            # honours fastnn.set_num_threads.
            with blas_single_thread():
                kern.dense_chain_forward(X, self.params, layers, alphas, work, out,
                                         get_num_threads() if n >= _SPLIT_ROWS else 1)
        return out.copy() if copy else out

    def _last_activation(self):
        last = self.layers[-1]
        return getattr(last, "activation", "linear")

    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes).

        A final softmax/sigmoid is used as is; otherwise the outputs are taken
        as logits: softmax over several outputs, sigmoid of a single output
        (returned as two columns, ``[1-p, p]``).
        """
        if self._chain(_PROBA) is not None:  # softmax inside the compiled forward
            X = check_array_X(X, self.n_inputs, self.dtype, sample_shape=self.input_shape)
            return self._infer(X, _PROBA, copy=True)
        out = self.forward(X)
        act = self._last_activation()
        if self.n_outputs == 1:
            p = out if act == "sigmoid" else _sigmoid(out)
            return np.hstack([1 - p, p])
        if act == "softmax":
            return out
        if act == "sigmoid":  # independent binary outputs: normalise for a distribution
            return out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)
        return _softmax(out)

    def predict(self, X):
        """Class labels (int64) for classification networks, raw outputs for regression.

        Classification is assumed when the network was trained with a
        cross-entropy loss, or (untrained) when it has several outputs or a
        final softmax/sigmoid.
        """
        task = self.task
        if task is None:
            task = "classification" if (self.n_outputs > 1 or self._last_activation() in ("softmax", "sigmoid")) \
                else "regression"
        if task == "regression":
            return self.forward(X)
        if self._chain(_PROBA) is not None:  # the probabilities predict_proba gives, never copied out
            X = check_array_X(X, self.n_inputs, self.dtype, sample_shape=self.input_shape)
            if X.shape[0] <= _PREDICT_CHUNK:
                return self._infer(X, _PROBA, copy=False).argmax(axis=1).astype(np.int64, copy=False)
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    # ------------------------------------------------------------------ description
    def summary(self, print_fn=print):
        """Print (and return) a table of layers, output shapes and parameter counts."""
        rows = [("#", "layer", "output", "params")]
        for i, layer in enumerate(self.layers):
            n = sum(int(np.prod(s)) for s in layer.param_shapes().values())
            shape = ", ".join(str(d) for d in self.layer_shapes[i])
            rows.append((str(i), repr(layer), f"(None, {shape})", f"{n:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append("-" * len(lines[0]))
        lines.append(f"Total parameters: {self.n_params:,} ({self.dtype.name}, "
                     f"{self.params.nbytes / 1024:.1f} KiB)")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self):
        """Architecture as plain data: layer type names and constructor arguments."""
        return {"dtype": self.dtype.name, "task": self.task, "input_shape": list(self.input_shape),
                "layers": [{"type": type(l).__name__, "config": l.get_config()} for l in self.layers]}

    def __setstate__(self, state):
        # pickle copies each layer's parameter views as separate arrays; re-point them into the flat
        # buffers, or training would update ``params`` while predict reads the stale copies.
        self.__dict__.update(state)
        self._bind()

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Network([\n  {inner}\n], dtype={self.dtype.name})"

    def copy_params_from(self, other):
        """Copy parameter values from a network of the same architecture."""
        if other.params.shape != self.params.shape or other.buffers.shape != self.buffers.shape:
            raise ValueError("networks have different parameter counts")
        self.params[...] = other.params
        self.buffers[...] = other.buffers

    def activation_names(self):
        """Activation of each layer (None for layers without one)."""
        return [getattr(layer, "activation", None) for layer in self.layers]

    def save(self, path):
        """Save architecture and weights to one file, atomically (no pickle; see :mod:`fastnn.io`)."""
        from .io import save_network

        save_network(self, path)

    @classmethod
    def load(cls, path):
        """Load a network saved by :meth:`save` (or the network of a training checkpoint).

        To continue training it, e.g. with a 10x lower learning rate, give it a new
        Trainer with a new optimizer: ``Trainer(Network.load(path), optimizer=Adam(1e-4)).fit(...)``.
        To resume an interrupted run exactly, use ``Trainer.fit(..., resume_from=checkpoint)``.
        """
        from .io import load_network

        return load_network(path)
