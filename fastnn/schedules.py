"""Learning-rate schedules: step number → learning rate.

A schedule is a callable object taking the 0-based optimizer step number (an
int64 array, or a single integer) and returning the learning rate(s) as
float64. Pass one as an optimizer's ``lr`` and the rate changes every
mini-batch step::

    import fastnn as fnn
    from fastnn.schedules import OneCycle
    steps = epochs * math.ceil(len(X) / batch_size)
    opt = fnn.Adam(lr=OneCycle(max_lr=1e-2, total_steps=steps))

The trainer asks for the rates of a whole chunk of steps at once
(``Optimizer.learning_rates``), so every schedule here is vectorised numpy:
one call for 128 steps costs about as much as one call for one step.

Closed forms (``t`` is the step number):

* :class:`Constant`: ``lr``
* :class:`StepDecay`: ``lr * gamma ** floor(t / step_size)``
* :class:`ExponentialDecay`: ``lr * decay_rate ** (t / decay_steps)``
  (``floor`` of the exponent with ``staircase=True``)
* :class:`CosineDecay`: linear warm-up ``lr * (t + 1) / warmup_steps`` for
  ``t < warmup_steps``, then ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2``
  with ``p = (t - warmup_steps) / (total_steps - warmup_steps)`` clipped to 1
* :class:`OneCycle`: PyTorch's ``OneCycleLR`` (cosine annealing, two phases)

Every schedule has ``get_config()`` (constructor arguments) and a repr that
rebuilds it; :func:`from_config` goes back from ``{"name": ..., "config": ...}``.
"""

import numpy as np

from ._validation import Integer, Param, Real
from .errors import ParameterError

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "OneCycle",
           "from_config"]


def _steps(step):
    """``step`` as a float64 array of non-negative step numbers (and whether it was a scalar)."""
    arr = np.asarray(step)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"step numbers must be integers, got {step!r}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"step numbers start at 0, got {arr.min()}")
    return arr.astype(np.float64), arr.ndim == 0


class Schedule:
    """Base class: subclasses implement ``_rates(t)`` on a float64 array of steps."""

    def __call__(self, step):
        """Learning rate(s) at 0-based ``step`` (int or int array) as float64."""
        t, scalar = _steps(step)
        out = np.asarray(self._rates(t), dtype=np.float64)
        if out.shape != t.shape:
            out = np.broadcast_to(out, t.shape).copy()
        return np.float64(out) if scalar else out

    def _rates(self, t):
        raise NotImplementedError

    def get_config(self):
        """Constructor arguments as a dict."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def to_config(self):
        """``{"name": class name, "config": get_config()}``, the input of :func:`from_config`."""
        return {"name": type(self).__name__, "config": self.get_config()}


class Constant(Schedule):
    """The same rate at every step.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    """

    lr = Param(Real(0, lo_open=True))

    def __init__(self, lr):
        self.lr = lr

    def _rates(self, t):
        return np.full(t.shape, self.lr)

    def get_config(self):
        return {"lr": self.lr}


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr * gamma ** floor(t / step_size)``.

    As ``torch.optim.lr_scheduler.StepLR`` (counting optimizer steps).

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0).
    step_size : int
        Steps between two decays (>= 1).
    gamma : float, default 0.1
        Factor per decay (> 0; below 1 to decay).
    """

    lr = Param(Real(0, lo_open=True))
    step_size = Param(Integer(1))
    gamma = Param(Real(0, lo_open=True))

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr = lr
        self.step_size = step_size
        self.gamma = gamma

    def _rates(self, t):
        return self.lr * self.gamma ** np.floor(t / self.step_size)

    def get_config(self):
        return {"lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(Schedule):
    """Smooth exponential decay: ``lr * decay_rate ** (t / decay_steps)``.

    As Keras' ``ExponentialDecay``: the rate is multiplied by ``decay_rate``
    every ``decay_steps`` steps, continuously (or in jumps with ``staircase``).
    A ``decay_rate`` above 1 grows the rate (the learning-rate range test uses this).

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0).
    decay_rate : float
        Factor per ``decay_steps`` steps (> 0).
    decay_steps : int
        Steps over which the rate changes by ``decay_rate`` (>= 1).
    staircase : bool, default False
        Use ``floor(t / decay_steps)`` as the exponent.
    """

    lr = Param(Real(0, lo_open=True))
    decay_rate = Param(Real(0, lo_open=True))
    decay_steps = Param(Integer(1))

    def __init__(self, lr, decay_rate, decay_steps, staircase=False):
        self.lr = lr
        self.decay_rate = decay_rate
        self.decay_steps = decay_steps
        self.staircase = bool(staircase)

    def _rates(self, t):
        p = t / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        with np.errstate(over="ignore"):
            return self.lr * self.decay_rate ** p

    def get_config(self):
        return {"lr": self.lr, "decay_rate": self.decay_rate, "decay_steps": self.decay_steps,
                "staircase": self.staircase}


class CosineDecay(Schedule):
    """Linear warm-up, then half a cosine from ``lr`` down to ``min_lr`` at ``total_steps``.

    * ``t < warmup_steps``: ``lr * (t + 1) / warmup_steps`` (reaches ``lr`` at the last warm-up step)
    * ``t >= warmup_steps``: ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2`` with
      ``p = min(1, (t - warmup_steps) / (total_steps - warmup_steps))``; ``min_lr`` from
      ``total_steps`` on.

    Parameters
    ----------
    lr : float
        Peak learning rate (> 0).
    total_steps : int
        Step at which the rate reaches ``min_lr`` (usually epochs × batches per epoch).
    warmup_steps : int, default 0
        Steps of linear warm-up, fewer than ``total_steps``.
    min_lr : float, default 0
        Final rate, in [0, lr].
    """

    lr = Param(Real(0, lo_open=True))
    total_steps = Param(Integer(1))
    warmup_steps = Param(Integer(0))
    min_lr = Param(Real(0))

    def __init__(self, lr, total_steps, warmup_steps=0, min_lr=0.0):
        self.lr = lr
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be smaller than total_steps "
                             f"({self.total_steps})")
        self.min_lr = min_lr
        if self.min_lr > self.lr:
            raise ParameterError(f"CosineDecay min_lr must be <= lr ({self.lr}), not {self.min_lr!r}")

    def _rates(self, t):
        w = self.warmup_steps
        p = np.clip((t - w) / (self.total_steps - w), 0.0, 1.0)
        cosine = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + np.cos(np.pi * p))
        if w == 0:
            return cosine
        return np.where(t < w, self.lr * (t + 1.0) / w, cosine)

    def get_config(self):
        return {"lr": self.lr, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "min_lr": self.min_lr}


class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin), with PyTorch ``OneCycleLR``'s shape (cosine annealing).

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then falls to
    ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``,
    along half cosines; it stays there afterwards (where PyTorch raises).
    Momentum cycling is not part of it.

    Parameters
    ----------
    max_lr : float
        Peak learning rate (> 0).
    total_steps : int
        Length of the cycle in steps (epochs × batches per epoch).
    pct_start : float, default 0.3
        Fraction of the cycle spent increasing the rate, in (0, 1).
    div_factor : float, default 25
        ``initial_lr = max_lr / div_factor`` (>= 1).
    final_div_factor : float, default 1e4
        ``final_lr = initial_lr / final_div_factor`` (>= 1).
    """

    max_lr = Param(Real(0, lo_open=True))
    total_steps = Param(Integer(2))
    pct_start = Param(Real(0, 1, lo_open=True, hi_open=True))
    div_factor = Param(Real(1))
    final_div_factor = Param(Real(1))

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        if not 0 < self._peak < self.total_steps - 1:
            raise ValueError(f"pct_start * total_steps - 1 = {self._peak:g} must lie strictly between 0 and "
                             f"total_steps - 1 = {self.total_steps - 1}: too few steps for pct_start "
                             f"{self.pct_start}")

    # Derived on demand, so assigning max_lr, total_steps, ... later keeps them consistent.
    @property
    def _peak(self):
        return self.pct_start * self.total_steps - 1.0

    @property
    def initial_lr(self):
        """``max_lr / div_factor``."""
        return self.max_lr / self.div_factor

    @property
    def final_lr(self):
        """``initial_lr / final_div_factor``."""
        return self.initial_lr / self.final_div_factor

    @staticmethod
    def _anneal(start, end, pct):
        return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1.0)

    def _rates(self, t):
        peak, last = self._peak, self.total_steps - 1.0
        up = self._anneal(self.initial_lr, self.max_lr, np.clip(t / peak, 0.0, 1.0))
        down = self._anneal(self.max_lr, self.final_lr, np.clip((t - peak) / (last - peak), 0.0, 1.0))
        return np.where(t <= peak, up, down)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor}


_CLASSES = {cls.__name__: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, OneCycle)}


def from_config(config):
    """Rebuild a schedule from ``schedule.to_config()`` (``{"name": ..., "config": {...}}``)."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError("a schedule config is a dict {'name': class name, 'config': {...}}")
    name = config["name"]
    if name not in _CLASSES:
        raise ValueError(f"unknown schedule {name!r}; known: {sorted(_CLASSES)}")
    return _CLASSES[name](**config.get("config", {}))
