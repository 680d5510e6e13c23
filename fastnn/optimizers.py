"""Optimizers: one fused compiled update over the network's flat parameter buffer.

The base class owns the bookkeeping (learning rate or schedule, step count,
weight decay, state allocation, ``state_dict``); a subclass only names its
kernel code, its hyper-parameters and how many state slots it needs.
Semantics follow PyTorch (``torch.optim``): L2 weight decay is added to the
gradient, except AdamW's decoupled decay which shrinks the weights by
``lr * weight_decay`` each step.
"""
import functools
import numbers

import numpy as np

from .kernels import codes


def _check_float(value, name, lo=None, hi=None, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, not {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, not {value}")
    return float(value)


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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _accept_keras_names(cls.__init__)

    def __init__(self, lr, weight_decay=0.0):
        if callable(lr):
            self.lr = lr
        else:
            self.lr = _check_float(lr, "lr", lo=0, lo_open=True)
        self.weight_decay = _check_float(weight_decay, "weight_decay", lo=0)
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
            lrs = np.asarray(self.lr(np.arange(first_step, first_step + n_steps, dtype=np.int64)), dtype=np.float64)
            if lrs.shape != (n_steps,):
                lrs = np.broadcast_to(lrs, (n_steps,)).copy()
            if not np.isfinite(lrs).all() or (lrs < 0).any():
                raise ValueError("the learning-rate schedule returned a negative or non-finite rate")
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

    def load_state_dict(self, state):
        """Restore from :meth:`state_dict` output (the class must match)."""
        if state.get("name") != type(self).__name__:
            raise ValueError(f"state is for {state.get('name')!r}, not {type(self).__name__}")
        arr = state.get("state")
        self.state = None if arr is None else np.array(arr, copy=True)
        self.iterations = int(state.get("iterations", 0))

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

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _check_float(momentum, "momentum", lo=0, hi=1, hi_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

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
    decoupled = False

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = _check_float(beta1, "beta1", lo=0, hi=1, hi_open=True)
        self.beta2 = _check_float(beta2, "beta2", lo=0, hi=1, hi_open=True)
        self.eps = _check_float(eps, "eps", lo=0, lo_open=True)

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

    def __init__(self, lr=0.001, rho=0.9, eps=1e-7, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.rho = _check_float(rho, "rho", lo=0, hi=1, hi_open=True)
        self.eps = _check_float(eps, "eps", lo=0, lo_open=True)

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

    def __init__(self, lr=0.01, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.eps = _check_float(eps, "eps", lo=0, lo_open=True)

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
