"""LayerNorm plan rows: no Xhat block, each shard row's mean and inv_std kept in the float64 stats, and the
fused drivers (Cython, Numba, the reference plan) equal to the per-layer path at widths around the Cython
kernels' lane blocks (4 and 8 lanes, the scalar tail), both float types, one and two shards."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import losses as _losses
from fastnn.engine import build_plan
from fastnn.kernels import codes

N, BATCH = 70, 32  # 3 steps, the last one short (6 rows)
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _layers(width):
    return [fnn.Dense(width, "relu"), fnn.LayerNorm(), fnn.Dense(7, "tanh"), fnn.LayerNorm(), fnn.Dense(3)]


def _fit(backend, width, dtype, n_threads, path="auto"):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((N, 12)), rng.integers(0, 3, N)
    net = fnn.Network(_layers(width), input_shape=(12,), seed=0, backend=backend, dtype=dtype)
    tr = fnn.Trainer(net, loss="cross_entropy", optimizer="adam", batch_size=BATCH, seed=2, backend=backend,
                     n_threads=n_threads, parallel="shards" if n_threads > 1 else "auto", verbose=0, path=path)
    hist = tr.fit(X, y, epochs=2)
    return net, tr.last_plan, hist.history["loss"]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("width", [1, 8, 129])
def test_fused_layernorm_rows_match_the_per_layer_path(width, dtype, n_threads):
    oracle, plan, loss = _fit("reference", width, dtype, 1, path="per-layer")
    assert plan["path"] == "per-layer"
    for backend in ("cython", "numba", "reference"):
        net, plan, fused_loss = _fit(backend, width, dtype, n_threads)
        assert plan["path"] == "fused" and plan["n_shards"] == n_threads, (backend, plan)
        np.testing.assert_allclose(net.params, oracle.params, **TOL[dtype], err_msg=backend)
        np.testing.assert_allclose(fused_loss, loss, rtol=TOL[dtype]["rtol"], err_msg=backend)


@pytest.mark.parametrize("backend", ["cython", "numba", "reference"])
def test_layernorm_row_keeps_row_statistics_not_xhat(backend):
    """The row writes no Xhat block (its output is its Z) and leaves each row's mean and inv_std of the
    last step in its stats block, after LN_STATS_K scratch values per feature."""
    net = fnn.Network(_layers(16), input_shape=(12,), seed=0, backend=backend)
    loss = _losses.get("cross_entropy")
    plan = build_plan(net, loss, BATCH, 1, 1)
    rows = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_LAYERNORM]
    assert len(rows) == 2
    for q in rows:
        assert plan.ops[q, codes.P_Z] == plan.ops[q, codes.P_OUT]
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((BATCH, 12)), rng.integers(0, 3, BATCH)
    tr = fnn.Trainer(net, loss="cross_entropy", optimizer="sgd", batch_size=BATCH, seed=0, backend=backend,
                     n_threads=1, verbose=0)
    tr.fit(X, y, epochs=1)
    plan = tr.plan
    assert tr.last_plan["path"] == "fused" and plan.n_shards == 1
    for q in rows:
        k = int(plan.ops[q, codes.P_N_OUT])
        x = plan.work[0, plan.ops[q, codes.P_IN]:plan.ops[q, codes.P_IN] + BATCH * k].reshape(BATCH, k)
        a = int(plan.ops[q, codes.P_STATS]) + codes.LN_STATS_K * k
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(plan.stats[0, a:a + BATCH], x64.mean(axis=1), rtol=1e-6, atol=1e-6)
        inv = 1.0 / np.sqrt(x64.var(axis=1) + plan.fops[q, codes.F_EPS])
        np.testing.assert_allclose(plan.stats[0, a + BATCH:a + 2 * BATCH], inv, rtol=1e-5)


def test_forged_layernorm_stats_offset_is_refused():
    """A LayerNorm row whose stats block runs past the stats buffer: a clear error before any step."""
    net = fnn.Network(_layers(16), input_shape=(12,), seed=0, backend="numba")
    plan = build_plan(net, _losses.get("cross_entropy"), BATCH, 1, 1)
    q = next(q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_LAYERNORM)
    plan.ops[q, codes.P_STATS] = plan.stats.shape[1] - 1
    from fastnn.kernels.plan_api import check_codes
    with pytest.raises(ValueError, match="LayerNorm statistics block"):
        check_codes(plan)
