"""Inference of the benchmark MLP (784-256-128-10 ReLU): fastnn next to PyTorch, one interleaved run.

    python -m bench.inference                  # batch predict of 10,000 rows in batches of 1000, and latency
    python -m bench.inference --rounds 9 --threads 1 2

Batch predict: samples/s over all rows, batches of ``--batch`` (fastnn ``Network.predict`` under
``fastnn.set_num_threads``; PyTorch eager ``inference_mode`` under ``torch.set_num_threads``).
Latency: one ``(1, 784)`` row per call, microseconds per call (fastnn ``predict``; PyTorch eager
and TorchScript-frozen, one thread). Every configuration is built and warmed up first, then each
round times every configuration in turn (interleaved, so load changes hit all alike); the table
shows the median round.
"""
import argparse
import os
import time

import numpy as np

from bench import data, peers
from bench.fastnn_runs import make_fastnn_latency, make_fastnn_predict


def _time(run, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - t0) / calls


def measure(n=10000, batch=1000, threads=(1, 2), rounds=5, latency_calls=2000, backend="cython"):
    """``{name: median seconds per call}`` and ``{name: samples per call}`` of every configuration."""
    X, _ = data.mnist_like(n)
    runs = {}
    for t in threads:
        runs[f"fastnn-predict-{t}t"] = make_fastnn_predict(X, batch=batch, threads=t, backend=backend)
        try:
            runs[f"torch-predict-{t}t"] = peers.make_torch_predict(X, batch=batch, threads=t)
        except ImportError:
            pass
    lat = {"fastnn-latency": make_fastnn_latency(X[:64], backend=backend)}
    try:
        for mode in ("eager", "jit"):
            lat[f"torch-latency-{mode}"] = peers.make_torch_latency(X[:64], threads=1, mode=mode)
    except ImportError:
        pass
    for run in [*runs.values(), *lat.values()]:
        for _ in range(3):
            run()
    times = {k: [] for k in [*runs, *lat]}
    for _ in range(rounds):
        for k, run in runs.items():
            times[k].append(_time(run, 1))
        for k, run in lat.items():
            times[k].append(_time(run, latency_calls))
    return {k: float(np.median(v)) for k, v in times.items()}, {k: r.n_samples for k, r in {**runs, **lat}.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="cython")
    args = parser.parse_args(argv)
    med, n = measure(args.n, args.batch, tuple(args.threads), args.rounds, backend=args.backend)
    print(f"load average {os.getloadavg()[0]:.2f}; batch predict of {args.n} rows in batches of {args.batch}")
    for t in args.threads:
        f, p = med.get(f"fastnn-predict-{t}t"), med.get(f"torch-predict-{t}t")
        line = f"  {t} thread(s): fastnn {args.n / f:12,.0f} samples/s"
        if p:
            line += f"   torch {args.n / p:12,.0f} samples/s   fastnn/torch {p / f:5.2f}"
        print(line)
    print("single-sample latency (one thread)")
    for k in med:
        if "latency" in k:
            print(f"  {k:24s}{med[k] * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
