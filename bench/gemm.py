"""GFLOP/s of the float32 Dense GEMM at the benchmark MLP's shapes: OpenBLAS next to fastnn's micro-kernels.

    python -m bench.gemm                     # one thread, every shape, interleaved rounds
    python -m bench.gemm --rounds 15 --bias-relu

Each shape is ``C (m x n) = A (m x k) @ B (k x n)``: inference (batch 1000 through 784-256-128-10), the
training forward at batch 32-256 (``X @ W``), and for reference the two backward products a step also runs
(``dW = X.T @ dZ``, ``dX = dZ @ W.T``; OpenBLAS only: the micro-kernels do not run them). Contenders, all on
one thread: ``openblas`` (``numpy.matmul`` into a preallocated output, numpy's OpenBLAS limited to one
thread), and fastnn's ``dense_forward`` on the Cython backend with ``gemm_tiles`` set to each kernel the CPU
has (``avx512``, ``avx2``) and ``off`` (scipy's OpenBLAS + the bias/activation pass): with ``--bias-relu``
they add the bias and apply ReLU (OpenBLAS then needs its extra pass; the kernels fuse it), else linear.
The table shows the median of interleaved rounds (each contender once per round, in turn).

    python -m bench.gemm --epochs            # the training step: epochs of the benchmark MLP, before/after

``--epochs``: samples/s of one epoch of the benchmark MLP (784-256-128-10 ReLU, Adam, float32, random data)
per batch size, fastnn's Cython plans ``auto``, ``shards`` and ``columns`` at ``--threads`` with the
micro-kernels (the default) and without (``-blas``: the Dense forward on OpenBLAS, as before), next to the
GEMM floor (only the step's GEMMs through OpenBLAS, the better of one thread and ``--threads``), all in one
interleaved run; the share of the floor in parentheses.
"""
import argparse
import os
import time

import numpy as np

from fastnn._config import blas_single_thread
from fastnn.kernels import codes, get_backend

INFER = [(1000, 784, 256), (1000, 256, 128), (1000, 128, 10)]
TRAIN = [(m, 784, 256) for m in (32, 64, 128, 256)]
BACKWARD = [("dW", 784, m, 256) for m in (32, 256)] + [("dX", m, 256, 784) for m in (32, 256)]


def _contenders(m, k, n, act, reps):
    """``{name: call}`` timing ``reps`` products of one shape each."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, k), dtype=np.float32)
    B = rng.standard_normal((k, n), dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    C = np.empty((m, n), np.float32)
    C2 = np.empty((m, n), np.float32)
    _k = _ext()

    def blas():
        for _ in range(reps):
            np.matmul(A, B, out=C)
            if act == codes.ACT_RELU:
                np.add(C, b, out=C)
                np.maximum(C, 0, out=C)

    runs = {"openblas": blas}
    cpu = _k.gemm_tiles()
    for isa in [i for i in ("avx512", "avx2") if _isa_ok(_k, i)] + ["off"]:
        def tiles(isa=isa):
            _k.gemm_tiles(isa)
            try:
                for _ in range(reps):
                    _k.dense_forward(A, B, b, act, 0.0, C2, C2)
            finally:
                _k.gemm_tiles(cpu)
        runs[f"fastnn-{isa}"] = tiles
    return runs


def _ext():
    """The compiled extension (its ``dense_forward`` and ``gemm_tiles``), loaded through the Cython backend."""
    get_backend("cython")
    from fastnn._ext import _kernels
    return _kernels


def _isa_ok(_k, isa):
    cur = _k.gemm_tiles()
    try:
        _k.gemm_tiles(isa)
        return True
    except ValueError:
        return False
    finally:
        _k.gemm_tiles(cur)


def measure(rounds=9, bias_relu=False, min_flop=1e9):
    """``{(label, m, k, n): {contender: GFLOP/s}}``, medians of ``rounds`` interleaved rounds on one thread."""
    act = codes.ACT_RELU if bias_relu else codes.ACT_LINEAR
    shapes = [("infer", *s) for s in INFER] + [("train X@W", *s) for s in TRAIN]
    out = {}
    with blas_single_thread():
        for label, m, k, n in shapes + list(BACKWARD):
            flop = 2.0 * m * k * n
            reps = max(1, int(min_flop / flop))
            if label in ("dW", "dX"):
                runs = _backward_run(label, m, k, n, reps)
            else:
                runs = _contenders(m, k, n, act, reps)
            times = {name: [] for name in runs}
            for fn in runs.values():
                fn()
            for _ in range(rounds):
                for name, fn in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            out[(label, m, k, n)] = {name: flop * reps / np.median(t) / 1e9 for name, t in times.items()}
    return out


def _backward_run(label, m, k, n, reps):
    """A backward product: dW = X.T @ dZ (X stored (k, m)) on OpenBLAS and on fastnn's ``dense_backward``
    (linear, no dX: the kernel's dW plus one pass for dZ and db), or dX = dZ @ W.T (OpenBLAS only)."""
    rng = np.random.default_rng(0)
    if label == "dW":  # (784 x bs) @ (bs x 256), X stored (bs, 784)
        X = rng.standard_normal((k, m), dtype=np.float32)
        dZ = rng.standard_normal((k, n), dtype=np.float32)
        C = np.empty((m, n), np.float32)
        runs = {"openblas": lambda: [np.matmul(X.T, dZ, out=C) for _ in range(reps)]}
        _k = _ext()
        cpu = _k.gemm_tiles()
        W, db, dZb = np.zeros((m, n), np.float32), np.empty(n, np.float32), np.empty_like(dZ)
        for isa in [i for i in ("avx512", "avx2") if _isa_ok(_k, i)] + ["off"]:
            def tiles(isa=isa):
                _k.gemm_tiles(isa)
                try:
                    for _ in range(reps):
                        _k.dense_backward(X, W, dZ, dZ, dZ, codes.ACT_LINEAR, 0.0, dZb, C, db, None)
                finally:
                    _k.gemm_tiles(cpu)
            runs[f"fastnn-{isa}"] = tiles
        return runs
    dZ = rng.standard_normal((m, k), dtype=np.float32)
    W = rng.standard_normal((n, k), dtype=np.float32)
    C = np.empty((m, n), np.float32)
    return {"openblas": lambda: [np.matmul(dZ, W.T, out=C) for _ in range(reps)]}


def measure_epochs(batch_sizes=(32, 64, 128, 256), threads=2, rounds=3, seconds=0.4):
    """``{batch: {name: samples/s}}``: medians of ``rounds`` interleaved epochs (see the module docstring)."""
    from bench import peers
    from bench.fastnn_runs import make_fastnn_epoch, without_gemm_tiles
    from bench.shapes import _samples
    from bench.timing import interleaved_times

    out = {}
    for bs in batch_sizes:
        n = _samples(784, (256, 128), bs, seconds)
        rng = np.random.default_rng(0)
        X = rng.random((n, 784), dtype=np.float32)
        y = rng.integers(0, peers.N_CLASSES, n)
        runs = {}
        for plan in ("auto", "shards", "columns"):
            runs[plan] = make_fastnn_epoch(X, y, bs, threads, parallel=plan)
            runs[plan + "-blas"] = without_gemm_tiles(make_fastnn_epoch(X, y, bs, threads, parallel=plan))
        runs["floor"] = peers.make_gemm_floor_epoch(X, y, bs, threads)
        if threads > 1:
            runs["floor-1t"] = peers.make_gemm_floor_epoch(X, y, bs, 1)
        med = {k: n / float(np.median(v)) for k, v in interleaved_times(runs, rounds).items()}
        med["floor"] = max(med["floor"], med.pop("floor-1t", 0.0))
        out[bs] = med
    return out


def print_epochs(res, threads):
    names = list(next(iter(res.values())))
    print(f"epoch samples/s, {threads} threads (share of the GEMM floor)")
    print(f"{'batch':>6}" + "".join(f"{c:>20}" for c in names))
    for bs, med in res.items():
        print(f"{bs:>6}" + "".join(f"{med[c]:>12,.0f} ({med[c] / med['floor']:4.2f})" for c in names))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 9, with --epochs 3)")
    parser.add_argument("--bias-relu", action="store_true", help="bias + ReLU after the product (else linear)")
    parser.add_argument("--epochs", action="store_true", help="training epochs before/after instead of GEMMs")
    parser.add_argument("--threads", type=int, default=2, help="threads of --epochs")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.epochs:
        print_epochs(measure_epochs(threads=args.threads, rounds=args.rounds or 3), args.threads)
        return
    res = measure(args.rounds or 9, args.bias_relu)
    names = sorted({c for r in res.values() for c in r}, key=lambda c: (c != "openblas", c))
    print(f"GFLOP/s, one thread, {'bias + ReLU' if args.bias_relu else 'linear'}, median of {args.rounds or 9} rounds")
    print(f"{'shape':<26}" + "".join(f"{c:>15}" for c in names))
    for (label, m, k, n), r in res.items():
        print(f"{label + f' {m}x{k}@{k}x{n}':<26}" + "".join(f"{r[c]:>15.1f}" if c in r else f"{'':>15}"
                                                             for c in names))


if __name__ == "__main__":
    main()
