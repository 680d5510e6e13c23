"""Trainer: a hand-worked step, backend and path parity, learning real toy problems, history."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.data.synthetic import spiral_data, xor
from fastnn.kernels import available_backends

BACKENDS = available_backends()
COMPILED = [b for b in BACKENDS if b != "reference"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hand_worked_sgd_step(backend, dtype):
    """One SGD step of a 2-2 linear layer with softmax cross-entropy, numbers worked out by hand.

    x = [1, 2], W = [[.1, .2], [.3, .4]], b = 0, label 1:
    z = [.7, 1.0]; softmax: e^.7 = 2.0137527, e^1 = 2.7182818, sum 4.7320345,
    p = [.42555748, .57444252]; loss = -ln(.57444252) = .55435524;
    dz = p - [0, 1] = [.42555748, -.42555748]; dW = x^T dz; db = dz;
    with lr = .1: W' = W - .1 dW, b' = -.1 dz.
    """
    net = fnn.Network([fnn.Dense(2, 2)], dtype=dtype, backend=backend)
    net.layers[0].W[...] = [[0.1, 0.2], [0.3, 0.4]]
    net.layers[0].b[...] = 0
    trainer = fnn.Trainer(net, loss="cross_entropy", optimizer=fnn.SGD(lr=0.1), batch_size=1, verbose=0)
    history = trainer.fit(np.array([[1.0, 2.0]]), np.array([1]), epochs=1, shuffle=False)
    rtol = 1e-6 if dtype == "float32" else 1e-12
    assert history["loss"][0] == pytest.approx(0.5543552444685272, rel=rtol)
    assert history["accuracy"][0] == 1.0
    np.testing.assert_allclose(net.layers[0].W, [[0.1 - 0.0425557483188341, 0.2 + 0.0425557483188341],
                                                 [0.3 - 0.0851114966376682, 0.4 + 0.0851114966376682]], rtol=rtol)
    np.testing.assert_allclose(net.layers[0].b, [-0.0425557483188341, 0.0425557483188341], rtol=rtol)


def _mlp(backend, dtype="float64", seed=0, hidden=16, n_in=12, n_out=4, dropout=None):
    layers = [fnn.Dense(n_in, hidden, "relu"), fnn.Dense(hidden, hidden, "tanh"), fnn.Dense(hidden, n_out)]
    if dropout is not None:
        layers.insert(1, fnn.Dropout(dropout))
    return fnn.Network(layers, seed=seed, dtype=dtype, backend=backend)


def _data(n=300, n_in=12, n_out=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = (X[:, :n_out].argmax(axis=1) + (X[:, -1] > 1)) % n_out
    return X, y


@pytest.mark.parametrize("optimizer", [lambda: fnn.Adam(3e-3), lambda: fnn.SGD(0.05, momentum=0.9, nesterov=True),
                                       lambda: fnn.RMSprop(1e-3), lambda: fnn.Adagrad(0.05),
                                       lambda: fnn.AdamW(3e-3, weight_decay=0.05)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_agree_after_training(optimizer, dtype):
    """Train N steps on every backend from the same start: the weights agree."""
    X, y = _data()
    final = {}
    for backend in BACKENDS:
        net = _mlp(backend, dtype)
        trainer = fnn.Trainer(net, optimizer=optimizer(), batch_size=32, seed=3, verbose=0, clip_norm=5.0)
        trainer.fit(X, y, epochs=3)
        final[backend] = net.params.copy()
    tol = 1e-4 if dtype == "float32" else 1e-10
    for backend in BACKENDS[1:]:
        np.testing.assert_allclose(final[backend], final[BACKENDS[0]], rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("parallel", ["shards", "blas"])
def test_fused_path_matches_per_layer_path(backend, parallel):
    """The fused whole-epoch driver and the generic per-layer loop give the same weights."""
    X, y = _data()
    fused = _mlp(backend)
    generic = _mlp(backend)
    np.testing.assert_array_equal(fused.params, generic.params)
    t1 = fnn.Trainer(fused, optimizer=fnn.Adam(1e-2), batch_size=40, seed=1, verbose=0, parallel=parallel)
    t2 = fnn.Trainer(generic, optimizer=fnn.Adam(1e-2), batch_size=40, seed=1, verbose=0, parallel=parallel,
                     path="per-layer")
    h1 = t1.fit(X, y, epochs=2)
    h2 = t2.fit(X, y, epochs=2)
    assert t1.last_plan["path"] == "fused"
    assert t2.last_plan["path"] == "per-layer"
    np.testing.assert_allclose(fused.params, generic.params, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-9)


@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_backends_take_the_fused_sharded_path(backend):
    net = _mlp(backend, "float32", hidden=256)
    trainer = fnn.Trainer(net, batch_size=128, verbose=0, n_threads=2, parallel="auto")  # shards of 64 rows
    trainer.fit(*_data(), epochs=1)
    assert trainer.last_plan["path"] == "fused"
    assert trainer.last_plan["backend"] == backend
    assert trainer.last_plan["n_shards"] == 2
    assert trainer.last_plan["blas_threads"] == 1
    # A tiny network is not worth splitting: one thread.
    tiny = fnn.Trainer(_mlp(backend, "float32"), batch_size=64, verbose=0, n_threads=2)
    tiny.fit(*_data(), epochs=1)
    assert tiny.last_plan["n_shards"] == 1
    # Batch-level callbacks make the driver return after every batch, still compiled.
    seen = []

    class Recorder(fnn.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(logs["batches"])

    trainer.fit(*_data(), epochs=1, callbacks=[Recorder()])
    assert trainer.last_plan["steps_per_call"] == 1
    assert seen == [1] * int(np.ceil(300 / 128))


@pytest.mark.parametrize("backend", BACKENDS)
def test_learns_xor(backend):
    X, y = xor()
    net = fnn.Network([fnn.Dense(2, 8, "tanh"), fnn.Dense(8, 2)], seed=0, backend=backend)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(0.05), batch_size=4, seed=0, verbose=0)
    trainer.fit(X, y, epochs=300)
    assert (net.predict(X) == y).all()


@pytest.mark.parametrize("backend", COMPILED)
def test_learns_spiral(backend):
    """The 3-class spiral of the from-scratch book, 300 points, to >= 95% train accuracy.

    Full-batch Adam as in the book, with a wider net than its 64 units (which plateaus near 93%).
    """
    X, y = spiral_data(100, 3, seed=0)
    net = fnn.Network([fnn.Dense(2, 256, "relu"), fnn.Dense(256, 256, "relu"), fnn.Dense(256, 3)], seed=0,
                      backend=backend)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(0.005), batch_size=300, seed=0, verbose=0, n_threads=1)
    trainer.fit(X, y, epochs=1000)
    assert (net.predict(X) == y).mean() >= 0.95


def test_binary_and_regression_tasks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y_bin = (X[:, 0] * X[:, 1] > 0).astype(float)
    net = fnn.Network([fnn.Dense(3, 16, "relu"), fnn.Dense(16, 1)], seed=0)
    fnn.Trainer(net, loss="binary_cross_entropy", optimizer=fnn.Adam(0.01), verbose=0).fit(X, y_bin, epochs=60)
    assert net.predict_proba(X).shape == (400, 2)
    assert (net.predict(X) == y_bin).mean() > 0.9
    w = np.array([[1.5], [-2.0], [0.5]])
    y_reg = X @ w + 0.3
    reg = fnn.Network([fnn.Dense(3, 1)], seed=0)
    trainer = fnn.Trainer(reg, loss="mse", optimizer=fnn.SGD(0.05), batch_size=16, verbose=0)
    h = trainer.fit(X, y_reg, epochs=50)
    assert h["loss"][-1] < 1e-6
    np.testing.assert_allclose(reg.layers[0].W, w, atol=1e-3)
    assert reg.predict(X).shape == (400, 1)
    assert "accuracy" not in h


def test_history_and_validation():
    X, y = _data()
    net = _mlp("numba", "float32")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=32, verbose=0)
    h = trainer.fit(X[:200], y[:200], epochs=3, validation_data=(X[200:], y[200:]))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time", "samples_per_s", "lr"):
        assert len(h[key]) == 3
    assert h["loss"][-1] < h["loss"][0]
    ev = trainer.evaluate(X[200:], y[200:])
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"][-1])
    assert trainer.epoch == 3
    trainer.fit(X, y, epochs=2)
    assert trainer.epoch == 5


def test_verbose_prints_progress_and_epoch_line(capsys):
    X, y = _data()
    trainer = fnn.Trainer(_mlp("numba", "float32"), verbose=1)
    trainer.fit(X, y, epochs=1)
    out, err = capsys.readouterr()
    assert "epoch 1/1" in out and "samples/s" in out


def test_softmax_output_layer_is_fused_into_cross_entropy():
    X, y = _data()
    a = fnn.Network([fnn.Dense(12, 8, "relu"), fnn.Dense(8, 4)], seed=0, dtype="float64")
    b = fnn.Network([fnn.Dense(12, 8, "relu"), fnn.Dense(8, 4, "softmax")], seed=0, dtype="float64")
    for net in (a, b):
        fnn.Trainer(net, optimizer=fnn.Adam(1e-2), verbose=0, seed=0).fit(X, y, epochs=2)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)
    np.testing.assert_allclose(b.forward(X), a.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(b.predict_proba(X).sum(axis=1), 1.0)


def test_non_finite_loss_raises_and_restores_weights():
    X, y = _data()
    net = fnn.Network([fnn.Dense(12, 16, "relu"), fnn.Dense(16, 4)], seed=0)
    trainer = fnn.Trainer(net, optimizer=fnn.SGD(1e10), verbose=0)
    before = net.params.copy()
    with pytest.raises(fnn.NonFiniteError, match="step"):
        trainer.fit(X, y, epochs=3)
    assert np.isfinite(net.params).all()
    # restored to the last finite state of the chunk start: here the very first weights
    np.testing.assert_array_equal(net.params, before)


def test_schedule_callable_learning_rate():
    X, y = _data()
    net = _mlp("numba", "float64")
    seen = []

    def schedule(steps):
        seen.append(steps.copy())
        return 1e-2 * 0.5 ** (steps // 10)

    trainer = fnn.Trainer(net, optimizer=fnn.Adam(lr=schedule), batch_size=100, verbose=0, seed=0)
    h = trainer.fit(X, y, epochs=5)
    assert set(range(15)) <= set(np.concatenate(seen).tolist())
    assert h["lr"] == [1e-2, 1e-2, 1e-2, 1e-2, 1e-2 * 0.5]  # epochs start at steps 0, 3, 6, 9, 12
    assert trainer.optimizer.iterations == 15
    assert trainer.optimizer.current_lr == 1e-2 * 0.5
    # A constant schedule trains exactly like the float learning rate.
    a, b = _mlp("numba", "float64"), _mlp("numba", "float64")
    fnn.Trainer(a, optimizer=fnn.Adam(lr=lambda s: np.full(len(s), 1e-2)), verbose=0, seed=0).fit(X, y, epochs=2)
    fnn.Trainer(b, optimizer=fnn.Adam(lr=1e-2), verbose=0, seed=0).fit(X, y, epochs=2)
    np.testing.assert_array_equal(a.params, b.params)


def test_fit_augment_hook_refreshes_inputs_each_epoch():
    from fastnn.data.augment import Augmenter, GaussianNoise

    X, y = _data()
    X = (X - X.min()) / (X.max() - X.min())  # noise clips to [0, 1]
    calls = []
    aug = Augmenter([GaussianNoise(0.01)], seed=0, image_shape=(3, 4))

    def augment(Xin, out):
        calls.append(out)
        return aug(Xin, out=out)

    net = _mlp("numba", "float32")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), verbose=0, seed=0)
    h = trainer.fit(X, y, epochs=3, augment=augment)
    assert len(calls) == 3 and all(c is calls[0] for c in calls)  # one buffer, refilled
    assert len(h["augment_time"]) == 3
    assert not np.array_equal(calls[0], X.astype(np.float32))
    with pytest.raises(TypeError, match="augment"):
        trainer.fit(X, y, augment="noise")


def test_l2_penalty_shrinks_weights_on_the_fused_path():
    X, y = _data()
    plain = fnn.Network([fnn.Dense(12, 16, "relu"), fnn.Dense(16, 4)], seed=0, dtype="float64")
    reg = fnn.Network([fnn.Dense(12, 16, "relu", l2=0.05), fnn.Dense(16, 4, l2=0.05)], seed=0, dtype="float64")
    t_plain = fnn.Trainer(plain, optimizer=fnn.Adam(1e-2), verbose=0, seed=0)
    t_reg = fnn.Trainer(reg, optimizer=fnn.Adam(1e-2), verbose=0, seed=0)
    t_plain.fit(X, y, epochs=5)
    h = t_reg.fit(X, y, epochs=5)
    assert t_reg.last_plan["path"] == "fused"
    assert np.abs(reg.layers[0].W).sum() < 0.8 * np.abs(plain.layers[0].W).sum()
    # the reported training loss includes the penalty
    assert h["loss"][-1] > t_reg.evaluate(X, y)["loss"]


def test_samples_per_epoch_draws_a_fresh_subset_each_epoch():
    X, y = _data()
    seen = []

    class Spy(fnn.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.trainer.n_samples_epoch)

    net = _mlp("numba", "float32")
    trainer = fnn.Trainer(net, batch_size=32, verbose=0, seed=0, callbacks=[Spy()])
    trainer.fit(X, y, epochs=3, samples_per_epoch=100)
    assert seen == [100, 100, 100]
    assert trainer.optimizer.iterations == 3 * 4  # ceil(100 / 32) steps per epoch
    with pytest.raises(ValueError, match="samples_per_epoch"):
        trainer.fit(X, y, samples_per_epoch=10_000)
