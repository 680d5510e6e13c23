"""Model files and checkpoints hold every sequence layer (issue 12): round trips, and hostile configs refused."""
import json

import numpy as np
import pytest

import fastnn as fnn
from fastnn.errors import ModelFormatError
from fastnn.io import load_network, read_header


def _every_sequence_layer(dtype):
    return fnn.Network([fnn.Embedding(7, 8, mask_zero=True), fnn.Masking(0.5), fnn.PositionalEncoding(),
                        fnn.TransformerBlock(2, 12, dropout=0.1),
                        fnn.MultiHeadAttention(4, causal=True), fnn.TimeDistributed(fnn.Dense(6, "tanh")),
                        fnn.GRU(5, return_sequences=True, reset_after=False), fnn.GRU(5, return_sequences=True),
                        fnn.SimpleRNN(4, return_sequences=True), fnn.Bidirectional(fnn.LSTM(3, return_sequences=True)),
                        fnn.GlobalAveragePooling1D(), fnn.Dense(2)], input_shape=(9,), seed=0, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_of_every_sequence_layer(tmp_path, dtype):
    net = _every_sequence_layer(dtype)
    net.task = "classification"
    net.save(tmp_path / "m.fnn")
    assert read_header(tmp_path / "m.fnn")["network"]["input_shape"] == [9]
    loaded = load_network(tmp_path / "m.fnn")
    assert [type(a) for a in loaded.layers] == [type(a) for a in net.layers]
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in net.layers]
    np.testing.assert_array_equal(loaded.params, net.params)
    X = np.random.default_rng(0).integers(0, 7, (4, 9))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def _tamper(path, layer_index, config):
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[12:20], "little")
    header = json.loads(raw[20:20 + hlen])
    header["network"]["layers"][layer_index]["config"] = config
    text = json.dumps(header).encode()
    text += b" " * (-(20 + len(text)) % 64)  # keep the tensor data 64-byte aligned
    path.write_bytes(raw[:12] + len(text).to_bytes(8, "little") + text + raw[20 + hlen:])


@pytest.mark.parametrize("index,config", [
    (0, {"input_dim": 0, "output_dim": 8}),
    (0, {"input_dim": 7, "output_dim": 8, "mask_zero": 1}),
    (1, {"mask_value": "zero"}),
    (3, {"num_heads": 3, "ff_dim": 12, "dropout": 0.1, "causal": False}),   # 3 heads do not split 8
    (3, {"num_heads": 2, "ff_dim": 12, "dropout": 2.0, "causal": False}),
    (4, {"num_heads": 4, "key_dim": 3, "causal": True}),
    (5, {"layer_type": "Nope", "layer_config": []}),
    (5, {"layer_type": "Dense", "layer_config": "n_out=6"}),
    (6, {"units": -5, "return_sequences": True, "reset_after": False}),
    (9, {"layer_type": "LSTM", "layer_config": [["units", 0]]}),
    (9, {"layer_type": "Dense", "layer_config": [["units", 3]]}),
])
def test_loaded_configs_are_validated_like_constructor_arguments(tmp_path, index, config):
    net = _every_sequence_layer("float32")
    net.task = "classification"
    path = tmp_path / "m.fnn"
    net.save(path)
    _tamper(path, index, config)
    with pytest.raises(ModelFormatError):
        load_network(path)


def test_tampering_helper_keeps_a_valid_file_valid(tmp_path):
    """Control for the test above: re-writing a layer's own config leaves a loadable file."""
    net = _every_sequence_layer("float32")
    net.task = "classification"
    path = tmp_path / "m.fnn"
    net.save(path)
    _tamper(path, 3, net.layers[3].get_config())
    np.testing.assert_array_equal(load_network(path).params, net.params)
