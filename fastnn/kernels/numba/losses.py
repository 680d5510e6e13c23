"""Numba losses: the fused-loss switch (an unknown code raises ValueError) and the extra losses.

Contracts: :mod:`fastnn.kernels.reference.losses`. Loss sums accumulate in float64.
"""
import math

from numba import njit

from ..codes import LOSS_BCE_LOGITS, LOSS_MSE, LOSS_SOFTMAX_CE
from ._common import OPTS


@njit(**OPTS)
def loss_forward_backward(loss, out, target, scale, dout):
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). See the reference."""
    n, k = out.shape
    t = out.dtype.type
    zero, one = t(0), t(1)
    total = 0.0  # float64 accumulator: the loss sum over a batch must not drift
    if loss == LOSS_SOFTMAX_CE:
        sc = t(scale)
        as_index = target.shape[1] == 1 and k > 1
        for i in range(n):
            mx = out[i, 0]
            for j in range(1, k):
                if out[i, j] > mx:
                    mx = out[i, j]
            s = zero
            for j in range(k):
                e = math.exp(out[i, j] - mx)
                dout[i, j] = e
                s += e
            log_s = math.log(s)
            inv = one / s
            if as_index:
                c = int(target[i, 0])
                total -= out[i, c] - mx - log_s
                for j in range(k):
                    dout[i, j] *= inv * sc
                dout[i, c] -= sc
            else:
                tsum = zero
                for j in range(k):
                    tj = target[i, j]
                    tsum += tj
                    if tj != zero:
                        total -= tj * (out[i, j] - mx - log_s)
                for j in range(k):
                    dout[i, j] = (dout[i, j] * inv * tsum - target[i, j]) * sc
    elif loss == LOSS_MSE:
        sc = t(2.0 * scale / k)
        for i in range(n):
            for j in range(k):
                d = out[i, j] - target[i, j]
                total += d * d
                dout[i, j] = d * sc
        total /= k
    elif loss == LOSS_BCE_LOGITS:
        sc = t(scale / k)
        for i in range(n):
            for j in range(k):
                z = out[i, j]
                y = target[i, j]
                e = math.exp(-abs(z))
                total += (z if z > zero else zero) - z * y + math.log1p(e)
                sig = one / (one + e) if z >= zero else e / (one + e)
                dout[i, j] = (sig - y) * sc
        total /= k
    else:
        raise ValueError("unknown loss code")
    return total


@njit(**OPTS)
def count_correct(loss, out, target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    n, k = out.shape
    correct = 0
    if loss == LOSS_SOFTMAX_CE:
        as_index = target.shape[1] == 1 and k > 1
        for i in range(n):
            best = 0
            for j in range(1, k):
                if out[i, j] > out[i, best]:
                    best = j
            if as_index:
                true = int(target[i, 0])
            else:
                true = 0
                for j in range(1, k):
                    if target[i, j] > target[i, true]:
                        true = j
            if best == true:
                correct += 1
    elif loss == LOSS_BCE_LOGITS:
        for i in range(n):
            ok = True
            for j in range(k):
                if (out[i, j] > 0) != (target[i, j] > 0.5):
                    ok = False
            if ok:
                correct += 1
    elif loss != LOSS_MSE:  # regression: nothing to count
        raise ValueError("unknown loss code")
    return correct


@njit(**OPTS)
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

@njit(**OPTS)
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

@njit(**OPTS)
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
