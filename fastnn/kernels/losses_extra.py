"""Kernels of the extra losses (MAE, Huber, focal): a numpy reference and Numba versions, same signatures.

Like :func:`fastnn.kernels.reference.loss_forward_backward`, each returns the
sum over rows of the per-sample loss (a float64) and writes
``dout = d(scale * sum)/d(out)`` into a caller-owned buffer; ``target`` is
2-D with ``out``'s dtype. Arithmetic runs in float64 for both dtypes.

- ``mae``: per sample ``mean_j |out - target|``; the derivative at 0 is 0.
- ``huber``: per sample ``mean_j h(out - target)`` with
  ``h(d) = d^2/2`` for ``|d| <= delta``, ``delta * (|d| - delta/2)`` beyond
  (PyTorch ``HuberLoss``, Keras ``Huber``); ``h'(d) = clip(d, -delta, delta)``.
- ``focal``: multiclass focal loss from logits (Lin et al. 2017),
  ``p = softmax(out)``, per sample ``-sum_j t_j alpha_j (1 - p_j)^gamma log p_j``
  with ``t`` one-hot (an (n, 1) column of class indices) or (n, k) rows
  (soft / weighted targets); ``alpha`` a float64 vector of per-class weights.
  ``gamma = 0`` is (weighted) softmax cross-entropy. Gradient: with
  ``a_j = t_j alpha_j [gamma (1-p_j)^(gamma-1) p_j log p_j - (1-p_j)^gamma]``,
  ``dL/dz_m = a_m - p_m sum_j a_j``.

The Numba set is used by the ``numba`` and ``cython`` backends (DESIGN puts
loss kernels in Numba); pick with :func:`kernels_for`.
"""
import math
from types import SimpleNamespace

import numpy as np

__all__ = ["REFERENCE", "NUMBA", "kernels_for"]


# --------------------------------------------------------------------------- numpy reference
def _ref_mae_forward_backward(out, target, scale, dout):
    """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k."""
    k = out.shape[1]
    d = out.astype(np.float64) - target.astype(np.float64)
    dout[...] = np.sign(d) * (scale / k)
    return float(np.abs(d).sum() / k)


def _ref_huber_forward_backward(out, target, delta, scale, dout):
    """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
    k = out.shape[1]
    d = out.astype(np.float64) - target.astype(np.float64)
    a = np.abs(d)
    per = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    dout[...] = np.clip(d, -delta, delta) * (scale / k)
    return float(per.sum() / k)


def _ref_focal_forward_backward(out, target, gamma, alpha, scale, dout):
    """sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout."""
    n, k = out.shape
    z = out.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    if target.shape[1] == 1 and k > 1:
        w = np.zeros((n, k))
        w[np.arange(n), target[:, 0].astype(np.int64)] = 1.0
    else:
        w = target.astype(np.float64).copy()
    w *= alpha
    q = -np.expm1(logp)  # 1 - p, accurate for small p
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(q > 0, gamma * q ** (gamma - 1.0) * p * logp, 0.0)
    qg = q ** gamma
    total = -(w * qg * logp).sum()
    a = w * (term - qg)
    dout[...] = (a - p * a.sum(axis=1, keepdims=True)) * scale
    return float(total)


REFERENCE = SimpleNamespace(
    NAME="reference",
    mae_forward_backward=_ref_mae_forward_backward,
    huber_forward_backward=_ref_huber_forward_backward,
    focal_forward_backward=_ref_focal_forward_backward,
)


# --------------------------------------------------------------------------- numba
def _build_numba():
    from numba import njit

    opts = dict(cache=True, nogil=True, error_model="numpy")

    @njit(**opts)
    def mae_forward_backward(out, target, scale, dout):
        """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k."""
        n, k = out.shape
        sc = scale / k
        total = 0.0
        for i in range(n):
            for j in range(k):
                d = float(out[i, j]) - float(target[i, j])
                if d > 0.0:
                    total += d
                    dout[i, j] = sc
                elif d < 0.0:
                    total -= d
                    dout[i, j] = -sc
                else:
                    total += abs(d)  # NaN propagates
                    dout[i, j] = d * sc
        return total / k

    @njit(**opts)
    def huber_forward_backward(out, target, delta, scale, dout):
        """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
        n, k = out.shape
        sc = scale / k
        total = 0.0
        for i in range(n):
            for j in range(k):
                d = float(out[i, j]) - float(target[i, j])
                a = abs(d)
                if a <= delta:
                    total += 0.5 * d * d
                    dout[i, j] = d * sc
                elif a > delta:
                    total += delta * (a - 0.5 * delta)
                    dout[i, j] = (delta if d > 0.0 else -delta) * sc
                else:  # NaN
                    total += d
                    dout[i, j] = d
        return total / k

    @njit(**opts)
    def focal_forward_backward(out, target, gamma, alpha, scale, dout):
        """sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout."""
        n, k = out.shape
        as_index = target.shape[1] == 1 and k > 1
        total = 0.0
        for i in range(n):
            mx = float(out[i, 0])
            for j in range(1, k):
                if out[i, j] > mx:
                    mx = float(out[i, j])
            s = 0.0
            for j in range(k):
                s += math.exp(float(out[i, j]) - mx)
            log_s = math.log(s)
            # pass 1: a_j into dout (as float64 sum A), loss
            A = 0.0
            for j in range(k):
                if as_index:
                    w = alpha[j] if j == int(target[i, 0]) else 0.0
                else:
                    w = float(target[i, j]) * alpha[j]
                if w != 0.0:
                    logp = float(out[i, j]) - mx - log_s
                    p = math.exp(logp)
                    q = -math.expm1(logp)
                    qg = q ** gamma
                    term = gamma * q ** (gamma - 1.0) * p * logp if q > 0.0 else 0.0
                    total -= w * qg * logp
                    a = w * (term - qg)
                    A += a
            # pass 2: dL/dz_m = a_m - p_m * A (a_m recomputed: no scratch row needed)
            for j in range(k):
                logp = float(out[i, j]) - mx - log_s
                p = math.exp(logp)
                if as_index:
                    w = alpha[j] if j == int(target[i, 0]) else 0.0
                else:
                    w = float(target[i, j]) * alpha[j]
                a = 0.0
                if w != 0.0:
                    q = -math.expm1(logp)
                    qg = q ** gamma
                    term = gamma * q ** (gamma - 1.0) * p * logp if q > 0.0 else 0.0
                    a = w * (term - qg)
                dout[i, j] = (a - p * A) * scale
        return total

    return SimpleNamespace(
        NAME="numba",
        mae_forward_backward=mae_forward_backward,
        huber_forward_backward=huber_forward_backward,
        focal_forward_backward=focal_forward_backward,
    )


try:
    NUMBA = _build_numba()
except ImportError:  # numba missing: every backend name falls back to the reference kernels
    NUMBA = None


def kernels_for(backend_name):
    """The kernel set for a backend name: ``'reference'`` → numpy, ``'numba'``/``'cython'`` → Numba."""
    if backend_name == "reference" or NUMBA is None:
        return REFERENCE
    return NUMBA
