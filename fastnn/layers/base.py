"""Layer base class, the plan row a layer describes itself with, and the closed registry of layer types."""
from dataclasses import dataclass, field

import numpy as np

#: name -> class; model files may only name types registered here
LAYER_TYPES = {}


def register(cls):
    """Class decorator adding a layer type to the closed registry."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def layer_from_config(type_name, config):
    """Build a layer from its registry name and :meth:`Layer.get_config` dict."""
    if type_name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {type_name!r}; known: {sorted(LAYER_TYPES)}")
    return LAYER_TYPES[type_name].from_config(config)


@dataclass
class PlanRow:
    """One op of the compiled plan, as a layer describes it to :mod:`fastnn.engine`.

    The engine turns names into offsets (parameters, buffers, work blocks) and
    fills the plan table (columns in :mod:`fastnn.kernels.codes`). Widths are
    per sample: one sample is one row of ``n_in`` values.

    Attributes
    ----------
    op : int
        An ``OP_*`` code.
    n_in, n_out : int
        Input and output widths per sample.
    act : int
        Activation code (``OP_DENSE``), else linear.
    params : tuple of str
        Names of the layer's parameters for the row's two parameter columns (e.g. ``('W', 'b')``).
    buffers : tuple of str
        Names of non-trainable buffers for the two buffer columns (``('running_mean', 'running_var')``).
    floats : dict
        Float columns by name: ``alpha``, ``eps``, ``rate``, ``momentum``, ``l1``, ``l2``.
    z_block : bool
        The op needs a ``rows x n_out`` block besides its output (Z, Xhat, a mask);
        a linear dense writes its output into Z itself.
    seed : int
        Key of a dropout mask stream.
    geometry : tuple of int
        Conv / pool rows: ``(H, W, C, Ho, Wo, kh, kw, sh, sw, ph, pw)`` of the NHWC input and
        output images, the window, the strides and the top/left padding; empty for the others.
    channels : int
        BatchNorm / Activation rows on NHWC feature maps: the channel count (statistics, softmax
        per channel over the row's ``n_out / channels`` positions); -1 for flat rows.
    """

    op: int
    n_in: int
    n_out: int
    act: int = 0
    params: tuple = ()
    buffers: tuple = ()
    floats: dict = field(default_factory=dict)
    z_block: bool = True
    seed: int = 0
    geometry: tuple = ()
    channels: int = -1


class Layer:
    """Base class of all layers.

    A layer declares its parameters with :meth:`param_shapes`; the
    :class:`~fastnn.Network` allocates one flat buffer for all layers and hands
    each layer views into it (:meth:`bind`). ``forward`` keeps what ``backward``
    needs; ``backward`` writes parameter gradients into the bound gradient views
    and returns the gradient with respect to the layer input.
    """

    #: Input and output widths per sample (None until known). A layer declares each of its
    #: hyper-parameters as a checked attribute (``fastnn._validation.Param``) so the constructor, later
    #: assignments and model files all pass the same rule; ``get_config`` keys are their labels.
    n_inputs = None
    n_outputs = None
    #: True for layers whose per-sample work is large GEMMs (Conv2D): the per-layer path then
    #: lets BLAS use every thread under ``Trainer(parallel='auto')``
    compute_bound = False
    #: True for layers whose kernels split the batch's rows over fastnn's threads themselves and call
    #: BLAS from each (recurrent, attention): predict then runs BLAS on one thread, as training does
    splits_rows = False
    #: True for layers that start a padding mask (Masking, Embedding(mask_zero=True)): it reaches the
    #: next layers through :attr:`output_mask`, so concurrent predicts of such a network take turns
    makes_mask = False
    #: The most samples one predict chunk should hold for this layer (None: no limit of its own): a
    #: layer with wide intermediates per sample keeps them cache-sized that way
    predict_chunk = None
    #: Padding mask of the last forward's output, (n, T) of 0/1 (None: every step counts). Sequence
    #: layers set it (Embedding(mask_zero=True), Masking, ...); the next layer reads it with incoming_mask().
    output_mask = None

    def incoming_mask(self):
        """The padding mask the previous layer of the Network produced in its last forward (or None)."""
        source = getattr(self, "_mask_source", None)
        return None if source is None else source.output_mask

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample ``input_shape`` tuple (default: unchanged)."""
        return tuple(input_shape)

    def build(self, input_shape):
        """Fix the widths that depend on the input, e.g. a Dense layer's ``n_in`` (default: nothing).

        Raises ValueError when ``input_shape`` does not fit the layer.
        """
        width = int(np.prod(input_shape))
        if self.n_inputs is not None and self.n_inputs != width:
            raise ValueError(f"{type(self).__name__} expects {self.n_inputs} inputs but gets {width} "
                             f"(input shape {tuple(input_shape)})")
        if self.n_inputs is None:  # shape-free layers (user-defined ones too) take the width they get
            self.n_inputs = width
        if self.n_outputs is None:
            self.n_outputs = int(np.prod(self.output_shape(input_shape)))

    def plan_rows(self, fuse_activation=None):
        """The compiled-plan rows of this layer (list of :class:`PlanRow`), or None.

        None (the default, e.g. user-defined layers) sends the whole network to
        the per-layer path, where :meth:`forward`/:meth:`backward` run.
        ``fuse_activation`` is the activation the loss applies itself when this
        is the last layer (then the row must stay linear).
        """
        return None

    def param_shapes(self):
        """Ordered ``{name: shape}`` of trainable parameters (empty for parameter-free layers)."""
        return {}

    def init_params(self, params, rng):
        """Fill freshly bound parameter views ``params`` ({name: array}) using ``rng``."""

    def bind(self, params, grads):
        """Attach views of the flat parameter and gradient buffers ({name: array})."""
        self.params = params
        self.grads = grads

    def buffer_shapes(self):
        """Ordered ``{name: shape}`` of non-trainable state saved with the model (BatchNorm running stats)."""
        return {}

    def init_buffers(self, buffers):
        """Fill freshly bound buffer views ``buffers`` ({name: array})."""

    def bind_buffers(self, buffers):
        """Attach views of the network's flat non-trainable state array ({name: array})."""
        self.buffers = buffers

    def check_state(self, params, buffers):
        """Raise ValueError if ``params``/``buffers`` ({name: array}) cannot be this layer's state.

        Model files and checkpoints call it on every loaded value before the
        network uses any of it. The default asks every value to be finite; a layer
        with further rules (BatchNorm: a variance is never negative) extends it.
        """
        for kind, arrays in (("parameter", params), ("buffer", buffers)):
            for name, arr in arrays.items():
                if arr.size and not np.isfinite(arr).all():
                    bad = int(np.argmin(np.isfinite(arr).reshape(-1)))
                    raise ValueError(f"{kind} {name!r} holds {arr.reshape(-1)[bad]} (at flat index {bad}); "
                                     f"every value must be finite")

    def forward(self, X, training=False, backend=None):
        raise NotImplementedError

    def backward(self, dA, backend=None):
        raise NotImplementedError

    def get_config(self):
        """JSON-serialisable constructor arguments."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _buffer(self, key, shape, dtype):
        """A cached work buffer, reallocated only when the shape changes (no per-batch allocation)."""
        cache = self.__dict__.setdefault("_buffers", {})
        buf = cache.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype)
            cache[key] = buf
        return buf

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
