"""Where a :class:`~fastnn.distributed.RayTrainer` step's time goes: compute vs communication.

The workers time their own calls and send the seconds back with every result; the driver times
its puts, its wait, the reduce and the update around them. :class:`RayProfile` holds those
records (``trainer.profile`` after a fit), :meth:`RayProfile.report` turns them into a
:class:`RayProfileReport` table, and ``fastnn.profile(ray_trainer, X, y)`` runs a short fit
for one (the trainer restored afterwards, as for a serial profile). :func:`scaling_estimate`
extrapolates the measured costs to more workers.
"""
import math

import numpy as np

__all__ = ["RayProfile", "RayProfileReport", "scaling_estimate"]


class RayProfile:
    """Per-sync timing of a Ray fit: what a profiler reads (``trainer.profile``).

    One record per synchronisation (every step with ``sync_every=1``), in seconds:

    - ``steps``: optimizer steps the record covers (``sync_every``, fewer at an epoch's end);
    - ``wall``: the driver's time from sending the parameters to having applied the update;
    - ``compute``: the slowest worker's time inside its call (copy-in + forward/backward or local steps);
    - ``communication``: ``wall - compute - reduce - update``: object-store puts and gets,
      (de)serialisation, scheduling and waiting -- everything that is not computing;
    - ``reduce``: the driver summing the workers' gradients (or averaging their parameters);
    - ``update``: the driver's ``apply_update`` (0 with parameter averaging: the workers update);
    - ``serialise``: of ``communication``, the driver's ``ray.put`` of what it sends (parameters,
      running statistics; after an averaging sync parameters and optimizer state);
    - ``imbalance``: of ``compute``, the slowest worker's time minus the fastest one's (the others wait).
    """

    FIELDS = ("steps", "wall", "compute", "communication", "reduce", "update", "serialise", "imbalance")

    def __init__(self):
        self.records = {f: [] for f in self.FIELDS}

    def add(self, steps, wall, compute, reduce, update, serialise=0.0, imbalance=0.0):
        """Record one sync (seconds; ``communication`` is what remains of ``wall``)."""
        comm = max(0.0, wall - compute - reduce - update)
        for f, v in zip(self.FIELDS, (steps, wall, compute, comm, reduce, update, serialise, imbalance)):
            self.records[f].append(v)

    def __len__(self):
        return len(self.records["wall"])

    def arrays(self):
        """``{field: ndarray}`` of every record."""
        return {f: np.asarray(v, np.int64 if f == "steps" else np.float64) for f, v in self.records.items()}

    def summary(self, skip=1):
        """Median seconds per *step* of each phase and the communication share, skipping ``skip`` first records.

        The first record carries the workers' first-call costs (page faults, caches), hence ``skip``.
        """
        a = self.arrays()
        if len(a["wall"]) <= skip:
            skip = 0
        if len(a["wall"]) == 0:
            return {}
        steps = np.maximum(a["steps"][skip:], 1)
        out = {f: float(np.median(a[f][skip:] / steps)) for f in self.FIELDS if f != "steps"}
        out["communication_share"] = out["communication"] / out["wall"] if out["wall"] > 0 else 0.0
        out["records"] = int(len(steps))
        return out

    def report(self, skip=1, **config):
        """The records as a :class:`RayProfileReport` (per-step means, ``skip`` first records left out).

        ``config`` (``num_workers``, ``sync_every``, ``path``, ``batch_size``, ...) is shown in the
        report's heading and kept in :meth:`RayProfileReport.as_dict`.
        """
        a = self.arrays()
        if len(a["wall"]) == 0:
            raise ValueError("the profile is empty: fit the RayTrainer first (or use fastnn.profile(trainer, X, y))")
        if len(a["wall"]) <= skip:
            skip = 0
        n_steps = int(a["steps"][skip:].sum())
        per_step = {f: float(a[f][skip:].sum()) / max(n_steps, 1) for f in self.FIELDS if f != "steps"}
        return RayProfileReport(per_step, n_steps, len(a["wall"]) - skip, config)


class RayProfileReport:
    """Per-step compute vs communication of a Ray fit, as a table (``print(report)``).

    The phases add up to the driver's wall time per step: ``compute`` (the slowest worker; its
    ``imbalance`` part is the others waiting for it), ``serialise`` (the driver's puts),
    ``transfer + wait`` (the rest of the communication: the object store, (de)serialisation in
    the workers, scheduling, fetching the results), ``reduce`` and ``update`` (the driver's).

    Attributes
    ----------
    rows : list of dict
        ``{'phase', 'seconds' (per step), 'share' (of the step)}`` in the table's order; the
        ``imbalance`` row is part of ``compute`` and not added again.
    step_seconds : float
        The driver's wall time per optimizer step.
    communication_share : float
        Communication (serialise + transfer + wait) / step.
    n_steps, records : int
        Optimizer steps and syncs the means are over.
    config : dict
        What was profiled (workers, sync_every, path, batch size).
    """

    _PHASES = (("compute (slowest worker)", "compute"), ("  of which imbalance", "imbalance"),
               ("serialise (driver puts)", "serialise"), ("transfer + wait", "transfer"),
               ("reduce", "reduce"), ("update", "update"))

    def __init__(self, per_step, n_steps, records, config):
        per_step = dict(per_step)
        per_step["serialise"] = min(per_step["serialise"], per_step["communication"])
        per_step["transfer"] = per_step["communication"] - per_step["serialise"]
        self.step_seconds = per_step["wall"]
        wall = self.step_seconds if self.step_seconds > 0 else 1.0
        self.rows = [{"phase": name, "seconds": per_step[key], "share": per_step[key] / wall}
                     for name, key in self._PHASES]
        self.communication_share = per_step["communication"] / wall
        self.n_steps, self.records, self.config = n_steps, records, dict(config)

    def as_dict(self):
        """Plain data: the configuration, the totals and the rows."""
        return dict(self.config, step_seconds=self.step_seconds, communication_share=self.communication_share,
                    n_steps=self.n_steps, records=self.records, rows=[dict(r) for r in self.rows])

    def __str__(self):
        cfg = ", ".join(f"{k} {v}" for k, v in self.config.items())
        head = f"{'phase':28s}{'ms/step':>10s}{'share':>8s}"
        lines = [f"Ray profile: {cfg}; means over {self.n_steps} steps ({self.records} syncs)" if cfg else
                 f"Ray profile: means over {self.n_steps} steps ({self.records} syncs)", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['phase']:28s}{r['seconds'] * 1e3:10.3f}{r['share']:8.1%}")
        lines.append("-" * len(head))
        lines.append(f"{'step (driver wall)':28s}{self.step_seconds * 1e3:10.3f}{1:8.1%}")
        lines.append(f"communication share {self.communication_share:.1%}")
        return "\n".join(lines)

    __repr__ = __str__


def scaling_estimate(compute_step, comm_per_sync, workers=(8, 32, 128), *, comm_per_worker=0.0, sync_every=1,
                     strong=False, averaging_cost=1.0, target=0.8):
    """Estimated efficiency of ``N`` workers from measured per-step costs (a model, not a measurement).

    Model: each step costs ``compute`` on every worker in parallel -- ``compute_step`` when every
    worker keeps its rows per step (weak scaling: the global batch grows with ``N``), or
    ``compute_step / N`` with ``strong=True`` (``compute_step`` is then the whole global batch on
    one worker). Every sync costs ``comm_per_sync + comm_per_worker * N``: the driver sends to and
    receives from every worker, so its share is linear in ``N`` (a star, not a ring all-reduce).
    Efficiency = compute / (compute + communication per step); a parameter-averaging sync every
    ``k`` steps costs ``averaging_cost`` times a gradient sync (it ships parameters *and*
    optimizer state: 3x the bytes for Adam).

    Parameters
    ----------
    compute_step : float
        Seconds of compute of one step on one worker (see ``strong``).
    comm_per_sync, comm_per_worker : float
        Fixed and per-worker seconds of one gradient synchronisation.
    workers : sequence of int
    sync_every : int
        Steps per synchronisation for ``efficiency`` (1: gradient averaging).
    strong : bool, default False
    averaging_cost : float, default 1
        Cost of one parameter-averaging sync relative to one gradient sync.
    target : float
        Efficiency to stay above: ``needed_sync_every`` is the smallest ``k`` of parameter
        averaging that reaches it (1 when gradient averaging already does).

    Returns
    -------
    list of dict
        ``{'workers', 'compute', 'comm', 'efficiency', 'speedup', 'needed_sync_every'}`` per worker count;
        ``speedup`` is ``N * efficiency`` (weak: samples/s against one worker).
    """
    rows = []
    for n in workers:
        compute = compute_step / n if strong else compute_step
        comm = comm_per_sync + comm_per_worker * n
        per_step = comm / sync_every * (averaging_cost if sync_every > 1 else 1.0)
        eff = compute / (compute + per_step)
        if compute / (compute + comm) >= target:
            need = 1
        else:  # c / (c + a * comm / k) >= target  <=>  k >= a * comm * target / (c * (1 - target))
            need = max(2, math.ceil(averaging_cost * comm * target / (compute * (1.0 - target)) - 1e-9))
        rows.append({"workers": n, "compute": compute, "comm": comm, "efficiency": eff, "speedup": n * eff,
                     "needed_sync_every": need})
    return rows
