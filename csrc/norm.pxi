# Normalization: batch norm and layer norm, forward and backward (contracts in
# fastnn/kernels/reference/norm.py). Included by _kernels.pyx (one compile unit).
# Statistics and gradient sums accumulate in float64 for both float types.

cdef void _bn_fwd(Py_ssize_t n, Py_ssize_t k, const floating* X, const floating* gamma,
                  const floating* beta, double eps, bint training, floating* running_mean,
                  floating* running_var, double momentum, floating* Xhat, floating* inv_std,
                  floating* out, double* mean, double* inv) noexcept nogil:
    """Xhat = (X - mean) / sqrt(var + eps), out = gamma * Xhat + beta; ``mean``/``inv`` are k-scratch."""
    cdef Py_ssize_t i, j
    cdef double d, ss, xh
    if training:
        # Row-major passes (contiguous) with per-column accumulators, as the numba kernel.
        for j in range(k):
            mean[j] = 0.0
            inv[j] = 0.0
        for i in range(n):
            for j in range(k):
                mean[j] += X[i * k + j]
        for j in range(k):
            mean[j] /= n
        for i in range(n):
            for j in range(k):
                d = X[i * k + j] - mean[j]
                inv[j] += d * d
        for j in range(k):
            ss = inv[j]
            running_mean[j] = <floating> (momentum * running_mean[j] + (1.0 - momentum) * mean[j])
            if n > 1:
                running_var[j] = <floating> (momentum * running_var[j] + (1.0 - momentum) * (ss / (n - 1.0)))
            inv[j] = 1.0 / sqrt(ss / n + eps)
    else:
        for j in range(k):
            mean[j] = running_mean[j]
            inv[j] = 1.0 / sqrt(<double> running_var[j] + eps)
    for j in range(k):
        inv_std[j] = <floating> inv[j]
    for i in range(n):
        for j in range(k):
            xh = (X[i * k + j] - mean[j]) * inv[j]
            Xhat[i * k + j] = <floating> xh
            out[i * k + j] = <floating> (<double> gamma[j] * xh + <double> beta[j])


cdef void _bn_bwd(Py_ssize_t n, Py_ssize_t k, const floating* dout, const floating* Xhat,
                  const floating* inv_std, const floating* gamma, floating* dgamma,
                  floating* dbeta, floating* dX, double* sb, double* sg) noexcept nogil:
    """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
    cdef Py_ssize_t i, j
    cdef double d, c
    for j in range(k):
        sb[j] = 0.0
        sg[j] = 0.0
    for i in range(n):
        for j in range(k):
            d = dout[i * k + j]
            sb[j] += d
            sg[j] += d * Xhat[i * k + j]
    for j in range(k):
        dbeta[j] = <floating> sb[j]
        dgamma[j] = <floating> sg[j]
    if dX != NULL:
        for i in range(n):
            for j in range(k):
                c = <double> gamma[j] * <double> inv_std[j] / n
                dX[i * k + j] = <floating> (c * (n * <double> dout[i * k + j] - sb[j]
                                                 - Xhat[i * k + j] * sg[j]))


cdef extern from *:
    """
    /* LayerNorm rows in C: `restrict` and AVX2/AVX-512 clones (FASTNN_CLONES, activations.pxi),
       the per-row reductions as `omp simd` reductions (vectorized, a fixed order per binary). */
    #define FASTNN_LN_KERNELS(T, S) \
    static FASTNN_CLONES void fastnn_ln_fwd_##S(Py_ssize_t n, Py_ssize_t k, const T* restrict X, \
            const T* restrict gamma, const T* restrict beta, double eps, T* restrict Xhat, \
            T* restrict inv_std, T* restrict out) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            const T* x = X + i * k; double s = 0.0, ss = 0.0; \
            _Pragma("omp simd reduction(+:s)") for (Py_ssize_t j = 0; j < k; j++) s += x[j]; \
            double mean = s / k; \
            _Pragma("omp simd reduction(+:ss)") for (Py_ssize_t j = 0; j < k; j++) { \
                double d = x[j] - mean; ss += d * d; } \
            double inv = 1.0 / sqrt(ss / k + eps); \
            inv_std[i] = (T) inv; \
            for (Py_ssize_t j = 0; j < k; j++) { \
                double xh = (x[j] - mean) * inv; \
                Xhat[i * k + j] = (T) xh; out[i * k + j] = (T) ((double) gamma[j] * xh + (double) beta[j]); } \
        } \
    } \
    static FASTNN_CLONES void fastnn_ln_bwd_##S(Py_ssize_t n, Py_ssize_t k, const T* restrict dout, \
            const T* restrict Xhat, const T* restrict inv_std, const T* restrict gamma, T* restrict dgamma, \
            T* restrict dbeta, T* restrict dX, double* restrict sb, double* restrict sg) { \
        for (Py_ssize_t j = 0; j < k; j++) { sb[j] = 0.0; sg[j] = 0.0; } \
        for (Py_ssize_t i = 0; i < n; i++) { \
            const T* d = dout + i * k; const T* xh = Xhat + i * k; double s1 = 0.0, s2 = 0.0; \
            for (Py_ssize_t j = 0; j < k; j++) { sb[j] += d[j]; sg[j] += (double) d[j] * xh[j]; } \
            _Pragma("omp simd reduction(+:s1,s2)") for (Py_ssize_t j = 0; j < k; j++) { \
                double g = (double) d[j] * gamma[j]; s1 += g; s2 += g * xh[j]; } \
            if (dX) { \
                double c = (double) inv_std[i] / k; \
                for (Py_ssize_t j = 0; j < k; j++) \
                    dX[i * k + j] = (T) (c * (k * ((double) d[j] * gamma[j]) - s1 - xh[j] * s2)); } \
        } \
        for (Py_ssize_t j = 0; j < k; j++) { dbeta[j] = (T) sb[j]; dgamma[j] = (T) sg[j]; } \
    }
    FASTNN_LN_KERNELS(float, f)
    FASTNN_LN_KERNELS(double, d)
    /* float32 rows whose width is a multiple of 8 (lanes.pxi), the same float64 statistics, in groups of 8
       rows, one pass at a time: the row-by-row form is a chain of dependent steps per row (sum, mean,
       squares, sqrt, division, then the row) that left the core waiting, measured 2 ns a value (119 us for
       the (896, 64) LayerNorm of a batch-32 transformer step, 11x a numpy add of the same size). */
    #define FASTNN_LN8_FWD_BODY \
    FASTNN_AI void fastnn_ln8_fwd_body(Py_ssize_t n, Py_ssize_t k, const float* restrict X, const float* restrict gamma, \
            const float* restrict beta, double eps, float* restrict Xhat, float* restrict inv_std, \
            float* restrict out) { \
        double mean[8], inv[8]; \
        for (Py_ssize_t i0 = 0; i0 < n; i0 += 8) { \
            Py_ssize_t rows = n - i0 < 8 ? n - i0 : 8; \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                const float* x = X + (i0 + r) * k; fastnn_v4d lo = {0}, hi = {0}; \
                for (Py_ssize_t j = 0; j < k; j += 8) { \
                    fastnn_v8f v = fastnn_v8_load(x + j); lo += fastnn_v8_lo(v); hi += fastnn_v8_hi(v); } \
                mean[r] = (fastnn_v4d_sum(lo) + fastnn_v4d_sum(hi)) / k; \
            } \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                const float* x = X + (i0 + r) * k; fastnn_v4d lo = {0}, hi = {0}; \
                for (Py_ssize_t j = 0; j < k; j += 8) { \
                    fastnn_v8f v = fastnn_v8_load(x + j); \
                    fastnn_v4d dl = fastnn_v8_lo(v) - mean[r], dh = fastnn_v8_hi(v) - mean[r]; \
                    lo += dl * dl; hi += dh * dh; } \
                inv[r] = (fastnn_v4d_sum(lo) + fastnn_v4d_sum(hi)) / k + eps; \
            } \
            for (Py_ssize_t r = 0; r < rows; r++) inv[r] = 1.0 / sqrt(inv[r]); \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                const float* x = X + (i0 + r) * k; \
                float* xh_row = Xhat + (i0 + r) * k; float* o = out + (i0 + r) * k; \
                inv_std[i0 + r] = (float) inv[r]; \
                for (Py_ssize_t j = 0; j < k; j += 8) { \
                    fastnn_v8f v = fastnn_v8_load(x + j), g = fastnn_v8_load(gamma + j), b = fastnn_v8_load(beta + j); \
                    fastnn_v4d xl = (fastnn_v8_lo(v) - mean[r]) * inv[r], xu = (fastnn_v8_hi(v) - mean[r]) * inv[r]; \
                    fastnn_v8_store(xh_row + j, fastnn_v8_narrow(xl, xu)); \
                    fastnn_v8_store(o + j, fastnn_v8_narrow(fastnn_v8_lo(g) * xl + fastnn_v8_lo(b), \
                                                            fastnn_v8_hi(g) * xu + fastnn_v8_hi(b))); \
                } \
            } \
        } \
    }
    #define FASTNN_LN8_BWD_BODY \
    FASTNN_AI void fastnn_ln8_bwd_body(Py_ssize_t n, Py_ssize_t k, const float* restrict dout, const float* restrict Xhat, \
            const float* restrict inv_std, const float* restrict gamma, float* restrict dgamma, \
            float* restrict dbeta, float* restrict dX, double* restrict sb, double* restrict sg) { \
        double s1[8], s2[8]; \
        for (Py_ssize_t j = 0; j < k; j++) { sb[j] = 0.0; sg[j] = 0.0; } \
        for (Py_ssize_t i0 = 0; i0 < n; i0 += 8) { \
            Py_ssize_t rows = n - i0 < 8 ? n - i0 : 8; \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                const float* d = dout + (i0 + r) * k; const float* xh = Xhat + (i0 + r) * k; \
                fastnn_v4d a1l = {0}, a1h = {0}, a2l = {0}, a2h = {0}; \
                for (Py_ssize_t j = 0; j < k; j += 8) { \
                    fastnn_v8f dv = fastnn_v8_load(d + j), xv = fastnn_v8_load(xh + j), gv = fastnn_v8_load(gamma + j); \
                    fastnn_v4d gl = fastnn_v8_lo(dv) * fastnn_v8_lo(gv), gh = fastnn_v8_hi(dv) * fastnn_v8_hi(gv); \
                    a1l += gl; a1h += gh; a2l += gl * fastnn_v8_lo(xv); a2h += gh * fastnn_v8_hi(xv); \
                } \
                for (Py_ssize_t j = 0; j < k; j++) { sb[j] += d[j]; sg[j] += (double) d[j] * xh[j]; } \
                s1[r] = fastnn_v4d_sum(a1l) + fastnn_v4d_sum(a1h); s2[r] = fastnn_v4d_sum(a2l) + fastnn_v4d_sum(a2h); \
            } \
            if (!dX) continue; \
            for (Py_ssize_t r = 0; r < rows; r++) { \
                const float* d = dout + (i0 + r) * k; const float* xh = Xhat + (i0 + r) * k; \
                float* o = dX + (i0 + r) * k; double c = (double) inv_std[i0 + r] / k, kd = (double) k; \
                for (Py_ssize_t j = 0; j < k; j += 8) { \
                    fastnn_v8f dv = fastnn_v8_load(d + j), xv = fastnn_v8_load(xh + j), gv = fastnn_v8_load(gamma + j); \
                    fastnn_v4d gl = fastnn_v8_lo(dv) * fastnn_v8_lo(gv), gh = fastnn_v8_hi(dv) * fastnn_v8_hi(gv); \
                    fastnn_v8_store(o + j, fastnn_v8_narrow(c * (kd * gl - s1[r] - fastnn_v8_lo(xv) * s2[r]), \
                                                            c * (kd * gh - s1[r] - fastnn_v8_hi(xv) * s2[r]))); \
                } \
            } \
        } \
        for (Py_ssize_t j = 0; j < k; j++) { dbeta[j] = (float) sb[j]; dgamma[j] = (float) sg[j]; } \
    }
    FASTNN_LN8_FWD_BODY
    FASTNN_LN8_BWD_BODY
    /* Widths 64 and 128 compiled with the width known (loops unrolled): 1.7x the runtime-width loops
       (measured on a (896, 64) float32 LayerNorm). */
    #define FASTNN_LN8_FWD(NAME, ATTR) \
    static ATTR void NAME(Py_ssize_t n, Py_ssize_t k, const float* X, const float* gamma, const float* beta, \
            double eps, float* Xhat, float* inv_std, float* out) { \
        if (k == 64) fastnn_ln8_fwd_body(n, 64, X, gamma, beta, eps, Xhat, inv_std, out); \
        else if (k == 128) fastnn_ln8_fwd_body(n, 128, X, gamma, beta, eps, Xhat, inv_std, out); \
        else fastnn_ln8_fwd_body(n, k, X, gamma, beta, eps, Xhat, inv_std, out); \
    }
    #define FASTNN_LN8_BWD(NAME, ATTR) \
    static ATTR void NAME(Py_ssize_t n, Py_ssize_t k, const float* dout, const float* Xhat, const float* inv_std, \
            const float* gamma, float* dgamma, float* dbeta, float* dX, double* sb, double* sg) { \
        if (k == 64) fastnn_ln8_bwd_body(n, 64, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg); \
        else if (k == 128) fastnn_ln8_bwd_body(n, 128, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg); \
        else fastnn_ln8_bwd_body(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg); \
    }
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    FASTNN_LN8_FWD(fastnn_ln8_fwd_avx2, FASTNN_AVX2_FMA)
    FASTNN_LN8_FWD(fastnn_ln8_fwd_base, )
    FASTNN_LN8_BWD(fastnn_ln8_bwd_avx2, FASTNN_AVX2_FMA)
    FASTNN_LN8_BWD(fastnn_ln8_bwd_base, )
    static void fastnn_ln8_fwd(Py_ssize_t n, Py_ssize_t k, const float* X, const float* gamma, const float* beta,
                               double eps, float* Xhat, float* inv_std, float* out) {
        if (fastnn_have_avx2_fma()) fastnn_ln8_fwd_avx2(n, k, X, gamma, beta, eps, Xhat, inv_std, out);
        else fastnn_ln8_fwd_base(n, k, X, gamma, beta, eps, Xhat, inv_std, out);
    }
    static void fastnn_ln8_bwd(Py_ssize_t n, Py_ssize_t k, const float* dout, const float* Xhat, const float* inv_std,
                               const float* gamma, float* dgamma, float* dbeta, float* dX, double* sb, double* sg) {
        if (fastnn_have_avx2_fma()) fastnn_ln8_bwd_avx2(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg);
        else fastnn_ln8_bwd_base(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg);
    }
    #else
    FASTNN_LN8_FWD(fastnn_ln8_fwd, )
    FASTNN_LN8_BWD(fastnn_ln8_bwd, )
    #endif
    """
    void fastnn_ln8_fwd(Py_ssize_t n, Py_ssize_t k, const float* X, const float* gamma, const float* beta,
                        double eps, float* Xhat, float* inv_std, float* out) noexcept nogil
    void fastnn_ln8_bwd(Py_ssize_t n, Py_ssize_t k, const float* dout, const float* Xhat, const float* inv_std,
                        const float* gamma, float* dgamma, float* dbeta, float* dX, double* sb,
                        double* sg) noexcept nogil
    void fastnn_ln_fwd_f(Py_ssize_t n, Py_ssize_t k, const float* X, const float* gamma, const float* beta,
                         double eps, float* Xhat, float* inv_std, float* out) noexcept nogil
    void fastnn_ln_fwd_d(Py_ssize_t n, Py_ssize_t k, const double* X, const double* gamma, const double* beta,
                         double eps, double* Xhat, double* inv_std, double* out) noexcept nogil
    void fastnn_ln_bwd_f(Py_ssize_t n, Py_ssize_t k, const float* dout, const float* Xhat, const float* inv_std,
                         const float* gamma, float* dgamma, float* dbeta, float* dX, double* sb,
                         double* sg) noexcept nogil
    void fastnn_ln_bwd_d(Py_ssize_t n, Py_ssize_t k, const double* dout, const double* Xhat,
                         const double* inv_std, const double* gamma, double* dgamma, double* dbeta, double* dX,
                         double* sb, double* sg) noexcept nogil


cdef inline void _ln_fwd(Py_ssize_t n, Py_ssize_t k, const floating* X, const floating* gamma,
                         const floating* beta, double eps, floating* Xhat, floating* inv_std,
                         floating* out) noexcept nogil:
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    if floating is float:
        if k % 8 == 0:
            fastnn_ln8_fwd(n, k, X, gamma, beta, eps, Xhat, inv_std, out)
        else:
            fastnn_ln_fwd_f(n, k, X, gamma, beta, eps, Xhat, inv_std, out)
    else:
        fastnn_ln_fwd_d(n, k, X, gamma, beta, eps, Xhat, inv_std, out)


cdef inline void _ln_bwd(Py_ssize_t n, Py_ssize_t k, const floating* dout, const floating* Xhat,
                         const floating* inv_std, const floating* gamma, floating* dgamma,
                         floating* dbeta, floating* dX, double* sb, double* sg) noexcept nogil:
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat).

    dX may be NULL; ``sb``/``sg`` are k float64 scratch each."""
    if floating is float:
        if k % 8 == 0:
            fastnn_ln8_bwd(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg)
        else:
            fastnn_ln_bwd_f(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg)
    else:
        fastnn_ln_bwd_d(n, k, dout, Xhat, inv_std, gamma, dgamma, dbeta, dX, sb, sg)


# --------------------------------------------------------------------------- Python wrappers
# C-contiguous buffers of one float type; fastnn.kernels.cython.norm adapts anything else.
def batchnorm_forward(const floating[:, ::1] X, const floating[::1] gamma, const floating[::1] beta,
                      double eps, bint training, floating[::1] running_mean,
                      floating[::1] running_var, double momentum, floating[:, ::1] Xhat_out,
                      floating[::1] inv_std_out, floating[:, ::1] out):
    """Xhat = (X - mean) / sqrt(var + eps), out = gamma * Xhat + beta; batch stats in training."""
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1]
    scratch = np.zeros((2, max(k, 1)))
    cdef double[:, ::1] s = scratch
    if k == 0 or (n == 0 and training):
        return
    with nogil:
        _bn_fwd(n, k, &X[0, 0] if n else NULL, &gamma[0], &beta[0], eps, training, &running_mean[0],
                &running_var[0], momentum, &Xhat_out[0, 0] if n else NULL, &inv_std_out[0],
                &out[0, 0] if n else NULL, &s[0, 0], &s[1, 0])


def batchnorm_backward(const floating[:, ::1] dout, const floating[:, ::1] Xhat,
                       const floating[::1] inv_std, const floating[::1] gamma,
                       floating[::1] dgamma_out, floating[::1] dbeta_out, floating[:, ::1] dX_out):
    """dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)."""
    cdef Py_ssize_t n = dout.shape[0], k = dout.shape[1]
    scratch = np.zeros((2, max(k, 1)))
    cdef double[:, ::1] s = scratch
    cdef floating* dX = NULL
    if k == 0:
        return
    if n == 0:
        dgamma_out[:] = 0
        dbeta_out[:] = 0
        return
    if dX_out is not None:
        dX = &dX_out[0, 0]
    with nogil:
        _bn_bwd(n, k, &dout[0, 0], &Xhat[0, 0], &inv_std[0], &gamma[0], &dgamma_out[0],
                &dbeta_out[0], dX, &s[0, 0], &s[1, 0])


def layernorm_forward(const floating[:, ::1] X, const floating[::1] gamma, const floating[::1] beta,
                      double eps, floating[:, ::1] Xhat_out, floating[::1] inv_std_out,
                      floating[:, ::1] out):
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1]
    if n == 0 or k == 0:
        return
    with nogil:
        _ln_fwd(n, k, &X[0, 0], &gamma[0], &beta[0], eps, &Xhat_out[0, 0], &inv_std_out[0], &out[0, 0])


def layernorm_backward(const floating[:, ::1] dout, const floating[:, ::1] Xhat,
                       const floating[::1] inv_std, const floating[::1] gamma,
                       floating[::1] dgamma_out, floating[::1] dbeta_out, floating[:, ::1] dX_out):
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    cdef Py_ssize_t n = dout.shape[0], k = dout.shape[1]
    scratch = np.zeros((2, max(k, 1)))
    cdef double[:, ::1] s = scratch
    cdef floating* dX = NULL
    if k == 0:
        return
    if n == 0:
        dgamma_out[:] = 0
        dbeta_out[:] = 0
        return
    if dX_out is not None:
        dX = &dX_out[0, 0]
    with nogil:
        _ln_bwd(n, k, &dout[0, 0], &Xhat[0, 0], &inv_std[0], &gamma[0], &dgamma_out[0],
                &dbeta_out[0], dX, &s[0, 0], &s[1, 0])
