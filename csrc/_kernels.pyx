# distutils: extra_compile_args = -fno-math-errno
"""Cython kernels of fastnn: same ops and signatures as fastnn.kernels.reference.

Layout of this file, as in sklearn's ``utils/_cython_blas.pyx``: fused-type
(``floating`` = float32/float64) ``noexcept nogil`` kernels on raw pointers with
BLAS-style leading dimensions, and thin ``def`` wrappers that turn typed
memoryviews into (pointer, leading dimension) pairs. The wrappers validate
nothing beyond what the memoryview conversion checks (dtype, number of
dimensions, contiguity where typed ``::1``); :mod:`fastnn.kernels.cython_backend`
adapts unusual layouts and the public API validates values.

GEMMs go to BLAS through ``scipy.linalg.cython_blas`` (the BLAS scipy ships,
called without the GIL). Row-major ``C = op(A) @ op(B)`` is the column-major
product ``C^T = op(B)^T @ op(A)^T``, so no operand is ever copied or transposed.

The whole-run driver :func:`train_batches` runs every mini-batch of a call
without the GIL and without allocating; with ``n_shards > 1`` each batch is
split into row shards computed in an OpenMP ``prange`` (one shard per thread,
BLAS called from each thread: limit BLAS to one thread, e.g. with
threadpoolctl, or it oversubscribes), the shard gradients are summed in a
fixed order and the fused clip + optimizer update runs over fixed chunks, so
results do not depend on the thread schedule.

Directives (boundscheck/wraparound off, cdivision on) are set in setup.py. The
``distutils: extra_compile_args = -fno-math-errno`` line above adds one compiler
flag to this extension: errno is never read here, and without the flag GCC keeps
a scalar errno fallback around every ``sqrt``, which stops the fused optimizer
loops from vectorizing (measured: Adam over 235k float32 parameters 4x slower).
A pragma does not do it (GCC fixes the builtins' errno attributes from the command line).
"""
from cython cimport floating
from cython.parallel cimport prange

cdef extern from *:
    """
    /* Flush denormals to zero (FTZ) and treat denormal inputs as zero (DAZ) on x86.
       Adam's first moment of rarely-active weights (MNIST border pixels) decays through the
       denormal range, where x86 arithmetic is ~100x slower: measured, an epoch at batch 32
       slowed from 640 to 1,400 us per batch as training went on. The MXCSR register is per
       thread, so every thread that runs kernels sets it, and restores it when done. */
    #if defined(__SSE__) || defined(__x86_64__) || defined(_M_X64)
    #include <xmmintrin.h>
    static inline unsigned int fastnn_ftz_on(void) {
        unsigned int old = _mm_getcsr();
        _mm_setcsr(old | 0x8040);
        return old;
    }
    static inline void fastnn_ftz_restore(unsigned int old) { _mm_setcsr(old); }
    #define FASTNN_HAS_FTZ 1
    #else
    static inline unsigned int fastnn_ftz_on(void) { return 0; }
    static inline void fastnn_ftz_restore(unsigned int old) { (void) old; }
    #define FASTNN_HAS_FTZ 0
    #endif
    """
    unsigned int fastnn_ftz_on() noexcept nogil
    void fastnn_ftz_restore(unsigned int old) noexcept nogil
    int FASTNN_HAS_FTZ
from libc.math cimport (exp, expf, expm1, expm1f, tanh, tanhf, log, log1p, sqrt, sqrtf,
                        fabs, fabsf, pow)
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np

# The integer codes of fastnn.kernels.codes (cython_backend checks they agree at import).
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_LEAKY_RELU = 2
    ACT_ELU = 3
    ACT_SIGMOID = 4
    ACT_TANH = 5
    ACT_GELU = 6
    ACT_SILU = 7
    ACT_SOFTMAX = 8

    LOSS_SOFTMAX_CE = 0
    LOSS_MSE = 1
    LOSS_BCE_LOGITS = 2

    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RMSPROP = 2
    OPT_ADAGRAD = 3

    H_LR = 0
    H_BETA1 = 1
    H_BETA2 = 2
    H_EPS = 3
    H_WEIGHT_DECAY = 4
    H_MOMENTUM = 5
    H_NESTEROV = 6
    H_DECOUPLED = 7
    H_CLIP_NORM = 8
    H_CLIP_VALUE = 9
    N_HYPER = 10

    META_N_IN = 0
    META_N_OUT = 1
    META_ACT = 2
    META_W_OFF = 3
    META_B_OFF = 4
    N_META = 5

    # Plan engine (fastnn.engine.plan; the driver is csrc/plan.pxi)
    LOSS_MAE = 3
    LOSS_HUBER = 4
    LOSS_FOCAL = 5
    OP_DENSE = 0
    OP_DROPOUT = 1
    OP_BATCHNORM = 2
    OP_LAYERNORM = 3
    P_OP = 0
    P_ACT = 1
    P_N_IN = 2
    P_N_OUT = 3
    P_PARAM0 = 4
    P_PARAM1 = 5
    P_BUF0 = 6
    P_BUF1 = 7
    P_IN = 8
    P_Z = 9
    P_OUT = 10
    P_AUX = 11
    P_SEED = 12
    P_NEED_DX = 13
    N_PCOL = 14
    F_ALPHA = 0
    F_EPS = 1
    F_RATE = 2
    F_MOMENTUM = 3
    F_L1 = 4
    F_L2 = 5
    N_FCOL = 6
    W_X = 0
    W_Y = 1
    W_DA = 2
    W_DX = 3
    W_DZ = 4
    W_STATS = 5
    W_GRAD = 6
    W_STRIDE = 7
    W_ROWS = 8
    N_WCOL = 9
    IT_GATHER = 0
    IT_FORWARD = 1
    IT_LOSS = 2
    IT_BACKWARD = 3
    IT_PENALTY = 4
    SYNC_NONE = 0
    SYNC_BN_FORWARD = 1
    SYNC_BN_BACKWARD = 2
    BN_STATS = 6

CODES = {
    "ACT_LINEAR": ACT_LINEAR, "ACT_RELU": ACT_RELU, "ACT_LEAKY_RELU": ACT_LEAKY_RELU,
    "ACT_ELU": ACT_ELU, "ACT_SIGMOID": ACT_SIGMOID, "ACT_TANH": ACT_TANH, "ACT_GELU": ACT_GELU,
    "ACT_SILU": ACT_SILU, "ACT_SOFTMAX": ACT_SOFTMAX,
    "LOSS_SOFTMAX_CE": LOSS_SOFTMAX_CE, "LOSS_MSE": LOSS_MSE, "LOSS_BCE_LOGITS": LOSS_BCE_LOGITS,
    "OPT_SGD": OPT_SGD, "OPT_ADAM": OPT_ADAM, "OPT_RMSPROP": OPT_RMSPROP, "OPT_ADAGRAD": OPT_ADAGRAD,
    "H_LR": H_LR, "H_BETA1": H_BETA1, "H_BETA2": H_BETA2, "H_EPS": H_EPS,
    "H_WEIGHT_DECAY": H_WEIGHT_DECAY, "H_MOMENTUM": H_MOMENTUM, "H_NESTEROV": H_NESTEROV,
    "H_DECOUPLED": H_DECOUPLED, "H_CLIP_NORM": H_CLIP_NORM, "H_CLIP_VALUE": H_CLIP_VALUE,
    "N_HYPER": N_HYPER,
    "META_N_IN": META_N_IN, "META_N_OUT": META_N_OUT, "META_ACT": META_ACT,
    "META_W_OFF": META_W_OFF, "META_B_OFF": META_B_OFF, "N_META": N_META,
    "LOSS_MAE": LOSS_MAE, "LOSS_HUBER": LOSS_HUBER, "LOSS_FOCAL": LOSS_FOCAL, "OP_DENSE": OP_DENSE,
    "OP_DROPOUT": OP_DROPOUT, "OP_BATCHNORM": OP_BATCHNORM, "OP_LAYERNORM": OP_LAYERNORM, "P_OP":
    P_OP, "P_ACT": P_ACT, "P_N_IN": P_N_IN, "P_N_OUT": P_N_OUT, "P_PARAM0": P_PARAM0, "P_PARAM1":
    P_PARAM1, "P_BUF0": P_BUF0, "P_BUF1": P_BUF1, "P_IN": P_IN, "P_Z": P_Z, "P_OUT": P_OUT, "P_AUX":
    P_AUX, "P_SEED": P_SEED, "P_NEED_DX": P_NEED_DX, "N_PCOL": N_PCOL, "F_ALPHA": F_ALPHA, "F_EPS":
    F_EPS, "F_RATE": F_RATE, "F_MOMENTUM": F_MOMENTUM, "F_L1": F_L1, "F_L2": F_L2, "N_FCOL": N_FCOL,
    "W_X": W_X, "W_Y": W_Y, "W_DA": W_DA, "W_DX": W_DX, "W_DZ": W_DZ, "W_STATS": W_STATS, "W_GRAD":
    W_GRAD, "W_STRIDE": W_STRIDE, "W_ROWS": W_ROWS, "N_WCOL": N_WCOL, "IT_GATHER": IT_GATHER,
    "IT_FORWARD": IT_FORWARD, "IT_LOSS": IT_LOSS, "IT_BACKWARD": IT_BACKWARD, "IT_PENALTY":
    IT_PENALTY, "SYNC_NONE": SYNC_NONE, "SYNC_BN_FORWARD": SYNC_BN_FORWARD, "SYNC_BN_BACKWARD":
    SYNC_BN_BACKWARD, "BN_STATS": BN_STATS,
}

cdef double SQRT_2_OVER_PI = 0.7978845608028654  # math.sqrt(2 / math.pi)
cdef double GELU_C = 0.044715
cdef enum:
    CHUNK = 16384  # elements per parallel chunk of the flat-buffer passes (as the numba backend)

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTNN_OPENMP 1
    #else
    #define FASTNN_OPENMP 0
    #endif
    """
    int FASTNN_OPENMP

# True when the extension was compiled with OpenMP (prange really runs in parallel).
OPENMP = bool(FASTNN_OPENMP)


# =========================================================================== scalar helpers
cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _fabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline bint _isnan(double x) noexcept nogil:
    return x != x


cdef inline void _gemm(char ta, char tb, int m, int n, int k, floating alpha,
                       const floating* A, int lda, const floating* B, int ldb,
                       floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha * op(A) @ op(B) + beta * C, via column-major C^T = op(B)^T op(A)^T."""
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda, &beta, C, &ldc)


# =========================================================================== activations
cdef void _act_row(const floating* z, floating* a, Py_ssize_t k, int act,
                   floating alpha) noexcept nogil:
    """a = f(z) over one row of k elements (a may be z)."""
    cdef Py_ssize_t j
    cdef floating v, e, s, mx
    cdef floating zero = 0, one = 1, half = 0.5
    cdef floating c0 = <floating> SQRT_2_OVER_PI, c1 = <floating> GELU_C
    if act == ACT_LINEAR:
        if a != z:
            for j in range(k):
                a[j] = z[j]
    elif act == ACT_RELU:
        for j in range(k):
            v = z[j]
            a[j] = zero if v < zero else v  # NaN propagates, as np.maximum
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
        for j in range(k):
            a[j] = _tanh(z[j])
    elif act == ACT_GELU:
        for j in range(k):
            v = z[j]
            a[j] = half * v * (one + _tanh(c0 * (v + c1 * v * v * v)))
    elif act == ACT_SILU:
        for j in range(k):
            v = z[j]
            e = _exp(-_fabs(v))
            s = one / (one + e) if v >= zero else e / (one + e)
            a[j] = v * s
    elif act == ACT_SOFTMAX:
        if k == 0:
            return
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


cdef void _bias_act(Py_ssize_t n, Py_ssize_t k, floating* Z, Py_ssize_t ldz, const floating* b,
                    floating* A, Py_ssize_t lda, int act, floating alpha) noexcept nogil:
    """Z += b (skipped if b is NULL); A = f(Z): one pass over the rows (A may be Z)."""
    cdef Py_ssize_t i, j
    cdef floating* zr
    for i in range(n):
        zr = Z + i * ldz
        if b != NULL:
            for j in range(k):
                zr[j] = zr[j] + b[j]
        _act_row(zr, A + i * lda, k, act, alpha)


cdef void _act_bwd_row(const floating* z, const floating* a, const floating* g, floating* dz,
                       Py_ssize_t k, int act, floating alpha) noexcept nogil:
    """dz = g * f'(z) over one row (a Jacobian-vector product for softmax)."""
    cdef Py_ssize_t j
    cdef floating v, t, e, s
    cdef floating zero = 0, one = 1, half = 0.5
    cdef floating c0 = <floating> SQRT_2_OVER_PI, c1 = <floating> GELU_C
    cdef floating c3 = <floating> (3 * GELU_C)
    if act == ACT_LINEAR:
        if dz != g:
            for j in range(k):
                dz[j] = g[j]
    elif act == ACT_RELU:
        for j in range(k):
            dz[j] = g[j] if z[j] > zero else zero
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
        for j in range(k):
            v = z[j]
            t = _tanh(c0 * (v + c1 * v * v * v))
            dz[j] = g[j] * (half * (one + t) + half * v * (one - t * t) * (c0 * (one + c3 * v * v)))
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


cdef void _act_bwd(Py_ssize_t n, Py_ssize_t k, const floating* Z, Py_ssize_t ldz,
                   const floating* A, Py_ssize_t lda, const floating* dA, Py_ssize_t ldg,
                   int act, floating alpha, floating* dZ, Py_ssize_t lddz,
                   floating* db) noexcept nogil:
    """dZ = dA * f'(Z); if db is not NULL, db = column sums of dZ in the same pass (rows in order)."""
    cdef Py_ssize_t i, j
    cdef floating* dzr
    if db != NULL:
        for j in range(k):
            db[j] = 0
    for i in range(n):
        dzr = dZ + i * lddz
        _act_bwd_row(Z + i * ldz, A + i * lda, dA + i * ldg, dzr, k, act, alpha)
        if db != NULL:
            for j in range(k):
                db[j] = db[j] + dzr[j]


# =========================================================================== dense layer
cdef void _dense_fwd(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                     const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                     const floating* b, int act, floating alpha,
                     floating* Z, Py_ssize_t ldz, floating* A, Py_ssize_t lda) noexcept nogil:
    """Z = X @ W + b; A = f(Z)."""
    _gemm(c'N', c'N', <int> n, <int> n_out, <int> n_in, <floating> 1, X, <int> ldx, W, <int> ldw,
          <floating> 0, Z, <int> ldz)
    _bias_act(n, n_out, Z, ldz, b, A, lda, act, alpha)


cdef void _dense_bwd(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                     const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                     const floating* Z, Py_ssize_t ldz, const floating* A, Py_ssize_t lda,
                     const floating* dA, Py_ssize_t ldg, int act, floating alpha,
                     floating* dZ, Py_ssize_t lddz, floating* dW, Py_ssize_t lddw,
                     floating* db, floating* dX, Py_ssize_t lddx) noexcept nogil:
    """dZ = dA*f'(Z), db = sum(dZ) (one pass); dW = X.T @ dZ; dX = dZ @ W.T unless dX is NULL."""
    _act_bwd(n, n_out, Z, ldz, A, lda, dA, ldg, act, alpha, dZ, lddz, db)
    _gemm(c'T', c'N', <int> n_in, <int> n_out, <int> n, <floating> 1, X, <int> ldx, dZ, <int> lddz,
          <floating> 0, dW, <int> lddw)
    if dX != NULL:
        _gemm(c'N', c'T', <int> n, <int> n_in, <int> n_out, <floating> 1, dZ, <int> lddz, W, <int> ldw,
              <floating> 0, dX, <int> lddx)


# =========================================================================== losses
cdef double _loss_fb(int loss, Py_ssize_t n, Py_ssize_t k, const floating* out, Py_ssize_t ldo,
                     const floating* target, Py_ssize_t ldt, Py_ssize_t nt, double scale,
                     floating* dout, Py_ssize_t ldd) noexcept nogil:
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). Internals in float64."""
    cdef Py_ssize_t i, j, c
    cdef double total = 0.0, mx, s, log_s, tsum, tj, d, z, y, e, sig, sc
    cdef const floating* o
    cdef const floating* t
    cdef floating* g
    cdef bint as_index = nt == 1 and k > 1
    if loss == LOSS_SOFTMAX_CE:
        for i in range(n):
            o = out + i * ldo
            t = target + i * ldt
            g = dout + i * ldd
            if k == 0:
                continue
            mx = o[0]
            for j in range(1, k):
                if o[j] > mx:
                    mx = o[j]
            s = 0.0
            for j in range(k):
                s += exp(<double> o[j] - mx)
            log_s = log(s)
            if as_index:
                c = <Py_ssize_t> t[0]
                total -= (<double> o[c] - mx) - log_s
                for j in range(k):
                    d = exp((<double> o[j] - mx) - log_s)
                    if j == c:
                        d -= 1.0
                    g[j] = <floating> (d * scale)
            else:
                tsum = 0.0
                for j in range(k):
                    tj = t[j]
                    tsum += tj
                    if tj != 0.0:
                        total -= tj * ((<double> o[j] - mx) - log_s)
                for j in range(k):
                    g[j] = <floating> ((exp((<double> o[j] - mx) - log_s) * tsum - <double> t[j]) * scale)
    elif loss == LOSS_MSE:
        sc = 2.0 * scale / k
        for i in range(n):
            o = out + i * ldo
            t = target + i * ldt
            g = dout + i * ldd
            for j in range(k):
                d = <double> o[j] - <double> t[j]
                total += d * d
                g[j] = <floating> (d * sc)
        total /= k
    elif loss == LOSS_BCE_LOGITS:
        sc = scale / k
        for i in range(n):
            o = out + i * ldo
            t = target + i * ldt
            g = dout + i * ldd
            for j in range(k):
                z = o[j]
                y = t[j]
                e = exp(-fabs(z))
                total += (z if z > 0.0 else 0.0) - z * y + log1p(e)
                sig = 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)
                g[j] = <floating> ((sig - y) * sc)
        total /= k
    return total


cdef inline Py_ssize_t _argmax(const floating* r, Py_ssize_t k) noexcept nogil:
    """Index of the largest element, the first NaN winning (as np.argmax)."""
    cdef Py_ssize_t j, best = 0
    if _isnan(r[0]):
        return 0
    for j in range(1, k):
        if _isnan(r[j]):
            return j
        if r[j] > r[best]:
            best = j
    return best


cdef Py_ssize_t _count_correct(int loss, Py_ssize_t n, Py_ssize_t k, const floating* out,
                               Py_ssize_t ldo, const floating* target, Py_ssize_t ldt,
                               Py_ssize_t nt) noexcept nogil:
    """Rows whose prediction matches the target (classification losses; 0 otherwise)."""
    cdef Py_ssize_t i, j, true_cls, correct = 0
    cdef bint ok
    cdef bint as_index = nt == 1 and k > 1
    if k == 0:
        return 0
    if loss == LOSS_SOFTMAX_CE:
        for i in range(n):
            if as_index:
                true_cls = <Py_ssize_t> target[i * ldt]
            else:
                true_cls = _argmax(target + i * ldt, nt)
            if _argmax(out + i * ldo, k) == true_cls:
                correct += 1
    elif loss == LOSS_BCE_LOGITS:
        for i in range(n):
            ok = True
            for j in range(k):
                if (out[i * ldo + j] > 0) != (target[i * ldt + j] > 0.5):
                    ok = False
                    break
            if ok:
                correct += 1
    return correct


# =========================================================================== gather, clip
cdef void _gather(Py_ssize_t m, Py_ssize_t k, const floating* X, Py_ssize_t ldx,
                  const int64_t* idx, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t i
    for i in range(m):
        memcpy(out + i * ldo, X + idx[i] * ldx, k * sizeof(floating))


cdef double _sum_squares(const floating* g, Py_ssize_t n) noexcept nogil:
    """sum(g**2) in float64 with 4 fixed-order partial sums (deterministic for a given n)."""
    cdef Py_ssize_t i, n4 = n - n % 4
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, x0, x1, x2, x3
    for i in range(0, n4, 4):
        x0 = g[i]
        x1 = g[i + 1]
        x2 = g[i + 2]
        x3 = g[i + 3]
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
    for i in range(n4, n):
        x0 = g[i]
        s0 += x0 * x0
    return (s0 + s1) + (s2 + s3)


cdef void _clip_value(floating* g, Py_ssize_t n, double clip_value) noexcept nogil:
    """g = clip(g, -clip_value, clip_value); NaN stays NaN."""
    cdef Py_ssize_t i
    cdef floating hi = <floating> clip_value, lo = -hi, v
    for i in range(n):
        v = g[i]
        g[i] = hi if v > hi else (lo if v < lo else v)


cdef void _scale(floating* g, Py_ssize_t n, floating f) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        g[i] = g[i] * f


cdef double _clip(floating* g, Py_ssize_t n, double clip_norm, double clip_value,
                  bint want_norm) noexcept nogil:
    """Clip to +-clip_value (if > 0), then to global L2 norm clip_norm (if > 0); return the norm
    (computed only when ``want_norm`` or clip_norm > 0; otherwise -1)."""
    cdef double norm = -1.0
    if clip_value > 0:
        _clip_value(g, n, clip_value)
    if want_norm or clip_norm > 0:
        norm = sqrt(_sum_squares(g, n))
        if clip_norm > 0 and norm > clip_norm:
            _scale(g, n, <floating> (clip_norm / (norm + 1e-12)))
    return norm


# =========================================================================== optimizers
cdef void _update_slice(int opt, floating* p, const floating* g, floating* state,
                        Py_ssize_t ld_state, Py_ssize_t lo, Py_ssize_t hi, const double* hyper,
                        int64_t step) noexcept nogil:
    """Fused update of p[lo:hi] (PyTorch semantics; same math as the numba backend's _update_slice)."""
    cdef Py_ssize_t i, n = hi - lo
    cdef double lr = hyper[H_LR], wd = hyper[H_WEIGHT_DECAY], b1, b2
    cdef bint decoupled = opt == OPT_ADAM and hyper[H_DECOUPLED] != 0
    cdef floating l2 = <floating> (0.0 if decoupled else wd)
    cdef floating lr_t = <floating> lr, mu, gi, v, mi, vi, s
    cdef floating b1_t, c1_t, b2_t, c2_t, step_size, inv_bc2_sqrt, eps, shrink, rho_t, c_t
    cdef floating* vel
    cdef floating* m
    cdef floating* sq
    p = p + lo
    g = g + lo
    if opt == OPT_SGD:
        mu = <floating> hyper[H_MOMENTUM]
        if hyper[H_MOMENTUM] == 0:
            for i in range(n):
                p[i] = p[i] - lr_t * (g[i] + l2 * p[i])
        else:
            vel = state + lo
            if hyper[H_NESTEROV] != 0:
                for i in range(n):
                    gi = g[i] + l2 * p[i]
                    v = mu * vel[i] + gi
                    vel[i] = v
                    p[i] = p[i] - lr_t * (gi + mu * v)
            else:
                for i in range(n):
                    v = mu * vel[i] + g[i] + l2 * p[i]
                    vel[i] = v
                    p[i] = p[i] - lr_t * v
    elif opt == OPT_ADAM:
        b1 = hyper[H_BETA1]
        b2 = hyper[H_BETA2]
        m = state + lo
        sq = state + ld_state + lo
        b1_t = <floating> b1
        c1_t = <floating> (1.0 - b1)
        b2_t = <floating> b2
        c2_t = <floating> (1.0 - b2)
        step_size = <floating> (lr / (1.0 - pow(b1, <double> step)))
        inv_bc2_sqrt = <floating> (1.0 / sqrt(1.0 - pow(b2, <double> step)))
        eps = <floating> hyper[H_EPS]
        shrink = <floating> (1.0 - lr * wd if decoupled else 1.0)
        for i in range(n):
            gi = g[i] + l2 * p[i]
            mi = b1_t * m[i] + c1_t * gi
            vi = b2_t * sq[i] + c2_t * gi * gi
            m[i] = mi
            sq[i] = vi
            p[i] = p[i] * shrink - step_size * mi / (_sqrt(vi) * inv_bc2_sqrt + eps)
    elif opt == OPT_RMSPROP:
        sq = state + lo
        rho_t = <floating> hyper[H_BETA2]
        c_t = <floating> (1.0 - hyper[H_BETA2])
        eps = <floating> hyper[H_EPS]
        for i in range(n):
            gi = g[i] + l2 * p[i]
            s = rho_t * sq[i] + c_t * gi * gi
            sq[i] = s
            p[i] = p[i] - lr_t * gi / (_sqrt(s) + eps)
    elif opt == OPT_ADAGRAD:
        sq = state + lo
        eps = <floating> hyper[H_EPS]
        for i in range(n):
            gi = g[i] + l2 * p[i]
            s = sq[i] + gi * gi
            sq[i] = s
            p[i] = p[i] - lr_t * gi / (_sqrt(s) + eps)


# =========================================================================== whole-run driver
cdef void _shard_step(const floating* X, Py_ssize_t ldx, const floating* Y, Py_ssize_t ldy,
                      Py_ssize_t ny, const int64_t* rows, Py_ssize_t m, double scale,
                      const int64_t* meta, Py_ssize_t n_layers, const double* alphas,
                      const floating* params, floating* grads, int loss, floating* wbuf,
                      const int64_t* offs, double* result) noexcept nogil:
    """Forward + loss + backward of the rows X[rows[:m]] into ``grads``; result = (loss sum, correct).

    ``wbuf`` is one shard's work slice and ``offs`` its offsets (see _work_offsets):
    [X, Y, Z_0, A_0, ..., dA, dX, dZ], every block row-major with its layer's width.
    """
    cdef Py_ssize_t li, n_in, n_out, act, w_off, b_off, k
    cdef Py_ssize_t n_in0 = meta[META_N_IN]
    cdef Py_ssize_t dA_off = offs[2 * n_layers + 2], dX_off = offs[2 * n_layers + 3], tmp
    cdef Py_ssize_t dZ_off = offs[2 * n_layers + 4]
    cdef floating* Xg = wbuf + offs[0]
    cdef floating* Yg = wbuf + offs[1]
    cdef floating* A_prev = Xg
    cdef floating* dA
    cdef floating* dZ
    cdef floating* A
    cdef const int64_t* row
    _gather(m, n_in0, X, ldx, rows, Xg, n_in0)
    _gather(m, ny, Y, ldy, rows, Yg, ny)
    for li in range(n_layers):
        row = meta + li * N_META
        n_in = row[META_N_IN]
        n_out = row[META_N_OUT]
        act = row[META_ACT]
        A = wbuf + offs[3 + 2 * li]
        _dense_fwd(m, n_in, n_out, A_prev, n_in, params + row[META_W_OFF], n_out,
                   params + row[META_B_OFF], <int> act, <floating> alphas[li],
                   wbuf + offs[2 + 2 * li], n_out, A, n_out)
        A_prev = A
    k = meta[(n_layers - 1) * N_META + META_N_OUT]
    dA = wbuf + dA_off
    result[0] = _loss_fb(loss, m, k, A_prev, k, Yg, ny, ny, scale, dA, k)
    result[1] = <double> _count_correct(loss, m, k, A_prev, k, Yg, ny, ny)
    for li in range(n_layers - 1, -1, -1):
        row = meta + li * N_META
        n_in = row[META_N_IN]
        n_out = row[META_N_OUT]
        act = row[META_ACT]
        w_off = row[META_W_OFF]
        b_off = row[META_B_OFF]
        A_prev = Xg if li == 0 else wbuf + offs[3 + 2 * (li - 1)]
        # A linear layer's dZ is dA itself: no copy.
        dZ = dA if act == ACT_LINEAR else wbuf + dZ_off
        _dense_bwd(m, n_in, n_out, A_prev, n_in, params + w_off, n_out,
                   wbuf + offs[2 + 2 * li], n_out, wbuf + offs[3 + 2 * li], n_out,
                   dA, n_out, <int> act, <floating> alphas[li], dZ, n_out,
                   grads + w_off, n_out, grads + b_off,
                   wbuf + dX_off if li > 0 else NULL, n_in)
        # This layer's input gradient is the next one's output gradient: swap the buffers.
        tmp = dA_off
        dA_off = dX_off
        dX_off = tmp
        dA = wbuf + dA_off


cdef void _run_serial(const floating* X, Py_ssize_t ldx, const floating* Y, Py_ssize_t ldy,
                      Py_ssize_t ny, const int64_t* perm, Py_ssize_t n, const int64_t* starts,
                      Py_ssize_t n_batches, Py_ssize_t batch_size, const int64_t* meta,
                      Py_ssize_t n_layers, const double* alphas, floating* params,
                      floating* grads, Py_ssize_t n_params, int loss, int opt, floating* state,
                      double* h, const double* lrs, int64_t step0, floating* work,
                      const int64_t* offs, double* batch_loss, double* batch_correct) noexcept nogil:
    cdef Py_ssize_t j, start, m
    cdef double result[2]
    cdef double clip_norm = h[H_CLIP_NORM], clip_value = h[H_CLIP_VALUE]
    for j in range(n_batches):
        start = starts[j]
        m = min(batch_size, n - start)
        _shard_step(X, ldx, Y, ldy, ny, perm + start, m, 1.0 / m, meta, n_layers, alphas,
                    params, grads, loss, work, offs, result)
        batch_loss[j] = result[0] / m
        batch_correct[j] = result[1]
        _clip(grads, n_params, clip_norm, clip_value, False)
        h[H_LR] = lrs[j]
        _update_slice(opt, params, grads, state, n_params, 0, n_params, h, step0 + j + 1)


cdef void _reduce_and_update(int opt, floating* params, floating* grads, Py_ssize_t n_params,
                             const floating* work, Py_ssize_t n_shards, Py_ssize_t stride,
                             Py_ssize_t g_off, floating* state, const double* h, int64_t step,
                             double* partial, int n_threads) noexcept nogil:
    """grads = sum of the shard gradients (fixed order), clip, update; chunked over threads.

    Per-chunk squared norms land in ``partial`` and are summed serially, so the global
    norm (and everything else) is the same whatever the thread schedule.
    """
    cdef Py_ssize_t n_chunks = (n_params + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, lo, hi, i, s, cn
    cdef double clip_norm = h[H_CLIP_NORM], clip_value = h[H_CLIP_VALUE], norm
    cdef floating f
    cdef floating* g
    cdef const floating* sg
    cdef unsigned int csr
    for c in prange(n_chunks, num_threads=n_threads, schedule='static'):
        csr = fastnn_ftz_on()
        lo = c * CHUNK
        hi = min(n_params, lo + CHUNK)
        cn = hi - lo
        g = grads + lo
        sg = work + g_off + lo
        for i in range(cn):
            g[i] = sg[i]
        for s in range(1, n_shards):
            sg = work + s * stride + g_off + lo
            for i in range(cn):
                g[i] = g[i] + sg[i]
        if clip_value > 0:
            _clip_value(g, cn, clip_value)
        if clip_norm > 0:
            partial[c] = _sum_squares(g, cn)
        else:
            _update_slice(opt, params, grads, state, n_params, lo, hi, h, step)
        fastnn_ftz_restore(csr)
    if clip_norm > 0:
        norm = 0.0
        for c in range(n_chunks):
            norm = norm + partial[c]
        norm = sqrt(norm)
        f = <floating> (clip_norm / (norm + 1e-12)) if norm > clip_norm else <floating> 1
        for c in prange(n_chunks, num_threads=n_threads, schedule='static'):
            csr = fastnn_ftz_on()
            lo = c * CHUNK
            hi = min(n_params, lo + CHUNK)
            if f != 1:
                _scale(grads + lo, hi - lo, f)
            _update_slice(opt, params, grads, state, n_params, lo, hi, h, step)
            fastnn_ftz_restore(csr)


cdef void _run_sharded(const floating* X, Py_ssize_t ldx, const floating* Y, Py_ssize_t ldy,
                       Py_ssize_t ny, const int64_t* perm, Py_ssize_t n, const int64_t* starts,
                       Py_ssize_t n_batches, Py_ssize_t batch_size, const int64_t* meta,
                       Py_ssize_t n_layers, const double* alphas, floating* params,
                       floating* grads, Py_ssize_t n_params, int loss, int opt, floating* state,
                       double* h, const double* lrs, int64_t step0, floating* work,
                       Py_ssize_t n_shards, Py_ssize_t stride, const int64_t* offs,
                       double* result, double* partial, double* batch_loss,
                       double* batch_correct) noexcept nogil:
    cdef Py_ssize_t j, s, start, m, per, lo, m_s
    cdef Py_ssize_t g_off = stride - n_params
    cdef int n_threads = <int> n_shards
    cdef double loss_sum, correct
    cdef floating* wb
    cdef unsigned int csr
    for j in range(n_batches):
        start = starts[j]
        m = min(batch_size, n - start)
        per = (m + n_shards - 1) // n_shards
        for s in prange(n_shards, num_threads=n_threads, schedule='static'):
            csr = fastnn_ftz_on()
            lo = s * per
            m_s = min(per, m - lo)
            wb = work + s * stride
            if m_s <= 0:
                memset(wb + g_off, 0, n_params * sizeof(floating))
                result[2 * s] = 0.0
                result[2 * s + 1] = 0.0
            else:
                _shard_step(X, ldx, Y, ldy, ny, perm + start + lo, m_s, 1.0 / m, meta, n_layers,
                            alphas, params, wb + g_off, loss, wb, offs, result + 2 * s)
            fastnn_ftz_restore(csr)
        loss_sum = 0.0
        correct = 0.0
        for s in range(n_shards):
            loss_sum = loss_sum + result[2 * s]
            correct = correct + result[2 * s + 1]
        batch_loss[j] = loss_sum / m
        batch_correct[j] = correct
        h[H_LR] = lrs[j]
        _reduce_and_update(opt, params, grads, n_params, work, n_shards, stride, g_off, state, h,
                           step0 + j + 1, partial, n_threads)


# =========================================================================== Python wrappers
# Pointers come from &mv[0, 0] (the wrappers return early on empty views); leading dimensions
# from the row stride. 2-D views must have unit stride along rows and non-overlapping rows
# (_check_rows checks; cython_backend makes a contiguous copy of anything else).

cdef int _check_rows(const floating[:, :] a, str name) except -1:
    """Raise unless the 2-D view ``a`` can be passed as (pointer, leading dimension)."""
    cdef Py_ssize_t rows = a.shape[0], cols = a.shape[1], s0 = a.strides[0], s1 = a.strides[1]
    cdef Py_ssize_t size = sizeof(floating)
    if (cols > 1 and s1 != size) or (rows > 1 and (s0 < cols * size or s0 % size)):
        raise ValueError(f"{name}: rows must have unit stride and must not overlap "
                         f"(shape ({rows}, {cols}), strides ({s0}, {s1}))")
    return 0

cdef inline Py_ssize_t _ld(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t stride0,
                           Py_ssize_t itemsize) noexcept nogil:
    """BLAS leading dimension of a row-major view: the row stride, at least max(1, cols)."""
    if rows <= 1:
        return cols if cols > 1 else 1
    return stride0 // itemsize


def activation_forward(const floating[:, :] Z, int act, double alpha, floating[:, :] A_out):
    """A = f(Z), row-wise for softmax."""
    cdef Py_ssize_t n = Z.shape[0], k = Z.shape[1], i
    cdef Py_ssize_t ldz = _ld(n, k, Z.strides[0], sizeof(floating))
    cdef Py_ssize_t lda = _ld(n, k, A_out.strides[0], sizeof(floating))
    _check_rows(Z, "Z")
    _check_rows(A_out, "A_out")
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
    if n == 0 or k == 0:
        return
    with nogil:
        _act_bwd(n, k, &Z[0, 0], _ld(n, k, Z.strides[0], sz), &A[0, 0], _ld(n, k, A.strides[0], sz),
                 &dA[0, 0], _ld(n, k, dA.strides[0], sz), act, <floating> alpha,
                 &dZ_out[0, 0], _ld(n, k, dZ_out.strides[0], sz), NULL)


def dense_forward(const floating[:, :] X, const floating[:, :] W, const floating[::1] b, int act,
                  double alpha, floating[:, :] Z_out, floating[:, :] A_out):
    """Z = X @ W + b; A = f(Z)."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    cdef floating dummy = 0
    _check_rows(X, "X")
    _check_rows(W, "W")
    _check_rows(Z_out, "Z_out")
    _check_rows(A_out, "A_out")
    if n == 0 or n_out == 0:
        return
    with nogil:
        _dense_fwd(n, n_in, n_out, &X[0, 0] if n_in > 0 else &dummy, _ld(n, n_in, X.strides[0], sz),
                   &W[0, 0] if n_in > 0 else &dummy, _ld(n_in, n_out, W.strides[0], sz), &b[0],
                   act, <floating> alpha, &Z_out[0, 0], _ld(n, n_out, Z_out.strides[0], sz),
                   &A_out[0, 0], _ld(n, n_out, A_out.strides[0], sz))


def dense_backward(const floating[:, :] X, const floating[:, :] W, const floating[:, :] Z,
                   const floating[:, :] A, const floating[:, :] dA, int act, double alpha,
                   floating[:, :] dZ_buf, floating[:, :] dW_out, floating[::1] db_out,
                   floating[:, :] dX_out):
    """dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    cdef floating* dX = NULL
    cdef Py_ssize_t lddx = 1
    cdef floating dummy = 0
    cdef const floating* Xp = &dummy
    cdef const floating* Wp = &dummy
    cdef floating* dWp = &dummy
    _check_rows(X, "X")
    _check_rows(W, "W")
    _check_rows(Z, "Z")
    _check_rows(A, "A")
    _check_rows(dA, "dA")
    _check_rows(dZ_buf, "dZ_buf")
    _check_rows(dW_out, "dW_out")
    if dX_out is not None:
        _check_rows(dX_out, "dX_out")
    if n_out == 0:
        return
    if n_in > 0:
        Wp = &W[0, 0]
        dWp = &dW_out[0, 0]
        if n > 0:
            Xp = &X[0, 0]
            if dX_out is not None:
                dX = &dX_out[0, 0]
                lddx = _ld(n, n_in, dX_out.strides[0], sz)
    if n == 0:
        # No rows: zero gradients (what the BLAS path with k = 0 gives, without touching empty views).
        dW_out[:, :] = 0
        db_out[:] = 0
        return
    with nogil:
        _dense_bwd(n, n_in, n_out, Xp, _ld(n, n_in, X.strides[0], sz),
                   Wp, _ld(n_in, n_out, W.strides[0], sz),
                   &Z[0, 0], _ld(n, n_out, Z.strides[0], sz), &A[0, 0], _ld(n, n_out, A.strides[0], sz),
                   &dA[0, 0], _ld(n, n_out, dA.strides[0], sz), act, <floating> alpha,
                   &dZ_buf[0, 0], _ld(n, n_out, dZ_buf.strides[0], sz),
                   dWp, _ld(n_in, n_out, dW_out.strides[0], sz), &db_out[0],
                   dX, lddx)


def loss_forward_backward(int loss, const floating[:, :] out, const floating[:, :] target,
                          double scale, floating[:, :] dout):
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). See the reference."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], nt = target.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    cdef double total
    _check_rows(out, "out")
    _check_rows(target, "target")
    _check_rows(dout, "dout")
    if n == 0 or k == 0:
        return 0.0
    with nogil:
        total = _loss_fb(loss, n, k, &out[0, 0], _ld(n, k, out.strides[0], sz),
                         &target[0, 0], _ld(n, nt, target.strides[0], sz), nt, scale,
                         &dout[0, 0], _ld(n, k, dout.strides[0], sz))
    return total


def count_correct(int loss, const floating[:, :] out, const floating[:, :] target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], nt = target.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    _check_rows(out, "out")
    _check_rows(target, "target")
    if n == 0 or k == 0:
        return 0
    return int(_count_correct(loss, n, k, &out[0, 0], _ld(n, k, out.strides[0], sz),
                              &target[0, 0], _ld(n, nt, target.strides[0], sz), nt))


def gather_rows(const floating[:, :] X, const int64_t[::1] idx, floating[:, :] out):
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t m = idx.shape[0], k = X.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    _check_rows(X, "X")
    _check_rows(out, "out")
    if m == 0 or k == 0:
        return
    with nogil:
        _gather(m, k, &X[0, 0], _ld(X.shape[0], k, X.strides[0], sz), &idx[0],
                &out[0, 0], _ld(m, k, out.strides[0], sz))


def clip_gradients(floating[::1] grads, double clip_norm, double clip_value):
    """Clip to +-clip_value (if > 0), then to global L2 norm clip_norm (if > 0); return the norm."""
    cdef Py_ssize_t n = grads.shape[0]
    cdef double norm
    if n == 0:
        return 0.0
    with nogil:
        norm = _clip(&grads[0], n, clip_norm, clip_value, True)
    return norm


def optimizer_update(int opt, floating[::1] params, const floating[::1] grads,
                     floating[:, ::1] state, const double[::1] hyper, int64_t step):
    """One fused in-place update of the flat ``params``; see the reference for the math."""
    cdef Py_ssize_t n = params.shape[0]
    cdef floating* st = NULL
    if n == 0:
        return
    if state.shape[0] > 0 and state.shape[1] > 0:
        st = &state[0, 0]
    cdef unsigned int csr = fastnn_ftz_on()
    with nogil:
        _update_slice(opt, &params[0], &grads[0], st, n, 0, n, &hyper[0], step)
    fastnn_ftz_restore(csr)


def flush_denormals_on():
    """Set flush-to-zero / denormals-are-zero on the calling thread (x86); return the old state.

    For callers whose compiled loops run on this thread (the numba backend's serial
    driver). Undo with :func:`flush_denormals_restore`.
    """
    return fastnn_ftz_on()


def flush_denormals_restore(unsigned int old):
    """Restore the floating-point control state returned by :func:`flush_denormals_on`."""
    fastnn_ftz_restore(old)


#: True where flush-to-zero is available (x86 with SSE)
HAS_FLUSH_DENORMALS = bool(FASTNN_HAS_FTZ)


def work_offsets(const int64_t[:, ::1] meta, Py_ssize_t rows_cap, Py_ssize_t ny):
    """Offsets into one shard's work slice, as fastnn.kernels.layout / the numba backend:
    [X, Y, Z_0, A_0, ..., Z_L-1, A_L-1, dA, dX, dZ] (A_l = Z_l for linear layers)."""
    cdef Py_ssize_t n_layers = meta.shape[0], li, off, w = meta[0, 0]
    offs = np.empty(2 * n_layers + 5, np.int64)
    cdef int64_t[::1] o = offs
    for li in range(n_layers):
        w = max(w, meta[li, 0], meta[li, 1])
    o[0] = 0
    o[1] = rows_cap * meta[0, 0]
    off = o[1] + rows_cap * ny
    for li in range(n_layers):
        o[2 + 2 * li] = off
        off += rows_cap * meta[li, 1]
        o[3 + 2 * li] = o[2 + 2 * li] if meta[li, 2] == ACT_LINEAR else off
        off += rows_cap * meta[li, 1]
    o[2 * n_layers + 2] = off
    o[2 * n_layers + 3] = off + rows_cap * w
    o[2 * n_layers + 4] = off + 2 * rows_cap * w
    return offs


def train_batches(const floating[:, :] X, const floating[:, :] Y, const int64_t[::1] perm,
                  const int64_t[::1] batch_starts, Py_ssize_t batch_size,
                  const int64_t[:, ::1] meta, const double[::1] alphas, floating[::1] params,
                  floating[::1] grads, int loss, int opt, floating[:, ::1] state,
                  const double[::1] hyper, const double[::1] lrs, int64_t step0,
                  Py_ssize_t n_shards, floating[:, ::1] work, double[::1] batch_loss,
                  double[::1] batch_correct):
    """Run many mini-batch steps of a Dense stack without the GIL; see the reference for the contract.

    Expects (cython_backend checks): X/Y rows with unit stride, ``work`` a C-contiguous
    (n_shards, shard_stride) buffer of params' dtype, float64 ``batch_loss``/``batch_correct``.
    """
    cdef Py_ssize_t n = perm.shape[0], n_batches = batch_starts.shape[0]
    cdef Py_ssize_t n_layers = meta.shape[0], n_params = params.shape[0], ny = Y.shape[1]
    cdef Py_ssize_t sz = sizeof(floating), rows_cap, stride = work.shape[1]
    cdef Py_ssize_t ldx = _ld(X.shape[0], X.shape[1], X.strides[0], sz)
    cdef Py_ssize_t ldy = _ld(Y.shape[0], ny, Y.strides[0], sz)
    cdef floating* st = NULL
    _check_rows(X, "X")
    _check_rows(Y, "Y")
    if n_batches == 0:
        return
    rows_cap = batch_size if n_shards == 1 else (batch_size + n_shards - 1) // n_shards
    offs_arr = work_offsets(meta, rows_cap, ny)
    cdef const int64_t[::1] offs = offs_arr
    h_arr = np.array(hyper, dtype=np.float64)  # private copy: the driver writes the lr slot
    cdef double[::1] h = h_arr
    result_arr = np.zeros(2 * max(n_shards, 1))
    cdef double[::1] result = result_arr
    partial_arr = np.zeros(max(1, (n_params + CHUNK - 1) // CHUNK))
    cdef double[::1] partial = partial_arr
    if state.shape[0] > 0 and state.shape[1] > 0:
        st = &state[0, 0]
    # FTZ/DAZ on this thread (the serial driver, the sharded loop's master) for the call; the
    # drivers are noexcept, so the restore below always runs.
    cdef unsigned int csr = fastnn_ftz_on()
    if n_shards == 1:
        with nogil:
            _run_serial(&X[0, 0], ldx, &Y[0, 0], ldy, ny, &perm[0], n, &batch_starts[0],
                        n_batches, batch_size, &meta[0, 0], n_layers, &alphas[0], &params[0],
                        &grads[0], n_params, loss, opt, st, &h[0], &lrs[0], step0,
                        &work[0, 0], &offs[0], &batch_loss[0], &batch_correct[0])
    else:
        with nogil:
            _run_sharded(&X[0, 0], ldx, &Y[0, 0], ldy, ny, &perm[0], n, &batch_starts[0],
                         n_batches, batch_size, &meta[0, 0], n_layers, &alphas[0], &params[0],
                         &grads[0], n_params, loss, opt, st, &h[0], &lrs[0], step0,
                         &work[0, 0], n_shards, stride, &offs[0], &result[0], &partial[0],
                         &batch_loss[0], &batch_correct[0])
    fastnn_ftz_restore(csr)


# =========================================================================== plan driver
include "plan.pxi"
