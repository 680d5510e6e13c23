"""Row shards with the large first layer's weight gradient computed over the whole batch (P_DW_COLS).

The Cython row-shard driver computes that row's dW by columns over every shard's rows straight into
``grads`` and leaves it out of the shard sum (csrc/plan.pxi, ``_plan_dw_columns``); the plan decides
which row (``engine.plan.whole_batch_dw_row``), and ``check_plan`` refuses a forged flag.
"""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import losses as _losses
from fastnn.engine import build_plan
from fastnn.engine import plan as plan_mod
from fastnn.kernels import codes

plan_cython = pytest.importorskip("fastnn.kernels.cython.plan")

N, BATCH, N_IN = 100, 32, 20  # 4 steps per epoch, the last one short (4 rows)
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


def _layers():
    # 20 x 96 of 2,275 parameters (84%), 96 columns: the row the rule flags (split 48 / 48 on 2 threads)
    return [fnn.Dense(96, "relu"), fnn.Dense(3)]


def _data():
    rng = np.random.default_rng(5)
    return rng.standard_normal((N, N_IN)), rng.integers(0, 3, N)


def _plan(dtype, n_shards, layers=None):
    net = fnn.Network(layers or _layers(), input_shape=(N_IN,), seed=0, backend="cython", dtype=dtype)
    X, y = _data()
    lo = _losses.get("cross_entropy")
    Y = lo.prepare_targets(y, net.n_outputs, dtype)
    opt = fnn.Adam(lr=1e-2)
    opt.build(net.n_params, net.dtype)
    plan = build_plan(net, lo, BATCH, n_shards, Y.shape[1]).bind(net, opt, opt.hyper_vector(0.0, 0.0))
    return net, plan, np.ascontiguousarray(X, dtype), Y


def _steps(plan, X, Y):
    starts = np.arange(0, N, BATCH, dtype=np.int64)
    perm = np.random.default_rng(1).permutation(N)
    loss = np.zeros(len(starts))
    plan_cython.train_steps(plan, X, Y, perm, starts, np.full(len(starts), 1e-2), 0, loss, np.zeros(len(starts)))
    return loss


def _fit(dtype, n_threads, share=None, monkeypatch=None, clip=None, backend="cython", path="auto", optimizer="adam"):
    if share is not None:
        monkeypatch.setattr(plan_mod, "WHOLE_BATCH_DW_SHARE", share)
    net = fnn.Network(_layers(), input_shape=(N_IN,), seed=0, backend=backend, dtype=dtype)
    X, y = _data()
    tr = fnn.Trainer(net, optimizer=optimizer() if callable(optimizer) else optimizer, batch_size=BATCH, seed=3, backend=backend, n_threads=n_threads,
                     parallel="shards" if n_threads > 1 else "auto", verbose=0, path=path, **(clip or {}))
    tr.fit(X, y, epochs=2)
    return net, tr


def test_the_rule_flags_only_the_large_first_dense_row_of_a_sharded_plan():
    assert _plan(np.float32, 2)[1].ops[:, codes.P_DW_COLS].tolist() == [1, 0]
    assert _plan(np.float32, 1)[1].ops[:, codes.P_DW_COLS].tolist() == [0, 0]  # no shards, no shard sum
    penalised = [fnn.Dense(96, "relu", l2=1e-3), fnn.Dense(3)]
    assert _plan(np.float32, 2, penalised)[1].ops[:, codes.P_DW_COLS].tolist() == [0, 0]
    narrow = [fnn.Dense(32, "relu"), fnn.Dense(3)]  # under WHOLE_BATCH_DW_MIN_COLS columns
    assert _plan(np.float32, 2, narrow)[1].ops[:, codes.P_DW_COLS].tolist() == [0, 0]
    small_share = [fnn.Dense(64, "relu"), fnn.Dense(256, "relu"), fnn.Dense(3)]  # 1,344 of 18,755
    assert _plan(np.float32, 2, small_share)[1].ops[:, codes.P_DW_COLS].tolist() == [0, 0, 0]
    net = fnn.Network(_layers(), input_shape=(N_IN,), seed=0, backend="cython")
    for batch, flag in ((2 * plan_mod.WHOLE_BATCH_DW_MAX_ROWS, 1), (2 * plan_mod.WHOLE_BATCH_DW_MAX_ROWS + 2, 0)):
        assert build_plan(net, _losses.get("cross_entropy"), batch, 2, 1).ops[0, codes.P_DW_COLS] == flag


@pytest.mark.parametrize("n_shards", [2, 3])  # 3: the short last batch (4 rows) leaves a shard idle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_the_path_is_taken_and_matches_the_shard_sum_and_the_oracle(dtype, n_shards, monkeypatch):
    net, plan, X, Y = _plan(dtype, n_shards)
    assert plan.ops[0, codes.P_DW_COLS] == 1
    _steps(plan, X, Y)
    g, w = int(plan.wofs[codes.W_GRAD]), int(plan.ops[0, codes.P_PARAM0])
    n_w = N_IN * 96
    # taken: no shard wrote its copy of W's gradient (the work buffer starts at zero), but the biases'
    assert not plan.work[:, g + w:g + w + n_w].any()
    assert plan.work[0, g + n_w:g + net.n_params].any()
    flagged, _ = _fit(dtype, n_shards)
    summed, tr = _fit(dtype, n_shards, share=2.0, monkeypatch=monkeypatch)  # the flag off: the shard sum
    assert not tr.plan.ops[:, codes.P_DW_COLS].any()
    oracle, tr_ref = _fit(dtype, 1, backend="reference", path="per-layer")
    assert tr_ref.last_plan["path"] == "per-layer"
    np.testing.assert_allclose(flagged.params, summed.params, **TOL[dtype])
    np.testing.assert_allclose(flagged.params, oracle.params, **TOL[dtype])


@pytest.mark.parametrize("optimizer", [lambda: fnn.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                       lambda: fnn.SGD(lr=0.05), lambda: fnn.RMSprop(lr=1e-3),
                                       lambda: fnn.Adagrad(lr=1e-2), lambda: fnn.AdamW(lr=1e-2, weight_decay=0.1)],
                         ids=["nesterov", "sgd", "rmsprop", "adagrad", "adamw"])
def test_every_optimizer_updates_the_column_blocks_as_the_chunked_pass(optimizer, monkeypatch):
    flagged, tr = _fit(np.float64, 2, optimizer=optimizer)
    assert tr.plan.ops[0, codes.P_DW_COLS] == 1
    summed, _ = _fit(np.float64, 2, share=2.0, monkeypatch=monkeypatch, optimizer=optimizer)
    np.testing.assert_allclose(flagged.params, summed.params, **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_results_are_deterministic(dtype):
    a, _ = _fit(dtype, 2)
    b, _ = _fit(dtype, 2)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("clip", [dict(clip_norm=0.05), dict(clip_value=1e-3)], ids=["norm", "value"])
def test_clipping_sees_the_whole_batch_gradient(clip):
    got, tr = _fit(np.float64, 2, clip=clip)
    assert tr.plan.ops[0, codes.P_DW_COLS] == 1
    want, _ = _fit(np.float64, 2, clip=clip, backend="numba")
    np.testing.assert_allclose(got.params, want.params, **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_grad_steps_sum_the_batches_into_the_flagged_rows_gradient(dtype):
    net, plan, X, Y = _plan(dtype, 2)
    assert plan.ops[0, codes.P_DW_COLS] == 1
    starts = np.arange(0, N, BATCH, dtype=np.int64)
    perm = np.arange(N)
    plan_cython.grad_steps(plan, X, Y, perm, starts, 0, np.zeros(len(starts)), np.zeros(len(starts)))
    total = net.grads.copy()
    net1, plan1, _, _ = _plan(dtype, 1)
    single = np.zeros_like(total)
    for j in range(len(starts)):
        plan_cython.grad_steps(plan1, X, Y, perm, starts[j:j + 1], j, np.zeros(1), np.zeros(1))
        single += net1.grads
    np.testing.assert_allclose(total, single, **TOL[dtype])


@pytest.mark.parametrize("forge", ["value", "second_row", "needs_dx", "penalty", "late_item", "no_backward"])
def test_forged_flags_are_refused_before_anything_runs(forge):
    net, plan, X, Y = _plan(np.float64, 2, [fnn.Dense(96, "relu"), fnn.Dense(16, "relu"), fnn.Dense(3)])
    assert plan.ops[:, codes.P_DW_COLS].tolist() == [1, 0, 0]
    _steps(plan, X, Y)  # the genuine plan runs
    before = net.params.copy()
    if forge == "value":
        plan.ops[0, codes.P_DW_COLS] = 2
    elif forge == "second_row":
        plan.ops[1, codes.P_DW_COLS] = 1
    elif forge == "needs_dx":
        plan.ops[0, codes.P_DW_COLS] = 0
        plan.ops[1, codes.P_DW_COLS] = 1
    elif forge == "penalty":
        plan.fops[0, codes.F_L2] = 1e-3
    elif forge == "late_item":  # a backward item after the flagged row's: its dZ block would be overwritten
        plan.items = np.ascontiguousarray(np.vstack([plan.items, plan.items[-2:-1]]))
        plan.sections[-1, 1] += 1
    else:  # the flagged row's backward never runs: its gradient would be stale
        plan.items[-1] = plan.items[-2]
    with pytest.raises(ValueError, match="whole-batch dW flag"):
        _steps(plan, X, Y)
    np.testing.assert_array_equal(net.params, before)


def test_the_profiler_replays_the_reduction_without_the_flagged_w():
    from fastnn.profiler import _shard_summed

    _, tr = _fit(np.float32, 2)
    n_w = N_IN * 96
    assert _shard_summed(tr, 2) == [slice(0, 0), slice(n_w, tr.network.n_params)]
    assert _shard_summed(tr, 1) == [slice(0, tr.network.n_params)]
