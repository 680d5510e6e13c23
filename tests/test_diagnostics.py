"""Diagnostics: the pure checks on scripted curves, and the callback on real runs that go wrong (and right)."""
import warnings

import numpy as np
import pytest

import fastnn as fnn
from fastnn import diagnostics as d
from fastnn.callbacks import Diagnostics
from fastnn.data.synthetic import moons
from fastnn.diagnostics import FastnnWarning, Finding


@pytest.fixture(scope="module")
def data():
    X, y = moons(256, noise=0.1, seed=0)
    Xv, yv = moons(128, noise=0.1, seed=1)
    return X, y, Xv, yv


def run(data, optimizer, epochs=8, patience=3, validation=True, **trainer_kwargs):
    """Train a 2-16-2 net with a Diagnostics callback; return (callback, history, warning messages)."""
    X, y, Xv, yv = data
    net = fnn.Network([fnn.Dense(2, 16, "relu"), fnn.Dense(16, 2)], seed=0, backend="reference")
    trainer = fnn.Trainer(net, optimizer=optimizer, batch_size=32, verbose=0, seed=0, **trainer_kwargs)
    diag = Diagnostics(patience=patience)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        hist = trainer.fit(X, y, epochs=epochs, callbacks=[diag],
                           validation_data=(Xv, yv) if validation else None)
    messages = [str(w.message) for w in caught if issubclass(w.category, FastnnWarning)]
    return diag, hist, messages


# ---------------------------------------------------------------------- pure checks
def test_finding_str_and_warning_category():
    f = Finding("x", "something happened", "do this")
    assert str(f) == "something happened. Hint: do this"
    assert issubclass(FastnnWarning, UserWarning)
    with pytest.warns(FastnnWarning, match="Hint: do this"):
        d.emit(f)


def test_check_loss_trend_rising_flat_and_healthy():
    rising = d.check_loss_trend([1.0, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3], patience=5)
    assert rising.kind == "loss_rising" and "too high" in rising.hint
    above_best = d.check_loss_trend([1.0, 0.5, 0.6, 0.55, 0.58, 0.6, 0.59], patience=5)
    assert above_best.kind == "loss_rising"
    flat = d.check_loss_trend([0.6931, 0.69309, 0.69309, 0.69308, 0.69308, 0.69308], patience=5)
    assert flat.kind == "loss_flat" and "too low" in flat.hint and "clip" not in flat.hint
    clipped = d.check_loss_trend([0.7] * 6, patience=5, clip_value=0.01)
    assert "clip_value=0.01" in clipped.hint
    # healthy, converged, too short, or near zero: nothing
    assert d.check_loss_trend([1.0, 0.5, 0.3, 0.2, 0.19, 0.18], patience=5) is None
    assert d.check_loss_trend([1.0, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1], patience=5) is None  # learned, then converged
    assert d.check_loss_trend([1.0, 1.1, 1.2], patience=5) is None
    assert d.check_loss_trend([1e-5] * 10, patience=5) is None
    assert d.check_loss_trend([1.0, 0.9, float("nan"), 1.0, 1.1, 1.2], patience=5) is None


def test_check_worse_than_chance():
    f = d.check_worse_than_chance([150, 20, 4.0, 4.2, 0.93], "cross_entropy", 2, patience=3)
    assert f.kind == "worse_than_chance" and "too high" in f.hint and "0.6931" in f.message
    assert d.check_worse_than_chance([150, 20, 4.0, 4.2, 0.7], "cross_entropy", 2, patience=3) is None
    assert d.check_worse_than_chance([3.0, 2.6, 2.55, 2.6], "cross_entropy", 10, patience=3) is not None
    assert d.check_worse_than_chance([3.0, 2.4, 2.3, 2.2], "cross_entropy", 10, patience=3) is None
    assert d.check_worse_than_chance([0.9, 0.9, 0.9, 0.9], "bce", 1, patience=3) is None  # never moved
    assert d.check_worse_than_chance([5.0, 9.0, 7.0, 8.0], "mse", 1, patience=3) is None
    assert d.chance_loss("bce", 3) == pytest.approx(np.log(2)) and d.chance_loss("mse", 2) is None


def test_check_overfitting():
    f = d.check_overfitting([1, .9, .8, .7, .6, .5], [1, 1.1, 1.2, 1.3, 1.4, 1.5], patience=5)
    assert f.kind == "overfitting" and "EarlyStopping" in f.hint
    assert d.check_overfitting([1, .9, .8, .7, .6, .5], [1, .9, .95, 1.0, 1.1, 1.2], patience=5) is None
    assert d.check_overfitting([1, 1.1, 1.2, 1.3, 1.4, 1.5], [1, 1.1, 1.2, 1.3, 1.4, 1.5], patience=5) is None


def test_check_non_finite_and_negative_loss():
    f = d.check_non_finite({"loss": float("nan"), "accuracy": 0.5, "samples_per_s": float("inf")})
    assert f.kind == "non_finite" and "loss=nan" in f.message and "samples_per_s" not in f.message
    assert d.check_non_finite({"loss": 0.1, "epoch_time": float("inf")}) is None
    neg = d.check_negative_loss(-0.3, fnn.BinaryCrossEntropy())
    assert neg.kind == "negative_loss" and "[-1, 1]" in neg.hint and "binary_cross_entropy" in neg.message
    assert d.check_negative_loss(0.3) is None and d.check_negative_loss(float("nan")) is None


def test_check_targets():
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    assert [f.kind for f in d.check_targets("mse", one_hot)] == ["target_format"]
    assert "cross_entropy" in d.check_targets("mse", one_hot)[0].hint
    assert "binary_cross_entropy" in d.check_targets("mse", [0, 1, 1, 0])[0].hint
    assert d.check_targets("mse", [0.5, 1.7, -2.0]) == []
    multi = d.check_targets("cross_entropy", [[1, 1, 0], [0, 1, 0]])
    assert len(multi) == 1 and "binary_cross_entropy" in multi[0].hint
    assert d.check_targets("cross_entropy", one_hot) == [] and d.check_targets("cross_entropy", [0, 2, 1]) == []
    assert "cross_entropy" in d.check_targets("bce", one_hot)[0].hint
    assert d.check_targets("bce", [[1, 1, 0], [0, 1, 1]]) == []


def test_check_predictions_one_class(data):
    X, y, _, _ = data
    net = fnn.Network([fnn.Dense(2, 4, "relu"), fnn.Dense(4, 2)], seed=0, backend="reference")
    net.layers[-1].params["W"][...] = 0
    net.layers[-1].params["b"][...] = [0.0, 3.0]  # always class 1
    f = d.check_predictions(net, X, y, data_name="the validation data")
    assert f.kind == "one_class" and "class 1" in f.message and "too high" in f.hint
    assert d.check_predictions(net, X, np.ones(len(X), int)) is None  # the data really is one class
    assert d.check_predictions(net, X, np.eye(2)[y]) is not None  # one-hot targets
    imbalanced = np.r_[np.zeros(240, int), np.ones(16, int)]
    assert "imbalanced" in d.check_predictions(net, X, imbalanced).hint
    net.layers[-1].params["b"][...] = 0
    net.layers[-1].params["W"][...] = np.random.default_rng(0).normal(size=(4, 2))
    assert d.check_predictions(net, X, y) is None or len(np.unique(net.predict(X))) == 1


def test_diagnose_history():
    h = {"loss": [0.69, 0.69, 0.69, 0.69, 0.69, 0.69], "val_loss": [0.7] * 6}
    assert [f.kind for f in d.diagnose(h, patience=5)] == ["loss_flat"]
    h = {"loss": [1.0, float("nan")]}
    assert [f.kind for f in d.diagnose(h, patience=5)] == ["non_finite"]
    assert d.diagnose({"loss": [1.0, 0.5, 0.3]}) == []


# ---------------------------------------------------------------------- the callback on real runs
def test_lr_too_high_warns(data):
    diag, hist, messages = run(data, fnn.Adam(10.0), check_finite=False)
    kinds = {f.kind for f in diag.findings}
    assert kinds & {"loss_rising", "non_finite", "one_class", "worse_than_chance"}, (hist["loss"], kinds)
    assert any("too high" in m for m in messages)
    diag, hist, messages = run(data, fnn.SGD(10.0), check_finite=False)
    assert any("too high" in m for m in messages), hist["loss"]


def test_lr_too_low_warns_flat(data):
    diag, hist, messages = run(data, fnn.Adam(1e-7), patience=4, validation=False)
    assert [f.kind for f in diag.findings] == ["loss_flat"]
    assert len(messages) == 1 and "too low" in messages[0]


def test_tight_clipping_mentioned(data):
    diag, hist, messages = run(data, fnn.SGD(1e-6), patience=4, clip_value=1e-4, validation=False)
    assert any("clip_value=0.0001" in m for m in messages)


def test_healthy_run_is_silent(data):
    diag, hist, messages = run(data, fnn.Adam(0.01), epochs=12, patience=3)
    assert messages == [] and diag.findings == [], [str(f) for f in diag.findings]
    assert hist["val_accuracy"][-1] > 0.85


def test_one_class_on_validation_data(data):
    X, y, Xv, yv = data
    net = fnn.Network([fnn.Dense(2, 4, "relu"), fnn.Dense(4, 2)], seed=0, backend="reference")
    net.layers[-1].params["W"][...] = 0
    net.layers[-1].params["b"][...] = [4.0, 0.0]
    trainer = fnn.Trainer(net, optimizer=fnn.SGD(1e-9), batch_size=64, verbose=0, seed=0)
    diag = Diagnostics(patience=10, validation_data=(Xv, yv))
    with pytest.warns(FastnnWarning, match="all 128 predictions on the validation data are class 0"):
        trainer.fit(X, y, epochs=2, callbacks=[diag])
    assert [f.kind for f in diag.findings] == ["one_class"]


def test_reports_each_kind_once_and_reset(data):
    X, y, _, _ = data
    net = fnn.Network([fnn.Dense(2, 8, "relu"), fnn.Dense(8, 2)], seed=0, backend="reference")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-8), batch_size=64, verbose=0, seed=0)
    diag = Diagnostics(patience=2, check_predictions=False, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warn=False: nothing is emitted
        trainer.fit(X, y, epochs=6, callbacks=[diag])
        trainer.fit(X, y, epochs=3, callbacks=[diag])  # same trainer: history continues, no repeat
    assert [f.kind for f in diag.findings] == ["loss_flat"] and len(diag.losses) == 9
    diag.reset()
    assert diag.findings == [] and diag.losses == []


def test_negative_loss_and_target_hooks(data):
    X, y, _, _ = data
    net = fnn.Network([fnn.Dense(2, 3, "relu"), fnn.Dense(3, 2)], seed=0, backend="reference")
    trainer = fnn.Trainer(net, loss="mse", optimizer=fnn.Adam(0.01), batch_size=64, verbose=0)
    Y = np.eye(2)[y]
    trainer.fit_data = (X, Y)  # what the trainer exposes to callbacks (if it does)
    diag = Diagnostics(patience=50)
    with pytest.warns(FastnnWarning, match="one-hot"):
        trainer.fit(X, Y, epochs=1, callbacks=[diag])
    # a negative epoch loss (a custom loss that does not fit its targets)
    diag = Diagnostics(patience=50, check_predictions=False)
    diag.set_trainer(trainer)
    del trainer.fit_data
    diag.on_train_begin({})
    with pytest.warns(FastnnWarning, match="negative"):
        diag.on_epoch_end(0, {"loss": -0.25})


def test_diagnostics_validation():
    with pytest.raises(ValueError):
        Diagnostics(patience=0)
    with pytest.raises(ValueError):
        Diagnostics(validation_data=[1, 2, 3])


def test_one_class_on_training_data_when_the_trainer_exposes_it(data):
    X, y, _, _ = data
    net = fnn.Network([fnn.Dense(2, 4, "relu"), fnn.Dense(4, 2)], seed=0, backend="reference")
    trainer = fnn.Trainer(net, optimizer=fnn.SGD(1e-9), batch_size=64, verbose=0, seed=0)
    if not hasattr(trainer, "fit_data"):
        pytest.skip("Trainer does not expose fit_data/validation_data to callbacks (yet)")
    net.layers[-1].params["W"][...] = 0
    net.layers[-1].params["b"][...] = [0.0, 4.0]
    diag = Diagnostics(patience=10)
    with pytest.warns(FastnnWarning, match="predictions on the training data are class 1"):
        trainer.fit(X, y, epochs=2, callbacks=[diag])
    assert trainer.fit_data is None  # not kept alive after fit


# ---------------------------------------------------------------------- gradient flow (pure)
def test_check_gradient_flow_vanishing_is_relative_rms_of_first_and_last_weights():
    sizes = [100, 10, 400, 20, 100, 10]
    weights = [True, False, True, False, True, False]
    # first W: RMS 1e-4, last W: RMS 1e-1 -> 1e-3 < 1e-2; the tiny biases do not count
    norms = [1e-4 * 10, 0.0, 0.5, 0.0, 1e-1 * 10, 0.0]
    (f,) = d.check_gradient_flow(norms, sizes, weights=weights)
    assert f.kind == "vanishing_gradients" and "1.0e-03 times" in f.message and "ReLU" in f.hint
    assert d.check_gradient_flow([1e-2 * 10, 0, 0.5, 0, 1e-1 * 10, 0], sizes, weights=weights) == []  # 0.1: fine
    # the same norms over wider first tensors are smaller per entry: RMS decides, not the raw norm
    assert d.check_gradient_flow([1.0, 1.0], [10 ** 6, 1])[0].kind == "vanishing_gradients"
    assert d.check_gradient_flow([1.0, 1.0], [100, 1]) == []
    assert d.check_gradient_flow([1e-9, 0.0], [10, 10]) == []  # a zero last gradient proves nothing


def test_check_gradient_flow_exploding():
    (f,) = d.check_gradient_flow([3e3, 1.0], [10, 10], initial_norm=1.0)
    assert f.kind == "exploding_gradients" and "clip_norm" in f.hint and "learning rate" in f.hint
    assert d.check_gradient_flow([5e2, 500.0], [10, 10], initial_norm=1.0) == []  # 707x < 1e3
    assert d.check_gradient_flow([5e2, 5e2], [10, 10], initial_norm=1.0, exploding_factor=100)[0].kind \
        == "exploding_gradients"
    (f,) = d.check_gradient_flow([np.nan, 1.0], [10, 10])
    assert f.kind == "exploding_gradients" and "NaN" in f.message
    with pytest.raises(ValueError, match="one length"):
        d.check_gradient_flow([1.0, 2.0], [3])
