"""Shared parts of the ``guide_*.py`` examples: options, data, the guide-claim-versus-measurement table.

Every guide example takes the same options::

    --quick          reduced budget (also FASTNN_EXAMPLES_QUICK=1): the bundled
                     8x8 digits instead of MNIST, fewer seeds and epochs; a
                     few seconds (the test suite runs every example this way)
    --seed N         first seed; the runs use seeds N, N+1, ... (default 0)
    --seeds K        seeds per configuration (mean ± std over them)
    --epochs E       epochs per run
    --data DIR       MNIST directory (default: $FASTNN_DATA, the cache, a download)
    --limit N        MNIST training samples to use (the validation set is the
                     first N/6 of the test set)
    --jobs J         worker processes: auto (default) or a number
    --csv PATH       write the sweep's table as CSV
    --plot PATH      write the loss curves (needs matplotlib)

and prints the sweep's table, a table "what the guide says / what was
measured / agrees?", and ``target: ... -> target reached`` lines (exit
status 1 when a target is missed; a claim the measurement contradicts is a
finding, not a failure).
"""
import argparse
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fastnn  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.experiments import load_dataset

QUICK_ENV = "FASTNN_EXAMPLES_QUICK"
#: The guide most claims come from (in ../shared/seeds/, see its README).
GUIDE = "the deep-learning guide (002)"


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _jobs(text):
    return text if text == "auto" else _positive_int(text)


def parser(doc, *, epochs, quick_epochs, seeds=3, limit=10000):
    """The options every guide example takes, with this example's defaults."""
    head, _, rest = (doc or "").strip().partition("\n")
    p = argparse.ArgumentParser(description=head, epilog=rest.strip() or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"reduced budget: digits instead of MNIST, {quick_epochs} epochs, 2 seeds "
                        f"(also {QUICK_ENV}=1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=_positive_int, default=None, help=f"seeds per configuration (default {seeds})")
    p.add_argument("--epochs", type=_positive_int, default=None, help=f"epochs per run (default {epochs})")
    p.add_argument("--data", metavar="DIR", default=None, help="MNIST directory (default: $FASTNN_DATA)")
    p.add_argument("--limit", type=_positive_int, default=limit,
                   help=f"MNIST training samples (default {limit:,})")
    p.add_argument("--jobs", type=_jobs, default="auto", help="worker processes: auto (default) or a number")
    p.add_argument("--csv", metavar="PATH", default=None, help="write the table as CSV")
    p.add_argument("--plot", metavar="PATH", default=None, help="write the loss curves (needs matplotlib)")
    p.set_defaults(default_epochs=epochs, quick_epochs=quick_epochs, default_seeds=seeds)
    return p


def parse(p, argv):
    """Parse ``argv``; fill the budget from ``--quick`` (or the environment) and the defaults."""
    args = p.parse_args(argv)
    args.quick = args.quick or os.environ.get(QUICK_ENV) == "1"
    if args.epochs is None:
        args.epochs = args.quick_epochs if args.quick else args.default_epochs
    if args.seeds is None:
        args.seeds = 2 if args.quick else args.default_seeds
    args.seed_list = list(range(args.seed, args.seed + args.seeds))
    args.t0 = time.perf_counter()
    return args


def classification_data(args):
    """MNIST (``--limit`` samples), or the bundled digits with ``--quick``."""
    if args.quick:
        return load_dataset("digits", seed=args.seed)
    return load_dataset("mnist", path=args.data, limit=args.limit)


@dataclass
class Claim:
    """One line of the comparison: what the guide says, what was measured, whether they agree."""
    says: str
    measured: str
    agrees: bool | None  # None: the measurement cannot tell

    @property
    def verdict(self):
        return {True: "agrees", False: "DISAGREES", None: "cannot tell"}[self.agrees]


def print_claims(claims, source=GUIDE):
    """The guide's claims beside the measurements, one block per claim."""
    print(f"\nThe claims of {source}, measured:")
    for i, c in enumerate(claims, 1):
        print(f"{i}. guide:    {textwrap.shorten(c.says, 200)}")
        for j, line in enumerate(textwrap.wrap(c.measured, 96)):
            print(f"   {'measured: ' if j == 0 else '          '}{line}")
        print(f"   -> {c.verdict}")
    agree = sum(c.agrees is True for c in claims)
    print(f"{agree} of {len(claims)} claims agree with the measurement.\n")


def save_outputs(result, args, *, metrics=("loss", "val_accuracy"), x="epoch"):
    """``--csv`` and ``--plot``, when given."""
    if args.csv:
        result.to_csv(args.csv)
        print(f"table written to {args.csv}")
    if args.plot:
        try:
            result.plot(args.plot, metrics=metrics, x=x)
            print(f"plot written to {args.plot}")
        except ImportError as exc:
            print(f"--plot: {exc}")


def header(title, data, args, budget):
    """The first lines: what is compared, on what, with which budget."""
    print(f"== {title}")
    print(f"data: {data.describe()}")
    print(f"budget: {budget}, seeds {args.seed_list}{' (--quick)' if args.quick else ''}\n")


def row(result, **config):
    """The summary row of the configuration with these keys (see SweepResult.rows)."""
    for r in result.rows:
        if all(r.get(k) == v for k, v in config.items()):
            return r
    raise KeyError(f"no row with {config}")
