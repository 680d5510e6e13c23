"""ONNX export: :func:`export_onnx` writes a :class:`fastnn.Network` as an ONNX model (opset 17, IR version 8).

The ``onnx`` package (``pip install "fastnn[onnx]"``) is imported on the first
call, not with this module. Opset 17 with ``ir_version=8`` loads in older
onnxruntime builds too; Softmax has its opset >= 13 meaning (along one axis).

Converters: one function per layer class, in :data:`CONVERTERS` (keyed by the
exact class: a subclass may compute something else, so it needs its own). A
layer type without one raises :class:`OnnxConversionError` naming it. A new
layer adds its converter next to the others::

    @register_converter(Conv2D)
    def _conv2d(layer, g, x):
        W = g.initializer(layer.params["W"], "W")   # the network dtype
        return g.node("Conv", [x, W], kernel_shape=[3, 3])   # returns the output name

``g`` is a :class:`GraphBuilder`: ``initializer(array, hint)``, ``node(op,
inputs, **attributes)`` (one output, returned), ``constant(value, hint)``.
"""
import numpy as np

from ..errors import FastnnError
from ..layers import (AveragePooling2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, LayerNorm,
                      MaxPool2D)

__all__ = ["export_onnx", "register_converter", "CONVERTERS", "GraphBuilder", "OnnxConversionError",
           "OPSET", "IR_VERSION"]

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
    """Collects nodes and initializers of one graph, in the network dtype."""

    def __init__(self, dtype):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.dtype = np.dtype(dtype)
        self.nodes = []
        self.initializers = []
        self._names = set()
        self.prefix = ""

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
        name = self.name(hint)
        arr = np.ascontiguousarray(array, dtype=self.dtype)
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def constant(self, value, hint="c"):
        """A scalar of the network dtype, as an initializer."""
        return self.initializer(np.asarray(value), hint)

    def node(self, op, inputs, hint=None, **attributes):
        """Add one node with one output; return the output's name."""
        out = self.name(hint or op.lower())
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=self.name(f"{op}_node"),
                                                **attributes))
        return out


# ------------------------------------------------------------------------------ activations
def _activation(g, x, name, alpha):
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


# ------------------------------------------------------------------------------ layers
@register_converter(Dense)
def _dense(layer, g, x):
    z = g.node("Gemm", [x, g.initializer(layer.params["W"], "W"), g.initializer(layer.params["b"], "b")],
               hint="z")
    return _activation(g, z, layer.activation, layer.alpha)


@register_converter(Dropout)
def _dropout(layer, g, x):
    return g.node("Identity", [x])  # inverted dropout: the identity at inference


@register_converter(Flatten)
def _flatten(layer, g, x):
    return g.node("Flatten", [x], axis=1)


@register_converter(BatchNorm)
def _batchnorm(layer, g, x):
    # inference: the running statistics. BatchNormalization normalises axis 1: (N, C) rows as they
    # are, NHWC feature maps (BatchNorm per channel after a conv layer) through NCHW and back
    nchw = getattr(layer, "channels", None) is not None
    if nchw:
        x = g.node("Transpose", [x], perm=[0, 3, 1, 2], hint="nchw")
    y = g.node("BatchNormalization",
               [x, g.initializer(layer.params["gamma"], "gamma"), g.initializer(layer.params["beta"], "beta"),
                g.initializer(layer.buffers["running_mean"], "running_mean"),
                g.initializer(layer.buffers["running_var"], "running_var")],
               epsilon=float(layer.eps))
    return g.node("Transpose", [y], perm=[0, 2, 3, 1], hint="nhwc") if nchw else y


# Images: fastnn's tensors are NHWC (one image = one row), ONNX's Conv and pooling want NCHW, so each
# windowed layer transposes in and out; Flatten then sees fastnn's own (h, w, c) order.
def _window_pads(layer, window, strides):
    """ONNX ``pads`` [top, left, bottom, right] of fastnn's 'valid'/'same' rule (Keras: extra row/column after)."""
    H, W, _, Ho, Wo, ph, pw = layer._geometry()
    bottom = max((Ho - 1) * strides[0] + window[0] - H - ph, 0)
    right = max((Wo - 1) * strides[1] + window[1] - W - pw, 0)
    return [ph, pw, bottom, right]


def _windowed(g, x, op, layer, window, inputs=(), **attributes):
    t = g.node("Transpose", [x], perm=[0, 3, 1, 2], hint="nchw")
    y = g.node(op, [t, *inputs], kernel_shape=list(window), strides=list(layer.strides),
               pads=_window_pads(layer, window, layer.strides), **attributes)
    return g.node("Transpose", [y], perm=[0, 2, 3, 1], hint="nhwc")


@register_converter(Conv2D)
def _conv2d(layer, g, x):
    inputs = [g.initializer(layer.params["W"].transpose(3, 2, 0, 1), "W")]  # (kh, kw, C, F) -> (F, C, kh, kw)
    if layer.use_bias:
        inputs.append(g.initializer(layer.params["b"], "b"))
    z = _windowed(g, x, "Conv", layer, layer.kernel_size, inputs)
    return _activation(g, z, layer.activation, layer.alpha)


@register_converter(MaxPool2D)
def _maxpool2d(layer, g, x):
    return _windowed(g, x, "MaxPool", layer, layer.pool_size)  # padding never wins a window (as fastnn)


@register_converter(AveragePooling2D)
def _avgpool2d(layer, g, x):
    # count_include_pad=0: 'same' border windows average their valid entries only (as fastnn and Keras)
    return _windowed(g, x, "AveragePool", layer, layer.pool_size, count_include_pad=0)


@register_converter(GlobalAveragePooling2D)
def _global_avgpool2d(layer, g, x):
    return g.node("ReduceMean", [x], axes=[1, 2], keepdims=0)  # opset 17: axes is an attribute


@register_converter(LayerNorm)
def _layernorm(layer, g, x):
    return g.node("LayerNormalization",
                  [x, g.initializer(layer.params["gamma"], "gamma"), g.initializer(layer.params["beta"], "beta")],
                  axis=-1, epsilon=float(layer.eps))


# ------------------------------------------------------------------------------ the network
def _is_classifier(network):
    """Network.predict's rule: trained with a classification loss, or (untrained) several outputs/softmax/sigmoid."""
    if network.task is not None:
        return network.task == "classification"
    return network.n_outputs > 1 or network._last_activation() in ("softmax", "sigmoid")


def _proba_head(network, g, out):
    """The post-processing of :meth:`Network.predict_proba` after the forward pass."""
    act = network._last_activation()
    if network.n_outputs == 1:
        p = out if act == "sigmoid" else g.node("Sigmoid", [out])
        return g.node("Concat", [g.node("Sub", [g.constant(1.0), p]), p], axis=1, hint="proba")
    if act == "softmax":
        return out
    if act == "sigmoid":  # independent binary outputs, normalised (tiny floor as predict_proba)
        axes = g.name("axes")
        g.initializers.append(g.numpy_helper.from_array(np.array([1], np.int64), axes))
        total = g.node("ReduceSum", [out, axes], keepdims=1)
        total = g.node("Max", [total, g.constant(np.finfo(network.dtype).tiny)])
        return g.node("Div", [out, total], hint="proba")
    return g.node("Softmax", [out], axis=-1, hint="proba")


#: a fitted fastnn.sklearn estimator's out_activation_ -> the head that gives its predict_proba / predict
_ESTIMATOR_HEADS = {"softmax": "proba", "logistic": "sigmoid", "identity": "forward", "exp": "exp"}


def _estimator_head(est):
    head = _ESTIMATOR_HEADS[est.out_activation_]
    return "proba" if head == "sigmoid" and est.n_outputs_ == 1 else head


def export_onnx(network, path=None, *, output="auto", input_name="input", output_name="output"):
    """Write ``network`` as an ONNX model (opset 17, IR version 8) and return the ``onnx.ModelProto``.

    Parameters
    ----------
    network : fastnn.Network, or a fitted fastnn.sklearn MLPClassifier / MLPRegressor
        An estimator exports its ``network_`` with the head of its own ``predict_proba``
        (classifiers) or ``predict`` (regressors): independent sigmoids for multilabel
        targets, ``exp`` for ``loss='poisson'``.
    path : str or path-like, optional
        Where to write the model (atomically); None only returns it.
    output : {'auto', 'proba', 'forward', 'sigmoid', 'exp'}, default 'auto'
        ``'proba'``: what :meth:`Network.predict_proba` returns; ``'forward'``: what
        :meth:`Network.forward` returns; ``'sigmoid'`` / ``'exp'``: that function of each
        forward output; ``'auto'``: ``'proba'`` for classification networks (the rule of
        :meth:`Network.predict`), else ``'forward'`` (for an estimator: its own head).
    input_name, output_name : str
        Names of the graph's input ``(N, *network.input_shape)`` and output ``(N, k)``.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.

    Raises
    ------
    OnnxConversionError
        A layer type has no converter (the message names it; see :data:`CONVERTERS`).
    ImportError
        The ``onnx`` package is missing.
    """
    from ..network import Network

    if not isinstance(network, Network) and isinstance(getattr(network, "network_", None), Network) \
            and getattr(network, "out_activation_", None) in _ESTIMATOR_HEADS:
        if output == "auto":
            output = _estimator_head(network)
        network = network.network_
    if not isinstance(network, Network):
        raise TypeError(f"network must be a fastnn.Network (or a fitted fastnn.sklearn estimator), "
                        f"not {type(network).__name__}")
    if output not in ("auto", "proba", "forward", "sigmoid", "exp"):
        raise ValueError(f"output must be 'auto', 'proba', 'forward', 'sigmoid' or 'exp', not {output!r}")
    for i, layer in enumerate(network.layers):  # every layer first: fail before building anything
        if type(layer) not in CONVERTERS:
            raise OnnxConversionError(
                f"layer {i} ({type(layer).__name__}) has no ONNX converter; layer types with one: "
                f"{sorted(cls.__name__ for cls in CONVERTERS)} (a new layer registers its own with "
                f"fastnn.integrations.onnx.register_converter)")
    g = GraphBuilder(network.dtype)
    onnx, helper = g.onnx, g.helper
    elem = helper.np_dtype_to_tensor_dtype(network.dtype)
    if input_name == output_name:
        raise ValueError(f"input_name and output_name must differ, both are {input_name!r}")
    x = input_name
    g._names.update((input_name, output_name))
    for i, layer in enumerate(network.layers):
        g.prefix = f"l{i}_{type(layer).__name__}_"
        x = CONVERTERS[type(layer)](layer, g, x)
    g.prefix = ""
    width = network.n_outputs
    if output == "proba" or (output == "auto" and _is_classifier(network)):
        x = _proba_head(network, g, x)
        width = max(width, 2)
    elif output in ("sigmoid", "exp"):
        x = g.node("Sigmoid" if output == "sigmoid" else "Exp", [x], hint=output)
    g.nodes.append(helper.make_node("Identity", [x], [output_name], name="output_identity"))
    graph = helper.make_graph(
        g.nodes, "fastnn_network",
        [helper.make_tensor_value_info(input_name, elem, ["N", *network.input_shape])],
        [helper.make_tensor_value_info(output_name, elem, ["N", width])],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="fastnn", doc_string=repr(network))
    onnx.checker.check_model(model)
    if path is not None:
        from .._fileio import atomic_write

        with atomic_write(path) as f:
            f.write(model.SerializeToString())
    return model
