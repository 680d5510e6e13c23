# Conv and pooling rows of the compiled plan driver (fastnn/engine/plan.py; the Numba twin is
# fastnn/kernels/numba/plan_conv.py). Included by _kernels.pyx after conv.pxi and pool.pxi, whose
# per-image kernels these rows call on a shard's work blocks: im2col into the row's column block,
# one GEMM with bias and activation in its epilogue (the dense kernels), and in backward the dense
# backward on the columns plus col2im, skipped when no input gradient is needed (the first conv).
# Max pooling keeps each output's argmax as an offset h*W + w in the row's Z block, read as an
# integer of the element's width (int32 for float32, int64 for float64): no extra buffer.

from libc.stdint cimport int32_t

cdef extern from *:
    """
    /* Max pooling of one image with the window winner's offset h*W + w as an integer of type I
       (the same select as fastnn_maxpool_image_*; NaN wins, first maximum kept). */
    #define FASTNN_MAXPOOL_IDX(T, I, S) \
    static FASTNN_CLONES void fastnn_plan_maxpool_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, \
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, \
            Py_ssize_t Ho, Py_ssize_t Wo, const T* restrict X, T* restrict out, I* restrict am) { \
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


cdef inline bint _is_image_op(int64_t op) noexcept nogil:
    return op == OP_CONV2D or op == OP_MAXPOOL2D or op == OP_AVGPOOL2D


cdef void _plan_image_forward(const int64_t* r, double alpha, const floating* params, floating* wb,
                              Py_ssize_t m) noexcept nogil:
    """Forward of a conv / pool plan row on the shard's m rows."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t K = kh * kw * C, F, b, n_img = H * W * C, n_out = r[P_N_OUT]
    cdef const floating* X = wb + r[P_IN]
    cdef floating* cols
    if r[P_OP] == OP_CONV2D:
        F = n_out // (Ho * Wo)
        if r[P_COLS] >= 0:
            cols = wb + r[P_COLS]
            for b in range(m):
                _im2col_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img, cols + b * Ho * Wo * K)
        else:
            cols = wb + r[P_IN]  # a 1x1 kernel: the columns are the input
        _dense_fwd(m * Ho * Wo, K, F, cols, K, params + r[P_PARAM0], F,
                   params + r[P_PARAM1] if r[P_PARAM1] >= 0 else NULL, <int> r[P_ACT],  # NULL: no bias
                   <floating> alpha, wb + r[P_Z], F, wb + r[P_OUT], F)
    elif r[P_OP] == OP_MAXPOOL2D:
        for b in range(m):
            if floating is float:
                fastnn_plan_maxpool_f(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img,
                                      wb + r[P_OUT] + b * n_out, <int32_t*> (wb + r[P_Z]) + b * n_out)
            else:
                fastnn_plan_maxpool_d(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img,
                                      wb + r[P_OUT] + b * n_out, <int64_t*> (wb + r[P_Z]) + b * n_out)
    else:
        for b in range(m):
            _avgpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X + b * n_img, wb + r[P_OUT] + b * n_out, False)


cdef void _plan_image_backward(const int64_t* r, double alpha, const floating* params, floating* g,
                               const int64_t* wofs, floating* wb, floating* dA, floating* dX,
                               Py_ssize_t m) noexcept nogil:
    """Backward of a conv / pool plan row: parameter gradients into g, the input gradient into dX
    when the row needs one (dA: the row's output gradient)."""
    cdef Py_ssize_t H = r[P_H], W = r[P_W], C = r[P_C], Ho = r[P_HO], Wo = r[P_WO]
    cdef Py_ssize_t kh = r[P_KH], kw = r[P_KW], sh = r[P_SH], sw = r[P_SW], ph = r[P_PH], pw = r[P_PW]
    cdef Py_ssize_t K = kh * kw * C, F, b, n_img = H * W * C, n_out = r[P_N_OUT], P = m * Ho * Wo
    cdef bint need = r[P_NEED_DX] != 0, pointwise = r[P_COLS] < 0
    cdef int act = <int> r[P_ACT]
    cdef floating* dcols = NULL
    if r[P_OP] == OP_CONV2D:
        F = n_out // (Ho * Wo)
        if need:
            dcols = dX if pointwise else wb + wofs[W_DCOLS]
        _dense_bwd(P, K, F, wb + (r[P_IN] if pointwise else r[P_COLS]), K, params + r[P_PARAM0], F,
                   wb + r[P_Z], F, wb + r[P_OUT], F, dA, F, act, <floating> alpha,
                   dA if act == ACT_LINEAR else wb + wofs[W_DZ], F, g + r[P_PARAM0], F,
                   g + r[P_PARAM1] if r[P_PARAM1] >= 0 else NULL,
                   dcols, K)
        if need and not pointwise:
            for b in range(m):
                _col2im_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, dcols + b * Ho * Wo * K, dX + b * n_img)
    elif not need:
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
