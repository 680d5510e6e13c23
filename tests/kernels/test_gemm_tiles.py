"""The float32 Dense GEMM micro-kernels (csrc/gemm_tiles.pxi): each kernel this CPU has against the oracle at
sizes that cut every blocking short (the forward, and the weight gradient X.T @ dZ of the backward), the
epilogue of every activation, the BLAS switch, determinism over thread counts, and predict after training
using the new weights."""
import contextlib

import numpy as np
import pytest

from fastnn.kernels import codes, get_backend

from .helpers import check_op
from .test_conformance import ACTS, _chain_args, _dense_args, _dense_bwd_args, _ids

try:
    get_backend("cython")
    from fastnn._ext import _kernels as K
except ImportError:  # pragma: no cover - a build without the extension
    K = None

pytestmark = pytest.mark.skipif(K is None, reason="the Cython extension is not built")


def _isas():
    """The micro-kernels this CPU can run (AVX-512 CPUs run the AVX2 one too)."""
    if K is None:
        return []
    was, found = K.gemm_tiles(), []
    for isa in ("avx512", "avx2"):
        try:
            K.gemm_tiles(isa)
            found.append(isa)
        except ValueError:
            pass
    K.gemm_tiles(was)
    return found


ISAS = _isas()


@contextlib.contextmanager
def tiles(isa):
    was = K.gemm_tiles()
    try:
        assert K.gemm_tiles(isa) == isa
        yield
    finally:
        K.gemm_tiles(was)


def _needs(isa):
    if isa not in ISAS:
        pytest.skip(f"this CPU has no {isa}")


# n: one tile short of rows (1..5 left over), one row (GEMV stays), two; n_in: 0, under / over the 128-row
# chunk; n_out: a 16-lane group cut short, a 64-column panel and a bit, a 4-panel layer.
SHAPES = [(2, 1, 1), (5, 3, 17), (7, 129, 65), (13, 300, 10), (6, 128, 64), (37, 784, 256), (11, 257, 130),
          (64, 10, 300), (3, 0, 9)]


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_every_kernel_matches_the_oracle_at_odd_sizes(isa, n, n_in, n_out):
    _needs(isa)
    with tiles(isa):
        for act in (codes.ACT_LINEAR, codes.ACT_RELU, codes.ACT_LEAKY_RELU):
            # float32 only: float64 stays on BLAS (checked by the conformance tests)
            check_op("dense_forward", _dense_args(act, n=n, n_in=n_in, n_out=n_out), ["Z_out", "A_out"],
                     dtypes=(np.float32,),
                     backward=("dense_backward", _dense_bwd_args(True), ["dW_out", "db_out", "dX_out"]))


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("act,name", ACTS, ids=_ids(ACTS))
def test_every_activation_forward_and_backward(isa, act, name):
    """ReLU and leaky ReLU in the register epilogue, the others one pass over the stored rows; Z and A kept
    apart (the training forward), and Z overwritten by A (the chain)."""
    _needs(isa)
    with tiles(isa):
        check_op("dense_forward", _dense_args(act, n=23, n_in=150, n_out=70), ["Z_out", "A_out"],
                 dtypes=(np.float32,), backward=("dense_backward", _dense_bwd_args(True), ["dW_out", "db_out"]))
        check_op("dense_chain_forward", _chain_args(act, n=41, widths=(150, 70, 33, 10)), ["out"],
                 dtypes=(np.float32,), chain=3)


def test_the_nan_of_an_input_reaches_the_output():
    _needs(ISAS[0] if ISAS else "avx2")
    X = np.ones((8, 20), np.float32)
    X[3, 5] = np.nan
    W, b = np.ones((20, 9), np.float32), np.zeros(9, np.float32)
    for isa in ISAS:
        with tiles(isa):
            for act in (codes.ACT_RELU, codes.ACT_LEAKY_RELU):
                Z, A = np.empty((8, 9), np.float32), np.empty((8, 9), np.float32)
                K.dense_forward(X, W, b, act, 0.1, Z, A)
                assert np.isnan(A[3]).all() and np.isnan(Z[3]).all() and np.isfinite(np.delete(A, 3, 0)).all()


def test_the_switch_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="isa must be one of"):
        K.gemm_tiles("sse")
    if "avx512" not in ISAS:
        with pytest.raises(ValueError, match="this CPU has no avx512"):
            K.gemm_tiles("avx512")
    with tiles("off"):  # BLAS: the float32 path of before, still right
        check_op("dense_forward", _dense_args(codes.ACT_RELU, n=9, n_in=30, n_out=20), ["Z_out", "A_out"],
                 dtypes=(np.float32,))
    assert K.gemm_tiles("auto") == (ISAS[0] if ISAS else "off")


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
def test_chain_rows_do_not_depend_on_the_thread_count(isa):
    """Each row runs the same instructions whatever the row block: bit-identical at 1, 2 and 3 threads."""
    _needs(isa)
    args = _chain_args(codes.ACT_RELU, n=301, widths=(150, 70, 33, 10))(np.float32, np.random.default_rng(4))
    outs = []
    with tiles(isa):
        for nt in (1, 2, 3):
            out = np.empty_like(args["out"])
            K.dense_chain_forward(args["X"], args["params"], args["layers"], args["alphas"], args["work"], out, nt)
            outs.append(out)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_predict_after_a_training_step_uses_the_new_weights():
    """The chain reads the network's weights on every call (nothing is packed across calls)."""
    import fastnn
    from fastnn.layers import Dense
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 30)).astype(np.float32)
    y = rng.integers(0, 4, 200)
    net = fastnn.Network([Dense(30, 40, "relu"), Dense(40, 4)], dtype=np.float32, seed=0, backend="cython")
    before = net.forward(X[:100])
    fastnn.Trainer(net, loss="cross_entropy", optimizer="adam").fit(X, y, epochs=1, batch_size=50, verbose=0)
    W0, b0, W1, b1 = (net.layers[i].params[k].copy() for i in (0, 1) for k in ("W", "b"))
    expected = np.maximum(X[:100] @ W0 + b0, 0) @ W1 + b1
    got = net.forward(X[:100])
    assert not np.allclose(got, before)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    net.layers[0].params["W"][...] *= 2  # a write through a layer's view, as a user may do
    np.testing.assert_allclose(net.forward(X[:100]), np.maximum(X[:100] @ (2 * W0) + b0, 0) @ W1 + b1,
                               rtol=1e-4, atol=1e-4)


def test_threaded_blas_keeps_the_dense_gemms_on_blas_on_that_thread_only():
    """Under ``blas_limits(n > 1)`` (parallel='blas', the per-layer path) the calling thread's Dense GEMMs
    run on BLAS, which splits them over the threads (a one-thread micro-kernel would idle the others);
    other threads, and the calling thread afterwards, keep the micro-kernel."""
    import threading

    from fastnn.kernels.threads import blas_limits

    if not ISAS:
        pytest.skip("this CPU has no GEMM micro-kernel")
    rng = np.random.default_rng(5)
    # K = 784: OpenBLAS and the micro-kernel split the reduction differently there (at K = 300 they agree)
    X, W = rng.standard_normal((64, 784), dtype=np.float32), rng.standard_normal((784, 70), dtype=np.float32)
    b = rng.standard_normal(70, dtype=np.float32)

    def forward():
        Z, A = np.empty((64, 70), np.float32), np.empty((64, 70), np.float32)
        K.dense_forward(X, W, b, codes.ACT_RELU, 0.0, Z, A)
        return A

    with tiles("off"):
        blas = forward()
    tiled = forward()
    assert not np.array_equal(tiled, blas), "the two paths round differently: the test could not tell them apart"
    with blas_limits(2):
        np.testing.assert_array_equal(forward(), blas)
        other = []
        worker = threading.Thread(target=lambda: other.append(forward()))
        worker.start()
        worker.join()
        np.testing.assert_array_equal(other[0], tiled)
    np.testing.assert_array_equal(forward(), tiled)
    with blas_limits(1):
        np.testing.assert_array_equal(forward(), tiled)
