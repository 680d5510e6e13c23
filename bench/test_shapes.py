"""Smoke test of bench.shapes (the shapes table): every plan runs on a tiny and a wide shape."""
from bench import shapes


def test_shapes_table_runs(capsys):
    med, plan = shapes.measure("40:32:16", threads=2, rounds=1, seconds=0.01)
    assert {"fastnn-auto", "fastnn-shards", "fastnn-columns", "fastnn-blas", "fastnn-one"} <= set(med) and plan["reason"]
    med, plan = shapes.measure("1100:1000:16", threads=2, rounds=1, seconds=0.01)
    assert plan["col_threads"] == 2, plan  # 1.1M parameters: auto takes the column split
    shapes.main(["--shape", "30:20:8", "--rounds", "1", "--seconds", "0.01"])
    assert "30:20:8" in capsys.readouterr().out
