"""Fixtures and reporting for the benchmark suite (``pytest bench --benchmark-only``).

Environment knobs
-----------------
FASTNN_DATA          directory with the MNIST IDX files (else random data).
FASTNN_BENCH_N       samples per epoch when benchmarking (default 60000).
FASTNN_BENCH_ROUNDS  timed rounds per epoch benchmark (default 3, +1 warm-up).
FASTNN_BENCH_LOG     if set, append each result as one JSON line to this file as
                     soon as it is measured (survives a killed or timed-out run).

With ``--benchmark-disable`` every benchmark runs its callable once on a
1000-sample subset, so the suite doubles as a fast smoke test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import data, peers

SMOKE_N = 1000  # not a multiple of any batch size: the partial last batch is exercised
_HERE = Path(__file__).resolve().parent
_RESULTS = []  # one dict per benchmark, for the samples/s summary table


def pytest_configure(config):
    # Registered here so the suite also runs without the project's ini.
    config.addinivalue_line("markers", "bench: performance benchmark (run with `pytest bench --benchmark-only`)")


def pytest_collection_modifyitems(config, items):
    # Mark everything under bench/ so `-m "not bench"` deselects it anywhere. A plain `pytest` run
    # (neither --benchmark-only nor --benchmark-disable) skips the suite: timing it takes minutes.
    timing_chosen = config.getoption("benchmark_only") or config.getoption("benchmark_disable") \
        or config.getoption("benchmark_enable")
    skip = pytest.mark.skip(reason="benchmarks: run `pytest --benchmark-only` (or --benchmark-disable to smoke-test)")
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.bench)
            if not timing_chosen:
                item.add_marker(skip)


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


@pytest.fixture(scope="session")
def bench_rounds():
    """Timed rounds per epoch benchmark (``FASTNN_BENCH_ROUNDS``, default 3)."""
    return max(1, _env_int("FASTNN_BENCH_ROUNDS", 3))


@pytest.fixture
def train_data(benchmark):
    """``(X, y)`` for epoch benchmarks: full size, or a small subset when disabled."""
    n = SMOKE_N if benchmark.disabled else _env_int("FASTNN_BENCH_N", 60000)
    return data.mnist_like(n)


def record(benchmark, run, **extra):
    """Fill ``benchmark.extra_info`` from a finished :class:`bench.peers.PeerRun`.

    ``samples_per_s`` uses the median round (robust on a shared, noisy
    machine); ``samples_per_s_best`` the fastest.
    """
    stats = getattr(benchmark.stats, "stats", None) if benchmark.stats is not None else None
    median = stats.median if stats is not None else float("nan")
    best = stats.min if stats is not None else float("nan")
    info = {
        "impl": run.impl,
        "batch_size": run.batch_size,
        "threads": run.threads,
        "dtype": run.dtype,
        "n_samples": run.n_samples,
        "samples_per_s": peers.samples_per_s(run.n_samples, median),
        "samples_per_s_best": peers.samples_per_s(run.n_samples, best),
        "data": data.data_source(),
        **extra,
    }
    benchmark.extra_info.update(info)
    if not benchmark.disabled:
        row = {"group": benchmark.group, "median_s": median, **info}
        _RESULTS.append(row)
        log = os.environ.get("FASTNN_BENCH_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"name": benchmark.name, **row}, default=repr) + "\n")
    return info


@pytest.fixture
def bench_record(benchmark):
    """``bench_record(run, **extra)``: :func:`record` bound to this test's benchmark."""
    return lambda run, **extra: record(benchmark, run, **extra)


@pytest.fixture
def bench_n(benchmark):
    """``bench_n(n)``: ``n``, or at most the smoke size when benchmarking is disabled."""
    return lambda n: min(n, SMOKE_N) if benchmark.disabled else n


@pytest.fixture
def bench_epoch(benchmark, train_data, bench_rounds):
    """Benchmark one epoch of a peer factory: ``bench_epoch(factory, batch_size, threads, **kw)``."""

    def run_epoch(factory, batch_size, threads, **kwargs):
        X, y = train_data
        run = factory(X, y, batch_size, threads, **kwargs)
        benchmark.group = "epoch"
        result = benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=1)
        return record(benchmark, run, result=result)

    return run_epoch


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("fastnn bench: samples/s (median round; best in parentheses)")
    tr.write_line(f"data: {data.data_source()}")
    for line in peers.blas_info():
        tr.write_line(f"blas: {line}")
    epochs = [r for r in _RESULTS if r["group"] == "epoch"]
    if epochs:
        from bench.compare import epoch_table

        for line in epoch_table(epochs).splitlines():
            tr.write_line(line)
        tr.write_line("")
        sizes = sorted({r["batch_size"] for r in epochs})
        rows = {}
        for r in epochs:
            rows.setdefault((r["impl"], r["threads"]), {})[r["batch_size"]] = r
        tr.write_line(f"{'epoch: impl':28s}{'thr':>4s}" + "".join(f"{'bs ' + str(s):>20s}" for s in sizes))
        for (impl, threads), by_bs in rows.items():
            cells = []
            for s in sizes:
                r = by_bs.get(s)
                cells.append(f"{r['samples_per_s']:>10,.0f} ({r['samples_per_s_best']:>6,.0f})" if r else " " * 19)
            tr.write_line(f"{impl:28s}{threads:>4d}" + "".join(f"{c:>20s}" for c in cells))
    for r in (r for r in _RESULTS if r["group"] != "epoch"):
        tr.write_line(f"{r['group']}: {r['impl']:24s} thr={r['threads']} batch={r['batch_size']:<5d} "
                      f"{r['samples_per_s']:>12,.0f} samples/s  median {r['median_s'] * 1e6:,.1f} us/call")
