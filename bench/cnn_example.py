"""The MNIST CNN example's defaults, timed against PyTorch (issue 11): same model, epochs, batch and optimizer.

Not a test and not a benchmark group: one run, printed as a table for the README. Both libraries
train the network of ``examples/train_mnist_cnn.py`` (Conv 32@3x3 relu, MaxPool 2, Conv 64@3x3
relu, MaxPool 2, Flatten, Dense 128 relu, Dropout 0.3, Dense 10) on the example's 55,000 training
images (5,000 stratified ones held out, as the example does), with SGD + Nesterov momentum 0.9,
coupled weight decay 5e-4 and the example's cosine schedule (peak 0.05, one warm-up epoch from 4
epochs on, down to 1% of the peak), batch 128, and then report the test accuracy. The schedule
covers ``--epochs``: a shorter run is a shortened whole run, not the first epochs of a long one.
Runs alternate between the libraries (``--rounds``), so load drift hits both alike. The training
wall time excludes data loading and, for fastnn, the first compile (one warm-up batch first)::

    FASTNN_DATA=../shared/data/mnist python -m bench.cnn_example --epochs 12
    FASTNN_DATA=../shared/data/mnist python -m bench.cnn_example --epochs 2     # under heavy load

The example's own validation split and best-model checkpointing are left out: both train for the
given epochs and are evaluated at the end.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from fastnn.apps.mnist_pipeline import CNN_DEFAULTS, DEFAULTS, build_cnn, make_optimizer


def _data(seed):
    import fastnn as fnn
    from fastnn.data.preprocessing import train_val_split

    (X, y), (X_test, y_test) = fnn.data.load_mnist(flatten=False)
    (X_tr, y_tr), _ = train_val_split(X, y, DEFAULTS["val_fraction"], seed=seed, stratify=True)
    return np.ascontiguousarray(X_tr), y_tr, np.ascontiguousarray(X_test), y_test


def _schedule(epochs, steps_per_epoch):
    """The example's optimizer (fastnn) and its per-step learning rates (to drive PyTorch's)."""
    opt = make_optimizer(CNN_DEFAULTS["lr"], epochs, steps_per_epoch, "cosine", CNN_DEFAULTS["weight_decay"],
                         kind="sgd")
    return opt, opt.learning_rates(0, epochs * steps_per_epoch)


def run_fastnn(X, y, X_test, y_test, epochs, threads, seed, backend):
    import fastnn as fnn

    bs = CNN_DEFAULTS["batch_size"]
    steps = -(-len(X) // bs)
    warm = build_cnn(28, seed=seed, backend=backend)  # compile once outside the timed run
    fnn.Trainer(warm, optimizer=fnn.SGD(0.01), batch_size=bs, n_threads=threads, verbose=0).fit(X[:bs], y[:bs])
    net = build_cnn(28, seed=seed, backend=backend)
    opt, _ = _schedule(epochs, steps)
    trainer = fnn.Trainer(net, optimizer=opt, batch_size=bs, seed=seed, n_threads=threads, verbose=0)
    t0 = time.perf_counter()
    trainer.fit(X, y, epochs=epochs)
    wall = time.perf_counter() - t0
    return wall, trainer.evaluate(X_test, y_test)["accuracy"], trainer.last_plan["path"]


def run_torch(X, y, X_test, y_test, epochs, threads, seed):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(128, 10))
    bs = CNN_DEFAULTS["batch_size"]
    steps = -(-len(X) // bs)
    _, lrs = _schedule(epochs, steps)
    opt = torch.optim.SGD(net.parameters(), lr=float(lrs[0]), momentum=0.9, nesterov=True,
                          weight_decay=CNN_DEFAULTS["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(np.asarray(y, np.int64))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    step = 0
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for s in range(0, len(X), bs):
            idx = perm[s:s + bs]
            for group in opt.param_groups:
                group["lr"] = float(lrs[step])
            opt.zero_grad(set_to_none=True)
            loss_fn(net(Xt.index_select(0, idx)), yt.index_select(0, idx)).backward()
            opt.step()
            step += 1
    wall = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(X_test.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
    return wall, float((pred == np.asarray(y_test)).mean()), "torch"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=CNN_DEFAULTS["epochs"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="alternating runs of each library")
    ap.add_argument("--backend", default="cython")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not os.environ.get("FASTNN_DATA"):
        print("note: FASTNN_DATA is not set; the MNIST loader looks in its cache or downloads")
    X, y, X_test, y_test = _data(args.seed)
    print(f"{len(X):,} training images, {len(X_test):,} test; {args.epochs} epochs, batch "
          f"{CNN_DEFAULTS['batch_size']}, {args.threads} threads; load average {os.getloadavg()[0]:.1f} at start")
    results = {"fastnn": [], "torch": []}
    for _ in range(args.rounds):
        results["fastnn"].append(run_fastnn(X, y, X_test, y_test, args.epochs, args.threads, args.seed,
                                            args.backend))
        results["torch"].append(run_torch(X, y, X_test, y_test, args.epochs, args.threads, args.seed))
    for name, runs in results.items():
        for wall, acc, path in runs:
            print(f"  {name:7s} ({path}) {wall:8.1f} s  {len(X) * args.epochs / wall:8,.0f} samples/s  "
                  f"test accuracy {acc:.4f}")
    t_f = min(w for w, _, _ in results["fastnn"])
    t_t = min(w for w, _, _ in results["torch"])
    print(f"  PyTorch time / fastnn time: {t_t / t_f:.2f}; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
