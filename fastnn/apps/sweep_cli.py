"""``fastnn sweep``: train a grid of configurations on a dataset that ships offline and print the table."""
import argparse
import json
import re

SWEEP_DESCRIPTION = """\
Train every configuration of a grid -- optimizer, learning rate, batch size,
activation, depth/width, dropout... -- with several seeds on the same budget
and print one line per configuration: the final and best validation metric
(mean ± std over seeds), the time to a target, samples/s. A configuration
that diverges is shown as diverged; Ctrl-C prints what finished.

The network is an MLP (--hidden, --activation) with a linear output layer;
a grid may vary: optimizer (sgd, sgd_momentum, adam, adamw, rmsprop,
adagrad), lr, batch_size (a number or 'full'), momentum, weight_decay,
clip_norm, hidden (e.g. 128-64), depth, width, activation, dropout,
batch_norm, l2.
"""

SWEEP_EPILOG = """\
examples:
  fastnn sweep --grid optimizer=sgd,sgd_momentum,adam,rmsprop --grid lr=0.01,0.001
  fastnn sweep --dataset mnist --data ../shared/data/mnist --limit 10000 --grid batch_size=16,64,256 --epochs 3
  fastnn sweep --grid-json grid.json --seeds 5 --target 0.95 --csv sweep.csv
grid.json holds {"lr": [0.1, 0.001], "activation": ["relu", "tanh"]} (every combination)
or [{"optimizer": "sgd", "lr": 0.01}, {"optimizer": "adam", "lr": 0.001}] (exactly these).
"""

_TUPLE = re.compile(r"^\d+(-\d+)+$")


def parse_value(text):
    """A grid value from the command line: ``3`` -> 3, ``0.1`` -> 0.1, ``true``/``none``, ``128-64`` ->
    (128, 64), anything else the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _TUPLE.match(text):
        return tuple(int(part) for part in text.split("-"))
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid_pairs(pairs):
    """``['lr=0.1,0.01', 'optimizer=adam']`` -> ``{'lr': [0.1, 0.01], 'optimizer': ['adam']}``."""
    grid = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--grid wants KEY=VALUE[,VALUE...], e.g. lr=0.1,0.01; not {pair!r}")
        if key in grid:
            raise ValueError(f"--grid gives {key!r} twice")
        grid[key] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _jobs(text):
    return text if text == "auto" else _positive_int(text)


def add_sweep_arguments(p):
    """The options of ``fastnn sweep``."""
    from ..experiments import DATASETS

    p.add_argument("--dataset", choices=sorted(DATASETS), default="digits",
                   help="data to train on (default digits: scikit-learn's bundled 8x8 digits)")
    p.add_argument("--data", metavar="DIR", default=None, help="MNIST only: directory of the IDX files")
    p.add_argument("--limit", type=_positive_int, default=None, help="use at most this many training samples")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="values of one key (repeat for more keys: every combination is trained)")
    p.add_argument("--grid-json", metavar="FILE", default=None,
                   help="the grid as JSON: a dict of lists or a list of dicts (instead of --grid)")
    p.add_argument("--hidden", type=parse_value, default=(128,), metavar="WIDTHS",
                   help="hidden widths when the grid does not vary them, e.g. 256-128 (default 128)")
    p.add_argument("--activation", default="relu", help="hidden activation when the grid does not vary it")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=_positive_int, default=None, help="epochs per run (default 10)")
    budget.add_argument("--seconds", type=float, default=None, help="seconds of training per run instead")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per configuration (default 3)")
    p.add_argument("--metric", default=None, help="logged value to compare (default val_accuracy / val_loss)")
    p.add_argument("--target", type=float, default=None, help="report the time to reach this metric value")
    p.add_argument("--jobs", type=_jobs, default="auto",
                   help="worker processes for one-thread runs: auto (default) or a number")
    p.add_argument("--csv", metavar="PATH", default=None, help="also write the table as CSV (atomically)")
    p.add_argument("--plot", metavar="PATH", default=None, help="write the loss curves (needs matplotlib)")
    p.add_argument("--verbose", action="store_true", help="print one line per finished run")


def load_grid(args):
    """The grid the arguments give (exactly one of --grid and --grid-json)."""
    if args.grid and args.grid_json:
        raise ValueError("give the grid with --grid or with --grid-json, not both")
    if args.grid_json:
        with open(args.grid_json, encoding="utf-8") as fh:
            try:
                return json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--grid-json {args.grid_json}: not valid JSON: {exc}") from None
    if not args.grid:
        raise ValueError("no grid: give --grid KEY=V1,V2 (e.g. --grid lr=0.1,0.01) or --grid-json FILE")
    return parse_grid_pairs(args.grid)


def run_sweep(args, print_fn=print):
    """``fastnn sweep``: load the data, run the grid, print the table (and write CSV/plot)."""
    from ..experiments import MLPFactory, load_dataset, sweep

    grid = load_grid(args)
    data = load_dataset(args.dataset, path=args.data, limit=args.limit)
    hidden = args.hidden if isinstance(args.hidden, tuple) else (args.hidden,)
    factory = MLPFactory(data.n_inputs, data.n_outputs, hidden=hidden, activation=args.activation)
    print_fn(data.describe())
    result = sweep(factory, grid, data.X, data.y, validation_data=(data.X_val, data.y_val), loss=data.loss,
                   epochs=args.epochs, seconds=args.seconds, seeds=args.seeds, metric=args.metric,
                   target=args.target, n_jobs=args.jobs, verbose=int(args.verbose))
    print_fn(result.table())
    print_fn(f"runs: {result.execution}")
    if args.csv:
        result.to_csv(args.csv)
        print_fn(f"wrote {args.csv}")
    if args.plot:
        result.plot(args.plot, metrics=("loss", result.metric))
        print_fn(f"wrote {args.plot}")
    return 130 if result.interrupted else 0
