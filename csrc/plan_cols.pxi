# The column-split plan driver: wide Dense-only plans on several threads, one gradient copy.
#
# Included after plan.pxi (it uses PlanCtx, _plan_loss, _plan_penalties, _shard_span from there).
# Row shards (plan.pxi) give every thread its own copy of the whole gradient and sum the copies
# every step: for wide layers that reduction, and the thin per-shard GEMMs, cost more than they
# save. Here every thread computes its block of each layer's output columns on the WHOLE batch
# (forward Z[:, cols] = X @ W[:, cols]; backward dZ[:, cols], db[cols], dW[:, cols] = X.T @ dZ[:, cols],
# then dX[:, rows of W] = dZ @ W[rows, :].T), written straight into the one gradient, with a barrier
# between layers (the LIBXSMM fused-MLP scheme); the optimizer update is split by chunks. One
# OpenMP region per call. Each output element is computed by one thread in a fixed way, so results
# depend on the thread count but not on the schedule. Dense rows only, no row-wise (softmax) hidden
# activation, update steps only (grad_steps runs the serial driver): _plan_cols_ok says.
# Tried and not kept: each thread updating its own columns of W and b right after the layer's
# backward (the update fused into the gradient pass) measured 0.94x, 1.03x and 0.97x the separate
# chunked pass on 3072-1024-10, 784-4096-10 and 6x512 (interleaved, under load): the wide blocks
# do not stay in cache anyway, and n_in short row segments vectorize worse than 16k-element chunks.

cdef inline void _col_span(Py_ssize_t n, int nt, int t, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Columns lo..hi-1 of thread t: ceil(n / nt) rounded up to 16 (whole SIMD vectors); a width
    under 64 stays on thread 0 (splitting it costs more than it gives)."""
    cdef Py_ssize_t per = n
    if n >= 64:
        per = (n + nt - 1) // nt
        per = (per + 15) // 16 * 16
    lo[0] = min(n, t * per)
    hi[0] = min(n, lo[0] + per)


cdef bint _plan_cols_ok(const PlanCtx* c) noexcept nogil:
    """True if the column-split driver can run this plan: one section, Dense rows without softmax."""
    cdef Py_ssize_t q
    cdef const int64_t* r
    if c.n_sections != 1:
        return False
    for q in range(c.n_rows):
        r = c.ops + q * N_PCOL
        if r[P_OP] != OP_DENSE or r[P_ACT] == ACT_SOFTMAX or r[P_PARAM0] < 0:
            return False
    return True


cdef void _plan_columns(const PlanCtx* c, const floating* X, const floating* Y, const int64_t* starts,
                        Py_ssize_t n_batches, Py_ssize_t batch_size, Py_ssize_t n, floating* params,
                        floating* grads, floating* work, int n_threads, int opt, floating* state, double* h,
                        const double* lrs, int64_t step0, double* result, double* partial,
                        double* batch_loss, double* batch_correct) noexcept nogil:
    """Every step of the call with each layer's GEMMs split by output columns (see the file comment)."""
    cdef Py_ssize_t n_params = c.n_params, n_chunks = (n_params + CHUNK - 1) // CHUNK
    cdef Py_ssize_t j, m, start, q, lo, hi, ck, ch_lo, ch_hi, n_in, n_out, n_in0 = c.ops[P_N_IN]
    cdef int tid, nt, act
    cdef int64_t step, p0, p1
    cdef const int64_t* r
    cdef floating* dA
    cdef floating* dX
    cdef floating* dZ
    cdef double clip_norm = h[H_CLIP_NORM], clip_value = h[H_CLIP_VALUE], norm, penalty
    cdef bint penalized = False
    cdef floating f
    cdef unsigned int csr
    for q in range(c.n_rows):
        if c.fops[q * N_FCOL + F_L1] > 0 or c.fops[q * N_FCOL + F_L2] > 0:
            penalized = True
    with parallel(num_threads=n_threads):
        tid = fastnn_thread_num()
        nt = fastnn_num_threads()
        csr = fastnn_ftz_on()  # MXCSR is per thread
        lo = 0  # assigned here so that Cython makes them thread-private: it decides by assignment, and
        hi = 0  # _col_span/_shard_span write them through pointers (shared, they raced: wrong results)
        for j in range(n_batches):
            start = starts[j]
            m = min(batch_size, n - start)
            step = step0 + j + 1
            _shard_span(m, nt, tid, &lo, &hi)  # the gather: rows lo .. lo + hi - 1
            if hi > 0:
                _gather(hi, n_in0, X, c.ldx, c.perm + start + lo, work + c.wofs[W_X] + lo * n_in0, n_in0)
                _gather(hi, c.ny, Y, c.ldy, c.perm + start + lo, work + c.wofs[W_Y] + lo * c.ny, c.ny)
            fastnn_barrier()
            for q in range(c.n_rows):
                r = c.ops + q * N_PCOL
                n_in = r[P_N_IN]
                n_out = r[P_N_OUT]
                p1 = r[P_PARAM1]
                _col_span(n_out, nt, tid, &lo, &hi)
                if hi > lo:
                    _dense_fwd_tiled(m, n_in, hi - lo, work + r[P_IN], n_in, params + r[P_PARAM0] + lo, n_out,
                                     params + p1 + lo if p1 >= 0 else NULL, <int> r[P_ACT],
                                     <floating> c.fops[q * N_FCOL + F_ALPHA], work + r[P_Z] + lo, n_out,
                                     work + r[P_OUT] + lo, n_out)
                fastnn_barrier()
            if tid == 0:
                h[H_LR] = lrs[j]  # read by the update, after barriers
                _plan_loss(c, work, m, 1.0 / m, result)
            fastnn_barrier()
            for q in range(c.n_rows - 1, -1, -1):
                r = c.ops + q * N_PCOL
                n_in = r[P_N_IN]
                n_out = r[P_N_OUT]
                p0 = r[P_PARAM0]
                p1 = r[P_PARAM1]
                act = <int> r[P_ACT]
                if (c.n_rows - 1 - q) % 2 == 0:  # the block convention of _plan_backward
                    dA = work + c.wofs[W_DA]
                    dX = work + c.wofs[W_DX]
                else:
                    dA = work + c.wofs[W_DX]
                    dX = work + c.wofs[W_DA]
                dZ = dA if act == ACT_LINEAR else work + c.wofs[W_DZ]
                _col_span(n_out, nt, tid, &lo, &hi)
                if hi > lo:
                    _act_bwd(m, hi - lo, work + r[P_Z] + lo, n_out, work + r[P_OUT] + lo, n_out, dA + lo, n_out,
                             act, <floating> c.fops[q * N_FCOL + F_ALPHA], dZ + lo, n_out,
                             grads + p1 + lo if p1 >= 0 else NULL)
                    _gemm(c'T', c'N', <int> n_in, <int> (hi - lo), <int> m, <floating> 1, work + r[P_IN],
                          <int> n_in, dZ + lo, <int> n_out, <floating> 0, grads + p0 + lo, <int> n_out)
                if r[P_NEED_DX] != 0:
                    fastnn_barrier()  # dX needs every column of dZ
                    _col_span(n_in, nt, tid, &lo, &hi)
                    if hi > lo:
                        _gemm(c'N', c'T', <int> m, <int> (hi - lo), <int> n_out, <floating> 1, dZ, <int> n_out,
                              params + p0 + lo * n_out, <int> n_out, <floating> 0, dX + lo, <int> n_in)
                fastnn_barrier()
            penalty = 0.0
            if penalized:
                if tid == 0:
                    result[2] = _plan_penalties(c, params, grads)
                fastnn_barrier()
                penalty = result[2]
            if tid == 0:
                batch_loss[j] = result[0] / m + penalty
                batch_correct[j] = result[1]
            ck = tid  # the update, chunk by chunk: ck = tid, tid + nt, ...
            while ck < n_chunks:
                ch_lo = ck * CHUNK
                ch_hi = min(n_params, ch_lo + CHUNK)
                if clip_value > 0:
                    _clip_value(grads + ch_lo, ch_hi - ch_lo, clip_value)
                if clip_norm > 0:
                    partial[ck] = _sum_squares(grads + ch_lo, ch_hi - ch_lo)
                else:
                    _update_slice(opt, params, grads, state, n_params, ch_lo, ch_hi, h, step)
                ck = ck + nt
            if clip_norm > 0:
                fastnn_barrier()
                if tid == 0:  # the global norm: a serial sum of the chunk norms
                    norm = 0.0
                    for ck in range(n_chunks):
                        norm = norm + partial[ck]
                    norm = sqrt(norm)
                    partial[n_chunks] = clip_norm / (norm + 1e-12) if norm > clip_norm else 1.0
                fastnn_barrier()
                f = <floating> partial[n_chunks]
                ck = tid
                while ck < n_chunks:
                    ch_lo = ck * CHUNK
                    ch_hi = min(n_params, ch_lo + CHUNK)
                    if f != 1:
                        _scale(grads + ch_lo, ch_hi - ch_lo, f)
                    _update_slice(opt, params, grads, state, n_params, ch_lo, ch_hi, h, step)
                    ck = ck + nt
            fastnn_barrier()  # the next step reads the updated weights
        fastnn_ftz_restore(csr)
