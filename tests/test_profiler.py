"""fastnn.profile: phases that add up to the measured step, every layer present, nothing trained, bad input refused."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.profiler import ProfileReport, profile


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((600, 20), dtype=np.float32)
    return X, rng.integers(0, 3, 600)


def make_trainer(backend="cython", extra=(), **kw):
    layers = [fnn.Dense(20, 16, "relu"), *extra, fnn.Dense(16, 3)]
    net = fnn.Network(layers, seed=0, backend=backend)
    return fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=64, verbose=0, seed=1, **kw)


@pytest.mark.parametrize("backend,path", [("cython", "auto"), ("numba", "auto"), ("reference", "per-layer")])
def test_phases_sum_to_the_step_and_name_every_layer(data, backend, path):
    X, y = data
    r = profile(make_trainer(backend, path=path), X, y, n_steps=5, repeats=2)
    assert isinstance(r, ProfileReport)
    # Structural, not a timing assertion: the scaled phases plus the Python overhead are the step.
    assert sum(row["seconds"] for row in r.rows) == pytest.approx(r.step_seconds, rel=1e-9)
    assert sum(row["share"] for row in r.rows) == pytest.approx(1.0, rel=1e-9)
    assert all(row["seconds"] >= 0 for row in r.rows)
    phases = [row["phase"] for row in r.rows]
    for kind in ("forward", "backward"):
        assert [p.split()[1] for p in phases if p.startswith(kind)] == (["0", "1"] if kind == "forward" else ["1", "0"])
    assert phases[0] == "batch gather" and phases[-1] == "python (fit loop)"
    assert {"loss", "optimizer"} <= set(phases)
    dense = [row for row in r.rows if row["flops"]]
    # 64 rows: forward 2*64*20*16 (layer 0), backward of layer 0 has no input gradient
    assert dense[0]["flops"] == 2 * 64 * 20 * 16 and dense[-1]["flops"] == 2 * 64 * 20 * 16
    assert r.path == ("per-layer" if path == "per-layer" else "fused") and r.batch_size == 64
    assert r.replay_ratio > 0 and r.floor_seconds > 0
    text = str(r)
    assert "forward 1 Dense 16->3 linear" in text and "samples/s" in text
    d = r.as_dict()
    assert d["rows"][0]["phase"] == "batch gather" and d["batch_size"] == 64


def test_profiling_does_not_train(data):
    X, y = data
    a, b = make_trainer(extra=[fnn.BatchNorm(), fnn.Dropout(0.2)]), make_trainer(extra=[fnn.BatchNorm(), fnn.Dropout(0.2)])
    a.fit(X, y, epochs=1)
    b.fit(X, y, epochs=1)
    r = profile(a, X, y, n_steps=4, repeats=2)
    assert any(row["phase"].startswith("forward 1 BatchNorm") for row in r.rows)
    assert a.epoch == b.epoch == 1 and a.optimizer.iterations == b.optimizer.iterations
    np.testing.assert_array_equal(a.network.params, b.network.params)
    np.testing.assert_array_equal(a.network.buffers, b.network.buffers)
    a.fit(X, y, epochs=1)
    b.fit(X, y, epochs=1)
    np.testing.assert_array_equal(a.network.params, b.network.params)  # state, RNGs and step counts restored


def test_sharded_plan_has_a_reduction(data):
    X, y = data
    r = profile(make_trainer(parallel="shards", n_threads=2), X, y, n_steps=3, repeats=2)
    assert r.n_shards == 2 and "reduction" in [row["phase"] for row in r.rows]


def test_bad_arguments(data):
    X, y = data
    t = make_trainer()
    with pytest.raises(TypeError, match="Trainer"):
        profile(t.network, X, y)
    for bad in ({"n_steps": 0}, {"repeats": -1}, {"batch_size": 0}, {"n_steps": 2.5}):
        with pytest.raises((ValueError, TypeError)):
            profile(t, X, y, **bad)
    with pytest.raises(ValueError):
        profile(t, X, y[:10])
    assert t.epoch == 0 and t.optimizer.iterations == 0


def test_plot(data, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = data
    r = profile(make_trainer(), X, y, n_steps=3, repeats=2)
    fig = r.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0 and len(fig.axes) == 1


def test_fit_profile_attaches_the_report_and_trains_as_without(data):
    X, y = data
    a, b = make_trainer(), make_trainer()
    ha = a.fit(X, y, epochs=2, profile=True)
    hb = b.fit(X, y, epochs=2)
    assert isinstance(ha.profile, ProfileReport) and hb.profile is None
    assert ha.profile.batch_size == 64 and ha.profile.path == "fused"
    assert {"batch gather", "loss", "optimizer", "python (fit loop)"} <= {row["phase"] for row in ha.profile.rows}
    np.testing.assert_array_equal(a.network.params, b.network.params)  # profiling after training changed nothing
    assert ha["loss"] == hb["loss"] and a.epoch == b.epoch == 2
    h = a.fit(X, y, batch_size=32, profile=True)
    assert h.profile.batch_size == 32  # the fit's batch size, not the trainer's


def test_fit_profile_must_be_a_bool(data):
    X, y = data
    t = make_trainer()
    before = t.network.params.copy()
    with pytest.raises(TypeError, match="profile"):
        t.fit(X, y, profile=1)
    np.testing.assert_array_equal(t.network.params, before)
    assert t.epoch == 0


def test_a_cnn_is_profiled_on_image_samples():
    """Image networks take (n, H, W, C) samples: the profile feeds fit the network's sample shape."""
    rng = np.random.default_rng(0)
    X, y = rng.random((96, 8, 8, 1), dtype=np.float32), np.arange(96) % 3
    net = fnn.Network([fnn.Conv2D(3, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)],
                      input_shape=(8, 8, 1), seed=0)
    report = profile(fnn.Trainer(net, batch_size=32, verbose=0, n_threads=1), X, y, n_steps=2, repeats=1)
    phases = [row["phase"] for row in report.rows]
    assert "forward 0 Conv2D" in phases and "backward 1 MaxPool2D" in phases
    # the compiled driver tiles conv rows, the replay does not: the report marks them and says so
    assert report.path == "fused" and report.backend in ("cython", "numba")
    replay = {row["phase"]: row["replay"] for row in report.rows}
    assert replay["forward 0 Conv2D"] == replay["backward 0 Conv2D"] == "per-layer, untiled"
    assert replay["forward 1 MaxPool2D"] == "per-layer" and replay["forward 3 Dense 27->3 linear"] == "kernels"
    assert "forward 0 Conv2D*" in str(report) and "replayed untiled" in str(report)


def test_a_per_layer_cnn_profile_has_no_untiled_note():
    """On the per-layer path the replay runs what the step runs: no conv row is marked."""
    rng = np.random.default_rng(0)
    X, y = rng.random((64, 8, 8, 1), dtype=np.float32), np.arange(64) % 3
    net = fnn.Network([fnn.Conv2D(3, 3, activation="relu"), fnn.Flatten(), fnn.Dense(3)], input_shape=(8, 8, 1),
                      seed=0, backend="reference")
    report = profile(fnn.Trainer(net, batch_size=32, verbose=0, n_threads=1, path="per-layer"), X, y, n_steps=2,
                     repeats=1)
    assert {row["replay"] for row in report.rows if row["layer"] == 0} == {"per-layer"}
    assert "untiled" not in str(report)
