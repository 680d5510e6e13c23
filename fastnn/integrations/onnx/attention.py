"""Converters of MultiHeadAttention and TransformerBlock: MatMul / Reshape / Transpose / Softmax graphs.

Self-attention of ``x (N, T, D)`` as fastnn computes it: ``[q | k | v] = x Wqkv + bqkv``,
per head ``softmax(q k^T / sqrt(dk)) v``, heads concatenated, ``@ Wo + bo``. A
causal layer adds a constant ``(T, T)`` triangle of ``-inf`` above the diagonal
(every row keeps its diagonal, so no row is all ``-inf``). A padding mask hides
padded keys; a query left without any key gets zero probabilities, as fastnn
(a Softmax of an all ``-inf`` row is NaN, so the probabilities are selected
with Where, not multiplied).
"""
import numpy as np

from ...layers import MultiHeadAttention, TransformerBlock
from ._graph import register_converter
from .dense import _dense, _layernorm


def _split_heads(g, qkv, T, h, dk):
    """``[q | k | v] (N, T, 3*D)`` -> q, k, v of shape ``(N, h, T, dk)``."""
    heads = g.node("Transpose", [g.reshape(qkv, [-1, T, 3, h, dk])], perm=[2, 0, 3, 1, 4], hint="qkv_heads")
    return [g.node("Gather", [heads, g.ints(j, "slot")], axis=0, hint=name) for j, name in enumerate("qkv")]


@register_converter(MultiHeadAttention)
def _attention(layer, g, x):
    T, D, h, dk = layer.timesteps, layer.width, layer.num_heads, layer.head_dim
    p = layer.params
    mask = g.mask_in
    g.mask_out = mask  # passed on (as MultiHeadAttention.forward)
    qkv = g.node("Add", [g.node("MatMul", [x, g.initializer(p["Wqkv"], "Wqkv")]), g.initializer(p["bqkv"], "bqkv")],
                 hint="qkv")
    q, k, v = _split_heads(g, qkv, T, h, dk)
    scores = g.node("Mul", [g.node("MatMul", [q, g.node("Transpose", [k], perm=[0, 1, 3, 2])]),
                            g.constant(1.0 / np.sqrt(dk), "scale")], hint="scores")  # (N, h, T, T)
    above = np.triu(np.ones((T, T), bool), 1)  # key c > query a: the future
    if mask is None:
        if layer.causal:
            scores = g.node("Add", [scores, g.initializer(np.where(above, -np.inf, 0.0), "causal")], hint="causal")
        P = g.node("Softmax", [scores], axis=-1, hint="P")
    else:
        keep = g.node("Cast", [g.reshape(mask, [-1, 1, 1, T], hint="key_mask")], to=g.onnx.TensorProto.BOOL,
                      hint="keep")
        if layer.causal:
            keep = g.node("And", [keep, g.exact(~above, "causal")], hint="keep")
        scores = g.node("Where", [keep, scores, g.constant(-np.inf, "neg_inf")], hint="masked")
        P = g.node("Where", [keep, g.node("Softmax", [scores], axis=-1), g.constant(0.0, "zero")], hint="P")
    heads = g.node("Transpose", [g.node("MatMul", [P, v])], perm=[0, 2, 1, 3], hint="heads")  # (N, T, h, dk)
    o = g.reshape(heads, [-1, T, D], hint="concat_heads")
    return g.node("Add", [g.node("MatMul", [o, g.initializer(p["Wo"], "Wo")]), g.initializer(p["bo"], "bo")],
                  hint="attended")


@register_converter(TransformerBlock)
def _transformer_block(layer, g, x):
    # pre-LayerNorm: x1 = x + attention(ln1(x)); out = x1 + ff2(relu(ff1(ln2(x1)))); dropout: identity
    T, D = layer.timesteps, layer.width
    steps = g.reshape(x, [-1, D], hint="steps")
    a = g.reshape(_layernorm(layer.ln1, g, steps), [-1, T, D])
    x1 = g.node("Add", [x, _attention(layer.attention, g, a)], hint="residual1")
    b = _layernorm(layer.ln2, g, g.reshape(x1, [-1, D], hint="steps"))
    f = g.reshape(_dense(layer.ff2, g, _dense(layer.ff1, g, b)), [-1, T, D], hint="feed_forward")
    return g.node("Add", [x1, f], hint="residual2")
