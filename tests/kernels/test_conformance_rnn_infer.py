"""Conformance of ``lstm_infer``, ``gru_infer`` (both reset_after forms) and ``simple_rnn_infer`` (the
inference-only recurrent forwards of predict): every backend against the reference, per dtype, both
output forms (every step's h, or only the last), with and without padding; the references against the
training forwards and the loop-level cells of tests/naive.py.

Batch sizes cover one row (GEMV in the Cython kernels), an odd block split and more than one 128-row
tile per thread (the Cython kernels' tiles), so a tile boundary inside a thread block is exercised;
one step and several; and no input features (F = 0: the gates come from the state and the biases).
"""
import numpy as np
import pytest

from fastnn.kernels.reference import rnn as ref

import naive  # tests/naive.py (tests/ is on sys.path: its conftest.py)
from .helpers import check_op

CASES = [(1, 1, 3, 4), (5, 7, 3, 4), (300, 4, 5, 9)]  # (n, T, F, H)


def _args(case, every_step, masked):
    n, T, F, H = case

    def make(dtype, rng):
        def rand(shape, scale):
            return (rng.standard_normal(shape) * scale).astype(dtype)
        mask = (rng.random((T, n)) > 0.3).astype(dtype) if masked else None  # padding anywhere, first steps too
        return dict(X=rand((T, n, F), 1.0), W=rand((F, 4 * H), 0.5), U=rand((H, 4 * H), 0.5), b=rand(4 * H, 0.3),
                    mask=mask, H_out=np.full((T if every_step else 1, n, H), np.nan, dtype),
                    C_buf=np.full((n, H), np.nan, dtype), G_buf=np.full((2, n, 4 * H), np.nan, dtype))
    return make


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("every_step", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_lstm_infer(case, every_step, masked):
    check_op("lstm_infer", _args(case, every_step, masked), ["H_out", "C_buf"], chain=2 * case[1] * case[2])


@pytest.mark.parametrize("masked", [False, True])
def test_reference_matches_the_training_forward_and_the_naive_cell(masked):
    n, T, F, H = 4, 6, 3, 5
    args = _args((n, T, F, H), True, masked)(np.float64, np.random.default_rng(2))
    Hs, C, G = np.empty((T, n, H)), np.empty((T, n, H)), np.empty((T, n, 4 * H))
    ref.lstm_forward(args["X"], args["W"], args["U"], args["b"], args["mask"], Hs, C, G, None)
    ref.lstm_infer(*(args[k] for k in ("X", "W", "U", "b", "mask", "H_out", "C_buf", "G_buf")))
    np.testing.assert_allclose(args["H_out"], Hs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(args["C_buf"], C[-1], rtol=1e-12, atol=1e-12)
    if not masked:
        expected = naive.lstm(args["X"].transpose(1, 0, 2), args["W"], args["U"], args["b"])
        np.testing.assert_allclose(args["H_out"].transpose(1, 0, 2), expected, rtol=1e-12, atol=1e-12)


def test_h_out_must_hold_every_step_or_one():
    args = _args((3, 4, 2, 2), True, False)(np.float32, np.random.default_rng(0))
    args["H_out"] = np.empty((2, 3, 2), np.float32)
    from fastnn.kernels import available_backends, get_backend

    for name in available_backends():
        with pytest.raises(ValueError, match="H_out"):
            get_backend(name).lstm_infer(**args)


RNN_CASES = [(1, 1, 3, 4), (1, 7, 3, 4), (5, 7, 3, 4), (300, 7, 5, 9), (5, 7, 0, 4)]  # (n, T, F, H)
GRU_FORMS = {"gru": True, "gru-v1": False}  # reset_after


def _rnn_args(case, every_step, masked, gates, extra=None):
    """A factory of gru_infer (gates 3; ``extra`` the reset_after flag) or simple_rnn_infer (gates 1) args."""
    n, T, F, H = case
    g = gates * H

    def make(dtype, rng):
        def rand(shape, scale):
            return (rng.standard_normal(shape) * scale).astype(dtype)
        mask = (rng.random((T, n)) > 0.3).astype(dtype) if masked else None
        args = dict(X=rand((T, n, F), 1.0), W=rand((F, g), 0.5), U=rand((H, g), 0.5), b=rand(g, 0.3))
        if gates == 3:
            args.update(b_h=rand(g, 0.3), reset_after=extra)
        return dict(args, mask=mask, H_out=np.full((T if every_step else 1, n, H), np.nan, dtype),
                    G_buf=np.full((2, n, g), np.nan, dtype))
    return make


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("every_step", [True, False])
@pytest.mark.parametrize("form", GRU_FORMS)
@pytest.mark.parametrize("case", RNN_CASES, ids=str)
def test_gru_infer(case, form, every_step, masked):
    check_op("gru_infer", _rnn_args(case, every_step, masked, 3, GRU_FORMS[form]), ["H_out"],
             chain=2 * case[1] * max(case[2], 1))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("every_step", [True, False])
@pytest.mark.parametrize("case", RNN_CASES, ids=str)
def test_simple_rnn_infer(case, every_step, masked):
    check_op("simple_rnn_infer", _rnn_args(case, every_step, masked, 1), ["H_out"],
             chain=2 * case[1] * max(case[2], 1))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("form", GRU_FORMS)
def test_gru_reference_matches_the_training_forward_and_the_naive_cell(form, masked):
    n, T, F, H = 4, 6, 3, 5
    args = _rnn_args((n, T, F, H), True, masked, 3, GRU_FORMS[form])(np.float64, np.random.default_rng(3))
    X, W, U, b, b_h, reset_after = (args[k] for k in ("X", "W", "U", "b", "b_h", "reset_after"))
    Hs, G, HH = np.empty((T, n, H)), np.empty((T, n, 3 * H)), np.empty((T, n, H))
    ref.gru_forward(X, W, U, b, b_h if reset_after else np.zeros(3 * H), reset_after, args["mask"], Hs, G, HH,
                    None)
    ref.gru_infer(*(args[k] for k in ("X", "W", "U", "b", "b_h", "reset_after", "mask", "H_out", "G_buf")))
    np.testing.assert_allclose(args["H_out"], Hs, rtol=1e-12, atol=1e-12)
    if not masked:
        expected = naive.gru(X.transpose(1, 0, 2), W, U, b, b_h if reset_after else None, reset_after)
        np.testing.assert_allclose(args["H_out"].transpose(1, 0, 2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("masked", [False, True])
def test_simple_rnn_reference_matches_the_training_forward_and_the_naive_cell(masked):
    n, T, F, H = 4, 6, 3, 5
    args = _rnn_args((n, T, F, H), True, masked, 1)(np.float64, np.random.default_rng(4))
    Hs = np.empty((T, n, H))
    ref.simple_rnn_forward(args["X"], args["W"], args["U"], args["b"], args["mask"], Hs, None)
    ref.simple_rnn_infer(*(args[k] for k in ("X", "W", "U", "b", "mask", "H_out", "G_buf")))
    np.testing.assert_allclose(args["H_out"], Hs, rtol=1e-12, atol=1e-12)
    if not masked:
        expected = naive.simple_rnn(args["X"].transpose(1, 0, 2), args["W"], args["U"], args["b"])
        np.testing.assert_allclose(args["H_out"].transpose(1, 0, 2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", ["gru_infer", "simple_rnn_infer"])
def test_gru_and_simple_rnn_h_out_must_hold_every_step_or_one(op):
    from fastnn.kernels import available_backends, get_backend

    args = _rnn_args((3, 4, 2, 2), True, False, 3 if op == "gru_infer" else 1, True)(np.float32,
                                                                                     np.random.default_rng(0))
    if op == "simple_rnn_infer":
        args.pop("b_h", None), args.pop("reset_after", None)
    args["H_out"] = np.empty((2, 3, 2), np.float32)
    for name in available_backends():
        with pytest.raises(ValueError, match="H_out"):
            getattr(get_backend(name), op)(**args)


@pytest.mark.parametrize("path", ["blas", "avx2"])
@pytest.mark.parametrize("op", ["gru", "gru-v1", "simple_rnn"])
def test_gru_and_simple_rnn_infer_float32_paths(op, path):
    """The Cython float32 steps on the other paths: BLAS (rnn_tiles off; the micro-kernel is the default
    where the CPU has it) and the AVX2 micro-kernel forced (what an AVX2-only CPU runs)."""
    kernels = pytest.importorskip("fastnn._ext._kernels")
    if path == "avx2" and kernels.rnn_tiles_isa() not in ("avx2", "avx512"):
        pytest.skip("no AVX2+FMA: the micro-kernel is not used on this CPU")
    try:
        if path == "blas":
            kernels.rnn_tiles(False)
        else:
            kernels.rnn_tiles_isa("avx2")
        for case in (RNN_CASES[-2], RNN_CASES[-1]):
            if op == "simple_rnn":
                factory = _rnn_args(case, True, True, 1)
            else:
                factory = _rnn_args(case, False, True, 3, GRU_FORMS[op])
            check_op(f"{op.split('-')[0]}_infer", factory, ["H_out"], dtypes=(np.float32,),
                     chain=2 * case[1] * max(case[2], 1))
    finally:
        kernels.rnn_tiles(True)
