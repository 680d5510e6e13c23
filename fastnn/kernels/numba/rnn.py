"""Numba recurrent kernels (SimpleRNN, LSTM, GRU); contracts in :mod:`fastnn.kernels.reference.rnn`.

What is compiled: the recurrence. The batch's rows are split into one block
per Numba thread (``prange``); each thread runs every step of its block --
one ``h_{t-1} @ U`` GEMM (BLAS through ``np.dot(a, b, out)`` on contiguous
time-major rows) followed by the fused gate math in one pass -- forward, and
the same backwards through time. Rows never interact, so the result does not
depend on the thread count. The whole-sequence input projection and the
input gradient are GEMMs over ``T*n`` rows, split across the threads the same
way; the weight gradients are single whole-sequence GEMMs (numpy's BLAS) and
the column sums of the gate gradients. Nothing is allocated: every buffer is
the caller's.
"""
import numpy as np
from numba import get_num_threads, njit, prange

from ._common import OPTS
from .driver import _parallel_call
from ._math import sig_as as _sig_as, tanh_as as _tanh_as

_PAR = dict(OPTS, parallel=True)


@njit(**OPTS)
def _blocks(n, nt):
    """(rows per block, number of blocks): one block per thread (``nt`` threads; Numba's
    get_num_threads() inside a kernel would make it uncacheable, so the wrappers pass it)."""
    nt = max(1, nt)
    per = (n + nt - 1) // nt
    return per, (n + per - 1) // per


@njit(**_PAR)
def _project(X2, W, b, G2, nt):
    """G2 = X2 @ W + b over the T*n rows, one row block per thread."""
    m = X2.shape[0]
    kk = G2.shape[1]
    per, nb = _blocks(m, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(m, lo + per)
        np.dot(X2[lo:hi], W, G2[lo:hi])
        for i in range(lo, hi):
            for j in range(kk):
                G2[i, j] += b[j]


@njit(**_PAR)
def _input_grad(dG2, W, dX2, nt):
    """dX2 = dG2 @ W.T over the T*n rows, one row block per thread."""
    m = dG2.shape[0]
    WT = W.T
    per, nb = _blocks(m, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(m, lo + per)
        np.dot(dG2[lo:hi], WT, dX2[lo:hi])


def _flat(a):
    """(T, n, k) -> (T*n, k) view (the buffers are contiguous)."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2])


def _weight_grads(X, W, Hs, dG, dW_out, dU_out, db_out, dX_out):
    """dW, db, dU (whole-sequence GEMMs) and dX (threaded) from the gate gradients dG."""
    T = X.shape[0]
    dG2 = _flat(dG)
    np.matmul(_flat(X).T, dG2, out=dW_out)
    np.sum(dG2, axis=0, out=db_out)
    if dU_out is not None:
        if T > 1:
            np.matmul(_flat(Hs[:T - 1]).T, _flat(dG[1:]), out=dU_out)
        else:
            dU_out[...] = 0
    if dX_out is not None:
        _input_grad(dG2, W, _flat(dX_out), get_num_threads())


# --------------------------------------------------------------------------- masks
_NO_MASK = {}


def _mask_args(mask, dtype):
    """``(mask, has_mask)`` for the kernels: a (1, 1) placeholder (never read) when there is no mask."""
    if mask is not None:
        return mask, True
    key = np.dtype(dtype)
    if key not in _NO_MASK:
        _NO_MASK[key] = np.ones((1, 1), key)
    return _NO_MASK[key], False


# --------------------------------------------------------------------------- SimpleRNN
@njit(**_PAR)
def _simple_rnn_steps(U, H, scratch, mask, has_mask, nt):
    T, n, k = H.shape
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            if t > 0:
                np.dot(H[t - 1, lo:hi], U, scratch[lo:hi])
            for i in range(lo, hi):
                if has_mask and mask[t, i] == 0:  # padding: keep the state
                    for j in range(k):
                        H[t, i, j] = H[t - 1, i, j] if t > 0 else 0
                    continue
                for j in range(k):
                    a = H[t, i, j]
                    if t > 0:
                        a += scratch[i, j]
                    H[t, i, j] = _tanh_as(a, H)


def simple_rnn_forward(X, W, U, b, mask, H_out, scratch):
    """h_t = tanh(x_t W + h_{t-1} U + b) for every step; H_out (T, n, H)."""
    _project(_flat(X), W, b, _flat(H_out), get_num_threads())
    _simple_rnn_steps(U, H_out, scratch, *_mask_args(mask, X.dtype), get_num_threads())


@njit(**_PAR)
def _simple_rnn_bptt(U, H, dH, dZ, dh, mask, has_mask, nt):
    T, n, k = H.shape
    UT = U.T
    carry = dh[0]
    prod = dh[1]
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T - 1, -1, -1):
            for i in range(lo, hi):
                keep = not (has_mask and mask[t, i] == 0)
                for j in range(k):
                    d = dH[t, i, j]
                    if t < T - 1:
                        d += carry[i, j]
                    if keep:
                        h = H[t, i, j]
                        dZ[t, i, j] = d * (1.0 - h * h)
                        carry[i, j] = 0
                    else:  # padding: the gradient passes through to h_{t-1}
                        dZ[t, i, j] = 0
                        carry[i, j] = d
            if t > 0:
                np.dot(dZ[t, lo:hi], UT, prod[lo:hi])
                for i in range(lo, hi):
                    for j in range(k):
                        carry[i, j] += prod[i, j]


def simple_rnn_backward(X, W, U, H, dH, mask, dW_out, dU_out, db_out, dX_out, dZ_buf, dh_buf):
    """BPTT of simple_rnn_forward: dZ_t = (dH_t + dZ_{t+1} U.T) (1 - h_t^2); weight grads as GEMMs."""
    _simple_rnn_bptt(U, H, dH, dZ_buf, dh_buf, *_mask_args(mask, X.dtype), get_num_threads())
    _weight_grads(X, W, H, dZ_buf, dW_out, dU_out, db_out, dX_out)


# --------------------------------------------------------------------------- LSTM
@njit(**_PAR)
def _lstm_steps(U, H, C, G, scratch, mask, has_mask, nt):
    T, n, k = H.shape
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            if t > 0:
                np.dot(H[t - 1, lo:hi], U, scratch[lo:hi])
            for i in range(lo, hi):
                for j in range(k):
                    ai = G[t, i, j]
                    af = G[t, i, k + j]
                    ag = G[t, i, 2 * k + j]
                    ao = G[t, i, 3 * k + j]
                    if t > 0:
                        ai += scratch[i, j]
                        af += scratch[i, k + j]
                        ag += scratch[i, 2 * k + j]
                        ao += scratch[i, 3 * k + j]
                    ig = _sig_as(ai, H)
                    fg = _sig_as(af, H)
                    gg = _tanh_as(ag, H)
                    og = _sig_as(ao, H)
                    cc = ig * gg
                    if t > 0:
                        cc += fg * C[t - 1, i, j]
                    C[t, i, j] = cc
                    H[t, i, j] = og * _tanh_as(cc, H)
                    G[t, i, j] = ig
                    G[t, i, k + j] = fg
                    G[t, i, 2 * k + j] = gg
                    G[t, i, 3 * k + j] = og
                if has_mask and mask[t, i] == 0:  # padding: keep the state (the gates stay as computed)
                    for j in range(k):
                        H[t, i, j] = H[t - 1, i, j] if t > 0 else 0
                        C[t, i, j] = C[t - 1, i, j] if t > 0 else 0


def lstm_forward(X, W, U, b, mask, H_out, C_out, G_out, scratch):
    """LSTM over every step; G_out (T, n, 4H) keeps the activated gates i, f, g, o for backward."""
    _project(_flat(X), W, b, _flat(G_out), get_num_threads())
    _lstm_steps(U, H_out, C_out, G_out, scratch, *_mask_args(mask, X.dtype), get_num_threads())


@njit(**_PAR)
def _lstm_bptt(U, C, G, dH, dG, dh, dc, mask, has_mask, nt):
    T, n, k = C.shape
    UT = U.T
    carry = dh[0]
    prod = dh[1]
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T - 1, -1, -1):
            for i in range(lo, hi):
                keep = not (has_mask and mask[t, i] == 0)
                for j in range(k):
                    d = dH[t, i, j]
                    dcn = 0.0
                    if t < T - 1:
                        d += carry[i, j]
                        dcn = dc[i, j]
                    if not keep:  # padding: the state gradients pass through to step t-1
                        for q in range(4):
                            dG[t, i, q * k + j] = 0
                        carry[i, j] = d
                        dc[i, j] = dcn
                        continue
                    ig = G[t, i, j]
                    fg = G[t, i, k + j]
                    gg = G[t, i, 2 * k + j]
                    og = G[t, i, 3 * k + j]
                    tc = _tanh_as(C[t, i, j], C)
                    cp = C[t - 1, i, j] if t > 0 else 0.0
                    do = d * tc
                    dcc = dcn + d * og * (1.0 - tc * tc)
                    dG[t, i, j] = dcc * gg * ig * (1.0 - ig)
                    dG[t, i, k + j] = dcc * cp * fg * (1.0 - fg)
                    dG[t, i, 2 * k + j] = dcc * ig * (1.0 - gg * gg)
                    dG[t, i, 3 * k + j] = do * og * (1.0 - og)
                    dc[i, j] = dcc * fg
                    carry[i, j] = 0
            if t > 0:
                np.dot(dG[t, lo:hi], UT, prod[lo:hi])
                for i in range(lo, hi):
                    for j in range(k):
                        carry[i, j] += prod[i, j]


def lstm_backward(X, W, U, H, C, G, dH, mask, dW_out, dU_out, db_out, dX_out, dG_buf, dh_buf, dc_buf):
    """BPTT of lstm_forward: gate pre-activation gradients into dG_buf, weight grads as GEMMs."""
    _lstm_bptt(U, C, G, dH, dG_buf, dh_buf, dc_buf, *_mask_args(mask, X.dtype), get_num_threads())
    _weight_grads(X, W, H, dG_buf, dW_out, dU_out, db_out, dX_out)


# --------------------------------------------------------------------------- GRU
@njit(**_PAR)
def _gru_steps(U, b_h, reset_after, H, G, HH, S, mask, has_mask, nt):
    T, n, k = H.shape
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            if t > 0:
                np.dot(H[t - 1, lo:hi], U, S[lo:hi])
            else:
                for i in range(lo, hi):
                    for j in range(3 * k):
                        S[i, j] = 0.0
            for i in range(lo, hi):
                if reset_after:
                    for j in range(k):
                        z = _sig_as(G[t, i, j] + S[i, j] + b_h[j], H)
                        r = _sig_as(G[t, i, k + j] + S[i, k + j] + b_h[k + j], H)
                        hh = S[i, 2 * k + j] + b_h[2 * k + j]
                        cand = _tanh_as(G[t, i, 2 * k + j] + r * hh, H)
                        hp = H[t - 1, i, j] if t > 0 else 0.0
                        HH[t, i, j] = hh
                        H[t, i, j] = z * hp + (1.0 - z) * cand
                        G[t, i, j] = z
                        G[t, i, k + j] = r
                        G[t, i, 2 * k + j] = cand
                else:
                    for j in range(k):
                        z = _sig_as(G[t, i, j] + S[i, j], H)
                        r = _sig_as(G[t, i, k + j] + S[i, k + j], H)
                        hp = H[t - 1, i, j] if t > 0 else 0.0
                        HH[t, i, j] = r * hp
                        G[t, i, j] = z
                        G[t, i, k + j] = r
                        S[i, 2 * k + j] = 0.0
                    # (r * h) @ U_h, accumulated in the unused candidate block of S (rows of U contiguous)
                    for m in range(k):
                        a = HH[t, i, m]
                        for j in range(k):
                            S[i, 2 * k + j] += a * U[m, 2 * k + j]
                    for j in range(k):
                        z = G[t, i, j]
                        cand = _tanh_as(G[t, i, 2 * k + j] + S[i, 2 * k + j], H)
                        hp = H[t - 1, i, j] if t > 0 else 0.0
                        H[t, i, j] = z * hp + (1.0 - z) * cand
                        G[t, i, 2 * k + j] = cand
                if has_mask and mask[t, i] == 0:  # padding: keep the state (the gates stay as computed)
                    for j in range(k):
                        H[t, i, j] = H[t - 1, i, j] if t > 0 else 0


def gru_forward(X, W, U, b, b_h, reset_after, mask, H_out, G_out, HH_out, scratch):
    """GRU over every step; G_out (T, n, 3H) keeps z, r, n; HH_out the recurrent candidate term."""
    _project(_flat(X), W, b, _flat(G_out), get_num_threads())
    _gru_steps(U, b_h, bool(reset_after), H_out, G_out, HH_out, scratch, *_mask_args(mask, X.dtype),
               get_num_threads())


@njit(**_PAR)
def _gru_bptt(U, H, G, HH, dH, reset_after, dGx, dGh, dh, mask, has_mask, nt):
    T, n, k = H.shape
    UT = U.T
    carry = dh[0]
    prod = dh[1]
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T - 1, -1, -1):
            for i in range(lo, hi):
                if has_mask and mask[t, i] == 0:  # padding: the gradient passes through to h_{t-1}
                    for j in range(k):
                        d = dH[t, i, j]
                        if t < T - 1:
                            d += carry[i, j]
                        carry[i, j] = d
                    for j in range(3 * k):
                        dGx[t, i, j] = 0
                        dGh[t, i, j] = 0
                    continue
                for j in range(k):
                    d = dH[t, i, j]
                    if t < T - 1:
                        d += carry[i, j]
                    z = G[t, i, j]
                    r = G[t, i, k + j]
                    cand = G[t, i, 2 * k + j]
                    hp = H[t - 1, i, j] if t > 0 else 0.0
                    da_n = d * (1.0 - z) * (1.0 - cand * cand)
                    da_z = d * (hp - cand) * z * (1.0 - z)
                    dGx[t, i, j] = da_z
                    dGh[t, i, j] = da_z
                    dGx[t, i, 2 * k + j] = da_n
                    carry[i, j] = d * z
                    if reset_after:
                        da_r = da_n * HH[t, i, j] * r * (1.0 - r)
                        dGx[t, i, k + j] = da_r
                        dGh[t, i, k + j] = da_r
                        dGh[t, i, 2 * k + j] = da_n * r
                    else:
                        dGh[t, i, 2 * k + j] = 0.0
                if not reset_after:
                    # d(r * h) = da_n @ U_h.T, one dot per unit over contiguous rows of U
                    for m in range(k):
                        s = 0.0
                        for j in range(k):
                            s += dGx[t, i, 2 * k + j] * U[m, 2 * k + j]
                        r = G[t, i, k + m]
                        hp = H[t - 1, i, m] if t > 0 else 0.0
                        da_r = s * hp * r * (1.0 - r)
                        dGx[t, i, k + m] = da_r
                        dGh[t, i, k + m] = da_r
                        carry[i, m] += s * r
            if t > 0:
                np.dot(dGh[t, lo:hi], UT, prod[lo:hi])
                for i in range(lo, hi):
                    for j in range(k):
                        carry[i, j] += prod[i, j]


def gru_backward(X, W, U, H, G, HH, dH, reset_after, mask, dW_out, dU_out, db_out, db_h_out, dX_out,
                 dGx_buf, dGh_buf, dh_buf):
    """BPTT of gru_forward; ``dh_buf`` is (2, n, H): the carried gradient and a product scratch."""
    T = X.shape[0]
    k = H.shape[2]
    _gru_bptt(U, H, G, HH, dH, bool(reset_after), dGx_buf, dGh_buf, dh_buf, *_mask_args(mask, X.dtype),
              get_num_threads())
    _weight_grads(X, W, H, dGx_buf, dW_out, None, db_out, dX_out)
    if T > 1:
        np.matmul(_flat(H[:T - 1]).T, _flat(dGh_buf[1:]), out=dU_out)
    else:
        dU_out[...] = 0
    if reset_after:
        np.sum(_flat(dGh_buf), axis=0, out=db_h_out)
    else:
        db_h_out[...] = 0
        np.matmul(_flat(HH).T, _flat(dGx_buf)[:, 2 * k:], out=dU_out[:, 2 * k:])


# --------------------------------------------------------------------------- inference (predict)
def _nothing_to_run(X, H_out):
    """Check H_out's steps (every step's h or the last); True when no step needs computing (T = 0 leaves
    the zero state)."""
    T = X.shape[0]
    if H_out.shape[0] not in (T, 1):
        raise ValueError(f"H_out has {H_out.shape[0]} steps: {T} (every step) or 1 (the last state)")
    if T == 0:
        H_out[...] = 0
    return X.shape[1] == 0 or H_out.shape[2] == 0 or T == 0


@njit(**_PAR)
def _lstm_infer_steps(X, W, U, b, H, C, G, mask, has_mask, nt):
    """Every step, keeping only h (H: every step's, or one in place) and c; one row block per thread."""
    T, n, _ = X.shape
    k = U.shape[0]
    every = H.shape[0] == T and T > 1
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            s = t if every else 0
            sp = t - 1 if every else 0
            np.dot(X[t, lo:hi], W, G[0, lo:hi])
            if t > 0:
                np.dot(H[sp, lo:hi], U, G[1, lo:hi])  # read before the cell below overwrites h
            for i in range(lo, hi):
                if has_mask and mask[t, i] == 0:  # padding: the state stays (zero before any real step)
                    for j in range(k):
                        if t == 0:
                            H[s, i, j] = 0
                            C[i, j] = 0
                        elif every:
                            H[s, i, j] = H[sp, i, j]
                    continue
                for j in range(k):
                    ai = G[0, i, j] + b[j]
                    af = G[0, i, k + j] + b[k + j]
                    ag = G[0, i, 2 * k + j] + b[2 * k + j]
                    ao = G[0, i, 3 * k + j] + b[3 * k + j]
                    if t > 0:
                        ai += G[1, i, j]
                        af += G[1, i, k + j]
                        ag += G[1, i, 2 * k + j]
                        ao += G[1, i, 3 * k + j]
                    cc = _sig_as(ai, H) * _tanh_as(ag, H)
                    if t > 0:
                        cc += _sig_as(af, H) * C[i, j]
                    C[i, j] = cc
                    H[s, i, j] = _sig_as(ao, H) * _tanh_as(cc, H)


def lstm_infer(X, W, U, b, mask, H_out, C_buf, G_buf):
    """LSTM forward keeping only h and c: H_out (T, n, H) every step's h, or (1, n, H) the last one."""
    if _nothing_to_run(X, H_out):
        return
    # predict may run from several Python threads: serialized unless Numba's threading layer allows it
    _parallel_call(_lstm_infer_steps, (X, W, U, b, H_out, C_buf, G_buf, *_mask_args(mask, X.dtype),
                                       get_num_threads()))


@njit(**OPTS)
def _keep_padded(H, s, sp, i, t, every):
    """A padded step of row i: the state stays (zero before any real step), copied when every step is kept."""
    for j in range(H.shape[2]):
        if t == 0:
            H[s, i, j] = 0
        elif every:
            H[s, i, j] = H[sp, i, j]


@njit(**_PAR)
def _gru_infer_steps(X, W, U, Uzr, Uh, b, b_h, reset_after, H, G, S, RH, mask, has_mask, nt):
    """Every step keeping only h (H: every step's, or one in place); one row block per thread.
    G[0]: x W; reset_after: G[1] = h U; else S = h U_zr, RH[0] = r * h, RH[1] = (r * h) U_h."""
    T, n, _ = X.shape
    k = U.shape[0]
    every = H.shape[0] == T and T > 1
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            s = t if every else 0
            sp = t - 1 if every else 0
            np.dot(X[t, lo:hi], W, G[0, lo:hi])
            if t > 0 and reset_after:  # read h_{t-1} before the cell below overwrites it
                np.dot(H[sp, lo:hi], U, G[1, lo:hi])
            elif t > 0:
                np.dot(H[sp, lo:hi], Uzr, S[lo:hi])
            if not reset_after:
                for i in range(lo, hi):
                    for j in range(k):
                        a = G[0, i, k + j] + b[k + j]
                        if t > 0:
                            a += S[i, k + j]
                        RH[0, i, j] = _sig_as(a, H) * H[sp, i, j] if t > 0 else 0
                if t > 0:
                    np.dot(RH[0, lo:hi], Uh, RH[1, lo:hi])
            for i in range(lo, hi):
                if has_mask and mask[t, i] == 0:
                    _keep_padded(H, s, sp, i, t, every)
                    continue
                for j in range(k):
                    az = G[0, i, j] + b[j]
                    ar = G[0, i, k + j] + b[k + j]
                    an = G[0, i, 2 * k + j] + b[2 * k + j]
                    if reset_after:
                        sz, sr, hv = b_h[j], b_h[k + j], b_h[2 * k + j]
                        if t > 0:
                            sz += G[1, i, j]
                            sr += G[1, i, k + j]
                            hv += G[1, i, 2 * k + j]
                        z = _sig_as(az + sz, H)
                        cand = _tanh_as(an + _sig_as(ar + sr, H) * hv, H)
                    else:
                        if t > 0:
                            az += S[i, j]
                            an += RH[1, i, j]
                        z = _sig_as(az, H)
                        cand = _tanh_as(an, H)
                    hn = (1.0 - z) * cand
                    if t > 0:
                        hn += z * H[sp, i, j]
                    H[s, i, j] = hn


def gru_infer(X, W, U, b, b_h, reset_after, mask, H_out, G_buf):
    """GRU forward keeping only h: H_out (T, n, H) every step's h, or (1, n, H) the last one."""
    if _nothing_to_run(X, H_out):
        return
    n, k = X.shape[1], U.shape[0]
    reset_after = bool(reset_after)
    dt = X.dtype
    if reset_after:  # placeholders of the other form, never read
        Uzr, Uh, S, RH = U, U, np.empty((1, 1), dt), np.empty((2, 1, 1), dt)
    else:  # contiguous halves of U (per call), so every product is a contiguous BLAS call
        Uzr, Uh = np.ascontiguousarray(U[:, :2 * k]), np.ascontiguousarray(U[:, 2 * k:])
        S, RH = np.empty((n, 2 * k), dt), np.empty((2, n, k), dt)
    _parallel_call(_gru_infer_steps, (X, W, U, Uzr, Uh, b, b_h, reset_after, H_out, G_buf, S, RH,
                                      *_mask_args(mask, dt), get_num_threads()))


@njit(**_PAR)
def _simple_rnn_infer_steps(X, W, U, b, H, G, mask, has_mask, nt):
    """Every step keeping only h (H: every step's, or one in place); one row block per thread."""
    T, n, _ = X.shape
    k = U.shape[0]
    every = H.shape[0] == T and T > 1
    per, nb = _blocks(n, nt)
    for c in prange(nb):
        lo = c * per
        hi = min(n, lo + per)
        for t in range(T):
            s = t if every else 0
            sp = t - 1 if every else 0
            np.dot(X[t, lo:hi], W, G[0, lo:hi])
            if t > 0:
                np.dot(H[sp, lo:hi], U, G[1, lo:hi])
            for i in range(lo, hi):
                if has_mask and mask[t, i] == 0:
                    _keep_padded(H, s, sp, i, t, every)
                    continue
                for j in range(k):
                    a = G[0, i, j] + b[j]
                    if t > 0:
                        a += G[1, i, j]
                    H[s, i, j] = _tanh_as(a, H)


def simple_rnn_infer(X, W, U, b, mask, H_out, G_buf):
    """SimpleRNN forward keeping only h: H_out (T, n, H) every step's h, or (1, n, H) the last one."""
    if _nothing_to_run(X, H_out):
        return
    _parallel_call(_simple_rnn_infer_steps, (X, W, U, b, H_out, G_buf, *_mask_args(mask, X.dtype),
                                             get_num_threads()))
