# Gradient clipping and the fused optimizer update _update_slice.
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

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


cdef int _update_slice(int opt, floating* p, const floating* g, floating* state,
                       Py_ssize_t ld_state, Py_ssize_t lo, Py_ssize_t hi, const double* hyper,
                       int64_t step) noexcept nogil:
    """Fused update of p[lo:hi] (PyTorch semantics; same math as the numba backend's _update_slice).

    Returns STATUS_BAD_OPT, having written nothing, for an unknown code; with lo == hi it touches
    no buffer (only ``hyper``), so callers probe a code that way."""
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
    else:
        return STATUS_BAD_OPT
    return STATUS_OK


# --------------------------------------------------------------------------- Python wrappers
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
    _check_status(_update_slice(opt, <floating*> NULL, <floating*> NULL, <floating*> NULL, 0, 0, 0,
                                &hyper[0], step), opt)
    if n == 0:
        return
    if state.shape[0] > 0 and state.shape[1] > 0:
        st = &state[0, 0]
    cdef unsigned int csr = fastnn_ftz_on()
    with nogil:
        _update_slice(opt, &params[0], &grads[0], st, n, 0, n, &hyper[0], step)
    fastnn_ftz_restore(csr)


# =========================================================================== row shards' reduce + update
# (issue 12) The per-layer path's row shards (fastnn/engine/sharded.py) split the gradient reduction and
# the update by parameter span over their threads; the same math and order as _plan_sharded: shard
# gradients summed in shard order, clipped by value, then (norm clipping) scaled, then _update_slice.
def reduce_gradients(const floating[:, ::1] shard_grads, Py_ssize_t lo, Py_ssize_t hi, double clip_value,
                     bint want_norm, floating[::1] grads_out):
    """grads_out[lo:hi] = sum of shard_grads[s, lo:hi] in shard order, clipped to +-clip_value (if > 0);
    return the span's sum of squares (float64) if want_norm, else -1. A row may alias grads_out."""
    cdef Py_ssize_t n_rows = shard_grads.shape[0], n = grads_out.shape[0], ld = shard_grads.shape[1]
    cdef Py_ssize_t s, i, cn = hi - lo
    cdef double ss = -1.0
    cdef floating* g
    cdef const floating* sg
    if n_rows < 1 or ld != n:
        raise ValueError(f"shard_grads must be (n_shards >= 1, {n}) like grads_out, got "
                         f"({n_rows}, {ld})")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} gradients")
    if cn == 0:
        return 0.0 if want_norm else -1.0
    with nogil:
        g = &grads_out[lo]
        sg = &shard_grads[0, lo]
        for i in range(cn):
            g[i] = sg[i]
        for s in range(1, n_rows):  # one pass per shard: the fixed order numpy's += had
            sg = &shard_grads[s, lo]
            for i in range(cn):
                g[i] = g[i] + sg[i]
        if clip_value > 0:
            _clip_value(g, cn, clip_value)
        if want_norm:
            ss = _sum_squares(g, cn)
    return ss


def update_span(int opt, floating[::1] params, floating[::1] grads, floating[:, ::1] state,
                const double[::1] hyper, int64_t step, Py_ssize_t lo, Py_ssize_t hi, double scale):
    """grads[lo:hi] *= scale (if != 1: the clip-by-norm factor), then the fused update of params[lo:hi]
    (optimizer_update's math on the span)."""
    cdef Py_ssize_t n = params.shape[0]
    cdef floating* st = NULL
    cdef unsigned int csr
    if grads.shape[0] != n or (state.shape[0] > 0 and state.shape[1] != n):
        raise ValueError(f"grads and the state rows must have the {n} entries of params")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"the span [{lo}, {hi}) is not inside the {n} parameters")
    _check_status(_update_slice(opt, <floating*> NULL, <floating*> NULL, <floating*> NULL, 0, 0, 0,
                                &hyper[0], step), opt)
    if hi == lo:
        return
    if state.shape[0] > 0 and state.shape[1] > 0:
        st = &state[0, 0]
    csr = fastnn_ftz_on()
    with nogil:
        if scale != 1.0:
            _scale(&grads[lo], hi - lo, <floating> scale)
        _update_slice(opt, &params[0], &grads[0], st, n, lo, hi, &hyper[0], step)
    fastnn_ftz_restore(csr)
