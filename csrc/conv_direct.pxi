# Direct convolution of one-channel images (a first layer on grayscale input: LeNet-5's Conv(6, 5x5)),
# forward and weight gradient, without im2col (contracts: conv1ch_forward / conv1ch_weight_grad in
# fastnn/kernels/reference/conv.py). Included by _kernels.pyx after conv.pxi; the conv plan rows
# (plan_conv.pxi) call it where _conv_direct says so.
#
# Why: with C = 1 the im2col GEMM is narrow on both sides -- K = kh*kw = 25 columns of one value each,
# N = F = 6 filters -- so a register tile of 16 lanes holds 6 useful ones and every FMA waits for a
# broadcast; im2col writes 25 values per output (a whole shard's columns, 10 MB at batch 128, are kept
# for the weight gradient and stream to memory and back). Measured, 1 thread, LeNet-5 batch 128, the
# first conv's im2col, forward GEMM and weight-gradient GEMM were 38% of an epoch.
#
# The layout: an output row of an NHWC image is Wo*F contiguous values, lane l = (wo, f) = (l / F, l % F).
# Input pixel (h, wo + j) replicated F times at lane offset j*F makes every tap (i, j) one contiguous
# vector product over the row: Z[ho][l] += Xe[ho*sh + i][j*F + l] * Wrow[i*kw + j][l], where Xe is the
# zero-padded image with each pixel repeated F times and Wrow[t][l] = W[t][l % F]. Every lane is useful
# (but the row's last vector), nothing is transposed, Z is stored as NHWC rows, and the weight gradient
# is the same product with Z replaced by dZ, accumulated per lane (G[t][l]) and folded over l % F once
# per conv row. The forward sums the taps in order from 0 with the bias added last, as the im2col GEMM
# on the Dense micro-kernel does.
#
# Vectors are GCC vector extensions of 64 bytes (one zmm; two ymm in the AVX2 clone), groups of up to 6
# per row pass (6 accumulators: 12 ymm leave AVX2 room for its operands), built as target clones.
# Measured (1 thread, LeNet-5, batch 128, im2col path interleaved, load average ~4): the first conv's
# forward 2.9x and weight gradient 1.2x faster than im2col + GEMM, the epoch 1.24x; aligning the scratch
# to 64 bytes (no load straddling cache lines but Xe's at j*F) was worth ~10% of those kernels.

cdef extern from *:
    """
    #define FASTNN_CDIR_VB 64  /* bytes per vector */
    #define FASTNN_CDIR_NB 6   /* vectors per accumulator group */
    #define FASTNN_CDIR_UP(n, v) (((n) + (v) - 1) / (v) * (v))

    /* The scratch layout one image needs, in elements of T (lanes V = 64 / sizeof(T)): the expanded image
       Xe (Hp rows of LDX), then the per-lane weights / gradient G (kh*kw rows of Lp), then Lp values of
       the replicated bias (forward) or Ho rows of Lp of the padded dZ (weight gradient). */
    static inline void fastnn_cdir_dims(Py_ssize_t V, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho,
            Py_ssize_t Wo, Py_ssize_t F, Py_ssize_t* Lp, Py_ssize_t* LDX, Py_ssize_t* Hp) {
        *Lp = FASTNN_CDIR_UP(Wo * F, V);
        *LDX = FASTNN_CDIR_UP((Wo + kw - 1) * F, V) + V;  /* + V: a row's last vector may read past it */
        *Hp = (Ho - 1) * sh + kh;
    }
    static inline Py_ssize_t fastnn_cdir_scratch(Py_ssize_t itemsize, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
            Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F) {
        Py_ssize_t Lp, LDX, Hp;
        fastnn_cdir_dims(FASTNN_CDIR_VB / itemsize, kh, kw, sh, Ho, Wo, F, &Lp, &LDX, &Hp);
        /* + one vector: the kernels start their scratch at the first 64-byte boundary in it */
        return Hp * LDX + kh * kw * Lp + (Ho > 1 ? Ho : 1) * Lp + FASTNN_CDIR_VB / itemsize;
    }
    /* The scratch's first 64-byte boundary: every row of Xe, Wrow, G and the dZ copy is a whole number
       of vectors, so their loads do not straddle cache lines (but Xe's at the taps' j*F offsets). */
    static inline void* fastnn_cdir_align(const void* p) {
        return (void*) (((uintptr_t) p + FASTNN_CDIR_VB - 1) & ~(uintptr_t) (FASTNN_CDIR_VB - 1));
    }

    #define FASTNN_CDIR(T, I, S) \
    typedef T fastnn_cdir_v##S __attribute__((vector_size(FASTNN_CDIR_VB))); \
    typedef I fastnn_cdir_m##S __attribute__((vector_size(FASTNN_CDIR_VB))); \
    static inline __attribute__((always_inline)) fastnn_cdir_v##S fastnn_cdir_ld_##S(const T* p) { \
        fastnn_cdir_v##S x; __builtin_memcpy(&x, p, sizeof x); return x; \
    } \
    /* Xe: image X (H x W, one channel) zero-padded by ph rows above and pw columns left, each pixel \
       repeated F times; rows LDX apart, zero past the last pixel. */ \
    static FASTNN_CLONES void fastnn_cdir_expand_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t kw, Py_ssize_t ph, \
            Py_ssize_t pw, Py_ssize_t Wo, Py_ssize_t F, Py_ssize_t Hp, Py_ssize_t LDX, const T* restrict X, \
            T* restrict Xe) { \
        const Py_ssize_t V = FASTNN_CDIR_VB / sizeof(T), Wp = Wo + kw - 1; \
        for (Py_ssize_t hp = 0; hp < Hp; hp++) { \
            T* restrict row = Xe + hp * LDX; \
            const Py_ssize_t h = hp - ph; \
            if (h < 0 || h >= H) { memset(row, 0, LDX * sizeof(T)); continue; } \
            const T* restrict x = X + h * W; \
            /* a whole vector of the pixel per V of its F copies, in pixel order: what a store writes past \
               the pixel's copies the next pixel's overwrites (measured: the scalar F-copy loop was a third \
               of the forward); the last one's spill stays within the row's V of slack */ \
            for (Py_ssize_t wp = 0; wp < Wp; wp++) { \
                const Py_ssize_t w = wp - pw; \
                const fastnn_cdir_v##S v = (fastnn_cdir_v##S) {0} + (w >= 0 && w < W ? x[w] : (T) 0); \
                for (Py_ssize_t f = 0; f < F; f += V) __builtin_memcpy(row + wp * F + f, &v, sizeof v); \
            } \
            memset(row + Wp * F, 0, (LDX - Wp * F) * sizeof(T)); \
        } \
    } \
    /* The per-lane weights Wrow[t][l] = W[t][l % F] (kh*kw rows of Lp) and bias brow[l] = b[l % F] (when b) \
       in the scratch after Xe: once per forward (every tile's fastnn_cdir_forward_* reads them). */ \
    static void fastnn_cdir_prepare_##S(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, \
            Py_ssize_t F, const T* restrict Wt, const T* restrict bias, T* restrict scratch) { \
        const Py_ssize_t K = kh * kw; \
        Py_ssize_t Lp, LDX, Hp; \
        fastnn_cdir_dims(FASTNN_CDIR_VB / sizeof(T), kh, kw, sh, Ho, Wo, F, &Lp, &LDX, &Hp); \
        scratch = (T*) fastnn_cdir_align(scratch); \
        T* restrict Wrow = scratch + Hp * LDX; \
        for (Py_ssize_t t = 0; t < K; t++) for (Py_ssize_t l = 0, f = 0; l < Lp; l++, f = f + 1 == F ? 0 : f + 1) \
            Wrow[t * Lp + l] = Wt[t * F + f]; \
        if (bias) for (Py_ssize_t l = 0, f = 0; l < Lp; l++, f = f + 1 == F ? 0 : f + 1) Wrow[K * Lp + l] = bias[f]; \
    } \
    /* One group of NB vectors (lanes o .. o + NB*V) of output row ho: Z = sum of the taps + bias, O = ReLU \
       (relu) or nothing (O == NULL); n: the lanes of the row from o on (the last vector is partial). */ \
    static inline __attribute__((always_inline)) void fastnn_cdir_fwd_group_##S(const int NB, Py_ssize_t kh, \
            Py_ssize_t kw, Py_ssize_t F, Py_ssize_t LDX, Py_ssize_t Lp, const T* restrict xe, \
            const T* restrict Wrow, const T* restrict brow, int relu, Py_ssize_t n, int spill, T* restrict z, \
            T* restrict o) { \
        const int V = FASTNN_CDIR_VB / (int) sizeof(T); \
        const fastnn_cdir_v##S zero = {0}; \
        fastnn_cdir_v##S acc[FASTNN_CDIR_NB]; \
        _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) acc[v] = zero; \
        for (Py_ssize_t i = 0; i < kh; i++) for (Py_ssize_t j = 0; j < kw; j++) { \
            const T* restrict xr = xe + i * LDX + j * F; \
            const T* restrict wr = Wrow + (i * kw + j) * Lp; \
            _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) \
                acc[v] += fastnn_cdir_ld_##S(xr + v * V) * fastnn_cdir_ld_##S(wr + v * V); \
        } \
        _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) { \
            fastnn_cdir_v##S zv = acc[v]; \
            if (brow) zv += fastnn_cdir_ld_##S(brow + v * V); \
            /* ReLU as max(0, z) with NaN kept (z < 0 is false for NaN), as the GEMM epilogue */ \
            fastnn_cdir_v##S ov = (fastnn_cdir_v##S) ((fastnn_cdir_m##S) zv & ~(fastnn_cdir_m##S) (zv < zero)); \
            const Py_ssize_t left = n - v * V, m = left < V || !spill ? left : V; \
            if (m == V) { \
                __builtin_memcpy(z + v * V, &zv, sizeof zv); \
                if (o) __builtin_memcpy(o + v * V, relu ? &ov : &zv, sizeof zv); \
            } else { \
                for (Py_ssize_t t = 0; t < m; t++) { z[v * V + t] = zv[t]; if (o) o[v * V + t] = relu ? ov[t] : zv[t]; } \
            } \
        } \
    } \
    /* Forward of n_img images (X: H*W values each; Z, O: Ho*Wo*F each, O may be Z): Z = conv + bias \
       (bias: NULL for none, else non-NULL as it was for fastnn_cdir_prepare_*), O = ReLU(Z) (relu) else Z. \
       scratch: fastnn_cdir_scratch elements, prepared. A row's last, partial vector is stored whole where \
       what it spills lands in the next row, which overwrites it. */ \
    static FASTNN_CLONES void fastnn_cdir_forward_##S(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, \
            Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F, \
            const T* restrict X, const T* restrict Wt, const T* restrict bias, int relu, T* restrict scratch, \
            T* Z, T* O) { \
        const Py_ssize_t V = FASTNN_CDIR_VB / sizeof(T), L = Wo * F, K = kh * kw; \
        Py_ssize_t Lp, LDX, Hp; \
        fastnn_cdir_dims(V, kh, kw, sh, Ho, Wo, F, &Lp, &LDX, &Hp); \
        scratch = (T*) fastnn_cdir_align(scratch); \
        T* restrict Xe = scratch; \
        T* restrict Wrow = Xe + Hp * LDX; \
        T* restrict brow = bias ? Wrow + K * Lp : NULL; \
        const int out = O != Z || relu; \
        for (Py_ssize_t b = 0; b < n_img; b++) { \
            fastnn_cdir_expand_##S(H, W, kw, ph, pw, Wo, F, Hp, LDX, X + b * H * W, Xe); \
            for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
                T* z = Z + (b * Ho + ho) * L; \
                T* o = out ? O + (b * Ho + ho) * L : NULL; \
                const int spill = b + 1 < n_img || ho + 1 < Ho; \
                const T* xe = Xe + ho * sh * LDX; \
                for (Py_ssize_t l0 = 0; l0 < L; l0 += FASTNN_CDIR_NB * V) { \
                    const Py_ssize_t n = L - l0; \
                    const int nb = (int) ((n + V - 1) / V < FASTNN_CDIR_NB ? (n + V - 1) / V : FASTNN_CDIR_NB); \
                    const T* bs = brow ? brow + l0 : NULL; \
                    T* oo = o ? o + l0 : NULL; \
                    switch (nb) { \
                    case 1: fastnn_cdir_fwd_group_##S(1, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    case 2: fastnn_cdir_fwd_group_##S(2, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    case 3: fastnn_cdir_fwd_group_##S(3, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    case 4: fastnn_cdir_fwd_group_##S(4, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    case 5: fastnn_cdir_fwd_group_##S(5, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    default: fastnn_cdir_fwd_group_##S(6, kh, kw, F, LDX, Lp, xe + l0, Wrow + l0, bs, relu, n, spill, z + l0, oo); break; \
                    } \
                } \
            } \
        } \
    } \
    /* One group of NB vectors of tap row g (G's lanes o .. o + NB*V): g += sum over ho of Xe * dZ. */ \
    static inline __attribute__((always_inline)) void fastnn_cdir_dw_group_##S(const int NB, Py_ssize_t Ho, \
            Py_ssize_t sh, Py_ssize_t LDX, Py_ssize_t Lp, const T* restrict xe, const T* restrict dz, T* restrict g) { \
        const int V = FASTNN_CDIR_VB / (int) sizeof(T); \
        fastnn_cdir_v##S acc[FASTNN_CDIR_NB]; \
        _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) acc[v] = fastnn_cdir_ld_##S(g + v * V); \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            const T* restrict xr = xe + ho * sh * LDX; \
            const T* restrict dr = dz + ho * Lp; \
            _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) \
                acc[v] += fastnn_cdir_ld_##S(xr + v * V) * fastnn_cdir_ld_##S(dr + v * V); \
        } \
        _Pragma("GCC unroll 6") for (int v = 0; v < NB; v++) __builtin_memcpy(g + v * V, &acc[v], sizeof acc[v]); \
    } \
    /* The same for two neighbouring taps (j, j + 1) of one kernel row at once, NB <= 3 vectors each: \
       each dZ vector loaded once for both (3 loads per 2 FMAs instead of 4: the loop is load-bound). */ \
    static inline __attribute__((always_inline)) void fastnn_cdir_dw_pair_##S(const int NB, Py_ssize_t Ho, \
            Py_ssize_t sh, Py_ssize_t LDX, Py_ssize_t Lp, Py_ssize_t F, const T* restrict xe, const T* restrict dz, \
            T* restrict g0, T* restrict g1) { \
        const int V = FASTNN_CDIR_VB / (int) sizeof(T); \
        fastnn_cdir_v##S a0[3], a1[3]; \
        _Pragma("GCC unroll 3") for (int v = 0; v < NB; v++) { \
            a0[v] = fastnn_cdir_ld_##S(g0 + v * V); a1[v] = fastnn_cdir_ld_##S(g1 + v * V); \
        } \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            const T* restrict xr = xe + ho * sh * LDX; \
            const T* restrict dr = dz + ho * Lp; \
            _Pragma("GCC unroll 3") for (int v = 0; v < NB; v++) { \
                const fastnn_cdir_v##S d = fastnn_cdir_ld_##S(dr + v * V); \
                a0[v] += fastnn_cdir_ld_##S(xr + v * V) * d; \
                a1[v] += fastnn_cdir_ld_##S(xr + F + v * V) * d; \
            } \
        } \
        _Pragma("GCC unroll 3") for (int v = 0; v < NB; v++) { \
            __builtin_memcpy(g0 + v * V, &a0[v], sizeof a0[v]); __builtin_memcpy(g1 + v * V, &a1[v], sizeof a1[v]); \
        } \
    } \
    /* Weight-gradient partial sums of n_img images into the per-lane G (the scratch after Xe; zeroed when \
       first): G[t][l] += sum over ho of Xe[ho*sh + i][j*F + l] * dZ[ho][l], t = i*kw + j. \
       fastnn_cdir_dw_fold_* turns G into dW. */ \
    static FASTNN_CLONES void fastnn_cdir_dw_accum_##S(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, \
            Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F, \
            const T* restrict X, const T* restrict dZ, int first, T* restrict scratch) { \
        const Py_ssize_t V = FASTNN_CDIR_VB / sizeof(T), L = Wo * F, K = kh * kw; \
        Py_ssize_t Lp, LDX, Hp; \
        fastnn_cdir_dims(V, kh, kw, sh, Ho, Wo, F, &Lp, &LDX, &Hp); \
        scratch = (T*) fastnn_cdir_align(scratch); \
        T* restrict Xe = scratch; \
        T* restrict G = Xe + Hp * LDX; \
        T* restrict D = G + K * Lp;  /* the image's dZ rows, Lp apart, zero past L: whole-vector reads */ \
        if (first) memset(G, 0, K * Lp * sizeof(T)); \
        for (Py_ssize_t b = 0; b < n_img; b++) { \
            fastnn_cdir_expand_##S(H, W, kw, ph, pw, Wo, F, Hp, LDX, X + b * H * W, Xe); \
            for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
                memcpy(D + ho * Lp, dZ + (b * Ho + ho) * L, L * sizeof(T)); \
                if (Lp > L) memset(D + ho * Lp + L, 0, (Lp - L) * sizeof(T)); \
            } \
            for (Py_ssize_t i = 0; i < kh; i++) for (Py_ssize_t j = 0; j < kw; j += 2) { \
                const T* xe = Xe + i * LDX + j * F; \
                T* g = G + (i * kw + j) * Lp; \
                if (j + 1 < kw) { \
                    for (Py_ssize_t l0 = 0; l0 < Lp; l0 += 3 * V) { \
                        const Py_ssize_t left = (Lp - l0) / V; \
                        switch (left < 3 ? left : 3) { \
                        case 1: fastnn_cdir_dw_pair_##S(1, Ho, sh, LDX, Lp, F, xe + l0, D + l0, g + l0, g + Lp + l0); break; \
                        case 2: fastnn_cdir_dw_pair_##S(2, Ho, sh, LDX, Lp, F, xe + l0, D + l0, g + l0, g + Lp + l0); break; \
                        default: fastnn_cdir_dw_pair_##S(3, Ho, sh, LDX, Lp, F, xe + l0, D + l0, g + l0, g + Lp + l0); break; \
                        } \
                    } \
                    continue; \
                } \
                for (Py_ssize_t l0 = 0; l0 < Lp; l0 += FASTNN_CDIR_NB * V) { \
                    const Py_ssize_t left = (Lp - l0) / V; \
                    switch (left < FASTNN_CDIR_NB ? left : FASTNN_CDIR_NB) { \
                    case 1: fastnn_cdir_dw_group_##S(1, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    case 2: fastnn_cdir_dw_group_##S(2, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    case 3: fastnn_cdir_dw_group_##S(3, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    case 4: fastnn_cdir_dw_group_##S(4, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    case 5: fastnn_cdir_dw_group_##S(5, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    default: fastnn_cdir_dw_group_##S(6, Ho, sh, LDX, Lp, xe + l0, D + l0, g + l0); break; \
                    } \
                } \
            } \
        } \
    } \
    /* dW[t][f] = sum over the lanes l < Wo*F with l % F == f of G[t][l], in lane order. */ \
    static void fastnn_cdir_dw_fold_##S(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, \
            Py_ssize_t F, const T* restrict scratch, T* restrict dW) { \
        const Py_ssize_t V = FASTNN_CDIR_VB / sizeof(T), L = Wo * F, K = kh * kw; \
        Py_ssize_t Lp, LDX, Hp; \
        fastnn_cdir_dims(V, kh, kw, sh, Ho, Wo, F, &Lp, &LDX, &Hp); \
        scratch = (const T*) fastnn_cdir_align(scratch); \
        const T* restrict G = scratch + Hp * LDX; \
        for (Py_ssize_t t = 0; t < K; t++) { \
            T* restrict d = dW + t * F; \
            const T* restrict g = G + t * Lp; \
            for (Py_ssize_t f = 0; f < F; f++) d[f] = g[f]; \
            for (Py_ssize_t l = F; l < L; l += F) for (Py_ssize_t f = 0; f < F; f++) d[f] += g[l + f]; \
        } \
    }
    FASTNN_CDIR(float, int32_t, f)
    FASTNN_CDIR(double, int64_t, d)
    """
    Py_ssize_t fastnn_cdir_scratch(Py_ssize_t itemsize, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho,
                                   Py_ssize_t Wo, Py_ssize_t F) noexcept nogil
    void fastnn_cdir_prepare_f(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const float* Wt, const float* bias, float* scratch) noexcept nogil
    void fastnn_cdir_prepare_d(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const double* Wt, const double* bias, double* scratch) noexcept nogil
    void fastnn_cdir_forward_f(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const float* X, const float* Wt, const float* bias, int relu, float* scratch,
                               float* Z, float* O) noexcept nogil
    void fastnn_cdir_forward_d(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const double* X, const double* Wt, const double* bias, int relu, double* scratch,
                               double* Z, double* O) noexcept nogil
    void fastnn_cdir_dw_accum_f(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                                const float* X, const float* dZ, int first, float* scratch) noexcept nogil
    void fastnn_cdir_dw_accum_d(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                                const double* X, const double* dZ, int first, double* scratch) noexcept nogil
    void fastnn_cdir_dw_fold_f(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const float* scratch, float* dW) noexcept nogil
    void fastnn_cdir_dw_fold_d(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t F,
                               const double* scratch, double* dW) noexcept nogil


cdef inline void _cdir_prepare(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo,
                               Py_ssize_t F, const floating* Wt, const floating* bias, floating* scratch) noexcept nogil:
    if floating is float:
        fastnn_cdir_prepare_f(kh, kw, sh, Ho, Wo, F, Wt, bias, scratch)
    else:
        fastnn_cdir_prepare_d(kh, kw, sh, Ho, Wo, F, Wt, bias, scratch)


cdef inline void _cdir_forward(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo,
                               Py_ssize_t F, const floating* X, const floating* Wt, const floating* bias, bint relu,
                               floating* scratch, floating* Z, floating* O) noexcept nogil:
    if floating is float:
        fastnn_cdir_forward_f(n_img, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X, Wt, bias, relu, scratch, Z, O)
    else:
        fastnn_cdir_forward_d(n_img, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X, Wt, bias, relu, scratch, Z, O)


cdef inline void _cdir_dw_accum(Py_ssize_t n_img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo,
                                Py_ssize_t F, const floating* X, const floating* dZ, bint first,
                                floating* scratch) noexcept nogil:
    if floating is float:
        fastnn_cdir_dw_accum_f(n_img, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X, dZ, first, scratch)
    else:
        fastnn_cdir_dw_accum_d(n_img, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, X, dZ, first, scratch)


cdef inline void _cdir_dw_fold(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t Ho, Py_ssize_t Wo,
                               Py_ssize_t F, const floating* scratch, floating* dW) noexcept nogil:
    if floating is float:
        fastnn_cdir_dw_fold_f(kh, kw, sh, Ho, Wo, F, scratch, dW)
    else:
        fastnn_cdir_dw_fold_d(kh, kw, sh, Ho, Wo, F, scratch, dW)


# Whether the conv rows take the direct path where it applies (conv_direct(); tests and benchmarks
# compare it with the im2col path in one process).
cdef bint _conv_direct_on = True


def conv_direct(on=None):
    """Whether the compiled conv rows run one-channel convolutions directly (``True``, the default) or
    through im2col and a GEMM (``False``); ``on`` switches it. Returns the setting in effect.

    For benchmarks and tests that compare the two paths in one process.
    """
    global _conv_direct_on
    if on is not None:
        if not isinstance(on, (bool, np.bool_)):
            raise ValueError(f"conv_direct: on must be True, False or None; got {on!r}")
        _conv_direct_on = bool(on)
    return bool(_conv_direct_on)


def _cdir_check(Py_ssize_t C, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo):
    if C != 1:
        raise ValueError(f"conv1ch: X must have one channel, it has {C}")
    if sh < 1 or ph < 0 or pw < 0 or Ho < 1 or Wo < 1:
        raise ValueError(f"conv1ch: need sh >= 1, ph, pw >= 0 and a non-empty output; got sh={sh}, ph={ph}, "
                         f"pw={pw}, output {Ho}x{Wo}")


def conv1ch_forward(const floating[:, :, :, ::1] X, const floating[:, :, :, ::1] Wt, b, Py_ssize_t sh,
                    Py_ssize_t ph, Py_ssize_t pw, bint relu, floating[:, :, :, ::1] Z_out, A_out):
    """Z = X (n, H, W, 1) cross-correlated with Wt (kh, kw, 1, F), stride (sh, 1), zero padding (ph, pw
    top / left) + b (None: none); A_out = max(Z, 0) if relu else Z (None: not written)."""
    cdef Py_ssize_t n = X.shape[0], H = X.shape[1], W = X.shape[2], C = X.shape[3]
    cdef Py_ssize_t kh = Wt.shape[0], kw = Wt.shape[1], F = Wt.shape[3], Ho = Z_out.shape[1], Wo = Z_out.shape[2]
    cdef const floating[::1] bv
    cdef floating[:, :, :, ::1] Av
    cdef const floating* bp = NULL
    cdef floating* ap = NULL
    _cdir_check(C, sh, ph, pw, Ho, Wo)
    if Wt.shape[2] != 1 or Z_out.shape[0] != n or Z_out.shape[3] != F:
        raise ValueError(f"conv1ch_forward: Wt {tuple(Wt.shape)[:4]} / Z_out {tuple(Z_out.shape)[:4]} do not fit X")
    if b is not None:
        bv = b
        if bv.shape[0] != F:
            raise ValueError(f"conv1ch_forward: b has {bv.shape[0]} values for {F} filters")
        bp = &bv[0]
    if A_out is not None:
        Av = A_out
        if tuple(Av.shape)[:4] != tuple(Z_out.shape)[:4]:
            raise ValueError("conv1ch_forward: A_out must have Z_out's shape")
        ap = &Av[0, 0, 0, 0]
    if n == 0:
        return
    scratch = np.empty(fastnn_cdir_scratch(sizeof(floating), kh, kw, sh, Ho, Wo, F),
                       np.float32 if floating is float else np.float64)
    cdef floating[::1] sv = scratch
    with nogil:
        _cdir_prepare(kh, kw, sh, Ho, Wo, F, &Wt[0, 0, 0, 0], bp, &sv[0])
        _cdir_forward(n, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, &X[0, 0, 0, 0], &Wt[0, 0, 0, 0], bp, relu,
                      &sv[0], &Z_out[0, 0, 0, 0], ap if ap != NULL else &Z_out[0, 0, 0, 0])


def conv1ch_weight_grad(const floating[:, :, :, ::1] X, const floating[:, :, :, ::1] dZ, Py_ssize_t sh,
                        Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] dW_out):
    """dW[i, j, 0, f] = sum over n, ho, wo of X[n, ho*sh - ph + i, wo - pw + j, 0] * dZ[n, ho, wo, f]
    (zero in the padding), X (n, H, W, 1), dZ (n, Ho, Wo, F), dW_out (kh, kw, 1, F)."""
    cdef Py_ssize_t n = X.shape[0], H = X.shape[1], W = X.shape[2], C = X.shape[3]
    cdef Py_ssize_t kh = dW_out.shape[0], kw = dW_out.shape[1], F = dW_out.shape[3], Ho = dZ.shape[1], Wo = dZ.shape[2]
    _cdir_check(C, sh, ph, pw, Ho, Wo)
    if dW_out.shape[2] != 1 or dZ.shape[0] != n or dZ.shape[3] != F:
        raise ValueError(f"conv1ch_weight_grad: dZ {tuple(dZ.shape)[:4]} / dW_out {tuple(dW_out.shape)[:4]} "
                         f"do not fit X")
    scratch = np.empty(fastnn_cdir_scratch(sizeof(floating), kh, kw, sh, Ho, Wo, F),
                       np.float32 if floating is float else np.float64)
    cdef floating[::1] sv = scratch
    with nogil:
        _cdir_dw_accum(n, H, W, kh, kw, sh, ph, pw, Ho, Wo, F, &X[0, 0, 0, 0], &dZ[0, 0, 0, 0], True, &sv[0])
        _cdir_dw_fold(kh, kw, sh, Ho, Wo, F, &sv[0], &dW_out[0, 0, 0, 0])
