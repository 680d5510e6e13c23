# GRU (Keras gate order z, r, h; reset_after as Keras/PyTorch, or the original form): contract in
# fastnn/kernels/reference/rnn.py. Included by _kernels.pyx after rnn.pxi (one compile unit), whose
# helpers it shares (_rnn_span, _rnn_blocks, _rnn_project_block, _rnn_grads_block, the checks, the
# rational tanh) and whose layout and threading it follows: one block of rows per thread for every
# step, weight gradients split by output columns.

cdef extern from *:
    """
    /* GRU rows, the same way (flags constant in each always-inline body). g: the x projection
       (z r h blocks), s: h_{t-1} @ U, bh: the recurrent bias; hp (h_{t-1}) NULL at the first step. */
    #define FASTNN_GRU_CELL(T, S) \
    static inline __attribute__((always_inline)) void fastnn_gru_fwd_body_##S(Py_ssize_t k, T* restrict g, \
            const T* restrict s, const T* restrict bh, const T* restrict hp, T* restrict hh, T* restrict h, \
            const int has_hp) { \
        const T half = (T) 0.5, one = (T) 1; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T z = half + half * fastnn_tanh_##S(half * (g[j] + s[j] + bh[j])); \
            T r = half + half * fastnn_tanh_##S(half * (g[k + j] + s[k + j] + bh[k + j])); \
            T hv = s[2 * k + j] + bh[2 * k + j]; \
            T cand = fastnn_tanh_##S(g[2 * k + j] + r * hv); \
            T hpv = has_hp ? hp[j] : (T) 0; \
            hh[j] = hv; h[j] = z * hpv + (one - z) * cand; \
            g[j] = z; g[k + j] = r; g[2 * k + j] = cand; \
        } \
    } \
    /* reset_after: the whole cell of one row */ \
    static FASTNN_CLONES void fastnn_gru_fwd_##S(Py_ssize_t k, T* restrict g, const T* restrict s, \
            const T* restrict bh, const T* restrict hp, T* restrict hh, T* restrict h) { \
        if (hp) fastnn_gru_fwd_body_##S(k, g, s, bh, hp, hh, h, 1); \
        else fastnn_gru_fwd_body_##S(k, g, s, bh, hp, hh, h, 0); \
    } \
    static inline __attribute__((always_inline)) void fastnn_gru_bwd_body_##S(Py_ssize_t k, \
            const T* restrict dH, T* restrict carry, const T* restrict g, const T* restrict hh, \
            const T* restrict hp, T* restrict dgx, T* restrict dgh, const int later, const int reset_after, \
            const int has_hp) { \
        const T one = (T) 1; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T d = dH[j]; \
            if (later) d += carry[j]; \
            T z = g[j], r = g[k + j], cand = g[2 * k + j]; \
            T hpv = has_hp ? hp[j] : (T) 0; \
            T da_n = d * (one - z) * (one - cand * cand); \
            T da_z = d * (hpv - cand) * z * (one - z); \
            dgx[j] = da_z; dgh[j] = da_z; dgx[2 * k + j] = da_n; carry[j] = d * z; \
            if (reset_after) { \
                T da_r = da_n * hh[j] * r * (one - r); \
                dgx[k + j] = da_r; dgh[k + j] = da_r; dgh[2 * k + j] = da_n * r; \
            } else { \
                dgh[2 * k + j] = (T) 0; \
            } \
        } \
    } \
    /* one row of BPTT: d = dH (+ carry when `later`); gate gradients into dgx / dgh; carry = d * z \
       (without reset_after the r gradients follow, after the block's d(r * h) GEMM) */ \
    static FASTNN_CLONES void fastnn_gru_bwd_##S(Py_ssize_t k, int later, int reset_after, \
            const T* restrict dH, T* restrict carry, const T* restrict g, const T* restrict hh, \
            const T* restrict hp, T* restrict dgx, T* restrict dgh) { \
        if (hp) { \
            if (later) { \
                if (reset_after) fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 1, 1, 1); \
                else fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 1, 0, 1); \
            } else { \
                if (reset_after) fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 0, 1, 1); \
                else fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 0, 0, 1); \
            } \
        } else { \
            if (later) { \
                if (reset_after) fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 1, 1, 0); \
                else fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 1, 0, 0); \
            } else { \
                if (reset_after) fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 0, 1, 0); \
                else fastnn_gru_bwd_body_##S(k, dH, carry, g, hh, hp, dgx, dgh, 0, 0, 0); \
            } \
        } \
    }
    FASTNN_GRU_CELL(float, f)
    FASTNN_GRU_CELL(double, d)
    """
    void fastnn_gru_fwd_f(Py_ssize_t k, float* g, const float* s, const float* bh, const float* hp, float* hh,
                          float* h) noexcept nogil
    void fastnn_gru_fwd_d(Py_ssize_t k, double* g, const double* s, const double* bh, const double* hp,
                          double* hh, double* h) noexcept nogil
    void fastnn_gru_bwd_f(Py_ssize_t k, int later, int reset_after, const float* dH, float* carry, const float* g,
                          const float* hh, const float* hp, float* dgx, float* dgh) noexcept nogil
    void fastnn_gru_bwd_d(Py_ssize_t k, int later, int reset_after, const double* dH, double* carry,
                          const double* g, const double* hh, const double* hp, double* dgx,
                          double* dgh) noexcept nogil


# --------------------------------------------------------------------------- GRU
cdef void _gru_fwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                         const floating* U, const floating* Up, bint tiles, const floating* b_h, bint reset_after,
                         const floating* mask, bint has_mask, floating* H, floating* G, floating* HH,
                         floating* S) noexcept nogil:
    """Every step of block c's rows; with ``tiles`` (float32, reset_after) h_{t-1} @ U runs rnn_tiles.pxi's
    micro-kernel on ``Up`` (U packed by fastnn_pack64), else BLAS on U."""
    cdef Py_ssize_t lo, hi, t, i, j, g3 = 3 * k, o
    cdef floating z, r, cand, hp
    cdef floating* Gr
    cdef floating* Sr
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T):
        if t > 0 and not tiles:
            _gemm(c'N', c'N', <int> (hi - lo), <int> g3, <int> k, <floating> 1, H + ((t - 1) * n + lo) * k,
                  <int> k, U, <int> g3, <floating> 0, S + lo * g3, <int> g3)
        else:
            memset(S + lo * g3, 0, (hi - lo) * g3 * sizeof(floating))
            if t > 0:
                _rnn_step_gemm(hi - lo, k, g3, H + ((t - 1) * n + lo) * k, Up, tiles, S + lo * g3)
        for i in range(lo, hi):
            o = t * n + i
            Gr = G + o * g3
            Sr = S + i * g3
            if reset_after:
                if floating is float:
                    fastnn_gru_fwd_f(k, Gr, Sr, b_h, H + (o - n) * k if t > 0 else NULL, HH + o * k, H + o * k)
                else:
                    fastnn_gru_fwd_d(k, Gr, Sr, b_h, H + (o - n) * k if t > 0 else NULL, HH + o * k, H + o * k)
                continue
            for j in range(k):
                hp = H[(o - n) * k + j] if t > 0 else 0
                z = _rnn_sig(Gr[j] + Sr[j])
                r = _rnn_sig(Gr[k + j] + Sr[k + j])
                HH[o * k + j] = r * hp
                Gr[j] = z
                Gr[k + j] = r
        if not reset_after:
            # (r * h_{t-1}) @ U_h for the block's rows, into the (unused) candidate block of S
            _gemm(c'N', c'N', <int> (hi - lo), <int> k, <int> k, <floating> 1, HH + (t * n + lo) * k, <int> k,
                  U + 2 * k, <int> g3, <floating> 0, S + lo * g3 + 2 * k, <int> g3)
            for i in range(lo, hi):
                o = t * n + i
                Gr = G + o * g3
                Sr = S + i * g3
                for j in range(k):
                    hp = H[(o - n) * k + j] if t > 0 else 0
                    z = Gr[j]
                    cand = _rnn_tanh(Gr[2 * k + j] + Sr[2 * k + j])
                    H[o * k + j] = z * hp + (<floating> 1 - z) * cand
                    Gr[2 * k + j] = cand
        if has_mask:
            for i in range(lo, hi):
                if mask[t * n + i] == 0:  # padding: keep the state (the gates stay as computed)
                    _rnn_keep_state(t, n, k, i, H)


cdef void _gru_bwd_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                         const floating* UT, bint tiles, const floating* H, const floating* G, const floating* HH,
                         const floating* dH, bint reset_after, const floating* mask, bint has_mask,
                         floating* dGx, floating* dGh, floating* carry, floating* prod) noexcept nogil:
    cdef Py_ssize_t lo, hi, t, i, j, g3 = 3 * k, o
    cdef floating d, r, hp, da_r, s
    _rnn_span(n, nb, c, 1, &lo, &hi)
    if hi <= lo:
        return
    for t in range(T - 1, -1, -1):
        for i in range(lo, hi):
            o = t * n + i
            if has_mask and mask[o] == 0:  # padding: the gradient passes through to h_{t-1}
                for j in range(k):
                    d = dH[o * k + j]
                    if t < T - 1:
                        d = d + carry[i * k + j]
                    carry[i * k + j] = d
                memset(dGx + o * g3, 0, g3 * sizeof(floating))
                memset(dGh + o * g3, 0, g3 * sizeof(floating))
                continue
            if floating is float:
                fastnn_gru_bwd_f(k, t < T - 1, reset_after, dH + o * k, carry + i * k, G + o * g3, HH + o * k,
                                 H + (o - n) * k if t > 0 else NULL, dGx + o * g3, dGh + o * g3)
            else:
                fastnn_gru_bwd_d(k, t < T - 1, reset_after, dH + o * k, carry + i * k, G + o * g3, HH + o * k,
                                 H + (o - n) * k if t > 0 else NULL, dGx + o * g3, dGh + o * g3)
        if not reset_after:
            # d(r * h_{t-1}) = da_n @ U_h.T for the block's rows (padded rows: da_n = 0, skipped below)
            _gemm(c'N', c'N', <int> (hi - lo), <int> k, <int> k, <floating> 1, dGx + (t * n + lo) * g3 + 2 * k,
                  <int> g3, UT + 2 * k * k, <int> k, <floating> 0, prod + lo * k, <int> k)
            for i in range(lo, hi):
                o = t * n + i
                if has_mask and mask[o] == 0:
                    continue
                for j in range(k):
                    s = prod[i * k + j]
                    r = G[o * g3 + k + j]
                    hp = H[(o - n) * k + j] if t > 0 else 0
                    da_r = s * hp * r * (<floating> 1 - r)
                    dGx[o * g3 + k + j] = da_r
                    dGh[o * g3 + k + j] = da_r
                    carry[i * k + j] += s * r
        if t > 0:  # UT: U.T, packed by fastnn_pack64 when tiles
            _rnn_step_gemm(hi - lo, g3, k, dGh + (t * n + lo) * g3, UT, tiles, carry + lo * k)


cdef void _gru_extra_grads_block(Py_ssize_t c, Py_ssize_t nb, Py_ssize_t T, Py_ssize_t n, Py_ssize_t k,
                                 bint reset_after, bint tiles, const floating* H, const floating* HH,
                                 const floating* dGx, const floating* dGh, floating* dU,
                                 floating* db_h) noexcept nogil:
    """Columns [c0, c1) of dU (H_{<T-1}.T @ dGh_{>0}; without reset_after the candidate block is
    HH.T @ dGx over every step) and of db_h (sum dGh with reset_after, else 0)."""
    cdef Py_ssize_t g3 = 3 * k, c0, c1, a0, a1, i, j
    _rnn_span(g3, nb, c, 16, &c0, &c1)
    if c1 <= c0:
        return
    a1 = c1 if (reset_after or c1 < 2 * k) else 2 * k  # columns from the recurrent gate gradients
    if a1 > c0:
        if T > 1:
            _rnn_gemm_tn(k, a1 - c0, (T - 1) * n, H, k, dGh + n * g3 + c0, g3, tiles, dU + c0, g3)
        else:
            for i in range(k):
                memset(dU + i * g3 + c0, 0, (a1 - c0) * sizeof(floating))
    a0 = c0 if c0 > a1 else a1
    if c1 > a0:  # not reset_after: the candidate columns
        _rnn_gemm_tn(k, c1 - a0, T * n, HH, k, dGx + a0, g3, tiles, dU + a0, g3)
    for j in range(c0, c1):
        db_h[j] = 0
    if reset_after:
        for i in range(T * n):
            for j in range(c0, c1):
                db_h[j] += dGh[i * g3 + j]


def gru_forward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                const floating[::1] b, const floating[::1] b_h, bint reset_after, const floating[:, ::1] mask,
                bint has_mask, floating[:, :, ::1] H_out, floating[:, :, ::1] G_out, floating[:, :, ::1] HH_out,
                floating[:, ::1] scratch, floating[::1] pack_buf, int nt):
    """GRU over every step; G_out keeps z, r, n; HH_out the recurrent candidate term; pack_buf:
    rnn_pack_size(k, 3) elements."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float and reset_after
    _rnn_check_common(X, W, U, mask, has_mask, k, 3 * k)
    _rnn_check(b.shape[0], 3 * k, "b")
    _rnn_check(b_h.shape[0], 3 * k, "b_h")
    _rnn_check_seq(H_out, T, n, k, "H_out")
    _rnn_check_seq(G_out, T, n, 3 * k, "G_out")
    _rnn_check_seq(HH_out, T, n, k, "HH_out")
    _rnn_check(scratch.shape[0] * scratch.shape[1], n * 3 * k, "scratch")
    _rnn_check_pack(pack_buf, k, 3)
    if T * n == 0 or k == 0:
        return
    nb = _rnn_blocks(n, nt)
    with nogil:
        _rnn_pack(k, 3 * k, &U[0, 0], False, tiles, &pack_buf[0])
        for c in prange(_rnn_blocks(T * n, nt), num_threads=nt, schedule="static"):
            _rnn_project_block(c, _rnn_blocks(T * n, nt), T * n, F, 3 * k, &X[0, 0, 0], &W[0, 0], &b[0],
                               &G_out[0, 0, 0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _gru_fwd_block(c, nb, T, n, k, &U[0, 0], &pack_buf[0], tiles, &b_h[0], reset_after, &mask[0, 0], has_mask,
                           &H_out[0, 0, 0], &G_out[0, 0, 0], &HH_out[0, 0, 0], &scratch[0, 0])


def gru_backward(const floating[:, :, ::1] X, const floating[:, ::1] W, const floating[:, ::1] U,
                 const floating[:, :, ::1] H, const floating[:, :, ::1] G, const floating[:, :, ::1] HH,
                 const floating[:, :, ::1] dH, bint reset_after, const floating[:, ::1] mask, bint has_mask,
                 floating[:, ::1] dW_out, floating[:, ::1] dU_out, floating[::1] db_out, floating[::1] db_h_out,
                 floating[:, :, ::1] dX_out, bint need_dX, floating[:, :, ::1] dGx_buf,
                 floating[:, :, ::1] dGh_buf, floating[:, :, ::1] dh_buf, floating[::1] pack_buf, int nt):
    """BPTT of gru_forward; dX_out is written only when need_dX; pack_buf as the forward's."""
    cdef Py_ssize_t T = X.shape[0], n = X.shape[1], F = X.shape[2], k = U.shape[0], c, nb
    cdef bint tiles = _rnn_tiles_on and floating is float and reset_after
    cdef bint wtiles = _rnn_tiles_on and floating is float  # the weight gradients: any form
    _rnn_check_common(X, W, U, mask, has_mask, k, 3 * k)
    _rnn_check_seq(H, T, n, k, "H")
    _rnn_check_seq(G, T, n, 3 * k, "G")
    _rnn_check_seq(HH, T, n, k, "HH")
    _rnn_check_seq(dH, T, n, k, "dH")
    _rnn_check_seq(dGx_buf, T, n, 3 * k, "dGx_buf")
    _rnn_check_seq(dGh_buf, T, n, 3 * k, "dGh_buf")
    _rnn_check_seq(dh_buf, 2, n, k, "dh_buf")
    _rnn_check(dW_out.shape[0] * dW_out.shape[1], F * 3 * k, "dW_out")
    _rnn_check(dU_out.shape[0] * dU_out.shape[1], k * 3 * k, "dU_out")
    _rnn_check(db_out.shape[0], 3 * k, "db_out")
    _rnn_check(db_h_out.shape[0], 3 * k, "db_h_out")
    if need_dX:
        _rnn_check_seq(dX_out, T, n, F, "dX_out")
    _rnn_check_pack(pack_buf, k, 3)
    if T * n == 0 or k == 0:
        dW_out[...] = 0
        dU_out[...] = 0
        db_out[...] = 0
        db_h_out[...] = 0
        if need_dX:
            dX_out[...] = 0
        return
    nb = _rnn_blocks(n, nt)
    with nogil:
        _rnn_pack(3 * k, k, &U[0, 0], True, tiles, &pack_buf[0])
        for c in prange(nb, num_threads=nt, schedule="static"):
            _gru_bwd_block(c, nb, T, n, k, &pack_buf[0], tiles, &H[0, 0, 0], &G[0, 0, 0], &HH[0, 0, 0], &dH[0, 0, 0],
                           reset_after, &mask[0, 0], has_mask, &dGx_buf[0, 0, 0], &dGh_buf[0, 0, 0],
                           &dh_buf[0, 0, 0], &dh_buf[1, 0, 0])
        for c in prange(nt if nt > 0 else 1, num_threads=nt, schedule="static"):
            _rnn_grads_block(c, nt if nt > 0 else 1, T, n, F, k, 3 * k, &X[0, 0, 0], &W[0, 0], &H[0, 0, 0],
                             &dGx_buf[0, 0, 0], &dGx_buf[0, 0, 0], wtiles, &dW_out[0, 0], <floating*> NULL, &db_out[0],
                             &dX_out[0, 0, 0] if need_dX else NULL)
            _gru_extra_grads_block(c, nt if nt > 0 else 1, T, n, k, reset_after, wtiles, &H[0, 0, 0], &HH[0, 0, 0],
                                   &dGx_buf[0, 0, 0], &dGh_buf[0, 0, 0], &dU_out[0, 0], &db_h_out[0])
