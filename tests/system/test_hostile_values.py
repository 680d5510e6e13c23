"""Files that lie about their values, and restores that fail halfway.

- A structurally valid file whose values the model cannot hold (a NaN/Inf
  weight, bias or BatchNorm statistic, a negative variance, non-finite or
  negative optimizer moments) is refused with ``ModelFormatError`` ("invalid
  tensor value"), for every tensor of every seed network (every layer type),
  on every backend.
- ``load_checkpoint(path, trainer)`` is all or nothing: whichever check or
  step fails -- a value, the optimizer, the schedule, a callback, a layer RNG
  key -- the trainer's weights, buffers, epoch, optimizer state, step count,
  learning rate and every RNG are exactly as before.
"""
import importlib.util
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.errors import ModelFormatError
from fastnn.io.container import DTYPES

REPO = Path(__file__).resolve().parents[2]
PREFIX = struct.Struct("<8sIQ")
BACKENDS = [b for b in ("reference", "numba", "cython") if b in fnn.available_backends()]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", REPO / "scripts" / "fuzz_loaders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FZ = _fuzz_module()


def _split(raw):
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    return json.loads(raw[PREFIX.size:PREFIX.size + hlen]), bytearray(raw[PREFIX.size + hlen:])


def _pack(header, data):
    hb = json.dumps(header).encode()
    return PREFIX.pack(b"\x89FASTNN\n", 1, len(hb)) + hb + bytes(data)


def _poke(raw, tensor, value, index=0):
    """``raw`` with element ``index`` of ``tensor`` set to ``value`` (same size, valid structure)."""
    header, data = _split(raw)
    entry = header["tensors"][tensor]
    dtype = DTYPES[entry["dtype"]]
    index %= int(np.prod(entry["shape"]))
    begin = entry["offsets"][0] + index * dtype.itemsize
    data[begin:begin + dtype.itemsize] = np.array([value], dtype).tobytes()
    return _pack(header, data)


def _model_bytes(tmp_path, name):
    net = FZ.build_seed_network(name)
    net.save(tmp_path / "m.fnn")
    return (tmp_path / "m.fnn").read_bytes()


def _value_cases():
    out = []
    for name in FZ.seed_networks():
        net = FZ.build_seed_network(name)
        from fastnn.io import param_tensors

        for tensor, _ in param_tensors(net):
            for value in (np.nan, np.inf, -np.inf):
                out.append((name, tensor, value))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_values_in_any_tensor_are_refused(tmp_path, backend):
    failures = []
    raws = {}
    for name, tensor, value in _value_cases():
        raw = raws.setdefault(name, _model_bytes(tmp_path, name))
        bad = _poke(raw, tensor, value, index=-1 if "W" in tensor else 0)
        try:
            fnn.io.load_network(io.BytesIO(bad), backend=backend)
        except ModelFormatError as exc:
            if "invalid tensor value" not in str(exc) or tensor.split(".")[2] not in str(exc):
                failures.append(f"{name} {tensor}={value}: other reason: {exc}")
        else:
            failures.append(f"{name} {tensor}={value}: loaded")
    assert not failures, "\n".join(failures)


def test_negative_batchnorm_variance_is_refused(tmp_path):
    raw = _model_bytes(tmp_path, "model-f64-BatchNorm")
    with pytest.raises(ModelFormatError, match="negative variance"):
        fnn.Network.load(io.BytesIO(_poke(raw, "buffers.1.running_var", -0.5, index=2)))
    fnn.Network.load(io.BytesIO(_poke(raw, "buffers.1.running_var", 0.0, index=2)))  # zero is a variance


# ---------------------------------------------------------------------------- checkpoints

OPTIMIZERS = {"Adam": lambda: fnn.Adam(1e-2), "SGD": lambda: fnn.SGD(0.05, momentum=0.9),
              "RMSprop": lambda: fnn.RMSprop(1e-2), "Adagrad": lambda: fnn.Adagrad(0.05)}


def _trainer(opt="Adam", callbacks=(), lr=None, seed=0):
    net = FZ.build_seed_network("model-f64-BatchNorm", seed=seed)
    optimizer = OPTIMIZERS[opt]()
    if lr is not None:
        optimizer.lr = lr
    return fnn.Trainer(net, loss="binary_cross_entropy", optimizer=optimizer, batch_size=8, seed=seed, verbose=0,
                       callbacks=list(callbacks))


def _dropout_trainer(seed=0, callbacks=()):
    net = fnn.Network([fnn.Dense(3, 4, "relu"), fnn.BatchNorm(), fnn.Dropout(0.3), fnn.Dense(2)], seed=seed,
                      dtype="float64")
    return fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=8, seed=seed, verbose=0,
                       callbacks=list(callbacks))


def _data():
    rng = np.random.default_rng(0)
    return rng.random((24, 3)), rng.integers(0, 2, 24)


def _checkpoint(tmp_path, tr, epochs=2):
    X, y = _data()
    tr.fit(X, np.eye(2)[y] if tr.loss.name == "binary_cross_entropy" else y, epochs=epochs)
    path = tmp_path / "c.ckpt"
    fnn.save_checkpoint(path, tr)
    return path.read_bytes()


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_optimizer_moments_are_refused(tmp_path, opt, value):
    raw = _checkpoint(tmp_path, _trainer(opt), epochs=1)
    header, _ = _split(raw)
    slots = header["tensors"]["optimizer.state"]["shape"][0]
    n = header["tensors"]["optimizer.state"]["shape"][1]
    for slot in range(slots):
        bad = _poke(raw, "optimizer.state", value, index=slot * n + 1)
        for into in (None, _trainer(opt)):
            with pytest.raises(ModelFormatError, match="invalid tensor value"):
                fnn.load_checkpoint(io.BytesIO(bad), into)
        with pytest.raises(ModelFormatError, match="invalid tensor value"):  # a poisoned file, even if
            fnn.Network.load(io.BytesIO(bad))                                # the network skips the moments


@pytest.mark.parametrize("opt,slot", [("Adam", 1), ("RMSprop", 0), ("Adagrad", 0)])
def test_negative_squared_gradient_sums_are_refused(tmp_path, opt, slot):
    raw = _checkpoint(tmp_path, _trainer(opt), epochs=1)
    n = _split(raw)[0]["tensors"]["optimizer.state"]["shape"][1]
    bad = _poke(raw, "optimizer.state", -1e-3, index=slot * n)
    for into in (None, _trainer(opt)):
        with pytest.raises(ModelFormatError, match="negative"):
            fnn.load_checkpoint(io.BytesIO(bad), into)
    # SGD's momentum buffer may be negative: still loads
    fnn.load_checkpoint(io.BytesIO(_poke(_checkpoint(tmp_path, _trainer("SGD"), 1), "optimizer.state", -1.0)))


def _state(tr):
    """Everything a restore may touch, as plain comparable data."""
    net, opt = tr.network, tr.optimizer
    return {
        "params": net.params.copy(), "buffers": net.buffers.copy(), "epoch": tr.epoch, "task": net.task,
        "rng": json.dumps(tr.rng.bit_generator.state, default=str),
        "opt_state": None if opt.state is None else opt.state.copy(), "iterations": opt.iterations,
        "lr": repr(opt.lr),
        "schedule": json.dumps(opt.lr.state_dict()) if hasattr(opt.lr, "state_dict") else None,
        "layer_rngs": [json.dumps(l.rng.bit_generator.state, default=str) for l in net.layers
                       if hasattr(l, "rng")],
        "callbacks": [json.dumps(cb.state_dict()) for cb in tr.callbacks if hasattr(cb, "state_dict")],
    }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


class _StatefulSchedule(fnn.Schedule):
    """A schedule with state (like a plateau-driven one); refuses a state on demand."""

    def __init__(self, lr=0.01):
        self.lr = lr
        self.scale = 1.0
        self.refuse = False

    def _rates(self, t):
        return np.full(t.shape, self.lr * self.scale)

    def get_config(self):
        return {"lr": self.lr}

    def state_dict(self):
        return {"scale": self.scale}

    def load_state_dict(self, state):
        self.scale = float(state["scale"])  # changes state, then fails: the rollback must undo it
        if self.refuse and self.scale == 0.5:  # the checkpoint's state (its own comes back fine)
            raise ValueError("refused")


def _fitted_trainer_and_checkpoint(tmp_path, schedule=False):
    cb = fnn.ModelCheckpoint(str(tmp_path / "best.fnn"), monitor="loss")
    tr = _dropout_trainer(seed=1, callbacks=[cb])
    if schedule:
        tr.optimizer.lr = _StatefulSchedule()
        tr.optimizer.lr.scale = 0.5
    raw = _checkpoint(tmp_path, tr, epochs=2)
    cb2 = fnn.ModelCheckpoint(str(tmp_path / "best2.fnn"), monitor="loss")
    fresh = _dropout_trainer(seed=7, callbacks=[cb2])
    if schedule:
        fresh.optimizer.lr = _StatefulSchedule()
    X, y = _data()
    fresh.fit(X, y, epochs=1)  # a trainer with state of its own, which a failed restore must keep
    return raw, fresh


def _mutate(raw, fn):
    header, data = _split(raw)
    fn(header)
    return _pack(header, data)


FAILURE_POINTS = {
    # phase 1: the file's own checks
    "NaN weight": lambda raw: _poke(raw, "layers.0.W", np.nan),
    "negative running variance": lambda raw: _poke(raw, "buffers.1.running_var", -1.0),
    "Inf optimizer moment": lambda raw: _poke(raw, "optimizer.state", np.inf, 3),
    "layer RNG key not an integer": lambda raw: _mutate(raw, lambda h: h["training"]["layer_rngs"].update(
        {"²": h["training"]["layer_rngs"]["2"]})),
    "layer RNG key of a layer without RNG": lambda raw: _mutate(raw, lambda h: h["training"]["layer_rngs"].update(
        {"0": h["training"]["layer_rngs"]["2"]})),
    "layer RNG key past the last layer": lambda raw: _mutate(raw, lambda h: h["training"]["layer_rngs"].update(
        {"9": h["training"]["layer_rngs"]["2"]})),
    # phase 2: the state only the trainer's objects can judge, after other state was already applied
    "callback state refused": lambda raw: _mutate(raw, lambda h: h["training"]["callbacks"][0]["state"].update(
        best="not a number")),
    "trainer epoch refused by the trainer": None,  # see test: Trainer.load_state_dict raising
}


@pytest.mark.parametrize("point", sorted(FAILURE_POINTS))
def test_failed_restore_changes_nothing(tmp_path, point, monkeypatch):
    raw, tr = _fitted_trainer_and_checkpoint(tmp_path)
    if FAILURE_POINTS[point] is None:
        bad = raw

        def refuse(self, state):
            self.epoch = 99  # partly applied, then failing
            raise ValueError("refused")
        monkeypatch.setattr(fnn.Trainer, "load_state_dict", refuse)
    else:
        bad = FAILURE_POINTS[point](raw)
    before = _state(tr)
    with pytest.raises((ModelFormatError, ValueError)):
        fnn.load_checkpoint(io.BytesIO(bad), tr)
    _assert_same(before, _state(tr))
    with pytest.raises((ModelFormatError, ValueError)):  # and through fit(resume_from=...), reseeded
        path = tmp_path / "bad.ckpt"
        path.write_bytes(bad)
        X, y = _data()
        tr.fit(X, y, epochs=3, resume_from=path, seed=123)
    _assert_same(before, _state(tr))


def test_failed_schedule_restore_changes_nothing(tmp_path):
    raw, tr = _fitted_trainer_and_checkpoint(tmp_path, schedule=True)
    tr.optimizer.lr.refuse = True
    before = _state(tr)
    with pytest.raises(ModelFormatError, match="schedule"):
        fnn.load_checkpoint(io.BytesIO(raw), tr)
    _assert_same(before, _state(tr))
    tr.optimizer.lr.refuse = False
    fnn.load_checkpoint(io.BytesIO(raw), tr)  # the same file restores when nothing refuses it
    assert tr.optimizer.lr.scale == 0.5 and tr.epoch == 2


def test_good_restore_still_restores_everything(tmp_path):
    raw, tr = _fitted_trainer_and_checkpoint(tmp_path)
    src = fnn.load_checkpoint(io.BytesIO(raw))
    fnn.load_checkpoint(io.BytesIO(raw), tr)
    np.testing.assert_array_equal(tr.network.params, src["network"].params)
    np.testing.assert_array_equal(tr.network.buffers, src["network"].buffers)
    assert tr.epoch == 2 and tr.optimizer.iterations == src["iterations"]
    assert tr.network.layers[2].key == src["network"].layers[2].key
