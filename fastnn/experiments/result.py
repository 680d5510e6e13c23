"""The result of a sweep: per-run records, a per-configuration summary, a plain-text table, CSV, a plot."""
import csv
import io
import math
import os

from .._fileio import atomic_write
from .grid import config_label, format_value
from .runner import lower_is_better

#: Summary columns after a configuration's keys, in table and CSV order.
SUMMARY_COLUMNS = ("runs", "ok", "diverged", "final_mean", "final_std", "best_mean", "best_std", "reached",
                   "time_to_target_mean", "epochs_to_target_mean", "samples_per_s_mean", "epochs_mean",
                   "seconds_mean")


def _mean(values):
    return sum(values) / len(values) if values else math.nan


def _std(values):
    """Sample standard deviation (ddof=1); 0 for a single value, NaN for none."""
    if len(values) < 2:
        return 0.0 if values else math.nan
    m = _mean(values)
    std = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return 0.0 if std <= 1e-12 * max(1.0, abs(m)) else std  # equal values, summed in another order


def _num(x, digits=4):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if 0.01 <= abs(x) < 100 and digits == 4:  # accuracies and most losses: aligned decimals
        return f"{x:.4f}"
    return f"{x:.{digits}g}"


def _mean_std(mean, std, n):
    """``0.9612 ± 0.0031`` (the spread only when there were several runs)."""
    return _num(mean) if n < 2 else f"{_num(mean)} ± {_num(std, 2)}"


class SweepResult:
    """What :func:`fastnn.experiments.sweep` returns.

    Attributes
    ----------
    configs : list of dict
        The configurations of the grid, in grid order.
    seeds : list of int
    runs : list of dict
        One record per finished (configuration, seed) run, in grid then seed order: ``config``,
        ``seed``, ``status`` (``'ok'`` / ``'diverged'``), ``epochs``, ``seconds``, ``samples_per_s``,
        ``final``, ``best``, ``time_to_target``, ``epochs_to_target``, ``curves`` (per-epoch lists:
        ``loss``, ``val_loss``, ``val_accuracy``..., and ``time`` in seconds since training began).
    metric : str
        The logged value ``final``/``best``/time to target refer to (e.g. ``'val_accuracy'``).
    target : float or None
    interrupted : bool
        True when a KeyboardInterrupt stopped the sweep: ``runs`` holds the runs that finished.
    execution : str
        How the runs were executed, and why (serial, or how many worker processes).
    """

    def __init__(self, configs, seeds, runs, *, metric, target, budget, interrupted=False, execution=""):
        self.configs = [dict(c) for c in configs]
        self.seeds = list(seeds)
        self.runs = list(runs)
        self.metric = metric
        self.target = target
        self.budget = budget
        self.interrupted = interrupted
        self.execution = execution

    def __repr__(self):
        state = ", interrupted" if self.interrupted else ""
        return (f"SweepResult({len(self.configs)} configurations x {len(self.seeds)} seeds, "
                f"{len(self.runs)} runs finished, metric={self.metric!r}{state})")

    # ------------------------------------------------------------------ summaries
    def runs_of(self, config):
        """The run records of one configuration (a dict from :attr:`configs`, or its index)."""
        config = self.configs[config] if isinstance(config, int) else config
        return [r for r in self.runs if r["config"] == config]

    def curves(self, config):
        """``[(seed, curves)]`` of one configuration: per-epoch ``loss``, validation metrics, ``time``."""
        return [(r["seed"], r["curves"]) for r in self.runs_of(config)]

    @property
    def rows(self):
        """One plain dict per configuration with at least one finished run: its keys, then
        :data:`SUMMARY_COLUMNS` (mean and standard deviation over seeds; NaN/None where undefined)."""
        out = []
        for config in self.configs:
            runs = self.runs_of(config)
            if not runs:
                continue
            ok = [r for r in runs if r["status"] == "ok"]
            reached = [r for r in runs if r["time_to_target"] is not None]
            row = dict(config)
            row.update({
                "runs": len(runs), "ok": len(ok), "diverged": len(runs) - len(ok),
                "final_mean": _mean([r["final"] for r in ok]), "final_std": _std([r["final"] for r in ok]),
                "best_mean": _mean([r["best"] for r in runs if not math.isnan(r["best"])]),
                "best_std": _std([r["best"] for r in runs if not math.isnan(r["best"])]),
                "reached": len(reached),
                "time_to_target_mean": _mean([r["time_to_target"] for r in reached]) if reached else None,
                "epochs_to_target_mean": _mean([r["epochs_to_target"] for r in reached]) if reached else None,
                "samples_per_s_mean": _mean([r["samples_per_s"] for r in runs if not math.isnan(r["samples_per_s"])]),
                "epochs_mean": _mean([r["epochs"] for r in runs]),
                "seconds_mean": _mean([r["seconds"] for r in runs]),
            })
            out.append(row)
        return out

    def best(self):
        """The row (see :attr:`rows`) with the best mean final metric among configurations that did not diverge."""
        rows = [r for r in self.rows if r["ok"] and not math.isnan(r["final_mean"])]
        if not rows:
            return None
        sign = 1 if lower_is_better(self.metric) else -1
        return min(rows, key=lambda r: sign * r["final_mean"])

    def table(self, *, timings=True):
        """The summary as aligned plain text: one line per configuration, mean ± std over seeds.

        ``timings=False`` leaves out the columns measured in seconds (time to target, samples/s),
        which vary from run to run: what is left is the same for the same seeds on any machine
        with the same backend.
        """
        keys = list(dict.fromkeys(k for c in self.configs for k in c))
        op = "<=" if lower_is_better(self.metric) else ">="
        header = [*keys, "runs", f"final {self.metric}", f"best {self.metric}"]
        if self.target is not None:
            header.append(f"time to {op} {self.target:g}" if timings else f"epochs to {op} {self.target:g}")
        header += ["epochs", "samples/s"] if timings else ["epochs"]
        lines = []
        for row in self.rows:
            cells = [format_value(row.get(k, "")) for k in keys]
            cells.append(str(row["runs"]) if not row["diverged"] else
                         ("diverged" if not row["ok"] else f"{row['diverged']}/{row['runs']} diverged"))
            cells.append(_mean_std(row["final_mean"], row["final_std"], row["ok"]) if row["ok"] else "-")
            n_best = sum(1 for r in self.runs_of(row_config(row, keys)) if not math.isnan(r["best"]))
            cells.append(_mean_std(row["best_mean"], row["best_std"], n_best) if n_best else "-")
            if self.target is not None:
                if row["reached"]:
                    part = "" if row["reached"] == row["runs"] else f" ({row['reached']}/{row['runs']})"
                    cells.append(f"{_num(row['time_to_target_mean'], 3)} s{part}" if timings else
                                 f"{row['epochs_to_target_mean']:g}{part}")
                else:
                    cells.append("not reached")
            cells.append(f"{row['epochs_mean']:.3g}")
            if timings:
                sps = row["samples_per_s_mean"]
                cells.append("-" if math.isnan(sps) else f"{sps:,.0f}")
            lines.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(header)]
        text = [f"{_count(len(self.configs), 'configuration')} x {_count(len(self.seeds), 'seed')}, "
                f"{self.budget}" + ("; mean ± std over seeds" if len(self.seeds) > 1 else "")]
        if self.interrupted:
            text.append(f"INTERRUPTED: {len(self.runs)} of {len(self.configs) * len(self.seeds)} runs finished")
        text.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        text.append("  ".join("-" * w for w in widths))
        text += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
        return "\n".join(text)

    # ------------------------------------------------------------------ files
    def to_csv(self, path, *, per_run=False):
        """Write :attr:`rows` (or, with ``per_run=True``, one line per run, without curves) as CSV, atomically.

        Tuples are written as ``128-64``; missing values as empty fields. :func:`read_csv` reads it back.
        """
        if per_run:
            keys = list(dict.fromkeys(k for c in self.configs for k in c))
            fields = [*keys, "seed", "status", "epochs", "seconds", "samples_per_s", "final", "best",
                      "time_to_target", "epochs_to_target"]
            records = [{**r["config"], **{f: r[f] for f in fields if f in r}} for r in self.runs]
        else:
            records = self.rows
            fields = list(dict.fromkeys(k for c in self.configs for k in c)) + list(SUMMARY_COLUMNS)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({f: _csv_value(record.get(f)) for f in fields})
        with atomic_write(os.fspath(path), "w") as fh:
            fh.write(buf.getvalue())
        return path

    # ------------------------------------------------------------------ plot
    def plot(self, path=None, *, metrics=("loss",), x="epoch", title=None):
        """Curves of every run, one colour per configuration: ``metrics`` (logged names) against epochs
        (``x='epoch'``) or seconds of training (``x='time'``). Needs matplotlib; see :mod:`fastnn.plotting`."""
        from .plot import plot_sweep

        return plot_sweep(self, path=path, metrics=metrics, x=x, title=title)


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def row_config(row, keys):
    """The configuration a summary row belongs to."""
    return {k: row[k] for k in keys if k in row}


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return format_value(value)


def _parse(text):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path):
    """Read a file written by :meth:`SweepResult.to_csv` back into a list of dicts (numbers parsed,
    empty fields as None)."""
    with open(os.fspath(path), newline="", encoding="utf-8") as fh:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


__all__ = ["SweepResult", "read_csv", "SUMMARY_COLUMNS", "config_label"]
