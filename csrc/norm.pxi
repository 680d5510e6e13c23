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


cdef void _ln_fwd(Py_ssize_t n, Py_ssize_t k, const floating* X, const floating* gamma,
                  const floating* beta, double eps, floating* Xhat, floating* inv_std,
                  floating* out) noexcept nogil:
    """Per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma * Xhat + beta."""
    cdef Py_ssize_t i, j
    cdef double s, mean, ss, d, inv, xh
    for i in range(n):
        s = 0.0
        for j in range(k):
            s += X[i * k + j]
        mean = s / k
        ss = 0.0
        for j in range(k):
            d = X[i * k + j] - mean
            ss += d * d
        inv = 1.0 / sqrt(ss / k + eps)
        inv_std[i] = <floating> inv
        for j in range(k):
            xh = (X[i * k + j] - mean) * inv
            Xhat[i * k + j] = <floating> xh
            out[i * k + j] = <floating> (<double> gamma[j] * xh + <double> beta[j])


cdef void _ln_bwd(Py_ssize_t n, Py_ssize_t k, const floating* dout, const floating* Xhat,
                  const floating* inv_std, const floating* gamma, floating* dgamma,
                  floating* dbeta, floating* dX, double* sb, double* sg) noexcept nogil:
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    cdef Py_ssize_t i, j
    cdef double s1, s2, d, xh, g, c
    for j in range(k):
        sb[j] = 0.0
        sg[j] = 0.0
    for i in range(n):
        s1 = 0.0
        s2 = 0.0
        for j in range(k):
            d = dout[i * k + j]
            xh = Xhat[i * k + j]
            sb[j] += d
            sg[j] += d * xh
            g = d * <double> gamma[j]
            s1 += g
            s2 += g * xh
        if dX != NULL:
            c = <double> inv_std[i] / k
            for j in range(k):
                g = <double> dout[i * k + j] * <double> gamma[j]
                dX[i * k + j] = <floating> (c * (k * g - s1 - Xhat[i * k + j] * s2))
    for j in range(k):
        dbeta[j] = <floating> sb[j]
        dgamma[j] = <floating> sg[j]


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
