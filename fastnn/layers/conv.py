"""2-D convolution on NHWC images: Z = im2col(X) @ W + b, A = f(Z).

The patches of every output position are unfolded into the rows of a
``cols`` buffer (``im2col``, the ``conv`` kernel family) and multiplied with
the kernel as one GEMM through the ``dense`` kernels, so bias and activation
run in the GEMM's epilogue pass and the backward pass is the Dense backward
on the columns followed by ``col2im`` for the input gradient.
"""
import math

import numpy as np

from .. import activations
from .._validation import Boolean, Integer, OneOf, Param, Real
from ..kernels import get_backend
from ..kernels.codes import ACT_LINEAR, ACT_RELU, OP_CONV2D
from ._spatial import PADDING_RULE, PAIR_RULE, as_images, image_geometry
from .base import Layer, PlanRow, register
from .dense import _HE_FAMILY

INITS = ("auto", "he_normal", "he_uniform", "glorot_uniform", "glorot_normal", "lecun_normal", "zeros")


@register
class Conv2D(Layer):
    """2-D convolution (cross-correlation) of NHWC images, Keras names and defaults.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        Window height and width.
    strides : int or (int, int), default 1
    padding : {'valid', 'same'}, default 'valid'
        ``'same'`` pads with zeros so the output is ``ceil(size / stride)`` (Keras rule).
    activation : str or None, default None (linear)
        One of ``fastnn.activations.NAMES`` (softmax is per position over the filters).
    use_bias : bool, default True
    init : str, default 'auto'
        He-normal for the ReLU family, Glorot-uniform otherwise (fans counted over the
        receptive field, as Keras), or one of the names of :class:`~fastnn.Dense`.
    alpha : float, optional
        Negative slope of ``leaky_relu`` / saturation of ``elu``.

    Notes
    -----
    Per-sample input shape ``(H, W, C)``; output ``(Ho, Wo, filters)``. The kernel
    ``W`` has shape ``(kh, kw, C, filters)`` (Keras layout; PyTorch's is
    ``W.transpose(3, 2, 0, 1)``), the bias ``b`` shape ``(filters,)``.
    """

    compute_bound = True  # big GEMMs per sample: the per-layer path threads BLAS for it

    # declared rules: checked in the constructor, on every later assignment and in model files
    filters = Param(Integer(1))
    kernel_size = Param(PAIR_RULE)
    strides = Param(PAIR_RULE)
    padding = Param(PADDING_RULE)
    activation = Param(activations.CONSTRAINT)
    use_bias = Param(Boolean())
    init = Param(OneOf(INITS))
    alpha = Param(Real())

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None, use_bias=True,
                 init="auto", alpha=None):
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.activation = activation
        self.alpha = activations.default_alpha(self.activation) if alpha is None else alpha
        self.use_bias = use_bias
        self.init = init
        self.geometry = None

    @property
    def act_code(self):
        """Kernel code of :attr:`activation`."""
        return activations.code_of(self.activation)

    def build(self, input_shape):
        """Fix the input image shape; ValueError if the kernel does not fit it."""
        self.geometry = image_geometry(input_shape, self.kernel_size, self.strides, self.padding, "Conv2D")
        super().build(input_shape)

    def output_shape(self, input_shape):
        """``(Ho, Wo, filters)``."""
        _, _, _, Ho, Wo, _, _ = image_geometry(input_shape, self.kernel_size, self.strides, self.padding, "Conv2D")
        return (Ho, Wo, self.filters)

    def _geometry(self):
        if self.geometry is None:
            raise ValueError("Conv2D input shape is unknown: build it into a Network with input_shape=(H, W, C)")
        return self.geometry

    def param_shapes(self):
        kh, kw = self.kernel_size
        C = self._geometry()[2]
        shapes = {"W": (kh, kw, C, self.filters)}
        if self.use_bias:
            shapes["b"] = (self.filters,)
        return shapes

    @property
    def macs_per_sample(self):
        """Multiply-adds of one sample's forward pass (the GEMM)."""
        _, _, C, Ho, Wo, _, _ = self._geometry()
        return Ho * Wo * self.kernel_size[0] * self.kernel_size[1] * C * self.filters

    def init_params(self, params, rng):
        kh, kw = self.kernel_size
        C = self._geometry()[2]
        fan_in, fan_out = kh * kw * C, kh * kw * self.filters
        init = self.init
        if init == "auto":
            init = "he_normal" if self.activation in _HE_FAMILY else "glorot_uniform"
        W = params["W"]
        if init == "he_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(2.0 / fan_in)
        elif init == "he_uniform":
            lim = math.sqrt(6.0 / fan_in)
            W[...] = rng.uniform(-lim, lim, W.shape)
        elif init == "glorot_uniform":
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-lim, lim, W.shape)
        elif init == "glorot_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(2.0 / (fan_in + fan_out))
        elif init == "lecun_normal":
            W[...] = rng.standard_normal(W.shape) * math.sqrt(1.0 / fan_in)
        else:
            W[...] = 0
        if self.use_bias:
            params["b"][...] = 0

    @property
    def W(self):
        """Kernel, shape (kh, kw, C, filters): a view into the network's flat buffer."""
        return self.params["W"]

    @property
    def b(self):
        """Bias, shape (filters,) (None without a bias)."""
        return self.params.get("b")

    def plan_rows(self, fuse_activation=None):
        """One OP_CONV2D row (linear when the loss applies this layer's activation; no bias column
        without a bias)."""
        H, W, C, Ho, Wo, ph, pw = self._geometry()
        act = self.act_code
        if fuse_activation is not None and self.activation == fuse_activation:
            act = ACT_LINEAR
        kh, kw = self.kernel_size
        return [PlanRow(op=OP_CONV2D, n_in=H * W * C, n_out=Ho * Wo * self.filters, act=act,
                        params=("W", "b") if self.use_bias else ("W",), floats={"alpha": self.alpha},
                        geometry=(H, W, C, Ho, Wo, kh, kw, self.strides[0], self.strides[1], ph, pw))]

    def _is_pointwise(self):
        """A 1x1 kernel, stride 1, no padding: the columns are the input itself (no im2col)."""
        return self.kernel_size == (1, 1) and self.strides == (1, 1)

    def _work(self, key, shape, dtype, training):
        # Cached buffers in training (no per-batch allocation); fresh ones at inference, so
        # concurrent predicts share nothing and predict's result belongs to the caller.
        return self._buffer(key, shape, dtype) if training else np.empty(shape, dtype)

    def forward(self, X, training=False, backend=None, logits=False):
        """A = f(conv(X, W) + b) as rows (n, Ho*Wo*filters); ``logits=True`` skips the activation."""
        kern = get_backend(backend)
        H, W, C, Ho, Wo, ph, pw = self._geometry()
        kh, kw = self.kernel_size
        dtype = self.params["W"].dtype
        X4 = as_images(X, (H, W, C), "Conv2D")
        if X4.dtype != dtype or not X4.flags.c_contiguous:
            X4 = np.ascontiguousarray(X4, dtype=dtype)
        n = X4.shape[0]
        K, F = kh * kw * C, self.filters
        if self._is_pointwise():
            cols = X4.reshape(n * H * W, C)
        else:
            cols4 = self._work("cols", (n, Ho, Wo, K), dtype, training)
            kern.im2col(X4, kh, kw, self.strides[0], self.strides[1], ph, pw, cols4)
            cols = cols4.reshape(n * Ho * Wo, K)
        act = ACT_LINEAR if logits else self.act_code
        Z = self._work("Z", (n * Ho * Wo, F), dtype, training)
        # ReLU in place: relu(z) > 0 exactly where z > 0, which is all its derivative reads (every
        # backend), so one feature map is written and read instead of two (memory-bound for a first
        # layer with K = 9: measured 3.1 ms of a 21 ms batch-64 step of the example CNN).
        A = Z if act in (ACT_LINEAR, ACT_RELU) else self._work("A", (n * Ho * Wo, F), dtype, training)
        b = self.params["b"] if self.use_bias else self._buffer("zero_b", (F,), dtype)
        if not self.use_bias:
            b[...] = 0
        kern.dense_forward(cols, self.params["W"].reshape(K, F), b, act, self.alpha, Z, A)
        self._cache = (X4, cols, Z, A, act) if training else None
        return A.reshape(n, Ho * Wo * F)

    def backward(self, dA, backend=None, need_dX=True):
        """Write dW (and db) into the gradient views; return dX rows (None if ``need_dX`` is False)."""
        if self._cache is None:
            raise RuntimeError("Conv2D.backward needs a training-mode forward first")
        kern = get_backend(backend)
        X4, cols, Z, A, act = self._cache
        H, W, C, Ho, Wo, ph, pw = self._geometry()
        kh, kw = self.kernel_size
        n = X4.shape[0]
        K, F = kh * kw * C, self.filters
        dtype = Z.dtype
        dA = np.ascontiguousarray(dA, dtype=dtype).reshape(n * Ho * Wo, F)
        dZ = self._buffer("dZ", Z.shape, dtype)
        db = self.grads["b"] if self.use_bias else self._buffer("db_scratch", (F,), dtype)
        if not need_dX:
            dcols = None
        elif self._is_pointwise():
            dX = self._buffer("dX", (n, H * W * C), dtype)
            dcols = dX.reshape(n * H * W, C)
        else:
            dcols = self._buffer("dcols", (n * Ho * Wo, K), dtype)
        kern.dense_backward(cols, self.params["W"].reshape(K, F), Z, A, dA, act, self.alpha, dZ,
                            self.grads["W"].reshape(K, F), db, dcols)
        if not need_dX:
            return None
        if self._is_pointwise():
            return dX
        dX = self._buffer("dX", (n, H * W * C), dtype)
        kern.col2im(dcols.reshape(n, Ho, Wo, K), kh, kw, self.strides[0], self.strides[1], ph, pw,
                    dX.reshape(n, H, W, C))
        return dX

    def get_config(self):
        cfg = {"filters": self.filters, "kernel_size": list(self.kernel_size), "strides": list(self.strides),
               "padding": self.padding, "activation": self.activation, "use_bias": self.use_bias,
               "init": self.init}
        if self.alpha != activations.default_alpha(self.activation):
            cfg["alpha"] = self.alpha
        return cfg
