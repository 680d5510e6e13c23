"""Checks specific to the Cython sequence kernels (parity with the reference: test_conformance_rnn.py and
test_conformance_attention.py).

What only they have: an explicit thread count (the result must not depend on it), the layout adapters
(any layout in, copied only when needed), a bad shape refused before anything is written, and the
thread knob reaching them through the trainer's per-layer path.
"""
import numpy as np
import pytest

from fastnn.kernels import get_backend

try:
    from fastnn._ext import _kernels as K
    from fastnn.kernels.cython import _seq
except ImportError as exc:  # pragma: no cover - unbuilt checkout
    pytest.skip(f"Cython backend not built: {exc}", allow_module_level=True)


def _lstm_case(dtype, n=9, T=5, F=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return dict(X=rng.standard_normal((T, n, F)).astype(dtype), W=(rng.standard_normal((F, 4 * k)) / 2).astype(dtype),
                U=(rng.standard_normal((k, 4 * k)) / 2).astype(dtype), b=rng.standard_normal(4 * k).astype(dtype),
                dH=rng.standard_normal((T, n, k)).astype(dtype))


def _lstm_run(case, nt):
    X, W, U, b, dH = (case[key] for key in ("X", "W", "U", "b", "dH"))
    T, n, _ = X.shape
    k = U.shape[0]
    dt = X.dtype
    H, C, G = np.empty((T, n, k), dt), np.empty((T, n, k), dt), np.empty((T, n, 4 * k), dt)
    mask = np.ones((1, 1), dt)
    pack = np.empty(K.rnn_pack_size(k, 4), dt)
    K.lstm_forward(X, W, U, b, mask, False, H, C, G, pack, nt)
    dW, dU, db, dX = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(X)
    K.lstm_backward(X, W, U, H, C, G, dH, mask, False, dW, dU, db, dX, True, np.empty_like(G),
                    np.empty((2, n, k), dt), np.empty((n, k), dt), pack, nt)
    return H, C, G, dW, dU, db, dX


@pytest.mark.parametrize("isa", ["default", "avx2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_result_does_not_depend_on_the_thread_count(dtype, isa):
    if isa == "avx2" and (dtype == np.float64 or K.rnn_tiles_isa() not in ("avx2", "avx512")):
        pytest.skip("the AVX2 micro-kernel runs float32 on AVX2+FMA CPUs")
    case = _lstm_case(dtype, n=20, k=20)  # rows in tiles of 6 (and 3) cut short, units in panels cut short
    try:
        if isa == "avx2":
            K.rnn_tiles_isa("avx2")
        one = _lstm_run(case, 1)
        for nt in (2, 3, 16):  # blocks of unequal size, and more threads than rows
            for a, b in zip(one, _lstm_run(case, nt)):
                np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-7)
    finally:
        K.rnn_tiles(True)


def _isas():
    """The micro-kernel ISAs this CPU runs (an AVX-512 machine runs the AVX2 variant too)."""
    best = K.rnn_tiles_isa()
    return [isa for isa in ("avx2", "avx512") if best == "avx512" or isa == best]


def _micro_kernel_case(cell, n=13, k=70, T=4):
    rng = np.random.default_rng(1)
    F, g = 5, {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    f = np.float32
    X, dH = rng.standard_normal((T, n, F)).astype(f), rng.standard_normal((T, n, k)).astype(f)
    W, U = (rng.standard_normal((F, g * k)) / 3).astype(f), (rng.standard_normal((k, g * k)) / 9).astype(f)
    b, mask = (rng.standard_normal(g * k) / 3).astype(f), (rng.random((T, n)) > 0.2).astype(f)
    return X, W, U, b, mask, dH


def _micro_kernel_run(cell, isa, case):
    """Every output of one forward and backward of ``cell`` with the micro-kernel set to ``isa``."""
    from fastnn.kernels.cython import rnn as C
    X, W, U, b, mask, dH = case
    (T, n, _), k, f = X.shape, U.shape[0], np.float32
    g = U.shape[1] // k
    H, G, HH = np.empty((T, n, k), f), np.empty((T, n, g * k), f), np.empty((T, n, k), f)
    grads = [np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(X)]
    try:
        assert K.rnn_tiles_isa(isa) == isa
        if cell == "simple_rnn":
            C.simple_rnn_forward(X, W, U, b, mask, H, None)
            C.simple_rnn_backward(X, W, U, H, dH, mask, *grads, np.empty_like(H), np.empty((2, n, k), f))
            return H, *grads
        if cell == "lstm":
            C.lstm_forward(X, W, U, b, mask, H, HH, G, None)
            C.lstm_backward(X, W, U, H, HH, G, dH, mask, *grads, np.empty_like(G), np.empty((2, n, k), f),
                            np.empty((n, k), f))
            return H, HH, G, *grads
        C.gru_forward(X, W, U, b, b, True, mask, H, G, HH, np.empty((n, g * k), f))
        grads.insert(3, np.empty_like(b))
        C.gru_backward(X, W, U, H, G, HH, dH, True, mask, *grads, np.empty_like(G), np.empty_like(G),
                       np.empty((2, n, k), f))
        return H, G, HH, *grads
    finally:
        K.rnn_tiles(True)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", [(13, 70), (7, 8), (2, 130), (37, 20, 5)])
def test_float32_micro_kernel_matches_the_blas_path(cell, shape):
    """The packed per-step products (csrc/rnn_tiles.pxi), in every ISA the CPU runs, give BLAS's results,
    forward and backward, with a padding mask and panels cut short: H = 70 (16-unit panels 4 x 16 + 6,
    64-column ones 64 + 6, AVX2's 8-unit halves 8 x 8 + 6), 8 (one half panel), 130 (two reduction chunks
    of 128 in the weight gradients); 13, 7 and 2 rows (short row tiles of 6 and of 3); 37 rows x 5 steps (the
    weight gradients' reduction over 185 rows in chunks of 128, dU's shifted by a step: 37 rows)."""
    isas = _isas()
    if not isas:
        pytest.skip("neither AVX-512F nor AVX2+FMA: the micro-kernel is not used on this CPU")
    case = _micro_kernel_case(cell, *shape)
    blas = _micro_kernel_run(cell, "blas", case)
    for isa in isas:
        for a, b in zip(_micro_kernel_run(cell, isa, case), blas):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=isa)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_avx2_and_avx512_micro_kernels_agree_exactly(cell):
    """The two ISAs run the same sums in the same order per element (and the same tanh): equal results,
    so a model trains the same on either CPU."""
    if _isas() != ["avx2", "avx512"]:
        pytest.skip("needs an AVX-512F CPU (which runs both variants)")
    case = _micro_kernel_case(cell)
    for a, b in zip(_micro_kernel_run(cell, "avx2", case), _micro_kernel_run(cell, "avx512", case)):
        np.testing.assert_array_equal(a, b)


def test_micro_kernel_isa_switch_refuses_what_the_cpu_lacks():
    with pytest.raises(ValueError, match="isa must be one of"):
        K.rnn_tiles_isa("sse")
    if K.rnn_tiles_isa() != "avx512":
        best = K.rnn_tiles_isa()
        with pytest.raises(ValueError, match="not supported by this CPU"):
            K.rnn_tiles_isa("avx512")
        assert K.rnn_tiles_isa() == best  # refused before anything changed


def test_attention_result_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    n, T, heads, dk = 5, 6, 2, 3
    QKV = rng.standard_normal((n, T, 3 * heads * dk))
    outs = []
    for nt in (1, 2, 7):
        P, O = np.empty((n, heads, T, T)), np.empty((n, T, heads * dk))
        K.attention_forward(QKV, heads, True, np.ones((1, 1)), False, P, O, nt)
        outs.append((P, O))
    for P, O in outs[1:]:
        np.testing.assert_array_equal(P, outs[0][0])  # pairs never share work: exactly equal
        np.testing.assert_array_equal(O, outs[0][1])


def test_strided_and_foreign_layouts_are_adapted():
    """Views with any strides (and an output that is a view) give the reference's result."""
    case = _lstm_case(np.float64, n=6, T=4)
    T, n, F = case["X"].shape
    k = case["U"].shape[0]
    X_strided = np.asfortranarray(case["X"])  # not C-contiguous: copied in
    outs = {}
    for name in ("reference", "cython"):
        H = np.zeros((T, n, 2 * k))[:, :, ::2]  # a strided output view: written back through a copy
        C, G = np.empty((T, n, k)), np.empty((T, n, 4 * k))
        get_backend(name).lstm_forward(X_strided, case["W"], case["U"].T.copy().T, case["b"], None, H, C, G,
                                       np.empty((n, 4 * k)))
        outs[name] = (H, C, G)
    for a, b in zip(outs["reference"], outs["cython"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_bad_shapes_are_refused_before_anything_is_written():
    case = _lstm_case(np.float32)
    T, n, _ = case["X"].shape
    k = case["U"].shape[0]
    H = np.full((T, n, k), 7, np.float32)
    with pytest.raises(ValueError, match="G_out"):
        K.lstm_forward(case["X"], case["W"], case["U"], case["b"], np.ones((1, 1), np.float32), False, H,
                       np.empty((T, n, k), np.float32), np.empty((T, n, 3 * k), np.float32),
                       np.empty(K.rnn_pack_size(k, 4), np.float32), 1)
    with pytest.raises(ValueError, match="pack_buf"):
        K.lstm_forward(case["X"], case["W"], case["U"], case["b"], np.ones((1, 1), np.float32), False, H,
                       np.empty((T, n, k), np.float32), np.empty((T, n, 4 * k), np.float32),
                       np.empty(K.rnn_pack_size(k, 4) - 1, np.float32), 1)
    with pytest.raises(ValueError, match="n_heads"):
        K.attention_forward(np.zeros((1, 2, 9)), 2, False, np.ones((1, 1)), False, np.empty((1, 2, 2, 2)),
                            np.empty((1, 2, 3)), 1)
    with pytest.raises(ValueError, match="outside the table"):
        K.embedding_forward(np.array([0, 3]), np.zeros((3, 2)), np.empty((2, 2)))
    assert (H == 7).all()


@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_trainer_thread_knob_reaches_the_sequence_kernels(n_threads):
    import fastnn as fnn

    seen = []

    class Probe(fnn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(_seq.threads())

    before = K.omp_max_threads()
    net = fnn.Network([fnn.LSTM(3), fnn.Dense(2)], input_shape=(4, 2), seed=0, backend="cython")
    X, y = np.random.default_rng(0).standard_normal((16, 4, 2)), np.arange(16) % 2
    fnn.Trainer(net, batch_size=8, n_threads=n_threads, verbose=0, callbacks=[Probe()]).fit(X, y, epochs=1)
    assert seen and set(seen) == {min(n_threads, fnn.get_num_threads(), before)}
    assert K.omp_max_threads() == before  # restored after the fit
