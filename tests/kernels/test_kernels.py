"""Compiled-backend properties the conformance test (test_conformance.py, through check_op) does not cover:
both compiled backends present, deterministic sharded drivers, NaN propagation, flush-to-zero."""
import platform

import numpy as np
import pytest

from fastnn.kernels import available_backends, get_backend
from fastnn.kernels import reference as ref
from fastnn.kernels.codes import H_BETA1, H_BETA2, H_EPS, H_LR, N_HYPER, OPT_ADAM

from .helpers import dense_plan

COMPILED = [b for b in ("numba", "cython") if b in available_backends()]
ACTS = list(range(9))


@pytest.fixture(params=COMPILED)
def kern(request):
    return get_backend(request.param)


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def test_compiled_backends_are_available():
    # CI installs with the Cython extension and numba: both must be there, not silently skipped.
    assert "numba" in available_backends()
    assert "cython" in available_backends()


def test_sharded_driver_is_deterministic(kern):
    """Parallel shards reduce in a fixed order: repeated runs are bit-identical."""
    rng = np.random.default_rng(0)
    n_params = 20 * 32 + 32 + 32 * 5 + 5
    X = _rand(rng, (256, 20), np.float32)
    Y = rng.integers(0, 5, (256, 1)).astype(np.float32)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-3, 0.9, 0.999, 1e-8]
    starts = np.arange(0, 256, 64, dtype=np.int64)
    perm = np.arange(256, dtype=np.int64)
    outs = []
    for _ in range(20):
        plan = dense_plan((20, 32, 5), (1, 0), 64, 2, np.float32, opt=1, hyper=hyper,
                          params=_rand(np.random.default_rng(1), n_params, np.float32))
        kern.train_steps(plan, X, Y, perm, starts, np.full(4, 1e-3), 0, np.zeros(4), np.zeros(4))
        outs.append(plan.params.copy())
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
    X = np.zeros((4, 2), np.float32)
    Y = np.zeros((4, 2), np.float32)
    hyper = np.zeros(N_HYPER)
    hyper[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-3, 0.9, 0.999, 1e-8]
    for n_shards in (1, 2):
        plan = dense_plan((2, 2), (0,), 4, n_shards, np.float32, loss="mse", ny=2, opt=OPT_ADAM, hyper=hyper,
                          params=np.zeros(6, np.float32))
        plan.state[...] = tiny / 4  # denormal first and second moments
        kern.train_steps(plan, X, Y, np.arange(4, dtype=np.int64), np.zeros(1, np.int64), np.full(1, 1e-3), 0,
                         np.zeros(1), np.zeros(1))
        assert (plan.state == 0).all(), f"denormal moments should have been flushed to zero ({n_shards} shards)"
    # the caller's mode is back: numpy on this thread still produces denormals
    assert np.float32(tiny) / np.float32(4) != 0


def test_show_config_prints_every_declared_fallback():
    """A backend serving an op with another backend's kernel says so (never a silent fallback)."""
    import fastnn

    lines = []
    info = fastnn.show_config(print_fn=lines.append)
    for name in available_backends():
        fallbacks = get_backend(name).fallbacks()
        assert info["fallbacks"][name] == fallbacks
        row = next(line for line in lines[0].splitlines() if line.strip().startswith(name))
        for op, src in fallbacks.items():
            assert f"falls back to {src}" in row and op in row, row
