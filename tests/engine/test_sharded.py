"""Row shards on the per-layer path (fastnn.engine.sharded): when they are taken, and that they give the
per-layer oracle's result (float64: to rounding), dropout masks included."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine, losses
from fastnn.kernels import available_backends

COMPILED = [b for b in available_backends() if b != "reference"]


def _cnn(extra=(), seed=0, backend=None):
    return fnn.Network([fnn.Conv2D(4, 3, activation="relu"), fnn.MaxPool2D(2), *extra, fnn.Flatten(),
                        fnn.Dense(8, activation="relu", l2=0.01), fnn.Dropout(0.3), fnn.Dense(3)],
                       input_shape=(9, 9, 1), seed=seed, dtype="float64", backend=backend)


def _data(n=70):
    rng = np.random.default_rng(0)
    return rng.random((n, 9, 9, 1)), rng.integers(0, 3, n)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("batch_size", [16, 23])
def test_shards_match_the_per_layer_oracle(backend, batch_size):
    X, y = _data()
    nets = {}
    for path in ("auto", "per-layer"):
        net = _cnn(backend=backend)
        tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=batch_size, verbose=0, seed=0,
                         path=path, n_threads=2, clip_norm=1.0)
        h = tr.fit(X, y, epochs=2)
        nets[path] = (net, h, tr.last_plan)
    assert nets["auto"][2]["n_shards"] == 2 and nets["auto"][2]["blas_threads"] == 1
    assert nets["per-layer"][2]["n_shards"] == 1
    np.testing.assert_allclose(nets["auto"][0].params, nets["per-layer"][0].params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nets["auto"][1]["loss"], nets["per-layer"][1]["loss"], rtol=1e-12)
    assert nets["auto"][1]["accuracy"] == nets["per-layer"][1]["accuracy"]


def test_when_shards_are_taken():
    ce = losses.get("cross_entropy")
    assert engine.shard_blocker(_cnn(), ce) == ""
    assert "BatchNorm" in engine.shard_blocker(_cnn(extra=[fnn.BatchNorm()]), ce)
    assert engine.choose_layer_shards(_cnn(), ce, "cython", 2, 32)[0] == 2
    mlp = fnn.Network([fnn.Dense(4, 3)], seed=0)
    assert engine.choose_layer_shards(mlp, ce, "cython", 2, 32)[0] == 1  # nothing to gain
    X, y = _data()
    for kwargs, shards in ((dict(n_threads=1), 1), (dict(n_threads=2, parallel="blas"), 1),
                           (dict(n_threads=2, batch_size=8), 1), (dict(n_threads=2), 2)):
        kwargs.setdefault("batch_size", 32)
        tr = fnn.Trainer(_cnn(extra=[] if shards else [fnn.BatchNorm()]), verbose=0, **kwargs)
        tr.fit(X, y, epochs=1)
        assert tr.last_plan["n_shards"] == shards, kwargs
    tr = fnn.Trainer(_cnn(extra=[fnn.BatchNorm()]), verbose=0, n_threads=2, batch_size=32, path="per-layer")
    tr.fit(X, y, epochs=1)
    assert tr.last_plan["n_shards"] == 1   # batch statistics need the whole batch
    tr = fnn.Trainer(_cnn(extra=[fnn.BatchNorm()]), verbose=0, n_threads=2, batch_size=32)
    tr.fit(X, y, epochs=1)
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == 2  # the driver syncs the statistics


def test_an_error_in_a_shard_is_raised_and_threads_end():
    import threading

    X, y = _data()
    net = _cnn()
    tr = fnn.Trainer(net, verbose=0, n_threads=2, batch_size=32)
    before = threading.active_count()
    tr.fit(X, y, epochs=1)
    net.layers[0].params["W"][...] = np.nan
    with pytest.raises(fnn.NonFiniteError):
        tr.fit(X, y, epochs=1)
    assert threading.active_count() == before


def test_the_callers_openmp_setting_is_restored():
    k = pytest.importorskip("fastnn._ext._kernels")
    X, y = _data()
    before = k.set_omp_threads(3)
    try:
        tr = fnn.Trainer(_cnn(), verbose=0, n_threads=2, batch_size=32)
        tr.fit(X, y, epochs=1)
        assert tr.last_plan["n_shards"] == 2
        assert k.set_omp_threads(3) == 3   # shard 0 ran on this thread with 1, then put 3 back
    finally:
        k.set_omp_threads(before)
