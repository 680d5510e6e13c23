"""Reference activations (numpy): the readable oracle of the activation family."""
import math

import numpy as np

from ..codes import (
    ACT_ELU, ACT_GELU, ACT_LEAKY_RELU, ACT_LINEAR, ACT_RELU, ACT_SIGMOID,
    ACT_SILU, ACT_SOFTMAX, ACT_TANH,
)

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    if act == ACT_LINEAR:
        A_out[...] = Z
    elif act == ACT_RELU:
        np.maximum(Z, 0, out=A_out)
    elif act == ACT_LEAKY_RELU:
        A_out[...] = np.where(Z > 0, Z, alpha * Z)
    elif act == ACT_ELU:
        A_out[...] = np.where(Z > 0, Z, alpha * np.expm1(np.minimum(Z, 0)))
    elif act == ACT_SIGMOID:
        # Stable for both signs: exp of a non-positive number never overflows.
        e = np.exp(-np.abs(Z))
        A_out[...] = np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
    elif act == ACT_TANH:
        np.tanh(Z, out=A_out)
    elif act == ACT_GELU:
        # tanh approximation (Hendrycks & Gimpel), as in Keras/PyTorch approximate="tanh".
        A_out[...] = 0.5 * Z * (1 + np.tanh(_SQRT_2_OVER_PI * (Z + 0.044715 * Z ** 3)))
    elif act == ACT_SILU:
        e = np.exp(-np.abs(Z))
        A_out[...] = Z * np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
    elif act == ACT_SOFTMAX:
        shifted = Z - Z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        A_out[...] = e / e.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown activation code {act}")


def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    if act == ACT_LINEAR:
        dZ_out[...] = dA
    elif act == ACT_RELU:
        dZ_out[...] = np.where(Z > 0, dA, 0)
    elif act == ACT_LEAKY_RELU:
        dZ_out[...] = np.where(Z > 0, dA, alpha * dA)
    elif act == ACT_ELU:
        dZ_out[...] = np.where(Z > 0, dA, dA * (A + alpha))
    elif act == ACT_SIGMOID:
        dZ_out[...] = dA * A * (1 - A)
    elif act == ACT_TANH:
        dZ_out[...] = dA * (1 - A * A)
    elif act == ACT_GELU:
        inner = _SQRT_2_OVER_PI * (Z + 0.044715 * Z ** 3)
        t = np.tanh(inner)
        dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * Z * Z)
        dZ_out[...] = dA * (0.5 * (1 + t) + 0.5 * Z * (1 - t * t) * dinner)
    elif act == ACT_SILU:
        e = np.exp(-np.abs(Z))
        s = np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
        dZ_out[...] = dA * (s + Z * s * (1 - s))
    elif act == ACT_SOFTMAX:
        dZ_out[...] = A * (dA - (dA * A).sum(axis=1, keepdims=True))
    else:
        raise ValueError(f"unknown activation code {act}")

