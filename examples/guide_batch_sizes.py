"""The guide's batch-size advice, measured: batches of 8 to 512 on MNIST, same epochs, Adam.

    python examples/guide_batch_sizes.py           # MNIST, 20,000 samples, 5 epochs, 3 seeds (~1 min)
    python examples/guide_batch_sizes.py --quick   # the bundled 8x8 digits, a few seconds

The guide (../shared/seeds/002, "Batch Size") says:

    Small batch (8-32): better generalization, less memory required,
                        slower training, noisy gradient (less stable)
    Large batch (128-512): faster training, more stable gradient, requires
                        a lot of memory, risk of poorer generalization
    Advice: use the largest batch your GPU can support.

the training notes (003): "Batch Size | 32 - 256 | Memory vs noise", and the
recommended default configuration: "Batch size: 32 (adjust based on
memory)". Every batch size trains the same MLP (784-128-10, ReLU, Adam lr
0.001) for the same number of epochs.

Target: batch 32 validation accuracy >= 0.93 (quick: on digits).
Measured (2 cores): see the README section "What the guides claim, measured".
"""
import sys

import _guide as g
from fastnn.experiments import MLPFactory, sweep

TARGET = 0.93
SOURCE = "002 'Batch Size'; 003 'Critical Hyperparameters'; 002 'Recommended Default Configuration'"
QUOTES = [
    "**Small batch (8-32):**",
    "- ✅ Better generalization",
    "- ✅ Less memory required",
    "- ❌ Slower training",
    "- ❌ Noisy gradient (less stable)",
    "**Large batch (128-512):**",
    "- ✅ Faster training",
    "- ✅ More stable gradient",
    "- ❌ Requires a lot of memory",
    "- ❌ Risk of poorer generalization",
    "**Advice**: use the largest batch your GPU can support.",
    "| Batch Size | 32 - 256 | Memory vs noise |",
    "- Batch size: 32 (adjust based on memory)",
]
SIZES = [8, 32, 128, 256, 512]


def activation_bytes(n_inputs, widths, batch_size, itemsize=4):
    """Bytes of one batch's inputs, pre-activations and activations (what grows with the batch)."""
    return batch_size * (n_inputs + 2 * sum(widths)) * itemsize


def claims(result, n_inputs):
    rows = {r["batch_size"]: r for r in result.rows}
    sps = {bs: rows[bs]["samples_per_s_mean"] for bs in SIZES}
    acc = {bs: rows[bs]["final_mean"] for bs in SIZES}
    spread = {bs: rows[bs]["final_std"] for bs in SIZES}
    gap = {}
    for bs in SIZES:
        runs = result.runs_of({"batch_size": bs})
        gap[bs] = sum(r["curves"]["accuracy"][-1] - r["curves"]["val_accuracy"][-1] for r in runs) / len(runs)
    ttt = {bs: rows[bs]["time_to_target_mean"] or float("inf") for bs in SIZES}
    fastest = min(ttt, key=ttt.get)
    small, large = (8, 32), (128, 256, 512)
    mem = {bs: activation_bytes(n_inputs, (128, 10), bs) for bs in (8, 512)}
    return [
        g.Claim("large batches (128-512): 'faster training'; small (8-32): 'slower training'",
                "samples/s: " + ", ".join(f"{bs}: {sps[bs]:,.0f}" for bs in SIZES),
                min(sps[b] for b in large) > max(sps[b] for b in small)),
        g.Claim("small batches: 'better generalization'; large: 'risk of poorer generalization'",
                "validation accuracy after the same epochs: " + ", ".join(f"{bs}: {acc[bs]:.4f}" for bs in SIZES)
                + "; train - validation accuracy (last epoch, running train accuracy): "
                + ", ".join(f"{bs}: {gap[bs]:+.3f}" for bs in SIZES),
                max(acc[b] for b in small) > max(acc[b] for b in large)),
        g.Claim("small batches: 'noisy gradient (less stable)'; large: 'more stable gradient'",
                "std of the final validation accuracy over seeds: " + ", ".join(f"{bs}: {spread[bs]:.4f}"
                                                                                for bs in SIZES)
                + " (few seeds: a weak test)", spread[8] >= spread[512]),
        g.Claim("'use the largest batch your GPU can support' (here: the CPU)",
                "seconds to 95% validation accuracy: " + ", ".join(
                    f"{bs}: {ttt[bs]:.3g} s" if ttt[bs] < float("inf") else f"{bs}: not reached" for bs in SIZES)
                + f"; fastest: {fastest}", fastest == max(SIZES)),
        g.Claim("003: 'Batch Size | 32 - 256 | Memory vs noise'; default 'Batch size: 32'",
                f"fastest to 95%: batch {fastest}; the batch's activations take {mem[8] / 1024:.0f} KiB at 8 and "
                f"{mem[512] / 2 ** 20:.1f} MiB at 512 -- memory never limits an MLP on a CPU",
                32 <= fastest <= 256),
    ]


def main(argv=None):
    p = g.parser(__doc__, epochs=5, quick_epochs=6, seeds=3, quick_seeds=2, limit=20000)
    args = g.parse(p, argv)
    data = g.classification_data(args)
    g.header("batch sizes 8 ... 512", data, args, f"{args.epochs} epochs, MLP {data.n_inputs}-128-10 ReLU, "
                                                  f"Adam lr 0.001")
    result = sweep(MLPFactory(data.n_inputs, data.n_outputs, hidden=(128,)), {"batch_size": SIZES},
                   data.X, data.y, validation_data=(data.X_val, data.y_val), fixed={"optimizer": "adam", "lr": 0.001},
                   epochs=args.epochs, seeds=args.seed_list, target=0.95, n_jobs=args.jobs)
    print(result.table())
    print(f"runs: {result.execution}")
    g.print_claims(SOURCE, QUOTES, claims(result, data.n_inputs))
    g.save_sweep(result, args, "batch_sizes", x="time")
    acc = g.row(result, batch_size=32)["final_mean"]
    return g.finish("batch sizes", [g.Target("batch 32 validation accuracy", acc, TARGET)], args)


if __name__ == "__main__":
    sys.exit(main())
