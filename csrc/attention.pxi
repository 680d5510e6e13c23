# Multi-head self-attention: contract in fastnn/kernels/reference/attention.py.
# Included by _kernels.pyx (one compile unit); names start with _attn.
#
# The (sample, head) pairs are split over the threads (prange); pairs write disjoint blocks
# of P, dS and columns of O / dQKV, so threads share no output and a pair's result does not depend on
# the thread count. A head's q, k, v are strided column blocks of QKV (row stride 3*D): BLAS reads them
# in place through the leading dimension, so the four products per pair are GEMMs with no copy and no
# scratch; the stable softmax (row maximum subtracted) and the masks are one fused pass per row.

from libc.math cimport INFINITY

cdef void _attn_softmax_rows(Py_ssize_t T, floating* P, floating scale, bint causal,
                             const floating* key_mask) noexcept nogil:
    """P (T, T) holds q k.T: scale, mask (causal: no look-ahead; key_mask[c] == 0: weight 0, NULL: none)
    and softmax each row in place; a row without any key left becomes 0."""
    cdef Py_ssize_t a, c, lim
    cdef floating top, tot, inv, e
    cdef floating* p
    cdef floating ninf = -INFINITY
    for a in range(T):
        lim = a + 1 if causal else T
        p = P + a * T
        top = ninf
        for c in range(lim):
            if key_mask != NULL and key_mask[c] == 0:
                p[c] = ninf
                continue
            p[c] = p[c] * scale
            if p[c] > top:
                top = p[c]
        if top == ninf:  # no key left (a fully padded sequence): P = 0, O = 0
            top = 0
        tot = 0
        for c in range(lim):
            e = _exp(p[c] - top)
            p[c] = e
            tot = tot + e
        inv = <floating> 1 / tot if tot > 0 else <floating> 0
        for c in range(lim):
            p[c] = p[c] * inv
        for c in range(lim, T):
            p[c] = 0


cdef void _attn_fwd_pair(Py_ssize_t pair, Py_ssize_t n_heads, Py_ssize_t T, Py_ssize_t D, bint causal,
                         const floating* QKV, const floating* key_mask, floating* P,
                         floating* O) noexcept nogil:
    cdef Py_ssize_t i = pair // n_heads, h = pair % n_heads, dk = D // n_heads
    cdef const floating* X = QKV + i * T * 3 * D
    cdef floating* Ph = P + pair * T * T
    cdef floating scale = <floating> (1.0 / sqrt(<double> dk))
    _gemm(c'N', c'T', <int> T, <int> T, <int> dk, <floating> 1, X + h * dk, <int> (3 * D), X + D + h * dk,
          <int> (3 * D), <floating> 0, Ph, <int> T)  # q k.T
    _attn_softmax_rows(T, Ph, scale, causal, key_mask + i * T if key_mask != NULL else NULL)
    _gemm(c'N', c'N', <int> T, <int> dk, <int> T, <floating> 1, Ph, <int> T, X + 2 * D + h * dk, <int> (3 * D),
          <floating> 0, O + i * T * D + h * dk, <int> D)  # P v


cdef void _attn_bwd_pair(Py_ssize_t pair, Py_ssize_t n_heads, Py_ssize_t T, Py_ssize_t D,
                         const floating* QKV, const floating* P, const floating* dO, floating* dS_buf,
                         floating* dQKV) noexcept nogil:
    cdef Py_ssize_t i = pair // n_heads, h = pair % n_heads, dk = D // n_heads, a, c
    cdef const floating* X = QKV + i * T * 3 * D
    cdef const floating* g = dO + i * T * D + h * dk
    cdef const floating* Ph = P + pair * T * T
    cdef floating* dS = dS_buf + pair * T * T
    cdef floating* G = dQKV + i * T * 3 * D
    cdef floating scale = <floating> (1.0 / sqrt(<double> dk)), row
    _gemm(c'N', c'T', <int> T, <int> T, <int> dk, <floating> 1, g, <int> D, X + 2 * D + h * dk, <int> (3 * D),
          <floating> 0, dS, <int> T)  # dP = dO v.T
    for a in range(T):  # dS = P * (dP - rowsum(dP * P)) * scale
        row = 0
        for c in range(T):
            row = row + dS[a * T + c] * Ph[a * T + c]
        for c in range(T):
            dS[a * T + c] = Ph[a * T + c] * (dS[a * T + c] - row) * scale
    _gemm(c'N', c'N', <int> T, <int> dk, <int> T, <floating> 1, dS, <int> T, X + D + h * dk, <int> (3 * D),
          <floating> 0, G + h * dk, <int> (3 * D))  # dq = dS k
    _gemm(c'T', c'N', <int> T, <int> dk, <int> T, <floating> 1, dS, <int> T, X + h * dk, <int> (3 * D),
          <floating> 0, G + D + h * dk, <int> (3 * D))  # dk = dS.T q
    _gemm(c'T', c'N', <int> T, <int> dk, <int> T, <floating> 1, Ph, <int> T, g, <int> D,
          <floating> 0, G + 2 * D + h * dk, <int> (3 * D))  # dv = P.T dO


# --------------------------------------------------------------------------- Python wrappers
cdef int _attn_check(const floating[:, :, ::1] QKV, Py_ssize_t n_heads, const floating[:, :, :, ::1] P,
                     const floating[:, :, ::1] O) except -1:
    cdef Py_ssize_t n = O.shape[0], T = O.shape[1], D = O.shape[2]
    if n_heads < 1 or D % n_heads:
        raise ValueError(f"n_heads = {n_heads} must be a positive divisor of the width {D}")
    if QKV.shape[0] != n or QKV.shape[1] != T or QKV.shape[2] != 3 * D:
        raise ValueError(f"QKV has shape {tuple(QKV.shape)[:3]}, expected {(n, T, 3 * D)}")
    if P.shape[0] != n or P.shape[1] != n_heads or P.shape[2] != T or P.shape[3] != T:
        raise ValueError(f"P has shape {tuple(P.shape)[:4]}, expected {(n, n_heads, T, T)}")
    return 0


def attention_forward(const floating[:, :, ::1] QKV, Py_ssize_t n_heads, bint causal,
                      const floating[:, ::1] key_mask, bint has_mask, floating[:, :, :, ::1] P_out,
                      floating[:, :, ::1] O_out, int nt):
    """P = softmax(q k.T / sqrt(dk)) per head (causal: no look-ahead), O = P v, heads concatenated."""
    cdef Py_ssize_t n = O_out.shape[0], T = O_out.shape[1], D = O_out.shape[2], pair
    _attn_check(QKV, n_heads, P_out, O_out)
    if has_mask and (key_mask.shape[0] != n or key_mask.shape[1] != T):
        raise ValueError(f"key_mask has shape {tuple(key_mask.shape)[:2]}, expected {(n, T)}")
    if n * T * D == 0:
        return
    with nogil:
        for pair in prange(n * n_heads, num_threads=nt, schedule="static"):
            _attn_fwd_pair(pair, n_heads, T, D, causal, &QKV[0, 0, 0], &key_mask[0, 0] if has_mask else NULL,
                           &P_out[0, 0, 0, 0], &O_out[0, 0, 0])


def attention_backward(const floating[:, :, ::1] QKV, const floating[:, :, :, ::1] P,
                       const floating[:, :, ::1] dO, Py_ssize_t n_heads, floating[:, :, :, ::1] dS_buf,
                       floating[:, :, ::1] dQKV_out, int nt):
    """Gradients of attention_forward w.r.t. the queries, keys and values, into dQKV_out (n, T, 3*D)."""
    cdef Py_ssize_t n = dO.shape[0], T = dO.shape[1], D = dO.shape[2], pair
    _attn_check(QKV, n_heads, P, dO)
    _attn_check(dQKV_out, n_heads, dS_buf, dO)
    if n * T * D == 0:
        return
    with nogil:
        for pair in prange(n * n_heads, num_threads=nt, schedule="static"):
            _attn_bwd_pair(pair, n_heads, T, D, &QKV[0, 0, 0], &P[0, 0, 0, 0], &dO[0, 0, 0],
                           &dS_buf[0, 0, 0, 0], &dQKV_out[0, 0, 0])
