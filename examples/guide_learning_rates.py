"""The guide's learning-rate values, measured: 10 down to 0.00001 with SGD and with Adam, on MNIST.

    python examples/guide_learning_rates.py           # MNIST, 10,000 samples, 5 epochs, 3 seeds (~1 min)
    python examples/guide_learning_rates.py --quick   # the bundled 8x8 digits, a few seconds

The guide (../shared/seeds/002, "Learning Rate - THE MOST IMPORTANT") says:

    - 0.1:     very high, risk of divergence
    - 0.01:    high, for SGD
    - 0.001:   standard for Adam (recommended starting point)
    - 0.0001:  low, for fine-tuning
    - 0.00001: very low, very slow convergence
    Too high: loss oscillates violently, loss becomes NaN, the model never
    improves. Solution: divide by 10.

and the training notes (003, "Critical Hyperparameters"): "Learning Rate |
0.001 - 0.1 | Speed vs stability". Every learning rate runs with SGD and
with Adam on one MLP (784-128-10, ReLU, batch 32); a run whose loss becomes
NaN/Inf is shown as diverged.

Target: Adam at the recommended lr 0.001 reaches validation accuracy >= 0.9.
Measured (2 cores): see the README section "What the guides claim, measured".
"""
import math
import sys

import _guide as g
from fastnn.experiments import MLPFactory, sweep

TARGET = 0.9
CHANCE = 0.1  # 10 classes: MNIST and the digits
SOURCE = "002 'Learning Rate - THE MOST IMPORTANT'; 003 'Critical Hyperparameters'"
QUOTES = [
    "- **0.1**: very high, risk of divergence",
    "- **0.01**: high, for SGD",
    "- **0.001**: **standard for Adam** (recommended starting point)",
    "- **0.00001**: very low, very slow convergence",
    "- Loss becomes NaN (Not a Number)",
    "- The model never improves",
    "- **Solution**: divide by 10",
    "| Learning Rate | 0.001 - 0.1 | Speed vs stability |",
]
RATES = [10.0, 1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001]  # the guide's five, and 1 and 10: where does it diverge?


def _ok(row):
    return row["ok"] == row["runs"]


def _fails(row):
    """Diverged, or ended no better than twice chance (10 classes): it never learned."""
    return not _ok(row) or row["final_mean"] < 2 * CHANCE


def _acc(row):
    return f"{row['final_mean']:.4f}" if row["ok"] else "diverged"


def claims(result):
    """The guide's statements next to what ``result`` measured."""
    rows = {(r["optimizer"], r["lr"]): r for r in result.rows}
    best = {opt: max((r for (o, _), r in rows.items() if o == opt and r["ok"]), key=lambda r: r["final_mean"])
            for opt in ("sgd", "adam")}
    out = []
    for opt in ("sgd", "adam"):
        r = rows[opt, 0.1]
        poor = not _ok(r) or r["final_mean"] < best[opt]["final_mean"] - 0.05
        out.append(g.Claim(f"0.1: 'very high, risk of divergence' ({opt})",
                           f"{opt} at 0.1: {_acc(r)} ({r['diverged']}/{r['runs']} runs diverged); "
                           f"best {opt} lr {best[opt]['lr']:g}: {best[opt]['final_mean']:.4f}", poor))
    sgd01 = rows["sgd", 0.01]
    out.append(g.Claim("0.01: 'high, for SGD'",
                       f"SGD at 0.01: {_acc(sgd01)}, SGD's best (lr {best['sgd']['lr']:g}): "
                       f"{best['sgd']['final_mean']:.4f} (within 0.01 counts as agreeing)",
                       _ok(sgd01) and sgd01["final_mean"] >= best["sgd"]["final_mean"] - 0.01))
    adam = rows["adam", 0.001]
    out.append(g.Claim("0.001: 'standard for Adam (recommended starting point)'",
                       f"Adam at 0.001: {_acc(adam)}, Adam's best (lr {best['adam']['lr']:g}): "
                       f"{best['adam']['final_mean']:.4f} (within 0.01 counts as agreeing)",
                       _ok(adam) and adam["final_mean"] >= best["adam"]["final_mean"] - 0.01))
    slow = []
    for opt in ("sgd", "adam"):
        r = rows[opt, 0.00001]
        curves = [c["loss"] for _, c in result.curves({"optimizer": opt, "lr": 0.00001})]
        falling = all(c[-1] < c[0] for c in curves)
        slow.append((opt, r, falling, r["final_mean"] < best[opt]["final_mean"] - 0.2))
    out.append(g.Claim("0.00001: 'very low, very slow convergence'",
                       "; ".join(f"{opt} at 0.00001: {_acc(r)} (best {best[opt]['final_mean']:.4f}), loss "
                                 f"{'still falling' if falling else 'not falling'}" for opt, r, falling, _ in slow),
                       all(falling and far for _, _, falling, far in slow)))
    fixed = []
    for opt in ("sgd", "adam"):
        # too high = above the best rate, and the run fails: NaN (diverged) or no better than chance
        # ('the model never improves')
        bad = [lr for lr in RATES if lr > best[opt]["lr"] and _fails(rows[opt, lr])]
        if bad:
            lr = min(bad)
            fixed.append((opt, lr, rows[opt, lr], not _fails(rows[opt, lr / 10])))
    out.append(g.Claim("too high: 'loss becomes NaN ... the model never improves. Solution: divide by 10'",
                       "; ".join(f"{opt} fails at {lr:g} ({_acc(r)}: "
                                 f"{'NaN' if not _ok(r) else 'no better than chance'}), "
                                 f"{'not' if ok else 'still'} at {lr / 10:g}" for opt, lr, r, ok in fixed)
                       or "no learning rate failed",
                       all(ok for *_, ok in fixed) if fixed else None))
    in_range = {opt: 0.001 <= best[opt]["lr"] <= 0.1 for opt in best}
    out.append(g.Claim("003: 'Learning Rate | 0.001 - 0.1 | Speed vs stability'",
                       f"best lr: SGD {best['sgd']['lr']:g}, Adam {best['adam']['lr']:g}", all(in_range.values())))
    return out


def main(argv=None):
    p = g.parser(__doc__, epochs=5, quick_epochs=5, seeds=3, quick_seeds=2, limit=10000)
    args = g.parse(p, argv)
    data = g.classification_data(args)
    g.header("learning rates 10 ... 0.00001, SGD and Adam", data, args,
             f"{args.epochs} epochs, batch 32, MLP {data.n_inputs}-128-10 ReLU")
    result = sweep(MLPFactory(data.n_inputs, data.n_outputs, hidden=(128,)),
                   {"optimizer": ["sgd", "adam"], "lr": RATES}, data.X, data.y,
                   validation_data=(data.X_val, data.y_val), epochs=args.epochs, seeds=args.seed_list,
                   n_jobs=args.jobs)
    print(result.table())
    print(f"runs: {result.execution}")
    g.print_claims(SOURCE, QUOTES, claims(result))
    g.save_sweep(result, args, "learning_rates", metrics=("loss",))
    adam = g.row(result, optimizer="adam", lr=0.001)["final_mean"]
    adam = 0.0 if math.isnan(adam) else adam
    return g.finish("learning rates", [g.Target("Adam lr 0.001 validation accuracy", adam, TARGET)], args)


if __name__ == "__main__":
    sys.exit(main())
