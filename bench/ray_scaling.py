"""RayTrainer vs Trainer: step time, communication share, speed-up, and a scaling estimate.

Run (Ray installed: ``pip install -e ".[test,ray]"``)::

    FASTNN_DATA=../shared/data/mnist python -m bench.ray_scaling            # MLP and CNN, batch 256, 2 workers
    python -m bench.ray_scaling --model cnn --steps 8 --repeats 1          # quick look at the CNN

Models: the MNIST MLP 784-256-128-10 (the fused path) and the CNN of :mod:`bench.cnn`'s
``example`` (Conv 32 3x3, MaxPool 2, Conv 64 3x3, MaxPool 2, Flatten, Dense 128, Dense 10 -- the
per-layer path while Conv2D has no fused plan row), Adam, float32.

A benchmark, not a test: it prints a markdown table (the README's) and the model behind the
scaling estimate. It measures, per model, on a local Ray with as many CPUs as workers:

- ``Trainer`` on 1 thread and on ``--workers`` threads (its best plan), seconds per step;
- ``RayTrainer`` with 1 and ``--workers`` workers at ``sync_every=1`` (per-step medians of the
  profile: compute = slowest worker, communication = the rest of the driver's wall time minus
  the reduce and the update), and with ``--sync-every`` (parameter averaging);
- the scaling estimate to 8/32/128 workers (weak scaling: every worker keeps its rows per step,
  so its compute per step stays the measured one) against a sync cost ``a + b * N`` fitted
  through the 1- and 2-worker measurements (:func:`fastnn.distributed.scaling_estimate`), with
  the ``sync_every`` of parameter averaging that keeps 80% (an averaging sync costs what the
  measured one did, relative to a gradient sync).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from bench import data


MODELS = {"mlp": "MLP 784-256-128-10", "cnn": "CNN (bench.cnn example)"}
STEPS = {"mlp": 100, "cnn": 16}  # the CNN's step is ~50x the MLP's: fewer steps give as many seconds


def _net(model, seed=0):
    import fastnn as fnn

    if model == "cnn":
        from bench.cnn import MODELS as CNNS

        convs, hidden = CNNS["example"]
        layers = []
        for filters, k, padding in convs:
            layers += [fnn.Conv2D(filters, k, padding=padding, activation="relu"), fnn.MaxPool2D(2)]
        layers += [fnn.Flatten()] + [fnn.Dense(u, activation="relu") for u in hidden] + [fnn.Dense(data.N_CLASSES)]
        return fnn.Network(layers, input_shape=(28, 28, 1), seed=seed, backend="cython")
    layers = [fnn.Dense(h, activation="relu") for h in (256, 128)] + [fnn.Dense(data.N_CLASSES)]
    return fnn.Network(layers, input_shape=(data.N_FEATURES,), seed=seed, backend="cython")


def _trainer_step(X, y, batch, steps, threads, model):
    import fastnn as fnn

    net = _net(model)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=batch, seed=0, verbose=0, n_threads=threads)
    tr.fit(X, y, samples_per_epoch=batch * 2)  # warm-up
    h = tr.fit(X, y, samples_per_epoch=batch * steps)
    return h["epoch_time"][0] / steps


def _ray_run(X, y, batch, steps, workers, sync_every, model):
    import fastnn as fnn
    from fastnn.distributed import RayTrainer

    net = _net(model)
    rt = RayTrainer(net, optimizer=fnn.Adam(1e-3), batch_size=batch, seed=0, verbose=0, num_workers=workers,
                    sync_every=sync_every)
    h = rt.fit(X, y, samples_per_epoch=batch * steps)
    s = rt.profile.summary(skip=2)
    s["epoch_step"] = h["epoch_time"][0] / steps  # the fit loop's time per step (workers start before it)
    s["path"] = rt.last_plan["path"]
    return s


def measure(batch=256, workers=2, steps=None, repeats=3, sync_every=8, n=60000, model="mlp"):
    """Medians over ``repeats`` of every configuration of one model; returns a dict of the figures."""
    import ray

    steps = STEPS[model] if steps is None else steps
    X, y = data.mnist_like(n)
    X = X.astype(np.float32)
    if model == "cnn":
        X = X.reshape(-1, 28, 28, 1)
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    out = {"model": model, "batch": batch, "workers": workers, "steps": steps, "source": data.data_source(),
           "n_params": _net(model).n_params}
    runs = {"trainer_1": [], "trainer_n": [], "ray_1": [], "ray_n": [], "ray_avg": []}
    for _ in range(repeats):  # interleaved: load on the shared machine hits every configuration alike
        runs["trainer_1"].append(_trainer_step(X, y, batch, steps, 1, model))
        runs["trainer_n"].append(_trainer_step(X, y, batch, steps, workers, model))
        runs["ray_1"].append(_ray_run(X, y, batch, steps, 1, 1, model))
        runs["ray_n"].append(_ray_run(X, y, batch, steps, workers, 1, model))
        runs["ray_avg"].append(_ray_run(X, y, batch, steps, workers, sync_every, model))
    med = statistics.median
    out["trainer_1"] = med(runs["trainer_1"])
    out["trainer_n"] = med(runs["trainer_n"])
    for key in ("ray_1", "ray_n", "ray_avg"):
        out[key] = {f: med(r[f] for r in runs[key]) for f in runs[key][0] if f != "path"}
    out["path"] = runs["ray_n"][0]["path"]
    out["sync_every"] = sync_every
    return out


def scaling(out, targets=(8, 32, 128), slope_per_param=None):
    """The scaling model fitted to ``measure``'s figures (see the module docstring).

    The per-worker sync cost is the slope between the 1- and 2-worker syncs. When load noise makes
    it vanish (the 2-worker sync measured no dearer than the 1-worker one: not a real saving, the
    driver ships every worker the same bytes) and ``slope_per_param`` -- seconds per worker per
    parameter, measured on another model -- is given, it is used scaled by this model's parameters.
    """
    from fastnn.distributed import scaling_estimate

    r1, rn, ra, n = out["ray_1"], out["ray_n"], out["ray_avg"], out["workers"]
    sync1 = r1["wall"] - r1["compute"]   # one worker: everything of a step but its compute
    syncn = rn["wall"] - rn["compute"]
    per_worker = max(0.0, (syncn - sync1) / (n - 1)) if n > 1 else 0.0
    source = "measured"
    if per_worker == 0.0 and slope_per_param:
        per_worker, source = slope_per_param * out["n_params"], "scaled by parameters from another model's"
    fixed = max(0.0, sync1 - per_worker)
    # one averaging sync vs one gradient sync at n workers (parameters + optimizer state: more bytes)
    avg_cost = max(1.0, (ra["wall"] - ra["compute"]) * out["sync_every"] / syncn)
    compute_step = rn["compute"]         # weak scaling: every worker keeps batch / n rows per step
    rows = scaling_estimate(compute_step, fixed, workers=targets, comm_per_worker=per_worker,
                            averaging_cost=avg_cost)
    return {"compute_step": compute_step, "fixed": fixed, "per_worker": per_worker, "avg_cost": avg_cost,
            "per_worker_source": source, "rows": rows}


def table(out, model, header=True):
    """Markdown rows of one model's measurements and its scaling estimate (``header``: the table's head)."""
    n, b = out["workers"], out["batch"]
    ms = 1e3
    lines = [f"| model | configuration | ms/step | compute ms | communication ms (share) | vs Trainer {n} thr |",
             "|---|---|---|---|---|---|"] if header else []
    name = f"{MODELS[out['model']]}, bs {b} ({out['path']} path)"
    lines.append(f"| {name} | Trainer, 1 thread | {out['trainer_1'] * ms:.2f} | | | "
                 f"{out['trainer_n'] / out['trainer_1']:.2f}x |")
    lines.append(f"| | Trainer, {n} threads | {out['trainer_n'] * ms:.2f} | | | 1.00x |")
    for key, label in (("ray_1", "RayTrainer, 1 worker"), ("ray_n", f"RayTrainer, {n} workers, sync_every=1"),
                       ("ray_avg", f"RayTrainer, {n} workers, sync_every={out['sync_every']} (averaging)")):
        r = out[key]
        comm = r["wall"] - r["compute"]
        lines.append(f"| | {label} | {r['wall'] * ms:.2f} | {r['compute'] * ms:.2f} | "
                     f"{comm * ms:.2f} ({comm / r['wall']:.0%}) | {out['trainer_n'] / r['wall']:.2f}x |")
    return "\n".join(lines)


def scaling_table(out, model):
    """The scaling estimate of one model as a markdown table with its one-line model description."""
    n, b = out["workers"], out["batch"]
    ms = 1e3
    lines = [f"{MODELS[out['model']]}: weak scaling (each worker keeps {b // n} rows per step: compute "
             f"{model['compute_step'] * ms:.2f} ms per step; a gradient sync costs {model['fixed'] * ms:.2f} ms "
             f"+ {model['per_worker'] * ms:.2f} ms x N ({model['per_worker_source']} slope), an averaging sync "
             f"{model['avg_cost']:.1f}x that; {out['n_params']:,} parameters):", "",
             "| workers | sync ms | efficiency, sync_every=1 | samples/s vs 1 worker without syncs | "
             "sync_every for >= 80% |", "|---|---|---|---|---|"]
    for r in model["rows"]:
        lines.append(f"| {r['workers']} | {r['comm'] * ms:.1f} | {r['efficiency']:.1%} | {r['speedup']:.2f}x | "
                     f"{r['needed_sync_every']} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["mlp", "cnn", "both"], default="both")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: 100 MLP, 16 CNN)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sync-every", type=int, default=8)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    models = ["mlp", "cnn"] if args.model == "both" else [args.model]
    outs = [measure(args.batch, args.workers, args.steps, args.repeats, args.sync_every, model=m) for m in models]
    fits = [scaling(out) for out in outs]
    slopes = [fit["per_worker"] / out["n_params"] for out, fit in zip(outs, fits) if fit["per_worker"] > 0]
    if slopes:  # a slope lost in the noise: the other model's, per parameter (the same star, other bytes)
        fits = [scaling(out, slope_per_param=max(slopes)) if fit["per_worker"] == 0 else fit
                for out, fit in zip(outs, fits)]
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(f"data: {outs[0]['source']}; {os.cpu_count()} CPUs; load average {' '.join(f'{v:.2f}' for v in load)}; "
          f"{time.perf_counter() - t0:.0f} s")
    print("\n".join(table(out, fit, header=i == 0) for i, (out, fit) in enumerate(zip(outs, fits))))
    for out, fit in zip(outs, fits):
        print()
        print(scaling_table(out, fit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
