"""What the normalization rows cost: LayerNorm's kernels per phase next to the Dense rows, and whole epochs
of the benchmark MLP with Dropout / BatchNorm / LayerNorm after each hidden layer against the plain MLP.

    python -m bench.layernorm kernels                    # one shard's rows (64, 128): LN and Dense, fwd / bwd
    python -m bench.layernorm epochs                     # plain, -dropout, -batchnorm, -layernorm: samples/s
    python -m bench.layernorm epochs --batch 128 --threads 2,1 --rounds 7
    python -m bench.layernorm epochs --against /path/to/other/tree   # before / after in one interleaved run

``kernels`` times the Cython kernels one shard runs for the 784-256-128-10 MLP with LayerNorm (float32,
one thread, medians of repeated calls: each call pays ~1 us of Python): the plan rows' LayerNorm pair
(``layernorm_rows_*``, what the fused driver runs), the layer-by-layer pair (Xhat stored) and the Dense
rows; ``PYTHONPATH=<tree> python bench/layernorm.py kernels`` times another tree's build. ``epochs`` runs
each configuration in a worker process per source tree (this one, and ``--against``'s, which must hold a
built extension: ``python setup.py build_ext --inplace``): per batch size and thread count, each round
runs the variants in turn, each on every tree back to back, so load changes hit all alike. It prints
median samples/s and the medians of the per-round ratios (to the plain MLP of the same tree; with
``--against``, this tree over the other), by wall time and by CPU time (at one thread the CPU-time ratio
is the one other processes disturb less).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = ("plain", "dropout", "batchnorm", "layernorm")
HIDDEN = (256, 128)

# The worker: builds every configuration (warmed up), then times one epoch per line read from stdin.
_WORKER = r"""
import json, sys, time
import numpy as np
from bench.fastnn_runs import make_fastnn_epoch
cfgs = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.random((cfgs["samples"], 784), dtype=np.float32)
y = rng.integers(0, 10, cfgs["samples"])
runs = {name: make_fastnn_epoch(X, y, bs, thr, variant=v) for name, (v, bs, thr) in cfgs["runs"].items()}
print("ready", flush=True)
for line in sys.stdin:
    run = runs[line.strip()]
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
"""


def _start(tree, runs, samples):
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps({"samples": samples, "runs": runs})],
                            cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the benchmark worker in {tree} did not start")
    return proc


def _ask(proc, name):
    proc.stdin.write(name + "\n")
    proc.stdin.flush()
    wall, cpu = proc.stdout.readline().split()
    return float(wall), float(cpu)


def epochs(batches, threads, rounds, samples, against=None):
    """Epoch timings of every (tree, variant, batch, threads): per (batch, threads), each round runs the
    variants in turn, each on every tree back to back (one worker process per tree), so the ratios of one
    round compare epochs a few hundred milliseconds apart. Returns {(tree, variant, batch, threads):
    (wall seconds per round, CPU seconds per round)} with tree ``"this"`` (and ``"other"``)."""
    runs = {f"{v}-{t}-{b}": (v, b, t) for b in batches for t in threads for v in VARIANTS}
    trees = {"this": Path(__file__).resolve().parents[1]}
    if against:
        trees["other"] = Path(against).resolve()
    workers = {label: _start(tree, runs, samples) for label, tree in trees.items()}
    out = {(label, *cfg): ([], []) for label in trees for cfg in runs.values()}
    try:
        for b in batches:
            for t in threads:
                for _ in range(rounds):
                    for v in VARIANTS:
                        for label, proc in workers.items():
                            wall, cpu = _ask(proc, f"{v}-{t}-{b}")
                            out[label, v, b, t][0].append(wall)
                            out[label, v, b, t][1].append(cpu)
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    return {k: (np.array(w), np.array(c)) for k, (w, c) in out.items()}


def print_epochs(times, batches, threads, samples):
    """Median samples/s (wall), and medians of the per-round ratios: to the plain MLP of the same tree (wall,
    and CPU time: at one thread less sensitive to other processes), and with two trees this one over the other."""
    labels = sorted({k[0] for k in times}, key=lambda s: s != "this")
    head = f"{'variant':11s}{'thr':>4s}{'batch':>6s}" + "".join(
        f"{lab + ' /s':>11s}{lab + '/plain':>12s}{'cpu':>7s}" for lab in labels)
    if len(labels) > 1:
        head += f"{'this/other':>12s}{'cpu':>7s}"
    print(head)
    print("-" * len(head))
    for t in threads:
        for b in batches:
            for v in VARIANTS:
                line = f"{v:11s}{t:>4d}{b:>6d}"
                for lab in labels:
                    (w, c), (pw, pc) = times[lab, v, b, t], times[lab, "plain", b, t]
                    line += f"{samples / np.median(w):>11,.0f}{np.median(pw / w):>12.3f}{np.median(pc / c):>7.3f}"
                if len(labels) > 1:
                    (w, c), (ow, oc) = times["this", v, b, t], times["other", v, b, t]
                    line += f"{np.median(ow / w):>12.3f}{np.median(oc / c):>7.3f}"
                print(line)


def _median_us(fn, reps):
    fn()
    out = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t0) / reps)
    return float(np.median(out)) * 1e6


def kernels(rows=(64, 128)):
    """Microseconds of one shard's LayerNorm and Dense kernels (float32, this thread)."""
    from fastnn._ext import _kernels as K
    from fastnn.kernels.codes import ACT_LINEAR, ACT_RELU

    rng = np.random.default_rng(0)
    f32 = np.float32
    for m in rows:
        print(f"-- one shard of {m} rows, float32 (us per call)")
        for k in HIDDEN:
            X = rng.standard_normal((m, k)).astype(f32)
            g, b = (rng.random(k) + 0.5).astype(f32), rng.random(k).astype(f32)
            out, dout, dX = np.empty_like(X), rng.standard_normal((m, k)).astype(f32), np.empty_like(X)
            Xh, inv_f, mean, inv = np.empty_like(X), np.empty(m, f32), np.empty(m), np.empty(m)
            dg, db = np.empty(k, f32), np.empty(k, f32)
            rf = rb = float("nan")  # a tree from before the plan rows' pair: the layer ops only
            if hasattr(K, "layernorm_rows_forward"):
                rf = _median_us(lambda: K.layernorm_rows_forward(X, g, b, 1e-5, mean, inv, out), 400)
                rb = _median_us(lambda: K.layernorm_rows_backward(dout, X, mean, inv, g, dg, db, dX), 400)
            lf = _median_us(lambda: K.layernorm_forward(X, g, b, 1e-5, Xh, inv_f, out), 400)
            lb = _median_us(lambda: K.layernorm_backward(dout, Xh, inv_f, g, dg, db, dX), 400)
            add = _median_us(lambda: np.add(X, dout, out=out), 400)
            print(f"LayerNorm {k:4d}: plan rows fwd {rf:6.1f} bwd {rb:6.1f} | layer ops fwd {lf:6.1f} bwd {lb:6.1f}"
                  f" | numpy add of the block {add:5.1f}")
        for n_in, n_out, act in ((784, 256, ACT_RELU), (256, 128, ACT_RELU), (128, 10, ACT_LINEAR)):
            X = rng.random((m, n_in)).astype(f32)
            W = (rng.standard_normal((n_in, n_out)) * 0.05).astype(f32)
            bias, Z, A = np.zeros(n_out, f32), np.empty((m, n_out), f32), np.empty((m, n_out), f32)
            dA = rng.standard_normal((m, n_out)).astype(f32)
            dZ, dW, dbias, dX = np.empty_like(dA), np.empty_like(W), np.empty_like(bias), np.empty_like(X)
            fw = _median_us(lambda: K.dense_forward(X, W, bias, act, 0.0, Z, A), 100)
            bw = _median_us(lambda: K.dense_backward(X, W, Z, A, dA, act, 0.0, dZ, dW, dbias,
                                                     dX if n_in != 784 else None), 100)
            print(f"Dense {n_in:4d}-{n_out:<4d}: fwd {fw:6.1f} bwd {bw:6.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("kernels", "epochs"))
    parser.add_argument("--batch", default="64,128,256", help="batch sizes (epochs)")
    parser.add_argument("--threads", default="2,1", help="thread counts (epochs)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8192, help="samples per epoch")
    parser.add_argument("--against", help="another source tree with a built extension: before / after rows")
    parser.add_argument("--isa", help="kernels: the LayerNorm lane kernels to time (layernorm_isa: avx512, avx2, off)")
    args = parser.parse_args(argv)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    if args.what == "kernels":
        if args.isa:
            from fastnn._ext import _kernels

            print("LayerNorm kernels:", _kernels.layernorm_isa(args.isa))
        kernels()
        return
    batches = tuple(int(b) for b in args.batch.split(","))
    threads = tuple(int(t) for t in args.threads.split(","))
    times = epochs(batches, threads, args.rounds, args.samples, args.against)
    print_epochs(times, batches, threads, args.samples)
    print(f"load average after (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
