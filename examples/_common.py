"""Shared plumbing of the example scripts: arguments, training, the final report, plots.

Each example (xor.py, spiral.py, ...) builds its data and network and calls
these helpers, so that every script takes the same options::

    --epochs N       training epochs (default: the guide's recommendation)
    --lr LR          learning rate
    --seed S         seeds the data, the initial weights and the shuffling
    --batch-size B   default: the whole training set (one step per epoch)
    --threads T      default 1: tiny networks run fastest on one thread
    --plot PATH      write a decision boundary (2-D inputs) or the training
                     curves to PATH (.png, .svg, ...); needs matplotlib
    --verbose        one line per epoch

and ends with the same report: the final metrics, the time, one
``target: ... -> target reached`` (or ``NOT reached``) line per target, and
exit status 0 when every target was reached, 1 otherwise.
"""
import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fastnn  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import fastnn as fnn


def parser(doc, *, epochs, lr, batch_size=None, threads=1):
    """An ArgumentParser with the common options and this example's defaults.

    ``doc`` is the example's module docstring (its first line becomes the
    description, the rest the epilog). ``batch_size=None`` means full-batch:
    one gradient step per epoch over the whole training set, as in the guides;
    ``threads=None``: all cores (fastnn's default).
    """
    head, _, rest = (doc or "").strip().partition("\n")
    p = argparse.ArgumentParser(description=head, epilog=rest.strip() or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=_positive_int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument("--lr", type=_positive_float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument("--seed", type=int, default=0, help="seed of data, weights and shuffling (default 0)")
    p.add_argument("--batch-size", type=_positive_int, default=batch_size,
                   help="mini-batch size (default: %s)" % ("the whole training set" if batch_size is None
                                                           else batch_size))
    p.add_argument("--threads", type=_positive_int, default=threads,
                   help="threads for training (default %s)" % ("all cores" if threads is None else
                                                               f"{threads}: fastest for networks this small"))
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="write a plot (decision boundary or training curves) to PATH; needs matplotlib")
    p.add_argument("--verbose", action="store_true", help="print one line per epoch")
    return p


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def mlp(n_inputs, hidden, n_outputs, activation="relu", *, seed=0):
    """``n_inputs -> hidden... -> n_outputs`` with a linear (logit) output layer."""
    sizes = [n_inputs, *hidden]
    layers = [fnn.Dense(a, b, activation) for a, b in zip(sizes[:-1], sizes[1:])]
    layers.append(fnn.Dense(sizes[-1], n_outputs))
    return fnn.Network(layers, seed=seed)


def fit(net, X, y, args, *, loss="cross_entropy", optimizer=None, clip_value=None, validation_data=None):
    """Train ``net`` on ``(X, y)`` as the arguments say; return ``(trainer, history, seconds)``.

    The optimizer defaults to Adam at ``args.lr``.
    """
    optimizer = fnn.Adam(args.lr) if optimizer is None else optimizer
    batch_size = len(X) if args.batch_size is None else args.batch_size
    trainer = fnn.Trainer(net, loss=loss, optimizer=optimizer, batch_size=batch_size, clip_value=clip_value,
                          seed=args.seed, n_threads=args.threads, verbose=2 if args.verbose else 0)
    t0 = time.perf_counter()
    history = trainer.fit(X, y, epochs=args.epochs, validation_data=validation_data)
    return trainer, history, time.perf_counter() - t0


def holdout(X, y, fraction, seed):
    """Stratified split: ``(X_train, y_train), (X_test, y_test)`` with ``fraction`` held out."""
    return fnn.data.train_test_split(X, y, fraction, seed=seed, stratify=True)


def accuracy(net, X, y):
    """Share of ``X`` whose predicted class is ``y``."""
    return float(np.mean(net.predict(X) == np.asarray(y)))


@dataclass
class Target:
    """A result and the value it should reach: ``value >= goal`` (or ``<=`` when ``lower_is_better``)."""
    metric: str
    value: float
    goal: float
    lower_is_better: bool = False

    @property
    def reached(self):
        return self.value <= self.goal if self.lower_is_better else self.value >= self.goal

    def line(self):
        op = "<=" if self.lower_is_better else ">="
        return f"target: {self.metric} {op} {self.goal:g} -> target {'reached' if self.reached else 'NOT reached'}"


def report(title, targets, *, seconds, epochs, extra=()):
    """Print the final metrics, the time and one line per target; return the exit status (0 = all reached).

    The output reads::

        == title
        train accuracy:    1.0000
        held-out accuracy: 0.9880
        time: 0.45 s for 1000 epochs
        target: held-out accuracy >= 0.97 -> target reached


    ``extra``: further ``(name, value)`` pairs to print before the targets
    (e.g. the train accuracy when the target is on held-out data).
    """
    print(f"== {title}")
    width = max(len(name) for name, _ in [*extra, *((t.metric, 0) for t in targets)])
    shown = set()
    for name, value in [*extra, *((t.metric, t.value) for t in targets)]:
        if name not in shown:
            shown.add(name)
            print(f"{name + ':':<{width + 1}} {value:.4f}")
    print(f"time: {seconds:.2f} s for {epochs} epochs")
    for t in targets:
        print(t.line())
    return 0 if all(t.reached for t in targets) else 1


def maybe_plot(args, net, X=None, y=None, history=None, *, title=None, path=None):
    """Write the ``--plot`` figure if asked for and matplotlib is installed.

    A decision boundary when the network has 2 inputs and ``X, y`` are
    given, else the training curves. ``path`` overrides ``args.plot``.
    """
    path = path or args.plot
    if not path:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("--plot: matplotlib is not installed, no plot written (pip install matplotlib)")
        return None
    from fastnn import plotting

    if X is not None and net.n_inputs == 2:
        plotting.plot_decision_boundary(net, X, y, path=path, title=title)
    else:
        plotting.plot_history(history, path=path)
    print(f"plot written to {path}")
    return path
