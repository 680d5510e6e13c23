"""Converters of the image layers: Conv2D and the pooling layers (fastnn's NHWC rows, ONNX's NCHW ops)."""
from ...layers import AveragePooling2D, Conv2D, GlobalAveragePooling2D, MaxPool2D
from ._graph import activation, register_converter


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
    return activation(g, z, layer.activation, layer.alpha)


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
