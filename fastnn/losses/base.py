"""The loss base classes: :class:`Loss` (a code of the per-op loss kernel) and :class:`GenericLoss` (own kernels)."""
import numpy as np

from ..kernels import get_backend
from ..kernels import losses_extra as _kernels

__all__ = ["Loss", "GenericLoss"]


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
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}; for class labels such as strings, "
                        f"map them to 0..k-1 first, e.g. classes, {name} = np.unique({name}, return_inverse=True)")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


class GenericLoss(Loss):
    """A loss with its own kernels: on the per-layer path the trainer calls :meth:`forward_backward`.

    The compiled plan runs it through :meth:`plan_loss` (a plan loss code and its float parameters).

    Subclasses implement :meth:`_kernel_call` (one kernel of
    :mod:`fastnn.kernels.losses_extra` with their hyper-parameters).
    """

    def __init__(self, name):
        super().__init__(name, None)

    def _kernel_call(self, kern, out, target, scale, dout):
        raise NotImplementedError

    def forward_backward(self, out, target, scale, dout, backend=None):
        """Sum over rows of the per-sample loss; writes ``d(scale * sum)/d(out)`` into ``dout``.

        The signature of ``kernels.loss_forward_backward`` without the code;
        ``backend`` picks numpy (``'reference'``) or Numba (``'numba'``, ``'cython'``).
        """
        kern = _kernels.kernels_for(get_backend(backend).NAME)
        return self._kernel_call(kern, out, target, scale, dout)

    def count_correct(self, out, target, backend=None):
        """Rows predicted correctly (classification losses); 0 for regression losses."""
        return 0

    def __call__(self, output, y, backend=None):
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        return self.forward_backward(output, target, 1.0 / len(output), dout, backend) / len(output)

    def gradient(self, output, y, backend=None):
        output = np.ascontiguousarray(output)
        target = self.prepare_targets(y, output.shape[1], output.dtype)
        dout = np.empty_like(output)
        self.forward_backward(output, target, 1.0 / len(output), dout, backend)
        return dout



def as_numeric_array(y, name):
    """``np.asarray(y)``, refusing non-numeric dtypes and empty targets."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}; for class labels such as strings, "
                        f"map them to 0..k-1 first, e.g. classes, {name} = np.unique({name}, return_inverse=True)")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr



def regression_targets(loss_name, y, n_outputs, dtype, name):
    """Targets of a regression loss as a finite C-contiguous ``(n, n_outputs)`` array of ``dtype``."""
    arr = as_numeric_array(y, name)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape (n, {n_outputs}) for {loss_name}, got {np.shape(y)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return np.ascontiguousarray(arr, dtype=dtype)
