"""Train a small convolutional network on MNIST to >= 99.3% test accuracy on two CPU cores.

    FASTNN_DATA=../shared/data/mnist python examples/train_mnist_cnn.py
    python examples/train_mnist_cnn.py --help

The same pipeline and report as examples/train_mnist.py (validation split, best
model by validation loss in out/mnist_cnn/best.fnn, resumable checkpoint, test
accuracy, confusion matrix, per-class precision/recall/F1) with `--model cnn`;
it is also `fastnn train --model cnn`. The core of it is:

    (X, y), (X_test, y_test) = fnn.data.load_mnist(flatten=False)     # (n, 28, 28, 1)
    net = fnn.Network([fnn.Conv2D(32, 3, activation="relu"), fnn.MaxPool2D(2),
                       fnn.Conv2D(64, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(),
                       fnn.Dense(128, activation="relu"), fnn.Dropout(0.3), fnn.Dense(10)],
                      input_shape=(28, 28, 1), seed=0)
    opt = fnn.SGD(CosineDecay(0.05, total_steps, warmup_steps, min_lr=5e-4), momentum=0.9, nesterov=True,
                  weight_decay=5e-4)
    trainer = fnn.Trainer(net, optimizer=opt, batch_size=128, seed=0,
                          callbacks=[ModelCheckpoint("best.fnn", monitor="val_loss", save_best_only=True)])
    trainer.fit(X_train, y_train, epochs=12, validation_data=(X_val, y_val))
"""
import sys
from pathlib import Path

try:
    import fastnn  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastnn.apps.mnist_pipeline import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--model" or a.startswith("--model=") for a in argv):
        argv = ["--model", "cnn"] + argv
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(Path("out") / "mnist_cnn")]
    sys.exit(main(argv))
