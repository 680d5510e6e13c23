# The Cython plan driver: runs the steps of a compiled plan (fastnn.engine.plan).
#
# Included once at the end of _kernels.pyx; it uses the kernels defined there (_gemm,
# _dense_fwd/_dense_bwd, _loss_fb, _count_correct, _gather, _clip, _update_slice, the FTZ
# helpers) and the plan codes of _codes.pxi.
#
# Semantics are those of fastnn.kernels.numba.plan: per step, per section of the schedule,
# each row shard runs the section's items on its rows, then the section's sync runs on one
# thread (BatchNorm statistics across shards, in shard order); after the last section the
# shard gradients are summed in a fixed order, clipped and applied. The sharded driver is one
# OpenMP parallel region per call, with barriers where Numba needs a fork/join. With one shard the items run on the whole
# batch and write the gradient directly. Plan codes are checked (_plan_check) before any step:
# the switches below have explicit branches for unknown codes that do nothing, because an
# unknown code never reaches them.
#
# Float conventions follow the numba driver: statistics (BatchNorm, LayerNorm, extra losses,
# penalties) accumulate in float64 and are rounded to the parameter dtype when stored.

from libc.stdint cimport uint64_t
from libc.math cimport expm1, NAN

cdef extern from *:
    """
    #include <stdint.h>
    /* SplitMix64's finalizer (Steele et al., 2014), as fastnn.kernels.dropout_ref: wrapping uint64. */
    static inline uint64_t fastnn_mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    #define FASTNN_GOLDEN 0x9E3779B97F4A7C15ULL

    /* The persistent parallel region's primitives (a single thread without OpenMP). */
    #ifdef _OPENMP
    #include <omp.h>
    static inline int fastnn_thread_num(void) { return omp_get_thread_num(); }
    static inline int fastnn_num_threads(void) { return omp_get_num_threads(); }
    static inline void fastnn_barrier(void) { _Pragma("omp barrier") }
    #else
    static inline int fastnn_thread_num(void) { return 0; }
    static inline int fastnn_num_threads(void) { return 1; }
    static inline void fastnn_barrier(void) { }
    #endif

    /* FASTNN_CLONES (AVX2/AVX-512 clones of a function) is defined in activations.pxi. */

    /* BatchNorm's per-shard passes, row-major over (m, k) blocks. Written in C for `restrict`:
       extensions build with -fno-strict-aliasing, so without it GCC cannot prove the float64
       statistics and the activations apart and leaves these loops scalar (~3x slower). */
    #define FASTNN_BN_KERNELS(T, S) \
    /* One pass over the block: sums of (x - K) and (x - K)^2 in float64 with the shift K = the block's */ \
    /* first row (the shifted-data algorithm: the cancellation in s2 - s1^2/m is of the order of */ \
    /* (mean - K)^2 / var, about 1 for K a sample, however large the mean). Two passes cost one more */ \
    /* read of the whole feature map. */ \
    static FASTNN_CLONES void fastnn_bn_stats_##S(const T* restrict x, Py_ssize_t m, Py_ssize_t k, \
                                           double* restrict mean, double* restrict m2) { \
        for (Py_ssize_t j = 0; j < k; j++) { mean[j] = 0.0; m2[j] = 0.0; } \
        for (Py_ssize_t i = 1; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) { \
            double d = (double) x[i * k + j] - (double) x[j]; mean[j] += d; m2[j] += d * d; } \
        for (Py_ssize_t j = 0; j < k; j++) { \
            double s1 = mean[j], s2 = m2[j] - s1 * s1 / (double) m; \
            mean[j] = (double) x[j] + s1 / (double) m; m2[j] = s2 > 0.0 ? s2 : 0.0; } \
    } \
    /* relu != 0: a ReLU folded into the row (engine.plan.fuse_relu_into_batchnorm): applied to the output */ \
    /* in the normalize pass (NaN propagates, as fastnn_relu_fwd), and dY masked in place by the kept */ \
    /* output in the sums pass, where the input-gradient pass then reads it. Each in a loop of its own */ \
    /* and the mask a multiply by (out > 0): GCC left the select forms scalar here (10-20x slower, one */ \
    /* pass over a 32-channel feature map). A NaN dY stays NaN under the mask (the guard sees it). */ \
    /* Xhat is not stored: backward recomputes it from x (one write pass less over the map). */ \
    static FASTNN_CLONES void fastnn_bn_norm_##S(const T* restrict x, Py_ssize_t m, Py_ssize_t k, \
                                          const double* restrict mean, const double* restrict inv, \
                                          const T* restrict gamma, const T* restrict beta, \
                                          T* restrict out, int relu) { \
        if (relu) { for (Py_ssize_t i = 0; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) { \
            double xh = (x[i * k + j] - mean[j]) * inv[j]; \
            T y = (T) ((double) gamma[j] * xh + (double) beta[j]); \
            out[i * k + j] = y < (T) 0 ? (T) 0 : y; } return; } \
        for (Py_ssize_t i = 0; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) { \
            double xh = (x[i * k + j] - mean[j]) * inv[j]; \
            out[i * k + j] = (T) ((double) gamma[j] * xh + (double) beta[j]); } \
    } \
    /* sg = sum dY * (x - mean), times inv_std at the end: sum dY * Xhat without a stored Xhat. */ \
    static FASTNN_CLONES void fastnn_bn_dsums_##S(T* restrict dy, const T* restrict x, \
                                           const T* restrict out, Py_ssize_t m, Py_ssize_t k, \
                                           const double* restrict mean, const double* restrict inv, \
                                           double* restrict sb, double* restrict sg, int relu) { \
        for (Py_ssize_t j = 0; j < k; j++) { sb[j] = 0.0; sg[j] = 0.0; } \
        if (relu) { for (Py_ssize_t i = 0; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) { \
            T g = dy[i * k + j] * (T) (out[i * k + j] > (T) 0); dy[i * k + j] = g; \
            sb[j] += (double) g; sg[j] += (double) g * ((double) x[i * k + j] - mean[j]); } } \
        else { for (Py_ssize_t i = 0; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) { \
            double d = dy[i * k + j]; sb[j] += d; sg[j] += d * ((double) x[i * k + j] - mean[j]); } } \
        for (Py_ssize_t j = 0; j < k; j++) sg[j] *= inv[j]; \
    } \
    /* dx = c*dy - cb - Xhat*cg with Xhat = (x - mean)*inv, as c*dy - cx0 - x*cx (the sync's factors). */ \
    static FASTNN_CLONES void fastnn_bn_dx_##S(const T* restrict dy, const T* restrict x, Py_ssize_t m, \
                                        Py_ssize_t k, const double* restrict c, const double* restrict cx0, \
                                        const double* restrict cx, T* restrict dx) { \
        for (Py_ssize_t i = 0; i < m; i++) for (Py_ssize_t j = 0; j < k; j++) \
            dx[i * k + j] = (T) (c[j] * dy[i * k + j] - cx0[j] - x[i * k + j] * cx[j]); \
    }
    FASTNN_BN_KERNELS(float, f)
    FASTNN_BN_KERNELS(double, d)

    /* Dropout: one hash per four units, each unit kept when its 16-bit draw is below thr. */
    #define FASTNN_DROPOUT(T, S) \
    static FASTNN_CLONES void fastnn_dropout_##S(Py_ssize_t n, Py_ssize_t k, const T* restrict x, uint64_t key, \
                                          int64_t step, int64_t row0, double rate, T* restrict mask, \
                                          T* restrict out) { \
        double keep = 1.0 - rate; \
        uint64_t thr = (uint64_t) (int64_t) (keep * 65536.0), g = FASTNN_GOLDEN; \
        uint64_t base = key + ((uint64_t) step << 32) * g; \
        T scale = (T) (1.0 / keep); \
        for (Py_ssize_t i = 0; i < n; i++) { \
            uint64_t rk = fastnn_mix64(base + (uint64_t) (row0 + i) * g); \
            const T* xr = x + i * k; T* mr = mask + i * k; T* orow = out + i * k; \
            for (Py_ssize_t p = 0; 4 * p < k; p++) { \
                uint64_t h = fastnn_mix64(rk + (uint64_t) (p + 1) * g); \
                Py_ssize_t nu = k - 4 * p < 4 ? k - 4 * p : 4; \
                for (Py_ssize_t u = 0; u < nu; u++) { \
                    T m = ((h >> (16 * u)) & 0xFFFFULL) < thr ? scale : (T) 0; \
                    mr[4 * p + u] = m; orow[4 * p + u] = xr[4 * p + u] * m; } } } \
    }
    FASTNN_DROPOUT(float, f)
    FASTNN_DROPOUT(double, d)
    """
    uint64_t fastnn_mix64(uint64_t z) noexcept nogil
    uint64_t FASTNN_GOLDEN
    int fastnn_thread_num() noexcept nogil
    int fastnn_num_threads() noexcept nogil
    void fastnn_barrier() noexcept nogil
    void fastnn_dropout_f(Py_ssize_t n, Py_ssize_t k, const float* x, uint64_t key, int64_t step, int64_t row0,
                          double rate, float* mask, float* out) noexcept nogil
    void fastnn_dropout_d(Py_ssize_t n, Py_ssize_t k, const double* x, uint64_t key, int64_t step, int64_t row0,
                          double rate, double* mask, double* out) noexcept nogil
    void fastnn_bn_stats_f(const float* x, Py_ssize_t m, Py_ssize_t k, double* mean, double* m2) noexcept nogil
    void fastnn_bn_stats_d(const double* x, Py_ssize_t m, Py_ssize_t k, double* mean, double* m2) noexcept nogil
    void fastnn_bn_norm_f(const float* x, Py_ssize_t m, Py_ssize_t k, const double* mean, const double* inv,
                          const float* gamma, const float* beta, float* out, int relu) noexcept nogil
    void fastnn_bn_norm_d(const double* x, Py_ssize_t m, Py_ssize_t k, const double* mean, const double* inv,
                          const double* gamma, const double* beta, double* out, int relu) noexcept nogil
    void fastnn_bn_dsums_f(float* dy, const float* x, const float* out, Py_ssize_t m, Py_ssize_t k,
                           const double* mean, const double* inv, double* sb, double* sg, int relu) noexcept nogil
    void fastnn_bn_dsums_d(double* dy, const double* x, const double* out, Py_ssize_t m, Py_ssize_t k,
                           const double* mean, const double* inv, double* sb, double* sg, int relu) noexcept nogil
    void fastnn_bn_dx_f(const float* dy, const float* x, Py_ssize_t m, Py_ssize_t k, const double* c,
                        const double* cx0, const double* cx, float* dx) noexcept nogil
    void fastnn_bn_dx_d(const double* dy, const double* x, Py_ssize_t m, Py_ssize_t k, const double* c,
                        const double* cx0, const double* cx, double* dx) noexcept nogil


cdef struct PlanCtx:
    # Everything of a plan that is not of the parameter dtype (fused types cannot live in a struct).
    const int64_t* ops        # (n_rows, N_PCOL)
    const double* fops        # (n_rows, N_FCOL)
    const int64_t* items      # (n_items, 3): kind, row, phase
    const int64_t* sections   # (n_sections, 4): item_lo, item_hi, sync_kind, sync_row
    const int64_t* wofs       # N_WCOL work offsets
    const double* loss_f
    const int64_t* perm
    Py_ssize_t n_rows
    Py_ssize_t n_sections
    Py_ssize_t n_params
    Py_ssize_t ny
    Py_ssize_t ldx
    Py_ssize_t ldy
    Py_ssize_t n_stats        # row stride of the float64 stats buffer
    Py_ssize_t stride         # row stride of the work buffer
    int loss_code


# =========================================================================== dropout
cdef inline void _dropout_fwd(Py_ssize_t n, Py_ssize_t k, const floating* X, uint64_t key, int64_t step,
                              int64_t row0, double rate, floating* mask, floating* out) noexcept nogil:
    """mask = (draw < threshold) / keep, out = X * mask: the bits of dropout_ref.dropout_forward."""
    if floating is float:
        fastnn_dropout_f(n, k, X, key, step, row0, rate, mask, out)
    else:
        fastnn_dropout_d(n, k, X, key, step, row0, rate, mask, out)


# =========================================================================== one item on one shard
cdef inline Py_ssize_t _channel_rows(const int64_t* r, Py_ssize_t m, Py_ssize_t* k) noexcept nogil:
    """Rows of the (rows, k) block a BatchNorm / Activation row works on: its m rows of n_out values
    as m * n_out / C rows of C channels (P_C = C > 0: feature maps), else m rows of k = n_out."""
    if (r[P_OP] == OP_BATCHNORM or r[P_OP] == OP_ACTIVATION) and r[P_C] > 0:
        k[0] = r[P_C]
        return m * (r[P_N_OUT] // r[P_C])
    return m


cdef void _plan_forward(const PlanCtx* c, Py_ssize_t q, int64_t phase, const floating* params,
                        floating* wb, double* st, const double* st0, Py_ssize_t m, int64_t row0,
                        int64_t step) noexcept nogil:
    """Forward of plan row q (phase 0/1 for BatchNorm) on the shard's m rows (batch rows row0..)."""
    cdef const int64_t* r = c.ops + q * N_PCOL
    cdef const double* f = c.fops + q * N_FCOL
    cdef Py_ssize_t n_in = r[P_N_IN], n_out = r[P_N_OUT], k = n_out, i, j
    cdef int64_t op = r[P_OP], p0 = r[P_PARAM0], p1 = r[P_PARAM1]
    cdef int64_t a = r[P_STATS]  # BatchNorm's / LayerNorm's block of the float64 stats
    cdef const floating* A_in = wb + r[P_IN]
    cdef floating* Z = wb + r[P_Z]
    cdef floating* A = wb + r[P_OUT]
    cdef double d, xh
    cdef Py_ssize_t rows = _channel_rows(r, m, &k)  # BatchNorm / Activation on feature maps: per channel
    if _is_image_op(op):
        _plan_image_forward(r, r - N_PCOL if q > 0 else NULL, r + N_PCOL if q + 1 < c.n_rows else NULL,
                            f[F_ALPHA], params, wb, m)
    elif op == OP_DENSE:
        _dense_fwd_tiled(m, n_in, n_out, A_in, n_in, params + p0, n_out, params + p1 if p1 >= 0 else NULL,
                         <int> r[P_ACT], <floating> f[F_ALPHA], Z, n_out, A, n_out)
    elif op == OP_DROPOUT:
        _dropout_fwd(m, n_in, A_in, <uint64_t> r[P_SEED], step, row0, f[F_RATE], Z, A)
    elif op == OP_LAYERNORM:
        # stats block: LN_STATS_K * k float64 scratch, the m rows' means, their inv_std (backward recomputes
        # Xhat from them and the row input)
        _ln_fwd(m, k, A_in, params + p0, params + p1, f[F_EPS], st + a + LN_STATS_K * k,
                st + a + LN_STATS_K * k + m, NULL, A, st + a)
    elif op == OP_ACTIVATION:
        if r[P_ACT] == ACT_SOFTMAX:  # per row of k channels
            for i in range(rows):
                _act_row(A_in + i * k, A + i * k, k, <int> r[P_ACT], <floating> f[F_ALPHA])
        else:  # elementwise: one long vectorized row
            _act_row(A_in, A, rows * k, <int> r[P_ACT], <floating> f[F_ALPHA])
    elif op == OP_BATCHNORM:
        if phase == 0:  # this shard's mean and sum of squared deviations (one pass, float64)
            if floating is float:
                fastnn_bn_stats_f(A_in, rows, k, st + a, st + a + k)
            else:
                fastnn_bn_stats_d(A_in, rows, k, st + a, st + a + k)
        else:  # normalize with the batch statistics the sync left in shard 0's stats
            if floating is float:
                fastnn_bn_norm_f(A_in, rows, k, st0 + a + 2 * k, st0 + a + 3 * k, params + p0, params + p1, A,
                                 r[P_ACT] == ACT_RELU)
            else:
                fastnn_bn_norm_d(A_in, rows, k, st0 + a + 2 * k, st0 + a + 3 * k, params + p0, params + p1, A,
                                 r[P_ACT] == ACT_RELU)
    else:
        pass  # unknown op: refused by _plan_check before any step runs


cdef void _plan_backward(const PlanCtx* c, Py_ssize_t q, int64_t phase, const floating* params,
                         floating* g, floating* wb, double* st, const double* st0, Py_ssize_t m,
                         Py_ssize_t m_total) noexcept nogil:
    """Backward of plan row q into the gradient g (the shard's block, or grads when serial)."""
    cdef const int64_t* r = c.ops + q * N_PCOL
    cdef const double* f = c.fops + q * N_FCOL
    cdef Py_ssize_t n_in = r[P_N_IN], n_out = r[P_N_OUT], k = n_out, i, j
    cdef int64_t op = r[P_OP], p0 = r[P_PARAM0], p1 = r[P_PARAM1]
    cdef int64_t a = r[P_STATS]  # BatchNorm's / LayerNorm's block of the float64 stats
    cdef int act = <int> r[P_ACT]
    cdef bint need = r[P_NEED_DX] != 0
    cdef floating* dA
    cdef floating* dX
    cdef floating* dZ
    cdef const floating* A_in = wb + r[P_IN]
    cdef const floating* Z = wb + r[P_Z]
    cdef const floating* A = wb + r[P_OUT]
    cdef double d, cc
    cdef Py_ssize_t rows = _channel_rows(r, m, &k)  # BatchNorm / Activation on feature maps: per channel
    # The output gradient of row q sits in the W_DA block for the last row, then alternates.
    if (c.n_rows - 1 - q) % 2 == 0:
        dA = wb + c.wofs[W_DA]
        dX = wb + c.wofs[W_DX]
    else:
        dA = wb + c.wofs[W_DX]
        dX = wb + c.wofs[W_DA]
    if _is_image_op(op):
        _plan_image_backward(r, r - N_PCOL if q > 0 else NULL, r + N_PCOL if q + 1 < c.n_rows else NULL,
                             f[F_ALPHA], params, g, c.wofs, wb, dA, dX, m)
    elif op == OP_DENSE:
        dZ = dA if act == ACT_LINEAR else wb + c.wofs[W_DZ]  # a linear layer's dZ is dA: no copy
        _dense_bwd_tiled(m, n_in, n_out, A_in, n_in, params + p0, n_out, Z, n_out, A, n_out, dA, n_out,
                         act, <floating> f[F_ALPHA], dZ, n_out, g + p0, n_out, g + p1 if p1 >= 0 else NULL,
                         dX if need else NULL, n_in)
    elif op == OP_DROPOUT:
        if need:
            for i in range(m * n_in):
                dX[i] = dA[i] * Z[i]
    elif op == OP_LAYERNORM:
        _ln_bwd(m, k, dA, A_in, st + a + LN_STATS_K * k, st + a + LN_STATS_K * k + m, params + p0, g + p0,
                g + p1, dX if need else NULL, st + a)
    elif op == OP_ACTIVATION:
        if need and act == ACT_SOFTMAX:  # per row of k channels
            _act_bwd(rows, k, A_in, k, A, k, dA, k, act, <floating> f[F_ALPHA], dX, k, NULL)
        elif need:  # elementwise: one long vectorized row
            _act_bwd_row(A_in, A, dA, dX, rows * k, act, <floating> f[F_ALPHA])
    elif op == OP_BATCHNORM:
        if phase == 0:  # this shard's sums of dY and dY * Xhat (Xhat recomputed from x): its dbeta and dgamma
            if floating is float:
                fastnn_bn_dsums_f(dA, A_in, A, rows, k, st0 + a + 2 * k, st0 + a + 3 * k, st + a + 4 * k,
                                  st + a + 5 * k, act == ACT_RELU)
            else:
                fastnn_bn_dsums_d(dA, A_in, A, rows, k, st0 + a + 2 * k, st0 + a + 3 * k, st + a + 4 * k,
                                  st + a + 5 * k, act == ACT_RELU)
            for j in range(k):
                g[p1 + j] = <floating> st[a + 4 * k + j]
                g[p0 + j] = <floating> st[a + 5 * k + j]
        else:  # input gradient from the batch sums the sync left in shard 0's stats
            if floating is float:
                fastnn_bn_dx_f(dA, A_in, rows, k, st0 + a, st0 + a + k, st0 + a + 2 * k, dX)
            else:
                fastnn_bn_dx_d(dA, A_in, rows, k, st0 + a, st0 + a + k, st0 + a + 2 * k, dX)
    else:
        pass  # unknown op: refused by _plan_check before any step runs


cdef void _plan_loss(const PlanCtx* c, floating* wb, Py_ssize_t m, double scale,
                     double* result) noexcept nogil:
    """Loss sum and correct count of the shard into result[0:2]; output gradient into the W_DA block."""
    cdef const int64_t* r = c.ops + (c.n_rows - 1) * N_PCOL
    cdef Py_ssize_t k = r[P_N_OUT], ny = c.ny
    cdef const floating* out = wb + r[P_OUT]
    cdef const floating* Yg = wb + c.wofs[W_Y]
    cdef floating* dA = wb + c.wofs[W_DA]
    cdef int loss = c.loss_code
    if loss == LOSS_SOFTMAX_CE or loss == LOSS_MSE or loss == LOSS_BCE_LOGITS:
        result[0] = _loss_fb(loss, m, k, out, k, Yg, ny, ny, scale, dA, k, NULL)
        result[1] = <double> _count_correct(loss, m, k, out, k, Yg, ny, ny, NULL)
    elif loss == LOSS_MAE:
        result[0] = _mae_fb(m, k, out, k, Yg, ny, scale, dA, k)
        result[1] = 0.0
    elif loss == LOSS_HUBER:
        result[0] = _huber_fb(m, k, out, k, Yg, ny, c.loss_f[0], scale, dA, k)
        result[1] = 0.0
    elif loss == LOSS_FOCAL:
        result[0] = _focal_fb(m, k, out, k, Yg, ny, ny, c.loss_f[0], c.loss_f + 1, scale, dA, k)
        result[1] = <double> _count_correct(LOSS_SOFTMAX_CE, m, k, out, k, Yg, ny, ny, NULL)
    else:  # refused by _plan_check; NaN rather than a silent number if it ever got here
        result[0] = NAN
        result[1] = 0.0


cdef double _plan_penalties(const PlanCtx* c, const floating* params, floating* g) noexcept nogil:
    """Add the L1/L2 gradients of every penalised dense weight to g; return the penalty value."""
    cdef Py_ssize_t q, i, size
    cdef double total = 0.0, l1, l2, s1, s2
    cdef const int64_t* r
    cdef const floating* W
    cdef floating* dW
    cdef floating a1, a2, w, sign, zero = 0, one = 1
    for q in range(c.n_rows):
        r = c.ops + q * N_PCOL
        l1 = c.fops[q * N_FCOL + F_L1]
        l2 = c.fops[q * N_FCOL + F_L2]
        if r[P_OP] != OP_DENSE or (l1 <= 0 and l2 <= 0):
            continue
        size = r[P_N_IN] * r[P_N_OUT]
        W = params + r[P_PARAM0]
        dW = g + r[P_PARAM0]
        a1 = <floating> l1
        a2 = <floating> (2.0 * l2)
        s1 = 0.0
        s2 = 0.0
        for i in range(size):
            w = W[i]
            s1 += fabs(<double> w)
            s2 += <double> w * <double> w
            sign = one if w > zero else (-one if w < zero else zero)
            dW[i] = dW[i] + (a1 * sign + a2 * w)
        total += l1 * s1 + l2 * s2
    return total


cdef void _plan_items(const PlanCtx* c, Py_ssize_t lo, Py_ssize_t hi, const floating* X,
                      const floating* Y, Py_ssize_t start, const floating* params, floating* g,
                      floating* wb, double* st, const double* st0, Py_ssize_t m, Py_ssize_t m_total,
                      Py_ssize_t row0, int64_t step, double* result) noexcept nogil:
    """Items lo..hi-1 of the schedule on one shard: rows row0 .. row0+m-1 of the batch at perm[start:]."""
    cdef Py_ssize_t it, n_in0 = c.ops[P_N_IN]
    cdef int64_t kind, q, phase
    for it in range(lo, hi):
        kind = c.items[3 * it]
        q = c.items[3 * it + 1]
        phase = c.items[3 * it + 2]
        if kind == IT_GATHER:
            _gather(m, n_in0, X, c.ldx, c.perm + start + row0, wb + c.wofs[W_X], n_in0)
            _gather(m, c.ny, Y, c.ldy, c.perm + start + row0, wb + c.wofs[W_Y], c.ny)
        elif kind == IT_FORWARD:
            _plan_forward(c, q, phase, params, wb, st, st0, m, row0, step)
        elif kind == IT_LOSS:
            _plan_loss(c, wb, m, 1.0 / m_total, result)
        elif kind == IT_BACKWARD:
            _plan_backward(c, q, phase, params, g, wb, st, st0, m, m_total)
        elif kind == IT_PENALTY:
            if row0 == 0:  # once per step, by the first shard
                result[2] = _plan_penalties(c, params, g)
        else:
            pass  # unknown item kind: refused by _plan_check


cdef inline void _shard_span(Py_ssize_t m, Py_ssize_t n_shards, Py_ssize_t s, Py_ssize_t* row0,
                             Py_ssize_t* m_s) noexcept nogil:
    """Rows of shard s in a batch of m: ceil(m / n_shards) each, the last ones short or empty."""
    cdef Py_ssize_t per = (m + n_shards - 1) // n_shards
    row0[0] = s * per
    m_s[0] = min(per, m - s * per)


cdef void _plan_sync(const PlanCtx* c, int64_t kind, Py_ssize_t q, const floating* params, floating* buffers,
                     const double* stats, double* out, bint update_running, Py_ssize_t m,
                     Py_ssize_t n_shards) noexcept nogil:
    """A section's combine: BatchNorm statistics across shards, in shard order, into ``out``.

    Every thread of the sharded driver runs it on the same partials into its own stats row
    (``out``), so a sync costs one barrier: no thread waits for another to publish the result.
    Per BatchNorm feature a row holds [partial mean, partial M2, mean, inv_std, partial sum dY,
    partial sum dY*Xhat]; the backward combine leaves its factors c, c*sum dY/m - mean*cx and
    cx = inv_std*c*sum dY*Xhat/m (Xhat is recomputed from x, not stored) in the first three slots
    (free by then), never in the partial slots others still read.
    ``update_running``: this call also updates the running statistics (one thread does).
    """
    cdef const int64_t* r
    cdef Py_ssize_t k, a, s, j, row0, m_s, n_acc, n_t, rm, rv
    cdef const double* st
    cdef double mean_b, m2_b, delta, mom, eps, mean, m2, sb, sg, cf, cx, inv
    cdef Py_ssize_t pos
    if kind == SYNC_NONE or q < 0:
        return
    r = c.ops + q * N_PCOL
    k = r[P_N_OUT]
    pos = _channel_rows(r, 1, &k)  # feature maps: statistics per channel over m * pos rows
    a = r[P_STATS]
    if kind == SYNC_BN_FORWARD:
        n_acc = 0
        for s in range(n_shards):  # Chan et al.'s pairwise combination of (count, mean, M2)
            _shard_span(m, n_shards, s, &row0, &m_s)
            if m_s <= 0:
                continue
            m_s = m_s * pos
            st = stats + s * c.n_stats
            for j in range(k):
                mean_b = st[a + j]
                m2_b = st[a + k + j]
                if n_acc == 0:
                    out[a + 2 * k + j] = mean_b
                    out[a + 3 * k + j] = m2_b
                else:
                    n_t = n_acc + m_s
                    delta = mean_b - out[a + 2 * k + j]
                    out[a + 2 * k + j] += delta * m_s / n_t
                    out[a + 3 * k + j] += m2_b + delta * delta * n_acc * m_s / n_t
            n_acc += m_s
        m = m * pos
        mom = c.fops[q * N_FCOL + F_MOMENTUM]
        eps = c.fops[q * N_FCOL + F_EPS]
        rm = r[P_BUF0]
        rv = r[P_BUF1]
        for j in range(k):
            mean = out[a + 2 * k + j]
            m2 = out[a + 3 * k + j]
            if update_running:
                buffers[rm + j] = <floating> (mom * <double> buffers[rm + j] + (1.0 - mom) * mean)
                if m > 1:
                    buffers[rv + j] = <floating> (mom * <double> buffers[rv + j] + (1.0 - mom) * (m2 / (m - 1.0)))
            out[a + 3 * k + j] = 1.0 / sqrt(m2 / m + eps)  # inv_std replaces M2
    elif kind == SYNC_BN_BACKWARD:
        # dX = gamma*inv/m * (m*dY - sum dY - Xhat*sum dY*Xhat) = c*dY - cb - Xhat*cg with c = gamma*inv,
        # cb = c*sum dY/m, cg = c*sum dY*Xhat/m; Xhat = (x - mean)*inv is not stored, so as
        # c*dY - (cb - mean*inv*cg) - x*(inv*cg): three per-feature factors, once, and the phase-1
        # loop stays a multiply-add per element (reading x where it read Xhat).
        for j in range(k):
            sb = 0.0
            sg = 0.0
            for s in range(n_shards):
                _shard_span(m, n_shards, s, &row0, &m_s)
                if m_s > 0:
                    sb = sb + stats[s * c.n_stats + a + 4 * k + j]
                    sg = sg + stats[s * c.n_stats + a + 5 * k + j]
            mean = out[a + 2 * k + j]  # read before its slot takes a factor
            inv = out[a + 3 * k + j]
            cf = <double> params[r[P_PARAM0] + j] * inv  # c = gamma * inv_std
            cx = cf * sg / (m * pos) * inv
            out[a + j] = cf
            out[a + k + j] = cf * sb / (m * pos) - mean * cx
            out[a + 2 * k + j] = cx
    else:
        pass  # unknown sync: refused by _plan_check


# =========================================================================== drivers
cdef void _plan_serial(const PlanCtx* c, const floating* X, const floating* Y, const int64_t* starts,
                       Py_ssize_t n_batches, Py_ssize_t batch_size, Py_ssize_t n, floating* params,
                       floating* grads, floating* acc, floating* buffers, double* stats,
                       floating* work, int opt, floating* state, double* h, const double* lrs,
                       int64_t step0, bint update, double* batch_loss,
                       double* batch_correct) noexcept nogil:
    """One shard: the gradient goes straight into grads (update) or acc, summed into grads (no update)."""
    cdef Py_ssize_t j, i, sec, start, m, n_params = c.n_params
    cdef int64_t step
    cdef double result[3]
    cdef double clip_norm = h[H_CLIP_NORM], clip_value = h[H_CLIP_VALUE]
    cdef bint clip = clip_norm > 0 or clip_value > 0
    cdef floating* g = grads if update else acc
    if not update:
        memset(grads, 0, n_params * sizeof(floating))
    for j in range(n_batches):
        start = starts[j]
        m = min(batch_size, n - start)
        step = step0 + j + 1
        result[0] = 0.0
        result[1] = 0.0
        result[2] = 0.0
        for sec in range(c.n_sections):
            _plan_items(c, c.sections[4 * sec], c.sections[4 * sec + 1], X, Y, start, params, g,
                        work, stats, stats, m, m, 0, step, result)
            _plan_sync(c, c.sections[4 * sec + 2], c.sections[4 * sec + 3], params, buffers, stats, stats, True,
                       m, 1)
        batch_loss[j] = result[0] / m + result[2]
        batch_correct[j] = result[1]
        if update:
            if clip:  # the norm pass costs as much as Adam: only when asked
                _clip(grads, n_params, clip_norm, clip_value, False)
            h[H_LR] = lrs[j]
            _update_slice(opt, params, grads, state, n_params, 0, n_params, h, step)
        else:
            for i in range(n_params):
                grads[i] = grads[i] + acc[i]


cdef void _plan_sharded(const PlanCtx* c, const floating* X, const floating* Y, const int64_t* starts,
                        Py_ssize_t n_batches, Py_ssize_t batch_size, Py_ssize_t n, floating* params,
                        floating* grads, floating* buffers, double* stats, floating* work,
                        Py_ssize_t n_shards, int opt, floating* state, double* h, const double* lrs,
                        int64_t step0, bint update, double* result, double* partial,
                        double* batch_loss, double* batch_correct) noexcept nogil:
    """Row shards in ONE parallel region per call: barriers between sections, syncs and the update.

    Every thread runs the same control flow over the same data, so every thread meets every
    barrier; shard s runs on thread s % n_threads, gradient chunk k on thread k % n_threads.
    The serial parts (syncs, the loss sums, the clip norm) run on thread 0 between barriers, in
    a fixed order: results do not depend on the thread schedule or count. One region instead
    of a fork/join per section and per update: a BatchNorm sync costs a barrier, not a wake-up.
    """
    cdef Py_ssize_t j, i, s, sec, start, m, per, lo, hi, row0, m_s, k, ck, ch_lo, ch_hi, cn
    cdef Py_ssize_t n_params = c.n_params, stride = c.stride, g_off = c.wofs[W_GRAD]
    cdef Py_ssize_t n_chunks = (n_params + CHUNK - 1) // CHUNK
    cdef int n_threads = <int> n_shards, tid, nt
    cdef int64_t step, kind
    cdef double loss_sum, correct, penalty, norm
    cdef double clip_norm = h[H_CLIP_NORM], clip_value = h[H_CLIP_VALUE]
    cdef floating f
    cdef floating* wb
    cdef floating* gch
    cdef const floating* sg
    cdef unsigned int csr
    if not update:
        memset(grads, 0, n_params * sizeof(floating))
    with parallel(num_threads=n_threads):
        tid = fastnn_thread_num()
        nt = fastnn_num_threads()
        csr = fastnn_ftz_on()  # MXCSR is per thread
        for j in range(n_batches):
            start = starts[j]
            m = min(batch_size, n - start)
            step = step0 + j + 1
            per = (m + n_shards - 1) // n_shards
            if tid == 0:  # read by the update, after at least one barrier
                h[H_LR] = lrs[j]
            for sec in range(c.n_sections):
                lo = c.sections[4 * sec]
                hi = c.sections[4 * sec + 1]
                kind = c.sections[4 * sec + 2]
                s = tid  # this thread's share: s = tid, tid + nt, ...
                while s < n_shards:
                    row0 = s * per
                    m_s = min(per, m - row0)
                    wb = work + s * stride
                    if sec == 0:
                        result[3 * s] = 0.0
                        result[3 * s + 1] = 0.0
                        result[3 * s + 2] = 0.0
                    if m_s <= 0:
                        if sec == 0:  # an idle shard adds nothing to the sums
                            memset(wb + g_off, 0, n_params * sizeof(floating))
                    else:
                        _plan_items(c, lo, hi, X, Y, start, params, wb + g_off, wb, stats + s * c.n_stats,
                                    stats + tid * c.n_stats, m_s, m, row0, step, result + 3 * s)
                    s = s + nt
                fastnn_barrier()
                if kind != SYNC_NONE:  # every thread combines into its own row: no second barrier
                    _plan_sync(c, kind, c.sections[4 * sec + 3], params, buffers, stats, stats + tid * c.n_stats,
                               tid == 0, m, n_shards)
            if tid == 0:
                loss_sum = 0.0
                correct = 0.0
                penalty = 0.0
                for s in range(n_shards):  # fixed order
                    loss_sum = loss_sum + result[3 * s]
                    correct = correct + result[3 * s + 1]
                    penalty = penalty + result[3 * s + 2]
                batch_loss[j] = loss_sum / m + penalty
                batch_correct[j] = correct
            # Reduce the shard gradients chunk by chunk (fixed shard order), clip, update.
            ck = tid  # this thread's share: ck = tid, tid + nt, ...
            while ck < n_chunks:
                ch_lo = ck * CHUNK
                ch_hi = min(n_params, ch_lo + CHUNK)
                cn = ch_hi - ch_lo
                gch = grads + ch_lo
                if update:
                    sg = work + g_off + ch_lo
                    for i in range(cn):
                        gch[i] = sg[i]
                    for s in range(1, n_shards):
                        sg = work + s * stride + g_off + ch_lo
                        for i in range(cn):
                            gch[i] = gch[i] + sg[i]
                    if clip_value > 0:
                        _clip_value(gch, cn, clip_value)
                    if clip_norm > 0:
                        partial[ck] = _sum_squares(gch, cn)
                    else:
                        _update_slice(opt, params, grads, state, n_params, ch_lo, ch_hi, h, step)
                else:
                    for s in range(n_shards):
                        sg = work + s * stride + g_off + ch_lo
                        for i in range(cn):
                            gch[i] = gch[i] + sg[i]
                ck = ck + nt
            if update and clip_norm > 0:
                fastnn_barrier()
                if tid == 0:  # the global norm: a serial sum of the chunk norms
                    norm = 0.0
                    for ck in range(n_chunks):
                        norm = norm + partial[ck]
                    norm = sqrt(norm)
                    partial[n_chunks] = clip_norm / (norm + 1e-12) if norm > clip_norm else 1.0
                fastnn_barrier()
                f = <floating> partial[n_chunks]
                ck = tid  # this thread's share: ck = tid, tid + nt, ...
                while ck < n_chunks:
                    ch_lo = ck * CHUNK
                    ch_hi = min(n_params, ch_lo + CHUNK)
                    if f != 1:
                        _scale(grads + ch_lo, ch_hi - ch_lo, f)
                    _update_slice(opt, params, grads, state, n_params, ch_lo, ch_hi, h, step)
                    ck = ck + nt
            fastnn_barrier()  # the next step reads the updated weights
        fastnn_ftz_restore(csr)


# =========================================================================== plan checks
cdef enum:
    PLAN_OK = 0
    PLAN_BAD_OP = 1
    PLAN_BAD_LOSS = 2
    PLAN_BAD_ITEM = 3
    PLAN_BAD_SYNC = 4
    PLAN_BAD_ROW = 5
    PLAN_BAD_WORK = 6
    PLAN_BAD_PARAM = 7
    PLAN_BAD_BUFFER = 8
    PLAN_BAD_STATS = 9
    PLAN_BAD_LOSS_F = 10
    PLAN_BAD_WIDTH = 11
    PLAN_BAD_IMAGE = 12
    PLAN_BAD_CHANNELS = 13

_PLAN_ERRORS = {
    PLAN_BAD_OP: "unknown op code in the plan",
    PLAN_BAD_LOSS: "unknown loss code in the plan",
    PLAN_BAD_ITEM: "unknown item kind in the plan schedule",
    PLAN_BAD_SYNC: "unknown sync kind in the plan schedule",
    PLAN_BAD_ROW: "a schedule item or section names a plan row or item out of range",
    PLAN_BAD_WORK: "a work offset of the plan lies outside a shard's work slice",
    PLAN_BAD_PARAM: "a parameter offset of the plan lies outside params",
    PLAN_BAD_BUFFER: "a buffer offset of the plan lies outside buffers",
    PLAN_BAD_STATS: "a BatchNorm statistics offset lies outside the stats buffer",
    PLAN_BAD_LOSS_F: "loss_f is too short for the loss (Huber: delta; focal: gamma and one alpha per class)",
    PLAN_BAD_WIDTH: "plan rows do not chain (a row's n_in differs from the previous row's n_out) "
                    "or a width is not positive",
    PLAN_BAD_IMAGE: "a conv / pool plan row's geometry does not fit its widths, or one of its blocks "
                    "lies outside its buffer",
    PLAN_BAD_CHANNELS: "a BatchNorm / Activation plan row's channel count does not divide its width",
}


cdef inline bint _span_ok(int64_t off, int64_t size, int64_t limit) noexcept nogil:
    return off >= 0 and size >= 0 and off + size <= limit


cdef int _plan_check(const PlanCtx* c, Py_ssize_t n_items, Py_ssize_t cap, Py_ssize_t n_shards,
                     Py_ssize_t n_buffers, Py_ssize_t n_loss_f, Py_ssize_t* where) noexcept nogil:
    """PLAN_OK, or the first problem (its row / item in where[0]): codes, then every offset."""
    cdef Py_ssize_t q, it, sec, widest = 0
    cdef const int64_t* r
    cdef int64_t op, n_in, n_out, k, kind, S = c.stride, P = c.n_params
    cdef int loss = c.loss_code
    for q in range(c.n_rows):
        r = c.ops + q * N_PCOL
        where[0] = q
        op = r[P_OP]
        n_in = r[P_N_IN]
        n_out = r[P_N_OUT]
        if not (op == OP_DENSE or op == OP_DROPOUT or op == OP_BATCHNORM or op == OP_LAYERNORM
                or op == OP_ACTIVATION or _is_image_op(op)):
            return PLAN_BAD_OP
        if n_in <= 0 or n_out <= 0 or (q > 0 and n_in != c.ops[(q - 1) * N_PCOL + P_N_OUT]) \
                or (op != OP_DENSE and not _is_image_op(op) and n_in != n_out):
            return PLAN_BAD_WIDTH
        widest = max(widest, n_out, n_in if r[P_NEED_DX] != 0 else 0)  # the gradient blocks' width
        if not (_span_ok(r[P_IN], cap * n_in, S) and _span_ok(r[P_Z], cap * n_out, S)
                and _span_ok(r[P_OUT], cap * n_out, S)):
            return PLAN_BAD_WORK
        if (op == OP_BATCHNORM or op == OP_ACTIVATION) and not (
                r[P_C] == -1 or (r[P_C] > 0 and n_out % r[P_C] == 0)):
            return PLAN_BAD_CHANNELS  # a forged channel count would index the statistics out of range
        k = r[P_C] if op == OP_BATCHNORM and r[P_C] > 0 else n_out  # BatchNorm: features or channels
        if _is_image_op(op):
            if not _plan_image_row_ok(r, cap, S, P, c.wofs, r[P_NEED_DX] != 0):
                return PLAN_BAD_IMAGE
        elif op == OP_DENSE:
            if not (_span_ok(r[P_PARAM0], n_in * n_out, P) and (r[P_PARAM1] < 0 or _span_ok(r[P_PARAM1], n_out, P))):
                return PLAN_BAD_PARAM
        elif op == OP_LAYERNORM or op == OP_BATCHNORM:
            if not (_span_ok(r[P_PARAM0], k, P) and _span_ok(r[P_PARAM1], k, P)):
                return PLAN_BAD_PARAM
            if op == OP_LAYERNORM and not _span_ok(r[P_STATS], LN_STATS_K * n_out + LN_STATS_ROWS * cap, c.n_stats):
                return PLAN_BAD_WORK
            if op == OP_BATCHNORM:
                if not (_span_ok(r[P_BUF0], k, n_buffers) and _span_ok(r[P_BUF1], k, n_buffers)):
                    return PLAN_BAD_BUFFER
                if not _span_ok(r[P_STATS], BN_STATS * k, c.n_stats):
                    return PLAN_BAD_STATS
    where[0] = -1
    if not (loss == LOSS_SOFTMAX_CE or loss == LOSS_MSE or loss == LOSS_BCE_LOGITS
            or loss == LOSS_MAE or loss == LOSS_HUBER or loss == LOSS_FOCAL):
        return PLAN_BAD_LOSS
    if (loss == LOSS_HUBER and n_loss_f < 1) or \
            (loss == LOSS_FOCAL and n_loss_f < 1 + c.ops[(c.n_rows - 1) * N_PCOL + P_N_OUT]):
        return PLAN_BAD_LOSS_F
    if not (_span_ok(c.wofs[W_X], cap * c.ops[P_N_IN], S) and _span_ok(c.wofs[W_Y], cap * c.ny, S)
            and _span_ok(c.wofs[W_DA], cap * widest, S) and _span_ok(c.wofs[W_DX], cap * widest, S)
            and _span_ok(c.wofs[W_DZ], cap * widest, S)
            and (n_shards == 1 or _span_ok(c.wofs[W_GRAD], P, S))):
        return PLAN_BAD_WORK
    for it in range(n_items):
        where[0] = it
        kind = c.items[3 * it]
        if not (kind == IT_GATHER or kind == IT_FORWARD or kind == IT_LOSS or kind == IT_BACKWARD
                or kind == IT_PENALTY):
            return PLAN_BAD_ITEM
        if (kind == IT_FORWARD or kind == IT_BACKWARD) and not (0 <= c.items[3 * it + 1] < c.n_rows):
            return PLAN_BAD_ROW
    for sec in range(c.n_sections):
        where[0] = sec
        kind = c.sections[4 * sec + 2]
        if not (kind == SYNC_NONE or kind == SYNC_BN_FORWARD or kind == SYNC_BN_BACKWARD):
            return PLAN_BAD_SYNC
        if not (0 <= c.sections[4 * sec] <= c.sections[4 * sec + 1] <= n_items):
            return PLAN_BAD_ROW
        if kind != SYNC_NONE and not (0 <= c.sections[4 * sec + 3] < c.n_rows
                                      and c.ops[c.sections[4 * sec + 3] * N_PCOL + P_OP] == OP_BATCHNORM):
            return PLAN_BAD_ROW
    return PLAN_OK


cdef PlanCtx _plan_ctx(const int64_t[:, ::1] ops, const double[:, ::1] fops, const int64_t[:, ::1] items,
                       const int64_t[:, ::1] sections, const int64_t[::1] wofs, int loss_code,
                       const double[::1] loss_f, const int64_t[::1] perm, Py_ssize_t n_params,
                       Py_ssize_t ny, Py_ssize_t n_stats, Py_ssize_t stride):
    cdef PlanCtx c
    c.ops = &ops[0, 0]
    c.fops = &fops[0, 0]
    c.items = &items[0, 0]
    c.sections = &sections[0, 0]
    c.wofs = &wofs[0]
    c.loss_f = &loss_f[0] if loss_f.shape[0] > 0 else NULL
    c.perm = &perm[0] if perm.shape[0] > 0 else NULL
    c.n_rows = ops.shape[0]
    c.n_sections = sections.shape[0]
    c.n_params = n_params
    c.ny = ny
    c.n_stats = n_stats
    c.stride = stride
    c.loss_code = loss_code
    c.ldx = 1
    c.ldy = 1
    return c


# =========================================================================== Python entries
def _as(a, str name, dtype, int ndim, bint writable=False):
    """``a`` if it is a C-contiguous ndarray of dtype/ndim (and writeable when asked); else ValueError."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, not {type(a).__name__}")
    if a.dtype != dtype or not a.dtype.isnative:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype).name}, not {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, not {a.ndim}-D (shape {a.shape})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return a


_ACT_CODES = frozenset(v for k, v in CODES.items() if k.startswith("ACT_"))
_OPT_CODES = frozenset(v for k, v in CODES.items() if k.startswith("OPT_"))


def check_plan(ops, fops, items, sections, wofs, int loss_code, loss_f, Py_ssize_t batch_size,
               Py_ssize_t n_shards, Py_ssize_t n_params, Py_ssize_t n_buffers, Py_ssize_t ny,
               Py_ssize_t n_stats):
    """Raise ValueError unless every code of the plan is known and every offset lies in its buffer."""
    _as(ops, "plan.ops", np.int64, 2)
    _as(fops, "plan.fops", np.float64, 2)
    _as(items, "plan.items", np.int64, 2)
    _as(sections, "plan.sections", np.int64, 2)
    _as(wofs, "plan.wofs", np.int64, 1)
    _as(loss_f, "plan.loss_f", np.float64, 1)
    if ops.shape[0] < 1 or ops.shape[1] != N_PCOL:
        raise ValueError(f"plan.ops must have shape (n_rows >= 1, {N_PCOL}), not {ops.shape}")
    if fops.shape != (ops.shape[0], N_FCOL):
        raise ValueError(f"plan.fops must have shape ({ops.shape[0]}, {N_FCOL}), not {fops.shape}")
    if items.shape[1] != 3 or sections.shape[1] != 4 or sections.shape[0] < 1:
        raise ValueError(f"plan.items must be (n, 3) and plan.sections (n >= 1, 4), "
                         f"not {items.shape} and {sections.shape}")
    if wofs.shape[0] != N_WCOL:
        raise ValueError(f"plan.wofs must have {N_WCOL} entries, not {wofs.shape[0]}")
    if batch_size < 1 or n_shards < 1:
        raise ValueError(f"batch_size and n_shards must be >= 1, not {batch_size} and {n_shards}")
    cdef Py_ssize_t cap = wofs[W_ROWS]
    if (batch_size + n_shards - 1) // n_shards > cap:
        raise ValueError(f"a shard of batch_size {batch_size} over {n_shards} shard(s) needs "
                         f"{(batch_size + n_shards - 1) // n_shards} rows but the plan holds {cap}")
    cdef PlanCtx c = _plan_ctx(ops, fops, items, sections, wofs, loss_code, loss_f,
                               np.zeros(0, np.int64), n_params, ny, n_stats, wofs[W_STRIDE])
    cdef Py_ssize_t where = -1
    cdef int status = _plan_check(&c, items.shape[0], cap, n_shards, n_buffers, loss_f.shape[0], &where)
    if status != PLAN_OK:
        at = "" if where < 0 else f" (row/item/section {where})"
        detail = f": loss code {loss_code}" if status == PLAN_BAD_LOSS else (
            f": op code {ops[where, P_OP]}" if status == PLAN_BAD_OP else "")
        raise ValueError(_PLAN_ERRORS[status] + detail + at)
    for q in range(ops.shape[0]):  # activation codes of dense rows: no silent default in _act_row
        if ops[q, P_OP] in (OP_DENSE, OP_CONV2D, OP_ACTIVATION) and ops[q, P_ACT] not in _ACT_CODES:
            raise ValueError(f"unknown activation code {ops[q, P_ACT]} in plan row {q}")
        if ops[q, P_OP] == OP_BATCHNORM and ops[q, P_ACT] not in (ACT_LINEAR, ACT_RELU):
            raise ValueError(f"a BatchNorm plan row applies no activation or ReLU, not code {ops[q, P_ACT]} "
                             f"(plan row {q})")


def plan_train_steps(X, Y, perm, batch_starts, Py_ssize_t batch_size, ops, fops, items, sections, wofs,
                     int loss_code, loss_f, params, grads, buffers, stats, work, int opt, state, hyper,
                     lrs, int64_t step0, bint update, batch_loss, batch_correct, int col_threads=1):
    """Run the steps of a compiled plan without the GIL (the contract of fastnn.kernels.numba.plan.train_steps).

    Batch ``j`` is rows ``perm[batch_starts[j]:][:batch_size]`` of X/Y, optimizer step
    ``step0 + j + 1`` with learning rate ``lrs[j]``. ``update=False``: no optimizer step,
    ``grads`` = the sum of the batches' gradients (grad_steps). Every buffer written is
    checked (dtype, shape, C-contiguity, writeability), and the plan too, before anything runs.
    ``col_threads > 1`` with one shard: split each layer's GEMMs by columns over that many
    threads (plan_cols.pxi) when the plan allows it, else the serial driver.
    """
    if not isinstance(params, np.ndarray) or params.dtype not in (np.float32, np.float64):
        raise ValueError("params must be a float32 or float64 numpy array")
    dt = params.dtype
    _as(params, "params", dt, 1, True)
    cdef Py_ssize_t n_params = params.shape[0]
    _as(grads, "grads", dt, 1, True)
    if grads.shape[0] != n_params:
        raise ValueError(f"grads has {grads.shape[0]} elements but params {n_params}")
    _as(buffers, "buffers", dt, 1, True)
    _as(work, "work", dt, 2, True)
    _as(stats, "stats", np.float64, 2, True)
    _as(state, "state", dt, 2, True)
    _as(batch_loss, "batch_loss", np.float64, 1, True)
    _as(batch_correct, "batch_correct", np.float64, 1, True)
    _as(perm, "perm", np.int64, 1)
    _as(batch_starts, "batch_starts", np.int64, 1)
    _as(lrs, "lrs", np.float64, 1)
    _as(hyper, "hyper", np.float64, 1)
    for name, a in (("X", X), ("Y", Y)):
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D numpy array of params' dtype {dt}")
    _as(wofs, "plan.wofs", np.int64, 1)
    if wofs.shape[0] != N_WCOL:
        raise ValueError(f"plan.wofs must have {N_WCOL} entries, not {wofs.shape[0]}")
    cdef Py_ssize_t n_shards = work.shape[0], n_batches = batch_starts.shape[0], n = perm.shape[0]
    if n_params < 1:
        raise ValueError("params is empty")
    if work.shape[1] != wofs[W_STRIDE]:
        raise ValueError(f"work must have shape (n_shards, {wofs[W_STRIDE]}), not {work.shape}")
    if stats.shape[0] != n_shards:
        raise ValueError(f"stats must have {n_shards} rows (one per shard), not {stats.shape[0]}")
    if state.size and state.shape[1] != n_params:
        raise ValueError(f"state must have shape (k, {n_params}), not {state.shape}")
    if batch_loss.shape[0] < n_batches or batch_correct.shape[0] < n_batches or lrs.shape[0] < n_batches:
        raise ValueError(f"batch_loss, batch_correct and lrs need {n_batches} entries "
                         f"(got {batch_loss.shape[0]}, {batch_correct.shape[0]}, {lrs.shape[0]})")
    if hyper.shape[0] < N_HYPER:
        raise ValueError(f"hyper needs {N_HYPER} entries, not {hyper.shape[0]}")
    if opt not in (OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD):
        raise ValueError(f"unknown optimizer code {opt}")
    cdef Py_ssize_t need_state = 0 if (opt == OPT_SGD and hyper[H_MOMENTUM] == 0) else (2 if opt == OPT_ADAM else 1)
    if state.shape[0] < need_state:
        raise ValueError(f"the optimizer needs {need_state} state row(s), state has {state.shape[0]}")
    if opt not in _OPT_CODES:
        raise ValueError(f"unknown optimizer code {opt}")
    check_plan(ops, fops, items, sections, wofs, loss_code, loss_f, batch_size, n_shards, n_params,
               buffers.shape[0], Y.shape[1], stats.shape[1])
    if X.shape[1] != ops[0, P_N_IN] or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X must be (n, {ops[0, P_N_IN]}) and Y have as many rows, not {X.shape} and {Y.shape}")
    if n_batches == 0:
        return
    if n and (perm.min() < 0 or perm.max() >= X.shape[0]):
        raise ValueError(f"perm must index rows of X (0 .. {X.shape[0] - 1})")
    if batch_starts.min() < 0 or batch_starts.max() >= n:
        raise ValueError(f"batch_starts must lie in [0, len(perm) = {n})")
    _plan_run(X, Y, perm, batch_starts, batch_size, ops, fops, items, sections, wofs, loss_code, loss_f,
              params, grads, buffers, stats, work, opt, state, hyper, lrs, step0, update,
              batch_loss, batch_correct, max(1, col_threads))


def _plan_run(const floating[:, :] X, const floating[:, :] Y, const int64_t[::1] perm,
              const int64_t[::1] batch_starts, Py_ssize_t batch_size, const int64_t[:, ::1] ops,
              const double[:, ::1] fops, const int64_t[:, ::1] items, const int64_t[:, ::1] sections,
              const int64_t[::1] wofs, int loss_code, const double[::1] loss_f, floating[::1] params,
              floating[::1] grads, floating[::1] buffers, double[:, ::1] stats, floating[:, ::1] work,
              int opt, floating[:, ::1] state, const double[::1] hyper, const double[::1] lrs,
              int64_t step0, bint update, double[::1] batch_loss, double[::1] batch_correct, int col_threads):
    """The typed half of plan_train_steps (arguments already checked there)."""
    cdef Py_ssize_t sz = sizeof(floating), n_params = params.shape[0], n_shards = work.shape[0]
    _check_rows(X, "X")
    _check_rows(Y, "Y")
    cdef PlanCtx c = _plan_ctx(ops, fops, items, sections, wofs, loss_code, loss_f, perm, n_params,
                               Y.shape[1], stats.shape[1], work.shape[1])
    c.ldx = _ld(X.shape[0], X.shape[1], X.strides[0], sz)
    c.ldy = _ld(Y.shape[0], Y.shape[1], Y.strides[0], sz)
    # Per-call scratch (never inside the step loop): lr slot copy, shard results, chunk norms.
    h_arr = np.array(hyper, dtype=np.float64)
    cdef double[::1] h = h_arr
    result_arr = np.zeros(3 * n_shards)
    cdef double[::1] result = result_arr
    partial_arr = np.zeros(max(1, (n_params + CHUNK - 1) // CHUNK) + 1)  # + the clip factor
    cdef double[::1] partial = partial_arr
    # grad_steps on one shard: each batch's gradient lands here, then is added to grads.
    acc_arr = np.zeros(n_params if (n_shards == 1 and not update) else 1,
                       np.float32 if floating is float else np.float64)
    cdef floating[::1] acc = acc_arr
    cdef floating* st = &state[0, 0] if state.shape[0] > 0 and state.shape[1] > 0 else NULL
    cdef floating* bufp = &buffers[0] if buffers.shape[0] > 0 else NULL
    # FTZ/DAZ on this thread for the call (prange threads set their own); the drivers are
    # noexcept, so the restore below always runs.
    cdef unsigned int csr = fastnn_ftz_on()
    if n_shards == 1 and col_threads > 1 and update and _plan_cols_ok(&c):
        with nogil:
            _plan_columns(&c, &X[0, 0], &Y[0, 0], &batch_starts[0], batch_starts.shape[0], batch_size, perm.shape[0],
                          &params[0], &grads[0], &work[0, 0], col_threads, opt, st, &h[0], &lrs[0], step0,
                          &result[0], &partial[0], &batch_loss[0], &batch_correct[0])
    elif n_shards == 1:
        with nogil:
            _plan_serial(&c, &X[0, 0], &Y[0, 0], &batch_starts[0], batch_starts.shape[0], batch_size,
                         perm.shape[0], &params[0], &grads[0], &acc[0], bufp, &stats[0, 0], &work[0, 0],
                         opt, st, &h[0], &lrs[0], step0, update, &batch_loss[0], &batch_correct[0])
    else:
        with nogil:
            _plan_sharded(&c, &X[0, 0], &Y[0, 0], &batch_starts[0], batch_starts.shape[0], batch_size,
                          perm.shape[0], &params[0], &grads[0], bufp, &stats[0, 0], &work[0, 0], n_shards,
                          opt, st, &h[0], &lrs[0], step0, update, &result[0], &partial[0],
                          &batch_loss[0], &batch_correct[0])
    fastnn_ftz_restore(csr)


def plan_dropout_forward(const floating[:, ::1] X, uint64_t key, int64_t step, int64_t row0, double rate,
                         floating[:, ::1] mask_out, floating[:, ::1] out):
    """The plan driver's dropout mask kernel (for tests against dropout_ref.dropout_forward)."""
    if mask_out.shape[0] != X.shape[0] or mask_out.shape[1] != X.shape[1] \
            or out.shape[0] != X.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("mask_out and out must have X's shape")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), not {rate}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    with nogil:
        _dropout_fwd(X.shape[0], X.shape[1], &X[0, 0], key, step, row0, rate, &mask_out[0, 0], &out[0, 0])
