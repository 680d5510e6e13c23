"""Memory: a full MNIST epoch stays within the dataset's size + 100 MB, and RSS does not grow per epoch.

Measured in a fresh subprocess from ``/proc/self/status``: ``VmRSS`` after
importing fastnn and warming the kernels up on a tiny fit (the post-import
baseline: interpreter, numpy/scipy/numba, compiled kernels), then ``VmHWM``
(the peak) after loading MNIST and training an epoch on all 60,000 images,
and ``VmRSS`` after each of 3 epochs. The budget is the float32 size of the
loaded dataset (train + test, ~220 MB) plus 100 MB for everything else:
decoding, batch buffers, optimizer state, allocator slack.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MB = 1 << 20

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")

WORKER = textwrap.dedent(r'''
    import json, sys, time
    import numpy as np

    def status():
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out

    import fastnn as fnn
    from fastnn.data import load_mnist

    backend, path, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def make():
        net = fnn.Network([fnn.Dense(784, 128, "relu"), fnn.Dense(128, 10)], seed=0, backend=backend)
        return net, fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=64, seed=0, verbose=0)

    # warm-up: compile/load the kernels on a tiny problem so JIT memory is part of the baseline
    rng = np.random.default_rng(0)
    make()[1].fit(rng.random((256, 784)).astype(np.float32), rng.integers(0, 10, 256), epochs=1)
    base = status()
    t0 = time.perf_counter()
    (X, y), (Xt, yt) = load_mnist(path)
    data_bytes = X.nbytes + y.nbytes + Xt.nbytes + yt.nbytes
    loaded = status()
    net, tr = make()
    rss = []
    for _ in range(epochs):
        tr.fit(X, y, epochs=1)
        rss.append(status()["VmRSS"])
    end = status()
    print(json.dumps({"baseline_rss": base["VmRSS"], "baseline_hwm": base["VmHWM"], "after_load": loaded,
                      "peak": end["VmHWM"], "rss_per_epoch": rss, "data_bytes": data_bytes,
                      "n_train": int(X.shape[0]), "seconds": time.perf_counter() - t0,
                      "dtype": str(X.dtype), "plan": tr.last_plan}))
''')


def _measure(backend, mnist_dir, epochs):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # not about speed: keep libgomp's spinning workers from stalling the run on a busy machine
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    proc = subprocess.run([sys.executable, "-c", WORKER, backend, str(mnist_dir), str(epochs)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(m, epochs):
    assert m["n_train"] == 60000 and m["dtype"] == "float32"
    budget = m["data_bytes"] + 100 * MB
    used = m["peak"] - m["baseline_rss"]
    assert used <= budget, (f"peak RSS {used / MB:.0f} MB over the baseline for {m['data_bytes'] / MB:.0f} MB "
                            f"of float32 data (budget {budget / MB:.0f} MB): {m}")
    if epochs > 1:
        growth = m["rss_per_epoch"][-1] - m["rss_per_epoch"][0]
        assert growth <= 4 * MB, f"RSS grew by {growth / MB:.1f} MB over {epochs} epochs: {m['rss_per_epoch']}"


@pytest.mark.parametrize("backend", ["cython", "numba", "reference"])
def test_mnist_epochs_memory(mnist_dir, backend):
    """One subprocess per backend: load MNIST, train 3 full epochs (60k images each), ~3-5 s."""
    from fastnn.kernels import available_backends

    if backend not in available_backends():
        pytest.skip(f"{backend} not available")
    m = _measure(backend, mnist_dir, 3)
    _check(m, 3)
