"""Conv-BatchNorm-ReLU nets on the fused plan path (issue 11): bias-free Conv2D rows, BatchNorm rows per
channel of feature maps (synced across row shards), Activation rows, Dropout on feature maps; every plan
driver against the per-layer oracle, a float64 numeric gradient and PyTorch."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine
from fastnn.kernels import available_backends, codes, get_backend
from fused_check import check_fused_grad_steps  # tests/fused_check.py (tests/ is on sys.path: its conftest.py)

BACKENDS = available_backends()  # the reference plan driver included: it is the numpy oracle of the schedule
RNG = np.random.default_rng(0)
IMAGES = RNG.standard_normal((46, 10, 9, 2))
LABELS = RNG.integers(0, 3, 46)
# float64: the fused driver and the per-layer layers sum the statistics in different orders (per shard,
# then Chan's combination), so results agree to rounding, not bit for bit.
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}


def _layers():
    """Conv (no bias) -> BN -> ReLU -> pool twice (a 1x1 conv the second time, tanh), Dropout on the
    feature maps, softmax over channels, a linear Dense head."""
    return [fnn.Conv2D(4, 3, use_bias=False), fnn.BatchNorm(momentum=0.8), fnn.Activation("relu"),
            fnn.MaxPool2D(2), fnn.Conv2D(3, 1, use_bias=False), fnn.BatchNorm(), fnn.Activation("tanh"),
            fnn.Dropout(0.2), fnn.Activation("softmax"), fnn.Flatten(), fnn.Dense(3)]


def _train(backend, dtype, path="auto", n_threads=1, layers=_layers, batch_size=16):
    net = fnn.Network(layers(), input_shape=(10, 9, 2), seed=3, dtype=dtype, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=batch_size, seed=5, verbose=0,
                     n_threads=n_threads, parallel="shards" if n_threads > 1 else "auto", path=path)
    hist = tr.fit(IMAGES.astype(dtype), LABELS, epochs=2)
    return net, tr, hist


@pytest.fixture(scope="module")
def oracle():
    """The per-layer reference path (the layers' own forward/backward), float64 and float32."""
    return {dt: _train("reference", dt, path="per-layer") for dt in ("float64", "float32")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shards", [1, 2])
def test_fused_conv_bn_relu_equals_the_per_layer_oracle(backend, dtype, shards, oracle):
    net, tr, hist = _train(backend, dtype, n_threads=shards)
    assert tr.last_plan["path"] == "fused", tr.last_plan
    assert tr.last_plan["n_shards"] == shards
    text = tr.plan.describe()
    assert "batchnorm" in text and "activation" in text and "conv2d" in text
    ref, ref_tr, ref_hist = oracle[dtype]
    assert ref_tr.last_plan["path"] == "per-layer"
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(net.buffers, ref.buffers, **TOL[dtype])  # running mean / var per channel
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])
    X = IMAGES[:9].astype(dtype)  # inference: the running statistics
    np.testing.assert_allclose(net.predict_proba(X), ref.predict_proba(X), **TOL[dtype])


def test_bias_free_conv_and_channel_batchnorm_rows():
    net, tr, _ = _train(BACKENDS[-1], "float64")
    plan = tr.plan
    convs = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_CONV2D]
    assert all(plan.ops[q, codes.P_PARAM1] == -1 for q in convs)
    bns = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_BATCHNORM]
    assert [plan.ops[q, codes.P_C] for q in bns] == [4, 3]
    assert [plan.ops[q, codes.P_N_OUT] for q in bns] == [8 * 7 * 4, 4 * 3 * 3]
    assert plan.stats.shape[1] == codes.BN_STATS * (4 + 3)  # statistics per channel, not per value
    assert len(plan.sections) == 5  # a forward and a backward sync per BatchNorm, then the update section
    # BatchNorm -> ReLU folds into the BatchNorm row; the other activations stay rows of their own
    assert [plan.ops[q, codes.P_ACT] for q in bns] == [codes.ACT_RELU, codes.ACT_LINEAR]
    acts = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_ACTIVATION]
    assert [plan.ops[q, codes.P_ACT] for q in acts] == [codes.ACT_TANH, codes.ACT_SOFTMAX]
    assert [type(net.layers[plan.layers_of_rows[q]]).__name__ for q in bns] == ["BatchNorm", "BatchNorm"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_do_not_depend_on_the_shard_count(backend):
    """BatchNorm's per-channel statistics combined across shards: 1, 2 and 3 shards agree to summation order."""
    nets = [_train(backend, "float64", n_threads=s)[0] for s in (1, 2, 3)]
    for other in nets[1:]:
        np.testing.assert_allclose(other.params, nets[0].params, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(other.buffers, nets[0].buffers, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batchnorm_statistics_hold_at_a_large_mean(backend, dtype):
    """The plan rows take the statistics in one pass (sums of x - K, K the shard's first row) and
    recompute Xhat in backward: at a mean 1e4 standard deviations away they still equal the per-layer
    oracle's two-pass statistics, on one and on two shards."""
    def layers():
        return [fnn.BatchNorm(momentum=0.5), fnn.Activation("relu"), fnn.Flatten(), fnn.Dense(3)]
    images = (1e4 + IMAGES).astype(dtype)
    tol = TOL["float64"] if dtype == "float64" else dict(rtol=1e-3, atol=1e-4)
    ref = fnn.Network(layers(), input_shape=(10, 9, 2), seed=3, dtype=dtype, backend="reference")
    fnn.Trainer(ref, optimizer=fnn.SGD(0.05), batch_size=16, seed=5, verbose=0, path="per-layer").fit(
        images, LABELS, epochs=1)
    for shards in (1, 2):
        net = fnn.Network(layers(), input_shape=(10, 9, 2), seed=3, dtype=dtype, backend=backend)
        tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05), batch_size=16, seed=5, verbose=0, n_threads=shards,
                         parallel="shards" if shards > 1 else "auto")
        tr.fit(images, LABELS, epochs=1)
        assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == shards
        np.testing.assert_allclose(net.buffers, ref.buffers, rtol=1e-6 if dtype == "float32" else 1e-12)
        np.testing.assert_allclose(net.params, ref.params, **tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_conv_bn_gradients_pass_a_central_difference_check(backend):
    """float64: grad_steps of bias-free convs, BatchNorm on their feature maps with a folded ReLU and with
    an Activation row after it."""
    layers = [fnn.Conv2D(2, 2, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"), fnn.MaxPool2D(2, strides=1),
              fnn.Conv2D(2, 2, use_bias=False), fnn.BatchNorm(), fnn.Activation("softmax"), fnn.Flatten(),
              fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(5, 5, 1), seed=2, dtype="float64", backend=backend)
    net.params[...] += RNG.normal(0, 0.2, net.n_params)  # gamma != 1, beta != 0
    plans = check_fused_grad_steps(net, RNG.standard_normal((6, 25)), LABELS, 3)
    assert all(plan.path == "fused" for plan in plans)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_on_feature_maps_runs_fused(backend):
    def layers():
        return [fnn.Conv2D(4, 3, activation="relu"), fnn.Dropout(0.3), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)]
    net, tr, hist = _train(backend, "float64", n_threads=2, layers=layers)
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == 2, tr.last_plan
    assert "dropout" in tr.plan.describe()
    ref, _, ref_hist = _train("reference", "float64", path="per-layer", layers=layers)
    np.testing.assert_allclose(net.params, ref.params, **TOL["float64"])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL["float64"])


def test_the_example_cnn_with_batchnorm_runs_fused_on_two_shards():
    """The example CNN's shape with Conv2D(use_bias=False) + BatchNorm + ReLU: row shards at 2 threads."""
    layers = [fnn.Conv2D(8, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"),
              fnn.Conv2D(8, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"), fnn.MaxPool2D(2),
              fnn.Dropout(0.25), fnn.Flatten(), fnn.Dense(16, "relu"), fnn.Dropout(0.5), fnn.Dense(10)]
    net = fnn.Network(layers, input_shape=(12, 12, 1), seed=0, dtype="float32")
    X = RNG.random((64, 12, 12, 1)).astype(np.float32)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=32, verbose=0, n_threads=2)
    tr.fit(X, RNG.integers(0, 10, 64), epochs=1)
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == 2, tr.last_plan


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forged_channel_count_is_refused_before_any_step(backend):
    net = fnn.Network(_layers(), input_shape=(10, 9, 2), seed=0, dtype="float64", backend=backend)
    opt = fnn.SGD(0.1)
    opt.build(net.n_params, net.dtype)
    loss = fnn.losses.get("cross_entropy")
    Y = loss.prepare_targets(LABELS, 3, net.dtype)
    args = (np.ascontiguousarray(IMAGES.reshape(46, -1)), Y, np.arange(46, dtype=np.int64), np.zeros(1, np.int64))
    bn = 1  # the first BatchNorm row (its ReLU folded in): 8 x 7 x 4 values, 4 channels
    act = 5  # the tanh Activation row after the second BatchNorm: 4 x 3 x 3 values
    for q, value in ((bn, 5), (bn, 0), (bn, -2), (bn, 8 * 7 * 4), (bn, 8), (act, 5)):
        plan = engine.build_plan(net, loss, 16, 1, 1).bind(net, opt, opt.hyper_vector())
        assert plan.ops[q, codes.P_OP] in (codes.OP_BATCHNORM, codes.OP_ACTIVATION) and plan.ops[q, codes.P_C] > 0
        before, buffers = net.params.copy(), net.buffers.copy()
        plan.ops[q, codes.P_C] = value
        with pytest.raises(ValueError, match="channel|statistics|parameter"):
            get_backend(backend).train_steps(plan, *args, np.ones(1), 0, np.zeros(1), np.zeros(1))
        np.testing.assert_array_equal(net.params, before)
        np.testing.assert_array_equal(net.buffers, buffers)
    plan = engine.build_plan(net, loss, 16, 1, 1).bind(net, opt, opt.hyper_vector())
    plan.ops[bn, codes.P_ACT] = codes.ACT_TANH  # a BatchNorm row folds a ReLU only
    with pytest.raises(ValueError, match="BatchNorm plan row applies no activation or ReLU"):
        get_backend(backend).train_steps(plan, *args, np.ones(1), 0, np.zeros(1), np.zeros(1))


def test_a_fused_step_matches_torch_conv_batchnorm2d_relu():
    """One fused step's loss and gradient against PyTorch's Conv2d(bias=False) + BatchNorm2d + ReLU (same weights)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layers = [fnn.Conv2D(3, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"), fnn.Flatten(), fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(6, 5, 2), seed=1, dtype="float64")
    net.params[...] += RNG.normal(0, 0.2, net.n_params)
    loss = fnn.losses.get("cross_entropy")
    X = np.ascontiguousarray(RNG.standard_normal((8, 60)))
    Y = loss.prepare_targets(LABELS[:8], 3, net.dtype)
    opt = fnn.SGD(0.1)
    opt.build(net.n_params, net.dtype)
    for n_shards in (1, 2):
        plan = engine.build_plan(net, loss, 8, n_shards, 1).bind(net, opt, opt.hyper_vector())
        bl = np.zeros(1)
        get_backend(net.backend).grad_steps(plan, X, Y, np.arange(8, dtype=np.int64), np.zeros(1, np.int64), 0,
                                            bl, np.zeros(1))
        conv, bn, dense = net.layers[0], net.layers[1], net.layers[4]
        w = torch.tensor(conv.W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
        gamma = torch.tensor(bn.gamma.copy(), requires_grad=True)
        beta = torch.tensor(bn.beta.copy(), requires_grad=True)
        W = torch.tensor(dense.params["W"].copy(), requires_grad=True)
        b = torch.tensor(dense.params["b"].copy(), requires_grad=True)
        x = torch.tensor(X.reshape(8, 6, 5, 2).transpose(0, 3, 1, 2))
        h = F.batch_norm(F.conv2d(x, w), None, None, gamma, beta, training=True, eps=bn.eps)
        h = torch.relu(h).permute(0, 2, 3, 1).reshape(8, -1)  # NHWC rows, as fastnn flattens
        out = F.cross_entropy(h @ W + b, torch.tensor(LABELS[:8]))
        out.backward()
        assert bl[0] == pytest.approx(out.item(), rel=1e-12)
        np.testing.assert_allclose(conv.grads["W"], w.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.grads["gamma"], gamma.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.grads["beta"], beta.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dense.grads["W"], W.grad.numpy(), rtol=1e-9, atol=1e-12)
