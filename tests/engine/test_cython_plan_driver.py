"""The Cython plan driver (csrc/plan.pxi) against the Numba driver and the per-layer oracle."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import losses as _losses
from fastnn.engine import build_plan
from fastnn.kernels import codes, dropout_ref

plan_cython = pytest.importorskip("fastnn.kernels.cython.plan")
from fastnn._ext import _kernels as K  # noqa: E402

N, BATCH = 100, 32  # 4 steps per epoch, the last one short (4 rows)

NETS = {
    "dense": lambda: [fnn.Dense(32, "relu"), fnn.Dense(16, "tanh"), fnn.Dense(3)],
    "dropout": lambda: [fnn.Dense(32, "relu"), fnn.Dropout(0.3), fnn.Dense(3)],
    "batchnorm": lambda: [fnn.Dense(32, "relu"), fnn.BatchNorm(), fnn.Dense(3)],
    "layernorm": lambda: [fnn.Dense(32, "relu"), fnn.LayerNorm(), fnn.Dense(3)],
    "penalty": lambda: [fnn.Dense(32, "relu", l1=1e-3, l2=1e-2), fnn.Dense(3, l2=1e-3)],
    "bn_dropout": lambda: [fnn.Dense(32, "relu"), fnn.BatchNorm(), fnn.Dropout(0.25), fnn.Dense(16, "elu"),
                           fnn.BatchNorm(), fnn.Dense(3)],
}

LOSSES = {
    "cross_entropy": lambda: "cross_entropy",
    "mse": lambda: "mse",
    "bce": lambda: "bce",
    "mae": lambda: fnn.MeanAbsoluteError(),
    "huber": lambda: fnn.Huber(delta=0.5),
    "focal": lambda: fnn.FocalLoss(gamma=2.0, alpha=[0.5, 1.0, 2.0]),
}

# Every layer and every loss at least once (not the full product).
CASES = [("dense", "cross_entropy"), ("dense", "mse"), ("dropout", "mse"), ("dropout", "cross_entropy"),
         ("batchnorm", "bce"), ("batchnorm", "cross_entropy"), ("layernorm", "mae"), ("layernorm", "focal"),
         ("penalty", "huber"), ("penalty", "cross_entropy"), ("bn_dropout", "focal"), ("bn_dropout", "huber")]

PARALLEL = [("auto", 1), ("shards", 2), ("shards", 3)]  # 3 shards: the last batch leaves shards idle

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _data(loss_name):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, 20))
    if loss_name in ("cross_entropy", "focal"):
        y = rng.integers(0, 3, N)
    elif loss_name == "bce":
        y = (rng.random((N, 3)) < 0.5).astype(np.float64)
    else:
        y = rng.standard_normal((N, 3))
    return X, y


def _optimizer(loss_name):
    # MAE's bias gradients are sums of +-scale/k that nearly cancel; their float32 value depends on the
    # summation order (shards vs whole batch) at the 1e-9 level, and Adam normalises that noise into a
    # full-size step. SGD keeps the oracle comparison meaningful there (the drivers still agree with Adam).
    return fnn.SGD(lr=0.05, momentum=0.9) if loss_name == "mae" else "adam"


def _train(backend, net_name, loss_name, dtype, parallel, n_threads, epochs=2, path="auto"):
    net = fnn.Network(NETS[net_name](), input_shape=(20,), seed=0, backend=backend, dtype=dtype)
    X, y = _data(loss_name)
    tr = fnn.Trainer(net, loss=LOSSES[loss_name](), optimizer=_optimizer(loss_name), batch_size=BATCH, seed=3,
                     backend=backend, n_threads=n_threads, parallel=parallel, verbose=0, path=path)
    hist = tr.fit(X, y, epochs=epochs)
    return net, tr, hist


@pytest.mark.parametrize("parallel,n_threads", PARALLEL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("net_name,loss_name", CASES)
def test_cython_driver_matches_numba_and_reference(net_name, loss_name, dtype, parallel, n_threads):
    cy, tr, h_cy = _train("cython", net_name, loss_name, dtype, parallel, n_threads)
    assert tr.last_plan["path"] == "fused", tr.last_plan
    assert tr.last_plan["n_shards"] == (1 if parallel == "auto" else n_threads)
    nb, tr_nb, h_nb = _train("numba", net_name, loss_name, dtype, parallel, n_threads)
    assert tr_nb.last_plan["path"] == "fused"
    ref, tr_ref, h_ref = _train("reference", net_name, loss_name, dtype, parallel, n_threads, path="per-layer")
    assert tr_ref.last_plan["path"] == "per-layer"
    tol = TOL[dtype]
    for other in (nb, ref):
        np.testing.assert_allclose(cy.params, other.params, **tol)
        np.testing.assert_allclose(cy.buffers, other.buffers, **tol)
    np.testing.assert_allclose(h_cy.history["loss"], h_nb.history["loss"], rtol=1e-5 if dtype == np.float32 else 1e-10)


def _manual_plan(dtype, n_shards, net_layers=None, loss="cross_entropy", batch=BATCH):
    layers = net_layers or [fnn.Dense(32, "relu", l2=1e-3), fnn.BatchNorm(), fnn.Dropout(0.3), fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(20,), seed=0, backend="cython", dtype=dtype)
    lo = _losses.get(loss)
    X, y = _data("cross_entropy")
    Xc = np.ascontiguousarray(X, dtype)
    Y = lo.prepare_targets(y, net.n_outputs, dtype)
    plan = build_plan(net, lo, batch, n_shards, Y.shape[1])
    opt = fnn.Adam(lr=1e-2)
    opt.build(net.n_params, net.dtype)
    plan.params, plan.grads, plan.buffers = net.params, net.grads, net.buffers
    plan.opt_code, plan.state, plan.hyper = opt.code, opt.state, opt.hyper_vector(0.0, 0.0)
    return net, plan, Xc, Y


@pytest.mark.parametrize("n_shards", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_grad_steps_plus_apply_update_equals_train_steps(dtype, n_shards):
    perm = np.random.default_rng(0).permutation(N)
    starts = np.arange(0, N, BATCH, dtype=np.int64)
    lrs = np.full(len(starts), 1e-2)
    net_a, plan_a, X, Y = _manual_plan(dtype, n_shards)
    assert plan_a.n_shards == n_shards
    bl_a, bc_a = np.zeros(len(starts)), np.zeros(len(starts))
    plan_cython.train_steps(plan_a, X, Y, perm, starts, lrs, 0, bl_a, bc_a)
    net_b, plan_b, _, _ = _manual_plan(dtype, n_shards)
    bl_b, bc_b = np.zeros(len(starts)), np.zeros(len(starts))
    for j in range(len(starts)):
        plan_cython.grad_steps(plan_b, X, Y, perm, starts[j:j + 1], j, bl_b[j:j + 1], bc_b[j:j + 1])
        plan_cython.apply_update(plan_b, lrs[j], j + 1)
    np.testing.assert_array_equal(net_a.params, net_b.params)
    np.testing.assert_array_equal(net_a.buffers, net_b.buffers)
    np.testing.assert_array_equal(bl_a, bl_b)
    np.testing.assert_array_equal(bc_a, bc_b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_grad_steps_sums_the_batches(dtype):
    """Several batches in one grad_steps call: grads is the sum of their gradients, 1 or 2 shards alike."""
    perm = np.arange(N)
    starts = np.arange(0, N, BATCH, dtype=np.int64)
    got = []
    for n_shards in (1, 2):
        net, plan, X, Y = _manual_plan(dtype, n_shards, net_layers=[fnn.Dense(32, "relu"), fnn.Dense(3)])
        before = net.params.copy()
        plan_cython.grad_steps(plan, X, Y, perm, starts, 0, np.zeros(len(starts)), np.zeros(len(starts)))
        np.testing.assert_array_equal(net.params, before)  # no update
        got.append(net.grads.copy())
        single = np.zeros_like(net.grads)
        for j in range(len(starts)):
            plan_cython.grad_steps(plan, X, Y, perm, starts[j:j + 1], j, np.zeros(1), np.zeros(1))
            single += net.grads
        np.testing.assert_allclose(got[-1], single, **TOL[dtype])
    np.testing.assert_allclose(got[0], got[1], **TOL[dtype])


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dropout_masks_are_the_reference_bits(dtype, n_threads):
    net = fnn.Network([fnn.Dropout(0.4), fnn.Dense(3)], input_shape=(20,), seed=0, backend="cython", dtype=dtype)
    X, y = _data("cross_entropy")
    m = 40
    tr = fnn.Trainer(net, loss="cross_entropy", batch_size=m, backend="cython", n_threads=n_threads,
                     parallel="shards", verbose=0)
    tr.fit(X[:m], y[:m], epochs=1, shuffle=False)  # one step on rows 0..m-1 in order
    plan = tr.plan
    assert tr.last_plan["path"] == "fused" and plan.n_shards == n_threads
    k = int(plan.ops[0, codes.P_N_IN])
    z = int(plan.ops[0, codes.P_Z])
    per = -(-m // plan.n_shards)
    Xd = X[:m].astype(dtype)
    for s in range(plan.n_shards):
        rows = slice(s * per, min(m, (s + 1) * per))
        n_s = rows.stop - rows.start
        want_mask, want_out = np.empty((n_s, k), dtype), np.empty((n_s, k), dtype)
        dropout_ref.dropout_forward(Xd[rows], int(plan.ops[0, codes.P_SEED]), 1, rows.start, 0.4,
                                    want_mask, want_out)
        got = plan.work[s, z:z + n_s * k].reshape(n_s, k)
        assert np.array_equal(got, want_mask)
        assert (got == 0).any() and (got != 0).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape,row0", [((7, 9), 5), ((64, 33), 0), ((3, 1), 1 << 40)])
def test_dropout_mask_kernel_entry_is_bit_identical(dtype, shape, row0):
    X = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    for rate in (0.0, 0.1, 0.5, 0.9):
        a = [np.empty_like(X) for _ in range(4)]
        dropout_ref.dropout_forward(X, 0x7ABCDEF012345678, 1234567, row0, rate, a[0], a[1])
        K.plan_dropout_forward(X, 0x7ABCDEF012345678, 1234567, row0, rate, a[2], a[3])
        assert np.array_equal(a[0], a[2]) and np.array_equal(a[1], a[3])


def _call(plan, X, Y):
    starts = np.arange(0, N, BATCH, dtype=np.int64)
    plan_cython.train_steps(plan, X, Y, np.arange(N), starts, np.full(len(starts), 1e-2), 0,
                            np.zeros(len(starts)), np.zeros(len(starts)))


@pytest.mark.parametrize("n_shards", [1, 2])
def test_forged_codes_raise_before_anything_runs(n_shards):
    net, plan, X, Y = _manual_plan(np.float64, n_shards)
    before = net.params.copy()
    plan.ops[1, codes.P_OP] = 99
    with pytest.raises(ValueError, match="unknown op code"):
        _call(plan, X, Y)
    plan.ops[1, codes.P_OP] = codes.OP_BATCHNORM
    good = plan.loss_code
    plan.loss_code = 42
    with pytest.raises(ValueError, match="unknown loss code"):
        _call(plan, X, Y)
    plan.loss_code = good
    plan.items[0, 0] = 17
    with pytest.raises(ValueError, match="unknown item kind"):
        _call(plan, X, Y)
    plan.items[0, 0] = codes.IT_GATHER
    plan.ops[0, codes.P_PARAM0] = net.n_params  # W past the end of params
    with pytest.raises(ValueError, match="parameter offset"):
        _call(plan, X, Y)
    np.testing.assert_array_equal(net.params, before)


def test_bad_buffers_raise_clear_errors():
    net, plan, X, Y = _manual_plan(np.float64, 2)
    before = net.params.copy()
    good_grads = plan.grads
    plan.grads = good_grads.astype(np.float32)
    with pytest.raises(ValueError, match="grads must have dtype float64"):
        _call(plan, X, Y)
    plan.grads = good_grads
    good_work = plan.work
    plan.work = np.zeros((good_work.shape[0], good_work.shape[1] - 1))
    with pytest.raises(ValueError, match="work must have shape"):
        _call(plan, X, Y)
    plan.work = np.zeros((good_work.shape[1], good_work.shape[0])).T  # F-order
    with pytest.raises(ValueError, match="work must be C-contiguous"):
        _call(plan, X, Y)
    plan.work = good_work
    good_stats = plan.stats
    plan.stats = good_stats.astype(np.float32)
    with pytest.raises(ValueError, match="stats must have dtype float64"):
        _call(plan, X, Y)
    plan.stats = good_stats
    ro = net.params.copy()
    ro.flags.writeable = False
    plan.params = ro
    with pytest.raises(ValueError, match="params must be writeable"):
        _call(plan, X, Y)
    plan.params = net.params
    with pytest.raises(ValueError, match="batch_loss"):
        plan_cython.train_steps(plan, X, Y, np.arange(N), np.arange(0, N, BATCH), np.full(4, 1e-2), 0,
                                np.zeros(2), np.zeros(4))
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("parallel,n_threads", [("auto", 1), ("shards", 2)])
@pytest.mark.parametrize("clip", [dict(clip_norm=0.05), dict(clip_value=1e-3)], ids=["norm", "value"])
def test_clipping_matches_numba(clip, parallel, n_threads):
    X, y = _data("cross_entropy")
    nets = []
    for backend in ("cython", "numba"):
        net = fnn.Network(NETS["batchnorm"](), input_shape=(20,), seed=0, backend=backend, dtype=np.float64)
        tr = fnn.Trainer(net, batch_size=BATCH, seed=3, backend=backend, n_threads=n_threads, parallel=parallel,
                         verbose=0, **clip)
        tr.fit(X, y, epochs=2)
        assert tr.last_plan["path"] == "fused"
        nets.append(net)
    np.testing.assert_allclose(nets[0].params, nets[1].params, **TOL[np.float64])
