"""Smoke run of bench/ray_scaling.py (a few steps on a local Ray): the benchmark keeps working.

Not a timing: ``python -m bench.ray_scaling`` measures. Skipped without Ray.
"""
import pytest


@pytest.mark.parametrize("model, batch, n", [("mlp", 64, 1000), ("cnn", 16, 200)])
def test_ray_scaling_smoke(model, batch, n):
    ray = pytest.importorskip("ray")
    from bench import ray_scaling

    started = not ray.is_initialized()
    try:
        out = ray_scaling.measure(batch=batch, workers=2, steps=4, repeats=1, sync_every=2, n=n, model=model)
        fit = ray_scaling.scaling(out)
        text = ray_scaling.table(out, fit) + "\n" + ray_scaling.scaling_table(out, fit)
    finally:
        if started:
            ray.shutdown()
    assert "RayTrainer, 2 workers, sync_every=1" in text and "| 128 |" in text
    assert ray_scaling.MODELS[model] in text
    assert out["ray_n"]["compute"] > 0 and [r["workers"] for r in fit["rows"]] == [8, 32, 128]
