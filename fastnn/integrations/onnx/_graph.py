"""The graph builder every converter writes into, the converter registry, and fastnn's activations as ONNX nodes.

A converter is ``convert(layer, g, x) -> output_name``: it reads the layer's
parameters, adds nodes and initializers to ``g`` (a :class:`GraphBuilder`) and
returns the name of its output tensor. Tensors keep fastnn's per-sample shapes
with a leading batch axis: ``(N, k)`` rows, ``(N, T, F)`` sequences, ``(N, H, W, C)``
images. Besides the tensor, ``g`` carries what fastnn passes between layers
outside the data: :attr:`GraphBuilder.sample_shape` (the layer's per-sample input
shape) and the padding mask (:attr:`GraphBuilder.mask_in`, a ``(N, T)`` 0/1 tensor
of the network dtype, or None; a layer that passes a mask on, as its fastnn
``output_mask``, sets :attr:`GraphBuilder.mask_out`).
"""
import numpy as np

from ...errors import FastnnError

OPSET = 17
IR_VERSION = 8
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))

#: layer class -> ``convert(layer, graph_builder, input_name) -> output_name``
CONVERTERS = {}


class OnnxConversionError(FastnnError, NotImplementedError):
    """A network holds a layer (or option) that has no ONNX converter."""


def register_converter(layer_cls):
    """Decorator: ``@register_converter(MyLayer)`` over ``def convert(layer, g, x) -> str``."""
    def deco(fn):
        CONVERTERS[layer_cls] = fn
        return fn
    return deco


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install \"fastnn[onnx]\" "
                          "(or pip install onnx)") from None
    return onnx, helper, numpy_helper


class GraphBuilder:
    """Collects nodes and initializers of one graph, in the network dtype.

    Parameters
    ----------
    dtype : numpy dtype
        The network dtype: every float initializer is stored in it.
    parent : GraphBuilder, optional
        For the body of a ``Scan`` (a subgraph): share the parent's names and
        initializers (a subgraph reads the outer graph's tensors), keep own nodes.
    """

    def __init__(self, dtype, parent=None):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.dtype = np.dtype(dtype)
        self.elem = self.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes = []
        self.initializers = [] if parent is None else parent.initializers
        self._names = set() if parent is None else parent._names
        self.prefix = "" if parent is None else parent.prefix
        self.sample_shape = None
        self.mask_in = self.mask_out = None
        self.int64 = set() if parent is None else parent.int64  # tensors holding int64 (token ids)

    def name(self, hint):
        """A fresh tensor name starting with ``prefix + hint``."""
        base = f"{self.prefix}{hint}"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def initializer(self, array, hint):
        """Add ``array`` (cast to the network dtype) as a graph initializer; return its name."""
        return self.exact(np.ascontiguousarray(array, dtype=self.dtype), hint)

    def ints(self, values, hint="shape"):
        """An int64 initializer (shapes, axes, indices); a scalar for a scalar ``values``."""
        return self.exact(np.asarray(values, dtype=np.int64), hint)

    def exact(self, arr, hint):
        """An initializer of ``arr`` in its own dtype (booleans, int64)."""
        arr = np.asarray(arr, order="C")  # a scalar stays 0-d (a Gather index that drops its axis)
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def constant(self, value, hint="c"):
        """A scalar of the network dtype, as an initializer."""
        return self.initializer(np.asarray(value), hint)

    def node(self, op, inputs, hint=None, **attributes):
        """Add one node with one output; return the output's name."""
        return self.node_outputs(op, inputs, 1, hint, **attributes)[0]

    def node_outputs(self, op, inputs, n_outputs, hint=None, **attributes):
        """Add one node with ``n_outputs`` outputs (Split, LSTM, Scan); return their names."""
        outs = [self.name(f"{hint or op.lower()}{'' if n_outputs == 1 else i}") for i in range(n_outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=self.name(f"{op}_node"),
                                                **attributes))
        return outs

    def reshape(self, x, shape, hint="reshaped"):
        """``x`` reshaped to ``shape`` (a list; -1 for the batch axis)."""
        return self.node("Reshape", [x, self.ints(shape)], hint=hint)

    def value_info(self, name, shape, elem=None):
        """A typed graph input/output ``name`` (symbolic ``"N"`` allowed in ``shape``)."""
        return self.helper.make_tensor_value_info(name, self.elem if elem is None else elem, shape)


# ------------------------------------------------------------------------------ activations
def activation(g, x, name, alpha):
    """Nodes computing fastnn's activation ``name`` of ``x`` (the formulas of fastnn.activations)."""
    if name == "linear":
        return x
    if name == "relu":
        return g.node("Relu", [x])
    # LeakyRelu/Elu take alpha as a float32 attribute and onnxruntime has no float64 Elu: in float64
    # they are composed from elementwise ops, relu(x) + alpha * min(x, 0) and relu(x) + alpha * (exp(min(x, 0)) - 1)
    if name in ("leaky_relu", "elu") and g.dtype == np.float32:
        return g.node("LeakyRelu" if name == "leaky_relu" else "Elu", [x], alpha=float(alpha))
    if name in ("leaky_relu", "elu"):
        neg = g.node("Min", [x, g.constant(0.0)])
        if name == "elu":
            neg = g.node("Sub", [g.node("Exp", [neg]), g.constant(1.0)])
        return g.node("Add", [g.node("Relu", [x]), g.node("Mul", [neg, g.constant(alpha)])], hint=name)
    if name == "sigmoid":
        return g.node("Sigmoid", [x])
    if name == "tanh":
        return g.node("Tanh", [x])
    if name == "softmax":
        return g.node("Softmax", [x], axis=-1)
    if name == "silu":
        return g.node("Mul", [x, g.node("Sigmoid", [x])], hint="silu")
    if name == "gelu":  # tanh form; opset 17 has no Gelu op (it arrives in opset 20)
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.constant(0.044715)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.constant(_SQRT_2_OVER_PI)])])
        half_x = g.node("Mul", [x, g.constant(0.5)])
        return g.node("Mul", [half_x, g.node("Add", [t, g.constant(1.0)])], hint="gelu")
    raise OnnxConversionError(f"activation {name!r} has no ONNX conversion")


def convert_layer(layer, g, x, sample_shape):
    """Run ``layer``'s converter on ``x`` whose per-sample shape is ``sample_shape`` (also for wrapped layers)."""
    convert = CONVERTERS.get(type(layer))
    if convert is None:
        raise OnnxConversionError(
            f"{type(layer).__name__} has no ONNX converter; layer types with one: "
            f"{sorted(cls.__name__ for cls in CONVERTERS)} (a new layer registers its own with "
            f"fastnn.integrations.onnx.register_converter)")
    g.sample_shape = tuple(sample_shape)
    return convert(layer, g, x)
