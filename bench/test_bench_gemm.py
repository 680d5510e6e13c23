"""Smoke test of bench.gemm (GFLOP/s of the GEMM micro-kernels next to OpenBLAS; training epochs before/after)."""
from bench import gemm


def test_gemm_table_runs(capsys, monkeypatch):
    monkeypatch.setattr(gemm, "INFER", [(50, 30, 20)])
    monkeypatch.setattr(gemm, "TRAIN", [(7, 30, 20)])
    monkeypatch.setattr(gemm, "BACKWARD", [("dW", 30, 7, 20), ("dX", 7, 20, 30)])
    res = gemm.measure(rounds=1, bias_relu=True, min_flop=1e4)
    assert len(res) == 4 and all(v > 0 for r in res.values() for v in r.values())
    assert {"openblas", "fastnn-off"} <= set(res[("infer", 50, 30, 20)])
    gemm.main(["--rounds", "1"])
    assert "GFLOP/s" in capsys.readouterr().out


def test_epoch_rows_run(capsys):
    res = gemm.measure_epochs(batch_sizes=(32,), threads=2, rounds=1, seconds=0.01)
    assert {"auto", "auto-blas", "shards", "columns-blas", "floor"} <= set(res[32])
    gemm.print_epochs(res, 2)
    assert "share of the GEMM floor" in capsys.readouterr().out
