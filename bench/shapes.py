"""MLP shapes beyond the benchmark MLP: fastnn's thread plans next to PyTorch and the GEMM floor, one table.

    python -m bench.shapes                      # the default shapes, 2 threads, median of 3 interleaved rounds
    python -m bench.shapes --rounds 5 --threads 2 --shape 3072:1024:128 --shape 64:32,32:16:sgd
    python -m bench.shapes --random 20 --seed 1 # shapes drawn from issue 10's space, goals flagged

Each shape is ``n_in:hidden[,hidden...]:batch[:optimizer]`` (10 classes, ReLU, softmax cross-entropy,
float32, random data; optimizer ``adam`` (1e-3, the default) or ``sgd`` (plain, 1e-2), the same for
PyTorch). Every configuration is built and warmed up first; then each round runs one epoch of every
configuration in turn (interleaved, so load changes hit all alike), and the table shows the median
samples/s of fastnn ``auto`` (the static rule) and ``probe`` (``Trainer(parallel='probe')``: the
fastest candidate timed at fit start), of the best plan forced (``one``: a single thread; ``shards``,
``columns``, ``blas``), of PyTorch (fused optimizer, same threads) and of the GEMM floor (only the
step's GEMMs; the better of one thread and the run's threads, as bench.compare's "GEMM floor best"),
with auto's plan (``last_plan['reason']``).

``--random K`` draws K shapes the suite does not name from issue 10's space: input and hidden
widths log-uniform in 2..4096, 1..6 hidden layers, batch log-uniform in 16..1024, Adam or SGD. Rows
that miss a goal are flagged: ``<torch`` (auto slower than PyTorch), ``<60%`` (auto under 60% of the
GEMM floor), and ``p<torch`` / ``p<60%`` for the probe. Epochs are capped by FLOPs (``--seconds`` at 50 GFLOP/s, at least ``MIN_BATCHES``
steps) so a run of 20 shapes takes a few minutes; shapes over ``--max-params`` are skipped (listed).
"""
import argparse
import os

import numpy as np

from bench import peers
from bench.fastnn_runs import make_fastnn_epoch
from bench.timing import interleaved_times

#: shapes the epoch benchmark does not name: tiny, the benchmark MLP, wide, very wide, deep, SGD
DEFAULT_SHAPES = ("100:50:16", "784:256,128:32", "784:256,128:64", "784:256,128:128", "784:256,128:256",
                  "784:256,128:1024", "3072:1024:128", "2048:2048:64", "784:4096:512", "512:512,512,512,512,512:32",
                  "256:64:16", "784:64:256", "784:256,128:64:sgd")
#: the fastnn plans compared: the rule's choice (auto), the probe's, and each candidate forced ("one": a
#: single thread)
OPTIONS = ("auto", "probe", "shards", "columns", "blas", "one")
#: --random leaves out 'blas' (neither auto nor the probe takes it; under load its spinning threads make
#: an epoch 100x slower, which would stretch the run to an hour)
RANDOM_OPTIONS = ("auto", "probe", "shards", "columns", "one")
#: options that are a plan chosen for the user, not a plan forced
CHOOSERS = ("auto", "probe")
#: learning rate per optimizer (fastnn and PyTorch alike)
LR = {"adam": 1e-3, "sgd": 1e-2}
#: issue 10's shape space and goals
WIDTHS, DEPTHS, BATCHES = (2, 4096), (1, 6), (16, 1024)
GOAL_FLOOR = 0.60
#: steps per epoch at least (random shapes: big steps are capped by FLOPs, not by this)
MIN_BATCHES = 4


def _parse(shape):
    """``n_in:hidden[,hidden]:batch[:optimizer]`` -> (n_in, hidden tuple, batch, optimizer)."""
    parts = shape.split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"a shape is n_in:hidden[,hidden...]:batch[:adam|sgd], not {shape!r}")
    opt = parts[3] if len(parts) == 4 else "adam"
    if opt not in LR:
        raise ValueError(f"the optimizer of {shape!r} must be one of {sorted(LR)}")
    return int(parts[0]), tuple(int(h) for h in parts[1].split(",")), int(parts[2]), opt


def _log_uniform(rng, lo, hi):
    return int(round(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def random_shapes(k, seed):
    """``k`` shape strings drawn from issue 10's space (module docstring), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        n_in = _log_uniform(rng, *WIDTHS)
        hidden = [_log_uniform(rng, *WIDTHS) for _ in range(rng.integers(DEPTHS[0], DEPTHS[1] + 1))]
        batch = _log_uniform(rng, *BATCHES)
        opt = ("adam", "sgd")[rng.integers(2)]
        out.append(f"{n_in}:{','.join(map(str, hidden))}:{batch}:{opt}")
    return out


def n_params(n_in, hidden):
    sizes = [n_in, *hidden, peers.N_CLASSES]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _samples(n_in, hidden, batch, seconds=1.0, rate=50e9, min_batches=8, step_s=50e-6):
    """Samples for an epoch of about ``seconds`` at ``rate`` FLOP/s plus ``step_s`` per step (what a
    step of a tiny network costs, PyTorch's more), at most 60,000, at least ``min_batches`` batches."""
    flops = peers.gemm_flops_per_sample(n_in, hidden, peers.N_CLASSES)
    per_sample = flops / rate + step_s / batch
    return int(max(min_batches * batch, min(60000, seconds / per_sample)) // batch * batch)


def _peer_runs(X, y, batch, threads, hidden):
    """The rest of bench.compare's interleaved table: fastnn with Dropout / BatchNorm after each hidden
    layer, PyTorch fused Adam on one thread, JAX (jit and lax.scan); peers not installed are left out."""
    runs = {"fastnn-dropout": lambda: make_fastnn_epoch(X, y, batch, threads, hidden=hidden, variant="dropout"),
            "fastnn-batchnorm": lambda: make_fastnn_epoch(X, y, batch, threads, hidden=hidden, variant="batchnorm"),
            "fastnn-layernorm": lambda: make_fastnn_epoch(X, y, batch, threads, hidden=hidden, variant="layernorm"),
            "torch-fused-1t": lambda: peers.make_torch_epoch(X, y, batch, 1, hidden=hidden),
            "jax-jit": lambda: peers.make_jax_epoch(X, y, batch, threads, hidden=hidden, mode="jit"),
            "jax-scan": lambda: peers.make_jax_epoch(X, y, batch, threads, hidden=hidden, mode="scan")}
    made = {}
    for name, make in runs.items():
        try:
            made[name] = make()
        except ImportError:
            pass
    return made


def measure(shape, threads=2, rounds=3, options=OPTIONS, seconds=1.0, with_peers=False, min_batches=8):
    """Median samples/s of each fastnn plan, of PyTorch (fused optimizer) and of the GEMM floor on one
    shape, and auto's plan (``Trainer.last_plan``; under ``'probe'`` the probe's).

    ``with_peers`` adds the other implementations of :func:`_peer_runs` (Adam shapes) to the rounds."""
    n_in, hidden, batch, opt = _parse(shape)
    n = _samples(n_in, hidden, batch, seconds, min_batches=min_batches)
    rng = np.random.default_rng(0)
    X = rng.random((n, n_in), dtype=np.float32)
    y = rng.integers(0, peers.N_CLASSES, n)
    lr = LR[opt]
    runs = {f"fastnn-{o}": make_fastnn_epoch(X, y, batch, 1 if o == "one" else threads, hidden=hidden, lr=lr,
                                             parallel="auto" if o == "one" else o, optimizer=opt)
            for o in options}
    probe = runs["fastnn-probe"].plan if "fastnn-probe" in runs else None
    plan = runs["fastnn-auto"].plan if "fastnn-auto" in runs else None
    try:
        runs["torch-fused"] = peers.make_torch_epoch(X, y, batch, threads, hidden=hidden, lr=lr, optimizer=opt)
    except ImportError:
        pass
    runs["gemm-floor"] = peers.make_gemm_floor_epoch(X, y, batch, threads, hidden=hidden)
    if threads > 1:
        runs["gemm-floor-1t"] = peers.make_gemm_floor_epoch(X, y, batch, 1, hidden=hidden)
    if with_peers:
        runs.update(_peer_runs(X, y, batch, threads, hidden))
    times = interleaved_times(runs, rounds)
    med = {k: n / float(np.median(v)) for k, v in times.items()}
    if plan is not None:
        plan = dict(plan, probe=probe)
    return med, plan


def _plan_kind(plan):
    if plan is None:
        return "-"
    if plan["col_threads"] > 1:
        return "columns"
    if plan["n_shards"] > 1:
        return "shards"
    return "blas" if plan["blas_threads"] > 1 else "one"


def summarize(shape, med, plan, threads):
    """One table row's figures: auto, the probe, the best plan forced, torch, floor, ratios, goals missed."""
    forced = {o: med[f"fastnn-{o}"] for o in OPTIONS if o not in CHOOSERS and f"fastnn-{o}" in med}
    auto = med["fastnn-auto"]
    best = max(forced, key=forced.get) if forced else "auto"
    best_sps = forced.get(best, auto)
    torch = med.get("torch-fused", float("nan"))
    floor = max(med["gemm-floor"], med.get("gemm-floor-1t", 0.0))
    row = {"shape": shape, "threads": threads, "auto": auto, "auto_plan": _plan_kind(plan), "best": best,
           "best_sps": best_sps, "torch": torch, "floor": floor, "misses": [],
           "reason": plan["reason"] if plan else ""}
    for who, prefix in (("auto", ""), ("probe", "p")):
        sps = med.get(f"fastnn-{who}")
        if sps is None:
            continue
        row[who] = sps
        row[f"{who}_torch"], row[f"{who}_floor"], row[f"{who}_best"] = sps / torch, sps / floor, sps / best_sps
        row["misses"] += [prefix + flag for flag, bad in (("<torch", sps < torch),
                                                          (f"<{GOAL_FLOOR:.0%}", sps < GOAL_FLOOR * floor)) if bad]
    if plan and plan.get("probe"):
        row["probe_plan"] = _plan_kind(plan["probe"])
    return row


HEAD = (f"{'shape (n_in:hidden:batch:opt)':36s}{'auto':>10s} {'plan':8s}{'probe':>10s} {'plan':8s}{'best':>10s} "
        f"{'of':8s}{'torch':>10s}{'floor':>10s}{'a/torch':>8s}{'a/floor':>8s}{'a/best':>7s}{'p/best':>7s}"
        f"  goals missed")


def format_row(s):
    probe = f"{s['probe']:10,.0f} {s.get('probe_plan', '-'):8s}" if "probe" in s else f"{'-':>10s} {'':8s}"
    return (f"{s['shape']:36s}{s['auto']:10,.0f} {s['auto_plan']:8s}{probe}{s['best_sps']:10,.0f} {s['best']:8s}"
            f"{s['torch']:10,.0f}{s['floor']:10,.0f}{s['auto_torch']:8.2f}{s['auto_floor']:8.2f}"
            f"{s['auto_best']:7.2f}{s.get('probe_best', float('nan')):7.2f}  {' '.join(s['misses']) or '-'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", help="n_in:hidden[,hidden]:batch[:adam|sgd] (repeatable)")
    parser.add_argument("--random", type=int, default=0, metavar="K", help="K shapes drawn from issue 10's space")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --random draw")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="epoch length at 50 GFLOP/s")
    parser.add_argument("--max-params", type=float, default=8e6, help="skip random shapes with more parameters")
    parser.add_argument("--reasons", action="store_true", help="print auto's reason under each row")
    args = parser.parse_args(argv)
    shapes = list(args.shape or [])
    skipped = []
    if args.random:
        for s in random_shapes(args.random, args.seed):
            n_in, hidden, _, _ = _parse(s)
            (skipped if n_params(n_in, hidden) > args.max_params else shapes).append(s)
    if not args.shape and not args.random:
        shapes = list(DEFAULT_SHAPES)
    # on one thread every plan is the serial driver
    options = ("auto",) if args.threads == 1 else (RANDOM_OPTIONS if args.random else OPTIONS)
    print(f"threads {args.threads}, load average at start {os.getloadavg()[0]:.1f}")
    print(HEAD)
    print("-" * len(HEAD))
    rows = []
    for shape in shapes:
        med, plan = measure(shape, args.threads, args.rounds, options=options, seconds=args.seconds,
                            min_batches=MIN_BATCHES if args.random else 8)
        rows.append(summarize(shape, med, plan, args.threads))
        print(format_row(rows[-1]), flush=True)
        if args.reasons:
            print(f"{'':40s}{rows[-1]['reason']}")
    print("-" * len(HEAD))
    for flag in ("<torch", f"<{GOAL_FLOOR:.0%}", "p<torch", f"p<{GOAL_FLOOR:.0%}"):
        print(f"{flag}: {sum(flag in r['misses'] for r in rows)} of {len(rows)} shapes")
    for who in CHOOSERS:
        if all(f"{who}_best" in r for r in rows):
            print(f"{who} below 0.9x the best forced plan: {sum(r[f'{who}_best'] < 0.9 for r in rows)} of {len(rows)}")
    if skipped:
        print(f"skipped (over {args.max_params:,.0f} parameters): {', '.join(skipped)}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
