"""Optimizers: one fused compiled update over the network's flat parameter buffer.

The base class owns the bookkeeping (learning rate or schedule, step count,
weight decay, state allocation, ``state_dict``); a subclass only names its
kernel code, its hyper-parameters and how many state slots it needs.
Semantics follow PyTorch (``torch.optim``): L2 weight decay is added to the
gradient, except AdamW's decoupled decay which shrinks the weights by
``lr * weight_decay`` each step.
"""
import functools

import numpy as np

from ._validation import Boolean, Integer, Param, Real
from .errors import ParameterError
from .kernels import codes


class LearningRate(Real):
    """A finite rate > 0, or a schedule: a callable of the step numbers (checked when called)."""

    def __init__(self):
        super().__init__(0, lo_open=True)

    def _ok(self, value):
        return callable(value) or super()._ok(value)

    def _normalise(self, value):
        return value if callable(value) else float(value)

    def describe(self):
        return super().describe() + " or a schedule (a callable of the step number)"


#: the common hyper-parameter rules of the optimizers
_UNIT = Real(0, 1, hi_open=True)
_EPS = Real(0, lo_open=True)


#: Keras' argument names -> fastnn's (``Adam(learning_rate=1e-3, beta_1=0.9)`` works as in Keras)
KERAS_NAMES = {"learning_rate": "lr", "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps"}


def _accept_keras_names(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        for keras, ours in KERAS_NAMES.items():
            if keras in kwargs:
                if ours in kwargs:
                    raise TypeError(f"{type(self).__name__}: give {ours}= or {keras}=, not both")
                kwargs[ours] = kwargs.pop(keras)
        return init(self, *args, **kwargs)
    return __init__


class Optimizer:
    """Base class. ``lr`` is a float, or a schedule: a callable mapping an int64
    array of step numbers (from 0) to learning rates (see :mod:`fastnn.schedules`).
    """

    code = None
    n_slots = 0
    #: state slots that accumulate squares (Adam's v, RMSprop's and Adagrad's running sums): never negative
    nonneg_slots = ()

    lr = Param(LearningRate())
    weight_decay = Param(Real(0))
    iterations = Param(Integer(0))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _accept_keras_names(cls.__init__)

    def __init__(self, lr, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay
        self.iterations = 0
        self.state = None

    # -- hyper-parameters ---------------------------------------------------------------
    def _hyper_values(self):
        """Subclass hook: {H_* slot: value}."""
        return {}

    def hyper_vector(self, clip_norm=0.0, clip_value=0.0):
        """The float64 vector of hyper-parameters the kernels take."""
        h = np.zeros(codes.N_HYPER)
        h[codes.H_LR] = self.learning_rates(self.iterations, 1)[0]
        h[codes.H_WEIGHT_DECAY] = self.weight_decay
        h[codes.H_CLIP_NORM] = clip_norm or 0.0
        h[codes.H_CLIP_VALUE] = clip_value or 0.0
        for slot, value in self._hyper_values().items():
            h[slot] = value
        return h

    def learning_rates(self, first_step, n_steps):
        """Learning rates for steps ``first_step .. first_step+n_steps-1`` (float64 array)."""
        if callable(self.lr):
            steps = np.arange(first_step, first_step + n_steps, dtype=np.int64)
            value = self.lr(steps)
            what = f"{type(self).__name__} lr: the learning-rate schedule {self.lr!r}"[:200]
            try:
                lrs = np.asarray(value)
                if lrs.dtype.kind not in "biuf" or lrs.dtype.kind == "b":
                    raise TypeError
                lrs = np.broadcast_to(lrs.astype(np.float64), (n_steps,)).copy()
            except (TypeError, ValueError):
                raise ParameterError(f"{what} returned {value!r} for steps {first_step}..{first_step + n_steps - 1}"
                                     f", not a number (or one per step)"[:400]) from None
            if not np.isfinite(lrs).all() or (lrs < 0).any():
                bad = int(np.argmax(~np.isfinite(lrs) | (lrs < 0)))
                raise ParameterError(f"{what} returned {lrs[bad]} at step {first_step + bad}: a rate must be "
                                     f"finite and >= 0")
            return lrs
        return np.full(n_steps, self.lr)

    @property
    def current_lr(self):
        """The learning rate the next step will use."""
        return float(self.learning_rates(self.iterations, 1)[0])

    # -- state ----------------------------------------------------------------------------
    def build(self, n_params, dtype):
        """Allocate (or check) the state for ``n_params`` parameters of ``dtype``."""
        shape = (max(self.n_slots, 1), n_params)
        if self.state is None:
            self.state = np.zeros(shape, dtype=dtype)
        elif self.state.shape != shape or self.state.dtype != dtype:
            raise ValueError(f"optimizer state has shape {self.state.shape} {self.state.dtype}, "
                             f"the network needs {shape} {np.dtype(dtype)}; use a fresh optimizer")
        return self.state

    def step(self, params, grads, backend):
        """Apply one update in place (the per-layer path; the fused path updates inside the kernel)."""
        self.build(params.size, params.dtype)
        h = self.hyper_vector()
        backend.optimizer_update(self.code, params, grads, self.state, h, self.iterations + 1)
        self.iterations += 1

    def reset(self):
        """Forget the moments and the step count."""
        self.state = None
        self.iterations = 0

    def get_config(self):
        """Constructor arguments (a schedule is reported by its repr)."""
        cfg = {"lr": self.lr if not callable(self.lr) else repr(self.lr), "weight_decay": self.weight_decay}
        cfg.update(self._config())
        return cfg

    def _config(self):
        return {}

    def state_dict(self):
        """Plain data: the class name, config, step count and state array (a copy)."""
        return {
            "name": type(self).__name__,
            "config": self.get_config(),
            "iterations": int(self.iterations),
            "state": None if self.state is None else self.state.copy(),
        }

    def check_state(self, state, n_params=None, dtype=None):
        """Raise ValueError unless ``state`` can be this optimizer's state array: 2-D float with
        ``max(n_slots, 1)`` rows (of ``n_params`` values of ``dtype`` when given), every value finite
        and the squared-gradient accumulators (:attr:`nonneg_slots`) not negative. Returns it."""
        name = type(self).__name__
        arr = np.asarray(state)
        slots = max(self.n_slots, 1)
        if arr.dtype.kind != "f" or arr.ndim != 2 or arr.shape[0] != slots:
            raise ValueError(f"{name} state must be a float array of shape ({slots}, n_params), "
                             f"not {arr.shape} {arr.dtype}")
        if n_params is not None and arr.shape[1] != n_params:
            raise ValueError(f"{name} state holds {arr.shape[1]} values per slot, the network has {n_params} "
                             f"parameters")
        if dtype is not None and arr.dtype != dtype:
            raise ValueError(f"{name} state is {arr.dtype}, the network {np.dtype(dtype)}")
        if arr.size and not np.isfinite(arr).all():
            slot = int(np.argmin(np.isfinite(arr).all(axis=1)))
            raise ValueError(f"{name} state slot {slot} holds NaN or Inf")
        for slot in self.nonneg_slots:
            if arr.shape[1] and arr[slot].min() < 0:
                raise ValueError(f"{name} state slot {slot} (a running sum of squares) holds a negative value "
                                 f"{arr[slot].min()}")
        return arr

    def load_state_dict(self, state):
        """Restore from :meth:`state_dict` output (the class must match); all checks come first."""
        if state.get("name") != type(self).__name__:
            raise ValueError(f"state is for {state.get('name')!r}, not {type(self).__name__}")
        arr = state.get("state")
        arr = None if arr is None else np.array(self.check_state(arr), copy=True)
        iterations = type(self).iterations.constraint.check(state.get("iterations", 0),
                                                            f"{type(self).__name__} iterations")
        self.state = arr
        self.iterations = iterations

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Parameters
    ----------
    lr : float or schedule, default 0.01
    momentum : float, default 0.0
    nesterov : bool, default False
    weight_decay : float, default 0.0
        L2 penalty added to the gradient.
    """

    code = codes.OPT_SGD
    n_slots = 1
    momentum = Param(_UNIT)
    nesterov = Param(Boolean())

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = momentum
        self.nesterov = nesterov
        if self.nesterov and self.momentum == 0:
            raise ParameterError("SGD nesterov=True needs momentum > 0")

    def _hyper_values(self):
        return {codes.H_MOMENTUM: self.momentum, codes.H_NESTEROV: float(self.nesterov)}

    def _config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), fused over the flat buffer.

    Parameters
    ----------
    lr : float or schedule, default 0.001
    beta1, beta2 : float, default 0.9, 0.999
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (use :class:`AdamW` for decoupled decay).
    """

    code = codes.OPT_ADAM
    n_slots = 2
    nonneg_slots = (1,)
    decoupled = False
    beta1 = Param(_UNIT)
    beta2 = Param(_UNIT)
    eps = Param(_EPS)

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def _hyper_values(self):
        return {codes.H_BETA1: self.beta1, codes.H_BETA2: self.beta2, codes.H_EPS: self.eps,
                codes.H_DECOUPLED: float(self.decoupled)}

    def _config(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): w -= lr*weight_decay*w each step.

    Parameters are those of :class:`Adam`; ``weight_decay`` defaults to 0.01.
    """

    decoupled = True

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running RMS of recent gradients.

    Parameters
    ----------
    lr : float or schedule, default 0.001
    rho : float, default 0.9
        Decay of the running mean of squared gradients (Keras' default).
    eps : float, default 1e-7
    weight_decay : float, default 0.0
    """

    code = codes.OPT_RMSPROP
    n_slots = 1
    nonneg_slots = (0,)
    rho = Param(_UNIT)
    eps = Param(_EPS)

    def __init__(self, lr=0.001, rho=0.9, eps=1e-7, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.rho = rho
        self.eps = eps

    def _hyper_values(self):
        return {codes.H_BETA2: self.rho, codes.H_EPS: self.eps}

    def _config(self):
        return {"rho": self.rho, "eps": self.eps}


class Adagrad(Optimizer):
    """Adagrad: per-parameter rates scaled by the accumulated squared gradients.

    Parameters
    ----------
    lr : float or schedule, default 0.01
    eps : float, default 1e-10
    weight_decay : float, default 0.0
    """

    code = codes.OPT_ADAGRAD
    n_slots = 1
    nonneg_slots = (0,)
    eps = Param(_EPS)

    def __init__(self, lr=0.01, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.eps = eps

    def _hyper_values(self):
        return {codes.H_EPS: self.eps}

    def _config(self):
        return {"eps": self.eps}


_REGISTRY = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
CLASSES = {cls.__name__: cls for cls in _REGISTRY.values()}


def get(optimizer):
    """Return an :class:`Optimizer` for a name (default hyper-parameters) or pass an instance through."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _REGISTRY:
        return _REGISTRY[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(_REGISTRY)} or pass an instance")
