"""RayTrainer on a local 2-CPU Ray cluster: equal to serial training, deterministic, and loud on faults.

One module-scoped cluster (Ray's start-up costs seconds); skipped when Ray is not installed.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import fastnn as fnn  # noqa: E402
from fastnn.callbacks import Callback, ModelCheckpoint  # noqa: E402
from fastnn.distributed import RayTrainer, WorkerError, scaling_estimate  # noqa: E402


pytestmark = pytest.mark.usefixtures("ray_cluster")  # tests/integrations/conftest.py


def _data(dtype, n=64 * 49 + 10, d=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    return X, rng.integers(0, classes, n)


def _net(dtype, dropout=0.2, seed=1):
    return fnn.Network([fnn.Dense(32, activation="relu", l2=1e-4), fnn.Dropout(dropout), fnn.Dense(4)],
                       input_shape=(20,), seed=seed, dtype=dtype)


class _At(Callback):
    """Calls ``action(trainer)`` once, after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch, action):
        self.epoch_at, self.batch_at, self.action, self.params = epoch, batch, action, None
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if self.current == self.epoch_at and batch == self.batch_at:
            self.params = self.trainer.network.params.copy()
            self.action(self.trainer)


# ---------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("dtype, clip", [("float32", None), ("float64", 0.5)])
def test_two_workers_equal_serial_training_after_50_steps(dtype, clip):
    # 49 batches of 63 (split 32 + 31) plus a short one of 11 (6 + 5): 50 steps, uneven splits
    # (the row weights of the reduce), dropout masks, an L2 penalty and (float64) clipping of the
    # whole gradient all have to match.
    X, y = _data(dtype, n=63 * 49 + 11)
    serial, dist = _net(dtype), _net(dtype)
    assert np.array_equal(serial.params, dist.params)
    fnn.Trainer(serial, optimizer=fnn.Adam(3e-3), batch_size=63, seed=7, clip_norm=clip, verbose=0).fit(X, y)
    rt = RayTrainer(dist, optimizer=fnn.Adam(3e-3), batch_size=63, seed=7, clip_norm=clip, verbose=0, num_workers=2)
    h = rt.fit(X, y)
    assert rt.optimizer.iterations == 50 and len(rt.profile) == 50
    assert rt.last_plan["num_workers"] == 2 and rt.last_plan["mode"] == "gradient averaging"
    assert dist.layers[1].step == serial.layers[1].step == 51
    assert not np.array_equal(dist.params, _net(dtype).params)  # it trained
    np.testing.assert_allclose(dist.params, serial.params, rtol=1e-4, atol=1e-6 if dtype == "float32" else 1e-12)
    assert h["loss"][0] == pytest.approx(fnn.Trainer(_net(dtype), optimizer=fnn.Adam(3e-3), batch_size=63, seed=7,
                                                     clip_norm=clip, verbose=0).fit(X, y)["loss"][0], rel=1e-4)
    assert rt.workers == []  # stopped after fit


def test_same_seed_same_weights_and_sync_every_is_parameter_averaging():
    X, y = _data("float32", n=640)
    runs = []
    for sync_every in (1, 4, 4):
        net = _net("float32")
        RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0, num_workers=2,
                   sync_every=sync_every).fit(X, y, epochs=2)
        runs.append(net.params.copy())
    assert np.array_equal(runs[1], runs[2])          # deterministic for a seed and worker count
    assert not np.allclose(runs[0], runs[1], rtol=1e-3)  # averaging every 4 steps is not gradient averaging
    # one worker: averaging is the identity, so local steps must equal serial training exactly
    net1, ref = _net("float64"), _net("float64")
    RayTrainer(net1, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0, num_workers=1,
               sync_every=3).fit(X.astype("float64"), y, epochs=2)
    fnn.Trainer(ref, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0).fit(X.astype("float64"), y, epochs=2)
    np.testing.assert_allclose(net1.params, ref.params, rtol=1e-10, atol=1e-13)


def test_parameter_averaging_against_its_definition():
    # sync_every=2 on 2 workers with SGD: each worker takes 2 steps on its half of 2 batches from
    # the common weights, then the weights are averaged (rows-weighted: equal halves here).
    X, y = _data("float64", n=256)
    net = _net("float64", dropout=0.0)
    rt = RayTrainer(net, optimizer=fnn.SGD(0.1), batch_size=64, seed=5, verbose=0, num_workers=2, sync_every=2)
    w0 = net.params.copy()
    rt.fit(X, y, epochs=1)
    perm = np.random.default_rng(5).permutation(256)
    w = w0
    for g in range(2):
        ends = []
        for k in range(2):
            local = _net("float64", dropout=0.0)
            local.params[...] = w
            rows = np.concatenate([perm[s + 32 * k:s + 32 * (k + 1)] for s in (128 * g, 128 * g + 64)])
            fnn.Trainer(local, optimizer=fnn.SGD(0.1), batch_size=32, verbose=0).fit(X[rows], y[rows], shuffle=False)
            ends.append(local.params.copy())
        w = (ends[0] + ends[1]) / 2
    np.testing.assert_allclose(net.params, w, rtol=1e-10, atol=1e-13)


@pytest.mark.slow  # the killed-worker test below resumes from a checkpoint too
def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    X, y = _data("float32", n=640)
    full = _net("float32")
    RayTrainer(full, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0).fit(X, y, epochs=3)
    part = _net("float32")
    ckpt = tmp_path / "last.ckpt"
    RayTrainer(part, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0,
               callbacks=[ModelCheckpoint(ckpt, save_training_state=True)]).fit(X, y, epochs=2)
    resumed = _net("float32", seed=99)
    rt = RayTrainer(resumed, optimizer=fnn.Adam(3e-3), batch_size=64, verbose=0)
    rt.fit(X, y, epochs=3, resume_from=ckpt)
    assert rt.epoch == 3
    np.testing.assert_allclose(resumed.params, full.params, rtol=1e-6, atol=1e-7)


def test_evaluate_history_and_profile():
    X, y = _data("float32", n=640)
    net = _net("float32", dropout=0.0)
    rt = RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=64, seed=0, verbose=0, metrics=["accuracy"])
    h = rt.fit(X, y, epochs=2, validation_data=(X[:100], y[:100]))
    assert len(h["compute_time"]) == len(h["communication_time"]) == len(h["update_time"]) == 2
    assert "val_loss" in h and h["loss"][1] < h["loss"][0]
    serial = fnn.Trainer(net, verbose=0, metrics=["accuracy"]).evaluate(X, y)
    assert rt.evaluate(X, y) == pytest.approx(serial)
    a = rt.profile.arrays()
    assert len(a["wall"]) == 20 and (a["steps"] == 1).all()
    np.testing.assert_allclose(a["compute"] + a["communication"] + a["reduce"] + a["update"], a["wall"], rtol=1e-9)
    assert (a["compute"] > 0).all() and (a["update"] > 0).all()
    assert sum(h["compute_time"]) == pytest.approx(a["compute"].sum())
    s = rt.profile.summary()
    assert 0 < s["communication_share"] < 1 and s["records"] == 19


def test_scaling_estimate_model():
    # weak scaling: 1 ms compute per step on every worker, sync 0.5 ms + 0.0625 ms x N
    rows = scaling_estimate(1e-3, 0.5e-3, workers=(8, 32), comm_per_worker=0.0625e-3)
    assert rows[0]["comm"] == pytest.approx(1e-3) and rows[0]["efficiency"] == pytest.approx(0.5)
    # 80%: k >= 1 ms * 0.8 / (1 ms * 0.2) = 4; 32 workers: comm 2.5 ms -> k >= 10
    assert [r["needed_sync_every"] for r in rows] == [4, 10]
    assert scaling_estimate(1e-3, 1e-3, workers=(8,), sync_every=4)[0]["efficiency"] == pytest.approx(0.8)
    # averaging ships 3x the bytes: 3x the k; strong scaling divides the compute by N
    assert scaling_estimate(1e-3, 1e-3, workers=(8,), averaging_cost=3)[0]["needed_sync_every"] == 12
    strong = scaling_estimate(8e-3, 1e-3, workers=(8,), strong=True)[0]
    assert strong["compute"] == pytest.approx(1e-3) and strong["speedup"] == pytest.approx(4.0)
    assert scaling_estimate(1e-3, 0.1e-3, workers=(2,))[0]["needed_sync_every"] == 1


# ---------------------------------------------------------------------------- faults
def test_killed_worker_stops_fit_naming_it_with_the_last_completed_weights(tmp_path):
    X, y = _data("float32", n=640)
    net = _net("float32")
    ckpt = tmp_path / "last.ckpt"
    killer = _At(1, 3, lambda tr: ray.kill(tr.workers[1]))
    rt = RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0, timeout=60,
                    callbacks=[ModelCheckpoint(ckpt, save_training_state=True), killer])
    t0 = time.perf_counter()
    with pytest.raises(WorkerError, match=r"worker 1 of 2 died") as info:
        rt.fit(X, y, epochs=3)
    assert time.perf_counter() - t0 < 30  # detected, not waited out
    assert info.value.worker == 1 and info.value.step == 10 + 4 + 1
    np.testing.assert_array_equal(net.params, killer.params)  # the failed step changed nothing
    assert rt.workers == []
    # continue from the last checkpoint (end of epoch 1) with new workers: same as never interrupted
    resumed = _net("float32", seed=42)
    RayTrainer(resumed, optimizer=fnn.Adam(3e-3), batch_size=64, verbose=0).fit(X, y, epochs=3, resume_from=ckpt)
    full = _net("float32")
    RayTrainer(full, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0).fit(X, y, epochs=3)
    np.testing.assert_allclose(resumed.params, full.params, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sync_every", [1, 2])
def test_worker_exception_surfaces(sync_every):
    X, y = _data("float32", n=640)
    net = _net("float32")
    poison = _At(0, 2, lambda tr: tr.workers[0]._inject_fault.remote("bad rows in shard 0"))
    rt = RayTrainer(net, batch_size=64, seed=3, verbose=0, callbacks=[poison], sync_every=sync_every)
    with pytest.raises(WorkerError, match="worker 0 of 2 raised ValueError.*bad rows in shard 0") as info:
        rt.fit(X, y, epochs=1)
    assert isinstance(info.value.__cause__, ValueError) and info.value.worker == 0


def test_hung_worker_times_out_naming_it():
    X, y = _data("float32", n=640)
    net = _net("float32")
    hang = _At(0, 1, lambda tr: tr.workers[1]._inject_fault.remote(None, sleep=30))
    rt = RayTrainer(net, batch_size=64, seed=3, verbose=0, callbacks=[hang], timeout=1.5)
    t0 = time.perf_counter()
    with pytest.raises(WorkerError, match=r"worker\(s\) \[1\] did not answer within 1.5 s during a gradient step"):
        rt.fit(X, y, epochs=1)
    assert time.perf_counter() - t0 < 20


# ---------------------------------------------------------------------------- arguments
def test_more_workers_than_cpus_is_an_error():
    X, y = _data("float32", n=128)
    with pytest.raises(ValueError, match=r"num_workers=3 is more than the Ray cluster's 2 CPUs"):
        RayTrainer(_net("float32"), batch_size=32, num_workers=3, verbose=0).fit(X, y)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_workers": 0}, "num_workers"), ({"num_workers": 2.5}, "num_workers"), ({"sync_every": 0}, "sync_every"),
    ({"timeout": 0}, "timeout"), ({"timeout": float("nan")}, "timeout"), ({"batch_size": 1}, "batch_size"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    kw = {"batch_size": 32, "verbose": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        RayTrainer(_net("float32"), **kw)
    with pytest.raises(TypeError, match="address"):
        RayTrainer(_net("float32"), address=6379)


def test_transformer_dropout_equals_serial_training():
    # TransformerBlock keys its dropout masks by the row in the whole batch (row0, as Dropout), so each
    # worker draws the masks its rows have in serial training (issue 12 lifted the refusal).
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64 * 3, 4, 5)), rng.integers(0, 4, 64 * 3)

    def net():
        return fnn.Network([fnn.TransformerBlock(1, 8, dropout=0.3), fnn.Flatten(), fnn.Dense(4)],
                           input_shape=(4, 5), seed=0, dtype="float64")
    serial, dist = net(), net()
    kw = dict(batch_size=64, seed=3, verbose=0)
    fnn.Trainer(serial, optimizer=fnn.SGD(0.05, momentum=0.9), n_threads=1, **kw).fit(X, y, epochs=2)
    RayTrainer(dist, optimizer=fnn.SGD(0.05, momentum=0.9), num_workers=2, **kw).fit(X, y, epochs=2)
    assert not np.array_equal(dist.params, net().params)  # it trained
    np.testing.assert_allclose(dist.params, serial.params, rtol=0, atol=1e-12)


def test_unsupported_options_are_refused():
    X, y = _data("float32", n=128)
    with pytest.raises(ValueError, match="augment"):
        RayTrainer(_net("float32"), batch_size=32, verbose=0).fit(X, y, augment=lambda X, out: None)


# ---------------------------------------------------------------------------- clusters
_SCRIPT = r"""
import sys, numpy as np, ray
import fastnn as fnn
from fastnn.distributed import RayTrainer
address = sys.argv[1] if len(sys.argv) > 1 else None
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 20)).astype("float32"); y = rng.integers(0, 4, 256)
mk = lambda: fnn.Network([fnn.Dense(16, activation="relu"), fnn.Dense(4)], input_shape=(20,), seed=1)
a, b = mk(), mk()
fnn.Trainer(a, batch_size=32, seed=2, verbose=0).fit(X, y)
RayTrainer(b, batch_size=32, seed=2, verbose=0, num_workers=2, address=address).fit(X, y)
assert np.allclose(a.params, b.params, rtol=1e-4, atol=1e-6), np.abs(a.params - b.params).max()
print("GCS", ray.get_runtime_context().gcs_address)
"""


def _run_script(tmp_path, *args):
    script = tmp_path / "ray_fit.py"
    script.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("GCS ")][0]


def test_connects_to_an_existing_cluster_by_address(tmp_path):
    address = ray.get_runtime_context().gcs_address
    assert _run_script(tmp_path, address) == address


@pytest.mark.slow
def test_starts_a_local_cluster_when_none_is_given(tmp_path):
    assert _run_script(tmp_path) != ray.get_runtime_context().gcs_address


@pytest.mark.parametrize("data", ["shared", pytest.param("sharded", marks=pytest.mark.slow)])
def test_max_restarts_replaces_a_dead_worker_and_reruns_the_step_exactly(data):
    X, y = _data("float32", n=640)
    full = _net("float32")
    RayTrainer(full, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0, data=data).fit(X, y, epochs=2)
    net = _net("float32")
    killer = _At(1, 3, lambda tr: ray.kill(tr.workers[0]))
    rt = RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=64, seed=3, verbose=0, max_restarts=1,
                    callbacks=[killer], data=data)
    rt.fit(X, y, epochs=2)
    assert rt.restart_log == [{"worker": 0, "step": 15}]
    np.testing.assert_array_equal(net.params, full.params)  # the re-run step is the same step
    if data == "sharded":
        return
    # a second death is one more than allowed
    twice = [_At(0, 2, lambda tr: ray.kill(tr.workers[1])), _At(1, 2, lambda tr: ray.kill(tr.workers[1]))]
    with pytest.raises(WorkerError, match="worker 1 of 2 died") as info:
        RayTrainer(_net("float32"), batch_size=64, seed=3, verbose=0, max_restarts=1, callbacks=twice).fit(X, y,
                                                                                                           epochs=2)
    assert info.value.kind == "died" and info.value.step == 14
    with pytest.raises(ValueError, match="max_restarts=1 needs sync_every=1"):
        RayTrainer(_net("float32"), batch_size=64, max_restarts=1, sync_every=2)


def test_workers_run_single_threaded_in_their_own_processes():
    X, y = _data("float32", n=256)
    seen = {}
    probe = _At(0, 0, lambda tr: seen.update(enumerate(ray.get([w.ready.remote() for w in tr.workers], timeout=60))))
    RayTrainer(_net("float32"), batch_size=64, seed=0, verbose=0, callbacks=[probe]).fit(X, y)
    assert sorted(seen) == [0, 1] and [seen[k]["rank"] for k in (0, 1)] == [0, 1]
    assert len({seen[k]["pid"] for k in (0, 1)} | {os.getpid()}) == 3
    assert all(seen[k]["threads"] == 1 and seen[k]["blas_threads"] in (1, None) for k in (0, 1))


def test_divergence_raises_nonfinite_and_stops_the_workers():
    X, y = _data("float32", n=256)
    X[:] *= 1e18  # the first step's gradients overflow float32
    rt = RayTrainer(_net("float32", dropout=0.0), optimizer=fnn.SGD(1e6), batch_size=64, seed=0, verbose=0)
    before = rt.network.params.copy()
    with pytest.raises(fnn.NonFiniteError):
        rt.fit(X, y, epochs=2)
    # the Trainer's guard restored the weights from before the chunk (the epoch's 4 batches)
    assert rt.workers == [] and rt.optimizer.iterations == 0
    np.testing.assert_array_equal(rt.network.params, before)


# ---------------------------------------------------------------------------- sharded data
def _sharded_order(perm, n_workers, batch):
    """The rows of every batch of data='sharded', in order: worker k's next batch/N rows of its shard."""
    local = [perm[perm % n_workers == k] for k in range(n_workers)]  # global row ids, shard order
    b = batch // n_workers
    steps = -(-len(perm) // batch)
    return np.concatenate([np.concatenate([loc[j * b:(j + 1) * b] for loc in local]) for j in range(steps)])


@pytest.mark.parametrize("sync_every", [1, 3])
def test_sharded_data_equals_serial_training_on_its_batches(sync_every):
    # 641 rows on 2 workers: shards of 321 and 320, so the last batch (1 row) comes from worker 0 only
    X, y = _data("float64", n=641)
    net = _net("float64")
    rt = RayTrainer(net, optimizer=fnn.Adam(3e-3), batch_size=64, seed=11, verbose=0, data="sharded",
                    sync_every=sync_every, num_workers=2)
    h = rt.fit(X, y, epochs=2)
    assert rt.optimizer.iterations == 22
    rng = np.random.default_rng(11)  # the Trainer's shuffling: one permutation per epoch
    orders = [_sharded_order(rng.permutation(641), 2, 64) for _ in range(2)]
    if sync_every == 1:
        ref = _net("float64")
        tr = fnn.Trainer(ref, optimizer=fnn.Adam(3e-3), batch_size=64, verbose=0)
        for order in orders:
            tr.fit(X[order], y[order], shuffle=False)
        np.testing.assert_allclose(net.params, ref.params, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h["loss"][1], tr.history["loss"][0], rtol=1e-10)
    else:  # deterministic, and not the shared-data run
        again = _net("float64")
        RayTrainer(again, optimizer=fnn.Adam(3e-3), batch_size=64, seed=11, verbose=0, data="sharded",
                   sync_every=3).fit(X, y, epochs=2)
        np.testing.assert_array_equal(net.params, again.params)
        shared = _net("float64")
        RayTrainer(shared, optimizer=fnn.Adam(3e-3), batch_size=64, seed=11, verbose=0, sync_every=3).fit(X, y, epochs=2)
        assert not np.allclose(shared.params, net.params, rtol=1e-3)


def test_sharded_data_arguments():
    X, y = _data("float32", n=128)
    with pytest.raises(ValueError, match="data must be"):
        RayTrainer(_net("float32"), data="split")
    with pytest.raises(ValueError, match=r"batch_size \(63\) divisible by num_workers"):
        RayTrainer(_net("float32"), batch_size=63, data="sharded", verbose=0).fit(X, y)
    with pytest.raises(ValueError, match="samples_per_epoch"):
        RayTrainer(_net("float32"), batch_size=64, data="sharded", verbose=0).fit(X, y, samples_per_epoch=100)
    with pytest.raises(ValueError, match=r"the batch \(127"):
        RayTrainer(_net("float32"), batch_size=256, data="sharded", verbose=0).fit(X[:127], y[:127])
