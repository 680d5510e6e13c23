# Dense layer: _dense_fwd, _dense_bwd (GEMMs through _gemm, fused epilogues), _dense_fwd_tiled (the
# float32 forward on the micro-kernels of gemm_tiles.pxi, bias and ReLU in the GEMM's epilogue).
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

cdef int _dense_fwd(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                    const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                    const floating* b, int act, floating alpha,
                    floating* Z, Py_ssize_t ldz, floating* A, Py_ssize_t lda) noexcept nogil:
    """Z = X @ W + b; A = f(Z). Returns a status (unknown activation: nothing written)."""
    cdef int status = _act_row(Z, A, 0, act, alpha)
    if status != STATUS_OK:
        return status
    _gemm(c'N', c'N', <int> n, <int> n_out, <int> n_in, <floating> 1, X, <int> ldx, W, <int> ldw,
          <floating> 0, Z, <int> ldz)
    return _bias_act(n, n_out, Z, ldz, b, A, lda, act, alpha)


cdef int _dense_fwd_tiled(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                          const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                          const floating* b, int act, floating alpha,
                          floating* Z, Py_ssize_t ldz, floating* A, Py_ssize_t lda) noexcept nogil:
    """_dense_fwd, float32 on the micro-kernel gemm_tiles() selects: bias, ReLU and leaky ReLU applied to the
    register tile, the other activations one pass over the rows just written (still in L2). One row
    stays on BLAS's GEMV (it reads W once; a tile row would use 1/6 of the kernel), float64 on BLAS."""
    cdef int status = _act_row(Z, A, 0, act, alpha)
    cdef int epi = FASTNN_EPI_LINEAR
    cdef Py_ssize_t i
    if status != STATUS_OK:
        return status
    if floating is double or _gemm_isa == FASTNN_ISA_NONE or n < 2 or fastnn_gemm_blas_threaded:
        return _dense_fwd(n, n_in, n_out, X, ldx, W, ldw, b, act, alpha, Z, ldz, A, lda)
    if act == ACT_RELU:
        epi = FASTNN_EPI_RELU
    elif act == ACT_LEAKY_RELU:
        epi = FASTNN_EPI_LEAKY
    if epi != FASTNN_EPI_LINEAR or act == ACT_LINEAR:
        fastnn_gemm_f(_gemm_isa, n, n_out, n_in, X, ldx, 1, W, ldw, b, epi, alpha, Z, ldz, A, lda)
        return STATUS_OK
    fastnn_gemm_f(_gemm_isa, n, n_out, n_in, X, ldx, 1, W, ldw, b, epi, alpha, Z, ldz, Z, ldz)
    for i in range(n):
        _act_row(Z + i * ldz, A + i * lda, n_out, act, alpha)
    return STATUS_OK


cdef int _dense_bwd(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                    const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                    const floating* Z, Py_ssize_t ldz, const floating* A, Py_ssize_t lda,
                    const floating* dA, Py_ssize_t ldg, int act, floating alpha,
                    floating* dZ, Py_ssize_t lddz, floating* dW, Py_ssize_t lddw,
                    floating* db, floating* dX, Py_ssize_t lddx) noexcept nogil:
    """dZ = dA*f'(Z), db = sum(dZ) (one pass); dW = X.T @ dZ; dX = dZ @ W.T unless dX is NULL.
    Returns a status (unknown activation: nothing written)."""
    cdef int status = _act_bwd(n, n_out, Z, ldz, A, lda, dA, ldg, act, alpha, dZ, lddz, db)
    if status != STATUS_OK:
        return status
    _gemm(c'T', c'N', <int> n_in, <int> n_out, <int> n, <floating> 1, X, <int> ldx, dZ, <int> lddz,
          <floating> 0, dW, <int> lddw)
    if dX != NULL:
        _gemm(c'N', c'T', <int> n, <int> n_in, <int> n_out, <floating> 1, dZ, <int> lddz, W, <int> ldw,
              <floating> 0, dX, <int> lddx)
    return STATUS_OK


cdef int _dense_bwd_tiled(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                          const floating* X, Py_ssize_t ldx, const floating* W, Py_ssize_t ldw,
                          const floating* Z, Py_ssize_t ldz, const floating* A, Py_ssize_t lda,
                          const floating* dA, Py_ssize_t ldg, int act, floating alpha,
                          floating* dZ, Py_ssize_t lddz, floating* dW, Py_ssize_t lddw,
                          floating* db, floating* dX, Py_ssize_t lddx) noexcept nogil:
    """_dense_bwd with the weight gradient dW = X.T @ dZ on the micro-kernel (float32; the tiles broadcast
    X's columns in place, no transposed copy); dX stays on BLAS (its shapes are the small ones)."""
    cdef int status
    if floating is double or _gemm_isa == FASTNN_ISA_NONE or n < 2 or n_in == 0 or fastnn_gemm_blas_threaded:
        return _dense_bwd(n, n_in, n_out, X, ldx, W, ldw, Z, ldz, A, lda, dA, ldg, act, alpha, dZ, lddz, dW, lddw,
                          db, dX, lddx)
    status = _act_bwd(n, n_out, Z, ldz, A, lda, dA, ldg, act, alpha, dZ, lddz, db)
    if status != STATUS_OK:
        return status
    fastnn_gemm_f(_gemm_isa, n_in, n_out, n, X, 1, ldx, dZ, lddz, NULL, FASTNN_EPI_LINEAR, 0, dW, lddw, dW, lddw)
    if dX != NULL:
        _gemm(c'N', c'T', <int> n, <int> n_in, <int> n_out, <floating> 1, dZ, <int> lddz, W, <int> ldw,
              <floating> 0, dX, <int> lddx)
    return STATUS_OK


# --------------------------------------------------------------------------- Python wrappers
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
    _check_status(_act_row(<floating*> NULL, <floating*> NULL, 0, act, <floating> alpha), act)
    if n == 0 or n_out == 0:
        return
    with nogil:
        _dense_fwd_tiled(n, n_in, n_out, &X[0, 0] if n_in > 0 else &dummy, _ld(n, n_in, X.strides[0], sz),
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
    _check_status(_act_bwd_row(<floating*> NULL, <floating*> NULL, <floating*> NULL, <floating*> NULL,
                               0, act, <floating> alpha), act)
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
        _dense_bwd_tiled(n, n_in, n_out, Xp, _ld(n, n_in, X.strides[0], sz),
                   Wp, _ld(n_in, n_out, W.strides[0], sz),
                   &Z[0, 0], _ld(n, n_out, Z.strides[0], sz), &A[0, 0], _ld(n, n_out, A.strides[0], sz),
                   &dA[0, 0], _ld(n, n_out, dA.strides[0], sz), act, <floating> alpha,
                   &dZ_buf[0, 0], _ld(n, n_out, dZ_buf.strides[0], sz),
                   dWp, _ld(n_in, n_out, dW_out.strides[0], sz), &db_out[0],
                   dX, lddx)


# --------------------------------------------------------------------------- inference chain
cdef int _dense_chain(Py_ssize_t m, Py_ssize_t L, const floating* X, Py_ssize_t ldx, const floating* params,
                      const int64_t* layers, const double* alphas, floating* work, Py_ssize_t ldw,
                      floating* out, Py_ssize_t ldo) noexcept nogil:
    """Every Dense row of ``layers`` (n_in, n_out, W offset, b offset, act) in turn, one call, no GIL.
    Hidden activations ping-pong between work rows 0 and 1 (Z and A share a block); the last layer
    writes out. Returns a status (unknown activation: refused before any work)."""
    cdef Py_ssize_t q
    cdef const int64_t* r
    cdef const floating* A_in = X
    cdef Py_ssize_t lda = ldx
    cdef floating* Z
    cdef Py_ssize_t ldz
    cdef int status
    for q in range(L):
        status = _act_row(<floating*> NULL, <floating*> NULL, 0, <int> layers[5 * q + 4], 0)
        if status != STATUS_OK:
            return status
    for q in range(L):
        r = layers + 5 * q
        if q == L - 1:
            Z = out
            ldz = ldo
        else:
            Z = work + (q % 2) * ldw
            ldz = r[1]
        _dense_fwd_tiled(m, r[0], r[1], A_in, lda, params + r[2], r[1], params + r[3] if r[3] >= 0 else NULL,
                         <int> r[4], <floating> alphas[q], Z, ldz, Z, ldz)
        A_in = Z
        lda = ldz
    return STATUS_OK


cdef enum:
    # Rows per thread below which the chain stays on one thread: 32 rows of the benchmark MLP are ~15 MFLOP,
    # far more than an OpenMP wake-up (batch 64 now splits over 2 threads; it used to run on one thread
    # with threaded BLAS, which collapsed under load: bench.inference --batch 64)
    CHAIN_SPLIT_ROWS = 32


def dense_chain_forward(const floating[:, :] X, const floating[::1] params, const int64_t[:, ::1] layers,
                        const double[::1] alphas, floating[:, ::1] work, floating[:, :] out, int n_threads):
    """Dense layers one after another on X: A = f(A @ W + b) per row of ``layers``; out = the last A.
    Checks every width and offset (in C, a few comparisons per layer) before any work.

    With ``n_threads`` > 1 and at least CHAIN_SPLIT_ROWS rows per thread, the rows are split into one
    contiguous block per thread, each running the whole chain on its block (its rows of work, and
    one-thread BLAS calls: the caller limits BLAS to one thread, or the two pools fight). Each output
    row is computed the same way whatever the split (GEMM rows are independent), so results do not
    depend on the thread count beyond what the BLAS kernel does for a different m."""
    cdef Py_ssize_t m = X.shape[0], L = layers.shape[0], q, n_in, n_out, w, b, width = 1, per, t, lo, hi
    cdef Py_ssize_t P = params.shape[0], sz = sizeof(floating), ldx, ldo, ldw
    cdef int nt
    _check_rows(X, "X")
    _check_rows(out, "out")
    if layers.shape[1] != 5 or L < 1 or alphas.shape[0] < L or X.shape[1] != layers[0, 0] \
            or out.shape[0] != m or out.shape[1] != layers[L - 1, 1]:
        raise ValueError("dense_chain_forward: layers, alphas, X and out do not fit")
    for q in range(L):
        n_in = layers[q, 0]
        n_out = layers[q, 1]
        w = layers[q, 2]
        b = layers[q, 3]
        if n_in < 1 or n_out < 1 or (q > 0 and n_in != layers[q - 1, 1]) or w < 0 or w + n_in * n_out > P \
                or b + n_out > P or (q < L - 1 and (work.shape[0] < 2 or work.shape[1] < m * n_out)):
            raise ValueError("dense_chain_forward: a chain row does not fit its widths, params or work")
    if m == 0:
        return
    cdef floating* wp = &work[0, 0] if work.shape[0] > 0 and work.shape[1] > 0 else NULL
    cdef int status = STATUS_OK
    for q in range(L):  # unknown activations refused here, before any thread starts
        status = _act_row(<floating*> NULL, <floating*> NULL, 0, <int> layers[q, 4], 0)
        if status != STATUS_OK:
            _check_status(status, layers[q, 4])
    for q in range(L - 1):
        width = max(width, layers[q, 1])
    ldx = _ld(m, X.shape[1], X.strides[0], sz)
    ldo = _ld(m, out.shape[1], out.strides[0], sz)
    ldw = work.shape[1] if work.shape[0] > 0 else 0
    nt = <int> max(1, min(<Py_ssize_t> n_threads, m // CHAIN_SPLIT_ROWS))
    if nt == 1:
        with nogil:
            _dense_chain(m, L, &X[0, 0], ldx, &params[0], &layers[0, 0], &alphas[0], wp, ldw, &out[0, 0], ldo)
        return
    per = (m + nt - 1) // nt
    # Block t: rows lo..hi-1 of X and out, and work[:, lo * width : hi * width] (the check above asked
    # for m * width per work row; a block's hidden layers use (hi - lo) * n_out <= its share).
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        lo = t * per
        hi = min(m, lo + per)
        if hi > lo:
            _dense_chain(hi - lo, L, &X[0, 0] + lo * ldx, ldx, &params[0], &layers[0, 0], &alphas[0],
                         wp + lo * width if wp != NULL else NULL, ldw, &out[0, 0] + lo * ldo, ldo)
