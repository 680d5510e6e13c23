"""RayTrainer beyond the fused path: conv and recurrent nets, BatchNorm across workers, the Ray profile.

The workers run whichever path the engine's plan picks for the network (fused for a conv net of
biased Conv2D and pooling rows, per-layer for LSTM or BatchNorm on feature maps); each test states
the path it ran. One module-scoped 2-CPU cluster (tests/integrations/conftest.py); skipped without Ray.
"""

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import fastnn as fnn  # noqa: E402
from fastnn.distributed import RayProfileReport, RayTrainer  # noqa: E402


pytestmark = pytest.mark.usefixtures("ray_cluster")  # tests/integrations/conftest.py


def _cnn(dtype, seed=1, batchnorm=False, dropout=0.25):
    head = [fnn.Dense(12, activation="relu", l2=1e-4)] + ([fnn.BatchNorm()] if batchnorm else [])
    return fnn.Network([fnn.Conv2D(4, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dropout(dropout),
                        *head, fnn.Dense(3)], input_shape=(8, 8, 1), seed=seed, dtype=dtype)


def _lstm(dtype, seed=1):
    return fnn.Network([fnn.LSTM(8), fnn.Dropout(0.2), fnn.Dense(3)], input_shape=(5, 4), seed=seed, dtype=dtype)


def _mlp_bn(dtype, seed=1):
    return fnn.Network([fnn.Dense(16, activation="relu"), fnn.BatchNorm(), fnn.Dense(3)], input_shape=(64,),
                       seed=seed, dtype=dtype)


def _data(shape, dtype, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(dtype), rng.integers(0, 3, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cnn_on_two_workers_equals_serial_training_after_30_steps(dtype):
    # 29 batches of 32 (16 + 16) and a short one of 9 (5 + 4): uneven row weights, dropout masks of
    # the whole batch, an L2 penalty and clipping of the whole gradient have to match.
    X, y = _data((8, 8, 1), dtype, 32 * 29 + 9)
    serial, dist = _cnn(dtype), _cnn(dtype)
    st = fnn.Trainer(serial, optimizer=fnn.Adam(3e-3), batch_size=32, seed=7, clip_norm=1.0, verbose=0)
    st.fit(X, y)
    rt = RayTrainer(dist, optimizer=fnn.Adam(3e-3), batch_size=32, seed=7, clip_norm=1.0, verbose=0, num_workers=2)
    h = rt.fit(X, y)
    assert rt.last_plan["path"] == st.last_plan["path"]  # the engine's decision, fused or per-layer
    assert rt.optimizer.iterations == 30 and len(rt.profile) == 30
    assert dist.layers[3].step == serial.layers[3].step == 31
    assert not np.allclose(dist.params, _cnn(dtype).params, rtol=1e-3)  # it trained
    np.testing.assert_allclose(dist.params, serial.params, rtol=1e-4, atol=1e-6 if dtype == "float32" else 1e-12)
    assert h["loss"][0] == pytest.approx(st.history["loss"][0], rel=1e-4)


@pytest.mark.slow  # ~5 s: the recurrent kernels on top of the conv net's
def test_lstm_on_two_workers_equals_serial_training():
    X, y = _data((5, 4), "float64", 24 * 20)
    serial, dist = _lstm("float64"), _lstm("float64")
    st = fnn.Trainer(serial, optimizer=fnn.Adam(1e-2), batch_size=24, seed=3, verbose=0)
    st.fit(X, y)
    rt = RayTrainer(dist, optimizer=fnn.Adam(1e-2), batch_size=24, seed=3, verbose=0, num_workers=2)
    rt.fit(X, y)
    assert rt.last_plan["path"] == st.last_plan["path"]
    assert not np.allclose(dist.params, _lstm("float64").params, rtol=1e-3)
    np.testing.assert_allclose(dist.params, serial.params, rtol=1e-4, atol=1e-12)


def test_cnn_parameter_averaging_on_one_worker_is_serial_training():
    # local steps on the per-layer path: with one worker averaging is the identity, and the running
    # statistics travel with the parameters and optimizer state
    X, y = _data((8, 8, 1), "float64", 160)
    net, ref = _cnn("float64", batchnorm=True), _cnn("float64", batchnorm=True)
    RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=32, seed=3, verbose=0, num_workers=1,
               sync_every=3).fit(X, y, epochs=2)
    fnn.Trainer(ref, optimizer=fnn.Adam(3e-3), batch_size=32, seed=3, verbose=0, n_threads=1).fit(X, y, epochs=2)
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-10, atol=1e-13)
    assert not np.allclose(net.buffers, _cnn("float64", batchnorm=True).buffers)
    np.testing.assert_allclose(net.buffers, ref.buffers, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("make, shape", [
    (_mlp_bn, (64,)),  # the fused path
    pytest.param(lambda d: _cnn(d, batchnorm=True, dropout=0.0), (8, 8, 1), marks=pytest.mark.slow),  # per-layer
], ids=["mlp", "cnn"])
def test_batchnorm_uses_each_workers_statistics_and_averages_the_running_ones(make, shape):
    # The documented behaviour: with sync_every=1 and SGD, one step of 2 workers is the mean of one
    # serial step on each half of the batch (BatchNorm normalising each half by its own statistics),
    # and the running statistics are the mean of the halves'. Serial training on the combined batch
    # (its statistics) is different, and the test shows that too.
    X, y = _data(shape, "float64", 32 * 6)
    dist = make("float64")
    w, bufs = dist.params.copy(), dist.buffers.copy()
    rt = RayTrainer(dist, optimizer=fnn.SGD(0.1), batch_size=32, seed=5, verbose=0, num_workers=2)
    rt.fit(X, y)
    perm = np.random.default_rng(5).permutation(len(X))
    for s in range(0, len(X), 32):
        ends = []
        for k in range(2):
            local = make("float64")
            local.params[...], local.buffers[...] = w, bufs
            rows = perm[s + 16 * k:s + 16 * (k + 1)]
            fnn.Trainer(local, optimizer=fnn.SGD(0.1), batch_size=16, verbose=0).fit(X[rows], y[rows], shuffle=False)
            ends.append((local.params.copy(), local.buffers.copy()))
        w = (ends[0][0] + ends[1][0]) / 2
        bufs = (ends[0][1] + ends[1][1]) / 2
    assert dist.buffers.size and not np.allclose(bufs, make("float64").buffers)  # the statistics moved
    np.testing.assert_allclose(dist.params, w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dist.buffers, bufs, rtol=1e-10, atol=1e-13)
    serial = make("float64")
    fnn.Trainer(serial, optimizer=fnn.SGD(0.1), batch_size=32, seed=5, verbose=0).fit(X, y)
    assert not np.allclose(serial.params, dist.params, rtol=1e-6)  # combined-batch statistics differ
    # evaluate (on the driver) uses the averaged running statistics
    assert rt.evaluate(X, y) == pytest.approx(fnn.Trainer(dist, verbose=0).evaluate(X, y))


def test_fastnn_profile_of_a_ray_trainer_is_a_compute_communication_table():
    X, y = _data((8, 8, 1), "float32", 32 * 8)
    net = _cnn("float32")
    rt = RayTrainer(net, optimizer=fnn.Adam(1e-3), batch_size=32, seed=0, verbose=0, num_workers=2)
    before, epoch = net.params.copy(), rt.epoch
    report = fnn.profile(rt, X, y, n_steps=5)
    assert isinstance(report, RayProfileReport)
    assert np.array_equal(net.params, before) and rt.epoch == epoch  # profiling does not train
    phases = [r["phase"] for r in report.rows]
    assert phases == ["compute (slowest worker)", "  of which imbalance", "serialise (driver puts)",
                      "transfer + wait", "reduce", "update"]
    sec = {r["phase"]: r["seconds"] for r in report.rows}
    assert all(v >= 0 for v in sec.values()) and sec["compute (slowest worker)"] > 0
    assert sec["  of which imbalance"] <= sec["compute (slowest worker)"]
    parts = sum(v for k, v in sec.items() if k != "  of which imbalance")
    assert parts == pytest.approx(report.step_seconds, rel=1e-9)  # the phases are the step
    assert report.communication_share == pytest.approx(
        (sec["serialise (driver puts)"] + sec["transfer + wait"]) / report.step_seconds)
    assert report.n_steps == 5 and report.records == 5  # 6 steps fitted, the first left out
    d = report.as_dict()
    assert d["workers"] == 2 and d["sync_every"] == 1 and d["batch"] == 32
    text = str(report)
    assert "transfer + wait" in text and "communication share" in text and "workers 2" in text
    # the same table from the last real fit, and a clear error before any fit
    rt.fit(X, y)
    assert d["path"] == rt.last_plan["path"]
    assert [r["phase"] for r in rt.profile.report().rows] == phases
    with pytest.raises(ValueError, match="empty"):
        RayTrainer(_cnn("float32"), verbose=0).profile.report()
