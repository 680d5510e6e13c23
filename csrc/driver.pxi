# Batch gather; the plan driver that uses it is plan.pxi.
# Included by _kernels.pyx (one compile unit); the codes come from _codes.pxi.

cdef void _gather(Py_ssize_t m, Py_ssize_t k, const floating* X, Py_ssize_t ldx,
                  const int64_t* idx, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[i] = X[idx[i]]."""
    cdef Py_ssize_t i
    for i in range(m):
        memcpy(out + i * ldo, X + idx[i] * ldx, k * sizeof(floating))


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
