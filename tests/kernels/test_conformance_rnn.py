"""Conformance of the ``rnn`` family (SimpleRNN, LSTM, GRU): every backend against the reference, per dtype.

Through the one helper, ``check_op``, forward and backward; odd batch sizes
(a thread block shorter than the others), T = 1 (no recurrence) and T = 7,
and the first layer's case (no input gradient). The reference itself is
checked against the loop-level cells of ``tests/naive.py``.
"""
import numpy as np
import pytest

from fastnn.kernels.reference import rnn as ref

import naive  # tests/naive.py (tests/ is on sys.path: its conftest.py)
from .helpers import check_op

# (n, T, F, H); the last: 13 rows (tiles of 6, 6, 1 in the float32 micro-kernel), H = 20 (a full and a
# partial panel of 16 units forward, a partial one of 64 columns backward)
CASES = [(1, 1, 3, 4), (5, 7, 3, 4), (33, 7, 6, 9), (13, 3, 5, 20)]
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _weights(rng, dtype, cell, F, H):
    g = GATES[cell] * H
    return dict(W=_rand(rng, (F, g), dtype, 0.5), U=_rand(rng, (H, g), dtype, 0.5), b=_rand(rng, g, dtype, 0.3))


def _forward_args(cell, case, reset_after=True, masked=False):
    n, T, F, H = case

    def make(dtype, rng):
        g = GATES[cell] * H
        mask = (rng.random((T, n)) > 0.3).astype(dtype) if masked else None  # padding anywhere, first steps too
        args = dict(X=_rand(rng, (T, n, F), dtype), **_weights(rng, dtype, cell, F, H), mask=mask,
                    H_out=np.empty((T, n, H), dtype), scratch=np.empty((n, g), dtype))
        if cell == "lstm":
            args.update(C_out=np.empty((T, n, H), dtype), G_out=np.empty((T, n, g), dtype))
        if cell == "gru":
            args.update(b_h=_rand(rng, g, dtype, 0.3) if reset_after else np.zeros(g, dtype),
                        reset_after=reset_after, G_out=np.empty((T, n, g), dtype), HH_out=np.empty((T, n, H), dtype))
        return args
    return make


def _backward_args(cell, need_dX):
    def make(fwd, dtype, rng):
        X, W, U, Hs = fwd["X"], fwd["W"], fwd["U"], fwd["H_out"]
        T, n, H = Hs.shape
        args = dict(X=X, W=W, U=U, H=Hs, dH=_rand(rng, Hs.shape, dtype), mask=fwd["mask"], dW_out=np.empty_like(W),
                    dU_out=np.empty_like(U), db_out=np.empty(W.shape[1], dtype),
                    dX_out=np.empty_like(X) if need_dX else None)
        if cell == "simple_rnn":
            args.update(dZ_buf=np.empty_like(Hs), dh_buf=np.empty((2, n, H), dtype))
        elif cell == "lstm":
            args.update(C=fwd["C_out"], G=fwd["G_out"], dG_buf=np.empty_like(fwd["G_out"]),
                        dh_buf=np.empty((2, n, H), dtype), dc_buf=np.empty((n, H), dtype))
        else:
            args.update(G=fwd["G_out"], HH=fwd["HH_out"], reset_after=fwd["reset_after"],
                        db_h_out=np.empty(W.shape[1], dtype), dGx_buf=np.empty_like(fwd["G_out"]),
                        dGh_buf=np.empty_like(fwd["G_out"]), dh_buf=np.empty((2, n, H), dtype))
        return args
    return make


FWD_OUT = {"simple_rnn": ["H_out"], "lstm": ["H_out", "C_out", "G_out"], "gru": ["H_out", "G_out", "HH_out"]}
BWD_OUT = {"simple_rnn": ["dW_out", "dU_out", "db_out", "dX_out"],
           "lstm": ["dW_out", "dU_out", "db_out", "dX_out"],
           "gru": ["dW_out", "dU_out", "db_out", "db_h_out", "dX_out"]}
VARIANTS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("need_dX", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=lambda v: str(v))
def test_rnn_ops(cell, reset_after, case, need_dX, masked):
    T = case[1]
    check_op(f"{cell}_forward", _forward_args(cell, case, reset_after, masked), FWD_OUT[cell],
             backward=(f"{cell}_backward", _backward_args(cell, need_dX), BWD_OUT[cell]),
             chain=2 * T * case[2])  # errors grow with the steps chained and the sums over time


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=lambda v: str(v))
def test_rnn_ops_with_the_avx2_micro_kernel(cell, reset_after, masked):
    """The Cython float32 cells with the AVX2 variant of the micro-kernel forced (what an AVX2-only CPU
    runs), through the same check; on an AVX-512 machine the other tests cover the AVX-512 one."""
    kernels = pytest.importorskip("fastnn._ext._kernels")
    if kernels.rnn_tiles_isa() not in ("avx2", "avx512"):
        pytest.skip("no AVX2+FMA: the micro-kernel is not used on this CPU")
    case = CASES[-1]
    try:
        kernels.rnn_tiles_isa("avx2")
        check_op(f"{cell}_forward", _forward_args(cell, case, reset_after, masked), FWD_OUT[cell],
                 backward=(f"{cell}_backward", _backward_args(cell, True), BWD_OUT[cell]), chain=2 * case[1] * case[2])
    finally:
        kernels.rnn_tiles(True)


@pytest.mark.parametrize("cell,reset_after", VARIANTS, ids=lambda v: str(v))
def test_reference_matches_the_naive_cells(cell, reset_after):
    n, T, F, H = 3, 6, 4, 5
    args = _forward_args(cell, (n, T, F, H), reset_after)(np.float64, np.random.default_rng(1))
    getattr(ref, f"{cell}_forward")(*[args[k] for k in _arg_order(cell)])
    X = args["X"].transpose(1, 0, 2)
    if cell == "simple_rnn":
        expected = naive.simple_rnn(X, args["W"], args["U"], args["b"])
    elif cell == "lstm":
        expected = naive.lstm(X, args["W"], args["U"], args["b"])
    else:
        expected = naive.gru(X, args["W"], args["U"], args["b"], args["b_h"], reset_after)
    np.testing.assert_allclose(args["H_out"].transpose(1, 0, 2), expected, rtol=1e-12, atol=1e-12)


def _arg_order(cell):
    from fastnn.kernels.spec import BY_NAME

    return BY_NAME[f"{cell}_forward"].args


def test_numba_float32_tanh_is_accurate_and_saturates():
    """The float32 gates and tanh/GELU activations use a rational tanh (vectorizable); it must stay
    within a few ulp of tanh."""
    numba_math = pytest.importorskip("fastnn.kernels.numba._math")
    xs = np.concatenate([np.linspace(-12, 12, 20001), [0.0, 1e-5, -3e-4, 50.0, -50.0]]).astype(np.float32)
    got = np.array([numba_math.tanh_f32(x) for x in xs])
    np.testing.assert_allclose(got, np.tanh(xs.astype(np.float64)), rtol=0, atol=3e-7)
    assert got[-2] <= 1.0 and got[-1] >= -1.0
