# Conv and pooling rows of the compiled plan driver (fastnn/engine/plan.py; the Numba twin is
# fastnn/kernels/numba/plan_conv.py). Included by _kernels.pyx after conv.pxi and pool.pxi, whose
# per-image kernels these rows call on a shard's work blocks: im2col into the row's column block,
# one GEMM with bias and activation in its epilogue (the dense kernels), and in backward the dense
# backward on the columns plus col2im, skipped when no input gradient is needed (the first conv).
# A conv row runs in tiles of images (_conv_tile: CONV_TILE_BYTES of columns, Z, A and input-
# gradient columns) so that what im2col writes is still in L2 when the GEMM reads it, and what the
# backward GEMMs write is still there for the next pass; the weight gradient accumulates over the
# tiles. The columns (redone per backward tile, _conv_keeps_cols), dZ and the input-gradient columns
# of a tile reuse the first tile's slot of their blocks (sized for a whole shard: the Numba and
# reference drivers run the shard as one tile). A conv + bias + ReLU row followed by max pooling
# runs the pooling in its tiles (_conv_pool_fused): measured at batch 128 (2 x 64-image shards, the
# example CNN), the whole-shard Z, A, dA, dZ and column blocks streaming to memory and back were
# ~30% of an epoch's CPU time (the ReLU passes alone 15%). The forward GEMM of a float32 row runs on
# the Dense micro-kernel (gemm_tiles.pxi) with the bias and ReLU in its epilogue, so Z (and A) are
# written once: example CNN +8-11%, LeNet-5 +5-6% samples per CPU-second at 1 thread (2,048 images,
# bs 32 / 128, two alternations).
# A one-channel conv with few filters (LeNet-5's first) skips im2col and the GEMM: the direct kernels
# of conv_direct.pxi (_conv_direct: which rows), forward and weight gradient, their scratch in the
# row's columns block.
# Max pooling keeps each output's argmax as an offset h*W + w in the row's Z block, read as an
# integer of the element's width (int32 for float32, int64 for float64): no extra buffer.

from libc.stdint cimport int32_t

cdef extern from *:
    """
    /* The 2x2 / 2 windows (no padding) of float32 maps with C < 16 channels on AVX-512: the lanes are an
       output row's (wo, c) pairs, each tap one gather through a per-lane offset table (the scalar loops
       run C = 6 values per window, which measured ~20 cycles per LeNet-5 output). The same selects and
       order as the scalar loops (NaN wins, first maximum kept). Rows of at most FASTNN_POOL_LANES lanes. */
    #define FASTNN_POOL_LANES 2048
    #if FASTNN_GEMM_X86
    static FASTNN_G512 void fastnn_maxpool2x2_f512(Py_ssize_t W, Py_ssize_t C, Py_ssize_t Ho, Py_ssize_t Wo,
            const float* restrict X, float* restrict out, int32_t* restrict am) {
        const Py_ssize_t n = Wo * C, WC = W * C;
        int32_t base[FASTNN_POOL_LANES], wi[FASTNN_POOL_LANES];  /* lane (wo, c): 2*wo*C + c, and 2*wo */
        for (Py_ssize_t l = 0, wo = 0, c = 0; l < n; l++) {
            base[l] = (int32_t) (2 * wo * C + c); wi[l] = (int32_t) (2 * wo);
            if (++c == C) { c = 0; wo++; }
        }
        const __m512i vC = _mm512_set1_epi32((int) C), vWC = _mm512_set1_epi32((int) WC);
        const __m512i one = _mm512_set1_epi32(1), vW = _mm512_set1_epi32((int) W);
        for (Py_ssize_t ho = 0; ho < Ho; ho++) {
            const float* x0 = X + 2 * ho * WC;
            const __m512i row = _mm512_set1_epi32((int) (2 * ho * W));
            for (Py_ssize_t l0 = 0; l0 < n; l0 += 16) {
                const __mmask16 m = fastnn_gemm_lanes16(n - l0);
                const __m512i b = _mm512_maskz_loadu_epi32(m, base + l0);
                const __m512i i0 = _mm512_add_epi32(row, _mm512_maskz_loadu_epi32(m, wi + l0));
                __m512 cur = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, b, x0, 4), v;
                __m512i idx = i0;
                __mmask16 take;
                #define FASTNN_POOL_TAP(OFS, DI) \
                    v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, _mm512_add_epi32(b, OFS), x0, 4); \
                    take = _mm512_cmp_ps_mask(v, cur, _CMP_GT_OQ) \
                         | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(cur, cur, _CMP_ORD_Q)); \
                    cur = _mm512_mask_blend_ps(take, cur, v); \
                    idx = _mm512_mask_blend_epi32(take, idx, _mm512_add_epi32(i0, DI));
                FASTNN_POOL_TAP(vC, one)
                FASTNN_POOL_TAP(vWC, vW)
                FASTNN_POOL_TAP(_mm512_add_epi32(vWC, vC), _mm512_add_epi32(vW, one))
                #undef FASTNN_POOL_TAP
                _mm512_mask_storeu_ps(out + ho * n + l0, m, cur);
                _mm512_mask_storeu_epi32(am + ho * n + l0, m, idx);
            }
        }
    }
    /* Its backward fused with the ReLU mask (fastnn_plan_unpool_relu_2x2_*'s contract): the lanes are a
       dZ row's (w, c) pairs over the 2*Wo windowed columns, each gathering its window's gradient, winner
       and pooled value. */
    static FASTNN_G512 void fastnn_unpool_relu2x2_f512(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t Ho,
            Py_ssize_t Wo, const float* restrict dout, const int32_t* restrict am, const float* restrict out,
            float* restrict dZ) {
        const Py_ssize_t n = 2 * Wo * C;
        int32_t qi[FASTNN_POOL_LANES], wi[FASTNN_POOL_LANES];  /* lane (w, c): (w/2)*C + c, and w */
        for (Py_ssize_t l = 0, w = 0, c = 0; l < n; l++) {
            qi[l] = (int32_t) ((w / 2) * C + c); wi[l] = (int32_t) w;
            if (++c == C) { c = 0; w++; }
        }
        for (Py_ssize_t h = 0; h < 2 * Ho; h++) {
            const Py_ssize_t q0 = (h / 2) * Wo * C;
            const __m512i row = _mm512_set1_epi32((int) (h * W));
            float* z = dZ + h * W * C;
            for (Py_ssize_t l0 = 0; l0 < n; l0 += 16) {
                const __mmask16 m = fastnn_gemm_lanes16(n - l0);
                const __m512i q = _mm512_maskz_loadu_epi32(m, qi + l0);
                const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, q, dout + q0, 4);
                const __m512 o = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, q, out + q0, 4);
                const __m512i k = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, q, am + q0, 4);
                const __mmask16 keep = _mm512_cmp_ps_mask(o, _mm512_setzero_ps(), _CMP_GT_OQ)
                    & _mm512_cmpeq_epi32_mask(k, _mm512_add_epi32(row, _mm512_maskz_loadu_epi32(m, wi + l0)));
                _mm512_mask_storeu_ps(z + l0, m, _mm512_maskz_mov_ps(keep, g));
            }
            if (2 * Wo < W) memset(z + n, 0, (W - 2 * Wo) * C * sizeof(float));
        }
        if (2 * Ho < H) memset(dZ + 2 * Ho * W * C, 0, (H - 2 * Ho) * W * C * sizeof(float));
    }
    #endif
    /* Whether those two run: float32 (sizeof(T) == 4), an AVX-512 CPU, C < 16, rows that fit the tables. */
    #if FASTNN_GEMM_X86
    #define FASTNN_POOL512_CALL(call) call
    #else
    #define FASTNN_POOL512_CALL(call) ((void) 0)
    #endif
    #define FASTNN_POOL512(T, C, Wo) (FASTNN_GEMM_X86 && sizeof(T) == 4 && (C) < 16 \
        && 2 * (Wo) * (C) <= FASTNN_POOL_LANES && fastnn_cpu_isa() == FASTNN_ISA_AVX512)

    /* Max pooling of one image with the window winner's offset h*W + w as an integer of type I
       (the same select as fastnn_maxpool_image_*; NaN wins, first maximum kept). */
    #define FASTNN_MAXPOOL_IDX(T, I, S) \
    static FASTNN_CLONES void fastnn_plan_maxpool_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, \
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, \
            Py_ssize_t Ho, Py_ssize_t Wo, const T* restrict X, T* restrict out, I* restrict am) { \
        if (C < 16 && kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) { \
            if (FASTNN_POOL512(T, C, Wo)) { \
                FASTNN_POOL512_CALL(fastnn_maxpool2x2_f512(W, C, Ho, Wo, (const float*) X, (float*) out, (int32_t*) am)); \
                return; \
            } \
            /* The common 2x2 / 2 window, its four taps unrolled in the generic loop's order: with \
               few channels the window loops cost more than the selects (measured, 1 thread, CPU \
               time: LeNet-5's C = 6 epochs +8-14%; the example's C = 32 lost 4-15%, so not there). */ \
            for (Py_ssize_t ho = 0; ho < Ho; ho++) for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
                const T* restrict x0 = X + (2 * ho * W + 2 * wo) * C; \
                const T* restrict x1 = x0 + C; const T* restrict x2 = x0 + W * C; const T* restrict x3 = x2 + C; \
                T* restrict o = out + (ho * Wo + wo) * C; I* restrict a = am + (ho * Wo + wo) * C; \
                I i0 = (I) (2 * ho * W + 2 * wo); \
                for (Py_ssize_t c = 0; c < C; c++) { \
                    T cur = x0[c], v; I idx = i0; int take; \
                    v = x1[c]; take = (v > cur) | ((v != v) & (cur == cur)); cur = take ? v : cur; idx = take ? i0 + 1 : idx; \
                    v = x2[c]; take = (v > cur) | ((v != v) & (cur == cur)); cur = take ? v : cur; idx = take ? i0 + (I) W : idx; \
                    v = x3[c]; take = (v > cur) | ((v != v) & (cur == cur)); cur = take ? v : cur; idx = take ? i0 + (I) W + 1 : idx; \
                    o[c] = cur; a[c] = idx; \
                } \
            } \
            return; \
        } \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            Py_ssize_t h0 = ho * sh - ph, h1 = h0 + kh; if (h0 < 0) h0 = 0; if (h1 > H) h1 = H; \
            for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
                Py_ssize_t w0 = wo * sw - pw, w1 = w0 + kw; if (w0 < 0) w0 = 0; if (w1 > W) w1 = W; \
                T* restrict o = out + (ho * Wo + wo) * C; \
                I* restrict a = am + (ho * Wo + wo) * C; \
                const T* restrict x0 = X + (h0 * W + w0) * C; \
                I i0 = (I) (h0 * W + w0); \
                for (Py_ssize_t c = 0; c < C; c++) { o[c] = x0[c]; a[c] = i0; } \
                for (Py_ssize_t h = h0; h < h1; h++) for (Py_ssize_t w = w0; w < w1; w++) { \
                    const T* restrict x = X + (h * W + w) * C; \
                    I idx = (I) (h * W + w); \
                    for (Py_ssize_t c = 0; c < C; c++) { \
                        T v = x[c], cur = o[c]; \
                        int take = (v > cur) | ((v != v) & (cur == cur)); \
                        o[c] = take ? v : cur; \
                        a[c] = take ? idx : a[c]; \
                    } \
                } \
            } \
        } \
    } \
    static void fastnn_plan_unpool_##S(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, \
            const T* restrict dout, const I* restrict am, T* restrict dX) { \
        memset(dX, 0, HW * C * sizeof(T)); \
        for (Py_ssize_t q = 0; q < n_out; q++) for (Py_ssize_t c = 0; c < C; c++) \
            dX[(Py_ssize_t) am[q * C + c] * C + c] += dout[q * C + c]; \
    }
    FASTNN_MAXPOOL_IDX(float, int32_t, f)
    FASTNN_MAXPOOL_IDX(double, int64_t, d)

    /* A conv tile's ReLU epilogue and its backward, each one call over n rows of F values (AVX2 /
       AVX-512 clones). The dense epilogue calls a kernel per row, which at F = 6..64 filters and
       tens of thousands of rows per shard costs more than the arithmetic. The same operations in the
       same order as _bias_act + fastnn_relu_fwd and _act_bwd + fastnn_relu_bwd (db in rows order). */
    #define FASTNN_CONV_RELU(T, S) \
    static FASTNN_CLONES void fastnn_conv_bias_relu_##S(Py_ssize_t n, Py_ssize_t F, T* restrict Z, \
            const T* restrict b, T* restrict A) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            T* restrict z = Z + i * F; T* restrict a = A + i * F; \
            for (Py_ssize_t j = 0; j < F; j++) { T v = z[j] + b[j]; z[j] = v; a[j] = v < (T) 0 ? (T) 0 : v; } \
        } \
    } \
    static FASTNN_CLONES void fastnn_conv_relu_bwd_##S(Py_ssize_t n, Py_ssize_t F, const T* restrict Z, \
            const T* restrict dA, T* restrict dZ, T* restrict db) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            const T* restrict z = Z + i * F; const T* restrict g = dA + i * F; T* restrict d = dZ + i * F; \
            for (Py_ssize_t j = 0; j < F; j++) { T v = z[j] > 0 ? g[j] : (T) 0; d[j] = v; db[j] = db[j] + v; } \
        } \
    }
    FASTNN_CONV_RELU(float, f)
    FASTNN_CONV_RELU(double, d)

    /* A conv row fused with the max pooling that reads it (conv + bias + ReLU -> MaxPool2D): the
       bias + ReLU in place on the tile's Z (the pooling reads it there, in L2); in backward the
       tile's dZ straight from the pooled gradient: dZ[argmax] += dout where the pooled output is
       > 0 (the ReLU mask at the winner: the pooled value is A there, and A > 0 iff Z > 0; NaN
       fails both tests alike), else 0 -- the unpool + fastnn_conv_relu_bwd result, without the
       row's whole A and dA blocks going to memory and back. db: rows in order. */
    #define FASTNN_CONV_POOL(T, I, S) \
    static FASTNN_CLONES void fastnn_conv_bias_relu_inplace_##S(Py_ssize_t n, Py_ssize_t F, T* restrict Z, \
            const T* restrict b) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            T* restrict z = Z + i * F; \
            for (Py_ssize_t j = 0; j < F; j++) { T v = z[j] + b[j]; z[j] = v < (T) 0 ? (T) 0 : v; } \
        } \
    } \
    static FASTNN_CLONES void fastnn_plan_unpool_relu_2x2_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, \
            Py_ssize_t Ho, Py_ssize_t Wo, const T* restrict dout, const I* restrict am, const T* restrict out, \
            T* restrict dZ) { \
        if (FASTNN_POOL512(T, C, Wo)) { \
            FASTNN_POOL512_CALL(fastnn_unpool_relu2x2_f512(H, W, C, Ho, Wo, (const float*) dout, \
                                                           (const int32_t*) am, (const float*) out, (float*) dZ)); \
            return; \
        } \
        /* 2x2 windows of stride 2 without padding: each input in at most one window, so every dZ \
           value is written once (the winner's gradient or 0) -- no memset and scatter pass; the \
           row and column no window covers (odd H, W) are zeroed. */ \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            T* restrict z0 = dZ + 2 * ho * W * C; T* restrict z1 = z0 + W * C; \
            for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
                const Py_ssize_t q = (ho * Wo + wo) * C; \
                const I i0 = (I) (2 * ho * W + 2 * wo); \
                T* restrict a0 = z0 + 2 * wo * C; T* restrict a1 = a0 + C; \
                T* restrict b0 = z1 + 2 * wo * C; T* restrict b1 = b0 + C; \
                for (Py_ssize_t c = 0; c < C; c++) { \
                    const T g = out[q + c] > (T) 0 ? dout[q + c] : (T) 0; const I k = am[q + c]; \
                    a0[c] = k == i0 ? g : (T) 0; a1[c] = k == i0 + 1 ? g : (T) 0; \
                    b0[c] = k == i0 + (I) W ? g : (T) 0; b1[c] = k == i0 + (I) W + 1 ? g : (T) 0; \
                } \
            } \
            if (2 * Wo < W) { memset(z0 + 2 * Wo * C, 0, (W - 2 * Wo) * C * sizeof(T)); \
                              memset(z1 + 2 * Wo * C, 0, (W - 2 * Wo) * C * sizeof(T)); } \
        } \
        if (2 * Ho < H) memset(dZ + 2 * Ho * W * C, 0, (H - 2 * Ho) * W * C * sizeof(T)); \
    } \
    static void fastnn_plan_unpool_relu_##S(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, \
            const T* restrict dout, const I* restrict am, const T* restrict out, T* restrict dZ) { \
        memset(dZ, 0, HW * C * sizeof(T)); \
        for (Py_ssize_t q = 0; q < n_out; q++) for (Py_ssize_t c = 0; c < C; c++) \
            dZ[(Py_ssize_t) am[q * C + c] * C + c] += out[q * C + c] > (T) 0 ? dout[q * C + c] : (T) 0; \
    } \
    static FASTNN_CLONES void fastnn_conv_row_sums_##S(Py_ssize_t n, Py_ssize_t F, const T* restrict dZ, \
            T* restrict db) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            const T* restrict d = dZ + i * F; \
            for (Py_ssize_t j = 0; j < F; j++) db[j] = db[j] + d[j]; \
        } \
    }
    FASTNN_CONV_POOL(float, int32_t, f)
    FASTNN_CONV_POOL(double, int64_t, d)
    """
    void fastnn_plan_maxpool_f(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                               Py_ssize_t Wo, const float* X, float* out, int32_t* am) noexcept nogil
    void fastnn_plan_maxpool_d(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                               Py_ssize_t Wo, const double* X, double* out, int64_t* am) noexcept nogil
    void fastnn_plan_unpool_f(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, const float* dout,
                              const int32_t* am, float* dX) noexcept nogil
    void fastnn_plan_unpool_d(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, const double* dout,
                              const int64_t* am, double* dX) noexcept nogil
    void fastnn_conv_bias_relu_f(Py_ssize_t n, Py_ssize_t F, float* Z, const float* b, float* A) noexcept nogil
    void fastnn_conv_bias_relu_d(Py_ssize_t n, Py_ssize_t F, double* Z, const double* b, double* A) noexcept nogil
    void fastnn_conv_relu_bwd_f(Py_ssize_t n, Py_ssize_t F, const float* Z, const float* dA, float* dZ,
                                float* db) noexcept nogil
    void fastnn_conv_relu_bwd_d(Py_ssize_t n, Py_ssize_t F, const double* Z, const double* dA, double* dZ,
                                double* db) noexcept nogil
    void fastnn_conv_bias_relu_inplace_f(Py_ssize_t n, Py_ssize_t F, float* Z, const float* b) noexcept nogil
    void fastnn_conv_bias_relu_inplace_d(Py_ssize_t n, Py_ssize_t F, double* Z, const double* b) noexcept nogil
    void fastnn_plan_unpool_relu_f(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, const float* dout,
                                   const int32_t* am, const float* out, float* dZ) noexcept nogil
    void fastnn_plan_unpool_relu_d(Py_ssize_t HW, Py_ssize_t C, Py_ssize_t n_out, const double* dout,
                                   const int64_t* am, const double* out, double* dZ) noexcept nogil
    void fastnn_plan_unpool_relu_2x2_f(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t Ho, Py_ssize_t Wo,
                                       const float* dout, const int32_t* am, const float* out, float* dZ) noexcept nogil
    void fastnn_plan_unpool_relu_2x2_d(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t Ho, Py_ssize_t Wo,
                                       const double* dout, const int64_t* am, const double* out,
                                       double* dZ) noexcept nogil
    void fastnn_conv_row_sums_f(Py_ssize_t n, Py_ssize_t F, const float* dZ, float* db) noexcept nogil
    void fastnn_conv_row_sums_d(Py_ssize_t n, Py_ssize_t F, const double* dZ, double* db) noexcept nogil


cdef inline bint _is_image_op(int64_t op) noexcept nogil:
    return op == OP_CONV2D or op == OP_MAXPOOL2D or op == OP_AVGPOOL2D


# CONV_TILE_BYTES comes from fastnn/kernels/codes.py (via _codes.pxi); fastnn.kernels.tiling holds
# the same rule in Python, for the Numba rows and the benchmarks.


cdef inline Py_ssize_t _conv_tile(const int64_t* r, Py_ssize_t m, Py_ssize_t itemsize) noexcept nogil:
    """Images per tile of a conv row: as many as keep a tile's columns, Z, A and input-gradient
    columns within CONV_TILE_BYTES (L2-resident from im2col to the GEMMs), at least one."""
    cdef Py_ssize_t HoWo = r[P_HO] * r[P_WO], K = r[P_KH] * r[P_KW] * r[P_C], F = r[P_N_OUT] // HoWo
    cdef Py_ssize_t per = HoWo * (2 * K + 2 * F) * itemsize
    return max(1, min(m, CONV_TILE_BYTES // per))


cdef inline bint _conv_keeps_cols(const int64_t* r) noexcept nogil:
    """Whether conv row r keeps a whole shard's im2col columns for the weight gradient (else each
    backward tile redoes its im2col into the first tile's slot). Kept when im2col copies value by
    value (a patch row of kw * C <= 16 values, a first layer's C = 1): a second pass costs more
    than reading the columns back. Patch rows of memcpy's are cheaper to redo in L2 than to read
    back from memory (a 64-image shard of the example's second conv keeps 8.9 MB of columns)."""
    return r[P_KW] * r[P_C] <= 16


cdef inline bint _conv_direct(const int64_t* r, Py_ssize_t m, Py_ssize_t itemsize) noexcept nogil:
    """Whether conv row r on a shard of m images runs as a direct convolution (conv_direct.pxi) instead of
    im2col + GEMM: one input channel, column stride 1, at most 8 filters (at most half of the GEMM's
    16-lane register tile used; measured with F = 6, LeNet-5's first conv), a linear or ReLU activation,
    and the kernels' scratch fits the row's columns block (unused on this path). Forward and backward of
    a step ask alike."""
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], Ho = r[P_HO], Wo = r[P_WO], F = r[P_N_OUT] // (r[P_HO] * r[P_WO])
    return (_conv_direct_on and r[P_C] == 1 and r[P_SW] == 1 and r[P_COLS] >= 0 and F <= 8
            and (r[P_ACT] == ACT_RELU or r[P_ACT] == ACT_LINEAR)
            and fastnn_cdir_scratch(itemsize, kh, kw, r[P_SH], Ho, Wo, F) <= m * Ho * Wo * kh * kw)


cdef inline bint _conv_pool_fused(const int64_t* r, const int64_t* nxt) noexcept nogil:
    """Whether conv row r runs the max pooling of the row after it (nxt, NULL for none) in its tiles:
    a conv with bias + ReLU whose output only that pooling reads (the plan is a chain)."""
    return (nxt != NULL and r[P_OP] == OP_CONV2D and r[P_ACT] == ACT_RELU and r[P_PARAM1] >= 0
            and nxt[P_OP] == OP_MAXPOOL2D and nxt[P_IN] == r[P_OUT])


cdef inline void _maxpool_images(const int64_t* p, const floating* X, floating* wb, Py_ssize_t b0,
                                 Py_ssize_t t) noexcept nogil:
    """Max pooling row p on images b0 .. b0+t-1 of its output, read from X (image b0 first): the
    output and its argmax offsets in the row's Z block."""
    cdef Py_ssize_t H = p[P_H], W = p[P_W], C = p[P_C], Ho = p[P_HO], Wo = p[P_WO]
    cdef Py_ssize_t kh = p[P_KH], kw = p[P_KW], sh = p[P_SH], sw = p[P_SW], ph = p[P_PH], pw = p[P_PW]
    cdef Py_ssize_t b, n_img = H * W * C, n_out = p[P_N_OUT]
    for b in range(t):
        if floating is float:
            fastnn_plan_maxpool_f(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img,
                                  wb + p[P_OUT] + (b0 + b) * n_out, <int32_t*> (wb + p[P_Z]) + (b0 + b) * n_out)
        else:
            fastnn_plan_maxpool_d(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img,
                                  wb + p[P_OUT] + (b0 + b) * n_out, <int64_t*> (wb + p[P_Z]) + (b0 + b) * n_out)


cdef void _conv_forward(const int64_t* r, double alpha, const floating* params, floating* wb,
                        Py_ssize_t m, const int64_t* pool) noexcept nogil:
    """Conv forward in tiles of images: im2col of a tile into the first tile's slot of the columns
    block (backward recomputes it), then its GEMM with bias and activation while the columns are
    in cache; with ``pool`` (a fused max pooling row, else NULL) the tile's Z is bias + ReLU'd in
    place in the first tile's slot of the Z block and pooled there: the row's A block is not used."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t K = kh * kw * C, HoWo = Ho * Wo, F = r[P_N_OUT] // HoWo, n_img = H * W * C
    cdef Py_ssize_t T = _conv_tile(r, m, sizeof(floating)), b0, b, t
    cdef bint pointwise = r[P_COLS] < 0
    cdef const floating* X = wb + r[P_IN]
    cdef const floating* bias = params + r[P_PARAM1] if r[P_PARAM1] >= 0 else NULL
    cdef bint tiled
    cdef bint relu = r[P_ACT] == ACT_RELU and bias != NULL, keep = _conv_keeps_cols(r)
    cdef bint direct = _conv_direct(r, m, sizeof(floating))
    cdef floating* cols
    cdef floating* Z
    cdef floating* A
    if direct:
        _cdir_prepare(kh, kw, sh, Ho, Wo, F, params + r[P_PARAM0], bias, wb + r[P_COLS])
    b0 = 0
    while b0 < m:
        t = min(T, m - b0)
        if direct:  # no columns: the block is the kernel's scratch
            Z = wb + r[P_Z] + (0 if pool != NULL else b0 * HoWo * F)
            _cdir_forward(t, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X + b0 * n_img, params + r[P_PARAM0], bias,
                          r[P_ACT] == ACT_RELU, wb + r[P_COLS], Z, Z if pool != NULL else wb + r[P_OUT] + b0 * HoWo * F)
            if pool != NULL:
                _maxpool_images(pool, Z, wb, b0, t)
            b0 += t
            continue
        if pointwise:
            cols = wb + r[P_IN] + b0 * n_img  # a 1x1 kernel: the columns are the input
        else:
            cols = wb + r[P_COLS] + (b0 * HoWo * K if keep else 0)
            for b in range(t):
                _im2col_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + (b0 + b) * n_img, cols + b * HoWo * K)
        Z = wb + r[P_Z] + (0 if pool != NULL else b0 * HoWo * F)
        A = wb + r[P_OUT] + b0 * HoWo * F
        if relu:
            tiled = False
            if floating is float:
                if _gemm_isa != FASTNN_ISA_NONE and t * HoWo > 1:
                    # the Dense micro-kernel, bias + ReLU in its epilogue: Z (and A) written once
                    fastnn_gemm_f(_gemm_isa, t * HoWo, F, K, cols, K, 1, params + r[P_PARAM0], F, bias,
                                  FASTNN_EPI_RELU, 0, Z, F, Z if pool != NULL else A, F)
                    tiled = True
            if not tiled:
                _gemm(c'N', c'N', <int> (t * HoWo), <int> F, <int> K, <floating> 1, cols, <int> K,
                      params + r[P_PARAM0], <int> F, <floating> 0, Z, <int> F)
            if pool != NULL:
                if tiled:
                    pass
                elif floating is float:
                    fastnn_conv_bias_relu_inplace_f(t * HoWo, F, Z, bias)
                else:
                    fastnn_conv_bias_relu_inplace_d(t * HoWo, F, Z, bias)
                _maxpool_images(pool, Z, wb, b0, t)
            elif tiled:
                pass
            elif floating is float:
                fastnn_conv_bias_relu_f(t * HoWo, F, Z, bias, A)
            else:
                fastnn_conv_bias_relu_d(t * HoWo, F, Z, bias, A)
        else:  # float32 on the Dense micro-kernel (its bias / ReLU-family epilogue), else BLAS
            _dense_fwd_tiled(t * HoWo, K, F, cols, K, params + r[P_PARAM0], F, bias, <int> r[P_ACT],
                             <floating> alpha, Z, F, A, F)
        b0 += t


cdef void _conv_backward(const int64_t* r, double alpha, const floating* params, floating* g,
                         const int64_t* wofs, floating* wb, floating* dA, floating* dX,
                         Py_ssize_t m, const int64_t* pool) noexcept nogil:
    """Conv backward in the forward's tiles: per tile the columns again (im2col into the first
    tile's slot: cheaper than keeping a whole shard's columns, which spill L2 and L3 between
    forward and backward), dZ into the first tile's slot of the W_DZ block, the bias gradient, the
    weight gradient accumulated over the tiles (beta = 1 after the first), the tile's input-gradient
    columns (one tile-sized block) and their col2im, each while the tile is in cache.

    With ``pool`` (the fused max pooling row) dZ comes from the pooling's output gradient, which
    sits in this row's dX block (the pooling row's dA): each tile reads its images' part of it
    before its col2im writes theirs, and the tiles run in the order in which no col2im overwrites
    an image still to be read -- last to first when an input image is at least as large as a
    pooled one (col2im of image b then writes only where images >= b kept theirs), else first to
    last."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t K = r[P_KH] * r[P_KW] * r[P_C], HoWo = Ho * Wo, F = r[P_N_OUT] // HoWo, n_img = H * W * C
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t T = _conv_tile(r, m, sizeof(floating)), n_tiles = (m + T - 1) // T, k, b0, b, t, rows
    cdef Py_ssize_t n_po = pool[P_N_OUT] if pool != NULL else 0
    cdef bint need = r[P_NEED_DX] != 0, pointwise = r[P_COLS] < 0
    cdef bint backwards = pool != NULL and need and n_img >= n_po, keep = _conv_keeps_cols(r)
    cdef bint direct = _conv_direct(r, m, sizeof(floating))
    cdef bint pool_2x2 = pool != NULL and pool[P_KH] == 2 and pool[P_KW] == 2 and pool[P_SH] == 2 \
        and pool[P_SW] == 2 and pool[P_PH] == 0 and pool[P_PW] == 0
    cdef int act = <int> r[P_ACT]
    cdef const floating* X = wb + r[P_IN]
    cdef const floating* Wt = params + r[P_PARAM0]
    cdef floating* dW = g + r[P_PARAM0]
    cdef floating* db = g + r[P_PARAM1] if r[P_PARAM1] >= 0 else NULL
    cdef floating* cols
    cdef floating* dcols
    cdef floating* dZ
    if db != NULL:
        for b in range(F):
            db[b] = 0
    for k in range(n_tiles):
        b0 = (n_tiles - 1 - k if backwards else k) * T
        t = min(T, m - b0)
        rows = t * HoWo
        if direct:
            cols = NULL  # the weight gradient comes from the input itself
        elif pointwise:
            cols = wb + r[P_IN] + b0 * n_img
        elif keep:
            cols = wb + r[P_COLS] + b0 * HoWo * K
        else:
            cols = wb + r[P_COLS]
            for b in range(t):
                _im2col_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + (b0 + b) * n_img, cols + b * HoWo * K)
        dZ = dA + b0 * HoWo * F if act == ACT_LINEAR else wb + wofs[W_DZ]
        if pool != NULL:
            for b in range(t):
                if floating is float:
                    if pool_2x2:
                        fastnn_plan_unpool_relu_2x2_f(Ho, Wo, F, pool[P_HO], pool[P_WO], dX + (b0 + b) * n_po,
                                                      <int32_t*> (wb + pool[P_Z]) + (b0 + b) * n_po,
                                                      wb + pool[P_OUT] + (b0 + b) * n_po, dZ + b * HoWo * F)
                    else:
                        fastnn_plan_unpool_relu_f(HoWo, F, n_po // F, dX + (b0 + b) * n_po,
                                                  <int32_t*> (wb + pool[P_Z]) + (b0 + b) * n_po,
                                                  wb + pool[P_OUT] + (b0 + b) * n_po, dZ + b * HoWo * F)
                elif pool_2x2:
                    fastnn_plan_unpool_relu_2x2_d(Ho, Wo, F, pool[P_HO], pool[P_WO], dX + (b0 + b) * n_po,
                                                  <int64_t*> (wb + pool[P_Z]) + (b0 + b) * n_po,
                                                  wb + pool[P_OUT] + (b0 + b) * n_po, dZ + b * HoWo * F)
                else:
                    fastnn_plan_unpool_relu_d(HoWo, F, n_po // F, dX + (b0 + b) * n_po,
                                              <int64_t*> (wb + pool[P_Z]) + (b0 + b) * n_po,
                                              wb + pool[P_OUT] + (b0 + b) * n_po, dZ + b * HoWo * F)
            if floating is float:
                fastnn_conv_row_sums_f(rows, F, dZ, db)
            else:
                fastnn_conv_row_sums_d(rows, F, dZ, db)
        elif act == ACT_RELU and db != NULL:
            if floating is float:
                fastnn_conv_relu_bwd_f(rows, F, wb + r[P_Z] + b0 * HoWo * F, dA + b0 * HoWo * F, dZ, db)
            else:
                fastnn_conv_relu_bwd_d(rows, F, wb + r[P_Z] + b0 * HoWo * F, dA + b0 * HoWo * F, dZ, db)
        else:
            _act_bwd(rows, F, wb + r[P_Z] + b0 * HoWo * F, F, wb + r[P_OUT] + b0 * HoWo * F, F,
                     dA + b0 * HoWo * F, F, act, <floating> alpha, dZ, F, NULL)
            if db != NULL:  # rows in order, as _act_bwd sums them
                if floating is float:
                    fastnn_conv_row_sums_f(rows, F, dZ, db)
                else:
                    fastnn_conv_row_sums_d(rows, F, dZ, db)
        if direct:  # per-lane sums in the columns block, folded into dW after the last tile
            _cdir_dw_accum(t, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X + b0 * n_img, dZ, k == 0, wb + r[P_COLS])
        else:
            _gemm(c'T', c'N', <int> K, <int> F, <int> rows, <floating> 1, cols, <int> K, dZ, <int> F,
                  <floating> (0 if k == 0 else 1), dW, <int> F)
        if need:
            dcols = dX + b0 * n_img if pointwise else wb + wofs[W_DCOLS]
            _gemm(c'N', c'T', <int> rows, <int> K, <int> F, <floating> 1, dZ, <int> F, Wt, <int> F,
                  <floating> 0, dcols, <int> K)
            if not pointwise:
                for b in range(t):
                    _col2im_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, dcols + b * HoWo * K,
                                  dX + (b0 + b) * n_img)
    if direct:
        _cdir_dw_fold(kh, kw, sh, Ho, Wo, F, wb + r[P_COLS], dW)


cdef void _plan_image_forward(const int64_t* r, const int64_t* prv, const int64_t* nxt, double alpha,
                              const floating* params, floating* wb, Py_ssize_t m) noexcept nogil:
    """Forward of a conv / pool plan row on the shard's m rows (prv, nxt: the rows before and after
    it, NULL at the ends): a max pooling fused into the conv before it runs there."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t b, n_img = H * W * C, n_out = r[P_N_OUT]
    cdef const floating* X = wb + r[P_IN]
    if r[P_OP] == OP_CONV2D:
        _conv_forward(r, alpha, params, wb, m, nxt if _conv_pool_fused(r, nxt) else NULL)
    elif r[P_OP] == OP_MAXPOOL2D:
        if prv == NULL or not _conv_pool_fused(prv, r):
            _maxpool_images(r, X, wb, 0, m)
    else:
        for b in range(m):
            _avgpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img, wb + r[P_OUT] + b * n_out, False)


cdef void _plan_image_backward(const int64_t* r, const int64_t* prv, const int64_t* nxt, double alpha,
                               const floating* params, floating* g, const int64_t* wofs, floating* wb,
                               floating* dA, floating* dX, Py_ssize_t m) noexcept nogil:
    """Backward of a conv / pool plan row: parameter gradients into g, the input gradient into dX
    when the row needs one (dA: the row's output gradient); a fused max pooling's backward runs in
    the conv row before it."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t b, n_img = H * W * C, n_out = r[P_N_OUT]
    cdef bint need = r[P_NEED_DX] != 0
    if r[P_OP] == OP_CONV2D:
        _conv_backward(r, alpha, params, g, wofs, wb, dA, dX, m, nxt if _conv_pool_fused(r, nxt) else NULL)
    elif not need or (r[P_OP] == OP_MAXPOOL2D and prv != NULL and _conv_pool_fused(prv, r)):
        pass
    elif r[P_OP] == OP_MAXPOOL2D:
        for b in range(m):
            if floating is float:
                fastnn_plan_unpool_f(H * W, C, Ho * Wo, dA + b * n_out, <int32_t*> (wb + r[P_Z]) + b * n_out,
                                     dX + b * n_img)
            else:
                fastnn_plan_unpool_d(H * W, C, Ho * Wo, dA + b * n_out, <int64_t*> (wb + r[P_Z]) + b * n_out,
                                     dX + b * n_img)
    else:
        for b in range(m):
            _avgpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, dA + b * n_out, dX + b * n_img, True)


cdef bint _plan_image_row_ok(const int64_t* r, Py_ssize_t cap, int64_t S, int64_t P, const int64_t* wofs,
                             bint need) noexcept nogil:
    """Geometry and offsets of a conv / pool row are consistent with its widths and buffers."""
    cdef int64_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO], K, F
    cdef int64_t kh = r[P_KH], kw = r[P_KW]
    if H <= 0 or W <= 0 or C <= 0 or Ho <= 0 or Wo <= 0 or kh <= 0 or kw <= 0 or r[P_SH] <= 0 \
            or r[P_SW] <= 0 or r[P_PH] < 0 or r[P_PW] < 0 or r[P_PH] >= kh or r[P_PW] >= kw \
            or (Ho - 1) * r[P_SH] - r[P_PH] >= H or (Wo - 1) * r[P_SW] - r[P_PW] >= W \
            or r[P_N_IN] != H * W * C or r[P_N_OUT] % (Ho * Wo) != 0:
        return False
    F = r[P_N_OUT] // (Ho * Wo)
    K = kh * kw * C
    if r[P_OP] != OP_CONV2D:
        return F == C
    if not (_span_ok(r[P_PARAM0], K * F, P) and (r[P_PARAM1] < 0 or _span_ok(r[P_PARAM1], F, P))):
        return False
    if r[P_COLS] < 0:  # a 1x1 kernel reads its input as the columns
        return kh == 1 and kw == 1 and r[P_SH] == 1 and r[P_SW] == 1 and r[P_PH] == 0 and r[P_PW] == 0
    return _span_ok(r[P_COLS], cap * Ho * Wo * K, S) and (not need or _span_ok(wofs[W_DCOLS], cap * Ho * Wo * K, S))


def conv_runs_direct(const int64_t[::1] row, Py_ssize_t m, Py_ssize_t itemsize):
    """Whether the driver runs the conv plan row ``row`` on a shard of ``m`` rows (elements of
    ``itemsize`` bytes) as a direct convolution (csrc/conv_direct.pxi): for tests that check the path."""
    if row.shape[0] != N_PCOL or row[P_OP] != OP_CONV2D or m < 1 or itemsize < 1:
        raise ValueError("conv_runs_direct needs a conv plan row, m >= 1 and itemsize >= 1")
    return _conv_direct(&row[0], m, itemsize)


def conv_tile_images(const int64_t[::1] row, Py_ssize_t m, Py_ssize_t itemsize):
    """Images per tile the driver uses for the conv plan row ``row`` on a shard of ``m`` rows
    (elements of ``itemsize`` bytes): for tests that must reach several tiles."""
    if row.shape[0] != N_PCOL or row[P_OP] != OP_CONV2D or m < 1 or itemsize < 1:
        raise ValueError("conv_tile_images needs a conv plan row, m >= 1 and itemsize >= 1")
    return _conv_tile(&row[0], m, itemsize)
