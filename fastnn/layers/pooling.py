"""Pooling of NHWC images: MaxPool2D, AveragePooling2D, GlobalAveragePooling2D (Keras names and defaults).

Kernels: the ``pool`` family (``maxpool_*`` records each window's winner in an
int64 argmax mask that the backward pass routes the gradient through;
``avgpool_*`` averages over the valid, non-padding entries of each window, as Keras).
"""
import numpy as np

from ..kernels import get_backend
from .._validation import Param
from ._spatial import PADDING_RULE, PAIR_RULE, as_images, check_image_shape, image_geometry
from ..kernels.codes import OP_AVGPOOL2D, OP_MAXPOOL2D
from .base import Layer, PlanRow, register


class _Pool2D(Layer):
    """Shared parts of the windowed pooling layers."""

    _kind = None
    # declared rules: checked in the constructor, on every later assignment and in model files
    pool_size = Param(PAIR_RULE)
    strides = Param(PAIR_RULE)
    padding = Param(PADDING_RULE)

    def __init__(self, pool_size=2, strides=None, padding="valid"):
        self.pool_size = pool_size
        self.strides = self.pool_size if strides is None else strides
        self.padding = padding
        self.geometry = None

    def output_shape(self, input_shape):
        """``(Ho, Wo, C)``."""
        _, _, C, Ho, Wo, _, _ = image_geometry(input_shape, self.pool_size, self.strides, self.padding,
                                               type(self).__name__)
        return (Ho, Wo, C)

    def build(self, input_shape):
        """Fix the input image shape; ValueError if the window does not fit it."""
        self.geometry = image_geometry(input_shape, self.pool_size, self.strides, self.padding, type(self).__name__)
        super().build(input_shape)

    def _geometry(self):
        if self.geometry is None:
            raise ValueError(f"{type(self).__name__} input shape is unknown: build it into a Network "
                             f"with input_shape=(H, W, C)")
        return self.geometry

    def _window_args(self):
        H, W, C, Ho, Wo, ph, pw = self._geometry()
        return self.pool_size[0], self.pool_size[1], self.strides[0], self.strides[1], ph, pw

    def plan_rows(self, fuse_activation=None):
        """One OP_MAXPOOL2D / OP_AVGPOOL2D row; max pooling's Z block holds the drivers' argmax offsets."""
        H, W, C, Ho, Wo, ph, pw = self._geometry()
        kh, kw, sh, sw = *self.pool_size, *self.strides
        return [PlanRow(op=OP_MAXPOOL2D if self._kind == "max" else OP_AVGPOOL2D, n_in=H * W * C,
                        n_out=Ho * Wo * C, z_block=self._kind == "max", geometry=(H, W, C, Ho, Wo, kh, kw, sh, sw, ph, pw))]

    def _work(self, key, shape, dtype, training):
        return self._buffer(key, shape, dtype) if training else np.empty(shape, dtype)

    def _images(self, X):
        H, W, C = self._geometry()[:3]
        X4 = as_images(X, (H, W, C), type(self).__name__)
        if not X4.flags.c_contiguous or X4.dtype not in (np.float32, np.float64):
            X4 = np.ascontiguousarray(X4, dtype=np.result_type(X4.dtype, np.float32))
        return X4

    def forward(self, X, training=False, backend=None):
        kern = get_backend(backend)
        X4 = self._images(X)
        n = X4.shape[0]
        H, W, C, Ho, Wo, _, _ = self._geometry()
        out = self._work("out", (n, Ho, Wo, C), X4.dtype, training)
        if self._kind == "max":
            argmax = self._work("argmax", (n, Ho, Wo, C), np.int64, training)
            kern.maxpool_forward(X4, *self._window_args(), out, argmax)
            self._cache = (n, X4.dtype, argmax) if training else None
        else:
            kern.avgpool_forward(X4, *self._window_args(), out)
            self._cache = (n, X4.dtype, None) if training else None
        return out.reshape(n, -1)

    def backward(self, dA, backend=None, need_dX=True):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a training-mode forward first")
        if not need_dX:
            return None
        kern = get_backend(backend)
        n, dtype, argmax = self._cache
        H, W, C, Ho, Wo, _, _ = self._geometry()
        dout = np.ascontiguousarray(dA, dtype=dtype).reshape(n, Ho, Wo, C)
        dX = self._buffer("dX", (n, H * W * C), dtype)
        if self._kind == "max":
            kern.maxpool_backward(dout, argmax, dX.reshape(n, H, W, C))
        else:
            kern.avgpool_backward(dout, *self._window_args(), dX.reshape(n, H, W, C))
        return dX

    def get_config(self):
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}


@register
class MaxPool2D(_Pool2D):
    """Max pooling over windows of NHWC images (Keras ``MaxPool2D``).

    Parameters
    ----------
    pool_size : int or (int, int), default 2
    strides : int or (int, int), optional
        Default: ``pool_size`` (non-overlapping windows).
    padding : {'valid', 'same'}, default 'valid'
        Padding positions never win a window.

    The gradient of each window goes to its first maximum only (as PyTorch and Keras).
    """

    _kind = "max"


@register
class AveragePooling2D(_Pool2D):
    """Average pooling over windows of NHWC images (Keras ``AveragePooling2D``).

    Parameters
    ----------
    pool_size : int or (int, int), default 2
    strides : int or (int, int), optional
        Default: ``pool_size``.
    padding : {'valid', 'same'}, default 'valid'
        With ``'same'``, border windows average their valid entries only (Keras).
    """

    _kind = "avg"


@register
class GlobalAveragePooling2D(_Pool2D):
    """Mean of each channel over the whole image: ``(H, W, C) -> (C,)`` (Keras ``GlobalAveragePooling2D``)."""

    _kind = "avg"
    # the window is the whole image, fixed at build time: plain attributes, not settings
    pool_size = strides = padding = None

    def __init__(self):
        self.pool_size = self.strides = None
        self.padding = "valid"
        self.geometry = None

    def _fit_window(self, input_shape):
        H, W, _ = check_image_shape(input_shape, "GlobalAveragePooling2D")
        self.pool_size = self.strides = (H, W)

    def output_shape(self, input_shape):
        """``(C,)``."""
        return (check_image_shape(input_shape, "GlobalAveragePooling2D")[2],)

    def build(self, input_shape):
        self._fit_window(input_shape)
        super().build(input_shape)

    def get_config(self):
        return {}
