"""Activation functions by name.

Each name maps to an integer code the kernels dispatch on, plus a default
``alpha`` (the negative slope of leaky ReLU, the saturation of ELU).
Derivatives are computed from the pre-activation ``Z`` and the output ``A``
inside the kernels; :func:`apply` evaluates one on an array, for users and tests.
"""
import numpy as np

from ._validation import OneOf
from .kernels import codes

# name -> (code, default alpha)
_REGISTRY = {
    "linear": (codes.ACT_LINEAR, 0.0),
    "relu": (codes.ACT_RELU, 0.0),
    "leaky_relu": (codes.ACT_LEAKY_RELU, 0.01),
    "elu": (codes.ACT_ELU, 1.0),
    "sigmoid": (codes.ACT_SIGMOID, 0.0),
    "tanh": (codes.ACT_TANH, 0.0),
    "gelu": (codes.ACT_GELU, 0.0),
    "silu": (codes.ACT_SILU, 0.0),
    "softmax": (codes.ACT_SOFTMAX, 0.0),
}
_ALIASES = {None: "linear", "identity": "linear", "none": "linear", "swish": "silu",
            "leakyrelu": "leaky_relu", "logistic": "sigmoid"}
NAMES = tuple(_REGISTRY)
_BY_CODE = {code: name for name, (code, _) in _REGISTRY.items()}
#: The rule an ``activation`` hyper-parameter follows (a layer declares ``Param(activations.CONSTRAINT)``).
CONSTRAINT = OneOf(NAMES, aliases=_ALIASES, noun="activation")


def canonical_name(name):
    """The registry name for ``name`` (aliases such as 'swish' or None resolved)."""
    return CONSTRAINT.check(name, "activation")


def code_of(name):
    """Integer kernel code of an activation name."""
    return _REGISTRY[canonical_name(name)][0]


def default_alpha(name):
    """Default ``alpha`` of an activation (0 where it takes none)."""
    return _REGISTRY[canonical_name(name)][1]


def name_of(code):
    """Activation name of an integer kernel code."""
    return _BY_CODE[code]


def apply(name, Z, alpha=None, backend=None):
    """Return f(Z) for a 2-D array ``Z``.

    Parameters
    ----------
    name : str
        Activation name (see ``fastnn.activations.NAMES``).
    Z : ndarray of shape (n, k)
        Pre-activations, float32 or float64.
    alpha : float, optional
        Slope/saturation parameter; defaults per activation.
    backend : str, optional
        Kernel backend; default as in :func:`fastnn.kernels.get_backend`.
    """
    from .kernels import get_backend

    Z = np.ascontiguousarray(Z)
    if Z.ndim != 2 or Z.dtype not in (np.float32, np.float64):
        raise ValueError("Z must be a 2-D float32 or float64 array")
    out = np.empty_like(Z)
    get_backend(backend).activation_forward(Z, code_of(name), default_alpha(name) if alpha is None else alpha, out)
    return out
