"""The column-split driver (csrc/plan_cols.pxi): same training as the serial driver and the reference,
deterministic, chosen by parallel='auto' for wide networks, refused where it cannot run."""
import numpy as np
import pytest

import fastnn as fnn

pytestmark = pytest.mark.skipif("cython" not in fnn.available_backends(), reason="needs the Cython backend")


def _fit(parallel, layers, backend="cython", n_threads=2, path="auto", batch=24, **kw):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5 * batch + 7, 40)).astype(np.float32)  # a short last batch
    y = rng.integers(0, 5, len(X))
    net = fnn.Network(layers(), input_shape=(40,), seed=0, backend=backend)
    tr = fnn.Trainer(net, batch_size=batch, seed=1, n_threads=n_threads, parallel=parallel, verbose=0, path=path,
                     **kw)
    h = tr.fit(X, y, epochs=2)
    return net, tr, h


def _wide():  # 200 and 130 columns: split 112/88 and 80/50 (16-aligned); the 5-column head on thread 0
    return [fnn.Dense(200, "relu", l2=1e-3), fnn.Dense(130, "tanh"), fnn.Dense(5)]


@pytest.mark.parametrize("opt,clip", [("adam", {}), ("sgd", {"clip_norm": 0.5}), ("rmsprop", {"clip_value": 0.01}),
                                      (fnn.AdamW(1e-3, weight_decay=0.01), {"clip_norm": 1.0, "clip_value": 0.1})])
def test_columns_train_like_the_serial_driver_and_the_reference(opt, clip):
    import copy

    cols, tr, h = _fit("columns", _wide, optimizer=copy.deepcopy(opt), **clip)
    assert tr.last_plan["col_threads"] == 2 and tr.last_plan["n_shards"] == 1
    assert tr.last_plan["reason"].startswith("columns over 2 threads")
    serial, tr1, h1 = _fit("blas", _wide, n_threads=1, optimizer=copy.deepcopy(opt), **clip)
    assert tr1.last_plan["col_threads"] == 1
    ref, _, _ = _fit("blas", _wide, backend="reference", n_threads=1, path="per-layer", optimizer=copy.deepcopy(opt),
                     **clip)
    np.testing.assert_allclose(cols.params, serial.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cols.params, ref.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h["loss"], h1["loss"], rtol=1e-5)


def test_columns_are_deterministic():
    a, _, _ = _fit("columns", _wide)
    b, _, _ = _fit("columns", _wide)
    np.testing.assert_array_equal(a.params, b.params)


def test_auto_takes_columns_for_wide_networks_only():
    wide = lambda: [fnn.Dense(1024, "relu"), fnn.Dense(1024, "relu"), fnn.Dense(5)]  # 1.09M parameters
    _, tr, _ = _fit("auto", wide, batch=32)
    assert tr.last_plan["col_threads"] == 2, tr.last_plan
    assert "parameters" in tr.last_plan["reason"]
    _, tr, _ = _fit("auto", _wide, batch=64)  # 35k parameters: never columns
    assert tr.last_plan["col_threads"] == 1 and tr.last_plan["reason"]
    _, tr, _ = _fit("auto", wide, batch=32, n_threads=1)
    assert tr.last_plan["col_threads"] == 1


def test_columns_refused_where_they_cannot_run():
    with pytest.raises(ValueError, match="Dense"):
        _fit("columns", lambda: [fnn.Dense(64, "relu"), fnn.BatchNorm(), fnn.Dense(5)])
    with pytest.raises(ValueError, match="cython"):
        _fit("columns", _wide, backend="numba")
    with pytest.raises(ValueError, match="parallel"):
        fnn.Trainer(fnn.Network(_wide(), input_shape=(40,)), parallel="cols")
