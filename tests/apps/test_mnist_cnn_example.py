"""The CNN pipeline (issue 11): examples/train_mnist_cnn.py and `fastnn train --model cnn`, on small data."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastnn.apps import cli
from fastnn.apps import mnist_pipeline as mp
from fastnn.io import load_network, read_header

REPO = Path(__file__).resolve().parents[2]


def test_example_script_trains_a_cnn_and_prints_the_report(tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train_mnist_cnn.py"), "--dataset", "digits",
                           "--epochs", "4", "--out", str(tmp_path / "run"), "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Test accuracy" in proc.stdout and "true\\pred" in proc.stdout and "macro avg" in proc.stdout
    net = load_network(tmp_path / "run" / "best.fnn")
    assert [type(l).__name__ for l in net.layers][:4] == ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D"]
    assert net.input_shape == (8, 8, 1)
    accuracy = float(proc.stdout.split("Test accuracy ")[1].split("%")[0])
    assert accuracy > 80, proc.stdout[-2000:]   # 8x8 digits, 4 epochs: a CNN that learns


def test_cli_model_cnn_trains_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--dataset", "digits", "--out", str(out), "--quiet", "--batch-size", "64"]
    assert cli.main(["train", "--model", "cnn", "--epochs", "1", *common]) == 0
    assert read_header(out / "last.ckpt")["metadata"]["model"] == "cnn"
    # --resume picks the CNN (and its SGD optimizer) from the checkpoint without --model
    assert cli.main(["train", "--resume", "--epochs", "2", *common]) == 0
    assert read_header(out / "last.ckpt")["training"]["trainer"]["epoch"] == 2
    assert cli.main(["evaluate", str(out / "best.fnn")]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_cnn_defaults_and_flat_rows(mnist_dir):
    net = mp.build_cnn(28, seed=0)
    assert net.input_shape == (28, 28, 1) and net.layer_shapes[3] == (5, 5, 64)
    X = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    assert mp.as_network_input(net, X).shape == (3, 28, 28, 1)
    report = mp.evaluate(net, X, np.array([0, 1, 2]))   # flat rows are shaped for the network
    assert report["n_samples"] == 3
    opt = mp.make_optimizer(0.05, 2, 10, kind="sgd", weight_decay=5e-4)
    assert type(opt).__name__ == "SGD" and opt.momentum == 0.9 and opt.nesterov
