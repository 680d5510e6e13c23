"""Reference losses (numpy): the fused-loss switch and the extra losses (MAE, Huber, focal).

Each returns the sum over rows of the per-sample loss (a float) and writes
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
"""
import numpy as np

from ..codes import LOSS_BCE_LOGITS, LOSS_MSE, LOSS_SOFTMAX_CE


def _log_softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_forward_backward(loss, out, target, scale, dout):
    """Return sum over rows of the per-sample loss; write d(scale*sum)/d(out) into dout.

    ``target`` is 2-D with ``out``'s dtype. ``softmax_ce``: ``out`` are logits,
    ``target`` an (n, 1) column of class indices or an (n, k) one-hot /
    probability matrix. ``mse``: mean over outputs of (out-target)^2.
    ``bce_logits``: mean over outputs of the stable binary cross-entropy of logits.
    """
    n, k = out.shape
    if loss == LOSS_SOFTMAX_CE:
        logp = _log_softmax(out.astype(np.float64))
        if target.shape[1] == 1 and k > 1:
            rows = np.arange(n)
            cls = target[:, 0].astype(np.int64)
            total = -logp[rows, cls].sum()
            grad = np.exp(logp)
            grad[rows, cls] -= 1.0
        else:
            t = target.astype(np.float64)
            total = -(t * logp).sum()
            grad = np.exp(logp) * t.sum(axis=1, keepdims=True) - t
        dout[...] = grad * scale
        return float(total)
    if loss == LOSS_MSE:
        diff = out.astype(np.float64) - target
        dout[...] = diff * (2.0 * scale / k)
        return float((diff * diff).sum() / k)
    if loss == LOSS_BCE_LOGITS:
        z = out.astype(np.float64)
        t = target.astype(np.float64)
        per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        dout[...] = (sig - t) * (scale / k)
        return float(per.sum() / k)
    raise ValueError(f"unknown loss code {loss}")


def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    if loss == LOSS_SOFTMAX_CE:
        true = target[:, 0] if target.shape[1] == 1 and out.shape[1] > 1 else target.argmax(axis=1)
        return int((out.argmax(axis=1) == true).sum())
    if loss == LOSS_BCE_LOGITS:
        return int(((out > 0) == (target > 0.5)).all(axis=1).sum())
    if loss == LOSS_MSE:
        return 0
    raise ValueError(f"unknown loss code {loss}")


def mae_forward_backward(out, target, scale, dout):
    """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k."""
    k = out.shape[1]
    d = out.astype(np.float64) - target.astype(np.float64)
    dout[...] = np.sign(d) * (scale / k)
    return float(np.abs(d).sum() / k)


def huber_forward_backward(out, target, delta, scale, dout):
    """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
    k = out.shape[1]
    d = out.astype(np.float64) - target.astype(np.float64)
    a = np.abs(d)
    per = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    dout[...] = np.clip(d, -delta, delta) * (scale / k)
    return float(per.sum() / k)


def focal_forward_backward(out, target, gamma, alpha, scale, dout):
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


