"""Trainer(parallel='probe') (fastnn.engine.split_probe): the fit runs the plan the probe names, the probe
leaves no trace in the training, its choice is cached per shape, and it steps aside where it cannot run.
Structure only: which candidate wins is the machine's business, never asserted."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.engine import choose_split, clear_probe_cache
from fastnn.engine.split_probe import probe_candidates

pytestmark = pytest.mark.skipif("cython" not in fnn.available_backends(), reason="needs the Cython backend")

#: the kind a probe names -> (col_threads, n_shards, blas_threads) of last_plan, and how to force it
SETTINGS = {"one": ((1, 1, 1), {"n_threads": 1}), "shards": ((1, 2, 1), {"parallel": "shards"}),
            "columns": ((2, 1, 1), {"parallel": "columns"})}


def _data(n=300, d=20):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 4, n)


def _fit(layers, batch=32, epochs=2, **kw):
    X, y = _data()
    net = fnn.Network(layers(), input_shape=(X.shape[1],), seed=0, backend=kw.pop("backend", "cython"))
    opts = {"n_threads": 2, "parallel": "probe", **kw}
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=batch, seed=3, verbose=0, **opts)
    h = tr.fit(X, y, epochs=epochs)
    return net, tr, h


def _dense():
    return [fnn.Dense(48, "relu"), fnn.Dense(24, "tanh"), fnn.Dense(4)]


def _dropout():
    return [fnn.Dense(48, "relu"), fnn.Dropout(0.3), fnn.Dense(4)]


@pytest.mark.parametrize("layers", [_dense, _dropout])
def test_the_fit_trains_exactly_as_one_forced_to_the_probed_plan(layers):
    clear_probe_cache()
    net, tr, h = _fit(layers)
    reason = tr.last_plan["reason"]
    assert reason.startswith("probe: ") and "ms/step" in reason and "ms in all" in reason
    kind = reason.split()[1]
    columns_ok = layers is _dense
    assert kind in probe_candidates(32, columns_ok) and ("columns" in reason) == columns_ok
    expected, forced = SETTINGS[kind]
    assert (tr.last_plan["col_threads"], tr.last_plan["n_shards"], tr.last_plan["blas_threads"]) == expected
    ref, _, h_ref = _fit(layers, **forced)  # no probe: the weights and losses must be identical
    np.testing.assert_array_equal(net.params, ref.params)
    np.testing.assert_array_equal(h["loss"], h_ref["loss"])
    assert tr.optimizer.iterations == 2 * -(-300 // 32)


def test_the_choice_is_cached_per_shape():
    clear_probe_cache()
    _, first, _ = _fit(_dense)
    _, again, _ = _fit(_dense, epochs=1)
    assert again.last_plan["reason"] == first.last_plan["reason"] + "; probed at an earlier fit of this shape"
    _, other, _ = _fit(_dense, batch=40)  # another batch size: probed afresh
    assert "earlier fit" not in other.last_plan["reason"] and other.last_plan["reason"].startswith("probe: ")
    clear_probe_cache()
    _, fresh, _ = _fit(_dense, epochs=1)
    assert "earlier fit" not in fresh.last_plan["reason"]


@pytest.mark.parametrize("kw", [{"n_threads": 1}, {"backend": "numba"}, {"path": "per-layer"}])
def test_the_rule_decides_where_the_probe_cannot_run(kw):
    clear_probe_cache()
    net, tr, _ = _fit(_dense, epochs=1, **kw)
    assert not tr.last_plan["reason"].startswith("probe")
    if kw.get("backend") == "numba":  # the Numba drivers are not probed (each candidate would compile first)
        assert tr.last_plan["reason"] == choose_split("auto", 2, 32, net.n_params, False).reason


def test_probe_is_a_declared_setting():
    with pytest.raises(ValueError, match="parallel"):
        fnn.Trainer(fnn.Network(_dense(), input_shape=(20,)), parallel="probes")
    assert probe_candidates(1, True) == ["one", "columns"]
