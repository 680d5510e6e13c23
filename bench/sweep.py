"""Where sweep runs should execute (issue 16): serial vs worker processes, one threaded run vs two one-thread runs.

Three measurements, interleaved round by round (so machine load hits every variant alike):

A. start-up: 2 runs of 1 epoch on 200 digits samples, ``n_jobs=2`` minus ``n_jobs=1``:
   what starting two spawn workers and sending them the data costs (the ``MIN_PARALLEL_SECONDS`` rule).
B. small runs (the trainer runs them on one thread): 4 configurations x 2 seeds of 784-128-10, batch 32,
   ``--n`` MNIST samples, 2 epochs: ``n_jobs=1`` vs ``n_jobs=2`` wall seconds.
C. wide runs (the trainer splits them over threads): 784-1024-1024-10 at batch 256, 2 runs: one after another
   with every thread (what sweep does) vs both at once in two one-thread workers.

Run:    FASTNN_DATA=../shared/data/mnist python -m bench.sweep [--rounds 3] [--n 10000]
Smoke:  pytest bench -q --benchmark-disable -k sweep
"""
import argparse
import os
import statistics
import time

from fastnn import get_num_threads
from fastnn.experiments import MLPFactory, load_dataset, sweep
from fastnn.experiments import sweeper
from fastnn.experiments.runner import run_one


def startup(n_jobs):
    d = load_dataset("digits", limit=200)
    t0 = time.perf_counter()
    sweep(MLPFactory(64, 10, hidden=(16,)), {"lr": [0.01]}, d.X, d.y, epochs=1, seeds=3, n_jobs=n_jobs)
    return time.perf_counter() - t0


def small_runs(data, n_jobs, epochs=2):
    grid = {"optimizer": ["sgd_momentum", "adam"], "lr": [0.01, 0.001]}
    t0 = time.perf_counter()
    sweep(MLPFactory(784, 10, hidden=(128,)), grid, data.X, data.y, epochs=epochs, seeds=2, n_jobs=n_jobs)
    return time.perf_counter() - t0


def wide_runs(data, parallel):
    """Two runs of the wide net: threaded one after another, or two one-thread runs in workers."""
    factory = MLPFactory(784, 10, hidden=(1024, 1024))
    settings = {"fixed": {"batch_size": 256}, "loss": "cross_entropy", "epochs": 1, "seconds": None,
                "metric": "loss", "target": None, "callbacks": []}
    from fastnn import losses

    settings["loss"] = losses.get("cross_entropy")
    tasks = [(0, j, {}, j) for j in range(2)]
    t0 = time.perf_counter()
    if parallel:
        sweeper._run_pool(tasks, 2, factory, (data.X, data.y, None), {**settings, "n_threads": 1},
                          lambda *a: None)
    else:
        for _, _, config, seed in tasks:
            run_one(factory, config, seed, (data.X, data.y, None), {**settings, "n_threads": None})
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", type=int, default=10000, help="MNIST samples for B and C (default 10,000)")
    args = p.parse_args(argv)
    data = load_dataset("mnist", limit=args.n)
    small_runs(data, 1, epochs=1)  # warm: compiled kernels, page cache
    results = {k: [] for k in ("A serial", "A 2 workers", "B serial", "B 2 workers", "C threaded", "C 2 workers")}
    for _ in range(args.rounds):
        results["A serial"].append(startup(1))
        results["A 2 workers"].append(startup(2))
        results["B serial"].append(small_runs(data, 1))
        results["B 2 workers"].append(small_runs(data, 2))
        results["C threaded"].append(wide_runs(data, False))
        results["C 2 workers"].append(wide_runs(data, True))
    load = os.getloadavg()
    print(f"threads {get_num_threads()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"{args.rounds} interleaved rounds, median wall seconds")
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"  {k:<14} {v:7.2f} s   (all: {', '.join(f'{x:.2f}' for x in results[k])})")
    print(f"A: worker start-up costs {med['A 2 workers'] - med['A serial']:.2f} s")
    print(f"B: small runs, serial / 2 workers = {med['B serial'] / med['B 2 workers']:.2f}x")
    print(f"C: wide runs, threaded one after another / 2 one-thread workers = "
          f"{med['C threaded'] / med['C 2 workers']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
