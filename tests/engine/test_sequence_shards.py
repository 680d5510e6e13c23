"""Row shards of sequence networks (issue 12): sharded training equals serial per-layer training (float64,
padding masks and dropout masks included), and the trainer's choice between shards and the kernels' threads."""
import importlib

import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine, losses
from fastnn.engine.sharded import _shard_layers
from fastnn.kernels import available_backends

COMPILED = [b for b in available_backends() if b != "reference"]
CE = losses.get("cross_entropy")


def _sequences(n=45, T=6, F=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, T, F)), rng.integers(0, 3, n)


def _token_ids(n=45, T=6, seed=0):
    """Ids 1..8 with padding 0: post-padded, some rows shorter, one row all padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 9, (n, T)).astype(float)
    ids[:, T - 1:] = 0
    ids[::3, 2:] = 0
    ids[7] = 0
    return ids, rng.integers(0, 3, n)


NETWORKS = {
    "lstm": (lambda: [fnn.LSTM(6), fnn.Dense(3)], _sequences),
    "gru-bidirectional": (lambda: [fnn.Bidirectional(fnn.GRU(4, return_sequences=True)),
                                   fnn.GlobalAveragePooling1D(), fnn.Dense(3)], _sequences),
    "transformer-masks-dropout": (lambda: [fnn.Embedding(9, 8, mask_zero=True), fnn.PositionalEncoding(),
                                           fnn.TransformerBlock(2, 8, dropout=0.3), fnn.GlobalAveragePooling1D(),
                                           fnn.Dense(3)], _token_ids),
    "masking-rnn-attention": (lambda: [fnn.Masking(), fnn.SimpleRNN(5, return_sequences=True),
                                       fnn.MultiHeadAttention(1), fnn.TimeDistributed(fnn.Dense(4)),
                                       fnn.Flatten(), fnn.LayerNorm(), fnn.Dropout(0.3), fnn.Dense(3)],
                              lambda: _masked_steps()),
}


def _masked_steps():
    X, y = _sequences()
    X[:, 4:] = 0          # padding Masking finds
    X[::4, 2:] = 0
    return X, y


def _fit(name, backend, **kwargs):
    make, data = NETWORKS[name]
    X, y = data()
    net = fnn.Network(make(), input_shape=X.shape[1:], seed=0, dtype="float64", backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=20, seed=0, verbose=0, n_threads=2,
                     clip_norm=1.0, **kwargs)
    return net, tr.fit(X, y, epochs=2), tr.last_plan   # 3 steps per epoch, the last of 5 rows


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_sharded_training_equals_serial_training(name, backend):
    sharded, h_sharded, plan = _fit(name, backend, parallel="shards")
    serial, h_serial, plan_serial = _fit(name, backend, path="per-layer")
    assert plan["n_shards"] == 2 and plan_serial["n_shards"] == 1
    assert not np.array_equal(sharded.params, fnn.Network(NETWORKS[name][0](), input_shape=sharded.input_shape,
                                                          seed=0, dtype="float64").params)  # it trained
    np.testing.assert_allclose(sharded.params, serial.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_sharded["loss"], h_serial["loss"], rtol=1e-12)
    assert h_sharded["accuracy"] == h_serial["accuracy"]
    for a, b in zip(sharded.layers, serial.layers):  # the next standalone forward continues the step count
        assert getattr(a, "step", None) == getattr(b, "step", None)


def test_a_shard_draws_its_rows_transformer_dropout_masks():
    X, _ = _sequences(n=10)
    net = fnn.Network([fnn.TransformerBlock(1, 8, dropout=0.5)], input_shape=(6, 5), seed=0, dtype="float64")
    block = net.layers[0]
    block.step = 4
    whole = block.forward(X.reshape(10, -1), training=True)
    part = _shard_layers(net, np.zeros_like(net.grads))[0]
    part.step, part.row0 = 4, 6
    np.testing.assert_array_equal(part.forward(X[6:].reshape(4, -1), training=True), whole[6:])
    part.row0 = 0  # the masks do depend on the row: rows 6.. are not rows 0..
    assert not np.array_equal(part.forward(X[6:].reshape(4, -1), training=True), whole[6:])


def test_shard_copies_own_their_sub_layers_and_read_their_own_masks():
    net = fnn.Network(NETWORKS["transformer-masks-dropout"][0](), input_shape=(6,), seed=0, dtype="float64")
    grads = np.zeros_like(net.grads)
    copies = _shard_layers(net, grads)
    block, copy = net.layers[2], copies[2]
    for part in block._PARTS:  # own work buffers and caches, the same parameters, the shard's gradient
        assert getattr(copy, part) is not getattr(block, part)
    assert np.shares_memory(copy.ff1.params["W"], net.params) and np.shares_memory(copy.ff1.grads["W"], grads)
    assert copy._mask_source is copies[1] and copies[1]._mask_source is copies[0]


def _net(layers):
    return fnn.Network(layers, input_shape=(6,) if isinstance(layers[0], fnn.Embedding) else (6, 5), seed=0)


def test_which_layers_block_row_shards():
    assert engine.shard_blocker(_net(NETWORKS["masking-rnn-attention"][0]()), CE) == ""
    assert "layer 0 (TimeDistributed) cannot be split into row shards: the BatchNorm it wraps" in \
        engine.shard_blocker(_net([fnn.TimeDistributed(fnn.BatchNorm()), fnn.Flatten(), fnn.Dense(3)]), CE)
    assert "the Dropout it wraps draws masks" in \
        engine.shard_blocker(_net([fnn.TimeDistributed(fnn.Dropout(0.2)), fnn.Flatten(), fnn.Dense(3)]), CE)
    assert engine.shard_blocker(_net([fnn.TimeDistributed(fnn.Dropout(0.0)), fnn.Flatten(), fnn.Dense(3)]), CE) == ""


@pytest.mark.parametrize("layers, batch, threads, parallel, shards, why", [
    ([fnn.TransformerBlock(1, 8), fnn.Flatten(), fnn.Dense(3)], 32, 2, "auto", 2, "TransformerBlock (sequence"),
    ([fnn.MultiHeadAttention(1), fnn.GlobalAveragePooling1D(), fnn.Dense(3)], 16, 2, "auto", 2, "MultiHead"),
    ([fnn.LSTM(4), fnn.Dense(3)], 128, 2, "auto", 2, "LSTM"),
    ([fnn.Bidirectional(fnn.GRU(4)), fnn.Dense(3)], 32, 3, "auto", 3, "3 row shards: Bidirectional"),
    ([fnn.Embedding(9, 4), fnn.GlobalAveragePooling1D(), fnn.Dense(3)], 64, 2, "auto", 1, "no convolution"),
    ([fnn.Embedding(9, 4), fnn.GlobalAveragePooling1D(), fnn.Dense(3)], 64, 2, "shards", 2, "asked for"),
    ([fnn.TransformerBlock(1, 8), fnn.Flatten(), fnn.Dense(3)], 15, 2, "auto", 1, "thinner than 8 rows"),
    ([fnn.TransformerBlock(1, 8), fnn.Flatten(), fnn.Dense(3)], 64, 1, "auto", 1, "one thread"),
    ([fnn.TransformerBlock(1, 8), fnn.Flatten(), fnn.Dense(3)], 64, 2, "blas", 1, "parallel='blas'"),
    ([fnn.TimeDistributed(fnn.BatchNorm()), fnn.Flatten(), fnn.Dense(3)], 64, 2, "shards", 1, "BatchNorm"),
])
def test_the_rule_for_sequence_networks(layers, batch, threads, parallel, shards, why):
    net = _net(layers)
    n, reason = engine.choose_layer_shards(net, CE, "cython", threads, batch, parallel)
    assert n == shards and why in reason
    assert engine.choose_layer_shards(net, CE, "reference", threads, batch, parallel)[0] == 1


@pytest.mark.parametrize("layers, shards, threads_knob", [
    ([fnn.TransformerBlock(1, 8), fnn.Flatten(), fnn.Dense(3)], 2, None),
    ([fnn.LSTM(4), fnn.Dense(3)], 2, None),
    ([fnn.Masking(), fnn.GlobalAveragePooling1D(), fnn.Dense(3)], 1, 2),
])
def test_the_trainer_takes_the_rule(layers, shards, threads_knob, monkeypatch):
    seen = []
    real = engine.layer_threads
    monkeypatch.setattr(importlib.import_module("fastnn.trainer")._engine, "layer_threads", lambda kern, n: seen.append(n) or real(kern, n))
    X, y = _sequences(n=40)
    tr = fnn.Trainer(_net(layers), batch_size=32, n_threads=2, verbose=0)
    tr.fit(X, y, epochs=1)
    assert tr.last_plan["path"] == "per-layer" and tr.last_plan["n_shards"] == shards
    assert tr.last_plan["blas_threads"] == 1
    assert seen == ([] if threads_knob is None else [threads_knob])  # the kernels' own threads, or none
    assert ("row shards:" if shards > 1 else "no row shards") in tr.last_plan["reason"]


def test_numba_shards_need_a_thread_safe_threading_layer(monkeypatch):
    net = _net([fnn.LSTM(4), fnn.Dense(3)])
    monkeypatch.setattr(engine.sharded, "_numba_launches_thread_safe", lambda: False)
    n, reason = engine.choose_layer_shards(net, CE, "numba", 2, 64, "shards")
    assert n == 1 and "workqueue" in reason
    assert engine.choose_layer_shards(net, CE, "cython", 2, 64, "shards")[0] == 2
    monkeypatch.undo()
    if "numba" in COMPILED:  # this machine's layer (omp or tbb here; workqueue would abort the tests above)
        import numba

        assert engine.sharded._numba_launches_thread_safe() == (numba.threading_layer() in ("omp", "tbb"))
