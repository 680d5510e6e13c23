# Inference-only recurrent forwards (predict): LSTM, GRU (both reset_after forms) and SimpleRNN; contracts
# in fastnn/kernels/reference/rnn.py (lstm_infer, gru_infer, simple_rnn_infer). Included by _kernels.pyx
# (one compile unit); names here end in _infer. Kept apart from rnn.pxi / gru.pxi (the training kernels)
# so the two change independently.
#
# Training keeps every step's gates, cell and hidden state for BPTT: (T, n, 6k) values, 86 MB for
# LSTM(128) at batch 1000, written once and never read at inference. Here only the state lives. The rows
# are split into one block per thread, each block into tiles of _INFER_TILE rows that run every
# step before the next tile starts, so a tile's gates and state stay in the core's L2 cache beside the
# weights. LSTM: per step one GEMM [x_t | h_{t-1}] @ [W; U] into the tile's gate rows, then one fused pass
# adds the bias, applies the gates and updates c and h in place (h straight into the GEMM's next input
# rows). GRU and SimpleRNN: x_t @ W straight from X's rows (no copy), then h_{t-1} @ U accumulated into
# it (the GRU: into its z r blocks; h U_h apart, which r multiplies), then the fused cell; the GRU
# without reset_after multiplies (r * h_{t-1}) @ U_h between its two cell passes, so its candidate
# cannot share one GEMM with the gates. Their h lives in H_out (in place when only the last
# state is kept). Rows never interact: a row's result does not depend on the tile or the thread count
# (beyond what BLAS does for a different m).

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
    _INFER_TILE = 128


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
        _lstm_infer_tile(r, min(hi, r + _INFER_TILE), T, n, F, k, every_step, X, WU, b, mask, has_mask,
                         H, C, G, xh)
        r += _INFER_TILE


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
    cdef floating[:, ::1] xh = np.empty((nb, _INFER_TILE * (F + k)), np.asarray(W).dtype)
    with nogil:
        for c in prange(nb, num_threads=nt, schedule="static"):
            _lstm_infer_block(c, nb, T, n, F, k, every_step, &X[0, 0, 0], &WU[0, 0], &b[0], &mask[0, 0], has_mask,
                              &H_out[0, 0, 0], &C_buf[0, 0], &G_buf[0, 0], &xh[c, 0])


# --------------------------------------------------------------------------- GRU, SimpleRNN
cdef extern from *:
    """
    /* GRU rows at inference, Keras gate blocks z r h of k. g: x W (+ h U_zr in its z r blocks after the
       first step; no bias yet), b: the input bias. reset_after: s = h U_h (no bias), bh the recurrent
       bias; first: no previous state (s unused).
       hp and h may be the same row (the state updated in place), so they are not restrict. */
    #define FASTNN_GRU_INFER_CELL(T, S) \\
    static inline __attribute__((always_inline)) void fastnn_gru_infer_after_body_##S(Py_ssize_t k, \\
            const T* restrict g, const T* restrict s, const T* restrict b, const T* restrict bh, const T* hp, \\
            T* h, const int first) { \\
        const T half = (T) 0.5, one = (T) 1; \\
        for (Py_ssize_t j = 0; j < k; j++) { \\
            T hv = first ? bh[2 * k + j] : s[j] + bh[2 * k + j]; \\
            T z = half + half * fastnn_tanh_##S(half * (g[j] + b[j] + bh[j])); \\
            T r = half + half * fastnn_tanh_##S(half * (g[k + j] + b[k + j] + bh[k + j])); \\
            T cand = fastnn_tanh_##S(g[2 * k + j] + b[2 * k + j] + r * hv); \\
            T hpv = first ? (T) 0 : hp[j]; \\
            h[j] = z * hpv + (one - z) * cand; \\
        } \\
    } \\
    static FASTNN_CLONES void fastnn_gru_infer_after_##S(Py_ssize_t k, const T* restrict g, const T* restrict s, \\
            const T* restrict b, const T* restrict bh, const T* hp, T* h, int first) { \\
        if (first) fastnn_gru_infer_after_body_##S(k, g, s, b, bh, hp, h, 1); \\
        else fastnn_gru_infer_after_body_##S(k, g, s, b, bh, hp, h, 0); \\
    } \\
    /* reset before U_h, first pass: g's z r blocks hold x W + h U (no bias); z goes back into g, \\
       r * h_{t-1} into rh (the next GEMM's input) */ \\
    static FASTNN_CLONES void fastnn_gru_infer_gates_##S(Py_ssize_t k, T* restrict g, const T* restrict b, \\
            const T* restrict hp, T* restrict rh) { \\
        const T half = (T) 0.5; \\
        for (Py_ssize_t j = 0; j < k; j++) { \\
            g[j] = half + half * fastnn_tanh_##S(half * (g[j] + b[j])); \\
            rh[j] = (half + half * fastnn_tanh_##S(half * (g[k + j] + b[k + j]))) * hp[j]; \\
        } \\
    } \\
    /* second pass: g's candidate block holds x W_h (+ (r * h) U_h after the first step); first: z not \\
       yet applied to g (no first pass ran) */ \\
    static inline __attribute__((always_inline)) void fastnn_gru_infer_out_body_##S(Py_ssize_t k, \\
            const T* restrict g, const T* restrict b, const T* hp, T* h, const int first) { \\
        const T half = (T) 0.5, one = (T) 1; \\
        for (Py_ssize_t j = 0; j < k; j++) { \\
            T z = first ? half + half * fastnn_tanh_##S(half * (g[j] + b[j])) : g[j]; \\
            T cand = fastnn_tanh_##S(g[2 * k + j] + b[2 * k + j]); \\
            h[j] = first ? (one - z) * cand : z * hp[j] + (one - z) * cand; \\
        } \\
    } \\
    static FASTNN_CLONES void fastnn_gru_infer_out_##S(Py_ssize_t k, const T* restrict g, const T* restrict b, \\
            const T* hp, T* h, int first) { \\
        if (first) fastnn_gru_infer_out_body_##S(k, g, b, hp, h, 1); \\
        else fastnn_gru_infer_out_body_##S(k, g, b, hp, h, 0); \\
    } \\
    /* SimpleRNN row: h = tanh(a + b), a = x W + h_{t-1} U */ \\
    static FASTNN_CLONES void fastnn_simple_rnn_infer_##S(Py_ssize_t k, const T* restrict a, const T* restrict b, \\
            T* restrict h) { \\
        for (Py_ssize_t j = 0; j < k; j++) h[j] = fastnn_tanh_##S(a[j] + b[j]); \\
    }
    FASTNN_GRU_INFER_CELL(float, f)
    FASTNN_GRU_INFER_CELL(double, d)
    """
    void fastnn_gru_infer_after_f(Py_ssize_t k, const float* g, const float* s, const float* b, const float* bh,
                                  const float* hp, float* h, int first) noexcept nogil
    void fastnn_gru_infer_after_d(Py_ssize_t k, const double* g, const double* s, const double* b,
                                  const double* bh, const double* hp, double* h, int first) noexcept nogil
    void fastnn_gru_infer_gates_f(Py_ssize_t k, float* g, const float* b, const float* hp, float* rh) noexcept nogil
    void fastnn_gru_infer_gates_d(Py_ssize_t k, double* g, const double* b, const double* hp,
                                  double* rh) noexcept nogil
    void fastnn_gru_infer_out_f(Py_ssize_t k, const float* g, const float* b, const float* hp, float* h,
                                int first) noexcept nogil
    void fastnn_gru_infer_out_d(Py_ssize_t k, const double* g, const double* b, const double* hp, double* h,
                                int first) noexcept nogil
    void fastnn_simple_rnn_infer_f(Py_ssize_t k, const float* a, const float* b, float* h) noexcept nogil
    void fastnn_simple_rnn_infer_d(Py_ssize_t k, const double* a, const double* b, double* h) noexcept nogil


cdef inline bint _infer_padded(bint has_mask, const floating* mask, Py_ssize_t t, Py_ssize_t n, Py_ssize_t i,
                               Py_ssize_t k, const floating* hp, floating* h, bint every_step) noexcept nogil:
    """True at a padded step of row i (mask 0): its state stays (zero before any real step), copied
    into this step's row h when every step is kept (h is hp otherwise)."""
    if not has_mask or mask[t * n + i] != 0:
        return False
    if t == 0:
        memset(h, 0, k * sizeof(floating))
    elif every_step:
        memcpy(h, hp, k * sizeof(floating))
    return True


cdef inline void _infer_mm(Py_ssize_t m, Py_ssize_t K, Py_ssize_t N, const floating* A, Py_ssize_t lda,
                           const floating* B, Py_ssize_t ldb, const floating* Bp, bint tiles, bint accumulate,
                           floating* C, Py_ssize_t ldc) noexcept nogil:
    """C (m x N, row stride ldc) = A (m x K) @ B (+ C when ``accumulate``): rnn_tiles.pxi's micro-kernel on Bp
    (B packed by fastnn_pack64) when ``tiles`` (float32) and m > 1, else BLAS (GEMV for one row: 1.1-1.6x
    the micro-kernel there, which is 1.15-1.3x BLAS at 1000 rows; measured, GRU(128) / SimpleRNN(128)).
    K = 0 gives zero (GEMV would leave C untouched)."""
    cdef Py_ssize_t i
    tiles = tiles and m > 1
    if not accumulate and (tiles or K == 0):
        for i in range(m):
            memset(C + i * ldc, 0, N * sizeof(floating))
    if K == 0:
        return
    if floating is float:
        if tiles:
            fastnn_tiles_gemm_f(m, K, N, A, lda, Bp, C, ldc)
            return
    _gemm(c'N', c'N', <int> m, <int> N, <int> K, <floating> 1, A, <int> lda, B, <int> ldb,
          <floating> (1 if accumulate else 0), C, <int> ldc)


cdef void _gru_infer_tile(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                          Py_ssize_t k, bint every_step, bint reset_after, const floating* X, const floating* W,
                          const floating* U, const floating* b, const floating* b_h, const floating* mask,
                          bint has_mask, floating* H, floating* G, floating* S, const floating* Wp,
                          const floating* Up, const floating* Uhp, bint tiles) noexcept nogil:
    """Every step for rows [lo, hi): G (m, 3k) = x_t W, h_{t-1} U_zr accumulates into its z r blocks;
    reset_after: S (m, k) = h_{t-1} U_h, one cell pass; else the gate pass leaves r * h in S, (r * h) U_h
    accumulates into G's candidate block, the output pass. H: every step's rows or one (the state in place). Wp, Up, Uhp:
    W, U (U_zr without reset_after) and U_h packed for the micro-kernel when ``tiles``."""
    cdef Py_ssize_t t, i, m = hi - lo, g3 = 3 * k, o
    cdef floating* hp
    cdef floating* h
    cdef int first
    for t in range(T):
        first = t == 0
        hp = H + ((t - 1 if every_step and t > 0 else 0) * n + lo) * k
        h = H + ((t if every_step else 0) * n + lo) * k
        _infer_mm(m, F, g3, X + (t * n + lo) * F, F, W, g3, Wp, tiles, False, G, g3)
        if not first:  # h_{-1} = 0: the first step has no recurrent products
            _infer_mm(m, k, 2 * k, hp, k, U, g3, Up, tiles, True, G, g3)
        if reset_after:
            if not first:  # the candidate's h U_h apart: r multiplies it
                _infer_mm(m, k, k, hp, k, U + 2 * k, g3, Uhp, tiles, False, S, k)
            for i in range(m):
                if _infer_padded(has_mask, mask, t, n, lo + i, k, hp + i * k, h + i * k, every_step):
                    continue
                if floating is float:
                    fastnn_gru_infer_after_f(k, G + i * g3, S + i * k, b, b_h, hp + i * k, h + i * k, first)
                else:
                    fastnn_gru_infer_after_d(k, G + i * g3, S + i * k, b, b_h, hp + i * k, h + i * k, first)
            continue
        if not first:
            for i in range(m):  # padded rows too (their outputs are dropped below): S's rows feed the GEMM
                if floating is float:
                    fastnn_gru_infer_gates_f(k, G + i * g3, b, hp + i * k, S + i * k)
                else:
                    fastnn_gru_infer_gates_d(k, G + i * g3, b, hp + i * k, S + i * k)
            _infer_mm(m, k, k, S, k, U + 2 * k, g3, Uhp, tiles, True, G + 2 * k, g3)
        for i in range(m):
            if _infer_padded(has_mask, mask, t, n, lo + i, k, hp + i * k, h + i * k, every_step):
                continue
            if floating is float:
                fastnn_gru_infer_out_f(k, G + i * g3, b, hp + i * k, h + i * k, first)
            else:
                fastnn_gru_infer_out_d(k, G + i * g3, b, hp + i * k, h + i * k, first)


cdef void _simple_rnn_infer_tile(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                                 Py_ssize_t k, bint every_step, const floating* X, const floating* W,
                                 const floating* U, const floating* b, const floating* mask, bint has_mask,
                                 floating* H, floating* G, const floating* Wp, const floating* Up,
                                 bint tiles) noexcept nogil:
    """Every step for rows [lo, hi): G (m, k) = x_t W + h_{t-1} U (the second GEMM accumulates), then
    h = tanh(G + b) into H (every step's rows, or one: the state in place)."""
    cdef Py_ssize_t t, i, m = hi - lo
    cdef floating* hp
    cdef floating* h
    for t in range(T):
        hp = H + ((t - 1 if every_step and t > 0 else 0) * n + lo) * k
        h = H + ((t if every_step else 0) * n + lo) * k
        _infer_mm(m, F, k, X + (t * n + lo) * F, F, W, k, Wp, tiles, False, G, k)
        if t > 0:
            _infer_mm(m, k, k, hp, k, U, k, Up, tiles, True, G, k)
        for i in range(m):
            if _infer_padded(has_mask, mask, t, n, lo + i, k, hp + i * k, h + i * k, every_step):
                continue
            if floating is float:
                fastnn_simple_rnn_infer_f(k, G + i * k, b, h + i * k)
            else:
                fastnn_simple_rnn_infer_d(k, G + i * k, b, h + i * k)


cdef void _rnn_infer_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                           Py_ssize_t k, Py_ssize_t gates, bint every_step, bint reset_after, const floating* X,
                           const floating* W, const floating* U, const floating* b, const floating* b_h,
                           const floating* mask, bint has_mask, floating* H, floating* G, floating* S,
                           const floating* Wp, const floating* Up, const floating* Uhp, bint tiles) noexcept nogil:
    """Thread block c of nb, one tile after another: a GRU (gates 3) or a SimpleRNN (gates 1). G and S:
    the block's (tile rows, gates * k) scratch."""
    cdef Py_ssize_t lo, hi, r
    _rnn_span(n, nb, c, 1, &lo, &hi)
    r = lo
    while r < hi:
        if gates == 3:
            _gru_infer_tile(r, min(hi, r + _INFER_TILE), T, n, F, k, every_step, reset_after, X, W, U, b,
                            b_h, mask, has_mask, H, G, S, Wp, Up, Uhp, tiles)
        else:
            _simple_rnn_infer_tile(r, min(hi, r + _INFER_TILE), T, n, F, k, every_step, X, W, U, b, mask,
                                   has_mask, H, G, Wp, Up, tiles)
        r += _INFER_TILE


cdef int _rnn_infer_run(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                        const floating[::1] b, const floating[::1] b_h, bint reset_after,
                        const floating[:, ::1] mask, bint has_mask, floating[:, :, ::1] H_out,
                        Py_ssize_t gates, int nt) except -1:
    """The checks and the threads of gru_infer / simple_rnn_infer (their scratch is per call, per thread)."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb, g = gates * k
    cdef bint every_step
    _rnn_check_common(X, W, U, mask, has_mask, k, g)
    _rnn_check(b.shape[0], g, "b")
    _rnn_check(b_h.shape[0], g, "b_h")
    if H_out.shape[0] != T and H_out.shape[0] != 1:
        raise ValueError(f"H_out has {H_out.shape[0]} steps: {T} (every step) or 1 (the last state)")
    _rnn_check_seq(H_out, H_out.shape[0], n, k, "H_out")
    if n == 0 or k == 0:
        return 0
    if T == 0:
        H_out[...] = 0
        return 0
    every_step = H_out.shape[0] == T and T > 1
    nb = _rnn_blocks(n, nt)
    # per thread: the tile's x W (+ h U) rows, and the GRU's h U_h (reset_after) or r * h rows
    cdef floating[:, :, ::1] GS = np.empty((nb, 2, _INFER_TILE * g), np.asarray(W).dtype)
    # the weights packed once per call for the float32 micro-kernel (the GRU's U_zr and U_h apart),
    # unless every block is one row (GEMV then, see _infer_mm)
    cdef bint tiles = _rnn_tiles_on and floating is float and (n + nb - 1) // nb > 1
    cdef const floating[:, ::1] Ua = U
    cdef const floating[:, ::1] Ub = U[:1]  # a placeholder for the SimpleRNN
    if gates == 3:
        Ua = np.ascontiguousarray(np.asarray(U)[:, :2 * k])
        Ub = np.ascontiguousarray(np.asarray(U)[:, 2 * k:])
    cdef floating[::1] Wp = _infer_pack(W, tiles)
    cdef floating[::1] Up = _infer_pack(Ua, tiles)
    cdef floating[::1] Uhp = _infer_pack(Ub, tiles and gates == 3)
    with nogil:
        for c in prange(nb, num_threads=nt, schedule="static"):
            _rnn_infer_block(c, nb, T, n, F, k, gates, every_step, reset_after, &X[0, 0, 0], &W[0, 0], &U[0, 0],
                             &b[0], &b_h[0], &mask[0, 0], has_mask, &H_out[0, 0, 0], &GS[c, 0, 0], &GS[c, 1, 0],
                             &Wp[0], &Up[0], &Uhp[0], tiles)
    return 0


cdef _infer_pack(const floating[:, ::1] B, bint tiles):
    """B (K x N) packed by fastnn_pack64 when ``tiles`` (float32), else a one-element placeholder."""
    cdef Py_ssize_t K = B.shape[0], N = B.shape[1]
    cdef floating[::1] dst = np.zeros(max(1, (N + 63) // 64 * 64 * K if tiles else 1), np.asarray(B).dtype)
    if floating is float:
        if tiles and K > 0 and N > 0:
            fastnn_pack64(K, N, &B[0, 0], 0, &dst[0])
    return dst


def gru_infer(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
              const floating[::1] b, const floating[::1] b_h, bint reset_after, const floating[:, ::1] mask,
              bint has_mask, floating[:, :, ::1] H_out, int nt):
    """GRU forward keeping only h: H_out (T, n, k) every step's h, or (1, n, k) the last one
    (b_h: the recurrent bias, unused without reset_after)."""
    _rnn_infer_run(X, W, U, b, b_h, reset_after, mask, has_mask, H_out, 3, nt)


def simple_rnn_infer(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                     const floating[::1] b, const floating[:, ::1] mask, bint has_mask,
                     floating[:, :, ::1] H_out, int nt):
    """SimpleRNN forward keeping only h: H_out (T, n, k) every step's h, or (1, n, k) the last one."""
    _rnn_infer_run(X, W, U, b, b, False, mask, has_mask, H_out, 1, nt)
