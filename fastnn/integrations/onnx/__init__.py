"""ONNX export: :func:`export_onnx` writes a :class:`fastnn.Network` as an ONNX model (opset 17, IR version 8).

The ``onnx`` package (``pip install "fastnn[onnx]"``) is imported on the first
call, not with this module. Opset 17 with ``ir_version=8`` loads in older
onnxruntime builds too; Softmax has its opset >= 13 meaning (along one axis).

Converters: one function per layer class, in :data:`CONVERTERS` (keyed by the
exact class: a subclass may compute something else, so it needs its own), one
module per family: :mod:`.dense` (Dense, Dropout, Flatten, BatchNorm, LayerNorm),
:mod:`.conv` (Conv2D, pooling), :mod:`.sequence` (Embedding, PositionalEncoding,
Masking, GlobalAveragePooling1D, TimeDistributed), :mod:`.recurrent` (SimpleRNN,
LSTM, GRU, Bidirectional), :mod:`.attention` (MultiHeadAttention, TransformerBlock);
:mod:`._graph` holds the builder and the registry. A layer type without a
converter raises :class:`OnnxConversionError` naming it. A new layer adds its
converter next to the others::

    @register_converter(Conv2D)
    def _conv2d(layer, g, x):
        W = g.initializer(layer.params["W"], "W")   # the network dtype
        return g.node("Conv", [x, W], kernel_shape=[3, 3])   # returns the output name

``g`` is a :class:`GraphBuilder`: ``initializer(array, hint)``, ``node(op,
inputs, **attributes)`` (one output, returned), ``constant(value, hint)``; a
layer that reads fastnn's padding masks finds the incoming one in ``g.mask_in``
and passes one on in ``g.mask_out`` (see :mod:`._graph`).
"""
import numpy as np

from ...layers import TimeDistributed
from ._graph import (CONVERTERS, IR_VERSION, OPSET, GraphBuilder, OnnxConversionError, convert_layer,
                     register_converter)
# the converter modules register themselves (one per family of layers)
from . import attention, conv, dense, recurrent, sequence  # noqa: E402,F401  isort: skip

__all__ = ["export_onnx", "register_converter", "CONVERTERS", "GraphBuilder", "OnnxConversionError",
           "OPSET", "IR_VERSION"]


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
        total = g.node("ReduceSum", [out, g.ints([1], "axes")], keepdims=1)
        total = g.node("Max", [total, g.constant(np.finfo(network.dtype).tiny)])
        return g.node("Div", [out, total], hint="proba")
    return g.node("Softmax", [out], axis=-1, hint="proba")


#: a fitted fastnn.sklearn estimator's out_activation_ -> the head that gives its predict_proba / predict
_ESTIMATOR_HEADS = {"softmax": "proba", "logistic": "sigmoid", "identity": "forward", "exp": "exp"}


def _estimator_head(est):
    head = _ESTIMATOR_HEADS[est.out_activation_]
    return "proba" if head == "sigmoid" and est.n_outputs_ == 1 else head


def _wrapped(layer):
    """``layer`` and the layer a TimeDistributed wraps (each needs a converter)."""
    return [layer, layer.layer] if isinstance(layer, TimeDistributed) else [layer]


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
        The input has the network dtype, except for a network that starts with an
        :class:`~fastnn.layers.Embedding`: it takes the token ids as ``int64`` ``(N, T)``
        (ids outside ``[0, input_dim)`` fail in the runtime, as fastnn refuses them).
        Sequence and image outputs come out as fastnn's rows ``(N, prod(output_shape))``.

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
    from ...network import Network

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
        for part in _wrapped(layer):
            if type(part) not in CONVERTERS:
                inside = "" if part is layer else f" inside {type(layer).__name__}"
                raise OnnxConversionError(
                    f"layer {i} ({type(part).__name__}{inside}) has no ONNX converter; layer types with one: "
                    f"{sorted(cls.__name__ for cls in CONVERTERS)} (a new layer registers its own with "
                    f"fastnn.integrations.onnx.register_converter)")
    if input_name == output_name:
        raise ValueError(f"input_name and output_name must differ, both are {input_name!r}")
    g = GraphBuilder(network.dtype)
    onnx, helper = g.onnx, g.helper
    # token ids (a first Embedding layer) come in as int64, everything else in the network dtype
    ids_in = getattr(network.layers[0], "takes_token_ids", False)
    x = input_name
    g._names.update((input_name, output_name))
    if ids_in:
        g.int64.add(input_name)
    shape = tuple(network.input_shape)
    for i, layer in enumerate(network.layers):
        g.prefix = f"l{i}_{type(layer).__name__}_"
        g.mask_in, g.mask_out = g.mask_out, None  # fastnn's output_mask of the previous layer, if any
        x = convert_layer(layer, g, x, shape)
        shape = tuple(layer.output_shape(shape))
    if len(shape) > 1:  # sequences / feature maps out: fastnn's rows (N, prod(shape)) in C order
        x = g.node("Flatten", [x], axis=1, hint="rows")
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
        [g.value_info(input_name, ["N", *network.input_shape], onnx.TensorProto.INT64 if ids_in else None)],
        [g.value_info(output_name, ["N", width])],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="fastnn", doc_string=repr(network))
    onnx.checker.check_model(model)
    if path is not None:
        from ..._fileio import atomic_write

        with atomic_write(path) as f:
            f.write(model.SerializeToString())
    return model
