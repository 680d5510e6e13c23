"""MLP shapes beyond the benchmark MLP: fastnn's thread plans next to PyTorch's fused Adam, one table.

    python -m bench.shapes                      # the default shapes, 2 threads, median of 3 interleaved rounds
    python -m bench.shapes --rounds 5 --threads 2 --shape 3072:1024:128

Each shape is ``n_in:hidden[,hidden...]:batch`` (10 classes, ReLU, softmax cross-entropy, Adam 1e-3,
float32, random data). Every configuration is built and warmed up first; then each round runs one
epoch of every configuration in turn (interleaved, so load changes hit all alike), and the table
shows the median samples/s, fastnn ``auto``'s plan (``last_plan['reason']``) and its ratio to PyTorch.
"""
import argparse
import time

import numpy as np

from bench import peers
from bench.fastnn_runs import make_fastnn_epoch

#: shapes the epoch benchmark does not name: tiny, the benchmark MLP, wide, very wide, deep
DEFAULT_SHAPES = ("100:50:16", "784:256,128:32", "784:256,128:64", "784:256,128:128", "784:256,128:256",
                  "784:256,128:1024", "3072:1024:128", "2048:2048:64", "784:4096:512", "512:512,512,512,512,512:32",
                  "256:64:16", "784:64:256")
#: the fastnn plans compared: what auto chose, and each of its candidates forced ("one": a single thread)
OPTIONS = ("auto", "shards", "columns", "blas", "one")


def _parse(shape):
    n_in, hidden, batch = shape.split(":")
    return int(n_in), tuple(int(h) for h in hidden.split(",")), int(batch)


def _samples(n_in, hidden, batch, seconds=1.0, rate=50e9):
    """Samples for an epoch of about ``seconds`` at ``rate`` FLOP/s, at least 8 batches."""
    flops = peers.gemm_flops_per_sample(n_in, hidden, peers.N_CLASSES)
    return int(max(8 * batch, min(60000, seconds * rate / flops)) // batch * batch)


def _peer_runs(X, y, batch, threads, hidden):
    """The rest of bench.compare's interleaved table: fastnn with Dropout / BatchNorm after each hidden
    layer, PyTorch fused Adam on one thread, JAX (jit and lax.scan), the GEMM floor on ``threads`` and
    on one thread; peers not installed are left out."""
    runs = {"fastnn-dropout": lambda: make_fastnn_epoch(X, y, batch, threads, hidden=hidden, variant="dropout"),
            "fastnn-batchnorm": lambda: make_fastnn_epoch(X, y, batch, threads, hidden=hidden, variant="batchnorm"),
            "torch-fused-1t": lambda: peers.make_torch_epoch(X, y, batch, 1, hidden=hidden),
            "jax-jit": lambda: peers.make_jax_epoch(X, y, batch, threads, hidden=hidden, mode="jit"),
            "jax-scan": lambda: peers.make_jax_epoch(X, y, batch, threads, hidden=hidden, mode="scan")}
    if len(hidden) == 2:  # the floor is written for two hidden layers
        runs["gemm-floor"] = lambda: peers.make_gemm_floor_epoch(X, y, batch, threads, hidden=hidden)
        runs["gemm-floor-1t"] = lambda: peers.make_gemm_floor_epoch(X, y, batch, 1, hidden=hidden)
    made = {}
    for name, make in runs.items():
        try:
            made[name] = make()
        except ImportError:
            pass
    return made


def measure(shape, threads=2, rounds=3, options=OPTIONS, seconds=1.0, with_peers=False):
    """Median samples/s of each fastnn plan and of PyTorch (fused Adam) on one shape, and auto's plan.

    ``with_peers`` adds the other implementations of :func:`_peer_runs` to the interleaved rounds."""
    n_in, hidden, batch = _parse(shape)
    n = _samples(n_in, hidden, batch, seconds)
    rng = np.random.default_rng(0)
    X = rng.random((n, n_in), dtype=np.float32)
    y = rng.integers(0, peers.N_CLASSES, n)
    runs = {f"fastnn-{o}": make_fastnn_epoch(X, y, batch, 1 if o == "one" else threads, hidden=hidden,
                                             parallel="auto" if o == "one" else o) for o in options}
    plan = runs["fastnn-auto"].plan if "fastnn-auto" in runs else None
    try:
        runs["torch-fused"] = peers.make_torch_epoch(X, y, batch, threads, hidden=hidden)
    except ImportError:
        pass
    if with_peers:
        runs.update(_peer_runs(X, y, batch, threads, hidden))
    for run in runs.values():
        run()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[k].append(n / (time.perf_counter() - t0))
    return {k: float(np.median(v)) for k, v in times.items()}, plan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", help="n_in:hidden[,hidden]:batch (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="epoch length at 50 GFLOP/s")
    args = parser.parse_args(argv)
    head = f"{'shape':28s}" + "".join(f"{o:>10s}" for o in OPTIONS) + f"{'torch':>10s}{'auto/torch':>11s}  auto's plan"
    print(head)
    print("-" * len(head))
    for shape in args.shape or DEFAULT_SHAPES:
        med, plan = measure(shape, args.threads, args.rounds, seconds=args.seconds)
        cells = "".join(f"{med[k]:10,.0f}" if k in med else f"{'-':>10s}"
                        for k in [f"fastnn-{o}" for o in OPTIONS] + ["torch-fused"])
        ratio = med["fastnn-auto"] / med["torch-fused"] if "torch-fused" in med else float("nan")
        why = plan["reason"] if plan else ""
        print(f"{shape:28s}{cells}{ratio:11.2f}  {why}", flush=True)


if __name__ == "__main__":
    main()
