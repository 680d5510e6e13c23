# Losses: the fused-loss switch _loss_fb, _count_correct, and the extra losses.
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

cdef double _loss_fb(int loss, Py_ssize_t n, Py_ssize_t k, const floating* out, Py_ssize_t ldo,
                     const floating* target, Py_ssize_t ldt, Py_ssize_t nt, double scale,
                     floating* dout, Py_ssize_t ldd, int* status) noexcept nogil:
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). Internals in float64.

    An unknown code writes nothing and sets ``status[0] = STATUS_BAD_LOSS`` (status may be NULL);
    with n = 0 it touches no memory, so callers probe a code that way."""
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
    else:
        if status != NULL:
            status[0] = STATUS_BAD_LOSS
        return 0.0
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
                               Py_ssize_t nt, int* status) noexcept nogil:
    """Rows whose prediction matches the target (classification losses; 0 for MSE).
    An unknown code sets ``status[0] = STATUS_BAD_LOSS`` (status may be NULL)."""
    cdef Py_ssize_t i, j, true_cls, correct = 0
    cdef bint ok
    cdef bint as_index = nt == 1 and k > 1
    if loss == LOSS_SOFTMAX_CE:
        if k == 0:
            return 0
        for i in range(n):
            if as_index:
                true_cls = <Py_ssize_t> target[i * ldt]
            else:
                true_cls = _argmax(target + i * ldt, nt)
            if _argmax(out + i * ldo, k) == true_cls:
                correct += 1
    elif loss == LOSS_BCE_LOGITS:
        if k == 0:
            return 0
        for i in range(n):
            ok = True
            for j in range(k):
                if (out[i * ldo + j] > 0) != (target[i * ldt + j] > 0.5):
                    ok = False
                    break
            if ok:
                correct += 1
    elif loss == LOSS_MSE:
        pass  # regression: nothing to count
    elif status != NULL:
        status[0] = STATUS_BAD_LOSS
    return correct


cdef double _mae_fb(Py_ssize_t n, Py_ssize_t k, const floating* out, Py_ssize_t ldo,
                    const floating* target, Py_ssize_t ldt, double scale,
                    floating* dout, Py_ssize_t ldd) noexcept nogil:
    """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k (NaN propagates)."""
    cdef Py_ssize_t i, j
    cdef double sc = scale / k, total = 0.0, d
    for i in range(n):
        for j in range(k):
            d = <double> out[i * ldo + j] - <double> target[i * ldt + j]
            if d > 0.0:
                total += d
                dout[i * ldd + j] = <floating> sc
            elif d < 0.0:
                total -= d
                dout[i * ldd + j] = <floating> -sc
            else:
                total += fabs(d)
                dout[i * ldd + j] = <floating> (d * sc)
    return total / k


cdef double _huber_fb(Py_ssize_t n, Py_ssize_t k, const floating* out, Py_ssize_t ldo,
                      const floating* target, Py_ssize_t ldt, double delta, double scale,
                      floating* dout, Py_ssize_t ldd) noexcept nogil:
    """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
    cdef Py_ssize_t i, j
    cdef double sc = scale / k, total = 0.0, d, a
    for i in range(n):
        for j in range(k):
            d = <double> out[i * ldo + j] - <double> target[i * ldt + j]
            a = fabs(d)
            if a <= delta:
                total += 0.5 * d * d
                dout[i * ldd + j] = <floating> (d * sc)
            elif a > delta:
                total += delta * (a - 0.5 * delta)
                dout[i * ldd + j] = <floating> ((delta if d > 0.0 else -delta) * sc)
            else:  # NaN
                total += d
                dout[i * ldd + j] = <floating> d
    return total / k


cdef inline double _focal_a(double w, double logp, double gamma) noexcept nogil:
    """a_j / w = gamma (1-p)^(gamma-1) p log p - (1-p)^gamma, times the weight w."""
    cdef double p = exp(logp), q = -expm1(logp), qg = pow(q, gamma)
    cdef double term = gamma * pow(q, gamma - 1.0) * p * logp if q > 0.0 else 0.0
    return w * (term - qg)


cdef double _focal_fb(Py_ssize_t n, Py_ssize_t k, const floating* out, Py_ssize_t ldo,
                      const floating* target, Py_ssize_t ldt, Py_ssize_t nt, double gamma,
                      const double* alpha, double scale, floating* dout,
                      Py_ssize_t ldd) noexcept nogil:
    """sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout."""
    cdef Py_ssize_t i, j, c
    cdef bint as_index = nt == 1 and k > 1
    cdef double total = 0.0, mx, s, log_s, A, w, logp
    cdef const floating* o
    cdef const floating* t
    for i in range(n):
        o = out + i * ldo
        t = target + i * ldt
        mx = o[0]
        for j in range(1, k):
            if o[j] > mx:
                mx = o[j]
        s = 0.0
        for j in range(k):
            s += exp(<double> o[j] - mx)
        log_s = log(s)
        c = <Py_ssize_t> t[0] if as_index else -1
        A = 0.0  # pass 1: sum_j a_j and the loss
        for j in range(k):
            w = (alpha[j] if j == c else 0.0) if as_index else <double> t[j] * alpha[j]
            if w != 0.0:
                logp = (<double> o[j] - mx) - log_s
                total -= w * pow(-expm1(logp), gamma) * logp
                A += _focal_a(w, logp, gamma)
        for j in range(k):  # pass 2: dL/dz_j = a_j - p_j * A (a_j recomputed: no scratch row)
            logp = (<double> o[j] - mx) - log_s
            w = (alpha[j] if j == c else 0.0) if as_index else <double> t[j] * alpha[j]
            dout[i * ldd + j] = <floating> (((_focal_a(w, logp, gamma) if w != 0.0 else 0.0)
                                             - exp(logp) * A) * scale)
    return total


# --------------------------------------------------------------------------- Python wrappers
def loss_forward_backward(int loss, const floating[:, :] out, const floating[:, :] target,
                          double scale, floating[:, :] dout):
    """Sum over rows of the per-sample loss; dout = d(scale * sum)/d(out). See the reference."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], nt = target.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    cdef double total
    _check_rows(out, "out")
    _check_rows(target, "target")
    _check_rows(dout, "dout")
    cdef int status = STATUS_OK
    _loss_fb(loss, 0, k, <floating*> NULL, 1, <floating*> NULL, 1, nt, scale, <floating*> NULL, 1,
             &status)
    _check_status(status, loss)
    if n == 0 or k == 0:
        return 0.0
    with nogil:
        total = _loss_fb(loss, n, k, &out[0, 0], _ld(n, k, out.strides[0], sz),
                         &target[0, 0], _ld(n, nt, target.strides[0], sz), nt, scale,
                         &dout[0, 0], _ld(n, k, dout.strides[0], sz), NULL)
    return total


def count_correct(int loss, const floating[:, :] out, const floating[:, :] target):
    """Number of rows whose prediction matches the target (classification losses only)."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], nt = target.shape[1]
    cdef Py_ssize_t sz = sizeof(floating)
    _check_rows(out, "out")
    _check_rows(target, "target")
    cdef int status = STATUS_OK
    _count_correct(loss, 0, 1, <floating*> NULL, 1, <floating*> NULL, 1, 1, &status)
    _check_status(status, loss)
    if n == 0 or k == 0:
        return 0
    return int(_count_correct(loss, n, k, &out[0, 0], _ld(n, k, out.strides[0], sz),
                              &target[0, 0], _ld(n, nt, target.strides[0], sz), nt, NULL))


def mae_forward_backward(const floating[:, ::1] out, const floating[:, ::1] target, double scale,
                         floating[:, ::1] dout):
    """sum_i mean_j |out - target|; dout = sign(out - target) * scale / k."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1]
    cdef double total
    if n == 0 or k == 0:
        return 0.0
    with nogil:
        total = _mae_fb(n, k, &out[0, 0], k, &target[0, 0], target.shape[1], scale, &dout[0, 0], k)
    return total


def huber_forward_backward(const floating[:, ::1] out, const floating[:, ::1] target, double delta,
                           double scale, floating[:, ::1] dout):
    """sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1]
    cdef double total
    if n == 0 or k == 0:
        return 0.0
    with nogil:
        total = _huber_fb(n, k, &out[0, 0], k, &target[0, 0], target.shape[1], delta, scale,
                          &dout[0, 0], k)
    return total


def focal_forward_backward(const floating[:, ::1] out, const floating[:, ::1] target, double gamma,
                           const double[::1] alpha, double scale, floating[:, ::1] dout):
    """sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout."""
    cdef Py_ssize_t n = out.shape[0], k = out.shape[1], nt = target.shape[1]
    cdef double total
    if n == 0 or k == 0:
        return 0.0
    if alpha.shape[0] < k:
        raise ValueError(f"alpha has {alpha.shape[0]} weights for {k} classes")
    with nogil:
        total = _focal_fb(n, k, &out[0, 0], k, &target[0, 0], nt, nt, gamma, &alpha[0], scale,
                          &dout[0, 0], k)
    return total
