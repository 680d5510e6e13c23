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
    """
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
        fastnn_ln_fwd_f(n, k, X, gamma, beta, eps, Xhat, inv_std, out)
    else:
        fastnn_ln_fwd_d(n, k, X, gamma, beta, eps, Xhat, inv_std, out)


cdef inline void _ln_bwd(Py_ssize_t n, Py_ssize_t k, const floating* dout, const floating* Xhat,
                         const floating* inv_std, const floating* gamma, floating* dgamma,
                         floating* dbeta, floating* dX, double* sb, double* sg) noexcept nogil:
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat).

    dX may be NULL; ``sb``/``sg`` are k float64 scratch each."""
    if floating is float:
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
