"""Sweep benchmarks (issue 16): one small grid, serial vs two worker processes.

Group ``sweep``: 2 configurations x 2 seeds of 784-128-10 (batch 32, one epoch) on the benchmark data,
``n_jobs=1`` vs ``n_jobs=2``; the full picture (start-up, small runs, wide runs) is ``python -m bench.sweep``.

Run:    FASTNN_DATA=../shared/data/mnist pytest bench/test_bench_sweep.py --benchmark-only
Smoke:  pytest bench -q --benchmark-disable -k sweep
"""
import math

import pytest

from fastnn.experiments import MLPFactory, sweep


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sweep_small_grid(benchmark, train_data, bench_rounds, n_jobs):
    X, y = train_data
    benchmark.group = "sweep"

    def run():
        return sweep(MLPFactory(X.shape[1], 10, hidden=(128,)), {"lr": [0.01, 0.001]}, X, y, epochs=1, seeds=2,
                     metric="loss", n_jobs=n_jobs)

    result = benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=0)
    if result is not None:
        assert len(result.runs) == 4 and all(math.isfinite(r["final"]) for r in result.runs)
        assert result.execution.startswith("2 worker processes" if n_jobs == 2 else "serial")
