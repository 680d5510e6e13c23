"""Elementwise math the numba families share: a tanh that vectorizes in float32.

Scalar libm ``tanh``/``exp`` calls do not vectorize (Numba has no SIMD math
library without Intel's SVML): at LSTM(128), batch 64, they cost 2.8x the
reference's whole forward (27 vs 9.6 ms, measured), and a tanh or GELU layer
ran 130x slower than a ReLU one (0.03 vs 4 Gelem/s, measured). For float32 a
rational minimax tanh (the coefficients of Eigen's
``generic_fast_tanh_float``: pure arithmetic, vectorizes, error a few ulp)
replaces it; float64 (the gradient checks) keeps ``math.tanh``.
``sigmoid(x) = (1 + tanh(x / 2)) / 2`` exactly, so gates can share it (its
absolute error is a few 1e-8, but tiny outputs lose their relative precision,
so the sigmoid *activation* keeps its exp form). NaN propagates.
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._common import OPTS

_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(v) for v in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_B0, _B2, _B4, _B6 = (np.float32(v) for v in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))
_CLAMP = np.float32(7.90531110763549805)  # tanh rounds to +-1 in float32 beyond this
_TINY = np.float32(0.0004)                # tanh(x) == x in float32 below this


@njit(**OPTS)
def tanh_f32(v):
    """float32 tanh by a 13/6-degree rational function (vectorizes; a few ulp)."""
    x = np.float32(v)
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = x * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x if abs(x) < _TINY else p / q


def tanh_as(x, like):
    """tanh(x) at the precision of ``like`` (an array or a scalar): a Numba overload picks the form."""
    return math.tanh(x)


@overload(tanh_as, jit_options=OPTS)
def _tanh_as_overload(x, like):
    if getattr(like, "dtype", like) == types.float32:
        return lambda x, like: tanh_f32(x)
    return lambda x, like: math.tanh(x)


@njit(**OPTS)
def sig_as(x, like):
    """sigmoid(x) through :func:`tanh_as` (for gates; see the module docstring)."""
    return 0.5 + 0.5 * tanh_as(0.5 * x, like)
