# Activations: _act_row / _bias_act (forward), _act_bwd_row / _act_bwd (backward).
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

cdef extern from *:
    """
    /* The extension builds for the baseline ISA (SSE2) so it runs on any x86-64; the hottest
       elementwise loops also get AVX2 and AVX-512 clones, picked once at load time by CPU feature
       (GCC ifunc; by feature, not by model: virtual machines often report a model GCC does not know). */
    #ifndef FASTNN_CLONES
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define FASTNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define FASTNN_CLONES
    #endif
    #endif
    /* ReLU backward, branch-free: with the branchy form a zero-mean input (after a norm layer)
       mispredicts every other element. In place (dz == g) is allowed. */
    #define FASTNN_RELU_BWD(T, S) \
    static FASTNN_CLONES void fastnn_relu_bwd_##S(const T* z, const T* g, T* dz, Py_ssize_t k) { \
        if (dz == g) { for (Py_ssize_t j = 0; j < k; j++) dz[j] = z[j] > 0 ? dz[j] : (T) 0; return; } \
        const T* restrict zr = z; const T* restrict gr = g; T* restrict out = dz; \
        for (Py_ssize_t j = 0; j < k; j++) out[j] = zr[j] > 0 ? gr[j] : (T) 0; \
    }
    FASTNN_RELU_BWD(float, f)
    FASTNN_RELU_BWD(double, d)
    /* float32 tanh (recurrent gates, tanh and GELU layers): a rational minimax tanh (Eigen's
       generic_fast_tanh_float; a few ulp, pure arithmetic, so the loops vectorize -- libm tanhf is a
       scalar call per element; the same choice and constants as the numba backend's _math.py).
       float64 (the gradient checks) keeps libm tanh. sigmoid(x) = (1 + tanh(x / 2)) / 2 exactly, so
       the gates share it. NaN propagates. */
    static inline float fastnn_tanh_f(float x) {
        const float clamp = 7.90531110763549805f;
        float y = x < -clamp ? -clamp : (x > clamp ? clamp : x);
        float x2 = y * y;
        float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
        p = x2 * p + -8.60467152213735e-11f;
        p = x2 * p + 5.12229709037114e-08f;
        p = x2 * p + 1.48572235717979e-05f;
        p = x2 * p + 6.37261928875436e-04f;
        p = x2 * p + 4.89352455891786e-03f;
        p = y * p;
        float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
        q = x2 * q + 2.26843463243900e-03f;
        q = x2 * q + 4.89352518554385e-03f;
        return fabsf(y) < 0.0004f ? y : p / q;
    }
    static inline double fastnn_tanh_d(double x) { return tanh(x); }
    /* tanh and GELU over a row through fastnn_tanh_*: vectorized clones (libm's scalar tanhf made a
       tanh or GELU layer 130x slower than a ReLU one). a may be z; dz may be g. */
    #define FASTNN_TANH_FWD(T, S) \
    static FASTNN_CLONES void fastnn_tanh_fwd_##S(const T* z, T* a, Py_ssize_t k) { \
        for (Py_ssize_t j = 0; j < k; j++) a[j] = fastnn_tanh_##S(z[j]); \
    }
    FASTNN_TANH_FWD(float, f)
    FASTNN_TANH_FWD(double, d)
    #define FASTNN_GELU_FWD(T, S) \
    static FASTNN_CLONES void fastnn_gelu_fwd_##S(const T* z, T* a, Py_ssize_t k, T c0, T c1) { \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T v = z[j]; a[j] = (T) 0.5 * v * ((T) 1 + fastnn_tanh_##S(c0 * (v + c1 * v * v * v))); \
        } \
    }
    FASTNN_GELU_FWD(float, f)
    FASTNN_GELU_FWD(double, d)
    #define FASTNN_GELU_BWD(T, S) \
    static FASTNN_CLONES void fastnn_gelu_bwd_##S(const T* z, const T* g, T* dz, Py_ssize_t k, T c0, T c1) { \
        for (Py_ssize_t j = 0; j < k; j++) { \
            T v = z[j]; T t = fastnn_tanh_##S(c0 * (v + c1 * v * v * v)); \
            dz[j] = g[j] * ((T) 0.5 * ((T) 1 + t) \
                            + (T) 0.5 * v * ((T) 1 - t * t) * (c0 * ((T) 1 + (T) 3 * c1 * v * v))); \
        } \
    }
    FASTNN_GELU_BWD(float, f)
    FASTNN_GELU_BWD(double, d)
    /* ReLU forward, branch-free (a may be z); NaN propagates, as np.maximum. */
    #define FASTNN_RELU_FWD(T, S) \
    static FASTNN_CLONES void fastnn_relu_fwd_##S(const T* z, T* a, Py_ssize_t k) { \
        for (Py_ssize_t j = 0; j < k; j++) { T v = z[j]; a[j] = v < (T) 0 ? (T) 0 : v; } \
    }
    FASTNN_RELU_FWD(float, f)
    FASTNN_RELU_FWD(double, d)
    """
    void fastnn_relu_fwd_f(const float* z, float* a, Py_ssize_t k) noexcept nogil
    void fastnn_relu_fwd_d(const double* z, double* a, Py_ssize_t k) noexcept nogil
    void fastnn_relu_bwd_f(const float* z, const float* g, float* dz, Py_ssize_t k) noexcept nogil
    void fastnn_relu_bwd_d(const double* z, const double* g, double* dz, Py_ssize_t k) noexcept nogil
    float fastnn_tanh_f(float x) noexcept nogil
    double fastnn_tanh_d(double x) noexcept nogil
    void fastnn_tanh_fwd_f(const float* z, float* a, Py_ssize_t k) noexcept nogil
    void fastnn_tanh_fwd_d(const double* z, double* a, Py_ssize_t k) noexcept nogil
    void fastnn_gelu_fwd_f(const float* z, float* a, Py_ssize_t k, float c0, float c1) noexcept nogil
    void fastnn_gelu_fwd_d(const double* z, double* a, Py_ssize_t k, double c0, double c1) noexcept nogil
    void fastnn_gelu_bwd_f(const float* z, const float* g, float* dz, Py_ssize_t k, float c0,
                           float c1) noexcept nogil
    void fastnn_gelu_bwd_d(const double* z, const double* g, double* dz, Py_ssize_t k, double c0,
                           double c1) noexcept nogil

cdef int _act_row(const floating* z, floating* a, Py_ssize_t k, int act,
                  floating alpha) noexcept nogil:
    """a = f(z) over one row of k elements (a may be z); STATUS_BAD_ACT for an unknown code.

    With k = 0 it touches no memory: callers probe a code that way before working."""
    cdef Py_ssize_t j
    cdef floating v, e, s, mx
    cdef floating zero = 0, one = 1, half = 0.5
    cdef floating c0 = <floating> SQRT_2_OVER_PI, c1 = <floating> GELU_C
    if act == ACT_LINEAR:
        if a != z:
            for j in range(k):
                a[j] = z[j]
    elif act == ACT_RELU:
        if floating is float:
            fastnn_relu_fwd_f(z, a, k)
        else:
            fastnn_relu_fwd_d(z, a, k)
    elif act == ACT_LEAKY_RELU:
        for j in range(k):
            v = z[j]
            a[j] = v if v > zero else alpha * v
    elif act == ACT_ELU:
        for j in range(k):
            v = z[j]
            a[j] = v if v > zero else alpha * _expm1(v)
    elif act == ACT_SIGMOID:
        for j in range(k):
            v = z[j]
            e = _exp(-_fabs(v))
            a[j] = one / (one + e) if v >= zero else e / (one + e)
    elif act == ACT_TANH:
        if floating is float:
            fastnn_tanh_fwd_f(z, a, k)
        else:
            fastnn_tanh_fwd_d(z, a, k)
    elif act == ACT_GELU:
        if floating is float:
            fastnn_gelu_fwd_f(z, a, k, c0, c1)
        else:
            fastnn_gelu_fwd_d(z, a, k, c0, c1)
    elif act == ACT_SILU:
        for j in range(k):
            v = z[j]
            e = _exp(-_fabs(v))
            s = one / (one + e) if v >= zero else e / (one + e)
            a[j] = v * s
    elif act == ACT_SOFTMAX:
        if k == 0:
            return STATUS_OK
        mx = z[0]
        for j in range(1, k):
            if z[j] > mx:
                mx = z[j]
        s = zero
        for j in range(k):
            e = _exp(z[j] - mx)
            a[j] = e
            s = s + e
        for j in range(k):
            a[j] = a[j] / s
    else:
        return STATUS_BAD_ACT
    return STATUS_OK


cdef int _bias_act(Py_ssize_t n, Py_ssize_t k, floating* Z, Py_ssize_t ldz, const floating* b,
                   floating* A, Py_ssize_t lda, int act, floating alpha) noexcept nogil:
    """Z += b (skipped if b is NULL); A = f(Z): one pass over the rows (A may be Z). Returns a status."""
    cdef Py_ssize_t i, j
    cdef floating* zr
    cdef int status = _act_row(Z, A, 0, act, alpha)  # probe the code first
    if status != STATUS_OK:
        return status
    for i in range(n):
        zr = Z + i * ldz
        if b != NULL:
            for j in range(k):
                zr[j] = zr[j] + b[j]
        _act_row(zr, A + i * lda, k, act, alpha)
    return STATUS_OK


cdef int _act_bwd_row(const floating* z, const floating* a, const floating* g, floating* dz,
                      Py_ssize_t k, int act, floating alpha) noexcept nogil:
    """dz = g * f'(z) over one row (a Jacobian-vector product for softmax); STATUS_BAD_ACT if unknown."""
    cdef Py_ssize_t j
    cdef floating v, t, e, s
    cdef floating zero = 0, one = 1, half = 0.5
    cdef floating c0 = <floating> SQRT_2_OVER_PI, c1 = <floating> GELU_C
    if act == ACT_LINEAR:
        if dz != g:
            for j in range(k):
                dz[j] = g[j]
    elif act == ACT_RELU:
        if floating is float:
            fastnn_relu_bwd_f(z, g, dz, k)
        else:
            fastnn_relu_bwd_d(z, g, dz, k)
    elif act == ACT_LEAKY_RELU:
        for j in range(k):
            dz[j] = g[j] if z[j] > zero else alpha * g[j]
    elif act == ACT_ELU:
        for j in range(k):
            dz[j] = g[j] if z[j] > zero else g[j] * (a[j] + alpha)
    elif act == ACT_SIGMOID:
        for j in range(k):
            dz[j] = g[j] * a[j] * (one - a[j])
    elif act == ACT_TANH:
        for j in range(k):
            dz[j] = g[j] * (one - a[j] * a[j])
    elif act == ACT_GELU:
        if floating is float:
            fastnn_gelu_bwd_f(z, g, dz, k, c0, c1)
        else:
            fastnn_gelu_bwd_d(z, g, dz, k, c0, c1)
    elif act == ACT_SILU:
        for j in range(k):
            v = z[j]
            e = _exp(-_fabs(v))
            s = one / (one + e) if v >= zero else e / (one + e)
            dz[j] = g[j] * (s + v * s * (one - s))
    elif act == ACT_SOFTMAX:
        s = zero
        for j in range(k):
            s = s + g[j] * a[j]
        for j in range(k):
            dz[j] = a[j] * (g[j] - s)
    else:
        return STATUS_BAD_ACT
    return STATUS_OK


cdef int _act_bwd(Py_ssize_t n, Py_ssize_t k, const floating* Z, Py_ssize_t ldz,
                  const floating* A, Py_ssize_t lda, const floating* dA, Py_ssize_t ldg,
                  int act, floating alpha, floating* dZ, Py_ssize_t lddz,
                  floating* db) noexcept nogil:
    """dZ = dA * f'(Z); if db is not NULL, db = column sums of dZ in the same pass (rows in order).
    Returns a status (nothing written for an unknown code)."""
    cdef Py_ssize_t i, j
    cdef floating* dzr
    cdef int status = _act_bwd_row(Z, A, dA, dZ, 0, act, alpha)  # probe the code first
    if status != STATUS_OK:
        return status
    if db != NULL:
        for j in range(k):
            db[j] = 0
    for i in range(n):
        dzr = dZ + i * lddz
        _act_bwd_row(Z + i * ldz, A + i * lda, dA + i * ldg, dzr, k, act, alpha)
        if db != NULL:
            for j in range(k):
                db[j] = db[j] + dzr[j]
    return STATUS_OK


# --------------------------------------------------------------------------- Python wrappers
def activation_forward(const floating[:, :] Z, int act, double alpha, floating[:, :] A_out):
    """A = f(Z), row-wise for softmax."""
    cdef Py_ssize_t n = Z.shape[0], k = Z.shape[1], i
    cdef Py_ssize_t ldz = _ld(n, k, Z.strides[0], sizeof(floating))
    cdef Py_ssize_t lda = _ld(n, k, A_out.strides[0], sizeof(floating))
    _check_rows(Z, "Z")
    _check_rows(A_out, "A_out")
    _check_status(_act_row(<floating*> NULL, <floating*> NULL, 0, act, <floating> alpha), act)
    if n == 0 or k == 0:
        return
    with nogil:
        for i in range(n):
            _act_row(&Z[0, 0] + i * ldz, &A_out[0, 0] + i * lda, k, act, <floating> alpha)


def activation_backward(const floating[:, :] Z, const floating[:, :] A, const floating[:, :] dA,
                        int act, double alpha, floating[:, :] dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    cdef Py_ssize_t n = Z.shape[0], k = Z.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    _check_rows(Z, "Z")
    _check_rows(A, "A")
    _check_rows(dA, "dA")
    _check_rows(dZ_out, "dZ_out")
    _check_status(_act_bwd_row(<floating*> NULL, <floating*> NULL, <floating*> NULL, <floating*> NULL,
                               0, act, <floating> alpha), act)
    if n == 0 or k == 0:
        return
    with nogil:
        _act_bwd(n, k, &Z[0, 0], _ld(n, k, Z.strides[0], sz), &A[0, 0], _ld(n, k, A.strides[0], sz),
                 &dA[0, 0], _ld(n, k, dA.strides[0], sz), act, <floating> alpha,
                 &dZ_out[0, 0], _ld(n, k, dZ_out.strides[0], sz), NULL)
