"""GradientFlow: its norms against numpy and central differences, its warnings, and that it changes no training."""
import warnings

import numpy as np
import pytest

import fastnn as fnn
from fastnn.callbacks import GradientFlow, ModelCheckpoint
from fastnn.diagnostics import FastnnWarning
from fastnn.engine.probe import GradientProbe
from fastnn.kernels import available_backends

from naive import numeric_grad  # tests/naive.py

BACKENDS = available_backends()


def blobs(n=96, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def fit_flow(layers, X, y, *, epochs=3, optimizer=None, backend="reference", dtype=None, callbacks=(), **kw):
    net = fnn.Network(layers, seed=0, backend=backend, dtype=dtype)
    flow = GradientFlow(probe_size=kw.pop("probe_size", 64), warn=kw.pop("warn", True))
    trainer = fnn.Trainer(net, optimizer=optimizer or fnn.Adam(1e-2), batch_size=16, verbose=0, seed=0,
                          callbacks=[flow, *callbacks], **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(X, y, epochs=epochs)
    messages = [str(w.message) for w in caught if issubclass(w.category, FastnnWarning)]
    return flow, trainer, messages


def mean_loss(net, X, y):
    """Mean cross-entropy of ``net`` on ``(X, y)`` in float64 numpy (the oracle of the probe's loss)."""
    Z = net.forward(X, logits=True).astype(np.float64)
    Z = Z - Z.max(axis=1, keepdims=True)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("backend", BACKENDS)
def test_norms_equal_numpy_and_central_differences(backend):
    X, y = blobs(40)
    flow, trainer, _ = fit_flow([fnn.Dense(6, 5, "tanh"), fnn.Dense(5, 3)], X, y, epochs=2, dtype="float64",
                                backend=backend, probe_size=1000)  # every row: the training objective's gradient
    assert flow.probe_path == "fused" and trainer.last_plan["path"] == "fused"
    net = trainer.network
    assert flow.names == ["0.W", "0.b", "1.W", "1.b"]
    assert list(flow.sizes) == [30, 5, 15, 3] and list(flow.weights) == [True, False, True, False]
    h = flow.history
    assert h["grad_norm"].shape == (2, 4) and list(h["epoch"]) == [0, 1]
    rows = np.sort(np.random.default_rng(0).choice(len(X), len(X), replace=False))
    Xp, yp = X[rows].astype(np.float64), y[rows]
    num = numeric_grad(lambda: mean_loss(net, Xp, yp), net.params)
    bounds = np.cumsum([0, *flow.sizes])
    expect = [np.linalg.norm(num[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_allclose(h["grad_norm"][-1], expect, rtol=1e-6)
    np.testing.assert_allclose(h["probe_loss"][-1], mean_loss(net, Xp, yp), rtol=1e-10)
    weight = [np.linalg.norm(net.params[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_allclose(h["weight_norm"][-1], weight, rtol=1e-12)
    np.testing.assert_allclose(h["update_ratio"], h["update_norm"] / h["weight_norm"], rtol=1e-12)


def test_update_norm_is_the_epochs_weight_change():
    X, y = blobs(48)
    seen = []

    class Snap(fnn.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.trainer.network.params.copy())

        def on_train_end(self, logs=None):
            seen.append(self.trainer.network.params.copy())

    flow, _, _ = fit_flow([fnn.Dense(6, 8, "relu"), fnn.Dense(8, 3)], X, y, epochs=3, callbacks=[Snap()])
    bounds = np.cumsum([0, *flow.sizes])
    for e in range(3):
        delta = (seen[e + 1] - seen[e]).astype(np.float64)
        expect = [np.linalg.norm(delta[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        np.testing.assert_allclose(flow.history["update_norm"][e], expect, rtol=1e-5)
    assert (flow.history["update_norm"] > 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_probe_matches_the_per_layer_oracle_on_every_backend(backend):
    X, y = blobs(64)
    layers = [fnn.Dense(6, 16, "relu"), fnn.BatchNorm(), fnn.Dropout(0.3), fnn.Dense(16, 8, "gelu"),
              fnn.Dense(8, 3, l2=1e-3)]
    net = fnn.Network(layers, seed=0, backend=backend, dtype="float64")
    opt = fnn.Adam(1e-3)
    opt.build(net.n_params, net.dtype)
    Y = y.reshape(-1, 1).astype(np.float64)
    loss = fnn.losses.get("cross_entropy")
    fused = GradientProbe(net, loss, opt, X.astype(np.float64), Y, backend=backend)
    oracle = GradientProbe(net, loss, opt, X.astype(np.float64), Y, backend="reference", path="per-layer")
    assert fused.path == "fused" and oracle.path == "per-layer"
    before = net.params.copy(), net.grads.copy(), net.buffers.copy()
    g_fast, loss_fast = fused()
    g_ref, loss_ref = oracle()
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-9, atol=1e-12)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-10)
    for a, b in zip(before, (net.params, net.grads, net.buffers)):  # the probe changes no state
        np.testing.assert_array_equal(a, b)


class _UserIdentity(fnn.Layer):
    """A user-defined layer: no plan row, so the network takes the per-layer path."""

    def forward(self, X, training=False, backend=None):
        return X

    def backward(self, dA, backend=None, need_dX=True):
        return dA


@pytest.mark.parametrize("make", [
    lambda: [fnn.Conv2D(2, 3, activation="relu", use_bias=False), fnn.Flatten(), _UserIdentity(), fnn.Dense(3)],
    lambda: [fnn.LSTM(4), fnn.Dense(3)],
], ids=["conv", "lstm"])
def test_per_layer_networks_probe_their_true_gradient(make):
    rng = np.random.default_rng(1)
    shape = (5, 5, 1) if isinstance(make()[0], fnn.Conv2D) else (4, 3)
    X = rng.normal(size=(12, *shape))
    y = rng.integers(0, 3, 12)
    net = fnn.Network(make(), input_shape=shape, seed=0, backend="reference", dtype="float64")
    flow = GradientFlow(probe_size=12, warn=False)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=6, verbose=0, seed=0, callbacks=[flow])
    trainer.fit(X, y, epochs=1)
    assert flow.probe_path == "per-layer"
    num = numeric_grad(lambda: mean_loss(net, X, y), net.params)
    bounds = np.cumsum([0, *flow.sizes])
    expect = [np.linalg.norm(num[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_allclose(flow.history["grad_norm"][-1], expect, rtol=1e-5)


def deep(activation, depth=8, width=32, d=16):
    return [fnn.Dense(d, width, activation)] + [fnn.Dense(width, width, activation) for _ in range(depth - 2)] \
        + [fnn.Dense(width, 3)]


def test_vanishing_warning_fires_for_deep_sigmoid_once_per_fit():
    X, y = blobs(128, d=16)
    flow, trainer, messages = fit_flow(deep("sigmoid"), X, y, epochs=4, optimizer=fnn.SGD(0.05))
    vanishing = [m for m in messages if "vanishing" in m]
    assert len(vanishing) == 1, messages  # once, not once per epoch
    assert "ReLU" in vanishing[0] and "He" in vanishing[0] and "BatchNorm" in vanishing[0]
    assert [f.kind for f in flow.findings] == ["vanishing_gradients"]
    with pytest.warns(FastnnWarning, match="vanishing"):
        trainer.fit(X, y, epochs=2)  # a second fit reports again, once
    assert [f.kind for f in flow.findings] == ["vanishing_gradients"] * 2
    assert flow.history["grad_norm"].shape[0] == 6  # the history continues across fits


def test_no_warning_for_relu_he():
    X, y = blobs(128, d=16)
    flow, _, messages = fit_flow(deep("relu"), X, y, epochs=4, optimizer=fnn.SGD(0.05))
    assert messages == [] and flow.findings == []


def test_exploding_warning_fires_once_for_a_blown_up_setup():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)).astype(np.float32)
    y = (X @ rng.normal(size=(8, 1))).astype(np.float32)
    layers = [fnn.Dense(8, 32, "relu")] + [fnn.Dense(32, 32, "relu") for _ in range(4)] + [fnn.Dense(32, 1)]
    flow, _, messages = fit_flow(layers, X, y, epochs=4, optimizer=fnn.SGD(0.2), loss="mse", check_finite=False)
    exploding = [m for m in messages if "exploding" in m or "exploded" in m]
    assert len(exploding) == 1, messages
    assert "learning rate" in exploding[0] and "clip_norm" in exploding[0]


@pytest.mark.parametrize("path", ["fused", "per-layer"])
def test_training_is_unchanged_by_the_callback(path):
    X, y = blobs(96)
    shape = (6,) if path == "fused" else (3, 2)
    Xs = X.reshape(-1, *shape)

    def run(callbacks):
        first = fnn.Dense(6, 16, "relu") if path == "fused" else fnn.LSTM(16)
        layers = [first, fnn.BatchNorm(), fnn.Dropout(0.3), fnn.Dense(16, 3)]
        net = fnn.Network(layers, input_shape=shape, seed=0, backend="reference")
        trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, verbose=0, seed=0, callbacks=callbacks)
        hist = trainer.fit(Xs, y, epochs=3)
        return net, hist, trainer.last_plan

    plain, h_plain, _ = run([])
    flow = GradientFlow(probe_size=32)
    probed, h_probed, plan = run([flow])
    assert flow.probe_path == plan["path"] == path
    if path == "fused":
        assert plan["steps_per_call"] > 1  # the compiled loop keeps its chunks
    np.testing.assert_array_equal(plain.params, probed.params)
    np.testing.assert_array_equal(plain.buffers, probed.buffers)
    assert h_plain["loss"] == h_probed["loss"]


def test_checkpoint_resume_with_the_callback(tmp_path):
    X, y = blobs(96)
    ckpt = tmp_path / "run.ckpt"

    def trainer_of():
        net = fnn.Network([fnn.Dense(6, 16, "relu"), fnn.Dense(16, 3)], seed=0, backend="reference")
        return fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, verbose=0, seed=0)

    full = trainer_of()
    full.fit(X, y, epochs=4, callbacks=[GradientFlow()])
    first = trainer_of()
    first.fit(X, y, epochs=2, callbacks=[GradientFlow(), ModelCheckpoint(ckpt, save_training_state=True,
                                                                         monitor="loss")])
    resumed = trainer_of()
    flow = GradientFlow()
    resumed.fit(X, y, epochs=4, resume_from=ckpt, callbacks=[flow])
    np.testing.assert_array_equal(full.network.params, resumed.network.params)
    assert list(flow.history["epoch"]) == [2, 3]


def test_settings_are_checked():
    for bad in ({"probe_size": 0}, {"vanishing_factor": 0.0}, {"vanishing_factor": 1.5}, {"exploding_factor": 1.0},
                {"probe_size": 2.5}):
        with pytest.raises((ValueError, TypeError)):
            GradientFlow(**bad)
    flow = GradientFlow()
    with pytest.raises((ValueError, TypeError)):
        flow.probe_size = -3
