"""The fused plan path: every built-in layer and loss runs compiled and equals the per-layer oracle."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine
from fastnn.kernels import available_backends, codes, get_backend
from fastnn.kernels import dropout_ref
from fused_check import check_fused_grad_steps  # tests/fused_check.py (tests/ is on sys.path: its conftest.py)

COMPILED = available_backends()  # the reference backend's plan driver is the numpy oracle of the schedule
RNG = np.random.default_rng(0)
X20 = RNG.standard_normal((150, 20))
LABELS = RNG.integers(0, 3, 150)
VALUES = RNG.standard_normal((150, 3))

NETS = {
    "dense": lambda: [fnn.Dense(16, "relu"), fnn.Dense(3)],
    "dropout": lambda: [fnn.Dense(16, "relu"), fnn.Dropout(0.3), fnn.Dense(3)],
    "batchnorm": lambda: [fnn.Dense(16, "relu"), fnn.BatchNorm(momentum=0.8), fnn.Dense(3)],
    "layernorm": lambda: [fnn.Dense(16, "tanh"), fnn.LayerNorm(), fnn.Dense(3)],
    "penalties": lambda: [fnn.Dense(16, "relu", l1=1e-3, l2=1e-2), fnn.Dense(3, l2=1e-3)],
    "bn_first_dropout": lambda: [fnn.BatchNorm(), fnn.Dropout(0.1), fnn.Dense(16, "gelu"), fnn.BatchNorm(),
                                 fnn.Dropout(0.5), fnn.Dense(3)],
}
LOSSES = {
    "cross_entropy": (lambda: "cross_entropy", LABELS),
    "mse": (lambda: "mse", VALUES),
    "bce": (lambda: "binary_cross_entropy", (VALUES > 0).astype(float)),
    "mae": (lambda: "mae", VALUES),
    "huber": (lambda: fnn.Huber(0.7), VALUES),
    "focal": (lambda: fnn.FocalLoss(2.0, alpha=[1.0, 2.0, 0.5]), LABELS),
    "label_smoothing": (lambda: fnn.LabelSmoothingCrossEntropy(0.1), LABELS),
    "weighted_ce": (lambda: fnn.WeightedCrossEntropy(class_weight=[1.0, 3.0, 0.5]), LABELS),
}
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}


def _train(net_name, loss_name, backend, dtype, parallel="auto", n_threads=1, epochs=2, batch_size=32,
           path="auto"):
    loss, y = LOSSES[loss_name]
    net = fnn.Network(NETS[net_name](), input_shape=(20,), seed=3, dtype=dtype, backend=backend)
    tr = fnn.Trainer(net, loss=loss(), optimizer=fnn.Adam(3e-3), batch_size=batch_size, seed=5, verbose=0,
                     parallel=parallel, n_threads=n_threads, clip_norm=5.0, path=path)
    hist = tr.fit(X20, y, epochs=epochs)
    return net, tr, hist


CASES = [(n, "cross_entropy") for n in NETS] + [("batchnorm", loss) for loss in LOSSES if loss != "cross_entropy"] \
    + [("dropout", "mae"), ("penalties", "huber")]


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net_name,loss_name", CASES)
@pytest.mark.parametrize("plan", ["serial", "shards"])
def test_fused_path_equals_the_per_layer_oracle(backend, dtype, net_name, loss_name, plan):
    parallel, threads = ("auto", 1) if plan == "serial" else ("shards", 2)
    net, tr, hist = _train(net_name, loss_name, backend, dtype, parallel, threads)
    assert tr.last_plan["path"] == "fused", tr.last_plan
    assert tr.last_plan["n_shards"] == threads
    ref, ref_tr, ref_hist = _train(net_name, loss_name, "reference", dtype, path="per-layer")
    assert ref_tr.last_plan["path"] == "per-layer"
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(net.buffers, ref.buffers, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])
    if "accuracy" in ref_hist:
        np.testing.assert_allclose(hist["accuracy"], ref_hist["accuracy"], atol=1.5 / len(X20))


@pytest.mark.parametrize("backend", COMPILED)
def test_results_do_not_depend_on_the_shard_count(backend):
    """Counter-based dropout and shard-combined BatchNorm statistics: 1, 2 and 3 shards agree."""
    runs = [_train("bn_first_dropout", "cross_entropy", backend, "float64", p, t)[0]
            for p, t in (("auto", 1), ("shards", 2), ("shards", 3))]
    for other in runs[1:]:
        np.testing.assert_allclose(other.params, runs[0].params, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(other.buffers, runs[0].buffers, rtol=1e-10, atol=1e-13)


def test_partial_last_batch_and_idle_shards():
    """A last batch of 1 row with 2 shards leaves one shard idle: same weights as serial."""
    backend = COMPILED[0]
    a = _train("batchnorm", "mse", backend, "float64", "shards", 2, batch_size=149)[0]
    b = _train("batchnorm", "mse", "reference", "float64", batch_size=149, path="per-layer")[0]
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.buffers, b.buffers, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_masks_are_bit_identical_to_the_reference(rate):
    from fastnn.kernels.numba import plan as plan_numba

    X = RNG.standard_normal((37, 11)).astype(np.float32)
    outs = []
    for fn in (dropout_ref.dropout_forward, plan_numba.dropout_forward):
        mask, out = np.empty_like(X), np.empty_like(X)
        fn(X, 123456789, 42, 5, rate, mask, out)
        outs.append((mask, out))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    kept = (outs[0][0] != 0).mean()
    assert abs(kept - (1 - rate)) < 0.12


def test_dropout_masks_depend_on_step_row_and_key():
    X = np.ones((64, 64))
    masks = {}
    for args in ((1, 7, 0), (1, 8, 0), (2, 7, 0), (1, 7, 1)):
        mask, out = np.empty_like(X), np.empty_like(X)
        dropout_ref.dropout_forward(X, *args, 0.5, mask, out)
        masks[args] = mask
    keys = list(masks)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not np.array_equal(masks[keys[i]], masks[keys[j]])
    # row r of the batch starting at row0=1 is row r+1 of the batch starting at 0
    np.testing.assert_array_equal(masks[(1, 7, 1)][:-1], masks[(1, 7, 0)][1:])
    assert abs((masks[(1, 7, 0)] > 0).mean() - 0.5) < 0.03


def test_schedule_has_one_section_without_sync_ops_and_a_cut_per_batchnorm_sync():
    for name, n_sections in (("dense", 1), ("dropout", 1), ("layernorm", 1), ("batchnorm", 3),
                             ("bn_first_dropout", 4)):
        net = fnn.Network(NETS[name](), input_shape=(20,), seed=0)
        plan = engine.build_plan(net, fnn.losses.get("cross_entropy"), 32, 2, 1)
        assert plan.path == "fused"
        # a BatchNorm whose input gradient is not needed (the first layer) syncs only in forward
        assert len(plan.sections) == n_sections, (name, plan.sections)
        assert "fused plan" in plan.describe()


def test_user_defined_layer_takes_the_per_layer_path_and_says_why():
    class Scale(fnn.Layer):
        def forward(self, X, training=False, backend=None):
            return 2 * X

        def backward(self, dA, backend=None, need_dX=True):
            return 2 * dA

        def get_config(self):
            return {}

    net = fnn.Network([fnn.Dense(20, 8), Scale(), fnn.Dense(8, 3)], seed=0)
    assert (net.layers[1].n_inputs, net.layers[1].n_outputs) == (8, 8)  # shape-free: built on its input
    tr = fnn.Trainer(net, batch_size=16, verbose=0)
    tr.fit(X20, LABELS, epochs=1)
    assert tr.last_plan["path"] == "per-layer"
    assert "layer 1 (Scale)" in tr.last_plan["reason"]
    with pytest.raises(ValueError, match=r"fused path is not possible: layer 1 \(Scale\)"):
        fnn.Trainer(net, batch_size=16, verbose=0, path="fused").fit(X20, LABELS)
    with pytest.raises(ValueError, match="path must be"):
        fnn.Trainer(net, path="fast")


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_shards", [1, 2])
def test_grad_steps_then_apply_update_equals_train_steps(backend, n_shards):
    def make():
        net = fnn.Network(NETS["bn_first_dropout"](), input_shape=(20,), seed=1, dtype="float64", backend=backend)
        opt = fnn.Adam(1e-2)
        opt.build(net.n_params, net.dtype)
        loss = fnn.losses.get("cross_entropy")
        plan = engine.build_plan(net, loss, 30, n_shards, 1).bind(net, opt, opt.hyper_vector(1.0, 0.0))
        return net, opt, plan, loss.prepare_targets(LABELS, 3, net.dtype)

    driver = get_backend(backend)
    X = np.ascontiguousarray(X20)
    perm = np.random.default_rng(0).permutation(150).astype(np.int64)
    starts = np.arange(0, 150, 30, dtype=np.int64)
    net_a, opt_a, plan_a, Y = make()
    loss_a, corr_a = np.zeros(5), np.zeros(5)
    driver.train_steps(plan_a, X, Y, perm, starts, np.full(5, 1e-2), 0, loss_a, corr_a)
    net_b, opt_b, plan_b, _ = make()
    loss_b, corr_b = np.zeros(1), np.zeros(1)
    for j, start in enumerate(starts):
        driver.grad_steps(plan_b, X, Y, perm, starts[j:j + 1], j, loss_b, corr_b)
        driver.apply_update(plan_b, 1e-2, j + 1)
        assert loss_b[0] == pytest.approx(loss_a[j], rel=1e-12)
    np.testing.assert_allclose(net_b.params, net_a.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net_b.buffers, net_a.buffers, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", COMPILED)
def test_fused_gradients_pass_a_central_difference_check(backend):
    """float64: the fused driver's gradient (grad_steps) of every layer type, penalties included."""
    layers = [fnn.Dense(20, 6, "tanh", l1=1e-3, l2=1e-2), fnn.BatchNorm(), fnn.Dropout(0.3),
              fnn.Dense(6, 5, "elu"), fnn.LayerNorm(), fnn.Dense(5, 3)]
    net = fnn.Network(layers, seed=2, dtype="float64", backend=backend)
    check_fused_grad_steps(net, X20[:9], LABELS, 3, step=4)


def test_unknown_codes_in_a_plan_raise():
    backend = COMPILED[0]
    net = fnn.Network(NETS["dense"](), input_shape=(20,), seed=0, dtype="float64", backend=backend)
    opt = fnn.Adam()
    opt.build(net.n_params, net.dtype)
    loss = fnn.losses.get("cross_entropy")
    Y = loss.prepare_targets(LABELS, 3, net.dtype)
    driver = get_backend(backend)
    args = (np.ascontiguousarray(X20), Y, np.arange(150, dtype=np.int64), np.zeros(1, np.int64))
    plan = engine.build_plan(net, loss, 32, 1, 1).bind(net, opt, opt.hyper_vector())
    plan.ops[1, codes.P_OP] = 99
    with pytest.raises(ValueError, match="op code"):
        driver.train_steps(plan, *args, np.ones(1), 0, np.zeros(1), np.zeros(1))
    plan = engine.build_plan(net, loss, 32, 1, 1).bind(net, opt, opt.hyper_vector())
    plan.loss_code = 77
    with pytest.raises(ValueError, match="loss code"):
        driver.train_steps(plan, *args, np.ones(1), 0, np.zeros(1), np.zeros(1))
