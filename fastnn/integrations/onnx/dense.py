"""Converters of the flat-row layers: Dense, Dropout, Flatten, BatchNorm, LayerNorm, Activation."""
from ...layers import Activation, BatchNorm, Dense, Dropout, Flatten, LayerNorm
from ._graph import activation, register_converter


@register_converter(Dense)
def _dense(layer, g, x):
    z = g.node("Gemm", [x, g.initializer(layer.params["W"], "W"), g.initializer(layer.params["b"], "b")],
               hint="z")
    return activation(g, z, layer.activation, layer.alpha)


@register_converter(Activation)
def _activation(layer, g, x):
    # softmax normalises the last axis, fastnn's too: the channels of an NHWC feature map
    return g.node("Identity", [x]) if layer.activation in (None, "linear") else \
        activation(g, x, layer.activation, layer.alpha)


@register_converter(Dropout)
def _dropout(layer, g, x):
    g.mask_out = g.mask_in  # as Dropout.forward: a padding mask passes through
    return g.node("Identity", [x])  # inverted dropout: the identity at inference


@register_converter(Flatten)
def _flatten(layer, g, x):
    return g.node("Flatten", [x], axis=1)


@register_converter(BatchNorm)
def _batchnorm(layer, g, x):
    # inference: the running statistics. BatchNormalization normalises axis 1: (N, C) rows as they
    # are; channels-last samples (feature maps (N, H, W, C), sequences (N, T, F): one statistic per
    # channel) move the channel axis to 1 and back
    rank = len(g.sample_shape) + 1
    channels_last = getattr(layer, "channels", None) is not None and rank > 2
    if channels_last:
        x = g.node("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)], hint="channels_first")
    y = g.node("BatchNormalization",
               [x, g.initializer(layer.params["gamma"], "gamma"), g.initializer(layer.params["beta"], "beta"),
                g.initializer(layer.buffers["running_mean"], "running_mean"),
                g.initializer(layer.buffers["running_var"], "running_var")],
               epsilon=float(layer.eps))
    if channels_last:
        y = g.node("Transpose", [y], perm=[0, *range(2, rank), 1], hint="channels_last")
    return y


@register_converter(LayerNorm)
def _layernorm(layer, g, x):
    return g.node("LayerNormalization",
                  [x, g.initializer(layer.params["gamma"], "gamma"), g.initializer(layer.params["beta"], "beta")],
                  axis=-1, epsilon=float(layer.eps))
