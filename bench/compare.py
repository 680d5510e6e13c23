"""One table of the epoch benchmark: samples/s per implementation and batch size, the ratio of
fastnn's best to PyTorch's best, and fastnn's share of the GEMM floor.

    python -m bench.compare                 # runs the epoch benchmarks, prints the table, writes JSON
    python -m bench.compare --from results.json   # only formats an earlier pytest-benchmark JSON
    python -m bench.compare -k "bs-64"      # extra arguments go to pytest
    python -m bench.compare --interleaved   # every implementation in one interleaved run (bench.shapes)

The JSON it writes (``--out``, default ``.benchmarks/compare-<time>.json``) holds one row per
(impl, threads, batch size) plus the machine's BLAS, so results can be tracked over commits.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


#: fastnn rows of other models (the same MLP with Dropout / BatchNorm / LayerNorm layers): never "fastnn best"
_VARIANTS = ("-dropout", "-batchnorm", "-layernorm")


def _best(rows, prefix, bs):
    vals = [r["samples_per_s"] for r in rows if r["impl"].startswith(prefix) and r["batch_size"] == bs
            and not r["impl"].endswith(_VARIANTS) and r.get("samples_per_s") == r.get("samples_per_s")]
    return max(vals) if vals else None


def epoch_table(rows):
    """Format epoch rows (dicts with impl, threads, batch_size, samples_per_s) as text."""
    rows = [r for r in rows if r.get("group", "epoch") == "epoch"]
    if not rows:
        return "no epoch results"
    sizes = sorted({r["batch_size"] for r in rows})
    by_impl = {}
    for r in rows:
        by_impl.setdefault((r["impl"], r["threads"]), {})[r["batch_size"]] = r["samples_per_s"]
    head = f"{'impl':30s}{'thr':>4s}" + "".join(f"{'bs ' + str(s):>11s}" for s in sizes)
    lines = [head, "-" * len(head)]
    for (impl, thr), cells in sorted(by_impl.items()):
        lines.append(f"{impl:30s}{thr:>4d}" + "".join(
            f"{cells[s]:>11,.0f}" if s in cells else " " * 11 for s in sizes))
    lines.append("-" * len(head))
    summary = {"fastnn best / torch fused best": ("fastnn-", "torch-adam-fused"),
               "fastnn best / torch default best": ("fastnn-", "torch-adam-default"),
               "fastnn best / JAX best": ("fastnn-", "jax-"),
               "fastnn best / GEMM floor best": ("fastnn-", "gemm"),
               "torch fused best / GEMM floor best": ("torch-adam-fused", "gemm")}
    for label, (num, den) in summary.items():
        cells = []
        for s in sizes:
            a = _best([r for r in rows if not r["impl"].startswith("fastnn-reference")], num, s)
            b = _best(rows, den, s)
            cells.append(f"{a / b:>11.2f}" if a and b else f"{'-':>11s}")
        lines.append(f"{label:34s}" + "".join(cells))
    return "\n".join(lines)


#: bench.shapes' names -> (impl as the epoch benchmark names it, threads: None = the run's)
_SHAPES_IMPLS = {"fastnn-auto": ("fastnn-cython-auto", None), "fastnn-shards": ("fastnn-cython-shards", None),
                 "fastnn-columns": ("fastnn-cython-columns", None), "fastnn-blas": ("fastnn-cython-blas", None),
                 "fastnn-probe": ("fastnn-cython-probe", None),
                 "fastnn-one": ("fastnn-cython-auto", 1), "torch-fused": ("torch-adam-fused", None),
                 "torch-fused-1t": ("torch-adam-fused", 1), "jax-jit": ("jax-jit", None),
                 "jax-scan": ("jax-scan", None), "gemm-floor": ("gemm-floor", None), "gemm-floor-1t": ("gemm-floor", 1),
                 "fastnn-dropout": ("fastnn-cython-auto-dropout", None),
                 "fastnn-batchnorm": ("fastnn-cython-auto-batchnorm", None),
                 "fastnn-layernorm": ("fastnn-cython-auto-layernorm", None)}


def interleaved_rows(batch_sizes=(32, 64, 128, 256), threads=2, rounds=3, seconds=0.5, n_in=784, hidden="256,128"):
    """Epoch rows of the benchmark MLP from :func:`bench.shapes.measure` with every peer: for each
    batch size, all implementations run in turn, round after round (random data, medians)."""
    from bench import shapes

    rows = []
    for bs in batch_sizes:
        med, _ = shapes.measure(f"{n_in}:{hidden}:{bs}", threads, rounds, seconds=seconds, with_peers=True)
        for name, value in med.items():
            impl, thr = _SHAPES_IMPLS[name]
            rows.append({"group": "epoch", "impl": impl, "threads": thr or threads, "batch_size": bs,
                         "samples_per_s": value})
    return rows


def _rows_from_json(path):
    doc = json.loads(Path(path).read_text())
    rows = []
    for b in doc.get("benchmarks", []):
        info = b.get("extra_info", {})
        if b.get("group") != "epoch" or "impl" not in info:
            continue
        rows.append({"group": "epoch", "impl": info["impl"], "threads": info["threads"],
                     "batch_size": info["batch_size"], "samples_per_s": info["samples_per_s"]})
    return rows, doc.get("machine_info", {})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", help="format this pytest-benchmark JSON instead of running")
    parser.add_argument("--out", help="where to write the summary JSON")
    parser.add_argument("--interleaved", action="store_true",
                        help="time every implementation in one interleaved run instead of the pytest benchmarks")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--interleaved)")
    parser.add_argument("--seconds", type=float, default=0.5, help="epoch length at 50 GFLOP/s (--interleaved)")
    args, pytest_args = parser.parse_known_args(argv)
    source = args.source
    if args.interleaved:
        rows = interleaved_rows(rounds=args.rounds, seconds=args.seconds)
        machine = {"load_average": os.getloadavg(), "cpu_count": os.cpu_count()}
        print(f"load average (1, 5, 15 min): {machine['load_average']}")
    elif source is None:
        source = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        cmd = [sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q", "-k", "epoch",
               f"--benchmark-json={source}", *pytest_args]
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=False)
    if not args.interleaved:
        rows, machine = _rows_from_json(source)
    print(epoch_table(rows))
    out = Path(args.out or Path(".benchmarks") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "machine": machine, "fastnn_data": os.environ.get("FASTNN_DATA")},
                              indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
