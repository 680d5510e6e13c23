"""Converters of the sequence helpers: Embedding, PositionalEncoding, Masking, GlobalAveragePooling1D, TimeDistributed.

Sequences are ``(N, T, F)`` tensors. Token ids: a network whose first layer is
an :class:`~fastnn.layers.Embedding` takes ``int64`` ids ``(N, T)`` (the ONNX
habit for indices; fastnn's own rows carry them as floats); an Embedding
further in casts its float input to int64.
"""
from ...layers import Embedding, GlobalAveragePooling1D, Masking, PositionalEncoding, TimeDistributed
from ...layers.sequence import sinusoidal_encoding
from ._graph import convert_layer, register_converter


def per_step(g, x, T, F, F_out, step_fn):
    """``step_fn(g, rows)`` applied to the ``N*T`` steps of ``x (N, T, F)`` as rows ``(N*T, F)``, whose
    ``(N*T, F_out)`` result comes back as sequences ``(N, T, F_out)`` (fastnn's TimeDistributed)."""
    y = step_fn(g, g.reshape(x, [-1, F], hint="steps"))
    return g.reshape(y, [-1, T, F_out], hint="sequences")


@register_converter(Embedding)
def _embedding(layer, g, x):
    ids = x if x in g.int64 else g.node("Cast", [x], to=g.onnx.TensorProto.INT64, hint="ids")
    # fastnn refuses ids outside [0, input_dim); ONNX Gather would read a negative id from the end of the
    # table: such ids are moved to input_dim, which Gather rejects (onnxruntime: out of bounds)
    safe = g.node("Where", [g.node("Less", [ids, g.ints(0, "zero")]), g.ints(layer.input_dim, "input_dim"), ids],
                  hint="ids_checked")
    out = g.node("Gather", [g.initializer(layer.params["E"], "E"), safe], axis=0, hint="embedded")
    if layer.mask_zero:  # padding id 0
        real = g.node("Not", [g.node("Equal", [ids, g.ints(0, "pad_id")])])
        g.mask_out = g.node("Cast", [real], to=g.elem, hint="mask")
    return out


@register_converter(PositionalEncoding)
def _positional_encoding(layer, g, x):
    g.mask_out = g.mask_in
    table = sinusoidal_encoding(layer.timesteps, layer.width).astype(g.dtype)  # fastnn adds it in the data dtype
    return g.node("Add", [x, g.initializer(table, "positions")], hint="encoded")


@register_converter(Masking)
def _masking(layer, g, x):
    # a step is real when any feature differs from mask_value (NaN differs, as numpy's !=)
    differs = g.node("Not", [g.node("Equal", [x, g.constant(layer.mask_value, "mask_value")])])
    mask = g.node("ReduceMax", [g.node("Cast", [differs], to=g.elem)], axes=[2], keepdims=0, hint="mask")
    g.mask_out = mask
    return g.node("Mul", [x, g.node("Unsqueeze", [mask, g.ints([2], "axes")])], hint="masked")


@register_converter(GlobalAveragePooling1D)
def _global_avgpool1d(layer, g, x):
    if g.mask_in is None:
        return g.node("ReduceMean", [x], axes=[1], keepdims=0)  # opset 17: ReduceMean's axes is an attribute
    # the mean over real steps; a sequence without any counts its steps as zeros (as fastnn)
    axes = g.ints([1], "axes")
    m = g.node("Unsqueeze", [g.mask_in, g.ints([2], "axes")], hint="mask3")
    total = g.node("ReduceSum", [g.node("Mul", [x, m]), axes], keepdims=0, hint="masked_sum")
    count = g.node("Max", [g.node("ReduceSum", [g.mask_in, axes], keepdims=1), g.constant(1.0, "one")], hint="count")
    return g.node("Div", [total, count], hint="mean")


@register_converter(TimeDistributed)
def _time_distributed(layer, g, x):
    mask = g.mask_in
    T, F = layer.timesteps, layer.features
    g.mask_in = None  # the wrapped layer sees flat steps without a mask (as in fastnn)
    y = per_step(g, x, T, F, layer.n_outputs // T, lambda g, rows: convert_layer(layer.layer, g, rows, (F,)))
    g.mask_out = mask  # the mask goes on (as TimeDistributed.forward)
    return y

