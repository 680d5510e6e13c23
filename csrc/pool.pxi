# Pooling: max (with argmax) and average over windows of NHWC images, forward and backward
# (contracts in fastnn/kernels/reference/pool.py). Included by _kernels.pyx (one compile unit).
# Channels innermost (contiguous); one image per OpenMP iteration.

cdef extern from *:
    """
    /* One image of max pooling in C with AVX2/AVX-512 clones (FASTNN_CLONES, activations.pxi) and
       `restrict`: the per-channel max + argmax update is a branch-free select that GCC vectorizes
       only for those targets; the SSE2 baseline build of the same loop in Cython ran 10x slower
       (measured: 128 x 26 x 26 x 32 float32, 9 ms -> 0.9 ms; Numba's LLVM build 0.95 ms).
       NaN wins, as numpy's argmax: the first NaN is kept. */
    #define FASTNN_MAXPOOL(T, S) \
    static FASTNN_CLONES void fastnn_maxpool_image_##S(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, \
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, \
            Py_ssize_t Ho, Py_ssize_t Wo, const T* restrict X, T* restrict out, int64_t* restrict am) { \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) { \
            Py_ssize_t h0 = ho * sh - ph, h1 = h0 + kh; if (h0 < 0) h0 = 0; if (h1 > H) h1 = H; \
            for (Py_ssize_t wo = 0; wo < Wo; wo++) { \
                Py_ssize_t w0 = wo * sw - pw, w1 = w0 + kw; if (w0 < 0) w0 = 0; if (w1 > W) w1 = W; \
                T* restrict o = out + (ho * Wo + wo) * C; \
                int64_t* restrict a = am + (ho * Wo + wo) * C; \
                const T* restrict x0 = X + (h0 * W + w0) * C; \
                int64_t i0 = h0 * W + w0; \
                for (Py_ssize_t c = 0; c < C; c++) { o[c] = x0[c]; a[c] = i0; } \
                for (Py_ssize_t h = h0; h < h1; h++) for (Py_ssize_t w = w0; w < w1; w++) { \
                    const T* restrict x = X + (h * W + w) * C; \
                    int64_t idx = h * W + w; \
                    for (Py_ssize_t c = 0; c < C; c++) { \
                        T v = x[c], cur = o[c]; \
                        int take = (v > cur) | ((v != v) & (cur == cur)); \
                        o[c] = take ? v : cur; \
                        a[c] = take ? idx : a[c]; \
                    } \
                } \
            } \
        } \
    }
    FASTNN_MAXPOOL(float, f)
    FASTNN_MAXPOOL(double, d)
    """
    void fastnn_maxpool_image_f(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                                Py_ssize_t Wo, const float* X, float* out, int64_t* am) noexcept nogil
    void fastnn_maxpool_image_d(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Ho,
                                Py_ssize_t Wo, const double* X, double* out, int64_t* am) noexcept nogil


cdef inline void _maxpool_image(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t Ho, Py_ssize_t Wo, const floating* X, floating* out,
                                int64_t* am) noexcept nogil:
    if floating is float:
        fastnn_maxpool_image_f(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X, out, am)
    else:
        fastnn_maxpool_image_d(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, X, out, am)


cdef void _avgpool_image(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t Ho, Py_ssize_t Wo, const floating* X, floating* out,
                         bint backward) noexcept nogil:
    """Forward: out (Ho, Wo, C) = window means of X. Backward (X is dout, out is dX): the adjoint."""
    cdef Py_ssize_t ho, wo, h, w, c, h0, h1, w0, w1
    cdef double inv, acc
    cdef const floating* x
    cdef floating* o
    if backward:
        memset(out, 0, H * W * C * sizeof(floating))
    for ho in range(Ho):
        h0 = ho * sh - ph
        h1 = h0 + kh
        if h0 < 0:
            h0 = 0
        if h1 > H:
            h1 = H
        for wo in range(Wo):
            w0 = wo * sw - pw
            w1 = w0 + kw
            if w0 < 0:
                w0 = 0
            if w1 > W:
                w1 = W
            inv = 1.0 / ((h1 - h0) * (w1 - w0))
            if backward:
                x = X + (ho * Wo + wo) * C
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        o = out + (h * W + w) * C
                        for c in range(C):
                            o[c] = <floating> (o[c] + x[c] * inv)
            else:
                o = out + (ho * Wo + wo) * C
                for c in range(C):  # float64 sum per channel (windows are small; a strided walk is fine)
                    acc = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            acc = acc + X[(h * W + w) * C + c]
                    o[c] = <floating> (acc * inv)


# --------------------------------------------------------------------------- Python wrappers
def maxpool_forward(const floating[:, :, :, ::1] X, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                    Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] out,
                    int64_t[:, :, :, ::1] argmax_out):
    """out = max of each window (padding ignored); argmax_out = flat index h*W + w of the first maximum."""
    cdef Py_ssize_t n = X.shape[0], H = X.shape[1], W = X.shape[2], C = X.shape[3]
    cdef Py_ssize_t Ho = out.shape[1], Wo = out.shape[2], b
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * C
    if out.shape[0] != n or out.shape[3] != C or tuple(argmax_out.shape)[:4] != tuple(out.shape)[:4]:
        raise ValueError("maxpool_forward: out and argmax_out must have shape (n, Ho, Wo, C) of X's n and C")
    if n == 0 or out_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            _maxpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, &X[0, 0, 0, 0] + b * in_size,
                           &out[0, 0, 0, 0] + b * out_size, &argmax_out[0, 0, 0, 0] + b * out_size)


def maxpool_backward(const floating[:, :, :, ::1] dout, const int64_t[:, :, :, ::1] argmax,
                     floating[:, :, :, ::1] dX_out):
    """dX = 0, then dX[n, argmax // W, argmax % W, c] += dout[n, ho, wo, c]."""
    cdef Py_ssize_t n = dX_out.shape[0], H = dX_out.shape[1], W = dX_out.shape[2], C = dX_out.shape[3]
    cdef Py_ssize_t Ho = dout.shape[1], Wo = dout.shape[2], b, q, c, k
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * C
    cdef const floating* d
    cdef const int64_t* a
    cdef floating* dx
    if dout.shape[0] != n or dout.shape[3] != C or tuple(argmax.shape)[:4] != tuple(dout.shape)[:4]:
        raise ValueError("maxpool_backward: dout and argmax must have shape (n, Ho, Wo, C) of dX_out's n and C")
    if n == 0 or in_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            dx = &dX_out[0, 0, 0, 0] + b * in_size
            d = &dout[0, 0, 0, 0] + b * out_size if out_size > 0 else NULL
            a = &argmax[0, 0, 0, 0] + b * out_size if out_size > 0 else NULL
            memset(dx, 0, in_size * sizeof(floating))
            for q in range(Ho * Wo):
                for c in range(C):
                    k = a[q * C + c]
                    if 0 <= k < H * W:  # a forged index writes nothing
                        dx[k * C + c] += d[q * C + c]


def avgpool_forward(const floating[:, :, :, ::1] X, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                    Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] out):
    """out = mean of each window over its valid (non-padding) entries."""
    cdef Py_ssize_t n = X.shape[0], H = X.shape[1], W = X.shape[2], C = X.shape[3]
    cdef Py_ssize_t Ho = out.shape[1], Wo = out.shape[2], b
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * C
    if out.shape[0] != n or out.shape[3] != C:
        raise ValueError("avgpool_forward: out must have shape (n, Ho, Wo, C) of X's n and C")
    if n == 0 or out_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            _avgpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, &X[0, 0, 0, 0] + b * in_size,
                           &out[0, 0, 0, 0] + b * out_size, False)


def avgpool_backward(const floating[:, :, :, ::1] dout, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                     Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, floating[:, :, :, ::1] dX_out):
    """dX = sum over the windows holding each input of dout / (valid entries of that window)."""
    cdef Py_ssize_t n = dX_out.shape[0], H = dX_out.shape[1], W = dX_out.shape[2], C = dX_out.shape[3]
    cdef Py_ssize_t Ho = dout.shape[1], Wo = dout.shape[2], b
    cdef Py_ssize_t in_size = H * W * C, out_size = Ho * Wo * C
    if dout.shape[0] != n or dout.shape[3] != C:
        raise ValueError("avgpool_backward: dout must have shape (n, Ho, Wo, C) of dX_out's n and C")
    if n == 0 or in_size == 0:
        return
    with nogil:
        for b in prange(n, schedule="static"):
            if out_size == 0:
                memset(&dX_out[0, 0, 0, 0] + b * in_size, 0, in_size * sizeof(floating))
            else:
                _avgpool_image(H, W, C, kh, kw, sh, sw, ph, pw, Ho, Wo, &dout[0, 0, 0, 0] + b * out_size,
                               &dX_out[0, 0, 0, 0] + b * in_size, True)
