"""fastnn.experiments.sweep: determinism, divergence, interruption, bad grids, n_jobs, CSV, plot (issue 16)."""
import math
import sys

import numpy as np
import pytest

import fastnn as fnn
from fastnn.errors import ParameterError
from fastnn.experiments import MLPFactory, SweepResult, load_dataset, read_csv, sweep
from fastnn.experiments import sweeper as sweep_module


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits", limit=400)
    return d


@pytest.fixture(scope="module")
def factory(digits):
    return MLPFactory(digits.n_inputs, 10, hidden=(16,))


def _sweep(factory, digits, grid, **kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("seeds", 2)
    kw.setdefault("n_jobs", 1)
    return sweep(factory, grid, digits.X, digits.y, validation_data=(digits.X_val, digits.y_val), **kw)


def _numbers(result):
    return [(r["config"], r["seed"], r["status"], r["epochs"], r["final"], r["best"], r["curves"]["loss"],
             r["curves"].get("val_accuracy")) for r in result.runs]


def test_same_seeds_give_the_same_table(factory, digits):
    grid = {"optimizer": ["sgd", "adam"], "lr": [0.05, 0.005]}
    a = _sweep(factory, digits, grid, target=0.5)
    b = _sweep(factory, digits, grid, target=0.5)
    assert isinstance(a, SweepResult) and not a.interrupted
    assert a.table(timings=False) == b.table(timings=False)
    assert _numbers(a) == _numbers(b)
    assert [r["seed"] for r in a.runs] == [0, 1] * 4
    assert [r["config"] for r in a.runs][::2] == [{"optimizer": o, "lr": lr} for o in ("sgd", "adam")
                                                  for lr in (0.05, 0.005)]
    # the seeds matter: different seeds, different curves
    assert a.runs[0]["curves"]["loss"] != a.runs[1]["curves"]["loss"]
    c = _sweep(factory, digits, grid, target=0.5, seeds=[5, 6])
    assert _numbers(c) != _numbers(a)


def test_rows_table_and_metrics(factory, digits):
    r = _sweep(factory, digits, [{"optimizer": "adam", "lr": 0.01}], target=0.5, epochs=4)
    (row,) = r.rows
    assert row["optimizer"] == "adam" and row["runs"] == 2 and row["ok"] == 2 and row["diverged"] == 0
    finals = [run["final"] for run in r.runs]
    assert row["final_mean"] == pytest.approx(np.mean(finals))
    assert row["final_std"] == pytest.approx(np.std(finals, ddof=1))
    assert row["best_mean"] >= row["final_mean"] - 1e-12
    run = r.runs[0]
    assert r.metric == "val_accuracy" and run["final"] == run["curves"]["val_accuracy"][-1]
    assert len(run["curves"]["time"]) == run["epochs"] == 4
    assert np.all(np.diff(run["curves"]["time"]) > 0)
    assert run["samples_per_s"] > 0
    assert run["epochs_to_target"] >= 1 and run["time_to_target"] == run["curves"]["time"][
        run["epochs_to_target"] - 1]
    text = r.table()
    assert "final val_accuracy" in text and "samples/s" in text and "±" in text and "time to >= 0.5" in text
    assert r.best() == row


def test_a_diverging_configuration_is_recorded_not_raised(factory, digits):
    r = _sweep(factory, digits, {"optimizer": ["sgd"], "lr": [10.0, 0.05]}, epochs=3)
    diverged, fine = r.rows
    assert diverged["lr"] == 10.0 and diverged["diverged"] == 2 and diverged["ok"] == 0
    assert math.isnan(diverged["final_mean"])
    assert all(run["status"] == "diverged" and "learning rate too high" in run["error"] for run in r.runs_of(0))
    assert fine["ok"] == 2 and fine["final_mean"] > 0.5
    line = next(li for li in r.table().splitlines() if li.startswith("sgd        10"))
    assert "diverged" in line
    assert r.best()["lr"] == 0.05


class _InterruptAt(fnn.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) in the ``n``-th run this object sees."""

    every_batch = False

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_train_begin(self, logs=None):
        self.seen += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.seen == self.n and epoch == 1:
            raise KeyboardInterrupt


def test_interrupt_keeps_the_finished_runs(factory, digits):
    r = _sweep(factory, digits, {"lr": [0.01, 0.001]}, callbacks=[_InterruptAt(3)])
    assert r.interrupted
    assert [(run["config"]["lr"], run["seed"]) for run in r.runs] == [(0.01, 0), (0.01, 1)]
    assert len(r.rows) == 1 and r.rows[0]["runs"] == 2
    assert "INTERRUPTED: 2 of 4 runs finished" in r.table()
    assert "interrupted" in repr(r)


def test_interrupt_of_worker_processes_keeps_every_finished_run(factory, digits):
    """Ctrl-C while workers train: nothing new starts, the runs in flight finish and are kept."""
    tasks = [(i, 0, {"lr": 0.01 / (i + 1)}, 0) for i in range(10)]
    settings = {"fixed": {}, "loss": fnn.losses.get("cross_entropy"), "epochs": 60, "seconds": None,
                "metric": "loss", "target": None, "callbacks": [], "n_threads": 1}
    got = []

    def on_done(i, j, record):
        got.append((i, record["config"], record["status"]))
        if len(got) == 1:
            raise KeyboardInterrupt  # as Ctrl-C in the parent would, while it waits for the workers
    with pytest.raises(KeyboardInterrupt):
        sweep_module._run_pool(tasks, 2, factory, (digits.X, digits.y, None), settings, on_done)
    # the first, then the runs in flight (one per worker) and those the executor had already queued
    # to the workers (measured: 5 or 6 of the 10 in all); the rest never start
    assert 2 <= len(got) < len(tasks), got
    assert len({i for i, _, _ in got}) == len(got) and all(status == "ok" for _, _, status in got)
    assert all(config == tasks[i][2] for i, config, _ in got)


@pytest.mark.parametrize("grid, message", [
    ({}, "the grid is empty"),
    ([], "empty list"),
    ({"lr": []}, "grid['lr'] is an empty list"),
    ({"learning_rate": [0.1]}, "unknown grid key 'learning_rate'"),
    ({"lr": 0.1}, "grid['lr'] must be a list"),
    ({"optimizer": "adam"}, "grid['optimizer'] must be a list"),
    ({"lr": ["fast"]}, "grid['lr'][0] must be a finite number > 0"),
    ({"lr": [0.1, -1]}, "grid['lr'][1] must be"),
    ({"batch_size": [0]}, "grid['batch_size'][0] must be a positive integer or 'full'"),
    ({"optimizer": ["lbfgs"]}, "unknown optimizer 'lbfgs'"),
    ({"activation": [object()]}, "grid['activation'][0] must be a plain value"),
    ({"optimizer": ["adam"], "momentum": [0.9]}, "momentum applies to optimizer 'sgd' only"),
    ({"lr": [0.1, 0.1]}, "repeats the configuration"),
    ({"seed": [0, 1]}, "seed is not a grid key"),
    ([{"lr": 0.1}, "adam"], "grid[1] must be a dict"),
    ("lr=0.1", "grid must be a dict of lists or a list of dicts"),
])
def test_bad_grids_raise_a_clear_error_before_any_run(factory, digits, grid, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")) as exc:
        _sweep(factory, digits, grid)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 2, "seconds": 1.0}, "not both"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"seconds": -1, "epochs": None}, "seconds must be a positive"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"seeds": [0, 0]}, "distinct"),
    ({"n_jobs": 0}, "n_jobs must be"),
    ({"target": float("nan")}, "target must be a finite number"),
    ({"callbacks": [print]}, "callbacks must be fastnn Callbacks"),
    ({"fixed": {"widht": 3}}, "unknown grid key 'widht'"),
])
def test_bad_settings_raise(factory, digits, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        _sweep(factory, digits, {"lr": [0.01]}, **kwargs)


def test_make_network_must_take_seed(digits):
    with pytest.raises(ParameterError, match="seed="):
        _sweep(lambda hidden=8: None, digits, {"lr": [0.01]})
    with pytest.raises(ParameterError, match="make_network must be a callable"):
        _sweep("mlp", digits, {"lr": [0.01]})


def test_unknown_metric_names_what_was_logged(factory, digits):
    with pytest.raises(ValueError, match="metric 'val_f1' is not among the logged values"):
        _sweep(factory, digits, {"lr": [0.01]}, metric="val_f1")


def test_network_keys_fixed_settings_and_full_batch(factory, digits):
    r = _sweep(factory, digits, {"activation": ["relu", "tanh"], "depth": [1, 2]},
               fixed={"batch_size": "full", "lr": 0.01, "width": 8}, seeds=1, epochs=2)
    assert len(r.rows) == 4 and all(row["ok"] == 1 for row in r.rows)
    assert r.runs[0]["samples_per_s"] > 0
    # batch 'full' is one step per epoch: the loss of epoch 1 is the loss of the initial weights
    net = factory(seed=0, activation="relu", depth=1, width=8)
    trainer = fnn.Trainer(net, verbose=0)
    assert r.runs[0]["curves"]["loss"][0] == pytest.approx(trainer.evaluate(digits.X, digits.y)["loss"], rel=1e-5)


def test_seconds_budget_trains_whole_epochs_until_the_time_is_up(factory, digits):
    r = _sweep(factory, digits, {"lr": [0.01]}, seconds=0.05, seeds=1, epochs=None)
    (run,) = r.runs
    assert run["epochs"] >= 1 and run["curves"]["time"][-1] >= 0.05
    assert run["curves"]["time"][-2] < 0.05 if run["epochs"] > 1 else True
    assert "0.05 s per run" in r.table()


def test_results_do_not_depend_on_n_jobs(factory, digits):
    grid = {"optimizer": ["sgd_momentum", "rmsprop"], "lr": [0.01, 0.001]}
    serial = _sweep(factory, digits, grid, n_jobs=1)
    parallel = _sweep(factory, digits, grid, n_jobs=2)
    assert parallel.execution.startswith("2 worker processes")
    assert serial.execution == "serial: n_jobs=1"
    assert _numbers(parallel) == _numbers(serial)
    assert parallel.table(timings=False) == serial.table(timings=False)


def test_auto_stays_serial_for_short_runs_and_unpicklable_factories(factory, digits):
    r = _sweep(factory, digits, {"lr": [0.01, 0.001]}, n_jobs="auto", epochs=1)
    assert r.execution.startswith("serial"), r.execution  # four tiny runs: far below MIN_PARALLEL_SECONDS
    local = lambda seed=None, **kw: factory(seed=seed, **kw)  # noqa: E731 (a lambda does not pickle)
    with pytest.raises(ParameterError, match="needs a picklable make_network"):
        _sweep(local, digits, {"lr": [0.01, 0.001]}, n_jobs=2)


def test_the_auto_rule(factory, monkeypatch):
    """Workers when the work left is long enough, cores are idle and the factory pickles; else serial."""
    monkeypatch.setattr(sweep_module, "get_num_threads", lambda: 2)
    monkeypatch.setattr(sweep_module, "idle_cores", lambda cores: float(cores))
    choose = sweep_module._choose_workers
    long_enough = sweep_module.MIN_PARALLEL_SECONDS  # 10 runs left x this / 10 s each
    n, why = choose("auto", 10, long_enough / 10, factory, [])
    assert n == 2 and why.startswith("2 worker processes, one thread each"), why
    assert choose("auto", 10, long_enough / 20, factory, [])[0] == 1  # half as long: not worth the start-up
    local = lambda seed=None, **kw: factory(seed=seed, **kw)  # noqa: E731 (a lambda does not pickle)
    n, why = choose("auto", 10, 5.0, local, [])
    assert n == 1 and "cannot be sent to worker processes" in why
    monkeypatch.setattr(sweep_module, "idle_cores", lambda cores: 0.4)  # a busy machine
    n, why = choose("auto", 10, 5.0, factory, [])
    assert n == 1 and "load average leaves 0.4 of 2 cores idle" in why
    assert choose(3, 10, 0.001, factory, []) == (3, "3 worker processes: n_jobs=3")  # forced: no rule
    assert choose("auto", 0, 5.0, factory, [])[0] == 1
    monkeypatch.setattr(sweep_module, "get_num_threads", lambda: 1)
    assert choose("auto", 10, 5.0, factory, []) == (1, "serial: one thread")


def test_idle_cores_from_the_load_average(monkeypatch):
    for load, idle in ((1.0, 2.0), (1.5, 1.5), (3.0, 0.0), (9.0, 0.0), (0.2, 2.0)):
        monkeypatch.setattr(sweep_module.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert sweep_module.idle_cores(2) == idle


@pytest.mark.skipif(fnn.get_num_threads() < 2, reason="the split rule needs two threads")
def test_runs_the_trainer_would_thread_stay_in_this_process(digits):
    wide = MLPFactory(784, 10, hidden=(1024, 1024))  # 1.9M parameters: the column split or shards
    X = np.zeros((512, 784), np.float32)
    y = np.zeros(512, np.int64)
    assert sweep_module._would_split(wide, {"batch_size": 256}, 0, {}, fnn.losses.get("cross_entropy"), X, y)
    small = MLPFactory(64, 10, hidden=(16,))
    assert not sweep_module._would_split(small, {}, 0, {}, fnn.losses.get("cross_entropy"), digits.X, digits.y)


def test_csv_round_trip(factory, digits, tmp_path):
    r = _sweep(factory, digits, {"optimizer": ["sgd", "adam"], "lr": [10.0, 0.01]}, target=0.5)
    path = tmp_path / "sweep.csv"
    assert r.to_csv(path) == path
    back = read_csv(path)
    assert len(back) == len(r.rows) == 4
    for got, want in zip(back, r.rows):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(got[key])
            else:
                assert got[key] == value, key
    r.to_csv(path, per_run=True)
    runs = read_csv(path)
    assert [(x["optimizer"], x["seed"], x["status"]) for x in runs] == [
        (run["config"]["optimizer"], run["seed"], run["status"]) for run in r.runs]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.csv"]  # atomic: no temp file left


def test_plot_writes_a_figure(factory, digits, tmp_path):
    pytest.importorskip("matplotlib")
    r = _sweep(factory, digits, {"lr": [0.01, 0.001]}, seeds=1)
    fig = r.plot(tmp_path / "curves.png", metrics=("loss", "val_accuracy"), x="time")
    assert len(fig.axes) == 2
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no run logged 'val_f1'"):
        r.plot(metrics="val_f1")
    with pytest.raises(ValueError, match="x must be one of"):
        r.plot(x="steps")


def test_plot_without_matplotlib_says_how_to_install(factory, digits, monkeypatch):
    r = _sweep(factory, digits, {"lr": [0.01]}, seeds=1, epochs=1)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    with pytest.raises(ImportError, match="pip install fastnn\\[plot\\]"):
        r.plot()


def test_mlp_factory(digits):
    make = MLPFactory(64, 10, hidden=(32, 16), dropout=0.2, batch_norm=True)
    net = make(seed=0)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "BatchNorm", "Dropout", "Dense",
                                                             "BatchNorm", "Dropout", "Dense"]
    assert [layer.n_outputs for layer in make(seed=0, depth=3, width=8, dropout=0.0, batch_norm=False).layers] == \
        [8, 8, 8, 10]
    np.testing.assert_array_equal(make(seed=3).params, make(seed=3).params)
    with pytest.raises(ParameterError, match="activation"):
        make(seed=0, activation="relu7")
    with pytest.raises(ParameterError, match="hidden must be a tuple of positive integers"):
        MLPFactory(64, 10, hidden=(0,))
    with pytest.raises(ParameterError, match="dropout"):
        make(seed=0, dropout=1.0)


def test_load_dataset_offline_sets():
    for name, n_in, n_classes in (("iris", 4, 3), ("wine", 13, 3), ("breast_cancer", 30, 2)):
        d = load_dataset(name)
        assert d.n_inputs == n_in and d.n_classes == n_classes and d.loss == "cross_entropy"
        assert abs(float(d.X.mean())) < 1e-4 and d.X.dtype == np.float32
        assert set(np.unique(d.y_val)) == set(range(n_classes))
    reg = load_dataset("linear_regression")
    assert reg.loss == "mse" and reg.n_outputs == 1 and "regression" in reg.describe()
    with pytest.raises(ParameterError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
