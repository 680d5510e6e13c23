"""Smoke test of bench.layernorm (the norm rows' kernels per phase, and the norm variants' epochs)."""
from bench import layernorm


def test_epochs_table_runs(capsys):
    times = layernorm.epochs((32,), (1,), rounds=2, samples=96)
    assert set(times) == {("this", v, 32, 1) for v in layernorm.VARIANTS}
    assert all(len(w) == 2 and (w > 0).all() and len(c) == 2 for w, c in times.values())
    layernorm.print_epochs(times, (32,), (1,), 96)
    assert "layernorm" in capsys.readouterr().out


def test_kernels_table_runs(capsys):
    layernorm.kernels(rows=(8,))
    out = capsys.readouterr().out
    assert "LayerNorm  256" in out and "Dense  784-256" in out and "nan" not in out
