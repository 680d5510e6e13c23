"""Activations at depth 8: sigmoid vs tanh vs ReLU vs GELU, measured against the guide's table.

    FASTNN_DATA=../shared/data/mnist python examples/guide_activations.py
    python examples/guide_activations.py --out flow/        # + one gradient-flow figure per activation
    python examples/guide_activations.py --quick            # digits, 3 epochs: a few seconds

Eight Dense layers (7 hidden of 64 units + the output layer), the same for
every activation; Dense picks He initialisation for ReLU/GELU and Glorot for
sigmoid/tanh (fastnn's defaults, as the guides advise). Adam 1e-3, batch 64,
5 epochs on 12,000 MNIST images (validation: 2,000 test images), 3 seeds,
through :func:`fastnn.experiments.sweep`. A fifth configuration puts
BatchNorm after every sigmoid layer: the guide's other remedy. One more run
per configuration (seed 0) records the gradient flow
(:class:`fastnn.callbacks.GradientFlow`): the RMS gradient of the first weight
matrix over that of the last one, before training and after the last epoch.
Without MNIST (or with ``--quick``) it runs on scikit-learn's 8x8 digits.

Targets: ReLU's validation accuracy >= 0.9 (>= 0.8 with --quick on digits);
the first/last gradient ratio of the sigmoid net before training <= 0.01 and
of the ReLU net >= 0.01 (GradientFlow's vanishing threshold).
"""
import sys

import _guide as g
import numpy as np

import fastnn as fnn
import fastnn.diagnostics  # noqa: F401  (fnn.diagnostics.VANISHING_FACTOR)
from fastnn.callbacks import GradientFlow
from fastnn.experiments import MLPFactory, sweep

# 002 "Summary Table of Activation Functions" (the seed file stores ∞ and ⚡ mis-decoded as ‚àû and ‚ö°)
GUIDE_ROWS = {
    "relu": "| **ReLU** | 0 to ∞ | Hidden layers | ⚡⚡⚡ | Default choice |",
    "sigmoid": "| **Sigmoid** | 0 to 1 | Binary output | ⚡⚡ | Only in output |",
    "tanh": "| **Tanh** | -1 to 1 | RNN/LSTM | ⚡⚡ | Less common |",
    "gelu": "| **GELU** | -∞ to ∞ | Transformers | ⚡ | Modern NLP |",
}
# 003 "Common Issues"
GUIDE_VANISHING = "| Vanishing gradients | Early layers don't learn | ReLU, batch norm |"
SPEED = {"relu": 3, "sigmoid": 2, "tanh": 2, "gelu": 1}  # the guide's ⚡ count

CONFIGS = [{"activation": "sigmoid"}, {"activation": "tanh"}, {"activation": "relu"}, {"activation": "gelu"},
           {"activation": "sigmoid", "batch_norm": True}]
DEPTH, WIDTH = 8, 64
TRAINING = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}


def label(config):
    return config["activation"] + (" + BatchNorm" if config.get("batch_norm") else "")


def gradient_flow(factory, config, data, epochs, seed):
    """Train the first seed of ``config`` once more with a GradientFlow; return the callback."""
    net = factory(seed=seed, **config)
    flow = GradientFlow(warn=False)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(TRAINING["lr"]), batch_size=TRAINING["batch_size"], seed=seed,
                          n_threads=1, verbose=0, callbacks=[flow])
    trainer.fit(data.X, data.y, epochs=epochs)
    return flow


def first_last(flow, norms):
    """RMS gradient of the first weight tensor over the last one's."""
    rms = np.asarray(norms)[flow.weights] / np.sqrt(flow.sizes[flow.weights])
    return float(rms[0] / rms[-1])


def main(argv=None):
    p = g.parser(__doc__, epochs=5, quick_epochs=3, seeds=3, quick_seeds=1, limit=12000)
    args = g.parse(p, argv)
    epochs, seeds = args.epochs, args.seed_list
    data = g.classification_data(args)
    goal = 0.8 if data.name == "digits" else 0.9
    g.header(f"activations at depth {DEPTH}: sigmoid, tanh, ReLU, GELU, sigmoid + BatchNorm", data, args,
             f"{epochs} epochs, {DEPTH} Dense layers ({DEPTH - 1} x {WIDTH} hidden), Adam 1e-3, batch 64")
    factory = MLPFactory(data.n_inputs, data.n_classes, hidden=(WIDTH,) * (DEPTH - 1))
    result = sweep(factory, CONFIGS, data.X, data.y, validation_data=(data.X_val, data.y_val), fixed=TRAINING,
                   epochs=epochs, seeds=seeds, metric="val_accuracy", n_jobs=args.jobs)
    flows = {label(c): gradient_flow(factory, c, data, epochs, seeds[0]) for c in CONFIGS}
    rows = {label(r): r for r in result.rows}

    table = []
    for config in CONFIGS:
        name = label(config)
        row, flow = rows[name], flows[name]
        claim = GUIDE_VANISHING if config.get("batch_norm") else GUIDE_ROWS[config["activation"]]
        table.append([name, g.cells(claim),
                      f"{row['final_mean']:.4f} ± {row['final_std']:.4f}", f"{row['samples_per_s_mean']:,.0f}",
                      f"{first_last(flow, flow.initial_grad_norm):.1e}",
                      f"{first_last(flow, flow.history['grad_norm'][-1]):.1e}",
                      ", ".join(f.kind for f in flow.findings) or "-"])
    print(g.format_table(["hidden activation", "guide's claim", f"val accuracy ({len(seeds)} seeds)", "samples/s",
                          "grad first/last, start", "after training", "GradientFlow finding"], table))
    print(f"({epochs} epochs, Adam 1e-3, batch 64; grad first/last = RMS gradient of the first weight matrix "
          f"over the last one's; below {fnn.diagnostics.VANISHING_FACTOR:g}: vanishing)")

    acc = {name: rows[name]["final_mean"] for name in rows}
    speed = {name: rows[name]["samples_per_s_mean"] for name in rows}
    ratio0 = {name: first_last(flows[name], flows[name].initial_grad_norm) for name in flows}
    plain = ["sigmoid", "tanh", "relu", "gelu"]
    best = max(plain, key=acc.get)
    by_speed = sorted(plain, key=speed.get, reverse=True)
    speed_ok = all(speed[a] >= speed[b] for a in plain for b in plain if SPEED[a] > SPEED[b])
    bn_fixes = ratio0["sigmoid + BatchNorm"] > fnn.diagnostics.VANISHING_FACTOR and \
        acc["sigmoid + BatchNorm"] > acc["sigmoid"]
    g.print_claims("002 'Summary Table of Activation Functions'; 003 'Common Issues'",
                   [GUIDE_ROWS[a] for a in ("relu", "sigmoid", "tanh", "gelu")] + [GUIDE_VANISHING], [
        g.Claim("ReLU 'Default choice' for 'Hidden layers'",
                f"ReLU {acc['relu']:.4f}, best hidden activation {best} {acc[best]:.4f} (agreement: within 1 point)",
                acc["relu"] >= acc[best] - 0.01),
        g.Claim("Sigmoid 'Only in output'; vanishing gradients: 'Early layers don't learn'",
                f"sigmoid's first layer gets {ratio0['sigmoid']:.1e} of the last layer's gradient before training and "
                f"it ends last ({acc['sigmoid']:.4f})",
                ratio0["sigmoid"] < fnn.diagnostics.VANISHING_FACTOR and acc["sigmoid"] == min(acc[a] for a in plain)),
        g.Claim("'ReLU, batch norm' fix vanishing gradients",
                f"first/last before training: ReLU {ratio0['relu']:.2g}, sigmoid + BatchNorm "
                f"{ratio0['sigmoid + BatchNorm']:.2g} (sigmoid {ratio0['sigmoid']:.1e}); accuracy sigmoid + BatchNorm "
                f"{acc['sigmoid + BatchNorm']:.4f}",
                bn_fixes and ratio0["relu"] > fnn.diagnostics.VANISHING_FACTOR),
        g.Claim("Speed ReLU ⚡⚡⚡ > sigmoid, tanh ⚡⚡ > GELU ⚡",
                "measured fastest first: " + " > ".join(f"{a} {speed[a]:,.0f}/s" for a in by_speed)
                + " (whole training steps of this net, so the activation is only part of the time)",
                speed_ok),
        g.Claim("Tanh 'Less common' (for hidden layers)",
                f"a habit, not a measurement; at depth 8 tanh reached {acc['tanh']:.4f}",
                None),
    ])
    g.save_sweep(result, args, "activations")
    if (directory := g.out_dir(args)) is not None and g.has_matplotlib():
        from fastnn.plotting import plot_gradient_flow

        for name, flow in flows.items():
            path = f"{directory}/gradient_flow_{name.replace(' + ', '_').lower()}.png"
            plot_gradient_flow(flow, path=path, title=f"depth {DEPTH}, {name}")
            print(f"plot written to {path}")
    return g.finish("activations", [
        g.Target("relu val_accuracy", acc["relu"], goal),
        g.Target("sigmoid gradient first/last before training", ratio0["sigmoid"], 0.01, lower_is_better=True),
        g.Target("relu gradient first/last before training", ratio0["relu"], 0.01),
    ], args)


if __name__ == "__main__":
    sys.exit(main())
