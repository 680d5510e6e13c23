"""GradientFlow's cost (issue 16): one epoch with and without the callback, fused MLP and per-layer LSTM.

Run:  FASTNN_DATA=/path/to/mnist pytest bench/test_bench_gradflow.py --benchmark-only
Interleaved ratios:  python -m bench.gradflow
"""
import math

import pytest

from bench import gradflow


@pytest.mark.parametrize("with_callback", [False, True], ids=["plain", "gradflow"])
@pytest.mark.parametrize("model", gradflow.MODELS)
def test_gradflow_epoch(benchmark, train_data, bench_rounds, bench_record, model, with_callback):
    X, y = train_data
    run = gradflow.make_epoch(X, y, 64, 1, model=model, gradflow=with_callback)
    benchmark.group = f"gradflow-epoch-{model}"
    result = benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=1)
    assert math.isfinite(bench_record(run, result=result)["result"])
