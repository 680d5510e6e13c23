"""Model files: round trips for every layer type and dtype, atomic writes, malformed files."""
import io as _stdio
import json
import os
import struct

import numpy as np
import pytest

import fastnn as fnn
from fastnn import activations
from fastnn.errors import ModelFormatError
from fastnn.io import (DTYPES, FORMAT_VERSION, MAGIC, MAX_HEADER_BYTES, atomic_write, load_network, read_header,
                       save_network)

BACKEND = "reference"


def _net(dtype, activation="relu", alpha=None, dropout=True, seed=0):
    layers = [fnn.Dense(6, 5, activation, alpha=alpha)]
    if dropout:
        layers.append(fnn.Dropout(0.25))
    layers.append(fnn.Dense(5, 3))
    return fnn.Network(layers, seed=seed, dtype=dtype, backend=BACKEND)


def _same_network(a, b):
    assert a.get_config() == b.get_config()
    assert a.params.dtype == b.params.dtype
    np.testing.assert_array_equal(a.params, b.params)
    for (na, va), (nb, vb) in zip(a.parameters(), b.parameters()):
        assert na == nb
        np.testing.assert_array_equal(va, vb)


# ---------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", activations.NAMES)
def test_round_trip_every_activation(tmp_path, dtype, activation):
    net = _net(dtype, activation, dropout=False)
    path = tmp_path / "m.fnn"
    net.save(path)
    _same_network(net, fnn.Network.load(path))
    loaded = load_network(path, backend=BACKEND)
    X = np.random.default_rng(1).random((4, 6))
    np.testing.assert_array_equal(net.forward(X), loaded.forward(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_dropout_alpha_task_and_init(tmp_path, dtype):
    net = fnn.Network([fnn.Dense(6, 7, "leaky_relu", alpha=0.2, init="glorot_normal"), fnn.Dropout(0.5),
                       fnn.Dense(7, 4, "elu", alpha=0.7), fnn.Dropout(0.1), fnn.Dense(4, 1, "sigmoid")],
                      seed=3, dtype=dtype, backend=BACKEND)
    net.task = "classification"
    net.save(tmp_path / "m.fnn")
    loaded = load_network(tmp_path / "m.fnn", backend=BACKEND)
    _same_network(net, loaded)
    assert loaded.task == "classification"
    assert [type(l).__name__ for l in loaded.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert loaded.layers[0].alpha == 0.2 and loaded.layers[2].alpha == 0.7
    assert loaded.layers[1].rate == 0.5
    X = np.random.default_rng(2).random((5, 6))
    np.testing.assert_array_equal(net.predict(X), loaded.predict(X))
    np.testing.assert_array_equal(net.predict_proba(X), loaded.predict_proba(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_normalization_layers_with_running_stats(tmp_path, dtype):
    net = fnn.Network([fnn.BatchNorm(6), fnn.Dense(6, 7, "relu"), fnn.BatchNorm(momentum=0.8, eps=1e-3),
                       fnn.LayerNorm(), fnn.Dense(7, 3)], seed=0, dtype=dtype, backend=BACKEND)
    rng = np.random.default_rng(0)
    X, y = rng.normal(2.0, 3.0, (64, 6)), rng.integers(0, 3, 64)
    fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, seed=0, verbose=0).fit(X, y, epochs=2)
    assert net.buffers.size == 2 * 6 + 2 * 7
    assert not np.allclose(net.layers[0].buffers["running_mean"], 0)  # the stats really were trained
    net.save(tmp_path / "m.fnn")
    header = read_header(tmp_path / "m.fnn")
    assert "buffers.0.running_mean" in header["tensors"] and "buffers.2.running_var" in header["tensors"]
    loaded = load_network(tmp_path / "m.fnn", backend=BACKEND)
    _same_network(net, loaded)
    np.testing.assert_array_equal(loaded.buffers, net.buffers)
    for a, b in zip(net.layers, loaded.layers):
        for name, value in (getattr(a, "buffers", None) or {}).items():
            np.testing.assert_array_equal(b.buffers[name], value)
    np.testing.assert_array_equal(net.forward(X), loaded.forward(X))  # inference uses the running stats


def test_every_registered_layer_type_is_covered():
    from fastnn.layers import LAYER_TYPES

    known = {"Dense", "Dropout", "BatchNorm", "LayerNorm", "Flatten"}
    # issue 11: round trips in tests/layers/test_conv.py (test_model_file_and_checkpoint_round_trip)
    known |= {"Conv2D", "MaxPool2D", "AveragePooling2D", "GlobalAveragePooling2D"}
    # tests/layers/test_activation.py (test_a_network_with_activation_layers_saves_and_loads)
    known |= {"Activation"}
    # issue 12: tests/io/test_io_sequence.py
    known |= {"SimpleRNN", "LSTM", "GRU", "Bidirectional", "Embedding", "Masking", "PositionalEncoding",
              "GlobalAveragePooling1D", "TimeDistributed", "MultiHeadAttention", "TransformerBlock"}
    assert set(LAYER_TYPES) <= known, "add a round-trip test for new layer types"


def test_file_layout_and_metadata(tmp_path):
    net = _net("float32")
    path = tmp_path / "m.fnn"
    save_network(net, path, metadata={"note": "hello", "epoch": "3"})
    raw = path.read_bytes()
    magic, version, hlen = struct.unpack("<8sIQ", raw[:20])
    assert magic == MAGIC and version == FORMAT_VERSION
    assert (20 + hlen) % 64 == 0  # tensor data aligned
    header = json.loads(raw[20:20 + hlen])
    assert header["kind"] == "model"
    assert header["metadata"] == {"note": "hello", "epoch": "3"}
    assert list(header["tensors"]) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    assert header["tensors"]["layers.0.W"] == {"dtype": "float32", "shape": [6, 5], "offsets": [0, 120]}
    assert len(raw) == 20 + hlen + net.params.nbytes
    np.testing.assert_array_equal(np.frombuffer(raw[20 + hlen:], "<f4"), net.params)
    assert read_header(path)["metadata"]["note"] == "hello"


def test_load_from_file_object_and_backend(tmp_path):
    net = _net("float64")
    net.save(tmp_path / "m.fnn")
    buf = _stdio.BytesIO((tmp_path / "m.fnn").read_bytes())
    loaded = load_network(buf, backend="reference")
    _same_network(net, loaded)
    assert loaded.backend == "reference"


def test_save_rejects_unregistered_layer_type(tmp_path):
    class MyDense(fnn.Dense):
        pass

    net = fnn.Network([MyDense(3, 2)], seed=0, backend=BACKEND)
    with pytest.raises(ValueError, match="not a registered layer type"):
        net.save(tmp_path / "m.fnn")
    assert not os.listdir(tmp_path)


def test_save_rejects_non_string_metadata(tmp_path):
    with pytest.raises(TypeError, match="str to str"):
        save_network(_net("float32"), tmp_path / "m.fnn", metadata={"epoch": 3})


# ---------------------------------------------------------------------------- atomic writes

def test_atomic_write_failure_leaves_old_file(tmp_path):
    path = tmp_path / "m.fnn"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"partial new conte")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["m.fnn"]  # temp file removed


def test_save_replaces_atomically_and_keeps_mode(tmp_path):
    path = tmp_path / "m.fnn"
    a, b = _net("float32", seed=0), _net("float32", seed=1)
    a.save(path)
    os.chmod(path, 0o640)
    b.save(path)
    _same_network(b, fnn.Network.load(path))
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["m.fnn"]


def test_failed_save_keeps_previous_model(tmp_path, monkeypatch):
    path = tmp_path / "m.fnn"
    good = _net("float32")
    good.save(path)
    import fastnn.io as fio

    real = fio.container._le

    def explode(arr):
        if arr.size == 3:  # the last bias: fail in the middle of writing
            raise OSError("no space left on device")
        return real(arr)

    monkeypatch.setattr(fio.container, "_le", explode)
    with pytest.raises(OSError):
        _net("float32", seed=5).save(path)
    monkeypatch.undo()
    _same_network(good, fnn.Network.load(path))
    assert os.listdir(tmp_path) == ["m.fnn"]


# ---------------------------------------------------------------------------- malformed files

def _good_header(dtype="float32"):
    itemsize = np.dtype(dtype).itemsize
    return {
        "kind": "model", "fastnn_version": "0.1.0",
        "network": {"dtype": dtype, "task": None,
                    "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 3, "activation": "relu",
                                                           "init": "auto"}}]},
        "tensors": {"layers.0.W": {"dtype": dtype, "shape": [2, 3], "offsets": [0, 6 * itemsize]},
                    "layers.0.b": {"dtype": dtype, "shape": [3], "offsets": [6 * itemsize, 9 * itemsize]}},
        "metadata": {},
    }


def _raw_file(path, header=None, data=None, *, magic=MAGIC, version=FORMAT_VERSION, header_bytes=None,
              hlen=None):
    if header is None:
        header = _good_header()
    if header_bytes is None:
        header_bytes = json.dumps(header).encode()
    if data is None:
        data = np.arange(9, dtype="<f4").tobytes()
    hlen = len(header_bytes) if hlen is None else hlen
    path.write_bytes(struct.pack("<8sIQ", magic, version, hlen) + header_bytes + data)
    return path


def test_hand_built_file_loads(tmp_path):
    net = load_network(_raw_file(tmp_path / "ok.fnn"))
    np.testing.assert_array_equal(net.params, np.arange(9, dtype=np.float32))
    np.testing.assert_array_equal(net.layers[0].W, np.arange(6, dtype=np.float32).reshape(2, 3))


def _mutated(mutate):
    h = _good_header()
    mutate(h)
    return h


MALFORMED = {
    "empty file": (b"", r"truncated: 0 bytes"),
    "magic only": (MAGIC + b"\x01\x00", r"truncated: 10 bytes, the fixed 20-byte prefix"),
    "zero header length": (struct.pack("<8sIQ", MAGIC, 1, 0), r"header length 0"),
    "bad magic": (dict(magic=b"\x80\x02PICKL"), r"bad magic"),
    "pickle file": (b"\x80\x04\x95" + bytes(40), r"bad magic"),
    "numpy npz file": (b"PK\x03\x04" + bytes(40), r"bad magic"),
    "future version": (dict(version=2), r"unsupported format version 2"),
    "version zero": (dict(version=0), r"unsupported format version 0"),
    "header over cap": (dict(hlen=MAX_HEADER_BYTES + 1), r"header length \d+ exceeds"),
    "header past end": (dict(hlen=10_000), r"truncated: the header claims"),
    "non-utf8 header": (dict(header_bytes=b'{"kind": "\xff\xfe"}'), r"not valid UTF-8"),
    "non-json header": (dict(header_bytes=b"{kind: model}"), r"not valid JSON"),
    "json array header": (dict(header_bytes=b"[1, 2]"), r"expected a JSON object"),
    "duplicate key": (dict(header_bytes=b'{"kind": "model", "kind": "model"}'), r"duplicate key 'kind'"),
    "nan in header": (dict(header_bytes=b'{"kind": NaN}'), r"non-finite number NaN"),
    "deep nesting": (dict(header_bytes=b"[" * 100_000 + b"]" * 100_000), r"not valid JSON"),
    "unknown key": (dict(header=_mutated(lambda h: h.update(code="import os"))), r"unexpected key"),
    "unknown layer type": (dict(header=_mutated(lambda h: h["network"]["layers"][0].update(type="os.system"))),
                           r"unknown layer type 'os.system'"),
    "width unknown": (dict(header=_mutated(lambda h: h["network"]["layers"].insert(0, {
        "type": "BatchNorm", "config": {"n_units": None, "momentum": 0.9, "eps": 1e-5}}))),
        r"invalid layer stack: layer 0 \(BatchNorm\) cannot be first"),
    "bad layer config": (dict(header=_mutated(lambda h: h["network"]["layers"][0]["config"].update(n_in=-2))),
                         r"invalid layer 0 \(Dense\)"),
    "unknown config key": (dict(header=_mutated(lambda h: h["network"]["layers"][0]["config"].update(cls="x"))),
                           r"invalid layer 0 \(Dense\).*unexpected keyword"),
    "object in config": (dict(header=_mutated(
        lambda h: h["network"]["layers"][0]["config"].update(activation={"__class__": "x"}))),
        r"config must be an object of JSON scalars"),
    "unknown tensor dtype": (dict(header=_mutated(lambda h: h["tensors"]["layers.0.b"].update(dtype="object"))),
                             r"unknown dtype 'object'"),
    "unknown network dtype": (dict(header=_mutated(lambda h: h["network"].update(dtype="float16"))),
                              r"unknown dtype 'float16' for the network"),
    "overlapping tensors": (dict(header=_mutated(lambda h: h["tensors"].update(
        {"layers.0.b": {"dtype": "float32", "shape": [3], "offsets": [20, 32]}})), data=bytes(36)),
        r"overlapping tensors"),
    "hole between tensors": (dict(header=_mutated(lambda h: h["tensors"].update(
        {"layers.0.b": {"dtype": "float32", "shape": [3], "offsets": [28, 40]}})), data=bytes(40)),
        r"gap between tensors"),
    "trailing bytes": (dict(data=bytes(36 + 5)), r"trailing bytes: 5 bytes"),
    "short data": (dict(data=bytes(30)), r"truncated: tensor data should be 36 bytes"),
    "extent mismatch": (dict(header=_mutated(lambda h: h["tensors"]["layers.0.b"].update(offsets=[24, 40])),
                             data=bytes(40)), r"tensor extent \[24, 40\)"),
    "shape byte-size overflow": (dict(header=_mutated(lambda h: h["tensors"]["layers.0.W"].update(
        shape=[2 ** 62, 2 ** 62]))), r"tensor too large"),
    "negative dimension": (dict(header=_mutated(lambda h: h["tensors"]["layers.0.W"].update(shape=[-2, -3]))),
                           r"non-negative integers"),
    "shape mismatch": (dict(header=_mutated(lambda h: h["tensors"]["layers.0.W"].update(shape=[3, 2]))),
                       r"tensor shape mismatch"),
    "missing tensor": (dict(header=_mutated(lambda h: h["tensors"].pop("layers.0.b")), data=bytes(24)),
                       r"missing tensor 'layers.0.b'"),
    "extra tensor": (dict(header=_mutated(lambda h: h["tensors"].update(
        {"evil": {"dtype": "float32", "shape": [1], "offsets": [36, 40]}})), data=bytes(40)),
        r"unexpected tensor"),
    "dtype mismatch": (dict(header=_mutated(lambda h: h["tensors"].update(
        {"layers.0.W": {"dtype": "float64", "shape": [2, 3], "offsets": [0, 48]},
         "layers.0.b": {"dtype": "float32", "shape": [3], "offsets": [48, 60]}})), data=bytes(60)),
        r"tensor dtype mismatch"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_rejected(tmp_path, case):
    kwargs, pattern = MALFORMED[case]
    path = tmp_path / "bad.fnn"
    if isinstance(kwargs, bytes):
        path.write_bytes(kwargs)
    else:
        _raw_file(path, **kwargs)
    with pytest.raises(ModelFormatError, match=pattern) as info:
        load_network(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_huge_declared_layer_fails_before_allocating(tmp_path):
    """A Dense(10**6, 10**6) claimed by a 36-byte file is refused by size, not by MemoryError."""
    h = _good_header()
    h["network"]["layers"][0]["config"].update(n_in=10 ** 6, n_out=10 ** 6)
    h["tensors"]["layers.0.W"]["shape"] = [10 ** 6, 10 ** 6]
    with pytest.raises(ModelFormatError, match="tensor too large"):
        load_network(_raw_file(tmp_path / "big.fnn", h))
    h["tensors"]["layers.0.W"]["shape"] = [2, 3]  # consistent tensors, inconsistent architecture
    with pytest.raises(ModelFormatError, match="tensor shape mismatch"):
        load_network(_raw_file(tmp_path / "big.fnn", h))


def test_truncated_real_file(tmp_path):
    path = tmp_path / "m.fnn"
    _net("float64").save(path)
    raw = path.read_bytes()
    for cut in (5, 19, 40, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(ModelFormatError, match="truncated"):
            load_network(path)


def test_load_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_network(tmp_path / "nope.fnn")


def test_dtype_registry_is_closed():
    assert set(DTYPES) == {"float32", "float64", "int64"}
    assert all(dt.byteorder in "<|=" and dt.kind in "fi" for dt in DTYPES.values())
