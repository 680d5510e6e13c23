# Embedding lookups: contract in fastnn/kernels/reference/embedding.py. Included by _kernels.pyx
# (one compile unit, after rnn.pxi: _rnn_check). The gradient is a serial scatter-add in row order:
# rows sharing an id would race across threads, and the sum order must not depend on the thread count;
# it is O(m*D), next to the O(m*D*width) GEMMs around it.

def embedding_forward(const int64_t[::1] ids, const floating[:, ::1] E, floating[:, ::1] out):
    """out[i] = E[ids[i]] (ids validated by the layer; checked here against the table too)."""
    cdef Py_ssize_t m = out.shape[0], D = out.shape[1], V = E.shape[0], i
    _rnn_check(ids.shape[0], m, "ids")
    _rnn_check(E.shape[1], D, "E columns")
    for i in range(m):
        if ids[i] < 0 or ids[i] >= V:
            raise ValueError(f"ids[{i}] = {ids[i]} is outside the table of {V} rows")
    if m == 0 or D == 0:
        return
    with nogil:
        for i in range(m):
            memcpy(&out[i, 0], &E[ids[i], 0], D * sizeof(floating))


def embedding_backward(const int64_t[::1] ids, const floating[:, ::1] dout, floating[:, ::1] dE_out):
    """dE = 0; dE[ids[i]] += dout[i], in row order (repeated ids accumulate; serial: no race, a fixed order)."""
    cdef Py_ssize_t m = dout.shape[0], D = dout.shape[1], V = dE_out.shape[0], i, j
    cdef floating* dst
    _rnn_check(ids.shape[0], m, "ids")
    _rnn_check(dE_out.shape[1], D, "dE_out columns")
    for i in range(m):
        if ids[i] < 0 or ids[i] >= V:
            raise ValueError(f"ids[{i}] = {ids[i]} is outside the table of {V} rows")
    if V * D == 0:
        return
    with nogil:
        memset(&dE_out[0, 0], 0, V * D * sizeof(floating))
        for i in range(m):
            dst = &dE_out[ids[i], 0]
            for j in range(D):
                dst[j] += dout[i, j]
