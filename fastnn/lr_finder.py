"""The learning-rate range test (Smith 2015; fastai's ``lr_find``).

Train for a few hundred mini-batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``, record the loss of every
batch, and stop once the (smoothed) loss has blown up. The loss falls fastest
somewhere below the rate where it diverges; that rate, or a tenth of the rate
at the loss minimum, is a good learning rate to start with::

    from fastnn.lr_finder import lr_find
    result = lr_find(net, X_train, y_train)
    print(result.suggestion)
    result.plot("lr_find.png")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(result.suggestion))

The network is left exactly as it was: its weights (and dropout random
state, and ``task``) are saved before and restored after the test, and the
optimizer passed in is copied, never stepped.
"""
import copy
import math

import numpy as np

from ._validation import check_int_min, check_positive_real, is_real
from . import optimizers as _optimizers
from .callbacks import Callback
from .errors import NonFiniteError
from .schedules import ExponentialDecay

__all__ = ["lr_find", "LRFinderResult", "zero_lag_smooth"]


class _Diverged(Exception):
    """Raised from the recorder to leave ``fit`` as soon as the loss has blown up."""


class _Recorder(Callback):
    every_batch = True

    def __init__(self, smooth, diverge_factor):
        self.smooth = smooth
        self.diverge_factor = diverge_factor
        self.losses = []
        self.smoothed = []
        self._avg = 0.0
        self._best = math.inf

    def on_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.smoothed.append(loss)
            raise _Diverged
        i = len(self.losses)
        self._avg = self.smooth * self._avg + (1 - self.smooth) * loss
        sm = self._avg / (1 - self.smooth ** i)
        self.smoothed.append(sm)
        self._best = min(self._best, sm)
        if i > 1 and sm > self.diverge_factor * self._best:
            raise _Diverged


def _ema(values, smooth):
    """Bias-corrected exponential moving average (fastai's smoothing), vectorised with lfilter."""
    from scipy.signal import lfilter

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or smooth == 0:
        return values.copy()
    avg = lfilter([1.0 - smooth], [1.0, -smooth], values)
    return avg / (1.0 - smooth ** np.arange(1, values.size + 1))


def zero_lag_smooth(values, smooth):
    """An EMA run forwards and then backwards: smooth, and without the EMA's lag.

    A plain EMA with ``smooth=0.98`` trails the curve by about 50 steps, which
    on a 200-step ramp over 8 decades shifts every feature two decades to the
    right; the backward pass cancels the shift.
    """
    return _ema(_ema(values, smooth)[::-1], smooth)[::-1]


_SMOOTH_DECADES = 0.2  # time constant of the zero-lag smoothing, in decades of learning rate
_SLOPE_DECADES = 0.1   # half-width of the slope estimate, in decades


class LRFinderResult:
    """What :func:`lr_find` found.

    Attributes
    ----------
    lrs : ndarray
        Learning rate of each recorded step.
    losses : ndarray
        Loss of each recorded step's mini-batch (before its update).
    smoothed_losses : ndarray
        ``losses`` smoothed without lag (:func:`zero_lag_smooth`, time constant
        0.2 decade of learning rate); NaN from the first non-finite loss on.
        This is the plotted curve and the one the suggestion reads.
    ema_losses : ndarray
        The online moving average (weight ``smooth``) of the divergence test.
    suggestion : float
        The suggested learning rate: ``lr_steep`` when there is one, else ``lr_min``.
    lr_steep : float or None
        Where the smoothed loss falls fastest against log(lr), between the last
        point near the top of the curve and its minimum. None when the curve
        drops by less than 5%, or the steepest point lies over two decades
        below the minimum (noise in a flat start rather than a valley).
    lr_min : float
        A tenth of the learning rate at the minimum of the smoothed loss.
    diverged : bool
        Whether the test stopped early because the loss blew up.
    """

    def __init__(self, lrs, losses, ema_losses=None, diverged=False, smooth=0.98, skip_start=10):
        self.lrs = np.asarray(lrs, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        if self.lrs.shape != self.losses.shape or self.lrs.ndim != 1:
            raise ValueError("lrs and losses must be 1-D arrays of the same length")
        if (self.lrs <= 0).any() or (np.diff(self.lrs) <= 0).any():
            raise ValueError("lrs must be positive and increasing")
        finite = np.isfinite(self.losses)
        self._n_ok = len(finite) if finite.all() else int(np.argmin(finite))
        self.ema_losses = (_ema(self.losses[:self._n_ok], smooth) if ema_losses is None
                           else np.asarray(ema_losses, np.float64))
        self.diverged = bool(diverged)
        n = self._n_ok
        decades = np.log10(self.lrs[n - 1] / self.lrs[0]) if n > 1 else 0.0
        self._steps_per_decade = (n - 1) / decades if decades > 0 else 1.0
        tau = max(1.0, _SMOOTH_DECADES * self._steps_per_decade)
        self._beta = 1.0 - 1.0 / tau
        self.smoothed_losses = np.full(self.losses.shape, np.nan)
        self.smoothed_losses[:n] = zero_lag_smooth(self.losses[:n], self._beta)
        self.lr_min, self.lr_steep = self._suggest(skip_start)
        self.suggestion = self.lr_steep if self.lr_steep is not None else self.lr_min

    def _suggest(self, skip_start):
        n = self._n_ok
        if n == 0:
            return math.nan, None
        skip = min(skip_start, n // 10)
        lrs = self.lrs[skip:n]
        sm = zero_lag_smooth(self.losses[skip:n], self._beta)  # free of the first batches' influence
        i_min = int(np.argmin(sm))
        lr_min = float(lrs[i_min] / 10)
        top, bottom = float(sm[:i_min + 1].max()), float(sm[i_min])
        if i_min < 3 or top - bottom < 0.05 * max(abs(top), 1e-12):
            return lr_min, None
        # the valley: from the last point near the top down to the minimum
        edge = int(np.nonzero(sm[:i_min + 1] >= top - 0.1 * (top - bottom))[0][-1])
        w = max(1, int(round(_SLOPE_DECADES * self._steps_per_decade)))
        i = np.arange(edge, i_min + 1)
        a, b = np.maximum(i - w, 0), np.minimum(i + w, len(sm) - 1)
        log_lr = np.log10(lrs)
        slope = (sm[b] - sm[a]) / (log_lr[b] - log_lr[a])
        k = edge + int(np.argmin(slope))
        if not slope[k - edge] < 0 or lrs[k] < lrs[i_min] / 100:
            return lr_min, None
        return lr_min, float(lrs[k])

    def plot(self, path=None):
        """Loss against learning rate with the suggestion marked (see :func:`fastnn.plotting.plot_lr_find`)."""
        from .plotting import plot_lr_find

        return plot_lr_find(self, path=path)

    def __repr__(self):
        return (f"LRFinderResult(steps={len(self.lrs)}, suggestion={self.suggestion:.3g}, "
                f"lr_min={self.lr_min:.3g}, diverged={self.diverged})")


def _fresh_optimizer(optimizer, schedule):
    """A new optimizer of the same kind and hyper-parameters, with ``lr=schedule`` and no state."""
    opt = _optimizers.get(optimizer)
    if opt is optimizer:  # an instance: rebuild it, do not touch the caller's
        try:
            cfg = opt.get_config()
            cfg["lr"] = schedule
            return type(opt)(**cfg)
        except (TypeError, ValueError):
            opt = copy.deepcopy(opt)
    opt.reset()
    opt.lr = schedule
    return opt


def _rng_states(network):
    return [(layer, copy.deepcopy(layer.rng.bit_generator.state)) for layer in network.layers
            if isinstance(getattr(layer, "rng", None), np.random.Generator)]


def lr_find(network, X, y, loss=None, optimizer=None, start_lr=1e-7, end_lr=10.0, num_steps=200,
            batch_size=None, smooth=0.98, diverge_factor=4.0, seed=0, *, clip_norm=None, clip_value=None,
            backend=None, n_threads=None):
    """Learning-rate range test: train briefly at exponentially growing rates and watch the loss.

    Parameters
    ----------
    network : Network or Trainer
        Left unchanged (weights restored afterwards). Given a Trainer, its network, and
        (unless given here) its loss, optimizer kind, batch size and clipping are used.
    X, y : array-like
        Training data; ``num_steps * batch_size`` rows are drawn from it
        (repeated when there are fewer).
    loss : str or Loss, default 'cross_entropy' (or the trainer's)
    optimizer : str or Optimizer, default 'adam' (or the trainer's)
        A name or an instance whose kind and hyper-parameters are copied (the
        instance itself is not used or changed).
    start_lr, end_lr : float, default 1e-7, 10
        The rate at the first and at the last of ``num_steps`` steps.
    num_steps : int, default 200
    batch_size : int, default 64 (or the trainer's)
    smooth : float, default 0.98
        Weight of the online moving average of the loss that the divergence
        test watches (fastai's), in [0, 1).
    diverge_factor : float, default 4
        Stop when that moving average exceeds this many times its minimum.
    seed : int, default 0
        Seeds which rows are drawn and their order.
    clip_norm, clip_value : float, optional
        Gradient clipping, as the trainer you will use.
    backend : str, optional
        Kernel backend; default: the network's.
    n_threads : int, optional
        Threads for the training steps (see :class:`~fastnn.Trainer`); 1 is
        often faster for tiny networks on a busy machine.

    Returns
    -------
    LRFinderResult
        ``lrs``, ``losses``, ``smoothed_losses``, ``suggestion``, ``lr_min``, ``plot()``.

    Notes
    -----
    The test costs ``num_steps`` training steps (less when the loss blows up
    first); the steps run one per compiled call, so a big network at a small
    batch size pays some Python overhead per step.
    """
    from .trainer import Trainer

    if isinstance(network, Trainer):  # lr_find(trainer, X, y): what that trainer would train with
        given = network
        network = given.network
        loss = given.loss if loss is None else loss
        optimizer = given.optimizer if optimizer is None else optimizer
        batch_size = given.batch_size if batch_size is None else batch_size
        clip_norm = (given.clip_norm or None) if clip_norm is None else clip_norm
        clip_value = (given.clip_value or None) if clip_value is None else clip_value
    loss = "cross_entropy" if loss is None else loss
    optimizer = "adam" if optimizer is None else optimizer
    batch_size = 64 if batch_size is None else batch_size
    start_lr, end_lr = check_positive_real(start_lr, "start_lr"), check_positive_real(end_lr, "end_lr")
    if not end_lr > start_lr:
        raise ValueError(f"end_lr ({end_lr}) must be larger than start_lr ({start_lr})")
    num_steps = check_int_min(num_steps, "num_steps", 2)
    if not is_real(smooth) or not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), not {smooth!r}")
    diverge_factor = check_positive_real(diverge_factor, "diverge_factor")
    if diverge_factor <= 1:
        raise ValueError(f"diverge_factor must be > 1, not {diverge_factor}")

    schedule = ExponentialDecay(start_lr, decay_rate=end_lr / start_lr, decay_steps=num_steps - 1)
    opt = _fresh_optimizer(optimizer, schedule)
    recorder = _Recorder(float(smooth), diverge_factor)
    trainer = Trainer(network, loss=loss, optimizer=opt, batch_size=batch_size, clip_norm=clip_norm,
                      clip_value=clip_value, callbacks=[recorder], seed=seed, verbose=0, backend=backend,
                      n_threads=n_threads)
    Xc, Y = trainer._prepare(X, y)  # validates before anything is saved or changed
    batch_size = trainer.batch_size
    rng = np.random.default_rng(seed)
    n = Xc.shape[0]
    if n < batch_size:
        batch_size = n
    need = num_steps * batch_size
    reps = -(-need // n)
    idx = np.concatenate([rng.permutation(n) for _ in range(reps)])[:need]
    Xs, Ys = Xc[idx], Y[idx]

    saved_params = network.params.copy()
    saved_buffers = network.buffers.copy()
    saved_task = network.task
    saved_rngs = _rng_states(network)
    diverged = False
    try:
        try:
            trainer.fit(Xs, Ys, epochs=1, batch_size=batch_size, shuffle=False)
        except _Diverged:
            diverged = True
        except NonFiniteError:
            diverged = True
    finally:
        network.params[...] = saved_params
        network.buffers[...] = saved_buffers
        network.grads[...] = 0
        network.task = saved_task
        for layer, state in saved_rngs:
            layer.rng.bit_generator.state = state
    k = len(recorder.losses)
    lrs = schedule(np.arange(k, dtype=np.int64))
    return LRFinderResult(lrs, recorder.losses, recorder.smoothed, diverged, smooth=float(smooth))
