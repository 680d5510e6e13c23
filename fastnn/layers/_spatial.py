"""Shared pieces of the image layers (Conv2D, pooling): argument checks and window geometry.

Images are NHWC: a per-sample shape ``(H, W, C)``, each sample one row of
``H*W*C`` values. Window geometry follows Keras: ``'valid'`` takes only
windows inside the image, ``'same'`` gives ``ceil(size / stride)`` outputs and
pads ``(out - 1)*stride + k - size`` (at least 0) zeros, the smaller half
before (top/left).
"""
import math
import numbers

from .._validation import Custom

PADDINGS = ("valid", "same")


def check_pair(value, name, layer, minimum=1):
    """``value`` (an int or a pair of ints, each >= minimum) as a tuple of two ints, or ValueError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        raise ValueError(f"{layer} {name} must be an integer or a pair of integers, not {value!r}") from None
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum
                             for v in pair):
        raise ValueError(f"{layer} {name} must be an integer >= {minimum} or a pair of them, not {value!r}")
    return int(pair[0]), int(pair[1])


def check_padding(padding, layer):
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{layer} padding must be 'valid' or 'same', not {padding!r}")
    return padding.lower()


def check_image_shape(input_shape, layer):
    """``(H, W, C)`` from a per-sample shape, or ValueError naming the layer."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise ValueError(f"{layer} takes images of per-sample shape (height, width, channels), got {shape}"
                         + ("; give the Network input_shape=(H, W, C), e.g. (28, 28, 1)" if len(shape) < 3 else ""))
    return shape


def window_geometry(size, k, stride, padding, layer, axis):
    """``(output size, padding before)`` of one axis; ValueError if the window does not fit."""
    if padding == "same":
        out = math.ceil(size / stride)
        return out, max((out - 1) * stride + k - size, 0) // 2
    if k > size:
        raise ValueError(f"{layer} window {axis} {k} is larger than its input {axis} {size} (padding 'valid'); "
                         f"use a smaller window or padding='same'")
    return (size - k) // stride + 1, 0


def image_geometry(input_shape, window, strides, padding, layer):
    """``(H, W, C, Ho, Wo, ph, pw)`` of a windowed layer on ``input_shape``."""
    H, W, C = check_image_shape(input_shape, layer)
    Ho, ph = window_geometry(H, window[0], strides[0], padding, layer, "height")
    Wo, pw = window_geometry(W, window[1], strides[1], padding, layer, "width")
    return H, W, C, Ho, Wo, ph, pw


def as_images(X, shape, layer):
    """A ``(n, H, W, C)`` view of rows ``X`` of ``H*W*C`` values (or of images already shaped so), or ValueError."""
    H, W, C = shape
    if X.ndim == 4 and X.shape[1:] == (H, W, C):
        return X
    if X.ndim == 2 and X.shape[1] == H * W * C:
        return X.reshape(X.shape[0], H, W, C)
    raise ValueError(f"{layer} expects images of shape (n, {H}, {W}, {C}) or rows (n, {H * W * C}), got {X.shape}")


def _as_pair(value):
    """``value`` (an int or a pair of ints, each >= 1) as a tuple of two ints, or ValueError."""
    try:
        return check_pair(value, "", "")
    except ValueError:
        raise ValueError(f"got {value!r}") from None


#: the declared rule of a window size or stride (``Param(PAIR_RULE)``): an int or a pair, each >= 1
PAIR_RULE = Custom(_as_pair, "a positive integer or a pair of them", invalid=[0, -2, (3, 0), (1, 2, 3), "3", 2.5, True])


def _as_padding(value):
    if not isinstance(value, str) or value.lower() not in PADDINGS:
        raise ValueError(f"got {value!r}")
    return value.lower()


#: the declared rule of a ``padding`` setting
PADDING_RULE = Custom(_as_padding, "'valid' or 'same'", invalid=["full", 3, None])
