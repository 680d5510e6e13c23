"""Train an MLP on MNIST to ~98.5% test accuracy in about a minute on two CPU cores.

    FASTNN_DATA=../shared/data/mnist python examples/train_mnist.py
    python examples/train_mnist.py --help

Holds out a validation split, shows a progress bar per epoch, saves the best
model by validation loss (out/mnist/best.fnn) and a resumable checkpoint
(out/mnist/last.ckpt, see --resume), then reloads the best model and prints
its test accuracy, confusion matrix and per-class precision/recall/F1.
Without MNIST it runs the same pipeline on scikit-learn's 8x8 digits.

The pipeline lives in fastnn/apps/mnist_pipeline.py (also behind `fastnn train`);
the core of it is:

    net = fnn.Network([fnn.Dense(784, 512, "relu"), fnn.Dense(512, 256, "relu"), fnn.Dense(256, 10)], seed=0)
    opt = fnn.AdamW(CosineDecay(2e-3, total_steps, warmup_steps, min_lr=2e-5), weight_decay=0.1)
    trainer = fnn.Trainer(net, optimizer=opt, batch_size=128, seed=0,
                          callbacks=[ModelCheckpoint("best.fnn", monitor="val_loss", save_best_only=True)])
    trainer.fit(X_train, y_train, epochs=12, validation_data=(X_val, y_val))
    best = fnn.Network.load("best.fnn")
"""
import sys
from pathlib import Path

try:
    import fastnn  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.apps.mnist_pipeline import main

if __name__ == "__main__":
    sys.exit(main())
