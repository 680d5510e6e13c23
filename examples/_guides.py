"""Shared plumbing of the guide_*.py examples: the guide's claim beside the measured table, verdicts, targets.

Each guide example measures one table of the guides fastnn grew from
(``../shared/seeds/``), prints the measured table, quotes the claim it checks
word for word, says for each claim whether the measurement agrees, and ends
with the usual ``target: ... -> target reached`` lines of :mod:`_common`
(exit status 1 when a target is missed). ``--quick`` runs a reduced budget
(a few seconds: what ``tests/test_examples.py`` runs).
"""
import os
import platform
import time

import _common as ex

import fastnn as fnn


def parser(doc, *, quick_help):
    """An ArgumentParser with ``--quick``, ``--seeds``, ``--plots DIR`` and ``--data``."""
    import argparse

    head, _, rest = (doc or "").strip().partition("\n")
    p = argparse.ArgumentParser(description=head, epilog=rest.strip() or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--seeds", type=ex._positive_int, default=None, help="seeds per configuration")
    p.add_argument("--plots", metavar="DIR", default=None, help="write the figures into DIR (needs matplotlib)")
    p.add_argument("--data", default=None, help="directory with the MNIST IDX files (default: $FASTNN_DATA, ...)")
    return p


def machine():
    """One line about where the numbers were measured."""
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


def format_table(headers, rows):
    """Aligned plain text (also valid Markdown): ``headers`` and ``rows`` of cells (converted with ``str``)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def cells(row):
    """A quoted Markdown table row as its cells joined by ' / ' (fits inside another table)."""
    return " / ".join(c.strip().strip("*") for c in row.strip().strip("|").split("|"))


def print_claims(source, quoted_lines):
    """The guide's words, verbatim, with where they come from."""
    print(f"The guide says ({source}):")
    for line in quoted_lines:
        print(f"    {line}")


def print_verdicts(verdicts):
    """``verdicts``: ``(claim, agrees, evidence)`` with ``agrees`` True, False or None (not measurable here)."""
    print("Where the measurement agrees:")
    for claim, agrees, evidence in verdicts:
        word = {True: "AGREES", False: "DISAGREES", None: "NOT MEASURED"}[agrees]
        print(f"  - {claim}: {word} -- {evidence}")


def finish(targets):
    """Print one ``name: value`` line and one target line per target; return the exit status."""
    width = max(len(t.metric) for t in targets)
    for t in targets:
        print(f"{t.metric + ':':<{width + 1}} {t.value:.4g}")
    for t in targets:
        print(t.line())
    return 0 if all(t.reached for t in targets) else 1


def plot_dir(args):
    """The ``--plots`` directory (created), or None when not asked for or matplotlib is missing."""
    if not args.plots:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("--plots: matplotlib is not installed, no figures written (pip install matplotlib)")
        return None
    os.makedirs(args.plots, exist_ok=True)
    return args.plots


Target = ex.Target
