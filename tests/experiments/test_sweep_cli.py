"""``fastnn sweep`` (issue 16): grids from KEY=V1,V2 pairs or JSON, offline datasets, table, CSV, errors."""
import contextlib
import io
import json
import subprocess
import sys

import pytest

from fastnn.apps import cli
from fastnn.apps.sweep_cli import parse_grid_pairs, parse_value
from fastnn.experiments import read_csv


def _main(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_values_and_pairs_are_parsed():
    assert [parse_value(t) for t in ("3", "0.1", "1e-3", "adam", "128-64", "full", "True", "none")] == \
        [3, 0.1, 0.001, "adam", (128, 64), "full", True, None]
    assert parse_grid_pairs(["lr=0.1,0.01", "optimizer=adam"]) == {"lr": [0.1, 0.01], "optimizer": ["adam"]}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_grid_pairs(["lr"])
    with pytest.raises(ValueError, match="twice"):
        parse_grid_pairs(["lr=0.1", "lr=0.2"])


def test_sweep_prints_the_table_and_writes_csv(tmp_path):
    csv_path = tmp_path / "t.csv"
    status, out, err = _main("sweep", "--dataset", "iris", "--grid", "optimizer=sgd,adam", "--grid", "lr=100,0.01",
                             "--epochs", "3", "--seeds", "2", "--target", "0.8", "--csv", csv_path, "--jobs", "1")
    assert status == 0, err
    assert "iris: 120 training / 30 validation samples, 4 inputs, 3 classes" in out
    lines = out.splitlines()
    header = next(i for i, li in enumerate(lines) if li.startswith("optimizer"))
    assert "final val_accuracy" in lines[header] and "time to >= 0.8" in lines[header]
    rows = lines[header + 2:header + 6]
    assert [r.split()[:2] for r in rows] == [["sgd", "100"], ["sgd", "0.01"], ["adam", "100"], ["adam", "0.01"]]
    assert "diverged" in rows[0]
    assert "runs: serial: n_jobs=1" in out
    back = read_csv(csv_path)
    assert [(r["optimizer"], r["lr"], r["diverged"]) for r in back] == [
        ("sgd", 100.0, 2), ("sgd", 0.01, 0), ("adam", 100.0, 0), ("adam", 0.01, 0)]


def test_sweep_grid_from_json_list_of_configurations(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"optimizer": "sgd_momentum", "lr": 0.01}, {"hidden": [16, 8], "lr": 0.001}]))
    status, out, err = _main("sweep", "--dataset", "wine", "--grid-json", grid, "--epochs", "2", "--seeds", "1")
    assert status == 0, err
    assert "2 configurations x 1 seed, 2 epochs per run" in out
    assert any(li.startswith("sgd_momentum") for li in out.splitlines())
    assert any("16-8" in li for li in out.splitlines())


@pytest.mark.parametrize("argv, message", [
    (["--grid", "lrr=0.1"], "unknown grid key 'lrr'"),
    (["--grid", "lr="], "grid['lr'] is an empty list"),
    (["--grid", "optimizer=lbfgs"], "unknown optimizer 'lbfgs'"),
    ([], "no grid"),
    (["--grid", "lr=0.1", "--grid-json", "x.json"], "not both"),
    (["--grid-json", "missing.json"], "missing.json"),
])
def test_bad_grids_fail_with_a_message(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    status, out, err = _main("sweep", "--dataset", "iris", "--epochs", "1", *argv)
    assert status == 1
    assert message in err and err.startswith("fastnn sweep: error:")


def test_sweep_help_and_bad_flags():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "sweep", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    for word in ("--grid", "--grid-json", "--dataset", "--seeds", "--csv", "sgd_momentum", "breast_cancer"):
        assert word in proc.stdout
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
        cli.main(["sweep", "--epochs", "1", "--seconds", "2", "--grid", "lr=0.1"])
    assert exc.value.code == 2
