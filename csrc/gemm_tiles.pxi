# The float32 Dense GEMM with its epilogue: Z = A @ B + bias, O = f(Z) (ReLU / leaky ReLU applied to the
# register tile before it is stored), as register-blocked micro-kernels: AVX-512 (6 rows x 64 columns in
# 24 zmm accumulators) and AVX2+FMA (6 rows x 16 columns in 12 ymm), picked at run time; float64 and other
# CPUs keep BLAS. Included by _kernels.pyx before dense.pxi, which calls it (_dense_fwd_tiled,
# _dense_bwd_tiled).
#
# Why not BLAS for these shapes: OpenBLAS packs both operands on every call (for a batch-32 step's 32 x 784 @
# 784 x 256 its packing and edge handling are a large share) and writes the product before a separate pass
# adds the bias and applies the activation. Here A is read in place (each tile broadcasts its rows' elements
# straight from A, or from the columns of a stored matrix for X.T @ dZ), B is read from a 64-column panel
# chunk copied into a 32 KB stack buffer, and the bias and activation are applied to the accumulators of
# the reduction's last chunk, so Z is written once. Blocking: blocks of MC = 192 rows outside (their rows
# of A, 600 KB for 784 inputs, stay in L2 while every panel reads them), then 64-column panels, then chunks
# of KC = 128 reduction rows (128 x 64 floats of B, copied once per row block -- for a training shard or a
# predict block of at most 192 rows that is W packed once per call -- stay in L1 while every row tile
# reads them; read in place, rows of a 256-column W 1 KB apart fall into a few L1 sets), row tiles inside.
# A tile stores its partial sums and reloads them for the next chunk, which changes no rounding (every sum
# still runs over r in order). Every row and column runs the same instruction sequence whatever the tile,
# call or thread split (a short tile is the same code with fewer rows, a short panel fewer lanes), so
# results do not depend on the thread count or on the row / column split.

cdef extern from *:
    """
    #if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    #include <immintrin.h>
    #define FASTNN_GEMM_X86 1
    #define FASTNN_G512 __attribute__((target("avx512f")))
    #define FASTNN_G256 __attribute__((target("avx2,fma")))
    #define FASTNN_INL static inline __attribute__((always_inline))
    #else
    #define FASTNN_GEMM_X86 0
    #endif
    #define FASTNN_GEMM_KC 128  /* reduction rows per chunk: 128 x 64 floats = 32 KB of L1 */
    #define FASTNN_GEMM_MR 6    /* rows per tile (AVX-512: 6 x 4 accumulators + 4 panel vectors of 32 zmm) */
    #define FASTNN_GEMM_MC 192  /* rows per block: 192 x 784 floats of A (600 KB) stay in L2 across the panels */
    enum { FASTNN_EPI_LINEAR = 0, FASTNN_EPI_RELU = 1, FASTNN_EPI_LEAKY = 2 };

    /* Set on a thread whose BLAS calls run several threads (the trainer's parallel='blas' plan and the
       per-layer path): there one-thread micro-kernels would give up the other cores, so the Dense GEMMs
       stay on BLAS. Thread-local: the kernels' own OpenMP threads and other Python threads keep tiles. */
    static __thread int fastnn_gemm_blas_threaded = 0;


    /* Rows k0 .. k0+kc-1 of B's columns c0 .. c0+w-1 into chunk (rows 64 apart), zero to a whole number of
       16-column groups (the tiles load whole vectors). */
    static inline void fastnn_gemm_chunk(const float* B, Py_ssize_t ldb, Py_ssize_t k0, Py_ssize_t kc,
                                         Py_ssize_t c0, Py_ssize_t w, float* chunk) {
        Py_ssize_t wp = (w + 15) / 16 * 16;
        for (Py_ssize_t r = 0; r < kc; r++) {
            memcpy(chunk + r * 64, B + (k0 + r) * ldb + c0, w * sizeof(float));
            if (wp > w) memset(chunk + r * 64 + w, 0, (wp - w) * sizeof(float));
        }
    }

    #if FASTNN_GEMM_X86
    static inline __mmask16 fastnn_gemm_lanes16(Py_ssize_t n) {
        return n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1u);
    }
    /* One AVX-512 tile: rows m < mr, column groups q < nq of 16 (lanes mk[q]) of C = Z (ldz), reduction rows
       r < kc of A (A[m][r] at A[m*sam + r*sar]) and of the chunk B (rows 64 apart). first: start from 0, else
       from Z; last: add the bias, store Z (pre-activation, when O is another buffer) and O = epi(Z). mr and
       nq are constants in the callers' switch, so the accumulators stay in registers. NaN propagates through
       the epilogue (max returns its second operand when one is NaN). */
    FASTNN_INL FASTNN_G512 void fastnn_gt512(const int mr, const int nq, Py_ssize_t kc, const float* restrict A,
            Py_ssize_t sam, Py_ssize_t sar, const float* restrict B, int first, int last, const float* bias, int epi,
            float alpha, float* Z, Py_ssize_t ldz, float* O, Py_ssize_t ldo, const __mmask16* mk) {
        __m512 acc[FASTNN_GEMM_MR][4];
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            #pragma GCC unroll 4
            for (int q = 0; q < nq; q++)
                acc[m][q] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk[q], Z + m * ldz + 16 * q);
        }
        for (Py_ssize_t r = 0; r < kc; r++) {
            __m512 b[4];
            #pragma GCC unroll 4
            for (int q = 0; q < nq; q++) b[q] = _mm512_load_ps(B + r * 64 + 16 * q);
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m512 a = _mm512_set1_ps(A[m * sam + r * sar]);
                #pragma GCC unroll 4
                for (int q = 0; q < nq; q++) acc[m][q] = _mm512_fmadd_ps(a, b[q], acc[m][q]);
            }
        }
        if (!last) {
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                #pragma GCC unroll 4
                for (int q = 0; q < nq; q++) _mm512_mask_storeu_ps(Z + m * ldz + 16 * q, mk[q], acc[m][q]);
            }
            return;
        }
        const __m512 zero = _mm512_setzero_ps(), va = _mm512_set1_ps(alpha);
        #pragma GCC unroll 4
        for (int q = 0; q < nq; q++) {
            __m512 bv = bias ? _mm512_maskz_loadu_ps(mk[q], bias + 16 * q) : zero;
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m512 z = _mm512_add_ps(acc[m][q], bv);
                if (O != Z) _mm512_mask_storeu_ps(Z + m * ldz + 16 * q, mk[q], z);
                if (epi == FASTNN_EPI_RELU) z = _mm512_max_ps(zero, z);
                else if (epi == FASTNN_EPI_LEAKY)
                    z = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), _mm512_mul_ps(va, z), z);
                _mm512_mask_storeu_ps(O + m * ldo + 16 * q, mk[q], z);
            }
        }
    }
    #define FASTNN_GT512_ARGS kc, A + r0 * sam, sam, sar, B, first, last, bias, epi, alpha, Z + r0 * ldz, ldz, \
                              O + r0 * ldo, ldo, mk
    #define FASTNN_GT512_MR(NQ) \
        switch (mr) { \
        case 1: fastnn_gt512(1, NQ, FASTNN_GT512_ARGS); break; \
        case 2: fastnn_gt512(2, NQ, FASTNN_GT512_ARGS); break; \
        case 3: fastnn_gt512(3, NQ, FASTNN_GT512_ARGS); break; \
        case 4: fastnn_gt512(4, NQ, FASTNN_GT512_ARGS); break; \
        case 5: fastnn_gt512(5, NQ, FASTNN_GT512_ARGS); break; \
        default: fastnn_gt512(6, NQ, FASTNN_GT512_ARGS); break; \
        }
    /* The row tiles of one chunk of one panel (Z, O, bias already offset to the panel's columns). */
    static FASTNN_G512 void fastnn_gemm512_rows(Py_ssize_t M, int nq, Py_ssize_t kc, const float* A, Py_ssize_t sam,
            Py_ssize_t sar, const float* B, int first, int last, const float* bias, int epi, float alpha, float* Z,
            Py_ssize_t ldz, float* O, Py_ssize_t ldo, const __mmask16* mk) {
        for (Py_ssize_t r0 = 0; r0 < M; r0 += FASTNN_GEMM_MR) {
            int mr = (int) (M - r0 < FASTNN_GEMM_MR ? M - r0 : FASTNN_GEMM_MR);
            switch (nq) {
            case 1: FASTNN_GT512_MR(1) break;
            case 2: FASTNN_GT512_MR(2) break;
            case 3: FASTNN_GT512_MR(3) break;
            default: FASTNN_GT512_MR(4) break;
            }
        }
    }

    /* AVX2: one tile of mr rows x nv groups of 8 columns (nv <= 2) from a chunk (rows 64 apart), the same
       contract as fastnn_gt512 (lane masks as integer vectors mk[v]). */
    FASTNN_INL FASTNN_G256 void fastnn_gt256(const int mr, const int nv, Py_ssize_t kc, const float* restrict A,
            Py_ssize_t sam, Py_ssize_t sar, const float* restrict B, int first, int last, const float* bias, int epi,
            float alpha, float* Z, Py_ssize_t ldz, float* O, Py_ssize_t ldo, const __m256i* mk) {
        __m256 acc[FASTNN_GEMM_MR][2];
        #pragma GCC unroll 8
        for (int m = 0; m < mr; m++) {
            #pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[m][v] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(Z + m * ldz + 8 * v, mk[v]);
        }
        for (Py_ssize_t r = 0; r < kc; r++) {
            __m256 b[2];
            #pragma GCC unroll 2
            for (int v = 0; v < nv; v++) b[v] = _mm256_load_ps(B + r * 64 + 8 * v);
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m256 a = _mm256_broadcast_ss(A + m * sam + r * sar);
                #pragma GCC unroll 2
                for (int v = 0; v < nv; v++) acc[m][v] = _mm256_fmadd_ps(a, b[v], acc[m][v]);
            }
        }
        if (!last) {
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                #pragma GCC unroll 2
                for (int v = 0; v < nv; v++) _mm256_maskstore_ps(Z + m * ldz + 8 * v, mk[v], acc[m][v]);
            }
            return;
        }
        const __m256 zero = _mm256_setzero_ps(), va = _mm256_set1_ps(alpha);
        #pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m256 bv = bias ? _mm256_maskload_ps(bias + 8 * v, mk[v]) : zero;
            #pragma GCC unroll 8
            for (int m = 0; m < mr; m++) {
                __m256 z = _mm256_add_ps(acc[m][v], bv);
                if (O != Z) _mm256_maskstore_ps(Z + m * ldz + 8 * v, mk[v], z);
                if (epi == FASTNN_EPI_RELU) z = _mm256_max_ps(zero, z);
                else if (epi == FASTNN_EPI_LEAKY)
                    z = _mm256_blendv_ps(_mm256_mul_ps(va, z), z, _mm256_cmp_ps(z, zero, _CMP_GT_OQ));
                _mm256_maskstore_ps(O + m * ldo + 8 * v, mk[v], z);
            }
        }
    }
    #define FASTNN_GT256_ARGS kc, A + r0 * sam, sam, sar, B, first, last, bs, epi, alpha, Z + r0 * ldz, ldz, \
                              O + r0 * ldo, ldo, mk
    #define FASTNN_GT256_MR(NV) \
        switch (mr) { \
        case 1: fastnn_gt256(1, NV, FASTNN_GT256_ARGS); break; \
        case 2: fastnn_gt256(2, NV, FASTNN_GT256_ARGS); break; \
        case 3: fastnn_gt256(3, NV, FASTNN_GT256_ARGS); break; \
        case 4: fastnn_gt256(4, NV, FASTNN_GT256_ARGS); break; \
        case 5: fastnn_gt256(5, NV, FASTNN_GT256_ARGS); break; \
        default: fastnn_gt256(6, NV, FASTNN_GT256_ARGS); break; \
        }
    /* The row tiles of one chunk of one panel in 16-column groups (Z, O, bias offset to the panel). */
    static FASTNN_G256 void fastnn_gemm256_rows(Py_ssize_t M, Py_ssize_t w, Py_ssize_t kc, const float* A,
            Py_ssize_t sam, Py_ssize_t sar, const float* chunk, int first, int last, const float* bias, int epi,
            float alpha, float* Z0, Py_ssize_t ldz, float* O0, Py_ssize_t ldo) {
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (Py_ssize_t s = 0; s * 16 < w; s++) {
            Py_ssize_t left = w - 16 * s;
            int nv = left > 8 ? 2 : 1;
            __m256i mk[2] = {_mm256_cmpgt_epi32(_mm256_set1_epi32((int) (left < 8 ? left : 8)), iota),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32((int) (left - 8 < 8 ? left - 8 : 8)), iota)};
            const float* B = chunk + 16 * s;
            const float* bs = bias ? bias + 16 * s : 0;
            float* Z = Z0 + 16 * s;
            float* O = O0 + 16 * s;
            for (Py_ssize_t r0 = 0; r0 < M; r0 += FASTNN_GEMM_MR) {
                int mr = (int) (M - r0 < FASTNN_GEMM_MR ? M - r0 : FASTNN_GEMM_MR);
                if (nv == 1) { FASTNN_GT256_MR(1) } else { FASTNN_GT256_MR(2) }
            }
        }
    }
    #endif

    /* Z (M x N, ldz) = A (M x K; A[m][r] at A[m*sam + r*sar]: sam = lda, sar = 1 for A itself, sam = 1,
       sar = lda for the transpose of a stored matrix) @ B (K x N, ldb) + bias (NULL: none), O (ldo; may be Z)
       = epi(Z), float32, with the micro-kernel of `isa` (the caller checked the CPU has it). K = 0 gives O = epi(bias).
       Blocks of FASTNN_GEMM_MC rows outside (their rows of A stay in L2 while every panel reads them), column
       panels, then chunks of the reduction (each copied to L1 once per row block), row tiles inside. */
    static void fastnn_gemm_f(int isa, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t sam,
                              Py_ssize_t sar,
                              const float* B, Py_ssize_t ldb, const float* bias, int epi, float alpha,
                              float* Z, Py_ssize_t ldz, float* O, Py_ssize_t ldo) {
    #if FASTNN_GEMM_X86
        float chunk[FASTNN_GEMM_KC * 64] __attribute__((aligned(64)));
        for (Py_ssize_t i0 = 0; i0 < M; i0 += FASTNN_GEMM_MC) {
            Py_ssize_t mc = M - i0 < FASTNN_GEMM_MC ? M - i0 : FASTNN_GEMM_MC;
            const float* Ab = A + i0 * sam;
            float* Zb = Z + i0 * ldz;
            float* Ob = O + i0 * ldo;
            for (Py_ssize_t p = 0; p * 64 < N; p++) {
                Py_ssize_t c0 = p * 64, w = N - c0 < 64 ? N - c0 : 64;
                __mmask16 mk[4];
                for (int q = 0; q < 4; q++) mk[q] = fastnn_gemm_lanes16(w - 16 * q);
                const float* bs = bias ? bias + c0 : 0;
                Py_ssize_t k0 = 0;
                do {  /* at least one chunk, so K = 0 still writes the epilogue */
                    Py_ssize_t kc = K - k0 < FASTNN_GEMM_KC ? K - k0 : FASTNN_GEMM_KC;
                    int first = k0 == 0, last = k0 + kc >= K;
                    fastnn_gemm_chunk(B, ldb, k0, kc, c0, w, chunk);
                    if (isa == FASTNN_ISA_AVX512)
                        fastnn_gemm512_rows(mc, (int) ((w + 15) / 16), kc, Ab + k0 * sar, sam, sar, chunk, first,
                                            last, bs, epi, alpha, Zb + c0, ldz, Ob + c0, ldo, mk);
                    else
                        fastnn_gemm256_rows(mc, w, kc, Ab + k0 * sar, sam, sar, chunk, first, last, bs, epi, alpha,
                                            Zb + c0, ldz, Ob + c0, ldo);
                    k0 += kc;
                } while (k0 < K);
            }
        }
    #endif
    }
    """
    int fastnn_gemm_blas_threaded "fastnn_gemm_blas_threaded"
    void fastnn_gemm_f(int isa, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t sam,
                       Py_ssize_t sar, const float* B, Py_ssize_t ldb, const float* bias, int epi, float alpha,
                       float* Z, Py_ssize_t ldz, float* O, Py_ssize_t ldo) noexcept nogil
    int FASTNN_EPI_LINEAR, FASTNN_EPI_RELU, FASTNN_EPI_LEAKY

# The micro-kernel the float32 Dense GEMMs use: the best this CPU has, unless gemm_tiles() switched it.
cdef int _GEMM_ISA_CPU = fastnn_cpu_isa()
cdef int _gemm_isa = _GEMM_ISA_CPU
_GEMM_ISA_NAMES = {"off": FASTNN_ISA_NONE, "avx2": FASTNN_ISA_AVX2, "avx512": FASTNN_ISA_AVX512}


def gemm_tiles(isa=None):
    """Which micro-kernel the float32 Dense GEMMs run: ``"avx512"``, ``"avx2"`` or ``"off"`` (BLAS).

    ``isa`` switches it (benchmarks and tests: ``"off"`` runs the BLAS path, ``"avx2"`` the AVX2 kernel on an
    AVX-512 CPU); ``"auto"`` restores the best the CPU has. A kernel the CPU lacks cannot be chosen
    (ValueError). Returns the name in effect.
    """
    global _gemm_isa
    if isa is not None:
        if isa == "auto":
            _gemm_isa = _GEMM_ISA_CPU
        elif isa not in _GEMM_ISA_NAMES:
            raise ValueError(f"gemm_tiles: isa must be one of 'auto', {', '.join(map(repr, _GEMM_ISA_NAMES))}; "
                             f"got {isa!r}")
        elif _GEMM_ISA_NAMES[isa] > _GEMM_ISA_CPU:
            raise ValueError(f"gemm_tiles: this CPU has no {isa} (it has "
                             f"{[k for k, v in _GEMM_ISA_NAMES.items() if v == _GEMM_ISA_CPU][0]})")
        else:
            _gemm_isa = _GEMM_ISA_NAMES[isa]
    return [k for k, v in _GEMM_ISA_NAMES.items() if v == _gemm_isa][0]


def gemm_blas_threaded(bint on):
    """Mark the calling thread's BLAS as multi-threaded (``on``): its float32 Dense GEMMs then stay on BLAS,
    which splits each product over the threads, instead of the one-thread micro-kernels. Returns the
    previous setting. Used by :func:`fastnn.kernels.threads.blas_limits`."""
    global fastnn_gemm_blas_threaded
    before = bool(fastnn_gemm_blas_threaded)
    fastnn_gemm_blas_threaded = 1 if on else 0
    return before
