# Batch gather and the whole-run drivers (serial; OpenMP row shards with _reduce_and_update).
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

cdef void _gather(Py_ssize_t m, Py_ssize_t k, const floating* X, Py_ssize_t ldx,
                  const int64_t* idx, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t i
    for i in range(m):
        memcpy(out + i * ldo, X + idx[i] * ldx, k * sizeof(floating))


cdef int _probe_codes(const int64_t* meta, Py_ssize_t n_layers, const double* alphas, int loss,
                      int opt, const floating* params, const double* h) noexcept nogil:
    """Take every switch the driver will take once, on empty input: STATUS_OK or the first bad code's
    status, before any work (no buffer is touched; ``params`` only selects the float type)."""
    cdef Py_ssize_t li
    cdef int act, status = STATUS_OK
    cdef floating* none = NULL
    for li in range(n_layers):
        act = <int> meta[li * N_META + META_ACT]
        status = _act_row(none, none, 0, act, <floating> alphas[li])
        if status == STATUS_OK:
            status = _act_bwd_row(none, none, none, none, 0, act, <floating> alphas[li])
        if status != STATUS_OK:
            return status
    _loss_fb(loss, 0, 1, none, 1, none, 1, 1, 1.0, none, 1, &status)
    _count_correct(loss, 0, 1, none, 1, none, 1, 1, &status)
    if status != STATUS_OK:
        return status
    return _update_slice(opt, none, none, none, 0, 0, 0, h, 1)


cdef void _shard_step(const floating* X, Py_ssize_t ldx, const floating* Y, Py_ssize_t ldy,
                      Py_ssize_t ny, const int64_t* rows, Py_ssize_t m, double scale,
                      const int64_t* meta, Py_ssize_t n_layers, const double* alphas,
                      const floating* params, floating* grads, int loss, floating* wbuf,
                      const int64_t* offs, double* result) noexcept nogil:
    """Forward + loss + backward of the rows X[rows[:m]] into ``grads``; result = (loss sum, correct).

    The kernels' statuses are not checked here: train_batches probes every code first
    (_probe_codes), so the loops never meet an unknown one.

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
    result[0] = _loss_fb(loss, m, k, A_prev, k, Yg, ny, ny, scale, dA, k, NULL)
    result[1] = <double> _count_correct(loss, m, k, A_prev, k, Yg, ny, ny, NULL)
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


# --------------------------------------------------------------------------- Python wrappers
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

    Expects (fastnn.kernels.cython.driver checks): X/Y rows with unit stride, ``work`` a C-contiguous
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
    if _probe_codes(&meta[0, 0], n_layers, &alphas[0], loss, opt, &params[0], &hyper[0]) != STATUS_OK:
        acts = [int(meta[li, META_ACT]) for li in range(n_layers)]
        raise ValueError(f"train_batches: unknown code among activations {acts}, loss {loss}, "
                         f"optimizer {opt}")
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
