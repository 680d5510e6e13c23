"""Training checkpoints: state round trip, exact resume (in fresh processes), ModelCheckpoint."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.checkpoint import ModelCheckpoint, load_checkpoint, save_checkpoint
from fastnn.errors import ModelFormatError
from fastnn.io import read_header
from fastnn.schedules import CosineDecay

REPO = Path(__file__).resolve().parents[2]


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64) + (X[:, 2] > 0.7)
    return X, y


def _trainer(dropout=False, backend="reference", optimizer=None, callbacks=None, dtype="float32"):
    layers = [fnn.Dense(8, 16, "relu")] + ([fnn.Dropout(0.2)] if dropout else []) + [fnn.Dense(16, 3)]
    net = fnn.Network(layers, seed=1, backend=backend, dtype=dtype)
    opt = optimizer or fnn.Adam(CosineDecay(1e-2, total_steps=40, warmup_steps=5))
    return fnn.Trainer(net, optimizer=opt, batch_size=32, seed=2, verbose=0, callbacks=callbacks)


def test_checkpoint_round_trip(tmp_path):
    X, y = _data()
    t = _trainer(dropout=True)
    t.fit(X, y, epochs=2)
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, t, metadata={"run": "a"}, logs={"loss": 0.5, "bad": float("nan"), "s": "x"})
    info = load_checkpoint(path)
    assert info["epoch"] == 2 and info["iterations"] == 16
    np.testing.assert_array_equal(info["network"].params, t.network.params)
    np.testing.assert_array_equal(info["optimizer_state"], t.optimizer.state)
    assert info["optimizer"]["name"] == "Adam"
    assert info["lr"]["value"] is None and info["lr"]["schedule_config"]["name"] == "CosineDecay"
    assert info["lr"]["current"] == pytest.approx(t.optimizer.current_lr)
    assert info["logs"] == {"loss": 0.5}
    assert info["metadata"] == {"run": "a"}
    assert info["trainer_state"]["rng_state"] == t.rng.bit_generator.state
    header = read_header(path)
    assert header["kind"] == "checkpoint" and header["training"]["trainer"]["epoch"] == 2
    # a checkpoint is also a model file
    np.testing.assert_array_equal(fnn.Network.load(path).params, t.network.params)


def test_restore_into_trainer(tmp_path):
    X, y = _data()
    a = _trainer(dropout=True)
    a.fit(X, y, epochs=1)
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, a)
    b = _trainer(dropout=True)
    load_checkpoint(path, trainer=b)
    assert b.epoch == 1 and b.optimizer.iterations == a.optimizer.iterations
    np.testing.assert_array_equal(b.network.params, a.network.params)
    np.testing.assert_array_equal(b.optimizer.state, a.optimizer.state)
    assert b.rng.bit_generator.state == a.rng.bit_generator.state
    assert b.network.layers[1].rng.bit_generator.state == a.network.layers[1].rng.bit_generator.state


def test_constant_lr_is_restored_with_a_warning(tmp_path):
    X, y = _data()
    a = _trainer(optimizer=fnn.Adam(3e-3))
    a.fit(X, y, epochs=1)
    a.optimizer.lr = 1e-3  # as a plateau callback would
    save_checkpoint(tmp_path / "c.ckpt", a)
    b = _trainer(optimizer=fnn.Adam(3e-3))
    with pytest.warns(UserWarning, match="restoring the checkpoint's learning rate 0.001"):
        load_checkpoint(tmp_path / "c.ckpt", trainer=b)
    assert b.optimizer.lr == 1e-3


def test_mismatches_raise_and_change_nothing(tmp_path):
    X, y = _data()
    a = _trainer()
    a.fit(X, y, epochs=1)
    save_checkpoint(tmp_path / "c.ckpt", a)
    other = fnn.Trainer(fnn.Network([fnn.Dense(8, 4, "relu"), fnn.Dense(4, 3)], seed=0, backend="reference"),
                        optimizer=fnn.Adam(1e-3), verbose=0)
    before = other.network.params.copy()
    with pytest.raises(ValueError, match="differs from the trainer's"):
        load_checkpoint(tmp_path / "c.ckpt", trainer=other)
    np.testing.assert_array_equal(other.network.params, before)
    sgd = _trainer(optimizer=fnn.SGD(0.1))
    before = sgd.network.params.copy()
    with pytest.raises(ValueError, match="trained with Adam, but the trainer uses SGD"):
        load_checkpoint(tmp_path / "c.ckpt", trainer=sgd)
    np.testing.assert_array_equal(sgd.network.params, before)
    assert sgd.epoch == 0 and sgd.optimizer.iterations == 0


def test_model_file_is_not_a_checkpoint(tmp_path):
    net = fnn.Network([fnn.Dense(8, 3)], seed=0)
    net.save(tmp_path / "m.fnn")
    with pytest.raises(ModelFormatError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "m.fnn")


def test_corrupt_training_state_is_rejected(tmp_path):
    X, y = _data()
    a = _trainer()
    a.fit(X, y, epochs=1)
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, a)
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[12:20], "little")
    header = json.loads(raw[20:20 + hlen])

    def rewrite(mutate):
        h = json.loads(json.dumps(header))
        mutate(h)
        text = json.dumps(h).encode()
        bad = tmp_path / "bad.ckpt"
        bad.write_bytes(raw[:12] + len(text).to_bytes(8, "little") + text + raw[20 + hlen:])
        return bad

    cases = [
        (lambda h: h["training"]["trainer"]["rng_state"].update(bit_generator="MT19937"), "PCG64 generator state"),
        (lambda h: h["training"]["trainer"]["rng_state"]["state"].update(state=-1), "PCG64 generator state"),
        (lambda h: h["training"]["trainer"].update(epoch=-1), "epoch must be a non-negative integer"),
        (lambda h: h["training"]["optimizer"].update(has_state=False), r"unexpected tensor"),
        (lambda h: h["tensors"]["optimizer.state"].update(shape=[1, 2 * a.network.n_params]),
         r"tensor shape mismatch: 'optimizer.state'"),
        (lambda h: h.pop("training"), "needs a 'training' object"),
    ]
    for mutate, pattern in cases:
        with pytest.raises(ModelFormatError, match=pattern):
            load_checkpoint(rewrite(mutate), trainer=_trainer())


# ---------------------------------------------------------------------------- exact resume, in fresh processes

_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    import fastnn as fnn
    from fastnn.checkpoint import ModelCheckpoint
    from fastnn.schedules import CosineDecay

    mode, cases = sys.argv[1], sys.argv[2:]
    rng = np.random.default_rng(0)
    X = rng.random((300, 12)).astype(np.float32)
    y = (X[:, :3].sum(1) > 1.5).astype(np.int64) + (X[:, 3] > 0.6)
    for case in cases:  # backend:variant:output prefix
        backend, variant, out = case.split(":", 2)
        extra = {"plain": [], "dropout": [fnn.Dropout(0.3)], "batchnorm": [fnn.BatchNorm()]}[variant]
        layers = [fnn.Dense(12, 32, "relu")] + extra + [fnn.Dense(32, 16, "tanh"), fnn.Dense(16, 3)]
        net = fnn.Network(layers, seed=4, backend=backend)
        ckpt = ModelCheckpoint(out + ".ckpt", save_training_state=True)
        trainer = fnn.Trainer(net, optimizer=fnn.Adam(CosineDecay(5e-3, total_steps=30, warmup_steps=3)),
                              batch_size=32, seed=7, verbose=0, callbacks=[ckpt])
        if mode == "straight":
            trainer.fit(X, y, epochs=3)
        elif mode == "first":
            trainer.fit(X, y, epochs=1)
        else:
            trainer.fit(X, y, epochs=3, resume_from=out + ".ckpt")
        assert trainer.epoch == (1 if mode == "first" else 3)
        np.save(out + ".params.npy", np.concatenate([net.params, net.buffers]))
        np.save(out + ".state.npy", trainer.optimizer.state)
""")


def _run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


_CASES = [("reference", "dropout"), ("reference", "batchnorm"), ("reference", "plain"), ("numba", "plain"),
          ("cython", "plain")]


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    """3 epochs straight == 1 epoch + checkpoint, then a new process resumes to 3 (three processes in all):
    bit-identical on the reference backend, within 1e-6 on the compiled ones."""
    cases = [(b, v) for b, v in _CASES if b in fnn.available_backends()]
    assert ("reference", "plain") in cases
    names = [f"{b}-{v}" for b, v in cases]
    _run(["straight"] + [f"{b}:{v}:{tmp_path / ('a-' + n)}" for (b, v), n in zip(cases, names)], tmp_path)
    _run(["first"] + [f"{b}:{v}:{tmp_path / ('b-' + n)}" for (b, v), n in zip(cases, names)], tmp_path)
    _run(["resume"] + [f"{b}:{v}:{tmp_path / ('b-' + n)}" for (b, v), n in zip(cases, names)], tmp_path)
    for (backend, _), name in zip(cases, names):
        a = np.load(tmp_path / f"a-{name}.params.npy")
        b = np.load(tmp_path / f"b-{name}.params.npy")
        sa, sb = np.load(tmp_path / f"a-{name}.state.npy"), np.load(tmp_path / f"b-{name}.state.npy")
        assert not np.array_equal(a, np.load(tmp_path / f"a-{names[0]}.params.npy")) or name == names[0]
        if backend == "reference":
            np.testing.assert_array_equal(a, b, err_msg=name)
            np.testing.assert_array_equal(sa, sb, err_msg=name)
        else:
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg=name)
            np.testing.assert_allclose(sb, sa, rtol=1e-6, atol=1e-9, err_msg=name)


# ---------------------------------------------------------------------------- ModelCheckpoint

class _FakeTrainer:
    def __init__(self):
        self.network = fnn.Network([fnn.Dense(2, 2)], seed=0)


def _saves(cb, values, key="val_loss"):
    written = []
    for epoch, v in enumerate(values):
        cb.last_path = None
        cb.on_epoch_end(epoch, {key: v, "loss": 1.0})
        written.append(cb.last_path is not None)
    return written


def test_model_checkpoint_best_only_min_and_max(tmp_path):
    cb = ModelCheckpoint(tmp_path / "best.fnn", monitor="val_loss", save_best_only=True)
    cb.set_trainer(_FakeTrainer())
    assert _saves(cb, [0.5, 0.6, 0.4, float("nan"), 0.4, 0.3]) == [True, False, True, False, False, True]
    assert cb.best == 0.3 and cb.best_epoch == 5
    assert read_header(tmp_path / "best.fnn")["metadata"] == {"epoch": "6", "val_loss": "0.3"}
    acc = ModelCheckpoint(tmp_path / "acc.fnn", monitor="val_accuracy", save_best_only=True)
    acc.set_trainer(_FakeTrainer())
    assert acc.mode == "max"
    assert _saves(acc, [0.5, 0.7, 0.6], key="val_accuracy") == [True, True, False]


def test_model_checkpoint_every_epoch_with_formatted_path(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.fnn"), metadata={"who": "test"})
    cb.set_trainer(_FakeTrainer())
    assert _saves(cb, [0.5, 0.25]) == [True, True]
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.50.fnn", "m-02-0.25.fnn"]
    assert read_header(tmp_path / "m-02-0.25.fnn")["metadata"]["who"] == "test"


def test_model_checkpoint_warns_once_without_monitor(tmp_path):
    cb = ModelCheckpoint(tmp_path / "best.fnn", save_best_only=True)
    cb.set_trainer(_FakeTrainer())
    with pytest.warns(UserWarning, match="'val_loss' is not in the logs"):
        cb.on_epoch_end(0, {"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cb.on_epoch_end(1, {"loss": 1.0})
    assert not os.listdir(tmp_path)


def test_model_checkpoint_in_fit_and_best_survives_resume(tmp_path):
    X, y = _data()
    Xv, yv = _data(80, seed=1)

    def make():
        best = ModelCheckpoint(tmp_path / "best.fnn", monitor="val_loss", save_best_only=True)
        last = ModelCheckpoint(tmp_path / "last.ckpt", save_training_state=True)
        return _trainer(callbacks=[best, last]), best

    t, best = make()
    t.fit(X, y, epochs=2, validation_data=(Xv, yv))
    assert best.best == pytest.approx(min(t.history["val_loss"]))
    loaded = fnn.Network.load(tmp_path / "best.fnn")
    assert loaded.task == "classification"
    t2, best2 = make()
    t2.fit(X, y, epochs=3, validation_data=(Xv, yv), resume_from=tmp_path / "last.ckpt")
    assert t2.epoch == 3 and len(t2.history) == 1
    assert best2.best <= best.best  # the restored best value was the bar to beat


def test_continue_saved_model_with_lower_learning_rate(tmp_path):
    """The documented recipe: load the model, new Trainer with a new optimizer."""
    X, y = _data()
    t = _trainer(optimizer=fnn.Adam(1e-2))
    t.fit(X, y, epochs=3)
    t.network.save(tmp_path / "m.fnn")
    loss_before = t.evaluate(X, y)["loss"]
    net = fnn.Network.load(tmp_path / "m.fnn")
    t2 = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=32, seed=0, verbose=0)
    assert t2.evaluate(X, y)["loss"] == pytest.approx(loss_before, rel=1e-5)
    t2.fit(X, y, epochs=2)
    assert t2.optimizer.iterations == 16 and t2.optimizer.current_lr == 1e-3
    assert t2.evaluate(X, y)["loss"] < loss_before
