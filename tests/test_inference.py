"""Compiled inference (Network.predict / predict_proba / forward): same results as the layer loop,
no per-call allocation of intermediates, per-thread buffers, caches never pickled."""
import pickle
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import fastnn as fnn
from fastnn import network as network_module


def make_net(backend, extra=(), last="linear", n_out=4, seed=0):
    layers = [fnn.Dense(30, 64, "relu"), *extra, fnn.Dense(64, 32, "tanh"), fnn.Dense(32, n_out, last)]
    return fnn.Network(layers, seed=seed, backend=backend)


def loop_forward(net, X, logits=False):
    """The layer-by-layer forward the chain replaces (the reference of these tests)."""
    return net._forward_chunk(np.ascontiguousarray(X, net.dtype), False, logits)


@pytest.mark.parametrize("backend", fnn.available_backends())
@pytest.mark.parametrize("n", [1, 7, 4096 + 5])
def test_same_results_as_the_layer_loop(backend, n):
    net = make_net(backend, extra=[fnn.Dropout(0.5)])
    X = np.random.default_rng(1).standard_normal((n, 30)).astype(np.float32)
    assert net._chain(network_module._RAW) is not None  # Dropout is identity at inference: still compiled
    ref = loop_forward(net, X)
    np.testing.assert_allclose(net.forward(X), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.forward(X, logits=True), loop_forward(net, X, logits=True), rtol=1e-5, atol=1e-6)
    e = np.exp(ref - ref.max(axis=1, keepdims=True))
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    labels = net.predict(X)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))  # predict agrees with predict_proba exactly


@pytest.mark.parametrize("last,n_out", [("sigmoid", 1), ("linear", 1), ("sigmoid", 3), ("softmax", 4)])
def test_output_kinds(last, n_out):
    net = make_net("cython", last=last, n_out=n_out)
    net.task = "classification"  # as after training with a cross-entropy loss (one linear output: else regression)
    X = np.random.default_rng(2).standard_normal((50, 30)).astype(np.float32)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(net.predict(X), proba.argmax(axis=1))


def test_layers_without_a_chain_row_take_the_loop():
    net = make_net("cython", extra=[fnn.BatchNorm()])
    assert net._chain(network_module._RAW) is None
    X = np.random.default_rng(3).standard_normal((9, 30)).astype(np.float32)
    np.testing.assert_allclose(net.forward(X), loop_forward(net, X))


@pytest.mark.parametrize("n", [1, 64])
def test_no_allocation_growth_over_repeated_predicts(n):
    net = make_net("cython")
    X = np.random.default_rng(4).standard_normal((n, 30)).astype(np.float32)
    for _ in range(3):
        net.predict(X)
        net.predict_proba(X)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(100):
            net.predict(X)
        mid, peak = tracemalloc.get_traced_memory()
        for _ in range(200):
            net.predict(X)
        current, peak2 = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The labels (8 bytes a row) are the only array a predict allocates, plus Python objects (up to
    # ~5 kB seen inside the whole suite); at n = 64 one batch of the intermediates alone
    # (64 x (64 + 32 + 4) floats = 25.6 kB) exceeds this: the previous path peaked at 41.6 kB.
    assert max(peak, peak2) - base < 12288 + 8 * n, (max(peak, peak2) - base, n)
    assert current - mid < 256  # nothing retained per call


def test_buffers_are_bounded_per_thread_and_not_shared():
    net = make_net("cython")
    rng = np.random.default_rng(5)
    for n in range(1, 12):
        net.predict(rng.standard_normal((n, 30)).astype(np.float32))
    assert len(net._infer_local.bufs) == network_module._CHAIN_SIZES
    X = rng.standard_normal((300, 30)).astype(np.float32)
    want = net.predict_proba(X)
    got, errors = {}, []

    def work(k):
        try:
            for _ in range(20):
                p = net.predict_proba(X[k::4])
                if not np.array_equal(p, want[k::4]):
                    errors.append(k)
            got[k] = True
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 4


def test_pickles_without_its_caches():
    net = make_net("cython")
    X = np.random.default_rng(6).standard_normal((5, 30)).astype(np.float32)
    want = net.predict_proba(X)
    clone = pickle.loads(pickle.dumps(net))
    assert "_infer_local" not in clone.__dict__
    np.testing.assert_array_equal(clone.predict_proba(X), want)


@pytest.mark.parametrize("threads", [1, 2])
def test_large_batches_split_rows_over_the_thread_knob(monkeypatch, threads):
    """From _SPLIT_ROWS rows predict hands fastnn's thread count to the chain (cython: one row block
    per thread); smaller batches always run on one thread. Same results as the layer loop either way."""
    net = make_net("cython")
    got = []
    chain = fnn.kernels.get_backend("cython").dense_chain_forward
    monkeypatch.setattr(fnn.kernels.get_backend("cython"), "dense_chain_forward",
                        lambda *a: (got.append(a[-1]), chain(*a))[1])
    old = fnn.get_num_threads()
    expect = fnn.set_num_threads(threads)  # capped at the cores there are
    try:
        X = np.random.default_rng(3).standard_normal((network_module._SPLIT_ROWS + 45, 30)).astype(np.float32)
        np.testing.assert_allclose(net.forward(X), loop_forward(net, X), rtol=1e-5, atol=1e-6)
        net.predict(X[:network_module._SPLIT_ROWS - 1])
    finally:
        fnn.set_num_threads(old)
    assert got == [expect, 1]


def _sequence_nets():
    """Networks whose predict runs the layer loop with shared-looking state: a TimeDistributed Dense and a
    TransformerBlock (their Dense parts), an LSTM (its inference kernel), a Bidirectional GRU, and a
    Masking front (the padding mask travels through layer attributes: predict takes the lock)."""
    return {
        "transformer": fnn.Network([fnn.TimeDistributed(fnn.Dense(16)), fnn.PositionalEncoding(),
                                    fnn.TransformerBlock(2, 32), fnn.GlobalAveragePooling1D(), fnn.Dense(3)],
                                   input_shape=(6, 5), seed=0),
        "lstm": fnn.Network([fnn.LSTM(8, return_sequences=True), fnn.LSTM(8), fnn.Dense(3)], input_shape=(6, 5),
                            seed=0),
        "lstm-numba": fnn.Network([fnn.LSTM(8), fnn.Dense(3)], input_shape=(6, 5), seed=0,
                                  backend="numba" if "numba" in fnn.available_backends() else None),
        "masked-bigru": fnn.Network([fnn.Masking(0.0), fnn.Bidirectional(fnn.GRU(8)), fnn.Dense(3)],
                                    input_shape=(6, 5), seed=0),
    }


@pytest.mark.parametrize("name", ["transformer", "lstm", "lstm-numba", "masked-bigru"])
def test_sequence_predict_from_two_threads_matches_the_serial_result(name):
    """Two Python threads predicting different data of the same batch size on one network (the case
    shared work buffers break) get exactly the serial results."""
    net = _sequence_nets()[name]
    rng = np.random.default_rng(7)
    Xs = [rng.standard_normal((40, 6, 5)).astype(np.float32) for _ in range(2)]
    if name == "masked-bigru":  # padding at the ends, different per thread
        Xs[0][:, 4:] = 0
        Xs[1][:, :2] = 0
    want = [net.predict_proba(X) for X in Xs]
    errors = []

    def work(k):
        try:
            for _ in range(150):
                if not np.array_equal(net.predict_proba(Xs[k]), want[k]):
                    errors.append(k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over often: interleave the threads' layer calls
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors


def test_sequence_predict_runs_blas_on_one_thread(monkeypatch):
    """The recurrent/attention kernels split rows over fastnn's threads and call BLAS from each:
    predict holds BLAS to one thread around them (as training does); other layer-loop networks only
    when fastnn.set_num_threads(1) asks for one thread."""
    entered = []
    real = network_module.blas_single_thread

    def spy():
        entered.append(True)
        return real()
    monkeypatch.setattr(network_module, "blas_single_thread", spy)
    X = np.random.default_rng(8).standard_normal((5, 6, 5)).astype(np.float32)
    _sequence_nets()["lstm"].predict(X)
    assert entered == [True]
    net = fnn.Network([fnn.Dense(30, 8), fnn.BatchNorm(), fnn.Dense(8, 2)], seed=0)  # layer loop, no such layer
    old = fnn.get_num_threads()
    try:
        if fnn.set_num_threads(2) > 1:  # capped at the cores there are
            net.predict(np.ones((3, 30), np.float32))
            assert entered == [True]  # BLAS threads as the knob allows
        fnn.set_num_threads(1)
        net.predict(np.ones((3, 30), np.float32))
        assert entered[1:] == [True]  # one thread asked for: BLAS too
    finally:
        fnn.set_num_threads(old)


def test_lstm_predict_keeps_nothing_for_backward():
    """Inference runs lstm_infer: no per-step gates cached on the layer (training's forward keeps them)."""
    net = _sequence_nets()["lstm"]
    net.predict(np.zeros((4, 6, 5), np.float32))
    assert all(getattr(layer, "_cache", None) is None for layer in net.layers[:2])


_RECURRENT = {"gru": lambda **kw: fnn.GRU(7, **kw), "gru-v1": lambda **kw: fnn.GRU(7, reset_after=False, **kw),
              "rnn": lambda **kw: fnn.SimpleRNN(7, **kw), "lstm": lambda **kw: fnn.LSTM(7, **kw)}


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("backend", fnn.available_backends())
@pytest.mark.parametrize("kind", _RECURRENT)
def test_recurrent_inference_equals_the_training_forward(kind, backend, masked):
    """forward(training=False) runs the layer's *_infer kernel (nothing cached for backward) and gives the
    training forward's output: every step's states and the last one, padded steps included; in float32
    at 200 rows (a thread block of 100 rows at 2 threads, a tile boundary in the Cython kernel)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((200, 6, 5)).astype(np.float32)
    mask = (rng.random((200, 6)) > 0.3).astype(np.float32) if masked else None
    for return_sequences in (True, False):
        layer = fnn.Network([_RECURRENT[kind](return_sequences=return_sequences)], input_shape=(6, 5),
                            seed=0).layers[0]
        want = np.array(layer.forward(X, training=True, backend=backend, mask=mask))
        layer._cache = None
        got = layer.forward(X, training=False, backend=backend, mask=mask)
        assert layer._cache is None  # the inference kernel ran: nothing kept for backward
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


def test_inference_forwards_share_no_buffers_between_calls():
    """The deterministic side of thread safety: two inference forwards of the same shape return arrays
    that share no memory (a cached layer buffer would be shared by concurrent predicts), and a
    network with a padding mask runs its layer loop under the network's lock."""
    nets = _sequence_nets()
    X = np.random.default_rng(9).standard_normal((7, 6, 5)).astype(np.float32)
    for net in nets.values():
        A, B = X, X.copy()
        for layer in net.layers:
            A, B = layer.forward(A), layer.forward(B)
            assert not np.shares_memory(A, B), type(layer).__name__
    net = nets["masked-bigru"]
    held = []
    inner = net.layers[1].forward
    net.layers[1].forward = lambda *a, **k: (held.append(net._mask_lock.locked()), inner(*a, **k))[1]
    net.predict(X)
    assert held == [True]


@pytest.mark.parametrize("name", ["transformer", "lstm"])
def test_sequence_predict_splits_rows_over_threads_with_the_serial_result(name):
    """At 2+ threads a Cython sequence network predicts in row blocks, one Python thread each (every kernel
    on one thread); the results are the serial ones, and a mask-making network keeps one block."""
    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    net = _sequence_nets()[name]
    X = np.random.default_rng(9).standard_normal((3 * network_module._BLOCK_ROWS + 5, 6, 5)).astype(np.float32)
    old = fnn.get_num_threads()
    try:
        fnn.set_num_threads(1)
        want = net.predict_proba(X)
        assert net._predict_blocks(len(X)) == 1
        if fnn.set_num_threads(2) < 2:
            pytest.skip("one core")
        assert net._predict_blocks(len(X)) == 2
        assert net._predict_blocks(2 * network_module._BLOCK_ROWS - 1) == 1  # too few rows per thread
        np.testing.assert_allclose(net.predict_proba(X), want, rtol=1e-5, atol=1e-6)
        assert _sequence_nets()["masked-bigru"]._predict_blocks(len(X)) == 1
    finally:
        fnn.set_num_threads(old)


def test_sequence_predict_blocks_reraise_a_worker_error(monkeypatch):
    """An error in a row block's thread reaches the caller (not a silent partial output)."""
    if "cython" not in fnn.available_backends():
        pytest.skip("cython backend not available")
    net = _sequence_nets()["lstm"]
    calls = []
    real = net._forward_chunk

    def failing(X, training, logits):
        calls.append(len(X))
        if len(calls) == 2:
            raise RuntimeError("block failed")
        return real(X, training, logits)
    monkeypatch.setattr(net, "_forward_chunk", failing)
    X = np.zeros((4 * network_module._BLOCK_ROWS, 6, 5), np.float32)
    with pytest.raises(RuntimeError, match="block failed"):
        net._forward_blocks(X, False, 10 ** 6, 2)
