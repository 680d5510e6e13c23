"""Gradient probe: the gradient of one fixed batch at the current weights, without a training step.

Diagnostics (:class:`fastnn.callbacks.GradientFlow`) need the gradient the optimizer would see,
once per epoch, without touching the compiled training loop. The probe runs the same code as
training: the backend's ``grad_steps`` entry point on a fused plan of its own (built once, sized
for the probe batch), else each layer's forward/backward
(:func:`~fastnn.engine.runners.layerwise_grad`). Training-mode behaviour (dropout masks of the
next step, batch statistics) and L1/L2 penalty gradients are included, gradient clipping is not
(the probe shows the raw gradient). The probe changes no state: ``network.grads`` and the
non-trainable buffers (BatchNorm running statistics, which a training forward updates) are restored.
"""
import numpy as np

from ..kernels import get_backend
from .plan import build_plan
from .runners import layerwise_grad

__all__ = ["GradientProbe"]


class GradientProbe:
    """Mean gradient of the batch ``(X, Y)`` (prepared as the trainer prepares data) at the current weights.

    Parameters
    ----------
    network : Network
    loss : Loss
    optimizer : Optimizer
        Built for ``network`` (the fused plan binds its code and state; nothing is updated).
    X, Y : ndarray
        The probe batch, as :meth:`fastnn.Trainer.fit` prepares it (``trainer.fit_data`` rows).
    backend : str, optional
        Default: the network's.
    path : {'auto', 'per-layer'}, default 'auto'
        ``'auto'``: the fused ``grad_steps`` entry point when the network has a plan, else layer by layer.

    Attributes
    ----------
    path : str
        ``'fused'`` or ``'per-layer'``: the path the probe takes.
    """

    def __init__(self, network, loss, optimizer, X, Y, backend=None, path="auto"):
        self.network, self.loss, self.optimizer = network, loss, optimizer
        self.X, self.Y = X, Y
        self.backend = network.backend if backend is None else backend
        self.kern = get_backend(self.backend)
        m = len(X)
        self.plan = None
        if path != "per-layer":
            plan = build_plan(network, loss, m, 1, Y.shape[1], backend_has_driver=hasattr(self.kern, "grad_steps"))
            if plan.path == "fused":
                self.plan = plan
        self.path = "fused" if self.plan is not None else "per-layer"
        self._perm = np.arange(m, dtype=np.int64)
        self._start = np.zeros(1, np.int64)
        self._loss, self._correct = np.zeros(1), np.zeros(1)
        self._layerwise = None if self.plan is not None else layerwise_grad(self.kern, self.backend, network, loss,
                                                                            X, Y, m)

    def __call__(self, out=None):
        """The gradient (flat, in :attr:`Network.params` order) into ``out`` (allocated if None).

        Returns
        -------
        (ndarray, float)
            The gradient and the batch's mean loss (penalties included).
        """
        net, opt = self.network, self.optimizer
        out = np.empty_like(net.grads) if out is None else out
        saved_grads, saved_buffers = net.grads.copy(), net.buffers.copy()
        try:
            if self.plan is not None:
                # hyper only matters to apply_update (clipping, lr), which the probe never calls
                self.plan.bind(net, opt, opt.hyper_vector(0.0, 0.0))
                self.kern.grad_steps(self.plan, self.X, self.Y, self._perm, self._start, opt.iterations,
                                     self._loss, self._correct)
                loss = float(self._loss[0])
            else:  # the dropout masks of the next step, as the runners draw them
                loss, _ = self._layerwise(self._perm, opt.iterations + 1)
            out[...] = net.grads
        finally:
            net.grads[...] = saved_grads
            net.buffers[...] = saved_buffers
        return out, float(loss)
