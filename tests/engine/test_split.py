"""parallel='auto' picks what the documented rule of fastnn.engine.split says (structure, not timings)."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.engine.split import (COLUMN_MIN_WORK, COLUMN_PARAMS, COMPUTE_SHARD_ROWS, MIN_SHARD_ROWS, MIN_SHARD_WORK, SHARD_ROWS,
                                 TILED_SHARD_ROWS, choose_split)

P = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # the benchmark MLP, 235,146 parameters


@pytest.mark.parametrize("batch,dense,kind", [
    (32, "float64", "columns"),  # float64 (BLAS): shards of 16 rows would be thin; 7.5M >= 2**22
    (64, "float64", "columns"),  # shards of 32 rows
    (16, True, "one"),        # batch x p = 3.8M < 2**22: one thread
    (32, True, "shards"),     # float32 Dense: 16-row shards on the GEMM micro-kernels
    (64, True, "shards"),     # 32 rows each
    (128, True, "shards"),    # 64 rows per shard
    (256, True, "shards"),
    (32, False, "one"),       # Dropout/BatchNorm networks: no column split, 16-row shards too thin
    (64, False, "shards"),    # 32 rows each
])
def test_the_benchmark_mlp_on_two_threads(batch, dense, kind):
    itemsize = 8 if dense == "float64" else 4
    split = choose_split("auto", 2, batch, P, bool(dense), itemsize)
    assert split.kind == kind and split.reason
    assert split.threads == (1 if kind == "one" else 2)


def test_compute_bound_networks_shard_from_thin_shards():
    """Conv nets: row shards from COMPUTE_SHARD_ROWS rows per shard, whatever the parameter count."""
    assert choose_split("auto", 2, 2 * COMPUTE_SHARD_ROWS, 5000, False, compute_bound=True).kind == "shards"
    assert choose_split("auto", 2, 2 * COMPUTE_SHARD_ROWS - 2, 5000, False, compute_bound=True).kind == "one"
    assert choose_split("auto", 2, 2 * COMPUTE_SHARD_ROWS, 5000, False).kind == "one"  # not compute-bound
    net = fnn.Network([fnn.Conv2D(4, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)],
                      input_shape=(8, 8, 1), seed=0)
    t = fnn.Trainer(net, batch_size=32, n_threads=2, verbose=0)
    rng = np.random.default_rng(0)
    t.fit(rng.random((64, 8, 8, 1), dtype=np.float32), np.arange(64) % 3)
    assert t.last_plan["path"] == "fused" and t.last_plan["n_shards"] == 2


def test_the_thresholds_are_where_the_docstring_says():
    assert choose_split("auto", 1, 4096, 10 ** 7, True).kind == "one"
    wide = COLUMN_PARAMS
    assert choose_split("auto", 2, 4096, wide, True).kind == "columns"  # wide: columns even with fat shards
    assert choose_split("auto", 2, 4096, wide, False).kind == "shards"  # ... unless they cannot run
    p = MIN_SHARD_WORK // SHARD_ROWS
    assert choose_split("auto", 2, 2 * SHARD_ROWS, p, True).kind == "shards"
    assert choose_split("auto", 2, 2 * SHARD_ROWS - 2, p, False).kind == "one"  # rows * p < MIN_SHARD_WORK
    p = -(-COLUMN_MIN_WORK // 40)
    assert choose_split("auto", 2, 40, p, True, 8).kind == "columns"
    assert choose_split("auto", 2, 39, p, True, 8).kind == "one"
    assert choose_split("auto", 2, 2 * TILED_SHARD_ROWS, p, True).kind == "shards"  # float32: thin shards
    thin = 2 * TILED_SHARD_ROWS - 2
    assert choose_split("auto", 2, thin, -(-COLUMN_MIN_WORK // thin), True).kind == "columns"  # 15-row shards
    p = MIN_SHARD_WORK // TILED_SHARD_ROWS - 1
    assert choose_split("auto", 2, 2 * TILED_SHARD_ROWS, p, True).kind == "one"  # rows * p < MIN_SHARD_WORK
    # small Dense networks on Cython: shards from SHARD_ROWS rows per shard, whatever the parameter count
    assert choose_split("auto", 2, 2 * SHARD_ROWS, 300, True).kind == "shards"
    assert choose_split("auto", 2, 2 * SHARD_ROWS - 2, 300, True).kind == "one"
    assert choose_split("auto", 2, 2 * SHARD_ROWS, 300, False).kind == "one"  # other networks / backends: not measured
    p = MIN_SHARD_WORK // MIN_SHARD_ROWS
    assert choose_split("auto", 2, 2 * MIN_SHARD_ROWS, p, False).kind == "shards"
    assert choose_split("auto", 2, 2 * MIN_SHARD_ROWS - 2, p, False).kind == "one"


def test_named_settings_are_taken_as_asked():
    assert choose_split("blas", 2, 16, 10, False).kind == "blas"
    assert choose_split("shards", 2, 1, 10, False).threads == 1  # never more shards than rows
    assert choose_split("columns", 2, 16, 10, True).kind == "columns"


def test_the_trainer_runs_what_the_rule_chose():
    rng = np.random.default_rng(0)
    X, y = rng.random((256, 784), dtype=np.float32), rng.integers(0, 10, 256)
    for batch, layers, kind in [(24, [fnn.Dense(256, "relu"), fnn.Dense(10)], "columns"),
                                (32, [fnn.Dense(256, "relu"), fnn.Dense(10)], "shards"),
                                (128, [fnn.Dense(256, "relu"), fnn.Dense(10)], "shards"),
                                (8, [fnn.Dense(16, "relu"), fnn.Dense(10)], "one")]:
        net = fnn.Network(layers, input_shape=(784,), seed=0, backend="cython")
        tr = fnn.Trainer(net, batch_size=batch, n_threads=2, verbose=0)
        tr.fit(X, y)
        expected = choose_split("auto", 2, batch, net.n_params, True)
        assert expected.kind == kind and tr.last_plan["reason"] == expected.reason
        assert (tr.last_plan["col_threads"], tr.last_plan["n_shards"], tr.last_plan["blas_threads"]) == \
            {"columns": (2, 1, 1), "shards": (1, 2, 1), "one": (1, 1, 1)}[kind]
