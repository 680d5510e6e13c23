"""Loss functions by name, each with a fused forward+backward kernel.

- ``cross_entropy`` (aliases ``categorical_crossentropy``, ``sparse_categorical_crossentropy``):
  softmax + cross-entropy from logits, integer labels or one-hot/probability rows.
- ``binary_cross_entropy`` (``bce``): sigmoid + binary cross-entropy from logits, in the
  stable form ``max(z,0) - z*t + log1p(exp(-|z|))``; targets in [0, 1].
- ``mse`` (``mean_squared_error``): mean over outputs of the squared error.

The network's last layer produces logits for the two cross-entropies; a final
``softmax`` / ``sigmoid`` activation is also accepted and fused into the loss
(it is then applied only at prediction time).
"""
import numpy as np

from .kernels import codes
from .kernels import get_backend


class Loss:
    """A loss: its name, kernel code and target preparation.

    Parameters
    ----------
    name : str
        Canonical loss name.
    """

    #: final activations this loss fuses (applied only at predict time)
    fused_activation = None
    is_classification = False

    def __init__(self, name, code):
        self.name = name
        self.code = code

    def __repr__(self):
        return f"{type(self).__name__}()"

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        """Validate ``y`` and return it as a C-contiguous 2-D array of ``dtype``."""
        raise NotImplementedError

    def plan_loss(self, n_outputs):
        """``(loss code, float64 parameters)`` for the compiled plan, or None (per-layer path only)."""
        return None if self.code is None else (self.code, np.zeros(0))

    def __call__(self, output, y, backend=None):
        """Mean loss of raw network ``output`` (logits for the cross-entropies) against ``y``."""
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        return get_backend(backend).loss_forward_backward(self.code, output, target, 1.0 / len(output), dout) / len(output)

    def gradient(self, output, y, backend=None):
        """d(mean loss)/d(output), same shape as ``output``."""
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        get_backend(backend).loss_forward_backward(self.code, output, target, 1.0 / len(output), dout)
        return dout


def _as_numeric_array(y, name):
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits; integer class labels or one-hot rows."""

    fused_activation = "softmax"
    is_classification = True

    def __init__(self):
        super().__init__("cross_entropy", codes.LOSS_SOFTMAX_CE)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        if n_outputs < 2:
            raise ValueError("cross_entropy needs at least 2 outputs (one per class); "
                             "for a single output use loss='binary_cross_entropy'")
        arr = _as_numeric_array(y, name)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 1:
            if arr.dtype.kind == "f":
                if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
                    raise ValueError(f"{name} holds non-integer labels; cross_entropy needs class "
                                     f"indices 0..{n_outputs - 1} (or one-hot rows)")
            lo, hi = arr.min(), arr.max()
            if lo < 0 or hi >= n_outputs:
                raise ValueError(f"{name} has labels outside [0, {n_outputs}): min {lo}, max {hi}; "
                                 f"the network has {n_outputs} outputs")
            return np.ascontiguousarray(arr.reshape(-1, 1), dtype=dtype)
        if arr.ndim == 2:
            if arr.shape[1] != n_outputs:
                raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_outputs} outputs")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ValueError(f"{name} rows must be finite, non-negative class probabilities (one-hot)")
            return np.ascontiguousarray(arr, dtype=dtype)
        raise ValueError(f"{name} must be 1-D labels or 2-D one-hot rows, got shape {arr.shape}")


class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits, one column per independent binary target."""

    fused_activation = "sigmoid"
    is_classification = True

    def __init__(self):
        super().__init__("binary_cross_entropy", codes.LOSS_BCE_LOGITS)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        arr = _as_numeric_array(y, name)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != n_outputs:
            raise ValueError(f"{name} must have shape (n, {n_outputs}) for binary_cross_entropy, got {np.shape(y)}")
        if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
            raise ValueError(f"{name} must hold targets in [0, 1] for binary_cross_entropy "
                             f"(found min {arr.min()}, max {arr.max()})")
        return np.ascontiguousarray(arr, dtype=dtype)


class MeanSquaredError(Loss):
    """Mean over outputs of (output - target)^2, averaged over samples."""

    def __init__(self):
        super().__init__("mse", codes.LOSS_MSE)

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        arr = _as_numeric_array(y, name)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != n_outputs:
            raise ValueError(f"{name} must have shape (n, {n_outputs}) for mse, got {np.shape(y)}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return np.ascontiguousarray(arr, dtype=dtype)


_REGISTRY = {
    "cross_entropy": CrossEntropy,
    "categorical_crossentropy": CrossEntropy,
    "sparse_categorical_crossentropy": CrossEntropy,
    "softmax_cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get(loss):
    """Return a :class:`Loss` for a name or pass a Loss instance through."""
    if isinstance(loss, Loss):
        return loss
    from . import losses_extra  # imports this module: resolved lazily

    registry = {**_REGISTRY, **losses_extra.REGISTRY}
    if isinstance(loss, str) and loss.lower() in registry:
        return registry[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(registry)}")
