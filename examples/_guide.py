"""Shared parts of the ``guide_*.py`` examples: options, data, machine, tables, the guide's claims, targets.

Each guide example measures one table or rule of thumb of the guides fastnn
grew from (``../shared/seeds/``, see its README) and prints, in this order:

1. a header (:func:`header`): what is compared, on which data, the budget,
   and the machine it was measured on;
2. the measured table(s): the sweep's own table, or :func:`format_table`;
3. the guide's words, quoted verbatim with where they come from, then one
   verdict per claim, AGREES / DISAGREES / CANNOT TELL, with the evidence
   (:func:`print_claims`);
4. the result: one ``metric: value`` line and one ``target: ... -> target
   reached`` line per target (:func:`finish`); exit status 1 when a target
   is missed. A claim the measurement contradicts is a finding, not a failure.

Every guide example takes the same options (an example leaves out those
that do not apply to it, e.g. ``--epochs`` when its tasks have different
epoch counts)::

    --quick          reduced budget (also FASTNN_EXAMPLES_QUICK=1): the bundled
                     8x8 digits instead of MNIST, fewer seeds and epochs; a
                     few seconds (the test suite runs every example this way)
    --seed N         first seed; the runs use seeds N, N+1, ... (default 0)
    --seeds K        seeds per configuration (mean ± std over them)
    --epochs E       epochs per run
    --data DIR       MNIST directory (default: $FASTNN_DATA, the cache, a download)
    --limit N        MNIST training samples to use
    --jobs J         worker processes of the sweeps: auto (default) or a number
    --out DIR        write the tables (CSV) and figures (needs matplotlib) into DIR
"""
import argparse
import functools
import os
import platform
import time
from dataclasses import dataclass

import _common as ex  # first: puts a source checkout's fastnn on sys.path

import fastnn as fnn
from fastnn.experiments import load_dataset

QUICK_ENV = "FASTNN_EXAMPLES_QUICK"
#: a result and the value it should reach (``_common.Target``: ``value >= goal``, or ``<=``)
Target = ex.Target
_VERDICT_WORDS = {True: "AGREES", False: "DISAGREES", None: "CANNOT TELL"}


# --------------------------------------------------------------------------- options
def _jobs(text):
    if text == "auto":
        return text
    try:
        return ex._positive_int(text)
    except ValueError:  # not a number at all
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {text}") from None


def parser(doc, *, epochs, quick_epochs, seeds, quick_seeds, limit, jobs=True):
    """The options every guide example takes, with this example's defaults.

    Parameters
    ----------
    doc : str
        The example's module docstring: its first line becomes the description, the rest the epilog.
    epochs, quick_epochs : int or None
        Epochs per run, normally and with ``--quick``; ``None`` leaves ``--epochs`` out (the example's
        tasks have epoch counts of their own).
    seeds, quick_seeds : int
        Seeds per configuration, normally and with ``--quick``.
    limit : int
        MNIST training samples (``--limit``'s default).
    jobs : bool, default True
        Offer ``--jobs`` (False for an example whose runs must stay in this process, one at a time).
    """
    head, _, rest = (doc or "").strip().partition("\n")
    p = argparse.ArgumentParser(description=head, epilog=rest.strip() or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = f"{quick_epochs} epochs, " if epochs is not None else ""
    p.add_argument("--quick", action="store_true",
                   help=f"reduced budget: digits instead of MNIST, {budget}{quick_seeds} seed(s) "
                        f"(also {QUICK_ENV}=1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=ex._positive_int, default=None,
                   help=f"seeds per configuration (default {seeds})")
    if epochs is not None:
        p.add_argument("--epochs", type=ex._positive_int, default=None, help=f"epochs per run (default {epochs})")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="MNIST directory (default: $FASTNN_DATA, the cache, a download)")
    p.add_argument("--limit", type=ex._positive_int, default=limit, help=f"MNIST training samples (default {limit:,})")
    if jobs:
        p.add_argument("--jobs", type=_jobs, default="auto", help="worker processes: auto (default) or a number")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write the tables (CSV) and the figures (needs matplotlib) into DIR")
    p.set_defaults(default_epochs=epochs, quick_epochs=quick_epochs, default_seeds=seeds, quick_seeds=quick_seeds)
    if epochs is None:
        p.set_defaults(epochs=None)
    if not jobs:
        p.set_defaults(jobs=1)
    return p


def parse(p, argv):
    """Parse ``argv``; fill the budget from ``--quick`` (or the environment) and the defaults.

    Adds ``seed_list`` (the seeds of every configuration) and ``t0`` (the start, for :func:`finish`).
    """
    args = p.parse_args(argv)
    args.quick = args.quick or os.environ.get(QUICK_ENV) == "1"
    if args.epochs is None:
        args.epochs = args.quick_epochs if args.quick else args.default_epochs
    if args.seeds is None:
        args.seeds = args.quick_seeds if args.quick else args.default_seeds
    args.seed_list = list(range(args.seed, args.seed + args.seeds))
    args.t0 = time.perf_counter()
    return args


# --------------------------------------------------------------------------- data and machine
def classification_data(args, limit=None):
    """MNIST (``limit`` or ``--limit`` samples), or the bundled digits with ``--quick`` or without MNIST."""
    if not args.quick:
        try:
            return load_dataset("mnist", path=args.data, limit=limit or args.limit)
        except (OSError, ValueError) as exc:  # no MNIST here: the offline stand-in
            print(f"MNIST not available ({str(exc).splitlines()[0]}); using scikit-learn's digits")
    return load_dataset("digits", seed=args.seed)


def machine():
    """One line about where the numbers were measured: CPU, cores, threads, load, date."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, {fnn.get_num_threads()} fastnn threads, load average {load:.2f}, "
            f"{time.strftime('%Y-%m-%d')}")


def header(title, data, args, budget):
    """The first lines: what is compared, on what (a dataset or a description), the budget, the machine."""
    print(f"== {title}")
    print(f"data: {data if isinstance(data, str) else data.describe()}")
    print(f"budget: {budget}, seeds {args.seed_list}{' (--quick)' if args.quick else ''}")
    print(f"measured on: {machine()}\n")


# --------------------------------------------------------------------------- tables
def format_table(headers, rows):
    """Aligned plain text (also valid Markdown): ``headers`` and ``rows`` of cells (converted with ``str``)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def cells(row):
    """A quoted Markdown table row as its cells joined by ' / ' (fits inside another table)."""
    return " / ".join(c.strip().strip("*") for c in row.strip().strip("|").split("|"))


def row(result, **config):
    """The summary row of the configuration with these keys (see ``SweepResult.rows``)."""
    for r in result.rows:
        if all(r.get(k) == v for k, v in config.items()):
            return r
    raise KeyError(f"no row with {config}")


# --------------------------------------------------------------------------- the guide's claims
@dataclass
class Claim:
    """One verdict: a claim of the guide, what was measured, whether they agree (None: cannot tell)."""
    says: str
    measured: str
    agrees: bool | None

    @property
    def verdict(self):
        return _VERDICT_WORDS[self.agrees]


def print_claims(source, quotes, claims):
    """The guide's words verbatim (``quotes``, lines of ``source``), then one verdict line per claim.

    The block reads::

        The guide says (002 "Batch Size"):
            **Advice**: use the largest batch your GPU can support.
        Verdicts:
          - 'use the largest batch': DISAGREES -- fastest to 95%: batch 8
        0 of 1 claims agree with the measurement.
    """
    print(f"\nThe guide says ({source}):")
    for line in quotes:
        print(f"    {line}")
    print("Verdicts:")
    for c in claims:
        print(f"  - {c.says}: {c.verdict} -- {c.measured}")
    print(f"{sum(c.agrees is True for c in claims)} of {len(claims)} claims agree with the measurement.\n")


# --------------------------------------------------------------------------- outputs and result
def out_dir(args):
    """The ``--out`` directory (created), or None when not asked for."""
    if not args.out:
        return None
    os.makedirs(args.out, exist_ok=True)
    return args.out


@functools.cache
def has_matplotlib():
    """Whether figures can be drawn; says so (once) when not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("--out: matplotlib is not installed, no figures written (pip install matplotlib)")
        return False
    return True


def save_sweep(result, args, name, *, metrics=("loss", "val_accuracy"), x="epoch"):
    """Write a sweep's table (``name.csv``) and curves (``name.png``) into ``--out``, when given."""
    directory = out_dir(args)
    if directory is None:
        return
    path = result.to_csv(os.path.join(directory, f"{name}.csv"))
    print(f"table written to {path}")
    if has_matplotlib():
        path = os.path.join(directory, f"{name}.png")
        result.plot(path, metrics=metrics, x=x)
        print(f"plot written to {path}")


def finish(title, targets, args):
    """The result: one ``name: value`` line per target, the time, one target line each; return the exit status."""
    print(f"== result: {title}")
    width = max(len(t.metric) for t in targets)
    for t in targets:
        print(f"{t.metric + ':':<{width + 1}} {t.value:.4g}")
    print(f"time: {time.perf_counter() - args.t0:.1f} s")
    for t in targets:
        print(t.line())
    return 0 if all(t.reached for t in targets) else 1
