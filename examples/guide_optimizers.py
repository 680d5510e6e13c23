"""The guide's optimizer table, measured: SGD, SGD + momentum, Adam, AdamW, RMSprop on MNIST.

    python examples/guide_optimizers.py             # MNIST, 20,000 samples, 5 epochs, 3 seeds (~1-2 min)
    python examples/guide_optimizers.py --quick     # the bundled 8x8 digits, a few seconds

The guide (../shared/seeds/002, "Optimizer Comparison Table") says:

    | Optimizer      | Adaptive | Speed  | Ease of use | Best for              |
    | SGD            | no       | Slow   | Difficult   | Baseline              |
    | SGD + Momentum | no       | Medium | Difficult   | Vision (ResNet)       |
    | Adam           | yes      | Fast   | Easy        | Everything (default)  |
    | AdamW          | yes      | Fast   | Easy        | Transformers          |
    | RMSprop        | yes      | Fast   | Easy        | RNN/LSTM              |

with "SGD: Slow to converge, very sensitive to learning rate", "SGD +
Momentum: converges faster than simple SGD", "Adam: not very sensitive to
initial learning rate choice, converges quickly" and "Don't know what to
choose? -> Adam (lr=0.001)". Each optimizer runs at the learning rate the
guide gives it ("0.01: high, for SGD", "0.001: standard for Adam"), SGD and
Adam also at 10x and 0.1x that, on one MLP (784-128-10, ReLU, batch 32);
the table shows mean ± std over seeds of the validation accuracy and the
time to 95%.

Target: Adam (lr 0.001) validation accuracy >= 0.93 (quick: on digits).
Measured (2 cores): see the README section "What the guides claim, measured".
"""
import sys

import _guide as g
from fastnn.experiments import MLPFactory, sweep

TARGET = 0.93
SOURCE = "002 'Optimizers - How the Model Learns', 'Optimizer Comparison Table'"
QUOTES = [
    "- Slow to converge",
    "- Very sensitive to learning rate",
    "- Converges faster than simple SGD",
    "- Not very sensitive to initial learning rate choice",
    "| **SGD** | ❌ | Slow | Difficult | Baseline |",
    "| **SGD + Momentum** | ❌ | Medium | Difficult | Vision (ResNet) |",
    "| **Adam** | ✅ | Fast | **Easy** | **Everything (default)** |",
    "| **AdamW** | ✅ | Fast | Easy | Transformers |",
    "| **RMSprop** | ✅ | Fast | Easy | RNN/LSTM |",
    "- **Don't know what to choose?** → Adam (lr=0.001)",
]
CONFIGS = [
    {"optimizer": "sgd", "lr": 0.1}, {"optimizer": "sgd", "lr": 0.01}, {"optimizer": "sgd", "lr": 0.001},
    {"optimizer": "sgd_momentum", "lr": 0.01},
    {"optimizer": "adam", "lr": 0.01}, {"optimizer": "adam", "lr": 0.001}, {"optimizer": "adam", "lr": 0.0001},
    {"optimizer": "adamw", "lr": 0.001},
    {"optimizer": "rmsprop", "lr": 0.001},
]


def spread(result, optimizer):
    """Best minus worst mean final accuracy of ``optimizer`` over its three learning rates."""
    finals = [r["final_mean"] for r in result.rows if r["optimizer"] == optimizer]
    return max(finals) - min(finals)


def claims(result):
    """The guide's statements next to what ``result`` measured."""
    acc = {(r["optimizer"], r["lr"]): r["final_mean"] for r in result.rows}
    sgd, mom = acc["sgd", 0.01], acc["sgd_momentum", 0.01]
    adaptive = {"adam": acc["adam", 0.001], "adamw": acc["adamw", 0.001], "rmsprop": acc["rmsprop", 0.001]}
    at_guide_lr = {"sgd": sgd, "sgd_momentum": mom, **adaptive}
    best_name = max(at_guide_lr, key=at_guide_lr.get)
    fast_sgd = f"; at lr 0.1 plain SGD reaches {acc['sgd', 0.1]:.4f}: much of 'slow' is its learning rate"
    s_sgd, s_adam = spread(result, "sgd"), spread(result, "adam")
    return [
        g.Claim("SGD: speed 'Slow', 'slow to converge'",
                f"SGD (lr 0.01) ends at {sgd:.4f}, the lowest of the five at their guide learning rates "
                f"({', '.join(f'{k} {v:.4f}' for k, v in at_guide_lr.items())}){fast_sgd}"
                if sgd == min(at_guide_lr.values()) else
                f"SGD (lr 0.01) ends at {sgd:.4f}, not the lowest ({min(at_guide_lr, key=at_guide_lr.get)}){fast_sgd}",
                sgd == min(at_guide_lr.values())),
        g.Claim("SGD + Momentum 'converges faster than simple SGD' (speed 'Medium')",
                f"momentum 0.9 at the same lr 0.01: {mom:.4f} vs SGD {sgd:.4f}", mom > sgd),
        g.Claim("Adam, AdamW, RMSprop: speed 'Fast' (faster than SGD + Momentum's 'Medium')",
                f"adaptive at lr 0.001: {', '.join(f'{k} {v:.4f}' for k, v in adaptive.items())}; "
                f"SGD + momentum {mom:.4f}", min(adaptive.values()) >= mom),
        g.Claim("SGD 'very sensitive to learning rate'; Adam 'not very sensitive to initial learning rate "
                "choice'",
                f"spread of the final accuracy over lr x10 / x1 / x0.1: SGD {s_sgd:.4f} (lr 0.1, 0.01, 0.001), "
                f"Adam {s_adam:.4f} (lr 0.01, 0.001, 0.0001)", s_adam < s_sgd),
        g.Claim("'Don't know what to choose? -> Adam (lr=0.001)'",
                f"Adam (lr 0.001) {adaptive['adam']:.4f}; best at the guide's learning rates: {best_name} "
                f"{at_guide_lr[best_name]:.4f} (within 0.01 counts as agreeing)",
                at_guide_lr[best_name] - adaptive["adam"] <= 0.01),
        g.Claim("AdamW best for Transformers, RMSprop for RNN/LSTM, SGD + Momentum for vision (ResNet)",
                "not testable with an MLP on images (recurrent networks and transformers are compared in "
                "their own example)", None),
    ]


def main(argv=None):
    p = g.parser(__doc__, epochs=5, quick_epochs=8, seeds=3, quick_seeds=2, limit=20000)
    args = g.parse(p, argv)
    data = g.classification_data(args)
    g.header("optimizers, each at the guide's learning rate (SGD and Adam also at x10 and x0.1)", data, args,
             f"{args.epochs} epochs, batch 32, MLP {data.n_inputs}-128-10 ReLU")
    result = sweep(MLPFactory(data.n_inputs, data.n_outputs, hidden=(128,)), CONFIGS, data.X, data.y,
                   validation_data=(data.X_val, data.y_val), epochs=args.epochs, seeds=args.seed_list,
                   target=0.95, n_jobs=args.jobs)
    print(result.table())
    print(f"runs: {result.execution}")
    g.print_claims(SOURCE, QUOTES, claims(result))
    g.save_sweep(result, args, "optimizers")
    adam = g.row(result, optimizer="adam", lr=0.001)["final_mean"]
    return g.finish("Adam (lr 0.001), the guide's default", [g.Target("Adam validation accuracy", adam, TARGET)],
                    args)

if __name__ == "__main__":
    sys.exit(main())
