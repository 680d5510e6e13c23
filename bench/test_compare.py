"""bench.compare's summary: fastnn's best row is the plain MLP, never a variant with more layers."""
from bench.compare import epoch_table


def _row(impl, bs, sps, threads=2):
    return {"group": "epoch", "impl": impl, "threads": threads, "batch_size": bs, "samples_per_s": sps}


def test_variants_with_more_layers_are_not_fastnn_best():
    rows = [_row("fastnn-cython-auto", 64, 100.0), _row("fastnn-cython-auto-dropout", 64, 150.0),
            _row("fastnn-cython-auto-batchnorm", 64, 140.0),
            _row("fastnn-cython-auto-layernorm", 64, 130.0), _row("torch-adam-fused", 64, 50.0),
            _row("jax-scan", 64, 80.0), _row("gemm-floor", 64, 200.0)]
    table = epoch_table(rows)
    lines = {line[:34].strip(): line[34:].split() for line in table.splitlines() if " / " in line}
    assert lines["fastnn best / torch fused best"] == ["2.00"]
    assert lines["fastnn best / JAX best"] == ["1.25"]
    assert lines["fastnn best / GEMM floor best"] == ["0.50"]
    assert "fastnn-cython-auto-dropout" in table  # still listed, only not counted as fastnn's best


def test_interleaved_rows_name_every_implementation():
    from bench.compare import interleaved_rows

    rows = interleaved_rows(batch_sizes=(8,), rounds=1, seconds=1e-6, n_in=12, hidden="16,8")
    impls = {(r["impl"], r["threads"]) for r in rows}
    assert {("fastnn-cython-auto", 2), ("fastnn-cython-auto", 1), ("fastnn-cython-columns", 2),
            ("gemm-floor", 1), ("gemm-floor", 2), ("fastnn-cython-auto-dropout", 2),
            ("fastnn-cython-auto-layernorm", 2)} <= impls
    assert all(r["samples_per_s"] > 0 and r["batch_size"] == 8 for r in rows)
    assert "fastnn best / GEMM floor best" in epoch_table(rows)
