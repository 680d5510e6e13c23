# Recurrent cells (SimpleRNN, LSTM; GRU in gru.pxi) and their shared helpers: contracts in
# fastnn/kernels/reference/rnn.py. Included by _kernels.pyx (one compile unit); names here start with
# _rnn / _simple_rnn / _lstm / fastnn_rnn / fastnn_lstm.
#
# Time-major buffers (T, n, .). The batch's rows are split into one block per thread; each thread runs
# every step of its block inside one parallel region (rows never interact, so no barrier and no
# dependence of a row's result on the thread count): per step one h_{t-1} @ U GEMM accumulated straight
# into the step's projected gates (beta = 1: no scratch, no extra add pass), then the fused gate math in
# one pass. Backward the same, the carried gradient accumulated by dG_t @ U.T into itself. The weight
# gradients are whole-sequence GEMMs split by output columns across the threads (one copy of each
# gradient, no reduction), the input gradient by rows. BLAS is called from every thread: it must run
# one thread itself (the trainer limits it; fastnn.kernels.cython.rnn says how many threads run here).
# In float32 on AVX-512F or AVX2+FMA CPUs the per-step products (_rnn_step_gemm, and the LSTM forward's
# product + cell) run rnn_tiles.pxi's micro-kernel on U packed once per call instead of BLAS, and so do the
# weight gradients (fastnn_tiles_grads_f, _rnn_gemm_tn).

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastnn_rnn_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fastnn_rnn_omp_max_threads(void) { return 1; }
    #endif
    /* One LSTM row, forward: g holds a = x W + h U + b (i f g o blocks of k); writes the activated
       gates back into g, c_t and h_t. cp (c_{t-1}) is NULL at the first step. The loop bodies are
       always-inline helpers called with constant flags, so each clone gets branch-free loops that
       vectorize (a test inside the loop kept GCC from vectorizing it). */
    #define FASTNN_LSTM_CELL(T, S) \
    static inline __attribute__((always_inline)) void fastnn_lstm_fwd_body_##S(Py_ssize_t k, \
            T* restrict g, const T* restrict cp, T* restrict c, T* restrict h, const int has_cp) { \
        const T half = (T) 0.5; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T ig = half + half * fastnn_tanh_##S(half * g[j]); \
            T fg = half + half * fastnn_tanh_##S(half * g[k + j]); \
            T gg = fastnn_tanh_##S(g[2 * k + j]); \
            T og = half + half * fastnn_tanh_##S(half * g[3 * k + j]); \
            T cc = ig * gg; \
            if (has_cp) cc += fg * cp[j]; \
            c[j] = cc; \
            h[j] = og * fastnn_tanh_##S(cc); \
            g[j] = ig; g[k + j] = fg; g[2 * k + j] = gg; g[3 * k + j] = og; \
        } \
    } \
    static FASTNN_CLONES void fastnn_lstm_fwd_##S(Py_ssize_t k, T* restrict g, const T* restrict cp, \
            T* restrict c, T* restrict h) { \
        if (cp) fastnn_lstm_fwd_body_##S(k, g, cp, c, h, 1); \
        else fastnn_lstm_fwd_body_##S(k, g, cp, c, h, 0); \
    } \
    /* One LSTM row, backward: d = dH (+ carry when `later`), dc_next = dc (when `later`); writes the gate \
       pre-activation gradients dg, dc = dc_t * f, and carry = 0 (the dG_t @ U.T GEMM adds into it). */ \
    static inline __attribute__((always_inline)) void fastnn_lstm_bwd_body_##S(Py_ssize_t k, \
            const T* restrict dH, T* restrict carry, T* restrict dc, const T* restrict g, \
            const T* restrict c, const T* restrict cp, T* restrict dg, const int later, const int has_cp) { \
        const T one = (T) 1; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T d = dH[j], dcn = (T) 0; \
            if (later) { d += carry[j]; dcn = dc[j]; } \
            T ig = g[j], fg = g[k + j], gg = g[2 * k + j], og = g[3 * k + j]; \
            T tc = fastnn_tanh_##S(c[j]); \
            T cpv = has_cp ? cp[j] : (T) 0; \
            T dcc = dcn + d * og * (one - tc * tc); \
            dg[j] = dcc * gg * ig * (one - ig); \
            dg[k + j] = dcc * cpv * fg * (one - fg); \
            dg[2 * k + j] = dcc * ig * (one - gg * gg); \
            dg[3 * k + j] = d * tc * og * (one - og); \
            dc[j] = dcc * fg; \
            carry[j] = (T) 0; \
        } \
    } \
    static FASTNN_CLONES void fastnn_lstm_bwd_##S(Py_ssize_t k, int later, const T* restrict dH, \
            T* restrict carry, T* restrict dc, const T* restrict g, const T* restrict c, \
            const T* restrict cp, T* restrict dg) { \
        if (later && cp) fastnn_lstm_bwd_body_##S(k, dH, carry, dc, g, c, cp, dg, 1, 1); \
        else if (later) fastnn_lstm_bwd_body_##S(k, dH, carry, dc, g, c, cp, dg, 1, 0); \
        else if (cp) fastnn_lstm_bwd_body_##S(k, dH, carry, dc, g, c, cp, dg, 0, 1); \
        else fastnn_lstm_bwd_body_##S(k, dH, carry, dc, g, c, cp, dg, 0, 0); \
    }
    FASTNN_LSTM_CELL(float, f)
    FASTNN_LSTM_CELL(double, d)
    /* SimpleRNN: h = tanh(h) over one block of rows */
    #define FASTNN_RNN_TANH_RUN(T, S) \
    static FASTNN_CLONES void fastnn_rnn_tanh_run_##S(Py_ssize_t m, T* restrict h) { \
        for (Py_ssize_t j = 0; j < m; j++) h[j] = fastnn_tanh_##S(h[j]); \
    }
    FASTNN_RNN_TANH_RUN(float, f)
    FASTNN_RNN_TANH_RUN(double, d)
    """
    int fastnn_rnn_omp_max_threads() noexcept nogil
    void fastnn_lstm_fwd_f(Py_ssize_t k, float* g, const float* cp, float* c, float* h) noexcept nogil
    void fastnn_lstm_fwd_d(Py_ssize_t k, double* g, const double* cp, double* c, double* h) noexcept nogil
    void fastnn_lstm_bwd_f(Py_ssize_t k, int later, const float* dH, float* carry, float* dc, const float* g,
                           const float* c, const float* cp, float* dg) noexcept nogil
    void fastnn_lstm_bwd_d(Py_ssize_t k, int later, const double* dH, double* carry, double* dc,
                           const double* g, const double* c, const double* cp, double* dg) noexcept nogil
    void fastnn_rnn_tanh_run_f(Py_ssize_t m, float* h) noexcept nogil
    void fastnn_rnn_tanh_run_d(Py_ssize_t m, double* h) noexcept nogil


def omp_max_threads():
    """OpenMP threads a parallel loop started from the calling thread would get (1 without OpenMP)."""
    return fastnn_rnn_omp_max_threads()


cdef inline floating _rnn_tanh(floating x) noexcept nogil:
    if floating is float:
        return fastnn_tanh_f(x)
    else:
        return fastnn_tanh_d(x)


cdef inline floating _rnn_sig(floating x) noexcept nogil:
    return <floating> 0.5 + <floating> 0.5 * _rnn_tanh(<floating> 0.5 * x)


cdef inline void _rnn_span(Py_ssize_t n, Py_ssize_t nb, Py_ssize_t c, Py_ssize_t align,
                           Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Block c of nb over range(n): [lo, hi), block sizes rounded up to a multiple of ``align``."""
    cdef Py_ssize_t per = (n + nb - 1) // nb
    per = (per + align - 1) // align * align
    lo[0] = c * per if c * per < n else n
    hi[0] = lo[0] + per if lo[0] + per < n else n


cdef inline Py_ssize_t _rnn_blocks(Py_ssize_t n, int nt) noexcept nogil:
    """Number of row blocks: one per thread, none empty."""
    if nt < 1:
        nt = 1
    return nt if nt < n else (n if n > 0 else 1)


cdef void _rnn_project_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t m, Py_ssize_t F, Py_ssize_t g,
                             const floating* X, const floating* W, const floating* b,
                             floating* G) noexcept nogil:
    """Rows [lo, hi) of block c: G = X @ W + b (the input projection of every step at once). The rows start
    as b and the GEMM adds into them (beta = 1): one pass over G fewer than a separate bias pass, and none
    of OpenBLAS's zeroing for beta = 0 (perf); the same numbers (b + sum, one rounding either way)."""
    cdef Py_ssize_t lo, hi, i
    _rnn_span(m, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for i in range(lo, hi):
        memcpy(G + i * g, b, g * sizeof(floating))
    if F > 0:
        _gemm(c'N', c'N', <int> (hi - lo), <int> g, <int> F, <floating> 1, X + lo * F, <int> F, W, <int> g,
              <floating> 1, G + lo * g, <int> g)


cdef inline void _rnn_gemm_tn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating* A, Py_ssize_t lda,
                              const floating* B, Py_ssize_t ldb, bint tiles, floating* C,
                              Py_ssize_t ldc) noexcept nogil:
    """C (M x N) = A.T @ B, A (K x M) and B (K x N) row-major with strides: a weight gradient over the
    whole sequence; rnn_tiles.pxi's micro-kernel when ``tiles`` (float32), else BLAS."""
    if floating is float:
        if tiles:
            fastnn_tiles_gemm_tn_f(M, N, K, A, lda, B, ldb, C, ldc)
            return
    _gemm(c'T', c'N', <int> M, <int> N, <int> K, <floating> 1, A, <int> lda, B, <int> ldb, <floating> 0, C,
          <int> ldc)


cdef void _rnn_grads_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t F,
                           Py_ssize_t k, Py_ssize_t g, const floating* X, const floating* W,
                           const floating* Hs, const floating* dG, const floating* dGu, bint tiles,
                           floating* dW, floating* dU, floating* db, floating* dX) noexcept nogil:
    """Block c's share of the weight gradients (whole-sequence GEMMs): columns [c0, c1) of
    dW = X2.T @ dG2, db = sum dG2 and (dU not NULL) dU = H_{<T-1}.T @ dGu_{>0}; rows of dX = dG2 @ W.T."""
    cdef Py_ssize_t m = T * n, c0, c1, r0, r1, i, j
    _rnn_span(g, nb, c, 16, &c0, &c1)
    if floating is float:
        if tiles and c1 > c0 and (dU == NULL or dGu == dG):  # dW, dU and db in one pass over dG
            fastnn_tiles_grads_f(c1 - c0, m, dG + c0, g, db + c0, F, X, F, dW + c0, k if dU != NULL else 0, n,
                                 Hs, k, dU + c0 if dU != NULL else NULL, g)
            c1 = c0  # nothing left of the column block; dX below
    if c1 > c0:
        if F > 0:
            _rnn_gemm_tn(F, c1 - c0, m, X, F, dG + c0, g, tiles, dW + c0, g)
        for j in range(c0, c1):
            db[j] = 0
        for i in range(m):  # row order fixed: the sums do not depend on the thread count
            for j in range(c0, c1):
                db[j] += dG[i * g + j]
        if dU != NULL:
            if T > 1:
                _rnn_gemm_tn(k, c1 - c0, (T - 1) * n, Hs, k, dGu + n * g + c0, g, tiles, dU + c0, g)
            else:
                for i in range(k):
                    memset(dU + i * g + c0, 0, (c1 - c0) * sizeof(floating))
    if dX != NULL and F > 0:
        _rnn_span(m, nb, c, 1, &r0, &r1)
        if r1 > r0:
            _gemm(c'N', c'T', <int> (r1 - r0), <int> F, <int> g, <floating> 1, dG + r0 * g, <int> g, W, <int> g,
                  <floating> 0, dX + r0 * F, <int> F)


cdef inline void _rnn_keep_state(Py_ssize_t t, Py_ssize_t n, Py_ssize_t k, Py_ssize_t i,
                                 floating* S) noexcept nogil:
    """A padded step of row i: its state S[t, i] = S[t-1, i] (0 at the first step)."""
    if t > 0:
        memcpy(S + (t * n + i) * k, S + ((t - 1) * n + i) * k, k * sizeof(floating))
    else:
        memset(S + i * k, 0, k * sizeof(floating))


cdef inline void _rnn_step_gemm(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t N, const floating* A,
                                const floating* B, bint tiles, floating* C) noexcept nogil:
    """C (rows x N) += A (rows x K) @ B, rows contiguous: the per-step recurrent product. B is packed by
    fastnn_pack64 when ``tiles`` (float32 only: rnn_tiles.pxi's micro-kernel), else plain (K x N) for BLAS."""
    if floating is float:
        if tiles:
            fastnn_tiles_gemm_f(rows, K, N, A, K, B, C, N)
            return
    _gemm(c'N', c'N', <int> rows, <int> N, <int> K, <floating> 1, A, <int> K, B, <int> N, <floating> 1, C, <int> N)


cdef void _rnn_pack(Py_ssize_t K, Py_ssize_t N, const floating* U, bint trans, bint tiles,
                    floating* dst) noexcept nogil:
    """The operand of _rnn_step_gemm from U (K x N, or N x K when ``trans``): packed for the micro-kernel
    when ``tiles``, else U.T into dst when ``trans`` (else nothing: BLAS takes U itself)."""
    if floating is float:
        if tiles:
            fastnn_pack64(K, N, U, trans, dst)
            return
    if trans:
        _rnn_transpose(N, K, U, dst)


cdef void _rnn_transpose(Py_ssize_t rows, Py_ssize_t cols, const floating* src, floating* dst) noexcept nogil:
    """dst (cols, rows) = src (rows, cols).T. Backward multiplies by U.T every step: OpenBLAS's
    transposed packing of U (sgemm_itcopy) cost a third of its GEMM kernel time in an LSTM(128)
    epoch (perf); transposed once per call, every step packs the plain layout."""
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(cols):
            dst[j * rows + i] = src[i * cols + j]


# --------------------------------------------------------------------------- SimpleRNN
cdef void _simple_rnn_fwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                                const floating* U, bint tiles, const floating* mask, bint has_mask,
                                floating* H) noexcept nogil:
    cdef Py_ssize_t lo, hi, t, i
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T):
        if t > 0:
            _rnn_step_gemm(hi - lo, k, k, H + ((t - 1) * n + lo) * k, U, tiles, H + (t * n + lo) * k)
        if floating is float:
            fastnn_rnn_tanh_run_f((hi - lo) * k, H + (t * n + lo) * k)
        else:
            fastnn_rnn_tanh_run_d((hi - lo) * k, H + (t * n + lo) * k)
        if has_mask:
            for i in range(lo, hi):
                if mask[t * n + i] == 0:
                    _rnn_keep_state(t, n, k, i, H)


cdef void _simple_rnn_bwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                                const floating* UT, bint tiles, const floating* H, const floating* dH,
                                const floating* mask, bint has_mask, floating* dZ,
                                floating* carry) noexcept nogil:
    cdef Py_ssize_t lo, hi, t, i, j, o
    cdef floating d, hv
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T - 1, -1, -1):
        for i in range(lo, hi):
            o = (t * n + i) * k
            if has_mask and mask[t * n + i] == 0:  # padding: the gradient passes through to h_{t-1}
                for j in range(k):
                    d = dH[o + j]
                    if t < T - 1:
                        d = d + carry[i * k + j]
                    carry[i * k + j] = d
                    dZ[o + j] = 0
                continue
            for j in range(k):
                d = dH[o + j]
                if t < T - 1:
                    d = d + carry[i * k + j]
                hv = H[o + j]
                dZ[o + j] = d * (<floating> 1 - hv * hv)
                carry[i * k + j] = 0
        if t > 0:
            _rnn_step_gemm(hi - lo, k, k, dZ + (t * n + lo) * k, UT, tiles, carry + lo * k)


# --------------------------------------------------------------------------- LSTM
cdef void _lstm_fwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                          const floating* U, const floating* Up, bint tiles, const floating* mask, bint has_mask,
                          floating* H, floating* C, floating* G) noexcept nogil:
    """Every step of block c's rows; with ``tiles`` (float32) the step's GEMM and cell are one micro-kernel
    pass over ``Up`` (U packed by fastnn_pack_gates), else a BLAS GEMM and the cell pass."""
    cdef Py_ssize_t lo, hi, t, i, g4 = 4 * k
    cdef const floating* cp
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T):
        if floating is float:
            if tiles and t > 0:
                fastnn_tiles_lstm_f(hi - lo, k, H + ((t - 1) * n + lo) * k, Up, G + (t * n + lo) * g4,
                                    C + ((t - 1) * n + lo) * k, C + (t * n + lo) * k, H + (t * n + lo) * k)
                if has_mask:
                    for i in range(lo, hi):
                        if mask[t * n + i] == 0:
                            _rnn_keep_state(t, n, k, i, H)
                            _rnn_keep_state(t, n, k, i, C)
                continue
        if t > 0:
            _gemm(c'N', c'N', <int> (hi - lo), <int> g4, <int> k, <floating> 1, H + ((t - 1) * n + lo) * k,
                  <int> k, U, <int> g4, <floating> 1, G + (t * n + lo) * g4, <int> g4)
        for i in range(lo, hi):
            cp = C + ((t - 1) * n + i) * k if t > 0 else NULL
            if floating is float:
                fastnn_lstm_fwd_f(k, G + (t * n + i) * g4, cp, C + (t * n + i) * k, H + (t * n + i) * k)
            else:
                fastnn_lstm_fwd_d(k, G + (t * n + i) * g4, cp, C + (t * n + i) * k, H + (t * n + i) * k)
            if has_mask and mask[t * n + i] == 0:  # padding: keep the state (the gates stay as computed)
                _rnn_keep_state(t, n, k, i, H)
                _rnn_keep_state(t, n, k, i, C)


cdef void _lstm_bwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                          const floating* UT, bint tiles, const floating* C, const floating* G, const floating* dH,
                          const floating* mask, bint has_mask, floating* dG, floating* carry,
                          floating* dc) noexcept nogil:
    cdef Py_ssize_t lo, hi, t, i, j, o, g4 = 4 * k
    cdef const floating* cp
    cdef floating d
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T - 1, -1, -1):
        for i in range(lo, hi):
            o = t * n + i
            if has_mask and mask[o] == 0:  # padding: the state gradients pass through to step t-1
                memset(dG + o * g4, 0, g4 * sizeof(floating))
                for j in range(k):
                    d = dH[o * k + j]
                    if t < T - 1:
                        d = d + carry[i * k + j]
                    else:
                        dc[i * k + j] = 0
                    carry[i * k + j] = d
                continue
            cp = C + (o - n) * k if t > 0 else NULL
            if floating is float:
                fastnn_lstm_bwd_f(k, t < T - 1, dH + o * k, carry + i * k, dc + i * k, G + o * g4, C + o * k,
                                  cp, dG + o * g4)
            else:
                fastnn_lstm_bwd_d(k, t < T - 1, dH + o * k, carry + i * k, dc + i * k, G + o * g4, C + o * k,
                                  cp, dG + o * g4)
        if t > 0:
            _rnn_step_gemm(hi - lo, g4, k, dG + (t * n + lo) * g4, UT, tiles, carry + lo * k)


# --------------------------------------------------------------------------- Python wrappers
# C-contiguous buffers of one float type (fastnn.kernels.cython.rnn adapts anything else and passes a
# (1, 1) mask placeholder with has_mask=False when there is no mask); nt threads (the caller's knob).

cdef int _rnn_check(Py_ssize_t got, Py_ssize_t want, str what) except -1:
    if got != want:
        raise ValueError(f"{what}: size {got}, expected {want}")
    return 0


cdef int _rnn_check_pack(const floating[::1] pack_buf, Py_ssize_t k, Py_ssize_t gates) except -1:
    if pack_buf.shape[0] < rnn_pack_size(k, gates) or pack_buf.shape[0] == 0:
        raise ValueError(f"pack_buf: size {pack_buf.shape[0]}, expected at least {max(1, rnn_pack_size(k, gates))}")
    return 0


cdef int _rnn_check_seq(const floating[:, :, ::1] A, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                        str name) except -1:
    if A.shape[0] != T or A.shape[1] != n or A.shape[2] != k:
        raise ValueError(f"{name} has shape {tuple(A.shape)[:3]}, expected {(T, n, k)}")
    return 0


cdef int _rnn_check_common(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                           const floating[:, ::1] mask, bint has_mask, Py_ssize_t k, Py_ssize_t g) except -1:
    _rnn_check(W.shape[0], X.shape[2], "W rows (the input features)")
    _rnn_check(W.shape[1], g, "W columns")
    _rnn_check(U.shape[0], k, "U rows")
    _rnn_check(U.shape[1], g, "U columns")
    if has_mask and (mask.shape[0] != X.shape[0] or mask.shape[1] != X.shape[1]):
        raise ValueError(f"mask has shape {tuple(mask.shape)[:2]}, expected (T, n) = {tuple(X.shape)[:2]}")
    return 0


def simple_rnn_forward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                       const floating[::1] b, const floating[:, ::1] mask, bint has_mask,
                       floating[:, :, ::1] H_out, floating[::1] pack_buf, int nt):
    """h_t = tanh(x_t W + h_{t-1} U + b) for every step; pack_buf: rnn_pack_size(k, 1) elements."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float
    cdef const floating* Ub
    _rnn_check_common(X, W, U, mask, has_mask, k, k)
    _rnn_check(b.shape[0], k, "b")
    _rnn_check_seq(H_out, T, n, k, "H_out")
    _rnn_check_pack(pack_buf, k, 1)
    if T * n == 0 or k == 0:
        return
    nb = _rnn_blocks(n, nt)
    Ub = &pack_buf[0] if tiles else &U[0, 0]
    with nogil:
        _rnn_pack(k, k, &U[0, 0], False, tiles, &pack_buf[0])
        for c in prange(_rnn_blocks(T * n, nt), num_threads=nt, schedule="static"):
            _rnn_project_block(c, _rnn_blocks(T * n, nt), T * n, F, k, &X[0, 0, 0], &W[0, 0], &b[0],
                               &H_out[0, 0, 0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _simple_rnn_fwd_block(c, nb, T, n, k, Ub, tiles, &mask[0, 0], has_mask, &H_out[0, 0, 0])


def simple_rnn_backward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                        const floating[:, :, ::1] H, const floating[:, :, ::1] dH, const floating[:, ::1] mask,
                        bint has_mask, floating[:, ::1] dW_out, floating[:, ::1] dU_out, floating[::1] db_out,
                        floating[:, :, ::1] dX_out, bint need_dX, floating[:, :, ::1] dZ_buf,
                        floating[:, :, ::1] dh_buf, floating[::1] pack_buf, int nt):
    """BPTT of simple_rnn_forward; dX_out is written only when need_dX; pack_buf as the forward's."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float
    _rnn_check_common(X, W, U, mask, has_mask, k, k)
    _rnn_check_seq(H, T, n, k, "H")
    _rnn_check_seq(dH, T, n, k, "dH")
    _rnn_check_seq(dZ_buf, T, n, k, "dZ_buf")
    _rnn_check_seq(dh_buf, 2, n, k, "dh_buf")
    _rnn_check(dW_out.shape[0] * dW_out.shape[1], F * k, "dW_out")
    _rnn_check(dU_out.shape[0] * dU_out.shape[1], k * k, "dU_out")
    _rnn_check(db_out.shape[0], k, "db_out")
    if need_dX:
        _rnn_check_seq(dX_out, T, n, F, "dX_out")
    _rnn_check_pack(pack_buf, k, 1)
    if T * n == 0 or k == 0:
        dW_out[...] = 0
        dU_out[...] = 0
        db_out[...] = 0
        if need_dX:
            dX_out[...] = 0
        return
    nb = _rnn_blocks(n, nt)
    with nogil:
        _rnn_pack(k, k, &U[0, 0], True, tiles, &pack_buf[0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _simple_rnn_bwd_block(c, nb, T, n, k, &pack_buf[0], tiles, &H[0, 0, 0], &dH[0, 0, 0], &mask[0, 0], has_mask,
                                  &dZ_buf[0, 0, 0], &dh_buf[0, 0, 0])
        for c in prange(nt if nt > 0 else 1, num_threads=nt, schedule="static"):
            _rnn_grads_block(c, nt if nt > 0 else 1, T, n, F, k, k, &X[0, 0, 0], &W[0, 0], &H[0, 0, 0],
                             &dZ_buf[0, 0, 0], &dZ_buf[0, 0, 0], tiles, &dW_out[0, 0], &dU_out[0, 0], &db_out[0],
                             &dX_out[0, 0, 0] if need_dX else NULL)


def lstm_forward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                 const floating[::1] b, const floating[:, ::1] mask, bint has_mask, floating[:, :, ::1] H_out,
                 floating[:, :, ::1] C_out, floating[:, :, ::1] G_out, floating[::1] pack_buf, int nt):
    """LSTM over every step; G_out keeps the activated gates i, f, g, o; pack_buf: rnn_pack_size(k, 4)."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float
    _rnn_check_common(X, W, U, mask, has_mask, k, 4 * k)
    _rnn_check(b.shape[0], 4 * k, "b")
    _rnn_check_seq(H_out, T, n, k, "H_out")
    _rnn_check_seq(C_out, T, n, k, "C_out")
    _rnn_check_seq(G_out, T, n, 4 * k, "G_out")
    _rnn_check_pack(pack_buf, k, 4)
    if T * n == 0 or k == 0:
        return
    nb = _rnn_blocks(n, nt)
    with nogil:
        if floating is float:
            if tiles:
                fastnn_pack_gates(k, &U[0, 0], &pack_buf[0])
        for c in prange(_rnn_blocks(T * n, nt), num_threads=nt, schedule="static"):
            _rnn_project_block(c, _rnn_blocks(T * n, nt), T * n, F, 4 * k, &X[0, 0, 0], &W[0, 0], &b[0],
                               &G_out[0, 0, 0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _lstm_fwd_block(c, nb, T, n, k, &U[0, 0], &pack_buf[0], tiles, &mask[0, 0], has_mask, &H_out[0, 0, 0], &C_out[0, 0, 0],
                            &G_out[0, 0, 0])


def lstm_backward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                  const floating[:, :, ::1] H, const floating[:, :, ::1] C, const floating[:, :, ::1] G,
                  const floating[:, :, ::1] dH, const floating[:, ::1] mask, bint has_mask,
                  floating[:, ::1] dW_out, floating[:, ::1] dU_out, floating[::1] db_out,
                  floating[:, :, ::1] dX_out, bint need_dX, floating[:, :, ::1] dG_buf,
                  floating[:, :, ::1] dh_buf, floating[:, ::1] dc_buf, floating[::1] pack_buf, int nt):
    """BPTT of lstm_forward; dX_out is written only when need_dX; pack_buf as the forward's."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float
    _rnn_check_common(X, W, U, mask, has_mask, k, 4 * k)
    _rnn_check_seq(H, T, n, k, "H")
    _rnn_check_seq(C, T, n, k, "C")
    _rnn_check_seq(G, T, n, 4 * k, "G")
    _rnn_check_seq(dH, T, n, k, "dH")
    _rnn_check_seq(dG_buf, T, n, 4 * k, "dG_buf")
    _rnn_check_seq(dh_buf, 2, n, k, "dh_buf")
    _rnn_check(dc_buf.shape[0] * dc_buf.shape[1], n * k, "dc_buf")
    _rnn_check(dW_out.shape[0] * dW_out.shape[1], F * 4 * k, "dW_out")
    _rnn_check(dU_out.shape[0] * dU_out.shape[1], k * 4 * k, "dU_out")
    _rnn_check(db_out.shape[0], 4 * k, "db_out")
    if need_dX:
        _rnn_check_seq(dX_out, T, n, F, "dX_out")
    _rnn_check_pack(pack_buf, k, 4)
    if T * n == 0 or k == 0:
        dW_out[...] = 0
        dU_out[...] = 0
        db_out[...] = 0
        if need_dX:
            dX_out[...] = 0
        return
    nb = _rnn_blocks(n, nt)
    with nogil:
        _rnn_pack(4 * k, k, &U[0, 0], True, tiles, &pack_buf[0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _lstm_bwd_block(c, nb, T, n, k, &pack_buf[0], tiles, &C[0, 0, 0], &G[0, 0, 0], &dH[0, 0, 0], &mask[0, 0],
                            has_mask, &dG_buf[0, 0, 0], &dh_buf[0, 0, 0], &dc_buf[0, 0])
        for c in prange(nt if nt > 0 else 1, num_threads=nt, schedule="static"):
            _rnn_grads_block(c, nt if nt > 0 else 1, T, n, F, k, 4 * k, &X[0, 0, 0], &W[0, 0], &H[0, 0, 0],
                             &dG_buf[0, 0, 0], &dG_buf[0, 0, 0], tiles, &dW_out[0, 0], &dU_out[0, 0], &db_out[0],
                             &dX_out[0, 0, 0] if need_dX else NULL)
