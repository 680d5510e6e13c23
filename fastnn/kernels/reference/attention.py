"""Reference scaled dot-product self-attention over several heads, with a stable row softmax.

Layout: ``QKV (n, T, 3*D)`` holds the projected queries, keys and values of
every step side by side (``[q | k | v]``, one GEMM of the layer's input with its
fused ``(D_in, 3*D)`` kernel); head ``h`` owns columns ``h*dk:(h+1)*dk`` of each
block, ``D = n_heads * dk``. ``P (n, n_heads, T, T)`` are the attention
probabilities, ``O (n, T, D)`` the heads' outputs concatenated (the layer's
output projection follows). Per head, as batched GEMMs:

``S = q k.T / sqrt(dk)`` (with ``causal``, ``S[a, c] = -inf`` for ``c > a``; with a
``key_mask (n, T)`` of 0/1, ``S[a, c] = -inf`` for padded keys ``c``, None: none);
``P = softmax(S)`` row-wise, stabilised by subtracting the row maximum (a row
without any key left gets ``P = 0``, so ``O = 0``);
``O = P v``. Backward: ``dv = P.T dO``, ``dP = dO v.T``,
``dS = P * (dP - sum_c dP * P)``, ``dq = dS k / sqrt(dk)``, ``dk = dS.T q / sqrt(dk)``.
``dS_buf`` is caller-owned scratch shaped like ``P``.
"""
import numpy as np


def _heads(QKV, n_heads):
    n, T, D3 = QKV.shape
    D = D3 // 3
    dk = D // n_heads
    split = QKV.reshape(n, T, 3, n_heads, dk).transpose(2, 0, 3, 1, 4)  # (3, n, h, T, dk)
    return split[0], split[1], split[2], dk


def attention_forward(QKV, n_heads, causal, key_mask, P_out, O_out):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    q, k, v, dk = _heads(QKV, n_heads)
    n, T, D = O_out.shape
    S = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(dk))
    if causal:
        S = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, S)
    if key_mask is not None:
        S = np.where(key_mask[:, None, None, :] == 0, -np.inf, S)
    top = S.max(axis=-1, keepdims=True)
    e = np.exp(S - np.where(np.isfinite(top), top, 0))
    P_out[...] = e / np.maximum(e.sum(axis=-1, keepdims=True), np.finfo(e.dtype).tiny)
    O_out[...] = (P_out @ v).transpose(0, 2, 1, 3).reshape(n, T, D)


def attention_backward(QKV, P, dO, n_heads, causal, dS_buf, dQKV_out):
    """Gradients of attention_forward w.r.t. the queries, keys and values, into dQKV_out (n, T, 3*D)."""
    q, k, v, dk = _heads(QKV, n_heads)
    n, T, D = dO.shape
    dOh = dO.reshape(n, T, n_heads, dk).transpose(0, 2, 1, 3)
    dv = P.transpose(0, 1, 3, 2) @ dOh
    dP = dOh @ v.transpose(0, 1, 3, 2)
    dS_buf[...] = P * (dP - (dP * P).sum(axis=-1, keepdims=True)) * (1.0 / np.sqrt(dk))
    dq = dS_buf @ k
    dkk = dS_buf.transpose(0, 1, 3, 2) @ q
    out = dQKV_out.reshape(n, T, 3, n_heads, dk)
    for slot, grad in enumerate((dq, dkk, dv)):
        out[:, :, slot] = grad.transpose(0, 2, 1, 3)
