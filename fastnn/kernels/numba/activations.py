"""Numba activations: same signatures as the reference; an unknown code raises ValueError."""
import math

from numba import njit

from ..codes import (
    ACT_ELU, ACT_GELU, ACT_LEAKY_RELU, ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_SILU,
    ACT_SOFTMAX, ACT_TANH,
)
from ._common import OPTS, SQRT_2_OVER_PI
from ._math import tanh_as


@njit(**OPTS)
def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    n, k = Z.shape
    t = Z.dtype.type
    zero, one, half = t(0), t(1), t(0.5)
    a = t(alpha)
    c0, c1 = t(SQRT_2_OVER_PI), t(0.044715)
    if act == ACT_SOFTMAX:
        for i in range(n):
            mx = Z[i, 0]
            for j in range(1, k):
                if Z[i, j] > mx:
                    mx = Z[i, j]
            s = zero
            for j in range(k):
                e = math.exp(Z[i, j] - mx)
                A_out[i, j] = e
                s += e
            inv = one / s
            for j in range(k):
                A_out[i, j] *= inv
        return
    for i in range(n):
        for j in range(k):
            z = Z[i, j]
            if act == ACT_LINEAR:
                r = z
            elif act == ACT_RELU:
                r = zero if z <= zero else z  # written so NaN propagates, like np.maximum
            elif act == ACT_LEAKY_RELU:
                r = z if z > zero else a * z
            elif act == ACT_ELU:
                r = z if z > zero else a * math.expm1(z)
            elif act == ACT_SIGMOID:
                e = math.exp(-abs(z))
                r = one / (one + e) if z >= zero else e / (one + e)
            elif act == ACT_TANH:
                r = tanh_as(z, Z)
            elif act == ACT_GELU:
                r = half * z * (one + tanh_as(c0 * (z + c1 * z * z * z), Z))
            elif act == ACT_SILU:
                e = math.exp(-abs(z))
                s = one / (one + e) if z >= zero else e / (one + e)
                r = z * s
            else:
                raise ValueError("unknown activation code")
            A_out[i, j] = r


@njit(inline="always", **OPTS)
def _dact(z, a_val, g, act, alpha, zero, one, half, c0, c1, three):
    """dZ element from Z, A and dA (everything but softmax)."""
    if act == ACT_LINEAR:
        return g
    if act == ACT_RELU:
        return g if z > zero else zero
    if act == ACT_LEAKY_RELU:
        return g if z > zero else alpha * g
    if act == ACT_ELU:
        return g if z > zero else g * (a_val + alpha)
    if act == ACT_SIGMOID:
        return g * a_val * (one - a_val)
    if act == ACT_TANH:
        return g * (one - a_val * a_val)
    if act == ACT_GELU:
        t = tanh_as(c0 * (z + c1 * z * z * z), zero)
        return g * (half * (one + t) + half * z * (one - t * t) * c0 * (one + three * c1 * z * z))
    if act == ACT_SILU:
        e = math.exp(-abs(z))
        s = one / (one + e) if z >= zero else e / (one + e)
        return g * (s + z * s * (one - s))
    return g  # unreachable: the caller checks the code once, so the loop has no exception path


@njit(**OPTS)
def _activation_backward_db(Z, A, dA, act, alpha, dZ_out, db_out, want_db):
    """dZ = dA * f'(Z); optionally db = column sums of dZ, in the same pass."""
    n, k = Z.shape
    t = Z.dtype.type
    zero, one, half, three = t(0), t(1), t(0.5), t(3)
    a = t(alpha)
    c0, c1 = t(SQRT_2_OVER_PI), t(0.044715)
    if act < ACT_LINEAR or act > ACT_SOFTMAX:
        raise ValueError("unknown activation code")
    if want_db:
        for j in range(k):
            db_out[j] = zero
    if act == ACT_SOFTMAX:
        for i in range(n):
            s = zero
            for j in range(k):
                s += dA[i, j] * A[i, j]
            for j in range(k):
                dZ_out[i, j] = A[i, j] * (dA[i, j] - s)
    elif act == ACT_RELU:  # its own loop: the common case, branch-free so it vectorizes
        for i in range(n):
            for j in range(k):
                dZ_out[i, j] = dA[i, j] if Z[i, j] > zero else zero
    elif act == ACT_GELU:  # its own loop too, so the float32 tanh vectorizes (transformer blocks)
        for i in range(n):
            for j in range(k):
                z = Z[i, j]
                th = tanh_as(c0 * (z + c1 * z * z * z), Z)
                dZ_out[i, j] = dA[i, j] * (half * (one + th)
                                           + half * z * (one - th * th) * c0 * (one + three * c1 * z * z))
    else:
        for i in range(n):
            for j in range(k):
                dZ_out[i, j] = _dact(Z[i, j], A[i, j], dA[i, j], act, a, zero, one, half, c0, c1, three)
    if want_db:
        for i in range(n):
            for j in range(k):
                db_out[j] += dZ_out[i, j]


@njit(**OPTS)
def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    _activation_backward_db(Z, A, dA, act, alpha, dZ_out, dZ_out[0], False)
