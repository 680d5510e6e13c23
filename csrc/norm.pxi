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
    /* LayerNorm rows in C, one body for both float types and every width: L-lane blocks (GCC vector
       extensions: T loaded, widened to L doubles) and a scalar tail. The row statistics and the sums are
       float64 for both float types. Per row two passes forward (the float64 sums of x - x[0] and of their
       squares, then the normalized row) and two backward (the row sums with dgamma/dbeta, then dX), with
       Xhat recomputed from the row input and the row's mean and inv_std (what the plan rows store: no Xhat
       written forward, none read back). gamma and beta are widened once per call into float64 scratch.
       A (128, 256) float32 block (one shard of batch 256), one thread, the kernels timed alone with the
       extension's flags: forward 16 us, backward 25 us on AVX-512 (about 20 / 32 on the AVX2 kernel),
       against 62 / 77 us for the 8-row-group AVX2 kernel before (Xhat stored, three passes forward, 4-double
       halves); with the 128-wide row, ~7% of the benchmark MLP's Dense kernel time per shard, was ~22%.
       Pairing two rows in backward's first pass (one read-modify-write of the dbeta/dgamma sums for both)
       measured no gain at widths 128 and 256. */
    #define FASTNN_LN_LD(v, p) __builtin_memcpy(&(v), (p), sizeof (v))
    #define FASTNN_LN_BODIES(S, ATTR, T, TV, DV, L) \
    static ATTR void fastnn_ln_fwd_##S(Py_ssize_t n, Py_ssize_t k, const T* restrict X, const T* restrict gamma, \
            const T* restrict beta, double eps, double* restrict mean, double* restrict inv, T* restrict Xhat, \
            T* restrict out, double* restrict gb) { \
        const Py_ssize_t kv = k - k % L; double* restrict gd = gb; double* restrict bd = gb + k; \
        for (Py_ssize_t j = 0; j < k; j++) { gd[j] = gamma[j]; bd[j] = beta[j]; } \
        for (Py_ssize_t i = 0; i < n; i++) { \
            /* shifted sums (K = the row's first value): the cancellation in s2 - s1^2/k is of the order of */ \
            /* (mean - K)^2 / var, about 1 for K a sample, however large the mean; one read of the row */ \
            const T* restrict x = X + i * k; const double K = x[0]; \
            DV a1 = {0}, a2 = {0}, b1 = {0}, b2 = {0}; TV v, w; Py_ssize_t j = 0; double s1 = 0.0, s2 = 0.0; \
            for (; j + 2 * L <= kv; j += 2 * L) { /* two chains: the adds' latency, not their count, bounds it */ \
                FASTNN_LN_LD(v, x + j); FASTNN_LN_LD(w, x + j + L); \
                DV d = __builtin_convertvector(v, DV) - K, e = __builtin_convertvector(w, DV) - K; \
                a1 += d; a2 += d * d; b1 += e; b2 += e * e; } \
            if (j < kv) { FASTNN_LN_LD(v, x + j); DV d = __builtin_convertvector(v, DV) - K; a1 += d; a2 += d * d; } \
            a1 += b1; a2 += b2; \
            for (int l = 0; l < L; l++) { s1 += a1[l]; s2 += a2[l]; } \
            for (j = kv; j < k; j++) { double d = x[j] - K; s1 += d; s2 += d * d; } \
            double ss = s2 - s1 * s1 / k; \
            const double mu = K + s1 / k, iv = 1.0 / sqrt((ss < 0.0 ? 0.0 : ss) / k + eps); /* NaN stays NaN */ \
            mean[i] = mu; inv[i] = iv; \
            T* restrict o = out + i * k; T* restrict h = Xhat ? Xhat + i * k : 0; \
            for (j = 0; j < kv; j += L) { \
                DV g, bb; FASTNN_LN_LD(v, x + j); FASTNN_LN_LD(g, gd + j); FASTNN_LN_LD(bb, bd + j); \
                DV xh = (__builtin_convertvector(v, DV) - mu) * iv; \
                TV y = __builtin_convertvector(g * xh + bb, TV); __builtin_memcpy(o + j, &y, sizeof y); \
                if (h) { TV t = __builtin_convertvector(xh, TV); __builtin_memcpy(h + j, &t, sizeof t); } } \
            for (j = kv; j < k; j++) { \
                double xh = (x[j] - mu) * iv; o[j] = (T) (gd[j] * xh + bd[j]); if (h) h[j] = (T) xh; } \
        } \
    } \
    /* mean NULL: src is Xhat itself (the layer-by-layer op), else Xhat = (src - mean) * inv per row. */ \
    static ATTR void fastnn_ln_bwd_##S(Py_ssize_t n, Py_ssize_t k, const T* restrict dout, const T* restrict src, \
            const double* restrict mean, const double* restrict inv, const T* restrict gamma, T* restrict dgamma, \
            T* restrict dbeta, T* restrict dX, double* restrict sc) { \
        const Py_ssize_t kv = k - k % L; const double kd = (double) k; \
        double* restrict sb = sc; double* restrict sg = sc + k; double* restrict gd = sc + 2 * k; \
        for (Py_ssize_t j = 0; j < k; j++) { sb[j] = 0.0; sg[j] = 0.0; gd[j] = gamma[j]; } \
        for (Py_ssize_t i = 0; i < n; i++) { \
            const T* restrict d = dout + i * k; const T* restrict x = src + i * k; \
            const double mu = mean ? mean[i] : 0.0, s = mean ? inv[i] : 1.0; \
            DV a1 = {0}, a2 = {0}; TV dv, xv; Py_ssize_t j; double s1 = 0.0, s2 = 0.0; \
            for (j = 0; j < kv; j += L) { /* row sums of g = dout*gamma and g*Xhat; dbeta and dgamma sums */ \
                DV gv, B, G; FASTNN_LN_LD(dv, d + j); FASTNN_LN_LD(xv, x + j); FASTNN_LN_LD(gv, gd + j); \
                DV dd = __builtin_convertvector(dv, DV), xh = (__builtin_convertvector(xv, DV) - mu) * s; \
                DV gg = dd * gv; a1 += gg; a2 += gg * xh; \
                FASTNN_LN_LD(B, sb + j); FASTNN_LN_LD(G, sg + j); B += dd; G += dd * xh; \
                __builtin_memcpy(sb + j, &B, sizeof B); __builtin_memcpy(sg + j, &G, sizeof G); } \
            for (int l = 0; l < L; l++) { s1 += a1[l]; s2 += a2[l]; } \
            for (j = kv; j < k; j++) { \
                double dd = d[j], xh = (x[j] - mu) * s, gg = dd * gd[j]; \
                s1 += gg; s2 += gg * xh; sb[j] += dd; sg[j] += dd * xh; } \
            if (!dX) continue; \
            const double c = inv[i] / kd; T* restrict o = dX + i * k; \
            for (j = 0; j < kv; j += L) { \
                DV gv; FASTNN_LN_LD(dv, d + j); FASTNN_LN_LD(xv, x + j); FASTNN_LN_LD(gv, gd + j); \
                DV xh = (__builtin_convertvector(xv, DV) - mu) * s, gg = __builtin_convertvector(dv, DV) * gv; \
                TV r = __builtin_convertvector(c * (kd * gg - s1 - xh * s2), TV); __builtin_memcpy(o + j, &r, sizeof r); } \
            for (j = kv; j < k; j++) { \
                double xh = (x[j] - mu) * s, gg = d[j] * gd[j]; o[j] = (T) (c * (kd * gg - s1 - xh * s2)); } \
        } \
        for (Py_ssize_t j = 0; j < k; j++) { dbeta[j] = (T) sb[j]; dgamma[j] = (T) sg[j]; } \
    }
    /* 8 doubles: one AVX-512 register (spilled to the stack when AVX-512 is not there: those builds use 4) */
    typedef double fastnn_v8d __attribute__((vector_size(64)));
    FASTNN_LN_BODIES(f_base, , float, fastnn_v4f, fastnn_v4d, 4)
    FASTNN_LN_BODIES(d_base, , double, fastnn_v4d, fastnn_v4d, 4)
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    FASTNN_LN_BODIES(f_avx2, FASTNN_AVX2_FMA, float, fastnn_v4f, fastnn_v4d, 4)
    FASTNN_LN_BODIES(d_avx2, FASTNN_AVX2_FMA, double, fastnn_v4d, fastnn_v4d, 4)
    FASTNN_LN_BODIES(f_avx512, __attribute__((target("avx512f"))), float, fastnn_v8f, fastnn_v8d, 8)
    FASTNN_LN_BODIES(d_avx512, __attribute__((target("avx512f"))), double, fastnn_v8d, fastnn_v8d, 8)
    static int fastnn_ln_isa = -1;  /* layernorm_isa(): below the CPU's for tests and benchmarks; -1: the CPU's */
    #define FASTNN_LN_PICK(NAME, S, ARGS) { int isa = fastnn_ln_isa >= 0 ? fastnn_ln_isa : fastnn_cpu_isa(); \
        if (isa == FASTNN_ISA_AVX512) NAME##_##S##_avx512 ARGS; else if (isa == FASTNN_ISA_AVX2) NAME##_##S##_avx2 ARGS; \
        else NAME##_##S##_base ARGS; }
    #else
    static int fastnn_ln_isa = -1;
    #define FASTNN_LN_PICK(NAME, S, ARGS) { NAME##_##S##_base ARGS; }
    #endif
    #define FASTNN_LN_DISPATCH(T, S) \
    static void fastnn_ln_fwd_##S(Py_ssize_t n, Py_ssize_t k, const T* X, const T* gamma, const T* beta, double eps, \
                                  double* mean, double* inv, T* Xhat, T* out, double* gb) \
        FASTNN_LN_PICK(fastnn_ln_fwd, S, (n, k, X, gamma, beta, eps, mean, inv, Xhat, out, gb)) \
    static void fastnn_ln_bwd_##S(Py_ssize_t n, Py_ssize_t k, const T* dout, const T* src, const double* mean, \
                                  const double* inv, const T* gamma, T* dgamma, T* dbeta, T* dX, double* sc) \
        FASTNN_LN_PICK(fastnn_ln_bwd, S, (n, k, dout, src, mean, inv, gamma, dgamma, dbeta, dX, sc))
    FASTNN_LN_DISPATCH(float, f)
    FASTNN_LN_DISPATCH(double, d)
    """
    int fastnn_ln_isa
    void fastnn_ln_fwd_f(Py_ssize_t n, Py_ssize_t k, const float* X, const float* gamma, const float* beta,
                         double eps, double* mean, double* inv, float* Xhat, float* out, double* gb) noexcept nogil
    void fastnn_ln_fwd_d(Py_ssize_t n, Py_ssize_t k, const double* X, const double* gamma, const double* beta,
                         double eps, double* mean, double* inv, double* Xhat, double* out, double* gb) noexcept nogil
    void fastnn_ln_bwd_f(Py_ssize_t n, Py_ssize_t k, const float* dout, const float* src, const double* mean,
                         const double* inv, const float* gamma, float* dgamma, float* dbeta, float* dX,
                         double* sc) noexcept nogil
    void fastnn_ln_bwd_d(Py_ssize_t n, Py_ssize_t k, const double* dout, const double* src, const double* mean,
                         const double* inv, const double* gamma, double* dgamma, double* dbeta, double* dX,
                         double* sc) noexcept nogil


cdef inline void _ln_fwd(Py_ssize_t n, Py_ssize_t k, const floating* X, const floating* gamma,
                         const floating* beta, double eps, double* mean, double* inv, floating* Xhat,
                         floating* out, double* gb) noexcept nogil:
    """Per row: mean, inv = 1 / sqrt(var + eps) (float64), out = gamma * (x - mean) * inv + beta.

    Xhat (the normalized rows) is also written unless NULL; ``gb`` is 2k float64 scratch."""
    if floating is float:
        fastnn_ln_fwd_f(n, k, X, gamma, beta, eps, mean, inv, Xhat, out, gb)
    else:
        fastnn_ln_fwd_d(n, k, X, gamma, beta, eps, mean, inv, Xhat, out, gb)


cdef inline void _ln_bwd(Py_ssize_t n, Py_ssize_t k, const floating* dout, const floating* src,
                         const double* mean, const double* inv, const floating* gamma, floating* dgamma,
                         floating* dbeta, floating* dX, double* sc) noexcept nogil:
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv/k*(k*g - sum g - Xhat*sum g*Xhat).

    Xhat = (src - mean) * inv per row, or src itself when ``mean`` is NULL; dX may be NULL; ``sc`` is
    3k float64 scratch."""
    if floating is float:
        fastnn_ln_bwd_f(n, k, dout, src, mean, inv, gamma, dgamma, dbeta, dX, sc)
    else:
        fastnn_ln_bwd_d(n, k, dout, src, mean, inv, gamma, dgamma, dbeta, dX, sc)


def layernorm_isa(isa=None):
    """Which lane kernels the LayerNorm ops run: ``"avx512"`` (8 doubles), ``"avx2"`` or ``"off"`` (4, the
    baseline build's). ``isa`` switches it (tests and benchmarks: the AVX2 and baseline kernels on an AVX-512
    CPU), ``"auto"`` restores the CPU's best; one the CPU lacks is a ValueError. Returns the name in effect.
    """
    global fastnn_ln_isa
    if isa is not None:
        if isa == "auto":
            fastnn_ln_isa = -1
        elif isa not in _GEMM_ISA_NAMES:
            raise ValueError(f"layernorm_isa: isa must be one of 'auto', {', '.join(map(repr, _GEMM_ISA_NAMES))}; "
                             f"got {isa!r}")
        elif _GEMM_ISA_NAMES[isa] > _GEMM_ISA_CPU:
            raise ValueError(f"layernorm_isa: this CPU has no {isa}")
        else:
            fastnn_ln_isa = _GEMM_ISA_NAMES[isa]
    cdef int now = fastnn_ln_isa if fastnn_ln_isa >= 0 else _GEMM_ISA_CPU
    return [k for k, v in _GEMM_ISA_NAMES.items() if v == now][0]


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
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1], i
    if n == 0 or k == 0:
        return
    scratch = np.empty(2 * n + 2 * k)
    cdef double[::1] s = scratch
    with nogil:
        _ln_fwd(n, k, &X[0, 0], &gamma[0], &beta[0], eps, &s[0], &s[n], &Xhat_out[0, 0], &out[0, 0], &s[2 * n])
        for i in range(n):
            inv_std_out[i] = <floating> s[n + i]


def layernorm_backward(const floating[:, ::1] dout, const floating[:, ::1] Xhat,
                       const floating[::1] inv_std, const floating[::1] gamma,
                       floating[::1] dgamma_out, floating[::1] dbeta_out, floating[:, ::1] dX_out):
    """dbeta = sum_i dout, dgamma = sum_i dout*Xhat; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat)."""
    cdef Py_ssize_t n = dout.shape[0], k = dout.shape[1]
    cdef floating* dX = NULL
    if k == 0:
        return
    if n == 0:
        dgamma_out[:] = 0
        dbeta_out[:] = 0
        return
    scratch = np.empty(n + 3 * k)
    scratch[:n] = inv_std
    cdef double[::1] s = scratch
    if dX_out is not None:
        dX = &dX_out[0, 0]
    with nogil:
        _ln_bwd(n, k, &dout[0, 0], &Xhat[0, 0], NULL, &s[0], &gamma[0], &dgamma_out[0], &dbeta_out[0], dX, &s[n])


def layernorm_rows_forward(const floating[:, ::1] X, const floating[::1] gamma, const floating[::1] beta,
                           double eps, double[::1] mean_out, double[::1] inv_std_out, floating[:, ::1] out):
    """Per row: mean, inv_std = 1 / sqrt(var + eps) in float64, out = gamma * (x - mean) * inv_std + beta."""
    cdef Py_ssize_t n = X.shape[0], k = X.shape[1]
    if n == 0 or k == 0:
        return
    scratch = np.empty(2 * k)
    cdef double[::1] s = scratch
    with nogil:
        _ln_fwd(n, k, &X[0, 0], &gamma[0], &beta[0], eps, &mean_out[0], &inv_std_out[0], NULL, &out[0, 0], &s[0])


def layernorm_rows_backward(const floating[:, ::1] dout, const floating[:, ::1] X, const double[::1] mean,
                            const double[::1] inv_std, const floating[::1] gamma, floating[::1] dgamma_out,
                            floating[::1] dbeta_out, floating[:, ::1] dX_out):
    """layernorm_backward with Xhat = (X - mean) * inv_std per row recomputed from the row input."""
    cdef Py_ssize_t n = dout.shape[0], k = dout.shape[1]
    cdef floating* dX = NULL
    if k == 0:
        return
    if n == 0:
        dgamma_out[:] = 0
        dbeta_out[:] = 0
        return
    scratch = np.empty(3 * k)
    cdef double[::1] s = scratch
    if dX_out is not None:
        dX = &dX_out[0, 0]
    with nogil:
        _ln_bwd(n, k, &dout[0, 0], &X[0, 0], &mean[0], &inv_std[0], &gamma[0], &dgamma_out[0], &dbeta_out[0],
                dX, &s[0])
