"""Training-toolkit callbacks: each in a tiny real training run, plus exact unit checks with scripted logs."""
import csv

import numpy as np
import pytest

import fastnn as fnn
from fastnn.callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler, LivePlot,
                              ReduceLROnPlateau, TerminateOnNaN, resolve_mode)
from fastnn.data.synthetic import moons
from fastnn.diagnostics import FastnnWarning
from fastnn.schedules import CosineDecay, StepDecay


@pytest.fixture(scope="module")
def data():
    X, y = moons(256, noise=0.25, seed=0)
    Xv, yv = moons(128, noise=0.25, seed=1)
    return X, y, Xv, yv


def make_trainer(lr=0.05, optimizer=None, seed=0, **kwargs):
    net = fnn.Network([fnn.Dense(2, 16, "relu"), fnn.Dense(16, 2)], seed=seed, backend="reference")
    opt = optimizer if optimizer is not None else fnn.Adam(lr)
    return fnn.Trainer(net, optimizer=opt, batch_size=32, verbose=0, seed=seed, **kwargs)


class ParamRecorder(Callback):
    """Copies the weights at every epoch end."""

    def __init__(self):
        self.params = {}

    def on_epoch_end(self, epoch, logs=None):
        self.params[epoch] = self.trainer.network.params.copy()


class FakeTrainer:
    """Just what the callbacks touch, for scripted-log unit tests."""

    def __init__(self, lr=0.1, n_params=3):
        self.network = type("Net", (), {})()
        self.network.params = np.zeros(n_params)
        self.optimizer = fnn.SGD(lr)
        self.stop_training = False
        self.epochs = 100


def drive(cb, values, key="val_loss", trainer=None):
    """Run ``cb`` over epochs whose logs hold ``key: value``; return the epoch at which it asked to stop."""
    trainer = trainer or FakeTrainer()
    cb.set_trainer(trainer)
    cb.on_train_begin({})
    for epoch, v in enumerate(values):
        trainer.network.params[:] = epoch  # weights "of" this epoch
        cb.on_epoch_begin(epoch, {})
        cb.on_epoch_end(epoch, {key: v, "lr": trainer.optimizer.lr})
        if trainer.stop_training:
            cb.on_train_end({})
            return epoch
    cb.on_train_end({})
    return None


# ---------------------------------------------------------------------- EarlyStopping
def test_early_stopping_scripted_patience_and_min_delta():
    es = EarlyStopping(patience=2)
    assert drive(es, [1.0, 0.8, 0.9, 0.85, 0.7]) == 3  # no improvement at epochs 2, 3 -> stop after 3
    assert es.best == 0.8 and es.best_epoch == 1 and es.stopped_epoch == 3
    es = EarlyStopping(patience=2, min_delta=0.15)
    assert drive(es, [1.0, 0.9, 0.88, 0.7]) == 2  # 0.9 and 0.88 do not beat 1.0 by more than 0.15
    es = EarlyStopping(patience=0)
    assert drive(es, [1.0, 0.5, 0.6]) == 2
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.mode == "max" and drive(es, [0.5, 0.7, 0.6], key="val_accuracy") == 2
    es = EarlyStopping(patience=2)
    assert drive(es, [1.0, float("nan"), 0.5]) is None and es.best == 0.5  # NaN is never an improvement
    es = EarlyStopping(patience=1)
    assert drive(es, [1.0, float("nan"), 0.5]) == 1


def test_early_stopping_scripted_restore():
    trainer = FakeTrainer()
    es = EarlyStopping(patience=2, restore_best_weights=True)
    assert drive(es, [1.0, 0.5, 0.9, 0.8], trainer=trainer) == 3
    np.testing.assert_array_equal(trainer.network.params, 1.0)  # weights of epoch 1
    assert es.restored
    # ended normally with the best epoch last: nothing to restore
    trainer = FakeTrainer()
    es = EarlyStopping(patience=5, restore_best_weights=True)
    drive(es, [1.0, 0.9, 0.8], trainer=trainer)
    assert not es.restored and (trainer.network.params == 2).all()


def test_early_stopping_stops_and_restores_in_training(data):
    X, y, Xv, yv = data
    rec = ParamRecorder()
    es = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.02, restore_best_weights=True)
    trainer = make_trainer(lr=0.05, callbacks=[rec, es])
    hist = trainer.fit(X, y, epochs=60, validation_data=(Xv, yv))
    assert es.stopped_epoch is not None and len(hist) < 60
    assert len(hist) == es.stopped_epoch + 1
    assert es.stopped_epoch - es.best_epoch >= 2
    assert es.best == min(hist["val_loss"][:es.best_epoch + 1])
    np.testing.assert_array_equal(trainer.network.params, rec.params[es.best_epoch])
    assert trainer.evaluate(Xv, yv)["loss"] == pytest.approx(es.best, rel=1e-5)
    assert es.restored


def test_early_stopping_missing_monitor_warns(data):
    X, y, _, _ = data
    es = EarlyStopping()  # val_loss, but no validation data
    with pytest.warns(FastnnWarning, match="validation_data"):
        hist = make_trainer(callbacks=[es]).fit(X, y, epochs=3)
    assert len(hist) == 3 and es.stopped_epoch is None


def test_resolve_mode():
    assert resolve_mode("val_loss") == "min" and resolve_mode("loss") == "min"
    assert resolve_mode("val_accuracy") == "max" and resolve_mode("f1_macro") == "max"
    assert resolve_mode("val_rmse") == "min" and resolve_mode("val_mae") == "min"
    assert resolve_mode("anything", "max") == "max"
    with pytest.raises(ValueError, match="mode='min'"):
        resolve_mode("val_banana")
    with pytest.raises(ValueError):
        resolve_mode("val_loss", "up")


@pytest.mark.parametrize("kwargs", [{"patience": -1}, {"patience": 1.5}, {"min_delta": -0.1},
                                    {"mode": "sideways"}, {"monitor": "val_banana"}])
def test_early_stopping_validation(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


# ---------------------------------------------------------------------- TerminateOnNaN
def test_terminate_on_nan_stops_cleanly(data):
    X, y, _, _ = data
    cb = TerminateOnNaN()
    trainer = make_trainer(optimizer=fnn.SGD(1e6), check_finite=False, callbacks=[cb])
    with np.errstate(all="ignore"), pytest.warns(FastnnWarning, match="TerminateOnNaN"):
        hist = trainer.fit(X, y, epochs=20)
    assert cb.stopped_epoch is not None and len(hist) == cb.stopped_epoch + 1 < 20
    assert not np.isfinite(hist["loss"][-1])


def test_terminate_on_nan_ignores_timings_and_healthy_runs():
    cb = TerminateOnNaN()
    assert drive(cb, [1.0, 0.5], key="loss") is None
    trainer = FakeTrainer()
    cb.set_trainer(trainer)
    cb.on_epoch_end(0, {"loss": 0.3, "samples_per_s": float("inf")})  # a zero-time epoch is not a NaN
    assert not trainer.stop_training
    cb = TerminateOnNaN(monitor="val_loss")
    cb.set_trainer(trainer)
    cb.on_epoch_end(0, {"loss": float("nan"), "val_loss": 0.3})
    assert not trainer.stop_training
    with pytest.warns(FastnnWarning):
        cb.on_epoch_end(1, {"loss": 0.3, "val_loss": float("inf")})
    assert trainer.stop_training and cb.stopped_epoch == 1


# ---------------------------------------------------------------------- CSVLogger
def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger_content_and_append(data, tmp_path):
    X, y, Xv, yv = data
    path = tmp_path / "log.csv"
    trainer = make_trainer()
    hist = trainer.fit(X, y, epochs=3, validation_data=(Xv, yv), callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time",
                       "samples_per_s"]
    assert len(rows) == 4 and [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, row in enumerate(rows[1:]):
        rec = dict(zip(rows[0], row))
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            assert float(rec[key]) == hist[key][i]  # full precision
    # append: same header, epochs continue
    trainer.fit(X, y, epochs=2, validation_data=(Xv, yv), callbacks=[CSVLogger(path, append=True)])
    rows = read_csv(path)
    assert len(rows) == 6 and rows.count(rows[0]) == 1 and [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    # no append: overwritten
    trainer.fit(X, y, epochs=1, callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "accuracy", "lr", "epoch_time", "samples_per_s"] and len(rows) == 2


def test_csv_logger_flushes_every_epoch(data, tmp_path):
    X, y, _, _ = data
    path = tmp_path / "log.csv"
    seen = []

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(len(read_csv(path)))

    make_trainer(callbacks=[CSVLogger(path, separator=";"), Peek()]).fit(X, y, epochs=3)
    assert seen == [2, 3, 4]
    assert ";" in path.read_text().splitlines()[0]


def test_csv_logger_append_keeps_old_columns(data, tmp_path):
    X, y, Xv, yv = data
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1.5\n")
    with pytest.warns(FastnnWarning, match="no column"):
        make_trainer().fit(X, y, epochs=1, callbacks=[CSVLogger(path, append=True)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss"] and len(rows) == 3 and len(rows[2]) == 2


# ---------------------------------------------------------------------- LearningRateScheduler
def test_lr_scheduler_one_and_two_argument_forms(data):
    X, y, _, _ = data
    trainer = make_trainer(callbacks=[LearningRateScheduler(lambda epoch: 0.1 * 0.5 ** epoch)])
    hist = trainer.fit(X, y, epochs=4)
    np.testing.assert_allclose(hist["lr"], [0.1, 0.05, 0.025, 0.0125])
    assert trainer.optimizer.lr == 0.0125

    def halve_after_two(epoch, lr):
        return lr if epoch < 2 else lr / 2

    trainer = make_trainer(lr=0.08, callbacks=[LearningRateScheduler(halve_after_two)])
    np.testing.assert_allclose(trainer.fit(X, y, epochs=4)["lr"], [0.08, 0.08, 0.04, 0.02])
    # a schedule object counts epochs here
    trainer = make_trainer(callbacks=[LearningRateScheduler(StepDecay(0.1, step_size=2, gamma=0.1))])
    np.testing.assert_allclose(trainer.fit(X, y, epochs=4)["lr"], [0.1, 0.1, 0.01, 0.01])


def test_lr_scheduler_changes_training(data):
    X, y, _, _ = data
    a = make_trainer(lr=0.05)
    a.fit(X, y, epochs=2)
    b = make_trainer(lr=0.05, callbacks=[LearningRateScheduler(lambda e: 0.05 if e == 0 else 1e-9)])
    b.fit(X, y, epochs=2)
    c = make_trainer(lr=0.05)
    c.fit(X, y, epochs=1)
    np.testing.assert_allclose(b.network.params, c.network.params, atol=1e-6)  # epoch 2 barely moved
    assert not np.allclose(a.network.params, b.network.params, atol=1e-4)


def test_lr_scheduler_errors(data):
    X, y, _, _ = data
    with pytest.raises(TypeError):
        LearningRateScheduler(0.1)
    with pytest.raises(ValueError, match="positive"):
        make_trainer(callbacks=[LearningRateScheduler(lambda e: -1.0)]).fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="schedule"):
        make_trainer(optimizer=fnn.Adam(CosineDecay(0.01, 100)),
                     callbacks=[LearningRateScheduler(lambda e: 0.1)]).fit(X, y, epochs=1)


# ---------------------------------------------------------------------- ReduceLROnPlateau
def test_reduce_lr_scripted_keras_semantics():
    trainer = FakeTrainer(lr=1.0)
    cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_delta=0.0, cooldown=2, min_lr=0.2)
    drive(cb, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], trainer=trainer)
    # as Keras: no improvement from epoch 1 -> reduce at epoch 2; the cooldown epochs reset the count
    # (the last one already counts again) -> every 3 epochs
    assert [r[0] for r in cb.reductions] == [2, 5, 8]
    assert [r[2] for r in cb.reductions] == [0.5, 0.25, 0.2]  # floored at min_lr
    assert trainer.optimizer.lr == 0.2
    trainer = FakeTrainer(lr=1.0)
    cb = ReduceLROnPlateau(factor=0.1, patience=1)
    drive(cb, [1.0, 0.5, 0.25, 0.3], trainer=trainer)  # improving until epoch 3
    assert [r[0] for r in cb.reductions] == [3] and trainer.optimizer.lr == pytest.approx(0.1)


def test_reduce_lr_lowers_lr_in_training(data):
    X, y, _, _ = data
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0.5)
    trainer = make_trainer(lr=0.04, callbacks=[cb])
    hist = trainer.fit(X, y, epochs=4)
    # min_delta 0.5: after epoch 0 nothing counts as better -> halve after every epoch from epoch 1
    np.testing.assert_allclose(hist["lr"], [0.04, 0.04, 0.02, 0.01])
    assert trainer.optimizer.lr == pytest.approx(0.005) and len(cb.reductions) == 3


def test_reduce_lr_refuses_schedules_and_bad_args(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="per-step schedule"):
        make_trainer(optimizer=fnn.Adam(CosineDecay(0.01, 100)),
                     callbacks=[ReduceLROnPlateau(monitor="loss")]).fit(X, y, epochs=1)
    for kwargs in ({"factor": 1.0}, {"factor": 0}, {"patience": -1}, {"cooldown": 0.5}, {"min_lr": -1}):
        with pytest.raises(ValueError):
            ReduceLROnPlateau(**kwargs)


# ---------------------------------------------------------------------- LivePlot
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_live_plot_writes_png_each_epoch(data, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    X, y, Xv, yv = data
    path = tmp_path / "live.png"
    sizes = []

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs=None):
            sizes.append(path.stat().st_size)

    lp = LivePlot(path)
    trainer = make_trainer(callbacks=[lp, Peek()])
    trainer.fit(X, y, epochs=3, validation_data=(Xv, yv))
    assert len(sizes) == 3 and all(s > 0 for s in sizes) and lp.n_draws == 3
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.shape[1] > 600 and 200 < img.shape[0] < 800  # three panels side by side
    assert not list(tmp_path.glob("*.tmp*"))
    assert lp.history["loss"] == trainer.history["loss"] and lp.epochs == [0, 1, 2]
    trainer.fit(X, y, epochs=2)  # the same trainer continues the curves
    assert lp.epochs == [0, 1, 2, 3, 4] and len(lp.history["loss"]) == 5
    assert np.isnan(lp.history["val_loss"][-1])


def test_live_plot_every_and_headless_window(data, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    X, y, _, _ = data
    lp = LivePlot(tmp_path / "p.png", every=2)
    make_trainer(callbacks=[lp]).fit(X, y, epochs=3)
    assert lp.n_draws == 2  # epochs 2 and 3 (the last)
    with pytest.raises(ValueError):
        LivePlot(every=0)
    import matplotlib.pyplot as plt

    if plt.get_backend().lower() == "agg":
        win = LivePlot()
        with pytest.warns(FastnnWarning, match="path="):
            make_trainer(callbacks=[win]).fit(X, y, epochs=2)
        assert win.n_draws == 0
    del matplotlib
