"""Reference recurrent kernels (SimpleRNN, LSTM, GRU) in numpy: the contract of the ``rnn`` family.

Layout: every sequence array is **time-major**, ``(T, n, .)``, so the rows of
one step are contiguous (the recurrence multiplies them by ``U`` step after
step); layers move between sample rows ``(n, T*F)`` and this layout.
``X (T, n, F)``, ``W (F, g*H)`` (input kernel), ``U (H, g*H)`` (recurrent
kernel), ``b (g*H,)``, with ``g`` gate blocks of ``H`` units side by side
(Keras/PyTorch order: LSTM ``i, f, c, o``; GRU ``z, r, h`` as Keras). The
initial state is zero.

Forward: the input projection of the whole sequence is one GEMM
(``X.reshape(T*n, F) @ W + b``), then one ``h_{t-1} @ U`` per step with the
gate math of the cell. Backward (BPTT): per step only the gate derivatives and
``dh_{t-1} = dG_t @ U.T``; the weight gradients are again whole-sequence GEMMs
(``dW = X2.T @ dG2``, ``dU = H_{0..T-2}.T @ dG_{1..T-1}``, ``dX = dG2 @ W.T``).

``mask (T, n)`` (or None: every step counts) marks real steps with 1 and padding
with 0: at a padded step a row keeps its state, ``h_t = h_{t-1}`` (and ``c_t = c_{t-1}``),
and backward passes the state gradients straight through it (Keras's masking).

``dH (T, n, H)`` is the loss gradient w.r.t. every hidden state (zeros but the
last step when the layer returns only its last state). ``dX_out`` may be None
(first layer). ``scratch``/``*_buf`` arguments are caller-owned work buffers
(the compiled backends allocate nothing); the reference may ignore them.
Shapes: forward ``scratch (n, g*H)``; backward ``dZ_buf``/``dG_buf``/``dGx_buf``/
``dGh_buf`` like the gates ``(T, n, g*H)``, ``dh_buf (2, n, H)`` (the carried gradient
and a product), ``dc_buf (n, H)``.

Cells (``s`` = sigmoid):

SimpleRNN
    ``h_t = tanh(x_t W + h_{t-1} U + b)``.
LSTM
    ``i, f, g, o = s(a_i), s(a_f), tanh(a_g), s(a_o)`` with ``a = x W + h U + b``;
    ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``.
GRU
    ``reset_after`` (Keras default, = PyTorch, cuDNN): ``z = s(x W_z + h U_z + b_z + bh_z)``,
    ``r`` alike, ``hh = h U_h + bh_h``, ``n = tanh(x W_h + b_h + r * hh)``;
    otherwise (the original GRU): ``hh = (r * h) U_h``, ``n = tanh(x W_h + b_h + hh)``
    (``b_h``/``bh`` unused, ``db_h_out`` zeroed). ``h_t = z h_{t-1} + (1 - z) n``.
"""
import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _project(X, W, b, G_out):
    """G = X @ W + b for all steps at once (one GEMM over T*n rows)."""
    T, n, F = X.shape
    G2 = G_out.reshape(T * n, -1)
    np.matmul(X.reshape(T * n, F), W, out=G2)
    G2 += b


def _weight_grads(X, W, Hs, dG, dW_out, dU_out, db_out, dX_out):
    """dW = X2.T dG2, db = sum dG2, dU = H_{<T-1}.T dG_{>0}, dX = dG2 W.T (whole-sequence GEMMs)."""
    T, n, F = X.shape
    k = dG.shape[2]
    dG2 = dG.reshape(T * n, k)
    np.matmul(X.reshape(T * n, F).T, dG2, out=dW_out)
    db_out[...] = dG2.sum(axis=0)
    if dU_out is not None:
        if T > 1:
            H = Hs.shape[2]
            np.matmul(Hs[:-1].reshape((T - 1) * n, H).T, dG[1:].reshape((T - 1) * n, k), out=dU_out)
        else:
            dU_out[...] = 0
    if dX_out is not None:
        np.matmul(dG2, W.T, out=dX_out.reshape(T * n, F))


def _m(mask, t):
    """The step's mask as a (n, 1) column, or None."""
    return None if mask is None else mask[t][:, None]


def _keep(new, old, m):
    """new where the step is real, old where it is padding."""
    return new if m is None else m * new + (1 - m) * old


def simple_rnn_forward(X, W, U, b, mask, H_out, scratch):
    """h_t = tanh(x_t W + h_{t-1} U + b) for every step; H_out (T, n, H)."""
    _project(X, W, b, H_out)
    H_out[0] = _keep(np.tanh(H_out[0]), 0, _m(mask, 0))
    for t in range(1, X.shape[0]):
        H_out[t] = _keep(np.tanh(H_out[t] + H_out[t - 1] @ U), H_out[t - 1], _m(mask, t))


def simple_rnn_backward(X, W, U, H, dH, mask, dW_out, dU_out, db_out, dX_out, dZ_buf, dh_buf):
    """BPTT of simple_rnn_forward: dZ_t = (dH_t + dZ_{t+1} U.T) (1 - h_t^2); weight grads as GEMMs."""
    T = X.shape[0]
    carry = np.zeros_like(H[0])
    for t in range(T - 1, -1, -1):
        d = dH[t] + carry
        m = _m(mask, t)
        dZ_buf[t] = d * (1 - H[t] * H[t]) if m is None else m * d * (1 - H[t] * H[t])
        carry = dZ_buf[t] @ U.T if m is None else dZ_buf[t] @ U.T + (1 - m) * d
    _weight_grads(X, W, H, dZ_buf, dW_out, dU_out, db_out, dX_out)


def lstm_forward(X, W, U, b, mask, H_out, C_out, G_out, scratch):
    """LSTM over every step; G_out (T, n, 4H) keeps the activated gates i, f, g, o for backward."""
    _project(X, W, b, G_out)
    k = H_out.shape[2]
    for t in range(X.shape[0]):
        a = G_out[t] if t == 0 else G_out[t] + H_out[t - 1] @ U
        i, f, g, o = _sigmoid(a[:, :k]), _sigmoid(a[:, k:2 * k]), np.tanh(a[:, 2 * k:3 * k]), _sigmoid(a[:, 3 * k:])
        c_prev = C_out[t - 1] if t > 0 else np.zeros_like(C_out[0])
        h_prev = H_out[t - 1] if t > 0 else np.zeros_like(H_out[0])
        c = f * c_prev + i * g
        m = _m(mask, t)
        H_out[t] = _keep(o * np.tanh(c), h_prev, m)
        C_out[t] = _keep(c, c_prev, m)
        G_out[t, :, :k], G_out[t, :, k:2 * k], G_out[t, :, 2 * k:3 * k], G_out[t, :, 3 * k:] = i, f, g, o


def lstm_backward(X, W, U, H, C, G, dH, mask, dW_out, dU_out, db_out, dX_out, dG_buf, dh_buf, dc_buf):
    """BPTT of lstm_forward: gate pre-activation gradients into dG_buf, weight grads as GEMMs."""
    T = X.shape[0]
    k = H.shape[2]
    dh_next = np.zeros_like(H[0])
    dc_next = np.zeros_like(H[0])
    for t in range(T - 1, -1, -1):
        i, f, g, o = G[t, :, :k], G[t, :, k:2 * k], G[t, :, 2 * k:3 * k], G[t, :, 3 * k:]
        dh = dH[t] + dh_next
        tc = np.tanh(C[t])
        c_prev = C[t - 1] if t > 0 else np.zeros_like(C[t])
        do = dh * tc
        dc = dc_next + dh * o * (1 - tc * tc)
        dG_buf[t, :, :k] = dc * g * i * (1 - i)
        dG_buf[t, :, k:2 * k] = dc * c_prev * f * (1 - f)
        dG_buf[t, :, 2 * k:3 * k] = dc * i * (1 - g * g)
        dG_buf[t, :, 3 * k:] = do * o * (1 - o)
        m = _m(mask, t)
        if m is None:
            dc_next = dc * f
            dh_next = dG_buf[t] @ U.T
        else:  # padding: nothing flows into the gates, the state gradients pass through
            dG_buf[t] *= m
            dc_next = m * (dc * f) + (1 - m) * dc_next
            dh_next = dG_buf[t] @ U.T + (1 - m) * dh
    _weight_grads(X, W, H, dG_buf, dW_out, dU_out, db_out, dX_out)


def gru_forward(X, W, U, b, b_h, reset_after, mask, H_out, G_out, HH_out, scratch):
    """GRU over every step; G_out (T, n, 3H) keeps z, r, n; HH_out the recurrent candidate term
    (``h U_h + bh_h`` with reset_after, else ``r * h_{t-1}``)."""
    _project(X, W, b, G_out)
    k = H_out.shape[2]
    for t in range(X.shape[0]):
        h_prev = H_out[t - 1] if t > 0 else np.zeros_like(H_out[0])
        x = G_out[t]
        if reset_after:
            s = h_prev @ U + b_h
            z = _sigmoid(x[:, :k] + s[:, :k])
            r = _sigmoid(x[:, k:2 * k] + s[:, k:2 * k])
            hh = s[:, 2 * k:]
            cand = np.tanh(x[:, 2 * k:] + r * hh)
        else:
            s = h_prev @ U[:, :2 * k]
            z = _sigmoid(x[:, :k] + s[:, :k])
            r = _sigmoid(x[:, k:2 * k] + s[:, k:])
            hh = r * h_prev
            cand = np.tanh(x[:, 2 * k:] + hh @ U[:, 2 * k:])
        HH_out[t] = hh
        H_out[t] = _keep(z * h_prev + (1 - z) * cand, h_prev, _m(mask, t))
        G_out[t, :, :k], G_out[t, :, k:2 * k], G_out[t, :, 2 * k:] = z, r, cand


def gru_backward(X, W, U, H, G, HH, dH, reset_after, mask, dW_out, dU_out, db_out, db_h_out, dX_out,
                 dGx_buf, dGh_buf, dh_buf):
    """BPTT of gru_forward: input-side gate gradients in dGx_buf, recurrent-side ones in dGh_buf."""
    T = X.shape[0]
    k = H.shape[2]
    dh_next = np.zeros_like(H[0])
    for t in range(T - 1, -1, -1):
        z, r, cand = G[t, :, :k], G[t, :, k:2 * k], G[t, :, 2 * k:]
        h_prev = H[t - 1] if t > 0 else np.zeros_like(H[0])
        dh = dH[t] + dh_next
        da_n = dh * (1 - z) * (1 - cand * cand)
        da_z = dh * (h_prev - cand) * z * (1 - z)
        if reset_after:
            da_r = da_n * HH[t] * r * (1 - r)
            dGh_buf[t, :, 2 * k:] = da_n * r
            dh_prev = dh * z
        else:
            d_rh = da_n @ U[:, 2 * k:].T
            da_r = d_rh * h_prev * r * (1 - r)
            dGh_buf[t, :, 2 * k:] = 0
            dh_prev = dh * z + d_rh * r
        dGx_buf[t, :, :k] = dGh_buf[t, :, :k] = da_z
        dGx_buf[t, :, k:2 * k] = dGh_buf[t, :, k:2 * k] = da_r
        dGx_buf[t, :, 2 * k:] = da_n
        m = _m(mask, t)
        if m is None:
            dh_next = dh_prev + dGh_buf[t] @ U.T
        else:  # padding: nothing flows into the gates, the state gradient passes through
            dGx_buf[t] *= m
            dGh_buf[t] *= m
            dh_next = m * dh_prev + dGh_buf[t] @ U.T + (1 - m) * dh
    _weight_grads(X, W, H, dGx_buf, dW_out, None, db_out, dX_out)
    n = X.shape[1]
    if T > 1:
        np.matmul(H[:-1].reshape((T - 1) * n, k).T, dGh_buf[1:].reshape((T - 1) * n, 3 * k), out=dU_out)
    else:
        dU_out[...] = 0
    if reset_after:
        db_h_out[...] = dGh_buf.reshape(T * n, 3 * k).sum(axis=0)
    else:
        db_h_out[...] = 0
        # the candidate block of U multiplies r * h_{t-1} (every step, t = 0 included: h_{-1} = 0)
        np.matmul(HH.reshape(T * n, k).T, dGx_buf[:, :, 2 * k:].reshape(T * n, k), out=dU_out[:, 2 * k:])


# --------------------------------------------------------------------------- inference (predict)
def lstm_infer(X, W, U, b, mask, H_out, C_buf, G_buf):
    """LSTM forward keeping only h and c (predict: nothing for BPTT). H_out (T, n, H) gets every step's
    h, or (1, n, H) the last one; C_buf (n, H) ends as the last cell state; G_buf (2, n, 4H) is
    gate scratch (contents undefined)."""
    T, n, _ = X.shape
    k = U.shape[0]
    _check_infer_steps(H_out, T)
    h = np.zeros((n, k), H_out.dtype)
    c = np.zeros((n, k), H_out.dtype)
    for t in range(T):
        a = X[t] @ W + b + h @ U
        i, f, g, o = _sigmoid(a[:, :k]), _sigmoid(a[:, k:2 * k]), np.tanh(a[:, 2 * k:3 * k]), _sigmoid(a[:, 3 * k:])
        c_new = f * c + i * g
        m = _m(mask, t)
        h = _keep(o * np.tanh(c_new), h, m)
        c = _keep(c_new, c, m)
        if H_out.shape[0] == T:
            H_out[t] = h
    H_out[-1] = h
    C_buf[...] = c


def simple_rnn_infer(X, W, U, b, mask, H_out, G_buf):
    """simple_rnn_forward for predict, keeping only h: H_out (T, n, H) every step's h, or (1, n, H)
    the last one; G_buf (2, n, H) is scratch (contents undefined)."""
    T, n, _ = X.shape
    _check_infer_steps(H_out, T)
    h = np.zeros((n, U.shape[0]), H_out.dtype)
    for t in range(T):
        h = _keep(np.tanh(X[t] @ W + b + h @ U), h, _m(mask, t))
        if H_out.shape[0] == T:
            H_out[t] = h
    H_out[-1] = h


def gru_infer(X, W, U, b, b_h, reset_after, mask, H_out, G_buf):
    """gru_forward for predict, keeping only h (``b_h`` unused without ``reset_after``): H_out (T, n, H)
    every step's h, or (1, n, H) the last one; G_buf (2, n, 3H) is scratch (contents undefined)."""
    T, n, _ = X.shape
    _check_infer_steps(H_out, T)
    k = U.shape[0]
    h = np.zeros((n, k), H_out.dtype)
    for t in range(T):
        x = X[t] @ W + b
        if reset_after:
            s = h @ U + b_h
            z = _sigmoid(x[:, :k] + s[:, :k])
            r = _sigmoid(x[:, k:2 * k] + s[:, k:2 * k])
            cand = np.tanh(x[:, 2 * k:] + r * s[:, 2 * k:])
        else:
            s = h @ U[:, :2 * k]
            z = _sigmoid(x[:, :k] + s[:, :k])
            r = _sigmoid(x[:, k:2 * k] + s[:, k:])
            cand = np.tanh(x[:, 2 * k:] + (r * h) @ U[:, 2 * k:])
        h = _keep(z * h + (1 - z) * cand, h, _m(mask, t))
        if H_out.shape[0] == T:
            H_out[t] = h
    H_out[-1] = h


def _check_infer_steps(H_out, T):
    if H_out.shape[0] not in (T, 1):
        raise ValueError(f"H_out has {H_out.shape[0]} steps: {T} (every step) or 1 (the last state)")
