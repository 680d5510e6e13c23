"""Batch gradient descent vs mini-batch vs stochastic (one sample) gradient descent, per epoch and per second.

    python examples/guide_batch_modes.py            # known-weights regression + MNIST (10,000 samples), ~1 min
    python examples/guide_batch_modes.py --quick    # regression + the bundled digits, a few seconds

The training notes (../shared/seeds/003) teach the three variants ("GD
Variants: Batch vs Mini-Batch vs SGD, batch size selection", the notebook
gd_vs_mini_gd_vs_sgd) with "Batch Size | 32 - 256 | Memory vs noise"; the
deep-learning guide (002, "Batch Size") says small batches give a "noisy
gradient (less stable)" and "slower training", large ones "faster training"
and a "more stable gradient". Measured on

1. the known-weights regression (fastnn.data.synthetic.linear_regression:
   y = 2.5 x1 + 0.8 x2 + 1.5 x3 + 3.0 + N(0, 0.1), 800 training samples),
   one Dense(3, 1) layer, MSE, plain SGD at lr 0.01, every mode for the
   same number of epochs: loss per epoch, epochs and seconds to a
   validation MSE of 0.0125 (the noise floor is 0.01);
2. MNIST (784-128-10, ReLU, cross-entropy, plain SGD at lr 0.01), every
   mode for the same number of seconds: accuracy per second.

"batch GD" is batch_size='full' (one step per epoch over the whole set),
"mini-batch" batch 32, "SGD" batch 1.

Targets: mini-batch regression validation MSE <= 0.0125; mini-batch MNIST validation accuracy >= 0.85
(quick: on digits).
Measured (2 cores): see the README section "What the guides claim, measured".
"""
import sys

import _guide as g
from fastnn.experiments import MLPFactory, load_dataset, sweep

MSE_TARGET = 0.0125
ACC_TARGET = 0.85
SOURCE = "003 'Training & Optimization' contents, 'Critical Hyperparameters'; 002 'Batch Size'"
QUOTES = [
    "| [03-GD-Variants.md](03-GD-Variants.md) | GD Variants | Batch vs Mini-Batch vs SGD, batch size selection |",
    "| Batch Size | 32 - 256 | Memory vs noise |",
    "- ❌ Slower training",
    "- ❌ Noisy gradient (less stable)",
    "- ✅ Faster training",
    "- ✅ More stable gradient",
]
MODES = {"full": "batch GD", 32: "mini-batch (32)", 1: "SGD (batch 1)"}


def noise(result, batch_size):
    """``(ups, jaggedness)`` of the validation loss over the second half of the epochs, mean of the seeds:
    the share of epochs in which it went up, and mean |second difference| / mean loss (a smooth
    descent scores near 0 on both)."""
    ups, jags = [], []
    for _, curves in result.curves({"batch_size": batch_size}):
        loss = curves["val_loss"][len(curves["val_loss"]) // 2:]
        ups.append(sum(b > a for a, b in zip(loss, loss[1:])) / max(1, len(loss) - 1))
        jumps = [abs(c - 2 * b + a) for a, b, c in zip(loss, loss[1:], loss[2:])]
        jags.append(sum(jumps) / len(jumps) / (sum(loss) / len(loss)))
    return sum(ups) / len(ups), sum(jags) / len(jags)


def epoch_curve(result, batch_size, epochs=(1, 2, 5, 10)):
    """Mean training loss of the seeds after the given epochs."""
    curves = [c["loss"] for _, c in result.curves({"batch_size": batch_size})]
    return {e: sum(c[e - 1] for c in curves) / len(curves) for e in epochs if all(len(c) >= e for c in curves)}


def claims(reg, mnist):
    r = {bs: g.row(reg, batch_size=bs) for bs in MODES}
    m = {bs: g.row(mnist, batch_size=bs) for bs in MODES}
    per_epoch = {bs: epoch_curve(reg, bs) for bs in MODES}
    rough = {bs: noise(reg, bs) for bs in MODES}

    def fmt_epochs(bs):
        row = r[bs]
        return f"{row['epochs_to_target_mean']:g} epochs" if row["reached"] else "not reached"

    def fmt_time(row):
        return f"{row['time_to_target_mean']:.3g} s" if row["reached"] else "not reached"

    reached = {bs: r[bs]["epochs_to_target_mean"] or float("inf") for bs in MODES}
    times = {bs: r[bs]["time_to_target_mean"] or float("inf") for bs in MODES}
    mnist_time = {bs: m[bs]["time_to_target_mean"] or float("inf") for bs in MODES}
    return [
        g.Claim("batch GD: one step per epoch, so the slowest progress per epoch",
                f"regression, epochs to MSE {MSE_TARGET}: " + ", ".join(f"{MODES[bs]} {fmt_epochs(bs)}"
                                                                       for bs in MODES)
                + "; training loss after epoch 1: " + ", ".join(f"{MODES[bs]} {per_epoch[bs][1]:.3g}"
                                                                for bs in MODES),
                reached["full"] >= max(reached[32], reached[1]) and per_epoch["full"][1] >= per_epoch[32][1]),
        g.Claim("SGD (batch 1): the most steps per epoch, so the fastest progress per epoch",
                f"epochs to the target: SGD {fmt_epochs(1)}, mini-batch {fmt_epochs(32)}",
                reached[1] <= reached[32]),
        g.Claim("002: small batches give a 'noisy gradient (less stable)', large ones a 'more stable gradient'",
                "regression, validation loss over the second half of the epochs: went up in "
                + ", ".join(f"{rough[bs][0]:.0%} ({MODES[bs]})" for bs in MODES)
                + " of the epochs; jaggedness (mean |second difference| / mean loss) "
                + ", ".join(f"{rough[bs][1]:.2g} ({MODES[bs]})" for bs in MODES),
                rough["full"][0] <= min(rough[32][0], rough[1][0]) and rough[1][1] >= rough[32][1]),
        g.Claim("002: small batches mean 'slower training' (samples per second)",
                f"samples/s on {mnist.data_name}: " + ", ".join(f"{MODES[bs]} {m[bs]['samples_per_s_mean']:,.0f}" for bs in MODES),
                m[1]["samples_per_s_mean"] < m[32]["samples_per_s_mean"]),
        g.Claim("mini-batch is the practical compromise: the fastest per second",
                "seconds to the regression target: " + ", ".join(f"{MODES[bs]} {fmt_time(r[bs])}" for bs in MODES)
                + f"; to {ACC_TARGET:.0%} on {mnist.data_name}: "
                + ", ".join(f"{MODES[bs]} {fmt_time(m[bs])}" for bs in MODES),
                times[32] <= min(times.values()) * 1.5 and mnist_time[32] <= min(mnist_time.values()) * 1.5),
    ]


def main(argv=None):
    p = g.parser(__doc__, epochs=60, quick_epochs=30, seeds=3, quick_seeds=2, limit=10000)
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds of training per MNIST run (default 8; quick: 0.3 on digits)")
    args = g.parse(p, argv)
    seconds = args.seconds or (0.3 if args.quick else 8.0)
    reg_data = load_dataset("linear_regression", seed=args.seed)
    g.header("batch GD vs mini-batch vs SGD, part 1: known-weights regression", reg_data, args,
             f"{args.epochs} epochs, Dense(3, 1), MSE, SGD lr 0.01")
    linear = MLPFactory(3, 1, hidden=())
    reg = sweep(linear, {"batch_size": list(MODES)}, reg_data.X, reg_data.y,
                validation_data=(reg_data.X_val, reg_data.y_val), loss="mse", fixed={"optimizer": "sgd", "lr": 0.01},
                epochs=args.epochs, seeds=args.seed_list, target=MSE_TARGET, n_jobs=args.jobs)
    print(reg.table())
    print("training loss per epoch (mean of the seeds):")
    for bs, name in MODES.items():
        print(f"  {name:<16} " + "  ".join(f"epoch {e}: {v:.4g}" for e, v in epoch_curve(reg, bs).items()))

    data = g.classification_data(args)
    print()
    args.seed_list = args.seed_list[:2]  # timed runs: two seeds are enough to show the spread
    g.header("part 2: the same three modes for the same time", data, args,
             f"{seconds:g} s of training per run, MLP {data.n_inputs}-128-10 ReLU, SGD lr 0.01")
    mnist = sweep(MLPFactory(data.n_inputs, data.n_outputs, hidden=(128,)), {"batch_size": list(MODES)},
                  data.X, data.y, validation_data=(data.X_val, data.y_val), fixed={"optimizer": "sgd", "lr": 0.01},
                  seconds=seconds, seeds=args.seed_list, target=ACC_TARGET, n_jobs=args.jobs)
    mnist.data_name = data.name
    print(mnist.table())
    print(f"runs: {mnist.execution}")
    g.print_claims(SOURCE, QUOTES, claims(reg, mnist))
    g.save_sweep(reg, args, "batch_modes_regression", metrics=("loss", "val_loss"))
    g.save_sweep(mnist, args, "batch_modes", x="time")
    mse = g.row(reg, batch_size=32)["final_mean"]
    acc = g.row(mnist, batch_size=32)["final_mean"]
    return g.finish("batch modes", [g.Target("mini-batch regression validation MSE", mse, MSE_TARGET,
                                             lower_is_better=True),
                                    g.Target("mini-batch validation accuracy", acc, ACC_TARGET)], args)


if __name__ == "__main__":
    sys.exit(main())
