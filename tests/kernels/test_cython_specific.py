"""Checks specific to the Cython backend (backend parity is tests/kernels/test_conformance.py).

What only this backend has: the build (actionable ImportError, codes compiled
into the extension, OpenMP flag), the layout adapters (row-strided views go
straight to BLAS through ``ld*``; other layouts are copied), and the plan
driver's persistent OpenMP region (row-strided inputs, no GIL, no reads of
stale work memory). Plan-driver parity: tests/engine/test_cython_plan_driver.py.
"""
import importlib
import sys
import threading

import numpy as np
import pytest

from fastnn.kernels import codes
from fastnn.kernels import reference as R
from fastnn.kernels.codes import (
    ACT_LINEAR, ACT_RELU, ACT_SOFTMAX, ACT_TANH, H_BETA1, H_BETA2, H_EPS, H_LR, LOSS_MSE, LOSS_SOFTMAX_CE,
    N_HYPER, OPT_ADAM,
)

try:
    from fastnn.kernels import cython_backend as C
except ImportError as exc:  # pragma: no cover - unbuilt checkout
    pytest.skip(f"Cython backend not built: {exc}", allow_module_level=True)

from fastnn._ext import _kernels as K

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def assert_close(actual, expected, dtype, factor=10):
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=0,
                               atol=RTOL[dtype] * factor * scale)


# --------------------------------------------------------------------------- build
def test_codes_compiled_into_extension_match_codes_module():
    for name, value in K.CODES.items():
        assert getattr(codes, name) == value, name
    public = {n for n in dir(codes) if n.isupper() and isinstance(getattr(codes, n), int)}
    assert public <= set(K.CODES), public - set(K.CODES)


def test_codes_pxi_is_generated_from_codes_module():
    """csrc/_codes.pxi is written by setup.py from codes.py (never by hand, not in git)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    if not (root / "setup.py").is_file():
        pytest.skip("not a source checkout")
    pxi = root / "csrc" / "_codes.pxi"
    text = pxi.read_text()
    assert text.startswith("# GENERATED")
    for name in (n for n in dir(codes) if n.isupper() and isinstance(getattr(codes, n), int)):
        assert f"    {name} = {getattr(codes, name)}\n" in text, name
    assert "_codes.pxi" in (root / ".gitignore").read_text()


def test_backend_shim_and_package():
    from fastnn.kernels import cython as package

    assert C.NAME == "cython" and package.NAME == "cython"
    assert isinstance(C.OPENMP, bool)
    assert C.train_steps is package.train_steps


def test_missing_extension_gives_actionable_import_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "fastnn.kernels.cython_backend", raising=False)
    monkeypatch.setitem(sys.modules, "fastnn._ext._kernels", None)  # makes the import fail
    monkeypatch.delattr(sys.modules["fastnn._ext"], "_kernels", raising=False)
    with pytest.raises(ImportError) as info:
        importlib.import_module("fastnn.kernels.cython_backend")
    msg = str(info.value)
    assert "pip install ." in msg and "build_ext --inplace" in msg and "backend='numba'" in msg
    monkeypatch.undo()
    assert importlib.import_module("fastnn.kernels.cython_backend").NAME == "cython"


# --------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_forward_accepts_views_and_writes_row_strided_outputs_in_place(dtype):
    rng = np.random.default_rng(0)
    big = rng.standard_normal((14, 20)).astype(dtype)
    X = big[::2, 3:9]                                   # row-strided, not contiguous
    W = np.asfortranarray(rng.standard_normal((6, 4)).astype(dtype))   # needs a copy
    b = rng.standard_normal(8).astype(dtype)[::2]        # strided 1-D
    Z_ref = np.empty((7, 4), dtype)
    A_ref = np.empty((7, 4), dtype)
    R.dense_forward(X, W, b, ACT_TANH, 0.0, Z_ref, A_ref)
    Zbig = np.zeros((7, 10), dtype)
    Z_view = Zbig[:, 2:6]                                # row-strided output: written via ldc
    A_T = np.zeros((4, 7), dtype).T                      # column-major output: scratch + copy back
    C.dense_forward(X, W, b, ACT_TANH, 0.0, Z_view, A_T)
    assert_close(Zbig[:, 2:6], Z_ref, dtype)
    assert_close(A_T, A_ref, dtype)
    assert (Zbig[:, :2] == 0).all() and (Zbig[:, 6:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_views_and_no_dx(dtype):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((9, 12)).astype(dtype)[:, ::2]
    W = rng.standard_normal((6, 5)).astype(dtype)
    Z = rng.standard_normal((9, 5)).astype(dtype)
    A = np.tanh(Z)
    dA = rng.standard_normal((9, 5)).astype(dtype)
    ref = [np.empty((9, 5), dtype), np.empty((6, 5), dtype), np.empty(5, dtype), np.empty((9, 6), dtype)]
    R.dense_backward(X, W, Z, A, dA, ACT_TANH, 0.0, *ref)
    got = [np.empty((9, 5), dtype), np.zeros((6, 8), dtype)[:, 1:6], np.empty(5, dtype),
           np.empty((6, 9), dtype).T]
    C.dense_backward(X, W, Z, A, dA, ACT_TANH, 0.0, *got)
    for g, r in zip(got, ref):
        assert_close(g, r, dtype)
    dW = np.empty((6, 5), dtype)
    C.dense_backward(X, W, Z, A, dA, ACT_TANH, 0.0, got[0], dW, got[2], None)
    assert_close(dW, ref[1], dtype)
    dW[...] = 0
    Xc = np.ascontiguousarray(X)  # keywords work on the direct path and on the adapting one
    for x in (Xc, X):
        C.dense_backward(x, W, Z, A, dA, act=ACT_TANH, alpha=0.0, dZ_buf=got[0], dW_out=dW,
                         db_out=got[2], dX_out=None)
        assert_close(dW, ref[1], dtype)


@pytest.mark.parametrize("act", [ACT_LINEAR, ACT_RELU, ACT_TANH, ACT_SOFTMAX])
def test_activation_in_place(act):
    Z = np.random.default_rng(2).standard_normal((5, 7))
    expected = np.empty_like(Z)
    R.activation_forward(Z, act, 0.0, expected)
    C.activation_forward(Z, act, 0.0, Z)
    assert_close(Z, expected, np.float64)


def test_relu_propagates_nan_like_the_reference():
    Z = np.array([[np.nan, -1.0, 2.0]])
    out = np.empty_like(Z)
    C.activation_forward(Z, ACT_RELU, 0.0, out)
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == 2


def test_empty_batches():
    X = np.empty((0, 3))
    W = np.ones((3, 2))
    Z = np.empty((0, 2))
    C.dense_forward(X, W, np.zeros(2), ACT_RELU, 0.0, Z, Z)
    dW = np.full((3, 2), 7.0)
    db = np.full(2, 7.0)
    C.dense_backward(X, W, Z, Z, Z, ACT_RELU, 0.0, np.empty((0, 2)), dW, db, np.empty((0, 3)))
    assert (dW == 0).all() and (db == 0).all()
    assert C.loss_forward_backward(LOSS_MSE, Z, Z, 1.0, np.empty((0, 2))) == 0.0
    assert C.count_correct(LOSS_SOFTMAX_CE, Z, np.empty((0, 1))) == 0


def test_gather_rows_strided_source_and_int32_indices():
    X = np.arange(60, dtype=np.float32).reshape(10, 6)
    idx = np.array([3, 0, 9, 3], np.int32)
    out = np.empty((4, 3), np.float32)
    C.gather_rows(X[:, ::2], idx, out)
    np.testing.assert_array_equal(out, X[idx][:, ::2])
    out2 = np.empty((4, 6), np.float32)
    C.gather_rows(X, idx, out2)
    np.testing.assert_array_equal(out2, X[idx])


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_with_mixed_target_dtype(dtype):
    out = np.random.default_rng(3).standard_normal((6, 4)).astype(dtype)
    cls = np.array([0, 3, 1, 2, 2, 0])
    d_ref = np.empty_like(out)
    d_got = np.empty_like(out)
    t_ref = R.loss_forward_backward(LOSS_SOFTMAX_CE, out, cls[:, None].astype(dtype), 0.5, d_ref)
    t_got = C.loss_forward_backward(LOSS_SOFTMAX_CE, out, cls[:, None], 0.5, d_got)  # int64 target
    assert abs(t_ref - t_got) <= 1e-12 * max(1.0, abs(t_ref))
    assert_close(d_got, d_ref, dtype)


# --------------------------------------------------------------------------- plan driver
def _tiny_problem(dtype, n=101, sizes=(11, 9, 7, 4), seed=0):
    rng = np.random.default_rng(seed)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = (rng.standard_normal(n_params) * 0.4).astype(dtype)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = rng.integers(0, sizes[-1], (n, 1)).astype(dtype)
    return params, X, Y


def _hyper(dtype):
    h = np.zeros(N_HYPER)
    h[H_LR], h[H_BETA1], h[H_BETA2] = 0.01, 0.9, 0.999
    h[H_EPS] = 1e-8 if dtype == np.float64 else 1e-6
    return h


def _run(X, Y, p0, *, bs=16, shards=1, perm=None, sizes=(11, 9, 7, 4), work_fill=0.0):
    from .helpers import dense_plan

    dtype = p0.dtype
    plan = dense_plan(sizes, (ACT_RELU, ACT_TANH, ACT_LINEAR)[-(len(sizes) - 1):], bs, shards, dtype,
                      opt=OPT_ADAM, hyper=_hyper(dtype), params=p0.copy())
    plan.work[...] = work_fill
    perm = np.random.default_rng(9).permutation(X.shape[0]) if perm is None else perm
    starts = np.arange(0, len(perm), bs)
    bl, bc = np.zeros(len(starts)), np.zeros(len(starts))
    C.train_steps(plan, X, Y, perm, starts, np.linspace(0.01, 0.002, len(starts)), 3, bl, bc)
    return plan.params.copy(), plan.state.copy(), bl, bc


def test_plan_driver_row_strided_X_and_int_perm():
    p0, X, Y = _tiny_problem(np.float64)
    wide = np.zeros((X.shape[0], X.shape[1] + 5))
    wide[:, 2:2 + X.shape[1]] = X
    perm = np.random.default_rng(9).permutation(X.shape[0])
    ref = _run(X, Y, p0, perm=perm)
    got = _run(wide[:, 2:2 + X.shape[1]], Y, p0, perm=perm.astype(np.int32))
    for a, b in zip(got, ref):
        assert_close(a, b, np.float64, 100)


def test_plan_driver_releases_the_gil_and_is_thread_safe():
    """Two Python threads train two copies at once; each must equal a solo run."""
    from threadpoolctl import threadpool_limits

    p0, X, Y = _tiny_problem(np.float64, n=400, sizes=(30, 32, 16, 4))
    with threadpool_limits(1):
        solo = _run(X, Y, p0, sizes=(30, 32, 16, 4))
    results = [None, None]

    def work(i):
        results[i] = _run(X, Y, p0, sizes=(30, 32, 16, 4))

    with threadpool_limits(1):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for res in results:
        for a, b in zip(res, solo):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_plan_driver_never_reads_stale_work_memory(shards):
    """The work buffer is scratch: NaN left in it by anything before changes nothing."""
    p0, X, Y = _tiny_problem(np.float64)
    clean = _run(X, Y, p0, shards=shards)
    dirty = _run(X, Y, p0, shards=shards, work_fill=np.nan)
    for a, b in zip(dirty, clean):
        np.testing.assert_array_equal(a, b)


def test_extension_rejects_views_it_cannot_pass_to_blas():
    """The raw extension takes (pointer, ld) views only; the backend module adapts the rest."""
    Z = np.ones((4, 6))
    with pytest.raises(ValueError, match="unit stride"):
        K.activation_forward(Z[:, ::2], ACT_RELU, 0.0, np.empty((4, 3)))
    with pytest.raises(ValueError, match="unit stride"):
        K.dense_forward(Z, np.ones((6, 2)), np.zeros(2), ACT_RELU, 0.0, np.empty((2, 4)).T,
                        np.empty((4, 2)))
    out = np.empty((4, 3))
    C.activation_forward(Z[:, ::2], ACT_RELU, 0.0, out)  # adapted by cython_backend
    assert (out == 1).all()
