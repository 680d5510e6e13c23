# Multi-head self-attention: contract in fastnn/kernels/reference/attention.py.
# Included by _kernels.pyx (one compile unit); names start with _attn.
#
# The (sample, head) pairs are split over the threads (prange); pairs write disjoint blocks
# of P, dS and columns of O / dQKV, so threads share no output and a pair's result does not depend on
# the thread count. A head's q, k, v are strided column blocks of QKV (row stride 3*D): BLAS reads them
# in place through the leading dimension, so the four products per pair are GEMMs with no copy and no
# scratch; the stable softmax (row maximum subtracted) and the masks are one fused pass per row.

cdef extern from *:
    """
    /* The attention softmax and its backward in C. float32: 8-lane blocks (lanes.pxi: two SSE registers,
       or one AVX register in the AVX2+FMA build picked at run time by CPU feature), the
       exponential a Cephes-style polynomial (about 1 ulp, pure arithmetic). libm's scalar expf per score
       made the softmax two thirds of attention_forward (perf; 700 us of a batch-32 training step's
       4.2 ms on the bench transformer, 23.5 of 57.6 ms of a batch-1000 predict). The plain-C form with
       FASTNN_CLONES did not vectorize: the clones' vectorizer gives up on its selects (-ftrapping-math);
       explicit lanes need no if-conversion. float64 (the gradient checks) keeps libm exp, scalar. */
    /* exp(x) for x <= 0 (a score minus its row maximum), within 1e-7 relative: 2^-n exp(r), |r| <~ ln2/2,
       exp(r) Cephes's degree-6 polynomial. 0 below -87 (exp < 2^-125: nothing next to the row maximum's
       1, and no denormals; -inf: a masked key); NaN propagates. */
    FASTNN_AI fastnn_v8f fastnn_exp8_nonpos(fastnn_v8f x) {
        const int cut = 0x42ae0000;  /* 87.0f */
        fastnn_v8i u = (fastnn_v8i) x, a = u & 0x7fffffff;
        fastnn_v8i big = a > cut;  /* |x| > 87, inf or NaN: lanes of -1 */
        fastnn_v8f xc = (fastnn_v8f) ((u & ~big) | (big & (int) 0xc2ae0000u));  /* clamped to -87 */
        fastnn_v8i ni = __builtin_convertvector(0.5f - xc * 1.44269504088896341f, fastnn_v8i);  /* >= 0: floor */
        fastnn_v8f nf = __builtin_convertvector(ni, fastnn_v8f);
        fastnn_v8f r = xc + nf * 0.693359375f + nf * -2.12194440e-4f;
        fastnn_v8f y = 1.9875691500e-4f * r + 1.3981999507e-3f;
        y = y * r + 8.3334519073e-3f;
        y = y * r + 4.1665795894e-2f;
        y = y * r + 1.6666665459e-1f;
        y = y * r + 5.0000001201e-1f;
        y = y * r * r + r + 1.0f;
        fastnn_v8f v = y * (fastnn_v8f) ((127 - ni) << 23);
        return (fastnn_v8f) (((fastnn_v8i) v & ~big) | (u & (a > 0x7f800000)));
    }
    /* One row of lim scores: in place, scaled (masked keys -inf) -> returns the row maximum (-inf: no key
       left). Rows of 8 or more go in 8-lane blocks whose last one overlaps the one before it, loaded before
       anything is stored, instead of a scalar tail: assembling a tail block lane by lane stalled store
       forwarding and cost as much as the rest of the row (measured 143 vs 66 ns a row of 28). */
    FASTNN_AI float fastnn_row_scale_max_f(Py_ssize_t lim, float* restrict p, float scale,
                                           const float* restrict key_mask) {
        const fastnn_v8f ninf = fastnn_v8_splat(-INFINITY);
        if (lim < 8) {
            float m = -INFINITY;
            for (Py_ssize_t c = 0; c < lim; c++) {
                float v = key_mask && key_mask[c] == 0 ? -INFINITY : p[c] * scale;
                p[c] = v;
                m = v > m ? v : m;
            }
            return m;
        }
        Py_ssize_t last = lim - 8;
        fastnn_v8f tail = fastnn_v8_load(p + last) * scale, top = ninf;
        if (key_mask) tail = fastnn_v8_select(fastnn_v8_load(key_mask + last) != 0.0f, tail, ninf);
        for (Py_ssize_t c = 0; c < last; c += 8) {
            fastnn_v8f x = fastnn_v8_load(p + c) * scale;
            if (key_mask) x = fastnn_v8_select(fastnn_v8_load(key_mask + c) != 0.0f, x, ninf);
            top = fastnn_v8_select(x > top, x, top);  /* NaN lanes keep top: NaN still propagates by its exp */
            fastnn_v8_store(p + c, x);
        }
        top = fastnn_v8_select(tail > top, tail, top);
        fastnn_v8_store(p + last, tail);
        return fastnn_v8_hmax(top);
    }
    /* p[c] = exp(p[c] - m) over one row of lim scores <= m; returns their sum (a fixed order). */
    FASTNN_AI float fastnn_row_exp_f(Py_ssize_t lim, float* restrict p, float m) {
        if (lim < 8) {  /* one block padded with -inf (exp: 0) */
            fastnn_v8f x = fastnn_v8_splat(-INFINITY);
            for (Py_ssize_t j = 0; j < lim; j++) x[j] = p[j];
            x = fastnn_exp8_nonpos(x - m);
            for (Py_ssize_t j = 0; j < lim; j++) p[j] = x[j];
            return fastnn_v8_sum(x);
        }
        const fastnn_v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
        Py_ssize_t last = lim - 8, c;
        fastnn_v8f tail = fastnn_v8_load(p + last), acc = fastnn_v8_splat(0.0f);
        for (c = 0; c < last; c += 8) {
            fastnn_v8f x = fastnn_exp8_nonpos(fastnn_v8_load(p + c) - m);
            acc += x;
            fastnn_v8_store(p + c, x);
        }
        tail = fastnn_exp8_nonpos(tail - m);
        fastnn_v8i fresh = lane >= (fastnn_v8i) {0} + (int) (c - last);  /* lanes no block before held */
        acc += fastnn_v8_select(fresh, tail, fastnn_v8_splat(0.0f));
        fastnn_v8_store(p + last, tail);
        return fastnn_v8_sum(acc);
    }
    /* The (T, T) block in groups of 8 rows, one pass at a time (maxima, exponentials, scaling): the
       exponentials of 8 rows are independent chains the core overlaps. */
    #define FASTNN_SOFTMAX_BLOCK_F(NAME, ATTR) \
    static ATTR void NAME(Py_ssize_t T, float* restrict P, float scale, int causal, const float* restrict key_mask) { \
        float m[8], inv[8]; \
        for (Py_ssize_t a0 = 0; a0 < T; a0 += 8) { \
            Py_ssize_t rows = T - a0 < 8 ? T - a0 : 8; \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                Py_ssize_t a = a0 + r; \
                m[r] = fastnn_row_scale_max_f(causal ? a + 1 : T, P + a * T, scale, key_mask); \
                if (m[r] == -INFINITY) m[r] = 0;  /* no key left (a fully padded sequence): P = 0, O = 0 */ \
            } \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                Py_ssize_t a = a0 + r; \
                float tot = fastnn_row_exp_f(causal ? a + 1 : T, P + a * T, m[r]); \
                inv[r] = tot > 0 ? 1.0f / tot : 0.0f; \
            } \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                Py_ssize_t a = a0 + r, lim = causal ? a + 1 : T; \
                float* restrict p = P + a * T; \
                for (Py_ssize_t c = 0; c < lim; c++) p[c] *= inv[r]; \
                for (Py_ssize_t c = lim; c < T; c++) p[c] = 0; \
            } \
        } \
    }
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    FASTNN_SOFTMAX_BLOCK_F(fastnn_attn_softmax_f_avx2, __attribute__((target("avx2,fma"))))
    FASTNN_SOFTMAX_BLOCK_F(fastnn_attn_softmax_f_base, )
    static void fastnn_attn_softmax_f(Py_ssize_t T, float* P, float scale, int causal, const float* key_mask) {
        if (fastnn_have_avx2_fma()) fastnn_attn_softmax_f_avx2(T, P, scale, causal, key_mask);
        else fastnn_attn_softmax_f_base(T, P, scale, causal, key_mask);
    }
    #else
    FASTNN_SOFTMAX_BLOCK_F(fastnn_attn_softmax_f, )
    #endif
    static void fastnn_attn_softmax_d(Py_ssize_t T, double* restrict P, double scale, int causal,
                                      const double* restrict key_mask) {
        for (Py_ssize_t a = 0; a < T; a++) {
            Py_ssize_t lim = causal ? a + 1 : T;
            double* restrict p = P + a * T;
            double top = -INFINITY, tot = 0;
            for (Py_ssize_t c = 0; c < lim; c++) {
                double v = key_mask && key_mask[c] == 0 ? -INFINITY : p[c] * scale;
                p[c] = v;
                top = v > top ? v : top;
            }
            if (top == -INFINITY) top = 0;
            for (Py_ssize_t c = 0; c < lim; c++) { p[c] = exp(p[c] - top); tot += p[c]; }
            double inv = tot > 0 ? 1.0 / tot : 0.0;
            for (Py_ssize_t c = 0; c < lim; c++) p[c] *= inv;
            for (Py_ssize_t c = lim; c < T; c++) p[c] = 0;
        }
    }
    /* dS (T, T) holds dP = dO v.T: dS = P * (dP - rowsum(dP * P)) * scale, in place. float32 rows of 8 or
       more in 8-lane blocks, the last one overlapping (loaded before anything is stored), as the forward. */
    static FASTNN_CLONES void fastnn_attn_softmax_bwd_d(Py_ssize_t T, const double* restrict P,
                                                        double* restrict dS, double scale) {
        for (Py_ssize_t a = 0; a < T; a++) {
            const double* restrict p = P + a * T;
            double* restrict d = dS + a * T;
            double row = 0;
            _Pragma("omp simd reduction(+:row)") for (Py_ssize_t c = 0; c < T; c++) row += d[c] * p[c];
            for (Py_ssize_t c = 0; c < T; c++) d[c] = p[c] * (d[c] - row) * scale;
        }
    }
    #define FASTNN_SOFTMAX_BWD_F(NAME, ATTR) \
    static ATTR void NAME(Py_ssize_t T, const float* restrict P, float* restrict dS, float scale) { \
        const fastnn_v8i lane = {0, 1, 2, 3, 4, 5, 6, 7}; \
        for (Py_ssize_t a = 0; a < T; a++) { \
            const float* restrict p = P + a * T; \
            float* restrict d = dS + a * T; \
            if (T < 8) { \
                float row = 0; \
                for (Py_ssize_t c = 0; c < T; c++) row += d[c] * p[c]; \
                for (Py_ssize_t c = 0; c < T; c++) d[c] = p[c] * (d[c] - row) * scale; \
                continue; \
            } \
            Py_ssize_t last = T - 8, c; \
            fastnn_v8f acc = fastnn_v8_splat(0.0f), dt = fastnn_v8_load(d + last), pt = fastnn_v8_load(p + last); \
            for (c = 0; c < last; c += 8) acc += fastnn_v8_load(d + c) * fastnn_v8_load(p + c); \
            fastnn_v8i fresh = lane >= (fastnn_v8i) {0} + (int) (c - last); \
            acc += fastnn_v8_select(fresh, dt * pt, fastnn_v8_splat(0.0f)); \
            float row = fastnn_v8_sum(acc); \
            for (c = 0; c < last; c += 8) { \
                fastnn_v8f pc = fastnn_v8_load(p + c); \
                fastnn_v8_store(d + c, pc * (fastnn_v8_load(d + c) - row) * scale); \
            } \
            fastnn_v8_store(d + last, pt * (dt - row) * scale); \
        } \
    }
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    FASTNN_SOFTMAX_BWD_F(fastnn_attn_softmax_bwd_f_avx2, __attribute__((target("avx2,fma"))))
    FASTNN_SOFTMAX_BWD_F(fastnn_attn_softmax_bwd_f_base, )
    static void fastnn_attn_softmax_bwd_f(Py_ssize_t T, const float* P, float* dS, float scale) {
        if (fastnn_have_avx2_fma()) fastnn_attn_softmax_bwd_f_avx2(T, P, dS, scale);
        else fastnn_attn_softmax_bwd_f_base(T, P, dS, scale);
    }
    #else
    FASTNN_SOFTMAX_BWD_F(fastnn_attn_softmax_bwd_f, )
    #endif
    """
    void fastnn_attn_softmax_f(Py_ssize_t T, float* P, float scale, int causal, const float* key_mask) noexcept nogil
    void fastnn_attn_softmax_d(Py_ssize_t T, double* P, double scale, int causal,
                               const double* key_mask) noexcept nogil
    void fastnn_attn_softmax_bwd_f(Py_ssize_t T, const float* P, float* dS, float scale) noexcept nogil
    void fastnn_attn_softmax_bwd_d(Py_ssize_t T, const double* P, double* dS, double scale) noexcept nogil


cdef inline void _attn_softmax_rows(Py_ssize_t T, floating* P, floating scale, bint causal,
                                    const floating* key_mask) noexcept nogil:
    """P (T, T) holds q k.T: scale, mask (causal: no look-ahead; key_mask[c] == 0: weight 0, NULL: none)
    and softmax each row in place; a row without any key left becomes 0."""
    if floating is float:
        fastnn_attn_softmax_f(T, P, scale, causal, key_mask)
    else:
        fastnn_attn_softmax_d(T, P, scale, causal, key_mask)


cdef inline void _attn_softmax_bwd(Py_ssize_t T, const floating* P, floating* dS, floating scale) noexcept nogil:
    """dS (T, T) holds dP: dS = P * (dP - rowsum(dP * P)) * scale, in place."""
    if floating is float:
        fastnn_attn_softmax_bwd_f(T, P, dS, scale)
    else:
        fastnn_attn_softmax_bwd_d(T, P, dS, scale)


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
    cdef Py_ssize_t i = pair // n_heads, h = pair % n_heads, dk = D // n_heads
    cdef const floating* X = QKV + i * T * 3 * D
    cdef const floating* g = dO + i * T * D + h * dk
    cdef const floating* Ph = P + pair * T * T
    cdef floating* dS = dS_buf + pair * T * T
    cdef floating* G = dQKV + i * T * 3 * D
    cdef floating scale = <floating> (1.0 / sqrt(<double> dk))
    _gemm(c'N', c'T', <int> T, <int> T, <int> dk, <floating> 1, g, <int> D, X + 2 * D + h * dk, <int> (3 * D),
          <floating> 0, dS, <int> T)  # dP = dO v.T
    _attn_softmax_bwd(T, Ph, dS, scale)  # dS = P * (dP - rowsum(dP * P)) * scale
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
