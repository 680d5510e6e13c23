"""Smoke test of bench.shapes (the shapes table): every plan runs on a tiny and a wide shape; the random
draw stays in issue 10's space and the goals are flagged from the figures."""
import numpy as np

from bench import shapes


def test_shapes_table_runs(capsys):
    med, plan = shapes.measure("40:32:16", threads=2, rounds=1, seconds=0.01)
    assert {"fastnn-auto", "fastnn-probe", "fastnn-shards", "fastnn-columns", "fastnn-blas", "fastnn-one",
            "gemm-floor", "gemm-floor-1t"} <= set(med) and plan["reason"]
    assert plan["probe"]["reason"].startswith("probe: ")
    med, plan = shapes.measure("1100:1000:16", threads=2, rounds=1, seconds=0.01, options=("auto",), min_batches=1)
    assert plan["col_threads"] == 2, plan  # 1.1M parameters: auto takes the column split
    shapes.main(["--shape", "30:20:8", "--shape", "12:9,7,5:8:sgd", "--rounds", "1", "--seconds", "0.01"])
    out = capsys.readouterr().out
    assert "30:20:8" in out and "12:9,7,5:8:sgd" in out


def test_random_shapes_are_drawn_from_the_issue_space():
    drawn = shapes.random_shapes(200, seed=5)
    assert drawn == shapes.random_shapes(200, seed=5) and drawn != shapes.random_shapes(200, seed=6)
    parsed = [shapes._parse(s) for s in drawn]
    widths = np.array([w for n_in, hidden, _, _ in parsed for w in (n_in, *hidden)])
    assert widths.min() >= 2 and widths.max() <= 4096 and np.median(widths) < 200  # log-uniform: median ~90
    assert {len(h) for _, h, _, _ in parsed} == set(range(1, 7))
    assert all(16 <= b <= 1024 for _, _, b, _ in parsed) and {o for *_, o in parsed} == {"adam", "sgd"}


def test_goals_are_flagged_from_the_figures():
    med = {"fastnn-auto": 90.0, "fastnn-probe": 130.0, "fastnn-one": 120.0, "fastnn-shards": 80.0,
           "torch-fused": 100.0, "gemm-floor": 140.0, "gemm-floor-1t": 200.0}
    row = shapes.summarize("8:8:16", med, {"col_threads": 1, "n_shards": 2, "blas_threads": 1, "reason": "r"}, 2)
    assert row["floor"] == 200.0 and row["best"] == "one"  # the better floor; the best plan forced
    assert row["misses"] == ["<torch", "<60%"]               # 90 < 100 and 90 < 0.6 * 200; the probe meets both
    assert "<torch <60%" in shapes.format_row(row)
