# Convolution data movement: im2col / col2im on NHWC images (contracts in fastnn/kernels/reference/conv.py).
# Included by _kernels.pyx (one compile unit). The GEMM on the columns is the dense family's.
# For one window (ho, wo) and kernel row i, the valid kernel columns j0..j1-1 read kw*C... values that
# are contiguous in NHWC: each patch row is one memcpy (plus a memset for the padding).

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastnn_conv_set_omp_threads(int n) { int old = omp_get_max_threads(); omp_set_num_threads(n); return old; }
    #else
    static int fastnn_conv_set_omp_threads(int n) { (void) n; return 1; }
    #endif
    """
    int fastnn_conv_set_omp_threads(int n) noexcept nogil


def set_omp_threads(int n):
    """Set the threads of the OpenMP loops (im2col, col2im, pooling) started from the calling thread;
    return the previous setting.

    The row-shard threads of the per-layer path (fastnn.engine.sharded) set 1: each shard
    already has a core; nested teams would oversubscribe it. Other threads are unaffected.
    """
    return fastnn_conv_set_omp_threads(max(1, n))


cdef extern from *:
    """
    /* dst += src over n values, `restrict` + AVX2/AVX-512 clones: col2im's inner run. Without them
       GCC keeps the loop scalar (the pointers might alias), measured 8 ms vs Numba's 1.8 ms for
       one batch-128 col2im of the example CNN's second layer. */
    #define FASTNN_ADD_RUN(T, S) \
    static FASTNN_CLONES void fastnn_add_run_##S(T* restrict dst, const T* restrict src, Py_ssize_t n) { \
        for (Py_ssize_t t = 0; t < n; t++) dst[t] += src[t]; \
    }
    FASTNN_ADD_RUN(float, f)
    FASTNN_ADD_RUN(double, d)

    /* One image's im2col in C: an interior window (the common case) copies its kh patch rows with
       no bounds logic, a border window zero-fills what falls in the padding. Patch rows of few
       values (kw * C <= 16: a first layer's C = 1) are copied as one 16-value vector each where the
       excess lands in slots written later (a loop of 5 values, or a memcpy call per 5 values, costs
       more than the copy; GCC must not turn these loops into memcpy calls:
       no-tree-loop-distribute-patterns); longer rows are one memcpy each. The Cython version of
       these loops spent 19% of a LeNet-5 epoch here (batch 128, 1 thread). */
    #define FASTNN_IM2COL(T, S) \
    static FASTNN_CLONES __attribute__((optimize("no-tree-loop-distribute-patterns"))) \
    void fastnn_im2col_image_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw, \
            Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho, Py_ssize_t Wo, \
            const T* restrict X, T* restrict cols) { \
        const Py_ssize_t R = kw * C, K = kh * R, WC = W * C; \
        /* the last window whose last patch row may be written 16 values wide inside the columns */ \
        const Py_ssize_t last_spill = (Ho * Wo * K - (kh - 1) * R - 16) / K; \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            const Py_ssize_t h0 = ho * sh - ph; \
            const int rows_in = h0 >= 0 && h0 + kh <= H; \
            for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
                const Py_ssize_t w0 = wo * sw - pw; \
                T* restrict d = cols + (ho * Wo + wo) * K; \
                if (rows_in && w0 >= 0 && w0 + kw <= W) { \
                    const T* restrict s = X + h0 * WC + w0 * C; \
                    if (R <= 16 && ho * Wo + wo <= last_spill && (h0 + kh - 1) * WC + w0 * C + 16 <= H * WC) { \
                        /* 16 values per patch row (one vector): what spills past the row lands in \
                           slots written after it, within this image's columns and input */ \
                        for (Py_ssize_t i = 0; i < kh; i++) for (Py_ssize_t t = 0; t < 16; t++) d[i * R + t] = s[i * WC + t]; \
                    } else if (R <= 16) { \
                        for (Py_ssize_t i = 0; i < kh; i++) for (Py_ssize_t t = 0; t < R; t++) d[i * R + t] = s[i * WC + t]; \
                    } else { \
                        for (Py_ssize_t i = 0; i < kh; i++) memcpy(d + i * R, s + i * WC, R * sizeof(T)); \
                    } \
                    continue; \
                } \
                Py_ssize_t j0 = w0 < 0 ? -w0 : 0, j1 = w0 + kw > W ? W - w0 : kw; \
                if (j1 < j0) j1 = j0; \
                for (Py_ssize_t i = 0; i < kh; i++) { \
                    T* restrict di = d + i * R; \
                    const Py_ssize_t h = h0 + i; \
                    if (h < 0 || h >= H || j1 == j0) { for (Py_ssize_t t = 0; t < R; t++) di[t] = (T) 0; continue; } \
                    const T* restrict s = X + h * WC + (w0 + j0) * C; \
                    for (Py_ssize_t t = 0; t < j0 * C; t++) di[t] = (T) 0; \
                    for (Py_ssize_t t = 0; t < (j1 - j0) * C; t++) di[j0 * C + t] = s[t]; \
                    for (Py_ssize_t t = j1 * C; t < R; t++) di[t] = (T) 0; \
                } \
            } \
        } \
    }
    FASTNN_IM2COL(float, f)
    FASTNN_IM2COL(double, d)
    """
    void fastnn_add_run_f(float* dst, const float* src, Py_ssize_t n) noexcept nogil
    void fastnn_add_run_d(double* dst, const double* src, Py_ssize_t n) noexcept nogil
    void fastnn_im2col_image_f(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                               Py_ssize_t Wo, const float* X, float* cols) noexcept nogil
    void fastnn_im2col_image_d(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                               Py_ssize_t Wo, const double* X, double* cols) noexcept nogil


cdef inline void _im2col_span(Py_ssize_t wo, Py_ssize_t sw, Py_ssize_t pw, Py_ssize_t kw, Py_ssize_t W,
                           Py_ssize_t* j0, Py_ssize_t* j1) noexcept nogil:
    """Kernel columns j0 <= j < j1 of window wo that fall inside the image (0 <= wo*sw - pw + j < W)."""
    cdef Py_ssize_t w = wo * sw - pw
    j0[0] = -w if w < 0 else 0
    j1[0] = W - w if w + kw > W else kw
    if j1[0] < j0[0]:
        j1[0] = j0[0]


cdef inline void _im2col_image(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                               Py_ssize_t Ho, Py_ssize_t Wo, const floating* X, floating* cols) noexcept nogil:
    """One image: cols (Ho*Wo, kh*kw*C) from X (H, W, C)."""
    if floating is float:
        fastnn_im2col_image_f(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X, cols)
    else:
        fastnn_im2col_image_d(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X, cols)


cdef void _col2im_image(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                        Py_ssize_t Ho, Py_ssize_t Wo, const floating* cols, floating* dX) noexcept nogil:
    """One image: dX (H, W, C) = the adjoint of im2col applied to cols (Ho*Wo, kh*kw*C)."""
    cdef Py_ssize_t ho, wo, i, h, j0, j1, m, K = kh * kw * C
    cdef const floating* src
    cdef floating* dst
    memset(dX, 0, H * W * C * sizeof(floating))
    for ho in range(Ho):
        for wo in range(Wo):
            _im2col_span(wo, sw, pw, kw, W, &j0, &j1)
            for i in range(kh):
                h = ho * sh - ph + i
                if h < 0 or h >= H or j1 == j0:
                    continue
                src = cols + (ho * Wo + wo) * K + (i * kw + j0) * C
                dst = dX + (h * W + wo * sw - pw + j0) * C
                m = (j1 - j0) * C
                if floating is float:
                    fastnn_add_run_f(dst, src, m)
                else:
                    fastnn_add_run_d(dst, src, m)


# --------------------------------------------------------------------------- Python wrappers
def im2col(const floating[:, :, :, ::1] X, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] cols_out):
    """cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c], 0 in the padding."""
    cdef Py_ssize_t n = X.shape[0], H = X.shape[1], W = X.shape[2], C = X.shape[3]
    cdef Py_ssize_t Ho = cols_out.shape[1], Wo = cols_out.shape[2], b
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * kh * kw * C
    if cols_out.shape[0] != n or cols_out.shape[3] != kh * kw * C:
        raise ValueError(f"cols_out shape {tuple(cols_out.shape)[:4]} does not fit X {tuple(X.shape)[:4]} "
                         f"and a {kh}x{kw} kernel")
    if n == 0 or out_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            _im2col_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, &X[0, 0, 0, 0] + b * in_size,
                          &cols_out[0, 0, 0, 0] + b * out_size)


def col2im(const floating[:, :, :, ::1] cols, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] dX_out):
    """dX[n, h, w, c] = sum of cols[n, ho, wo, (i*kw + j)*C + c] over the patches that read X[n, h, w, c]."""
    cdef Py_ssize_t n = dX_out.shape[0], H = dX_out.shape[1], W = dX_out.shape[2], C = dX_out.shape[3]
    cdef Py_ssize_t Ho = cols.shape[1], Wo = cols.shape[2], b
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * kh * kw * C
    if cols.shape[0] != n or cols.shape[3] != kh * kw * C:
        raise ValueError(f"cols shape {tuple(cols.shape)[:4]} does not fit dX_out {tuple(dX_out.shape)[:4]} "
                         f"and a {kh}x{kw} kernel")
    if n == 0 or in_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            if out_size == 0:
                memset(&dX_out[0, 0, 0, 0] + b * in_size, 0, in_size * sizeof(floating))
            else:
                _col2im_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, &cols[0, 0, 0, 0] + b * out_size,
                              &dX_out[0, 0, 0, 0] + b * in_size)
