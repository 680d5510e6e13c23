"""Every compiled backend against the numpy reference, op by op, per dtype."""
import platform

import numpy as np
import pytest

from fastnn.kernels import available_backends, get_backend, layout
from fastnn.kernels import reference as ref
from fastnn.kernels.codes import (
    H_BETA1, H_BETA2, H_CLIP_NORM, H_CLIP_VALUE, H_DECOUPLED, H_EPS, H_LR, H_MOMENTUM,
    H_NESTEROV, H_WEIGHT_DECAY, LOSS_BCE_LOGITS, LOSS_MSE, LOSS_SOFTMAX_CE, N_HYPER,
    OPT_ADAGRAD, OPT_ADAM, OPT_RMSPROP, OPT_SGD,
)

COMPILED = [b for b in ("numba", "cython") if b in available_backends()]
DTYPES = [np.float32, np.float64]
ACTS = list(range(9))
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-5, np.float64: 1e-12}


def close(a, b, dtype, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)


@pytest.fixture(params=COMPILED)
def kern(request):
    return get_backend(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def test_compiled_backends_are_available():
    # CI installs with the Cython extension and numba: both must be there, not silently skipped.
    assert "numba" in available_backends()
    assert "cython" in available_backends()


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 130)])
def test_activation_forward_backward(kern, dtype, act, shape):
    rng = np.random.default_rng(act)
    Z = _rand(rng, shape, dtype, 3.0)
    alpha = 0.1
    A_ref, A = np.empty_like(Z), np.empty_like(Z)
    ref.activation_forward(Z, act, alpha, A_ref)
    kern.activation_forward(Z, act, alpha, A)
    close(A, A_ref, dtype)
    dA = _rand(rng, shape, dtype)
    dZ_ref, dZ = np.empty_like(Z), np.empty_like(Z)
    ref.activation_backward(Z, A_ref, dA, act, alpha, dZ_ref)
    kern.activation_backward(Z, A_ref, dA, act, alpha, dZ)
    close(dZ, dZ_ref, dtype)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n,n_in,n_out", [(1, 3, 2), (16, 20, 7), (64, 100, 33)])
def test_dense_forward_backward(kern, dtype, act, n, n_in, n_out):
    rng = np.random.default_rng(n + act)
    X, W, b = _rand(rng, (n, n_in), dtype), _rand(rng, (n_in, n_out), dtype, 0.3), _rand(rng, n_out, dtype)
    out = {}
    for name, k in (("ref", ref), ("kern", kern)):
        Z, A = np.empty((n, n_out), dtype), np.empty((n, n_out), dtype)
        k.dense_forward(X, W, b, act, 0.2, Z, A)
        dA = _rand(np.random.default_rng(1), (n, n_out), dtype)
        dZ, dW, db, dX = np.empty_like(Z), np.empty_like(W), np.empty_like(b), np.empty_like(X)
        k.dense_backward(X, W, Z, A, dA, act, 0.2, dZ, dW, db, dX)
        dW2, db2 = np.empty_like(W), np.empty_like(b)
        k.dense_backward(X, W, Z, A, dA, act, 0.2, dZ, dW2, db2, None)  # first layer: no dX
        out[name] = (Z, A, dW, db, dX, dW2, db2)
    for a, r in zip(out["kern"], out["ref"]):
        close(a, r, dtype, scale=10)


@pytest.mark.parametrize("loss", [LOSS_SOFTMAX_CE, LOSS_MSE, LOSS_BCE_LOGITS])
@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("n,k", [(1, 3), (9, 4), (50, 10)])
def test_loss_forward_backward(kern, dtype, loss, onehot, n, k):
    rng = np.random.default_rng(n * k)
    out = _rand(rng, (n, k), dtype, 4.0)
    if loss == LOSS_SOFTMAX_CE:
        labels = rng.integers(0, k, n)
        target = np.eye(k, dtype=dtype)[labels] if onehot else labels.reshape(-1, 1).astype(dtype)
    elif loss == LOSS_BCE_LOGITS:
        target = rng.random((n, k)).astype(dtype) if onehot else (rng.random((n, k)) > 0.5).astype(dtype)
    else:
        target = _rand(rng, (n, k), dtype)
    d_ref, d = np.empty_like(out), np.empty_like(out)
    l_ref = ref.loss_forward_backward(loss, out, target, 1.0 / n, d_ref)
    l_k = kern.loss_forward_backward(loss, out, target, 1.0 / n, d)
    assert l_k == pytest.approx(l_ref, rel=RTOL[dtype] * 10, abs=ATOL[dtype] * 10)
    close(d, d_ref, dtype, scale=10)
    assert kern.count_correct(loss, out, target) == ref.count_correct(loss, out, target)


def test_gather_rows(kern, dtype):
    rng = np.random.default_rng(0)
    X = _rand(rng, (100, 13), dtype)
    idx = rng.integers(0, 100, 37).astype(np.int64)
    out = np.empty((37, 13), dtype)
    kern.gather_rows(X, idx, out)
    np.testing.assert_array_equal(out, X[idx])


@pytest.mark.parametrize("clip_norm,clip_value", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.01), (1.0, 0.05), (1e9, 0.0)])
def test_clip_gradients(kern, dtype, clip_norm, clip_value):
    g = _rand(np.random.default_rng(3), 5000, dtype, 0.05)
    g_ref = g.copy()
    n_ref = ref.clip_gradients(g_ref, clip_norm, clip_value)
    n_k = kern.clip_gradients(g, clip_norm, clip_value)
    assert n_k == pytest.approx(n_ref, rel=1e-6 if dtype == np.float32 else 1e-12)
    close(g, g_ref, dtype)


OPT_CASES = [
    (OPT_SGD, {}), (OPT_SGD, {H_MOMENTUM: 0.9}), (OPT_SGD, {H_MOMENTUM: 0.9, H_NESTEROV: 1, H_WEIGHT_DECAY: 0.01}),
    (OPT_ADAM, {}), (OPT_ADAM, {H_WEIGHT_DECAY: 0.01}), (OPT_ADAM, {H_WEIGHT_DECAY: 0.01, H_DECOUPLED: 1}),
    (OPT_RMSPROP, {}), (OPT_RMSPROP, {H_WEIGHT_DECAY: 1e-3}), (OPT_ADAGRAD, {}),
]


@pytest.mark.parametrize("opt,extra", OPT_CASES, ids=[f"{o}-{sorted(e)}" for o, e in OPT_CASES])
def test_optimizer_update(kern, dtype, opt, extra):
    rng = np.random.default_rng(opt)
    n = 70001  # not a multiple of any chunk size
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-2, 0.9, 0.999, 1e-8]
    for slot, value in extra.items():
        hyper[slot] = value
    p = _rand(rng, n, dtype)
    state = np.abs(_rand(rng, (2, n), dtype, 0.01))
    p_ref, s_ref = p.copy(), state.copy()
    for step in range(1, 4):
        g = _rand(rng, n, dtype, 0.1)
        ref.optimizer_update(opt, p_ref, g, s_ref, hyper, step)
        kern.optimizer_update(opt, p, g, state, hyper, step)
    close(p, p_ref, dtype, scale=5)
    close(state, s_ref, dtype, scale=5)


def _dense_table(sizes, acts):
    meta, off = [], 0
    for (a, b), act in zip(zip(sizes[:-1], sizes[1:]), acts):
        meta.append([a, b, act, off, off + a * b])
        off += a * b + b
    return np.array(meta, np.int64), off


@pytest.mark.parametrize("n_shards", [1, 2, 3])
@pytest.mark.parametrize("loss,opt", [(LOSS_SOFTMAX_CE, OPT_ADAM), (LOSS_MSE, OPT_SGD), (LOSS_BCE_LOGITS, OPT_RMSPROP)])
def test_train_batches_matches_reference(kern, dtype, n_shards, loss, opt):
    """Whole-run driver: several epochs' worth of steps, with a ragged last batch and clipping."""
    rng = np.random.default_rng(7)
    k = 4
    meta, n_params = _dense_table((12, 16, 8, k), (1, 5, 0))
    alphas = np.zeros(3)
    n, bs = 203, 32
    X = _rand(rng, (n, 12), dtype)
    if loss == LOSS_SOFTMAX_CE:
        Y = rng.integers(0, k, (n, 1)).astype(dtype)
    elif loss == LOSS_BCE_LOGITS:
        Y = (rng.random((n, k)) > 0.5).astype(dtype)
    else:
        Y = _rand(rng, (n, k), dtype)
    params0 = _rand(rng, n_params, dtype, 0.3)
    perm = rng.permutation(n).astype(np.int64)
    starts = np.arange(0, n, bs, dtype=np.int64)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS, H_MOMENTUM, H_CLIP_NORM, H_CLIP_VALUE]] = \
        [1e-2, 0.9, 0.999, 1e-8, 0.9, 2.0, 0.5]
    lrs = np.linspace(1e-2, 1e-3, len(starts))
    results = {}
    for name, k_mod in (("ref", ref), ("kern", kern)):
        params, grads = params0.copy(), np.zeros(n_params, dtype)
        state = np.zeros((2, n_params), dtype)
        bl, bc = np.zeros(len(starts)), np.zeros(len(starts))
        rows = layout.shard_rows(bs, n_shards)
        work = np.zeros((n_shards, layout.shard_stride(meta, rows, Y.shape[1], n_params, n_shards)), dtype)
        k_mod.train_batches(X, Y, perm, starts, bs, meta, alphas, params, grads, loss, opt, state, hyper,
                            lrs, 5, n_shards, work, bl, bc)
        results[name] = (params, state, bl, bc)
    p, s, bl, bc = results["kern"]
    p_r, s_r, bl_r, bc_r = results["ref"]
    close(p, p_r, dtype, scale=50)
    close(s, s_r, dtype, scale=50)
    close(bl, bl_r, dtype, scale=50)
    np.testing.assert_array_equal(bc, bc_r)


def test_sharded_driver_is_deterministic(kern):
    """Parallel shards reduce in a fixed order: repeated runs are bit-identical."""
    rng = np.random.default_rng(0)
    meta, n_params = _dense_table((20, 32, 5), (1, 0))
    X = _rand(rng, (256, 20), np.float32)
    Y = rng.integers(0, 5, (256, 1)).astype(np.float32)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-3, 0.9, 0.999, 1e-8]
    starts = np.arange(0, 256, 64, dtype=np.int64)
    perm = np.arange(256, dtype=np.int64)
    outs = []
    for _ in range(20):
        p = _rand(np.random.default_rng(1), n_params, np.float32)
        g, st = np.zeros_like(p), np.zeros((2, n_params), np.float32)
        work = np.zeros((2, layout.shard_stride(meta, 32, 1, n_params, 2)), np.float32)
        bl, bc = np.zeros(4), np.zeros(4)
        kern.train_batches(X, Y, perm, starts, 64, meta, np.zeros(2), p, g, 0, 1, st, hyper,
                           np.full(4, 1e-3), 0, 2, work, bl, bc)
        outs.append(p)
    for p in outs[1:]:
        np.testing.assert_array_equal(p, outs[0])


@pytest.mark.parametrize("act", ACTS)
def test_nan_propagates_through_activations(kern, act):
    """A NaN pre-activation stays NaN (so the non-finite guard sees it), as in the reference."""
    Z = np.array([[np.nan, 1.0, -1.0]], np.float64)
    A, A_ref = np.empty_like(Z), np.empty_like(Z)
    kern.activation_forward(Z, act, 0.1, A)
    ref.activation_forward(Z, act, 0.1, A_ref)
    np.testing.assert_array_equal(np.isnan(A), np.isnan(A_ref))
    assert np.isnan(A[0, 0])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flush-to-zero is set on x86 only")
@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_updates_flush_denormals_and_restore_the_fpu_mode(backend):
    """Denormal moments (which made long Adam runs 2x slower) are flushed to zero inside the
    compiled driver, and the caller's floating-point mode is restored afterwards."""
    kern = get_backend(backend)
    tiny = np.finfo(np.float32).tiny
    meta = np.array([[2, 2, 0, 0, 4]], np.int64)
    params = np.zeros(6, np.float32)
    state = np.full((2, 6), tiny / 4, np.float32)  # denormal first and second moments
    X = np.zeros((4, 2), np.float32)
    Y = np.zeros((4, 2), np.float32)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-3, 0.9, 0.999, 1e-8]
    work = np.zeros((1, layout.shard_stride(meta, 4, 2, 6, 1)), np.float32)
    kern.train_batches(X, Y, np.arange(4, dtype=np.int64), np.zeros(1, np.int64), 4, meta, np.zeros(1),
                       params, np.zeros(6, np.float32), LOSS_MSE, OPT_ADAM, state, hyper, np.full(1, 1e-3), 0,
                       1, work, np.zeros(1), np.zeros(1))
    assert (state == 0).all(), "denormal moments should have been flushed to zero"
    # the caller's mode is back: numpy on this thread still produces denormals
    assert np.float32(tiny) / np.float32(4) != 0
