"""The ``fastnn`` command line, run as ``python -m fastnn`` in subprocesses."""
import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def _fastnn(*args, cwd, env=None, timeout=240):
    full_env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "fastnn", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_the_commands(tmp_path):
    proc = _fastnn("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in ("train", "evaluate", "info", "MNIST", "fastnn COMMAND --help"):
        assert word in proc.stdout
    proc = _fastnn("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--hidden", "--data", "--out", "--resume", "FASTNN_DATA"):
        assert flag in proc.stdout
    proc = _fastnn("evaluate", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "MODEL" in proc.stdout


def test_no_command_prints_help_and_fails(tmp_path):
    proc = _fastnn(cwd=tmp_path)
    assert proc.returncode == 2 and "COMMAND" in proc.stdout


def test_bad_flag_value_is_explained(tmp_path):
    proc = _fastnn("train", "--epochs", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "positive integer" in proc.stderr


def test_train_resume_and_evaluate_on_mnist_subset(tmp_path, mnist_dir):
    out = tmp_path / "run"
    common = ["--data", mnist_dir, "--limit", "1500", "--hidden", "32", "--out", out, "--quiet", "--threads", "1"]
    proc = _fastnn("train", "--epochs", "1", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Confusion matrix" in proc.stdout and "macro avg" in proc.stdout and "Test accuracy" in proc.stdout
    assert (out / "best.fnn").is_file() and (out / "last.ckpt").is_file()

    proc = _fastnn("train", "--epochs", "2", "--resume", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from fastnn.io import read_header

    assert read_header(out / "last.ckpt")["training"]["trainer"]["epoch"] == 2

    proc = _fastnn("evaluate", out / "best.fnn", "--data", mnist_dir, "--limit", "700", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MNIST test set: 700 samples" in proc.stdout
    assert "accuracy:" in proc.stdout and "true\\pred" in proc.stdout and "macro avg" in proc.stdout


def test_digits_fallback_when_mnist_is_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"FASTNN_DATA": str(empty), "XDG_CACHE_HOME": str(empty)}
    # an explicit --data that holds no data is an error naming the directory, not a fallback
    proc = _fastnn("train", "--data", tmp_path / "no" / "such", "--no-download", "--epochs", "1",
                   "--out", tmp_path / "bad", "--quiet", cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert str(tmp_path / "no" / "such") in proc.stderr and "Falling back" not in proc.stdout
    proc = _fastnn("train", "--no-download", "--epochs", "2", "--hidden", "32",
                   "--out", tmp_path / "run", "--quiet", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Falling back to scikit-learn's bundled 8x8 digits" in proc.stdout
    assert "digits (8x8) test set: 359 samples" in proc.stdout
    proc = _fastnn("evaluate", tmp_path / "run" / "best.fnn", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "359 samples" in proc.stdout
    # continue the finished model with a 10x lower learning rate (fresh optimizer)
    proc = _fastnn("train", "--dataset", "digits", "--init", tmp_path / "run" / "best.fnn", "--lr", "2e-4",
                   "--epochs", "1", "--out", tmp_path / "more", "--hidden", "999", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "starting from the weights of" in proc.stdout and "hidden [32]" in proc.stdout
    assert "lr 0.0002" in proc.stdout


def test_errors_are_reported_without_tracebacks(tmp_path):
    bad = tmp_path / "bad.fnn"
    bad.write_bytes(b"definitely not a model")
    proc = _fastnn("evaluate", bad, cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad magic" in proc.stderr and "Traceback" not in proc.stderr
    proc = _fastnn("evaluate", tmp_path / "missing.fnn", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    proc = _fastnn("train", "--resume", "--out", tmp_path / "nothing", "--dataset", "digits", cwd=tmp_path)
    assert proc.returncode == 1 and "no checkpoint to resume from" in proc.stderr


def test_info(tmp_path):
    proc = _fastnn("info", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fastnn" in proc.stdout
