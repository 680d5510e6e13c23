# Inference-only LSTM forward (predict): contract in fastnn/kernels/reference/rnn_infer.py. Included by
# _kernels.pyx (one compile unit); names here start with _lstm_infer / fastnn_lstm_infer. Kept apart from
# rnn.pxi (the training kernels) so the two change independently.
#
# Training keeps every step's gates, cell and hidden state for BPTT: (T, n, 6k) values, 86 MB for
# LSTM(128) at batch 1000, written once and never read at inference. Here only h and c live. The rows
# are split into one block per thread, each block into tiles of _LSTM_INFER_TILE rows that run every
# step before the next tile starts, so a tile's gates, h and c stay in the core's L2 cache beside the
# weights: per step one GEMM [x_t | h_{t-1}] @ [W; U] into the tile's gate rows, then one fused pass
# adds the bias, applies the gates and updates c and h in place (h straight into the GEMM's next input
# rows). Rows never interact: a row's result does not depend on the tile or the thread count (beyond
# what BLAS does for a different m).

cdef extern from *:
    """
    /* One LSTM row at inference: a = x W + h U (gate blocks i f g o of k), plus the bias b here;
       c and h are updated in place (first: no previous state). Branch-free bodies, as in rnn.pxi. */
    #define FASTNN_LSTM_INFER_CELL(T, S) \
    static inline __attribute__((always_inline)) void fastnn_lstm_infer_body_##S(Py_ssize_t k, \
            const T* restrict a, const T* restrict b, T* restrict c, T* restrict h, const int first) { \
        const T half = (T) 0.5; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T ig = half + half * fastnn_tanh_##S(half * (a[j] + b[j])); \
            T fg = half + half * fastnn_tanh_##S(half * (a[k + j] + b[k + j])); \
            T gg = fastnn_tanh_##S(a[2 * k + j] + b[2 * k + j]); \
            T og = half + half * fastnn_tanh_##S(half * (a[3 * k + j] + b[3 * k + j])); \
            T cc = ig * gg; \
            if (!first) cc += fg * c[j]; \
            c[j] = cc; \
            h[j] = og * fastnn_tanh_##S(cc); \
        } \
    } \
    static FASTNN_CLONES void fastnn_lstm_infer_##S(Py_ssize_t k, const T* restrict a, const T* restrict b, \
            T* restrict c, T* restrict h, int first) { \
        if (first) fastnn_lstm_infer_body_##S(k, a, b, c, h, 1); \
        else fastnn_lstm_infer_body_##S(k, a, b, c, h, 0); \
    }
    FASTNN_LSTM_INFER_CELL(float, f)
    FASTNN_LSTM_INFER_CELL(double, d)
    """
    void fastnn_lstm_infer_f(Py_ssize_t k, const float* a, const float* b, float* c, float* h,
                             int first) noexcept nogil
    void fastnn_lstm_infer_d(Py_ssize_t k, const double* a, const double* b, double* c, double* h,
                             int first) noexcept nogil


cdef enum:
    # Rows per tile: 128 rows of LSTM(128) gates are 256 kB (float32), beside [W; U]'s 320 kB in a 1 MB
    # L2. Measured at batch 1000, 1 thread, interleaved (loaded machine): 128 and 256 rows 1.10-1.16x
    # 64 rows; the one stacked GEMM a step 1.0-1.12x two GEMMs (x_t @ W, then h @ U with beta = 1).
    _LSTM_INFER_TILE = 128


cdef void _lstm_infer_tile(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                           Py_ssize_t k, bint every_step, const floating* X, const floating* WU,
                           const floating* b, const floating* mask, bint has_mask,
                           floating* H, floating* C, floating* G, floating* xh) noexcept nogil:
    """Every step for rows [lo, hi) as ONE GEMM a step: [x_t | h_{t-1}] (m, F+k) @ [W; U] (F+k, 4k).
    xh: the tile's (m, F+k) rows; the cell writes h straight into their h part."""
    cdef Py_ssize_t t, i, m = hi - lo, g4 = 4 * k, ld = F + k
    cdef floating* h
    for t in range(T):
        for i in range(m):
            memcpy(xh + i * ld, X + (t * n + lo + i) * F, F * sizeof(floating))
        if t > 0 or F > 0:
            _gemm(c'N', c'N', <int> m, <int> g4, <int> (F if t == 0 else ld), <floating> 1, xh, <int> ld, WU,
                  <int> g4, <floating> 0, G + lo * g4, <int> g4)
        else:  # no features: the first step's gates are the bias alone
            memset(G + lo * g4, 0, m * g4 * sizeof(floating))
        for i in range(m):
            h = xh + i * ld + F
            if has_mask and mask[t * n + lo + i] == 0:  # padding: the state stays (zero before any real step)
                if t == 0:
                    memset(h, 0, k * sizeof(floating))
                    memset(C + (lo + i) * k, 0, k * sizeof(floating))
                continue
            if floating is float:
                fastnn_lstm_infer_f(k, G + (lo + i) * g4, b, C + (lo + i) * k, h, t == 0)
            else:
                fastnn_lstm_infer_d(k, G + (lo + i) * g4, b, C + (lo + i) * k, h, t == 0)
        if every_step or t == T - 1:
            for i in range(m):
                memcpy(H + ((t * n if every_step else 0) + lo + i) * k, xh + i * ld + F, k * sizeof(floating))


cdef void _lstm_infer_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                            Py_ssize_t k, bint every_step, const floating* X, const floating* WU,
                            const floating* b, const floating* mask, bint has_mask,
                            floating* H, floating* C, floating* G, floating* xh) noexcept nogil:
    """Thread block c of nb: its rows, one tile after another (xh: the block's tile rows)."""
    cdef Py_ssize_t lo, hi, r
    _rnn_span(n, nb, c, 1, &lo, &hi)
    r = lo
    while r < hi:
        _lstm_infer_tile(r, min(hi, r + _LSTM_INFER_TILE), T, n, F, k, every_step, X, WU, b, mask, has_mask,
                         H, C, G, xh)
        r += _LSTM_INFER_TILE


def lstm_infer(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
               const floating[::1] b, const floating[:, ::1] mask, bint has_mask, floating[:, :, ::1] H_out,
               floating[:, ::1] C_buf, floating[:, ::1] G_buf, int nt):
    """LSTM forward keeping only h and c: H_out (T, n, k) every step's h, or (1, n, k) the last one;
    C_buf (n, k) ends as the last cell state; G_buf (n, 4k) is gate scratch (the spec's G_buf[0])."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint every_step
    _rnn_check_common(X, W, U, mask, has_mask, k, 4 * k)
    _rnn_check(b.shape[0], 4 * k, "b")
    if H_out.shape[0] != T and H_out.shape[0] != 1:
        raise ValueError(f"H_out has {H_out.shape[0]} steps: {T} (every step) or 1 (the last state)")
    _rnn_check_seq(H_out, H_out.shape[0], n, k, "H_out")
    _rnn_check(C_buf.shape[0] * C_buf.shape[1], n * k, "C_buf")
    _rnn_check(G_buf.shape[0] * G_buf.shape[1], n * 4 * k, "G_buf[0]")
    if n == 0 or k == 0:
        return
    if T == 0:
        H_out[...] = 0
        return
    every_step = H_out.shape[0] == T and T > 1
    nb = _rnn_blocks(n, nt)
    # [W; U] stacked once per call (one GEMM a step) and each thread's tile of [x_t | h] rows
    cdef floating[:, ::1] WU = np.concatenate([np.asarray(W), np.asarray(U)])
    cdef floating[:, ::1] xh = np.empty((nb, _LSTM_INFER_TILE * (F + k)), np.asarray(W).dtype)
    with nogil:
        for c in prange(nb, num_threads=nt, schedule="static"):
            _lstm_infer_block(c, nb, T, n, F, k, every_step, &X[0, 0, 0], &WU[0, 0], &b[0], &mask[0, 0], has_mask,
                              &H_out[0, 0, 0], &C_buf[0, 0], &G_buf[0, 0], &xh[c, 0])
