"""Regularization levels: the train/validation gap of an overfitting MLP, with each remedy the guide lists.

    FASTNN_DATA=../shared/data/mnist python examples/guide_regularization.py
    python examples/guide_regularization.py --quick      # digits, 1 seed: a few seconds

A 784-256-256-10 ReLU network trained on only 2,000 MNIST images for 40
epochs (Adam 1e-3, batch 64) memorises them; validation on 2,000 test images.
Each configuration adds one remedy: early stopping (monitor val_loss,
patience 10, best weights restored: the guide's "Recommended configuration"),
dropout 0.3 and 0.5 after each hidden layer, L2 with lambda 0.01 (the guide's
"default") on every weight matrix, augmentation (random shifts of 2 pixels
and rotations of 10 degrees, drawn anew every epoch), BatchNorm after each
hidden layer. Reported per configuration (mean over seeds): accuracy on the
training images and on the validation images, both of the final (or
restored) weights in inference mode, their gap, the validation loss, epochs
run. Plain Trainer loops, not fastnn.experiments.sweep: early stopping's
restored weights, the augmentation and the clean training accuracy need the
trained network, which a sweep does not hand back.

Targets: the unregularised network overfits (train - val gap >= 0.05, >= 0.02
with --quick on digits) and the best remedy raises the validation accuracy
by >= 0.02 (>= 0.002, one more of the 359 images right, with --quick): the
comparisons have something to show.
"""
import sys
import time

import _common as ex
import _guide as g
import numpy as np

import fastnn as fnn
from fastnn.callbacks import EarlyStopping
from fastnn.data.augment import Augmenter, RandomRotation, RandomShift
from fastnn.experiments import MLPFactory

SOURCE = "003 'Common Issues'; 002 'Regularization - Fighting Overfitting', 'Phase 4'"
QUOTES = [  # 003 "Common Issues", then 002 "Regularization - Fighting Overfitting"
    "| Overfitting | Val loss increases | Early stopping, dropout |",
    "Early Stopping automatically stops training when the model starts to overfit. It's the easiest and most "
    "effective regularization technique.",
    "- **Dropout = 0.5**: 50% deactivated (standard for large layers)",
    "- Lambda = 0.01: moderate regularization (default)",
    "Data Augmentation artificially creates new training data by slightly modifying existing data (rotation, "
    "zoom, etc.). More data = less overfitting.",
    "- **Regularizes** (adds beneficial noise)",
    "3. Add dropout (0.3-0.5)",
]
CONFIGS = {"none": {}, "early stopping": {"early_stopping": True}, "dropout 0.3": {"dropout": 0.3},
           "dropout 0.5": {"dropout": 0.5}, "L2 0.01": {"l2": 0.01}, "augmentation": {"augment": True},
           "batch norm": {"batch_norm": True}}
#: the guide's words beside each row of the table (quoted in full, with their source, below it)
CLAIM_OF = {"none": "Val loss increases", "early stopping": "the easiest and most effective",
            "dropout 0.3": "Add dropout (0.3-0.5)", "dropout 0.5": "standard for large layers",
            "L2 0.01": "moderate regularization (default)", "augmentation": "More data = less overfitting",
            "batch norm": "Regularizes (adds beneficial noise)"}
HIDDEN = (256, 256)
N_TRAIN = 2000


def run_one(factory, config, seed, data, epochs):
    """Train one configuration; return its measurements (clean accuracies of the final weights)."""
    config = dict(config)
    early, augmented = config.pop("early_stopping", False), config.pop("augment", False)
    net = factory(seed=seed, **config)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=64, seed=seed, n_threads=1, verbose=0)
    callbacks = [EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)] if early else []
    side = int(round(np.sqrt(data.X.shape[1])))
    augment = Augmenter([RandomShift(2 if side >= 28 else 1), RandomRotation(10)], seed=seed) if augmented else None
    t0 = time.perf_counter()
    hist = trainer.fit(data.X, data.y, epochs=epochs, validation_data=(data.X_val, data.y_val), callbacks=callbacks,
                       augment=augment)
    seconds = time.perf_counter() - t0
    train, val = ex.accuracy(net, data.X, data.y), ex.accuracy(net, data.X_val, data.y_val)
    val_losses = hist["val_loss"]
    return {"train": train, "val": val, "gap": train - val, "val_loss": trainer.evaluate(data.X_val, data.y_val)["loss"],
            "epochs": len(hist), "seconds": seconds,
            "val_loss_rise": val_losses[-1] / min(val_losses)}  # > 1: val loss went back up


def main(argv=None):
    p = g.parser(__doc__, epochs=40, quick_epochs=20, seeds=2, quick_seeds=1, limit=12000, jobs=False)
    args = g.parse(p, argv)
    epochs, seeds = args.epochs, args.seed_list
    data = g.classification_data(args)
    data.X, data.y = data.X[:N_TRAIN], data.y[:N_TRAIN]
    quick = data.name == "digits"
    g.header("regularization: the train/validation gap of an overfitting MLP, one remedy per row", data, args,
             f"{len(data.X):,} training images, {data.n_inputs}-{'-'.join(map(str, HIDDEN))}-10 ReLU, "
             f"{epochs} epochs, Adam 1e-3, batch 64")
    factory = MLPFactory(data.n_inputs, data.n_classes, hidden=HIDDEN)
    res = {}
    for name, config in CONFIGS.items():
        runs = [run_one(factory, config, seed, data, epochs) for seed in seeds]
        res[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    print(g.format_table(
        ["regularization", "guide's claim", "train accuracy", "val accuracy", "train - val gap", "val loss", "epochs",
         "seconds"],
        [[name, CLAIM_OF[name], f"{r['train']:.4f}", f"{r['val']:.4f}", f"{r['gap']:+.4f}", f"{r['val_loss']:.4f}", f"{r['epochs']:g}",
          f"{r['seconds']:.1f}"] for name, r in res.items()]))
    none = res["none"]
    shrinks = {name: none["gap"] - r["gap"] for name, r in res.items()}
    best_val = max(res, key=lambda name: res[name]["val"])
    g.print_claims(SOURCE, QUOTES, [
        g.Claim("Overfitting: 'Val loss increases'",
                f"without regularisation the final val loss is {none['val_loss_rise']:.2f}x its minimum and the "
                f"train/val gap {none['gap']:.4f}",
                none["val_loss_rise"] > 1.1 and none["gap"] > 0),
        g.Claim("'Early stopping, dropout' shrink the gap",
                f"gap shrinks by {shrinks['early stopping']:+.4f} (early stopping), {shrinks['dropout 0.5']:+.4f} "
                f"(dropout 0.5)",
                shrinks["early stopping"] > 0 and shrinks["dropout 0.5"] > 0),
        g.Claim("Early stopping is 'the easiest and most effective'",
                f"best validation accuracy: {best_val} {res[best_val]['val']:.4f}; early stopping "
                f"{res['early stopping']['val']:.4f} after {res['early stopping']['epochs']:g} epochs (the easiest: "
                f"it also saved {epochs - res['early stopping']['epochs']:g} epochs)",
                best_val == "early stopping"),
        g.Claim("'Add dropout (0.3-0.5)' when the gap is large",
                f"gap shrinks by {shrinks['dropout 0.3']:+.4f} (0.3), {shrinks['dropout 0.5']:+.4f} (0.5); "
                f"val accuracy {res['dropout 0.3']['val']:.4f}, {res['dropout 0.5']['val']:.4f} vs {none['val']:.4f}",
                shrinks["dropout 0.3"] > 0 and shrinks["dropout 0.5"] > 0),
        g.Claim("L2 'Lambda = 0.01: moderate'",
                f"gap shrinks by {shrinks['L2 0.01']:+.4f}, val accuracy {res['L2 0.01']['val']:.4f} vs "
                f"{none['val']:.4f} (moderate: the gap shrinks and val accuracy loses at most 1 point)",
                shrinks["L2 0.01"] > 0 and res["L2 0.01"]["val"] >= none["val"] - 0.01),
        g.Claim("Augmentation: 'More data = less overfitting'",
                f"gap shrinks by {shrinks['augmentation']:+.4f}, val accuracy {res['augmentation']['val']:.4f}",
                shrinks["augmentation"] > 0),
        g.Claim("BatchNorm 'Regularizes'",
                f"gap shrinks by {shrinks['batch norm']:+.4f}, val accuracy {res['batch norm']['val']:.4f}",
                shrinks["batch norm"] > 0),
    ])
    return g.finish("regularization", [
        g.Target("none train-val gap", none["gap"], 0.02 if quick else 0.05),
        g.Target("best remedy val accuracy gain", res[best_val]["val"] - none["val"], 0.002 if quick else 0.02),
    ], args)


if __name__ == "__main__":
    sys.exit(main())
