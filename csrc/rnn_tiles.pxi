# The per-step recurrent GEMM of the float32 cells as a register-blocked AVX-512 micro-kernel on a
# weight matrix packed once per call (included by _kernels.pyx before rnn.pxi, which uses it).
#
# Why not BLAS: each step multiplies a thread's 32-64 rows by U (128 x 512 for LSTM(128)); OpenBLAS
# repacks U on every such call and writes the product before a separate pass applies the gates. Here U
# is packed once per call into panels of 64 columns, and one tile of MR rows x 64 columns accumulates in
# 24 zmm registers over the whole reduction, starting from the values already in the output (the
# step's input projection, or the carried gradient): no packing per step, no beta pass, and for the
# LSTM forward the four gates of 16 units sit in one tile, so the cell (sigmoid, tanh, c, h) is applied
# while they are still in registers. Every row runs the same instruction sequence whatever the tile,
# block or thread count (a short tile is the same code with fewer rows), so results do not depend on
# the thread count. x86-64 float32 only, the ISA checked at run time: AVX-512F, else AVX2+FMA (below: the
# same packed layouts read as 16- or 8-wide halves, so one packing serves both), else -- and for float64 --
# the cells call BLAS as before.

cdef extern from *:
    """
    #if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    #include <immintrin.h>
    #define FASTNN_TILES 1
    #define FASTNN_AVX512 __attribute__((target("avx512f")))
    #define FASTNN_MR 6  /* rows per tile: 6 x 4 accumulators + 4 panel vectors of the 32 zmm registers */

    /* The one the entry points below dispatch to (rnn_tiles_isa sets it; 0 is never read: the cells call
       BLAS then). A process-wide setting: tests and benchmarks switch it between calls. */
    static int fastnn_tiles_isa = 0;
    /* fastnn_tanh_f (activations.pxi) on 16 lanes, the same rational approximation; NaN propagates
       (max/min return their second operand when one is NaN). */
    static inline __attribute__((always_inline)) FASTNN_AVX512 __m512 fastnn_tanh16(__m512 x) {
        const __m512 clamp = _mm512_set1_ps(7.90531110763549805f);
        __m512 y = _mm512_min_ps(clamp, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), clamp), x));
        __m512 x2 = _mm512_mul_ps(y, y);
        __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.76076847742355e-16f), _mm512_set1_ps(2.00018790482477e-13f));
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-8.60467152213735e-11f));
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(5.12229709037114e-08f));
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(1.48572235717979e-05f));
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(6.37261928875436e-04f));
        p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(4.89352455891786e-03f));
        p = _mm512_mul_ps(y, p);
        __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.19825839466702e-06f), _mm512_set1_ps(1.18534705686654e-04f));
        q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(2.26843463243900e-03f));
        q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(4.89352518554385e-03f));
        __mmask16 small = _mm512_cmp_ps_mask(_mm512_abs_ps(y), _mm512_set1_ps(0.0004f), _CMP_LT_OQ);
        return _mm512_mask_blend_ps(small, _mm512_div_ps(p, q), y);
    }
    static inline __attribute__((always_inline)) FASTNN_AVX512 __m512 fastnn_sigmoid16(__m512 x) {
        const __m512 half = _mm512_set1_ps(0.5f);
        return _mm512_fmadd_ps(half, fastnn_tanh16(_mm512_mul_ps(half, x)), half);
    }
    /* One tile: out[m][q*qs + j] += sum_r A[m*sam + r*sar] * B[r*ldb + 16q + j] (m < mr, j < 16 where mk[q]
       has the bit; B packed: ldb = 64), then with `lstm` the cell on the four gate vectors (q = i, f, g, o of 16 units):
       out <- activated gates, c = f*cp + i*g, h = o*tanh(c) (rows ldh apart). mr and lstm are
       constants in each caller's switch, so the accumulators stay in registers. */
    static inline __attribute__((always_inline)) FASTNN_AVX512 void fastnn_tile(const int mr, const int lstm,
            Py_ssize_t K, const float* restrict A, Py_ssize_t sam, Py_ssize_t sar, const float* restrict B,
            Py_ssize_t ldb, float* restrict out, Py_ssize_t ldo, Py_ssize_t qs, const __mmask16* mk,
            const float* restrict cp, float* restrict c, float* restrict h, Py_ssize_t ldh) {
        __m512 acc[FASTNN_MR][4];
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++) acc[m][q] = _mm512_maskz_loadu_ps(mk[q], out + m * ldo + q * qs);
        }
        for (Py_ssize_t r = 0; r < K; r++) {
            const float* b = B + r * ldb;
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32),
                   b3 = _mm512_loadu_ps(b + 48);
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m512 a = _mm512_set1_ps(A[m * sam + r * sar]);
                acc[m][0] = _mm512_fmadd_ps(a, b0, acc[m][0]);
                acc[m][1] = _mm512_fmadd_ps(a, b1, acc[m][1]);
                acc[m][2] = _mm512_fmadd_ps(a, b2, acc[m][2]);
                acc[m][3] = _mm512_fmadd_ps(a, b3, acc[m][3]);
            }
        }
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            if (lstm) {
                __m512 ig = fastnn_sigmoid16(acc[m][0]), fg = fastnn_sigmoid16(acc[m][1]);
                __m512 gg = fastnn_tanh16(acc[m][2]), og = fastnn_sigmoid16(acc[m][3]);
                __m512 cc = _mm512_fmadd_ps(fg, _mm512_maskz_loadu_ps(mk[0], cp + m * ldh), _mm512_mul_ps(ig, gg));
                _mm512_mask_storeu_ps(c + m * ldh, mk[0], cc);
                _mm512_mask_storeu_ps(h + m * ldh, mk[0], _mm512_mul_ps(og, fastnn_tanh16(cc)));
                acc[m][0] = ig; acc[m][1] = fg; acc[m][2] = gg; acc[m][3] = og;
            }
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(out + m * ldo + q * qs, mk[q], acc[m][q]);
        }
    }
    #define FASTNN_TILE_CASES(LSTM) \
        switch (mr) { \
        case 1: fastnn_tile(1, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        case 2: fastnn_tile(2, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        case 3: fastnn_tile(3, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        case 4: fastnn_tile(4, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        case 5: fastnn_tile(5, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        default: fastnn_tile(6, LSTM, K, A, sam, sar, B, ldb, out, ldo, qs, mk, cp, c, h, ldh); break; \
        }
    static FASTNN_AVX512 void fastnn_tile_gemm(int mr, Py_ssize_t K, const float* A, Py_ssize_t sam, Py_ssize_t sar,
            const float* B, Py_ssize_t ldb, float* out, Py_ssize_t ldo, Py_ssize_t qs, const __mmask16* mk) {
        const float* cp = 0; float* c = 0; float* h = 0; Py_ssize_t ldh = 0;
        FASTNN_TILE_CASES(0)
    }
    static FASTNN_AVX512 void fastnn_tile_lstm(int mr, Py_ssize_t K, const float* A, Py_ssize_t sam, Py_ssize_t sar,
            const float* B, Py_ssize_t ldb, float* out, Py_ssize_t ldo, Py_ssize_t qs, const __mmask16* mk,
            const float* cp, float* c, float* h, Py_ssize_t ldh) {
        FASTNN_TILE_CASES(1)
    }
    static inline __mmask16 fastnn_lanes(Py_ssize_t n) { return n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1u); }

    /* ---- The AVX2+FMA variant: 16 ymm registers. The GEMM tile is MR8 = 6 rows x 16 columns (12
       accumulators, 2 panel vectors, 1 broadcast), a quarter of a 64-column panel; the LSTM tile is 3 rows x
       the four gates of 8 units (12 accumulators; each panel vector is loaded once per reduction row and
       used by the three rows' broadcasts), half of a 16-unit gate panel. Same packed layouts, same order
       of the sums per element as the AVX-512 tiles: the two ISAs give the same numbers. */
    #define FASTNN_AVX2 __attribute__((target("avx2,fma")))
    #define FASTNN_MR8 6
    #define FASTNN_MR8_LSTM 3
    static inline __attribute__((always_inline)) FASTNN_AVX2 __m256i fastnn_lanes8(Py_ssize_t n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32((int) (n < 0 ? 0 : n > 8 ? 8 : n)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    /* fastnn_tanh16 on 8 lanes (the same operations, so the same results) */
    static inline __attribute__((always_inline)) FASTNN_AVX2 __m256 fastnn_tanh8(__m256 x) {
        const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
        __m256 y = _mm256_min_ps(clamp, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), clamp), x));
        __m256 x2 = _mm256_mul_ps(y, y);
        __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.76076847742355e-16f), _mm256_set1_ps(2.00018790482477e-13f));
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-8.60467152213735e-11f));
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(5.12229709037114e-08f));
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(1.48572235717979e-05f));
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(6.37261928875436e-04f));
        p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(4.89352455891786e-03f));
        p = _mm256_mul_ps(y, p);
        __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.19825839466702e-06f), _mm256_set1_ps(1.18534705686654e-04f));
        q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(2.26843463243900e-03f));
        q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(4.89352518554385e-03f));
        __m256 small = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), y), _mm256_set1_ps(0.0004f), _CMP_LT_OQ);
        return _mm256_blendv_ps(_mm256_div_ps(p, q), y, small);
    }
    static inline __attribute__((always_inline)) FASTNN_AVX2 __m256 fastnn_sigmoid8(__m256 x) {
        const __m256 half = _mm256_set1_ps(0.5f);
        return _mm256_fmadd_ps(half, fastnn_tanh8(_mm256_mul_ps(half, x)), half);
    }
    /* out[m][j] += sum_r A[m*sam + r*sar] * B[r*ldb + j] for m < mr, j < 16 (lanes of m0 | m1) */
    static inline __attribute__((always_inline)) FASTNN_AVX2 void fastnn_tile8_gemm(const int mr, Py_ssize_t K,
            const float* restrict A, Py_ssize_t sam, Py_ssize_t sar, const float* restrict B, Py_ssize_t ldb,
            float* restrict out, Py_ssize_t ldo, __m256i m0, __m256i m1) {
        __m256 acc[FASTNN_MR8][2];
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            acc[m][0] = _mm256_maskload_ps(out + m * ldo, m0);
            acc[m][1] = _mm256_maskload_ps(out + m * ldo + 8, m1);
        }
        for (Py_ssize_t r = 0; r < K; r++) {
            __m256 b0 = _mm256_loadu_ps(B + r * ldb), b1 = _mm256_loadu_ps(B + r * ldb + 8);
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m256 a = _mm256_broadcast_ss(A + m * sam + r * sar);
                acc[m][0] = _mm256_fmadd_ps(a, b0, acc[m][0]);
                acc[m][1] = _mm256_fmadd_ps(a, b1, acc[m][1]);
            }
        }
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            _mm256_maskstore_ps(out + m * ldo, m0, acc[m][0]);
            _mm256_maskstore_ps(out + m * ldo + 8, m1, acc[m][1]);
        }
    }
    /* The LSTM tile: gate q of 8 units at B + 16q (ldb = 64) and out + q*qs; then the cell as fastnn_tile's. */
    static inline __attribute__((always_inline)) FASTNN_AVX2 void fastnn_tile8_lstm(const int mr, Py_ssize_t K,
            const float* restrict A, Py_ssize_t sam, const float* restrict B, float* restrict out, Py_ssize_t ldo,
            Py_ssize_t qs, __m256i mk, const float* restrict cp, float* restrict c, float* restrict h, Py_ssize_t ldh) {
        __m256 acc[FASTNN_MR8_LSTM][4];
        #pragma GCC unroll 4
        for (int m = 0; m < mr; m++) {
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++) acc[m][q] = _mm256_maskload_ps(out + m * ldo + q * qs, mk);
        }
        for (Py_ssize_t r = 0; r < K; r++) {
            __m256 a[FASTNN_MR8_LSTM];
            #pragma GCC unroll 4
            for (int m = 0; m < mr; m++) a[m] = _mm256_broadcast_ss(A + m * sam + r);
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                __m256 b = _mm256_loadu_ps(B + r * 64 + 16 * q);
                #pragma GCC unroll 4
                for (int m = 0; m < mr; m++) acc[m][q] = _mm256_fmadd_ps(a[m], b, acc[m][q]);
            }
        }
        #pragma GCC unroll 4
        for (int m = 0; m < mr; m++) {
            __m256 ig = fastnn_sigmoid8(acc[m][0]), fg = fastnn_sigmoid8(acc[m][1]);
            __m256 gg = fastnn_tanh8(acc[m][2]), og = fastnn_sigmoid8(acc[m][3]);
            __m256 cc = _mm256_fmadd_ps(fg, _mm256_maskload_ps(cp + m * ldh, mk), _mm256_mul_ps(ig, gg));
            _mm256_maskstore_ps(c + m * ldh, mk, cc);
            _mm256_maskstore_ps(h + m * ldh, mk, _mm256_mul_ps(og, fastnn_tanh8(cc)));
            _mm256_maskstore_ps(out + m * ldo, mk, ig);
            _mm256_maskstore_ps(out + m * ldo + qs, mk, fg);
            _mm256_maskstore_ps(out + m * ldo + 2 * qs, mk, gg);
            _mm256_maskstore_ps(out + m * ldo + 3 * qs, mk, og);
        }
    }

    /* Every row tile of one chunk of a 64-column panel (B: K rows 64 apart, the first `cols` real, all of them
       past 64): C[m][j] += sum_r A[m*sam + r*sar] * B[r*64 + j] for m < rows, j < min(cols, 64) (C rows ldc apart). */
    static FASTNN_AVX512 void fastnn_panel512(Py_ssize_t rows, Py_ssize_t K, const float* A, Py_ssize_t sam,
            Py_ssize_t sar, const float* B, float* C, Py_ssize_t ldc, Py_ssize_t cols) {
        __mmask16 mk[4];
        for (int q = 0; q < 4; q++) mk[q] = fastnn_lanes(cols - 16 * q);
        for (Py_ssize_t r0 = 0; r0 < rows; r0 += FASTNN_MR)
            fastnn_tile_gemm((int) (rows - r0 < FASTNN_MR ? rows - r0 : FASTNN_MR), K, A + r0 * sam, sam, sar, B, 64,
                             C + r0 * ldc, ldc, 16, mk);
    }
    static FASTNN_AVX2 void fastnn_panel256(Py_ssize_t rows, Py_ssize_t K, const float* A, Py_ssize_t sam,
            Py_ssize_t sar, const float* B, float* C, Py_ssize_t ldc, Py_ssize_t cols) {
        __m256i mk[8];
        for (int q = 0; q < 8; q++) mk[q] = fastnn_lanes8(cols - 8 * q);
        for (Py_ssize_t r0 = 0; r0 < rows; r0 += FASTNN_MR8) {
            /* the four quarters of the panel for one row tile in turn: its A values come from L1 three times
               of four (quarters outside the tiles re-read A from L2 four times per chunk: measured slower) */
            const float* a = A + r0 * sam; float* out = C + r0 * ldc;
            for (int s = 0; s < 4 && s * 16 < cols; s++)
                switch (rows - r0 < FASTNN_MR8 ? rows - r0 : FASTNN_MR8) {
                case 1: fastnn_tile8_gemm(1, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                case 2: fastnn_tile8_gemm(2, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                case 3: fastnn_tile8_gemm(3, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                case 4: fastnn_tile8_gemm(4, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                case 5: fastnn_tile8_gemm(5, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                default: fastnn_tile8_gemm(6, K, a, sam, sar, B + 16 * s, 64, out + 16 * s, ldc, mk[2 * s], mk[2 * s + 1]); break;
                }
        }
    }
    static void fastnn_panel(Py_ssize_t rows, Py_ssize_t K, const float* A, Py_ssize_t sam, Py_ssize_t sar,
                             const float* B, float* C, Py_ssize_t ldc, Py_ssize_t cols) {
        if (fastnn_tiles_isa == FASTNN_ISA_AVX512) fastnn_panel512(rows, K, A, sam, sar, B, C, ldc, cols);
        else fastnn_panel256(rows, K, A, sam, sar, B, C, ldc, cols);
    }

    /* C (rows x N, row stride ldc) += A (rows x K, stride lda) @ B, B packed by fastnn_pack64. Column
       panels outside, then chunks of FASTNN_KC reduction rows, row tiles inside: a chunk of a panel
       (32 KB) stays in L1 while every tile reads it. A tile stores its sums and reloads them for the
       next chunk, which changes no rounding (each sum still runs over r in order). */
    #define FASTNN_KC 128
    static void fastnn_tiles_gemm_f(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t N, const float* A, Py_ssize_t lda,
                                    const float* Bp, float* C, Py_ssize_t ldc) {
        for (Py_ssize_t p = 0; p * 64 < N; p++)
            for (Py_ssize_t k0 = 0; k0 < K; k0 += FASTNN_KC)
                fastnn_panel(rows, K - k0 < FASTNN_KC ? K - k0 : FASTNN_KC, A + k0, lda, 1, Bp + (p * K + k0) * 64,
                             C + p * 64, ldc, N - p * 64);
    }
    /* C (M x N, stride ldc) = A.T @ B with A (K x M, stride lda) and B (K x N, stride ldb): the
       whole-sequence weight gradients (dW = X.T dG, dU = H.T dG). OpenBLAS's copy routines for these took
       as long as its kernel (perf: both operands packed, the long one transposed). Here A's rows give the
       broadcasts in place, and each chunk of FASTNN_KC rows of a 64-column panel of B is copied once into
       a contiguous 32 KB buffer that every row tile then reads from L1 (read in place, rows 2 KB apart
       fell into a few L1 sets and came from L2). */
    static void fastnn_tiles_gemm_tn_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                                       const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc) {
        float chunk[FASTNN_KC * 64] __attribute__((aligned(64)));
        for (Py_ssize_t i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(float));
        for (Py_ssize_t p = 0; p * 64 < N; p++) {
            Py_ssize_t w = N - p * 64 < 64 ? N - p * 64 : 64;
            for (Py_ssize_t k0 = 0; k0 < K; k0 += FASTNN_KC) {
                Py_ssize_t kc = K - k0 < FASTNN_KC ? K - k0 : FASTNN_KC;
                for (Py_ssize_t r = 0; r < kc; r++) {  /* zero past N: the tile reads all 64 columns */
                    memcpy(chunk + r * 64, B + (k0 + r) * ldb + p * 64, w * sizeof(float));
                    if (w < 64) memset(chunk + r * 64 + w, 0, (64 - w) * sizeof(float));
                }
                fastnn_panel(M, kc, A + k0 * lda, 1, lda, chunk, C + p * 64, ldc, w);
            }
        }
    }
    /* The weight gradients of one block of N columns in one pass over B (K x N, stride ldb: dG):
       C1 (M1 x N) = A1.T @ B (dW = X.T dG), C2 (M2 x N) = A2.T @ B[skip:] (dU = H_{<T-1}.T dG_{>0}, A2 row r
       against B row r + skip) and db = column sums of B. Each chunk of a panel of B is copied (and summed
       into db, rows in order: the sums the separate pass made) once for both products: apart, the copies
       (and db's pass over B) took a fifth of the weight-gradient time (perf, LSTM(128) batch 64). */
    #define FASTNN_PF 8
    static void fastnn_tiles_grads_f(Py_ssize_t N, Py_ssize_t K, const float* B, Py_ssize_t ldb, float* db,
            Py_ssize_t M1, const float* A1, Py_ssize_t lda1, float* C1, Py_ssize_t M2, Py_ssize_t skip,
            const float* A2, Py_ssize_t lda2, float* C2, Py_ssize_t ldc) {
        float chunk[FASTNN_KC * 64] __attribute__((aligned(64)));
        for (Py_ssize_t i = 0; i < M1; i++) memset(C1 + i * ldc, 0, N * sizeof(float));
        for (Py_ssize_t i = 0; i < M2; i++) memset(C2 + i * ldc, 0, N * sizeof(float));
        memset(db, 0, N * sizeof(float));
        for (Py_ssize_t p = 0; p * 64 < N; p++) {
            Py_ssize_t w = N - p * 64 < 64 ? N - p * 64 : 64;
            float* dbp = db + p * 64;
            for (Py_ssize_t k0 = 0; k0 < K; k0 += FASTNN_KC) {
                Py_ssize_t kc = K - k0 < FASTNN_KC ? K - k0 : FASTNN_KC;
                for (Py_ssize_t r = 0; r < kc; r++) {  /* zero past N: the tile reads all 64 columns */
                    const float* src = B + (k0 + r) * ldb + p * 64;
                    float* dst = chunk + r * 64;
                    /* B's rows are ldb apart (2 KB for LSTM(128)) and B outgrows L2: ask for the panel's
                       lines FASTNN_PF rows ahead (perf: the copy waited on these loads) */
                    if (k0 + r + FASTNN_PF < K)
                        for (Py_ssize_t j = 0; j < w; j += 16) __builtin_prefetch(src + FASTNN_PF * ldb + j);
                    for (Py_ssize_t j = 0; j < w; j++) { dst[j] = src[j]; dbp[j] += src[j]; }
                    for (Py_ssize_t j = w; j < 64; j++) dst[j] = 0.0f;
                }
                if (M1 > 0) fastnn_panel(M1, kc, A1 + k0 * lda1, 1, lda1, chunk, C1 + p * 64, ldc, w);
                Py_ssize_t r0 = k0 > skip ? k0 : skip;  /* the first row of the chunk dU uses */
                if (M2 > 0 && r0 < k0 + kc)
                    fastnn_panel(M2, k0 + kc - r0, A2 + (r0 - skip) * lda2, 1, lda2, chunk + (r0 - k0) * 64,
                                 C2 + p * 64, ldc, w);
            }
        }
    }
    /* One LSTM step of a row block: G (rows x 4k) += Hp @ U (Up packed by fastnn_pack_gates), then the
       cell: G <- activated gates, C = f*Cp + i*g, H = o*tanh(C) (Hp, Cp, C, H rows of k). */
    static FASTNN_AVX512 void fastnn_tiles512_lstm_f(Py_ssize_t rows, Py_ssize_t k, const float* Hp, const float* Up,
                                                     float* G, const float* Cp, float* C, float* H) {
        for (Py_ssize_t p = 0; p * 16 < k; p++) {
            __mmask16 m1 = fastnn_lanes(k - p * 16), mk[4] = {m1, m1, m1, m1};
            for (Py_ssize_t r0 = 0; r0 < rows; r0 += FASTNN_MR) {
                Py_ssize_t o = r0 * k + p * 16;
                fastnn_tile_lstm((int) (rows - r0 < FASTNN_MR ? rows - r0 : FASTNN_MR), k, Hp + r0 * k, k, 1,
                                 Up + p * 64 * k, 64, G + r0 * 4 * k + p * 16, 4 * k, k, mk, Cp + o, C + o, H + o, k);
            }
        }
    }
    static FASTNN_AVX2 void fastnn_tiles256_lstm_f(Py_ssize_t rows, Py_ssize_t k, const float* Hp, const float* Up,
                                                   float* G, const float* Cp, float* C, float* H) {
        for (Py_ssize_t p = 0; p * 16 < k; p++) {
            __m256i mk[2] = {fastnn_lanes8(k - p * 16), fastnn_lanes8(k - p * 16 - 8)};
            for (Py_ssize_t r0 = 0; r0 < rows; r0 += FASTNN_MR8_LSTM)
                /* both 8-unit halves of the gate panel for one row tile: the halves share the panel's cache lines */
                for (int h = 0; h < 2 && p * 16 + 8 * h < k; h++) {
                    Py_ssize_t u0 = p * 16 + 8 * h, o = r0 * k + u0;
                    const float* a = Hp + r0 * k; const float* b = Up + p * 64 * k + 8 * h; float* out = G + r0 * 4 * k + u0;
                    switch (rows - r0 < FASTNN_MR8_LSTM ? rows - r0 : FASTNN_MR8_LSTM) {
                    case 1: fastnn_tile8_lstm(1, k, a, k, b, out, 4 * k, k, mk[h], Cp + o, C + o, H + o, k); break;
                    case 2: fastnn_tile8_lstm(2, k, a, k, b, out, 4 * k, k, mk[h], Cp + o, C + o, H + o, k); break;
                    default: fastnn_tile8_lstm(3, k, a, k, b, out, 4 * k, k, mk[h], Cp + o, C + o, H + o, k); break;
                    }
                }
        }
    }
    static void fastnn_tiles_lstm_f(Py_ssize_t rows, Py_ssize_t k, const float* Hp, const float* Up, float* G,
                                    const float* Cp, float* C, float* H) {
        if (fastnn_tiles_isa == FASTNN_ISA_AVX512) fastnn_tiles512_lstm_f(rows, k, Hp, Up, G, Cp, C, H);
        else fastnn_tiles256_lstm_f(rows, k, Hp, Up, G, Cp, C, H);
    }
    #else
    #define FASTNN_TILES 0
    static int fastnn_tiles_isa = 0;
    static void fastnn_tiles_gemm_f(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t N, const float* A, Py_ssize_t lda,
                                    const float* Bp, float* C, Py_ssize_t ldc) {}
    static void fastnn_tiles_lstm_f(Py_ssize_t rows, Py_ssize_t k, const float* Hp, const float* Up, float* G,
                                    const float* Cp, float* C, float* H) {}
    static void fastnn_tiles_gemm_tn_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                                       const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc) {}
    static void fastnn_tiles_grads_f(Py_ssize_t N, Py_ssize_t K, const float* B, Py_ssize_t ldb, float* db,
            Py_ssize_t M1, const float* A1, Py_ssize_t lda1, float* C1, Py_ssize_t M2, Py_ssize_t skip,
            const float* A2, Py_ssize_t lda2, float* C2, Py_ssize_t ldc) {}
    #endif
    /* B (K x N; B[r][j] = src[r*N + j], or src[j*K + r] when trans) into panels of 64 columns: panel p
       holds B[r][64p + j] at dst[p*64*K + r*64 + j], zero beyond N. */
    static void fastnn_pack64(Py_ssize_t K, Py_ssize_t N, const float* src, int trans, float* dst) {
        for (Py_ssize_t p = 0; p * 64 < N; p++)
            for (Py_ssize_t r = 0; r < K; r++)
                for (Py_ssize_t j = 0; j < 64; j++) {
                    Py_ssize_t col = p * 64 + j;
                    dst[(p * K + r) * 64 + j] = col >= N ? 0.0f : (trans ? src[col * K + r] : src[r * N + col]);
                }
    }
    /* U (k x 4k, gate blocks i f g o) into panels of 16 units: panel p holds U[r][q*k + 16p + j] at
       dst[p*64*k + r*64 + 16q + j], zero beyond k: one tile row is the four gates of 16 units. */
    static void fastnn_pack_gates(Py_ssize_t k, const float* U, float* dst) {
        for (Py_ssize_t p = 0; p * 16 < k; p++)
            for (Py_ssize_t r = 0; r < k; r++)
                for (int q = 0; q < 4; q++)
                    for (Py_ssize_t j = 0; j < 16; j++) {
                        Py_ssize_t u = p * 16 + j;
                        dst[(p * k + r) * 64 + 16 * q + j] = u >= k ? 0.0f : U[r * 4 * k + q * k + u];
                    }
    }
    """
    int fastnn_tiles_isa
    void fastnn_tiles_gemm_f(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t N, const float* A, Py_ssize_t lda,
                             const float* Bp, float* C, Py_ssize_t ldc) noexcept nogil
    void fastnn_tiles_lstm_f(Py_ssize_t rows, Py_ssize_t k, const float* Hp, const float* Up, float* G,
                             const float* Cp, float* C, float* H) noexcept nogil
    void fastnn_tiles_gemm_tn_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                                const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc) noexcept nogil
    void fastnn_tiles_grads_f(Py_ssize_t N, Py_ssize_t K, const float* B, Py_ssize_t ldb, float* db,
                              Py_ssize_t M1, const float* A1, Py_ssize_t lda1, float* C1, Py_ssize_t M2,
                              Py_ssize_t skip, const float* A2, Py_ssize_t lda2, float* C2,
                              Py_ssize_t ldc) noexcept nogil
    void fastnn_pack64(Py_ssize_t K, Py_ssize_t N, const float* src, int trans, float* dst) noexcept nogil
    void fastnn_pack_gates(Py_ssize_t k, const float* U, float* dst) noexcept nogil


# Whether the float32 cells take the micro-kernel path (the best ISA the CPU has, unless switched), and
# which ISA it runs: rnn_tiles(False) / rnn_tiles_isa("avx2") are the benchmarks' and the tests' way to run
# the BLAS path, or the AVX2 kernel, on an AVX-512 machine.
_RNN_TILES_ISAS = ("blas", "avx2", "avx512")
cdef int _RNN_TILES_BEST = fastnn_cpu_isa()
cdef bint _rnn_tiles_on = _RNN_TILES_BEST > 0
fastnn_tiles_isa = _RNN_TILES_BEST


def rnn_tiles(enabled=None):
    """Whether float32 recurrent steps run the packed micro-kernel (True) or BLAS (False).

    ``enabled`` switches it (for benchmarks and tests; on by default where the CPU has AVX-512F or
    AVX2+FMA, which cannot be switched on elsewhere; switching it on selects the best ISA); returns the
    state in effect.
    """
    global _rnn_tiles_on, fastnn_tiles_isa
    if enabled is not None:
        _rnn_tiles_on = bool(enabled) and _RNN_TILES_BEST > 0
        fastnn_tiles_isa = _RNN_TILES_BEST
    return _rnn_tiles_on


def rnn_tiles_isa(isa=None):
    """The instruction set of the float32 recurrent micro-kernel: 'avx512', 'avx2' or 'blas' (off).

    ``isa`` selects one (any the CPU runs: 'avx2' on an AVX-512 machine tests that variant; a process-wide
    setting, so switch between calls); returns the one in effect.
    """
    global _rnn_tiles_on, fastnn_tiles_isa
    if isa is not None:
        if isa not in _RNN_TILES_ISAS:
            raise ValueError(f"isa must be one of {_RNN_TILES_ISAS}, got {isa!r}")
        level = _RNN_TILES_ISAS.index(isa)
        if level > _RNN_TILES_BEST:
            raise ValueError(f"isa {isa!r} is not supported by this CPU (best: {_RNN_TILES_ISAS[_RNN_TILES_BEST]!r})")
        _rnn_tiles_on = level > 0
        fastnn_tiles_isa = level if level > 0 else _RNN_TILES_BEST
    return _RNN_TILES_ISAS[fastnn_tiles_isa if _rnn_tiles_on else 0]


def rnn_pack_size(Py_ssize_t k, Py_ssize_t gates):
    """Elements of the packed-weights workspace of a cell with ``gates`` blocks of ``k`` units (it also
    holds the float64 path's transposed U)."""
    return gates * k * ((k + 63) // 64 * 64)
