"""The MNIST pipeline (examples/train_mnist.py, `fastnn train`) on real data, and its report vs scikit-learn."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

import fastnn as fnn
from fastnn.apps import mnist_pipeline as mp

REPO = Path(__file__).resolve().parents[2]


def _check_report_against_sklearn(report, y_true, text=True):
    y_pred = report["y_pred"]
    labels = np.arange(10)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(report["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=labels))
    p, r, f1, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(report["precision"], p)
    np.testing.assert_allclose(report["recall"], r)
    np.testing.assert_allclose(report["f1"], f1)
    np.testing.assert_array_equal(report["support"], s)
    mp_, mr, mf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                         zero_division=0)
    assert report["macro_precision"] == pytest.approx(mp_)
    assert report["macro_recall"] == pytest.approx(mr)
    assert report["macro_f1"] == pytest.approx(mf)
    if text:  # (sklearn prints supports as floats when a class is absent from both)
        assert report["classification_report"] == \
            skm.classification_report(y_true, y_pred, labels=labels, digits=4, zero_division=0)


def test_pipeline_on_real_mnist_subset(tmp_path, mnist_dir):
    """A few thousand real MNIST images reach >= 90% test accuracy in seconds."""
    lines = []
    result = mp.train(data=mnist_dir, limit=8000, test_limit=2000, epochs=4, hidden=(256,), batch_size=32,
                      out=tmp_path / "run", verbose=0, print_fn=lines.append)
    text = "\n".join(lines)
    report = result["report"]
    assert result["dataset"] == "mnist"
    assert report["n_samples"] == 2000
    assert report["accuracy"] >= 0.90, text
    assert "Confusion matrix" in text and "Test accuracy" in text
    # the evaluated model is the best one by validation loss, reloaded from disk
    history = result["history"]
    best_epoch = int(np.argmin(history["val_loss"]))
    assert fnn.io.read_header(result["best_path"])["metadata"]["epoch"] == str(best_epoch + 1)
    ds = mp.load_dataset(mnist_dir, limit=8000, test_limit=2000)
    _check_report_against_sklearn(report, ds.y_test)
    np.testing.assert_array_equal(report["y_pred"], fnn.Network.load(result["best_path"]).predict(ds.X_test))


def test_dataset_split_is_stratified_and_reproducible(mnist_dir):
    a = mp.load_dataset(mnist_dir)
    b = mp.load_dataset(mnist_dir, limit=20000)
    assert (len(a.X_train), len(a.X_val), len(a.X_test)) == (55000, 5000, 10000)
    assert (len(b.X_train), len(b.X_val), len(b.X_test)) == (18333, 1667, 10000)
    from fastnn.data.preprocessing import train_val_split

    X, y = np.concatenate([a.X_train, a.X_val]), np.concatenate([a.y_train, a.y_val])
    assert not np.array_equal(a.y_val, train_val_split(X, y, 5000 / 60000, seed=1, stratify=True)[1][1])
    counts = np.bincount(a.y_val, minlength=10) / len(a.y_val)
    full = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10) / 60000
    np.testing.assert_allclose(counts, full, atol=2e-4)
    assert a.X_train.dtype == np.float32 and 0 <= a.X_train.min() and a.X_train.max() <= 1


def test_digits_fallback_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    lines = []
    ds = mp.load_dataset(None, download=False, print_fn=lines.append)  # nothing explicit: the digits fallback
    assert ds.name == "digits" and ds.n_features == 64
    assert "Falling back" in lines[0] and "--data" in lines[0]
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):  # an explicit directory without MNIST
        mp.load_dataset(tmp_path, download=False)
    with pytest.raises(FileNotFoundError):
        mp.load_dataset(tmp_path, dataset="mnist", download=False)


def test_report_matches_sklearn_with_missing_classes():
    net = fnn.Network([fnn.Dense(4, 10)], seed=0)
    rng = np.random.default_rng(0)
    X = rng.random((50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)  # most classes absent: zero-division paths
    report = mp.evaluate(net, X, y)
    _check_report_against_sklearn(report, y, text=False)
    text = mp.format_report(report)
    assert "true\\pred" in text and "macro avg" in text


def test_example_script_is_a_thin_wrapper(tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the example finds the source checkout itself
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train_mnist.py"), "--dataset", "digits",
                           "--epochs", "3", "--hidden", "32", "--out", str(tmp_path / "run"), "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Test accuracy" in proc.stdout and (tmp_path / "run" / "best.fnn").is_file()
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train_mnist.py"), "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--resume" in proc.stdout and "98.5% test accuracy" in proc.stdout
