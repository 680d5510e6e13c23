"""RNN vs LSTM vs GRU vs Transformer on row-sequential MNIST and the sine task, measured against the guide's table.

    FASTNN_DATA=../shared/data/mnist python examples/guide_sequence_models.py
    python examples/guide_sequence_models.py --quick      # digits as 8 rows of 8, short sine: a few seconds

Two tasks, each through :func:`fastnn.experiments.sweep` (2 seeds; 1 with --quick):

- row-sequential MNIST: 6,000 training images read as 28 steps of 28 pixels
  (validation: 1,000 test images), 6 epochs, Adam 2e-3, batch 64, clip_norm 1;
- the sine task of examples/sine_forecast.py: a noisy sine (period 25) cut into
  30-step windows, predict the next value (mse), the last third held out,
  20 epochs, Adam 1e-2, batch 32, clip_norm 1.

Networks of about the same width: SimpleRNN(64) / LSTM(64) / GRU(64) ->
Dense (16 units on the sine task), and a transformer: TimeDistributed(Dense(32))
-> PositionalEncoding -> TransformerBlock(2 heads, ff 64) ->
GlobalAveragePooling1D -> Dense (16 wide on the sine task). Measured per
model: parameters, validation accuracy (MNIST) / mse (sine), training
samples/s (one thread; steps run in compiled kernels layer by layer: the
recurrent layers take the per-layer path).

Targets: the best model's validation accuracy on row-MNIST >= 0.88 (>= 0.8 with
--quick on digits), and LSTM and GRU held-out sine mse <= 0.01 (the noise alone
gives 0.0025, repeating the last value ~0.036).
"""
import sys

import _guide as g
import numpy as np

import fastnn as fnn
from fastnn.experiments import sweep

GUIDE_ROWS = {  # 002 "Quick Comparison of Sequence Models"
    "rnn": "| **RNN** | Short | Slow | Simple | Short sequences |",
    "lstm": "| **LSTM** | Long | Slow | Medium | Long sequences |",
    "gru": "| **GRU** | Long | Medium | Medium | Speed/performance compromise |",
    "transformer": "| **Transformer** | Very long | Fast | High | Modern NLP, large datasets |",
}
MODELS = tuple(GUIDE_ROWS)


class SequenceNet:
    """``make_network`` of the sweeps: ``net(seed=..., model=...)`` for ``(steps, features)`` inputs."""

    def __init__(self, steps, features, n_outputs, units):
        self.steps, self.features, self.n_outputs, self.units = steps, features, n_outputs, units

    def __call__(self, seed=None, model="lstm"):
        u = self.units
        if model == "rnn":
            layers = [fnn.SimpleRNN(u)]
        elif model == "lstm":
            layers = [fnn.LSTM(u)]
        elif model == "gru":
            layers = [fnn.GRU(u)]
        else:
            d = max(u // 2, 8)
            layers = [fnn.TimeDistributed(fnn.Dense(d)), fnn.PositionalEncoding(), fnn.TransformerBlock(2, 2 * d),
                      fnn.GlobalAveragePooling1D()]
        return fnn.Network(layers + [fnn.Dense(self.n_outputs)], input_shape=(self.steps, self.features), seed=seed)


def sine_windows(n, window, seed=0):
    """The sine task of examples/sine_forecast.py: ``(X_train, y_train), (X_test, y_test)``."""
    x = np.sin(2 * np.pi * np.arange(n) / 25.0) + np.random.default_rng(seed).normal(0, 0.05, n)
    idx = np.arange(n - window)[:, None] + np.arange(window)
    X, y = x[idx][..., None].astype(np.float32), x[window:].astype(np.float32).reshape(-1, 1)
    cut = len(X) * 2 // 3
    return (X[:cut], y[:cut]), (X[cut:], y[cut:])


def warm_up(make_network, X, y, loss="cross_entropy"):
    """One tiny fit per model first: compiling (or loading) a layer's kernels must not count as its speed."""
    for model in MODELS:
        fnn.Trainer(make_network(seed=0, model=model), loss=loss, batch_size=16, n_threads=1,
                    verbose=0).fit(X[:32], y[:32], epochs=1)


def main(argv=None):
    p = g.parser(__doc__, epochs=None, quick_epochs=None, seeds=2, quick_seeds=1, limit=6000, jobs=False)
    args = g.parse(p, argv)
    seeds = args.seed_list
    data = g.classification_data(args)
    side = int(round(np.sqrt(data.n_inputs)))
    quick = data.name == "digits"
    X, X_val = data.X.reshape(-1, side, side), data.X_val.reshape(-1, side, side)
    g.header(f"sequence models: RNN, LSTM, GRU, transformer on {data.name} read row by row ({side} steps of {side} "
             f"pixels) and on the sine task", data, args,
             f"6 epochs on {data.name}, {10 if quick else 20} on the sine task, one thread per run")
    grid = {"model": list(MODELS)}
    image_net = SequenceNet(side, side, 10, 32 if quick else 64)
    warm_up(image_net, X, data.y)
    images = sweep(image_net, grid, X, data.y, validation_data=(X_val, data.y_val),
                   fixed={"optimizer": "adam", "lr": 2e-3, "batch_size": 64, "clip_norm": 1.0},
                   epochs=6, seeds=seeds, metric="val_accuracy", n_jobs=1)
    (Xs, ys), (Xs_val, ys_val) = sine_windows(600 if quick else 1200, 30)
    sine_net = SequenceNet(30, 1, 1, 16)
    warm_up(sine_net, Xs, ys, loss="mse")
    sine = sweep(sine_net, grid, Xs, ys, validation_data=(Xs_val, ys_val), loss="mse",
                 fixed={"optimizer": "adam", "lr": 1e-2, "batch_size": 32, "clip_norm": 1.0},
                 epochs=10 if quick else 20, seeds=seeds, metric="val_loss", n_jobs=1)
    img = {r["model"]: r for r in images.rows}
    sin = {r["model"]: r for r in sine.rows}
    params = {m: image_net(seed=0, model=m).n_params for m in MODELS}
    print(g.format_table(
        ["model", "guide's claim", "params", f"{data.name} val accuracy", f"{data.name} samples/s",
         "sine val mse", "sine samples/s"],
        [[m, g.cells(GUIDE_ROWS[m]), f"{params[m]:,}", f"{img[m]['final_mean']:.4f} ± {img[m]['final_std']:.4f}",
          f"{img[m]['samples_per_s_mean']:,.0f}", f"{sin[m]['final_mean']:.5f} ± {sin[m]['final_std']:.5f}",
          f"{sin[m]['samples_per_s_mean']:,.0f}"] for m in MODELS]))
    print(f"(mean ± std over {len(seeds)} seed(s); {images.budget} on {data.name}, {sine.budget} on the sine task; "
          f"one thread per run)")

    acc = {m: img[m]["final_mean"] for m in MODELS}
    mse = {m: sin[m]["final_mean"] for m in MODELS}
    speed = {m: img[m]["samples_per_s_mean"] for m in MODELS}
    fastest = max(MODELS, key=speed.get)
    g.print_claims("002 'Quick Comparison of Sequence Models'", list(GUIDE_ROWS.values()), [
        g.Claim("RNN memory 'Short', LSTM/GRU 'Long'",
                f"over {side} steps: RNN {acc['rnn']:.4f}, LSTM {acc['lstm']:.4f}, GRU {acc['gru']:.4f}",
                acc["rnn"] < min(acc["lstm"], acc["gru"])),
        g.Claim("Transformer memory 'Very long'",
                f"transformer {acc['transformer']:.4f} vs best recurrent {max(acc['lstm'], acc['gru']):.4f} "
                f"(this budget is small for a transformer: the guide says 'large datasets')",
                acc["transformer"] >= max(acc["lstm"], acc["gru"])),
        g.Claim("GRU 'Medium' speed beats LSTM 'Slow'",
                f"{data.name} samples/s: GRU {speed['gru']:,.0f}, LSTM {speed['lstm']:,.0f}",
                speed["gru"] > speed["lstm"]),
        g.Claim("Transformer speed 'Fast'",
                "fastest first: "
                + " > ".join(f"{m} {speed[m]:,.0f}/s" for m in sorted(MODELS, key=speed.get, reverse=True))
                + " (one thread per run: the guide's reason, 'All words processed AT THE SAME TIME (parallel, "
                "fast)', needs parallel hardware to show)",
                fastest == "transformer"),
        g.Claim("RNN complexity 'Simple'",
                "parameters at the same width: " + ", ".join(f"{m} {params[m]:,}" for m in MODELS),
                params["rnn"] < min(params["lstm"], params["gru"], params["transformer"])),
        g.Claim("Transformer complexity 'High'",
                f"parameters do not measure it (the transformer has {params['transformer']:,}, fewer than the LSTM); "
                f"it has the most parts: 5 layer kinds against 2",
                None),
        g.Claim("RNN for 'Short sequences'",
                f"30-step sine windows: RNN mse {mse['rnn']:.5f} (LSTM {mse['lstm']:.5f}, GRU {mse['gru']:.5f}, "
                f"transformer {mse['transformer']:.5f})",
                mse["rnn"] <= 0.01),
    ])
    g.save_sweep(images, args, f"sequence_models_{data.name}")
    g.save_sweep(sine, args, "sequence_models_sine", metrics=("loss", "val_loss"))
    best = max(MODELS, key=acc.get)
    return g.finish("sequence models", [
        g.Target(f"best {data.name} val accuracy", acc[best], 0.8 if quick else 0.88),
        g.Target("lstm sine val mse", mse["lstm"], 0.01, lower_is_better=True),
        g.Target("gru sine val mse", mse["gru"], 0.01, lower_is_better=True),
    ], args)


if __name__ == "__main__":
    sys.exit(main())
