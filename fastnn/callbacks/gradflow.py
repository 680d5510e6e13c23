"""Gradient-flow diagnostics: per-layer gradient and update norms per epoch, and the vanishing/exploding warnings."""
import warnings

import numpy as np

from .._validation import Boolean, Integer, Param, Real
from ..diagnostics import EXPLODING_FACTOR, VANISHING_FACTOR, FastnnWarning, check_gradient_flow
from .base import Callback

__all__ = ["GradientFlow"]

_KEYS = ("grad_norm", "update_norm", "weight_norm", "update_ratio")


class GradientFlow(Callback):
    """Record how much each layer's gradient and weights move, epoch by epoch; warn when it goes wrong.

    Per parameter tensor (``network.parameters()``: ``'0.W'``, ``'0.b'``, ...) and per epoch:

    * ``grad_norm`` -- L2 norm of the mean gradient of a fixed probe batch at the end of the
      epoch (:class:`fastnn.engine.probe.GradientProbe`: the engine's ``grad_steps`` entry point on
      the fused path, each layer's backward otherwise). One forward/backward of ``probe_size``
      rows per epoch, outside the compiled training loop, which runs unchanged;
    * ``update_norm`` -- ``||W_end - W_start||`` over the epoch;
    * ``weight_norm`` -- ``||W_end||``;
    * ``update_ratio`` -- ``update_norm / weight_norm`` (NaN where the weights are all zero).

    After each epoch :func:`fastnn.diagnostics.check_gradient_flow` looks at the gradient norms:
    *vanishing* when the first weight tensor's RMS gradient is below ``vanishing_factor`` times the
    last one's (the early layers do not learn), *exploding* when a norm is NaN/Inf or the global
    norm exceeds ``exploding_factor`` times its value before training. Each kind is reported once
    per ``fit`` as a :class:`~fastnn.diagnostics.FastnnWarning` with the guides' advice (ReLU/GELU,
    He init, BatchNorm, residuals; lower learning rate, ``clip_norm``), and kept in ``findings``.

    Parameters
    ----------
    probe_size : int, default 256
        Rows of the training data in the probe batch (a fixed random draw, the same every epoch).
    vanishing_factor : float, default 1e-2
    exploding_factor : float, default 1e3
    seed : int, default 0
        Draws the probe rows.
    warn : bool, default True
        Emit warnings (False: only collect ``findings``).

    Attributes
    ----------
    names : list of str
        The parameter tensors, first layer first.
    sizes : ndarray of int
        Entries of each tensor.
    initial_grad_norm : ndarray
        Per-tensor gradient norms before the first epoch (of the first fit this callback saw).
    history : dict of ndarray
        ``'epoch'`` (n_epochs,), ``'probe_loss'`` (n_epochs,) and ``grad_norm``, ``update_norm``,
        ``weight_norm``, ``update_ratio``, each (n_epochs, n_tensors). Successive fits of the same
        trainer extend it.
    findings : list of Finding
    probe_path : str
        ``'fused'`` or ``'per-layer'``: how the probe computes its gradient.

    Notes
    -----
    The probe rows come from the data given to ``fit`` as the trainer prepared it
    (``trainer.fit_data``: before any ``augment``). With ``Trainer(check_finite=True)``, the
    default, a NaN/Inf batch loss stops training with
    :class:`~fastnn.errors.NonFiniteError` before the epoch ends: the NaN branch of the
    exploding check then only fires for ``check_finite=False``, the growth branch always.

    See Also
    --------
    fastnn.plotting.plot_gradient_flow : the norms against the epoch, one line per layer.
    """

    probe_size = Param(Integer(1))
    vanishing_factor = Param(Real(0, 1, lo_open=True, hi_open=True))
    exploding_factor = Param(Real(1, lo_open=True))
    seed = Param(Integer(0))
    warn = Param(Boolean())

    def __init__(self, probe_size=256, *, vanishing_factor=VANISHING_FACTOR, exploding_factor=EXPLODING_FACTOR,
                 seed=0, warn=True):
        self.probe_size = probe_size
        self.vanishing_factor = vanishing_factor
        self.exploding_factor = exploding_factor
        self.seed = seed
        self.warn = warn
        self._owner = None
        self.reset()

    def reset(self):
        """Forget the recorded norms and findings."""
        self.names, self.sizes, self.weights = [], np.zeros(0, np.int64), np.zeros(0, bool)
        self.initial_grad_norm = None
        self.findings = []
        self._rows = {k: [] for k in _KEYS}
        self._epochs, self._probe_losses = [], []
        self._probe = None
        self.probe_path = None

    @property
    def history(self):
        n = len(self.names)
        out = {"epoch": np.array(self._epochs, np.int64), "probe_loss": np.array(self._probe_losses)}
        for key in _KEYS:
            out[key] = np.array(self._rows[key], np.float64).reshape(len(self._rows[key]), n)
        return out

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        from ..engine.probe import GradientProbe

        t = self.trainer
        net = t.network
        if self._owner is not t or [name for name, _ in net.parameters()] != self.names:
            self.reset()
            self._owner = t
        data = getattr(t, "fit_data", None)
        if data is None:
            raise ValueError("GradientFlow needs the training data of the fit (trainer.fit_data); "
                             "this trainer does not expose it")
        X, Y = data
        m = min(self.probe_size, len(X))
        rows = np.sort(np.random.default_rng(self.seed).choice(len(X), m, replace=False))
        self._probe = GradientProbe(net, t.loss, t.optimizer, np.ascontiguousarray(X[rows]),
                                    np.ascontiguousarray(Y[rows]), backend=t.backend)
        self.probe_path = self._probe.path
        params = net.parameters()
        self.names = [name for name, _ in params]
        self.sizes = np.array([arr.size for _, arr in params], np.int64)
        self.weights = np.array([arr.ndim >= 2 for _, arr in params], bool)
        self._bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        self._grad = np.empty_like(net.params)
        self._start = np.empty_like(net.params)
        self._reported = set()
        grad, _ = self._probe(self._grad)
        now = self._norms(grad)
        if self.initial_grad_norm is None:
            self.initial_grad_norm = now
        self._check(now)  # a network that starts with vanishing gradients is reported before its first epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._start[...] = self.trainer.network.params

    def on_epoch_end(self, epoch, logs=None):
        params = self.trainer.network.params
        grad, probe_loss = self._probe(self._grad)
        grad_norm = self._norms(grad)
        self._start -= params  # the epoch's update (sign irrelevant), in place: no allocation
        update = self._norms(self._start)
        weight = self._norms(params)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weight > 0, update / weight, np.nan)
        for key, row in zip(_KEYS, (grad_norm, update, weight, ratio)):
            self._rows[key].append(row)
        self._epochs.append(epoch)
        self._probe_losses.append(probe_loss)
        self._check(grad_norm)

    def on_train_end(self, logs=None):
        self._probe = None  # the probe holds copies of the probe rows and a plan's work buffer

    # ------------------------------------------------------------------ helpers
    def _norms(self, flat):
        """Per-tensor L2 norms of a flat parameter-ordered array (float64 accumulation)."""
        b = self._bounds
        return np.array([np.linalg.norm(flat[b[i]:b[i + 1]].astype(np.float64, copy=False))
                         for i in range(len(self.names))])

    def _check(self, grad_norm):
        initial = None if self.initial_grad_norm is None else float(np.linalg.norm(self.initial_grad_norm))
        for finding in check_gradient_flow(grad_norm, self.sizes, weights=self.weights, initial_norm=initial,
                                           vanishing_factor=self.vanishing_factor,
                                           exploding_factor=self.exploding_factor):
            if finding.kind in self._reported:
                continue
            self._reported.add(finding.kind)
            self.findings.append(finding)
            if self.warn:
                warnings.warn(f"GradientFlow: {finding}", FastnnWarning, stacklevel=4)
