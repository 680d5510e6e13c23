"""Layer base class and the closed registry of layer types (used by model files)."""
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


class Layer:
    """Base class of all layers.

    A layer declares its parameters with :meth:`param_shapes`; the
    :class:`~fastnn.Network` allocates one flat buffer for all layers and hands
    each layer views into it (:meth:`bind`). ``forward`` keeps what ``backward``
    needs; ``backward`` writes parameter gradients into the bound gradient views
    and returns the gradient with respect to the layer input.
    """

    n_inputs = None
    n_outputs = None

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
