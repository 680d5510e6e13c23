"""The MNIST pipeline behind ``examples/train_mnist.py``, ``fastnn train`` and ``fastnn evaluate``.

Steps: load MNIST (``--data``, else ``$FASTNN_DATA``, the user cache or a
download; scikit-learn's 8x8 ``load_digits`` when none can be had), hold out
a stratified validation split, train an MLP with AdamW (or, with
``--model cnn``, a small convolutional network with SGD + momentum) and a
cosine learning rate decay, save the best model by validation loss as it trains (plus a
resumable checkpoint after every epoch), then reload the best model and
report accuracy, the confusion matrix and per-class precision/recall/F1 on
the test set.

Everything is reachable from Python too::

    from fastnn.apps import mnist_pipeline as mp
    result = mp.train(epochs=3, out="out/quick")   # every flag of `fastnn train` is a keyword
    print(result["report"]["accuracy"])
"""
import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from .. import metrics as _metrics
from ..callbacks import ModelCheckpoint
from ..io import load_network, read_header

__all__ = ["DEFAULTS", "Dataset", "load_dataset", "build_network", "make_optimizer", "train", "evaluate",
           "format_report", "evaluate_model", "add_train_arguments", "add_evaluate_arguments", "run_train",
           "run_evaluate", "main"]

#: Default settings of ``train`` (and of the command-line flags).
DEFAULTS = {
    "epochs": 12,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 0.1,
    "hidden": (512, 256),
    "val_fraction": 5000 / 60000,
    "seed": 0,
    "out": os.path.join("out", "mnist"),
}
#: What differs for ``model='cnn'`` (issue 11): a small CNN trained with SGD + Nesterov momentum, as the
#: guides do; ``hidden`` are the Dense widths after the convolutions.
CNN_DEFAULTS = {
    "epochs": 12,
    "batch_size": 128,
    "lr": 0.05,
    "weight_decay": 5e-4,
    "hidden": (128,),
}
MODELS = ("mlp", "cnn")
BEST_NAME = "best.fnn"
LAST_NAME = "last.ckpt"
DATASET_CHOICES = ("auto", "mnist", "fashion_mnist", "kmnist", "digits")


# ---------------------------------------------------------------------------- data

@dataclass
class Dataset:
    """Arrays of one dataset, split into train/validation/test, features scaled to [0, 1]."""

    name: str          # 'mnist', 'fashion_mnist', 'kmnist' or 'digits'
    title: str         # for messages
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 10

    @property
    def n_features(self):
        return self.X_train.shape[1]


def _load_digits_split(seed):
    """scikit-learn's bundled 8x8 digits: pixels 0..16 scaled to [0, 1], a fixed stratified 20% test set."""
    from sklearn.datasets import load_digits

    from ..data.preprocessing import train_test_split

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, 0.2, seed=seed, stratify=True)


def load_dataset(data=None, *, dataset="auto", download=True, val_fraction=DEFAULTS["val_fraction"], seed=0,
                 limit=None, test_limit=None, print_fn=print):
    """Load the data for training and evaluation.

    Parameters
    ----------
    data : str or os.PathLike, optional
        Directory with the MNIST-format IDX files. Default: ``$FASTNN_DATA``,
        then the user cache, then a download (see :func:`fastnn.data.load_mnist`).
    dataset : {'auto', 'mnist', 'fashion_mnist', 'kmnist', 'digits'}, default 'auto'
        ``'auto'``: MNIST, or scikit-learn's ``load_digits`` (with a message)
        when MNIST cannot be found.
    download : bool, default True
        Allow downloading missing MNIST files.
    val_fraction : float
        Share of the training images held out (stratified) for validation.
    seed : int
        Seed of the validation (and digits test) split.
    limit, test_limit : int, optional
        Use only the first ``limit`` training and ``test_limit`` test images
        (quick runs); the validation split is taken from the limited set.
    """
    from ..data.mnist import load_mnist
    from ..data.preprocessing import train_val_split

    if dataset not in DATASET_CHOICES:
        raise ValueError(f"dataset must be one of {DATASET_CHOICES}, not {dataset!r}")
    name = dataset
    if dataset != "digits":
        kind = "mnist" if dataset == "auto" else dataset
        try:
            (X, y), (X_test, y_test) = load_mnist(data, kind=kind, download=download)
            name = kind
        except FileNotFoundError as exc:
            if dataset != "auto":
                raise
            if data is not None:  # an explicit --data that holds no MNIST is an error, never a fallback
                raise FileNotFoundError(f"--data {data}: no MNIST IDX files there ({str(exc).splitlines()[0]})") \
                    from None
            first = str(exc).splitlines()[0]
            print_fn(f"MNIST could not be found or downloaded ({first}).\n"
                     f"Falling back to scikit-learn's bundled 8x8 digits (1,797 images). To use MNIST, pass "
                     f"--data DIR or set FASTNN_DATA to a directory holding the four IDX files.")
            name = "digits"
    if name == "digits":
        (X, y), (X_test, y_test) = _load_digits_split(seed)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    if test_limit is not None:
        X_test, y_test = X_test[:test_limit], y_test[:test_limit]
    (X_train, y_train), (X_val, y_val) = train_val_split(X, y, val_fraction, seed=seed, stratify=True)
    titles = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "kmnist": "Kuzushiji-MNIST",
              "digits": "scikit-learn digits (8x8)"}
    return Dataset(name, titles[name], X_train, y_train, X_val, y_val, X_test, y_test)


# ---------------------------------------------------------------------------- model

def build_network(n_inputs, hidden=DEFAULTS["hidden"], n_classes=10, *, activation="relu", seed=0, backend=None):
    """An MLP ``n_inputs -> hidden... -> n_classes`` (logits), He-initialised."""
    from ..layers import Dense
    from ..network import Network

    sizes = [n_inputs, *hidden]
    layers = [Dense(a, b, activation) for a, b in zip(sizes[:-1], sizes[1:])]
    layers.append(Dense(sizes[-1], n_classes))
    return Network(layers, seed=seed, backend=backend)


def build_cnn(image_side, hidden=CNN_DEFAULTS["hidden"], n_classes=10, *, seed=0, backend=None):
    """The example CNN on ``(side, side, 1)`` images: Conv(32, 3x3) -> MaxPool 2 -> Conv(64, 3x3) ->
    MaxPool 2 -> Flatten -> Dense(hidden..., relu) with Dropout(0.3) -> Dense(n_classes) (logits).

    Images smaller than 16 pixels (the 8x8 digits) get 'same' padding so the maps do not vanish.
    """
    from ..layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
    from ..network import Network

    padding = "valid" if image_side >= 16 else "same"
    layers = [Conv2D(32, 3, padding=padding, activation="relu"), MaxPool2D(2),
              Conv2D(64, 3, padding=padding, activation="relu"), MaxPool2D(2), Flatten()]
    for units in hidden:
        layers += [Dense(units, activation="relu"), Dropout(0.3)]
    layers.append(Dense(n_classes))
    return Network(layers, input_shape=(image_side, image_side, 1), seed=seed, backend=backend)


def as_network_input(network, X):
    """Flat image rows ``X`` shaped as the network's samples (``(n, 28, 28, 1)`` for a CNN; a view)."""
    return X.reshape(len(X), *network.input_shape)


def make_optimizer(lr, epochs, steps_per_epoch, schedule="cosine", weight_decay=DEFAULTS["weight_decay"],
                   kind="adamw"):
    """AdamW (Adam when ``weight_decay`` is 0) with a learning-rate schedule over the whole run:
    ``'cosine'`` (decay to 1% of ``lr``, one epoch of linear warm-up when there are 4+ epochs)
    or ``'constant'``.

    The decoupled weight decay mostly keeps the validation loss from bouncing
    late in training, so that the best-by-validation-loss model is a late one.
    ``kind='sgd'``: SGD with Nesterov momentum 0.9 and (coupled) weight decay, the CNN's optimizer.
    """
    from ..optimizers import SGD, Adam, AdamW
    from ..schedules import CosineDecay

    if schedule == "constant":
        rate = lr
    elif schedule == "cosine":
        total = max(1, epochs * steps_per_epoch)
        warmup = steps_per_epoch if epochs >= 4 else 0
        rate = CosineDecay(lr, total_steps=total, warmup_steps=min(warmup, total - 1), min_lr=lr * 0.01)
    else:
        raise ValueError(f"schedule must be 'cosine' or 'constant', not {schedule!r}")
    if kind == "sgd":
        return SGD(rate, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    return AdamW(rate, weight_decay=weight_decay) if weight_decay else Adam(rate)


# ---------------------------------------------------------------------------- evaluation

def evaluate(network, X, y, n_classes=None):
    """Accuracy, confusion matrix, per-class and macro precision/recall/F1 of ``network`` on ``(X, y)``.

    Returns
    -------
    dict
        ``accuracy``, ``n_samples``, ``n_correct``, ``confusion_matrix`` (int64,
        rows = true class), ``precision``/``recall``/``f1``/``support`` (per class),
        ``macro_precision``/``macro_recall``/``macro_f1``, ``classification_report`` (text),
        ``y_pred``.
    """
    n_classes = int(n_classes or network.n_outputs)
    y = np.asarray(y)
    X = np.asarray(X)
    if X.ndim == 2 and len(network.input_shape) > 1:  # flat rows for an image network
        X = as_network_input(network, X)
    pred = network.predict(X)
    labels = np.arange(n_classes)
    p, r, f1, support = _metrics.precision_recall_f1(y, pred, labels=labels, average=None)
    mp, mr, mf1, _ = _metrics.precision_recall_f1(y, pred, labels=labels, average="macro")
    return {
        "accuracy": float(_metrics.accuracy(y, pred)),
        "n_samples": int(len(y)),
        "n_correct": int(np.count_nonzero(pred == y)),
        "confusion_matrix": _metrics.confusion_matrix(y, pred, n_classes=n_classes),
        "precision": p, "recall": r, "f1": f1, "support": support,
        "macro_precision": float(mp), "macro_recall": float(mr), "macro_f1": float(mf1),
        "classification_report": _metrics.classification_report(y, pred, labels=labels, digits=4),
        "y_pred": pred,
    }


def format_report(result, title="test set"):
    """The evaluation report of :func:`evaluate` as text."""
    cm = result["confusion_matrix"]
    k = cm.shape[0]
    width = max(5, len(str(int(cm.max()))) + 1)
    lines = [f"Evaluation on the {title}: {result['n_samples']:,} samples",
             f"  accuracy: {result['accuracy']:.4f} ({result['n_correct']:,} / {result['n_samples']:,} correct)",
             f"  macro precision {result['macro_precision']:.4f}, recall {result['macro_recall']:.4f}, "
             f"F1 {result['macro_f1']:.4f}",
             "",
             "Confusion matrix (rows: true class, columns: predicted class):",
             "true\\pred" + "".join(f"{j:>{width}}" for j in range(k))]
    for i in range(k):
        lines.append(f"{i:>9}" + "".join(f"{int(v):>{width}}" for v in cm[i]))
    lines += ["", "Per-class precision, recall, F1 (and macro / weighted averages):",
              result["classification_report"].rstrip("\n")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- training

def _fmt_time(seconds):
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def train(*, epochs=None, batch_size=None, lr=None, hidden=None, weight_decay=None, data=None,
          out=DEFAULTS["out"], resume=None, init=None, dataset="auto",
          download=True, val_fraction=DEFAULTS["val_fraction"], seed=DEFAULTS["seed"], schedule="cosine",
          limit=None, test_limit=None, backend=None, verbose=1, print_fn=print, model="mlp"):
    """Train an MLP (or a CNN) on MNIST, keep the best model by validation loss, and evaluate it on the test set.

    Parameters
    ----------
    epochs, batch_size, lr, hidden, weight_decay
        Training length, mini-batch size, peak learning rate, hidden (Dense) layer
        widths, weight decay: decoupled with AdamW for the MLP (0: plain Adam), coupled
        with SGD for the CNN. None takes the model's default (:data:`DEFAULTS`,
        :data:`CNN_DEFAULTS`).
    model : {'mlp', 'cnn'}, default 'mlp'
        ``'cnn'``: the small convolutional network of :func:`build_cnn` (SGD + Nesterov momentum).
    data : path, optional
        MNIST directory (see :func:`load_dataset`).
    out : path
        Output directory: ``best.fnn`` (best model by validation loss) and
        ``last.ckpt`` (training checkpoint after every epoch).
    resume : True, path or None
        Continue an interrupted run from ``out/last.ckpt`` (True) or from the
        given checkpoint; ``epochs`` is the total of the whole run.
    init : path, optional
        Start from the weights of a saved model (or checkpoint) with a fresh
        optimizer and schedule: continue training a finished model, e.g.
        with a 10x lower ``lr``. The architecture comes from the file.
    dataset, download, val_fraction, seed, limit, test_limit
        See :func:`load_dataset`. ``seed`` also seeds the weights and the shuffling.
    schedule : {'cosine', 'constant'}
    backend : str, optional
        Kernel backend (default: fastest available).
    verbose : int
        0 quiet, 1 progress bar + a line per epoch, 2 a line per epoch.

    Returns
    -------
    dict
        ``network`` (the best model), ``report`` (see :func:`evaluate`),
        ``history``, ``dataset`` (name), ``best_path``, ``checkpoint_path``,
        ``train_time``, ``total_time``.
    """
    from ..trainer import Trainer

    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    peek = os.fspath(init) if init else (os.path.join(out, LAST_NAME) if resume is True else resume)
    if peek and os.path.isfile(peek):  # a saved CNN continues as a CNN (its defaults, its optimizer)
        try:
            if len(read_header(peek)["network"].get("input_shape") or ()) > 1:
                model = "cnn"
        except (OSError, ValueError):
            pass  # reported properly when the file is loaded below
    d = {**DEFAULTS, **CNN_DEFAULTS} if model == "cnn" else DEFAULTS
    epochs = d["epochs"] if epochs is None else epochs
    batch_size = d["batch_size"] if batch_size is None else batch_size
    lr = d["lr"] if lr is None else lr
    hidden = d["hidden"] if hidden is None else hidden
    weight_decay = d["weight_decay"] if weight_decay is None else weight_decay
    t_start = time.perf_counter()
    say = print_fn if verbose else (lambda *a, **k: None)
    os.makedirs(out, exist_ok=True)
    best_path = os.path.join(out, BEST_NAME)
    last_path = os.path.join(out, LAST_NAME)
    resume_path = None
    if resume:
        resume_path = last_path if resume is True else os.fspath(resume)
        if not os.path.isfile(resume_path):
            raise FileNotFoundError(f"no checkpoint to resume from at {resume_path!r} "
                                    f"(a run writes one to <out>/{LAST_NAME} after every epoch)")

    ds = load_dataset(data, dataset=dataset, download=download, val_fraction=val_fraction, seed=seed,
                      limit=limit, test_limit=test_limit, print_fn=print_fn)
    say(f"{ds.title}: {len(ds.X_train):,} training, {len(ds.X_val):,} validation, {len(ds.X_test):,} test "
        f"images of {ds.n_features} pixels")

    if resume_path is not None and init is not None:
        raise ValueError("--resume continues a run, --init starts a new one from saved weights: pick one")
    source = resume_path if resume_path is not None else init
    if source is not None:
        net = load_network(source, backend=backend, seed=seed)  # the architecture comes from the file
        widths = tuple(layer.n_outputs for layer in net.layers[:-1] if type(layer).__name__ == "Dense")
        if widths != tuple(hidden):
            say(f"using the architecture of {source} (hidden {list(widths)}), not --hidden {list(hidden)}")
        model = "cnn" if len(net.input_shape) > 1 else "mlp"
    elif model == "cnn":
        side = int(round(math.sqrt(ds.n_features)))
        net = build_cnn(side, hidden, ds.n_classes, seed=seed, backend=backend)
    else:
        net = build_network(ds.n_features, hidden, ds.n_classes, seed=seed, backend=backend)
    if net.n_inputs != ds.n_features:
        raise ValueError(f"the model takes {net.n_inputs} inputs but {ds.title} images have {ds.n_features}")

    steps_per_epoch = math.ceil(len(ds.X_train) / batch_size)
    optimizer = make_optimizer(lr, epochs, steps_per_epoch, schedule, weight_decay,
                               kind="sgd" if model == "cnn" else "adamw")
    meta = {"dataset": ds.name, "model": model, "val_fraction": repr(val_fraction), "seed": str(seed),
            "input_scale": "pixels / 255" if ds.name != "digits" else "pixels / 16"}
    best_cb = ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True, metadata=meta)
    last_cb = ModelCheckpoint(last_path, save_training_state=True, metadata=meta)
    # best_cb first: the checkpoint written after it then holds its updated best value.
    trainer = Trainer(net, loss="cross_entropy", optimizer=optimizer, batch_size=batch_size, seed=seed,
                      callbacks=[best_cb, last_cb], backend=backend, verbose=verbose)
    shapes = [net.input_shape] + list(net.layer_shapes)
    say(f"model: {' -> '.join('x'.join(map(str, s)) for s in shapes)} "
        f"({net.n_params:,} parameters), {type(optimizer).__name__} lr {lr:g} ({schedule})"
        + (f", weight decay {weight_decay:g}" if weight_decay else "")
        + f", batch {batch_size}, {epochs} epochs"
        + (f", resuming from {resume_path}" if resume_path else "")
        + (f", starting from the weights of {init}" if init else ""))

    t_train = time.perf_counter()
    history = trainer.fit(as_network_input(net, ds.X_train), ds.y_train, epochs=epochs,
                          validation_data=(as_network_input(net, ds.X_val), ds.y_val), resume_from=resume_path)
    train_time = time.perf_counter() - t_train
    if not os.path.isfile(best_path):  # e.g. resumed with the best model deleted
        net.save(best_path)
    best = load_network(best_path, backend=backend)
    best_epoch = read_header(best_path).get("metadata", {}).get("epoch", "?")
    report = evaluate(best, ds.X_test, ds.y_test, ds.n_classes)
    total_time = time.perf_counter() - t_start
    say("")
    say(f"best model (epoch {best_epoch}, lowest validation loss) saved to {best_path}; "
        f"resumable checkpoint: {last_path}")
    print_fn(format_report(report, f"{ds.title} test set"))
    print_fn(f"\nTest accuracy {report['accuracy'] * 100:.2f}% - training {_fmt_time(train_time)}, "
             f"total {_fmt_time(total_time)} (data loading, compilation and evaluation included)")
    return {"network": best, "report": report, "history": history, "dataset": ds.name, "best_path": best_path,
            "checkpoint_path": last_path, "train_time": train_time, "total_time": total_time,
            "trainer": trainer}


def evaluate_model(model, *, data=None, dataset=None, download=True, seed=None, test_limit=None, backend=None,
                   print_fn=print):
    """Load a saved model (or checkpoint) and print/return its evaluation report on the matching test set.

    The test set is chosen from the model's metadata (``dataset``), else from
    its input width (784: MNIST, 64: scikit-learn digits).
    """
    header = read_header(model)
    meta = header.get("metadata", {})
    net = load_network(model, backend=backend)
    if dataset in (None, "auto"):
        dataset = meta.get("dataset") or {784: "auto", 64: "digits"}.get(net.n_inputs)
        if dataset is None:
            raise ValueError(f"cannot tell which test set fits a model with {net.n_inputs} inputs; "
                             f"pass --dataset")
    if seed is None:
        seed = int(meta["seed"]) if meta.get("seed", "").isdigit() else 0
    ds = load_dataset(data, dataset=dataset, download=download, seed=seed, test_limit=test_limit,
                      print_fn=print_fn)
    if net.n_inputs != ds.n_features:
        raise ValueError(f"{model}: the model takes {net.n_inputs} inputs but {ds.title} images have "
                         f"{ds.n_features}")
    report = evaluate(net, ds.X_test, ds.y_test, max(ds.n_classes, net.n_outputs))
    print_fn(f"model {model}: {net.n_params:,} parameters"
             + (f", saved at epoch {meta['epoch']}" if "epoch" in meta else ""))
    print_fn(format_report(report, f"{ds.title} test set"))
    return report


# ---------------------------------------------------------------------------- command line

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _fraction(text):
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def _hidden(text):
    try:
        widths = tuple(int(w) for w in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths such as 512,256, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer widths such as 512,256, got {text!r}")
    return widths


def _add_data_arguments(parser):
    parser.add_argument("--data", metavar="DIR",
                        help="directory holding the MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
                             "default: $FASTNN_DATA, then ~/.cache/fastnn/mnist, then a download")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="never download MNIST; fall back to scikit-learn's digits if it is not found")
    parser.add_argument("--backend", choices=("reference", "numba", "cython"),
                        help="compute backend (default: the fastest available)")
    parser.add_argument("--threads", type=_positive_int, metavar="N",
                        help="CPU threads (default: all cores, or $FASTNN_NUM_THREADS); 1 can be faster "
                             "when other programs keep the cores busy")


def add_train_arguments(parser):
    """Add the training flags (shared by ``fastnn train`` and examples/train_mnist.py) to ``parser``."""
    d = DEFAULTS
    g = parser.add_argument_group("training")
    g.add_argument("--model", choices=MODELS, default="mlp",
                   help="mlp (default): the multi-layer perceptron with AdamW; cnn: a small convolutional "
                        "network (Conv 32 -> pool -> Conv 64 -> pool -> Dense 128) with SGD + momentum, "
                        f"defaults {', '.join(f'{k}={v}' for k, v in CNN_DEFAULTS.items())}")
    g.add_argument("--epochs", type=_positive_int, default=None,
                   help=f"passes over the training set (default {d['epochs']}, cnn {CNN_DEFAULTS['epochs']})")
    g.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"images per gradient step (default {d['batch_size']}, cnn {CNN_DEFAULTS['batch_size']})")
    g.add_argument("--lr", type=_positive_float, default=None,
                   help=f"peak learning rate (AdamW; SGD for cnn), decayed along a cosine (default {d['lr']:g}, "
                        f"cnn {CNN_DEFAULTS['lr']:g})")
    g.add_argument("--weight-decay", type=float, default=None, metavar="WD",
                   help=f"decoupled weight decay of AdamW, 0 = plain Adam (default {d['weight_decay']:g}); "
                        f"the SGD weight decay for cnn (default {CNN_DEFAULTS['weight_decay']:g})")
    g.add_argument("--hidden", type=_hidden, default=None, metavar="W1,W2,...",
                   help=f"hidden Dense layer widths (default {','.join(map(str, d['hidden']))}, "
                        f"cnn {','.join(map(str, CNN_DEFAULTS['hidden']))})")
    g.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="learning-rate schedule (default cosine)")
    g.add_argument("--seed", type=int, default=d["seed"], help="seed of weights, shuffling and split (default 0)")
    g.add_argument("--val-fraction", type=_fraction, default=d["val_fraction"], metavar="F",
                   help="share of training images held out for validation (default 1/12 = 5,000 images)")
    g = parser.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", default=d["out"],
                   help=f"where to write {BEST_NAME} (best model by validation loss) and {LAST_NAME} "
                        f"(resumable checkpoint, every epoch) (default {d['out']})")
    g.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help=f"continue an interrupted run from DIR/{LAST_NAME} (or the given checkpoint); "
                        f"--epochs is the total for the whole run")
    g.add_argument("--init", metavar="MODEL",
                   help="start from the weights of a saved model, with a fresh optimizer: continue training "
                        "a finished model, e.g. with a 10x lower --lr")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-epoch lines")
    g = parser.add_argument_group("data")
    _add_data_arguments(g)
    g.add_argument("--dataset", choices=DATASET_CHOICES, default="auto",
                   help="'auto' = MNIST, or scikit-learn's 8x8 digits when MNIST cannot be found (default auto)")
    g.add_argument("--limit", type=_positive_int, metavar="N",
                   help="use only the first N training images and N test images (quick trials)")
    return parser


def add_evaluate_arguments(parser):
    """Add the flags of ``fastnn evaluate`` to ``parser``."""
    parser.add_argument("model", metavar="MODEL", help="a model file (best.fnn) or training checkpoint (last.ckpt)")
    _add_data_arguments(parser)
    parser.add_argument("--dataset", choices=DATASET_CHOICES, default=None,
                        help="test set (default: the one the model was trained on, from its metadata)")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate on the first N test images only")
    return parser


def _apply_threads(args):
    if getattr(args, "threads", None):
        from .._config import set_num_threads

        set_num_threads(args.threads)


def run_train(args, print_fn=print):
    """Run :func:`train` from parsed command-line arguments."""
    _apply_threads(args)
    if args.weight_decay is not None and not args.weight_decay >= 0:
        raise ValueError(f"--weight-decay must be >= 0, not {args.weight_decay}")
    return train(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                 weight_decay=args.weight_decay, data=args.data, model=getattr(args, "model", "mlp"),
                 out=args.out, resume=args.resume, init=args.init, dataset=args.dataset, download=args.download,
                 val_fraction=args.val_fraction, seed=args.seed, schedule=args.schedule, limit=args.limit,
                 test_limit=args.limit, backend=args.backend, verbose=0 if args.quiet else 1, print_fn=print_fn)


def run_evaluate(args, print_fn=print):
    """Run :func:`evaluate_model` from parsed command-line arguments."""
    _apply_threads(args)
    return evaluate_model(args.model, data=args.data, dataset=args.dataset, download=args.download,
                          test_limit=args.limit, backend=args.backend, print_fn=print_fn)


TRAIN_DESCRIPTION = """\
Train a multi-layer perceptron on MNIST (handwritten digits 0-9) and report how well it does.

It holds out part of the training images for validation, saves the model with
the lowest validation loss as it trains (DIR/best.fnn) plus a checkpoint after
every epoch (DIR/last.ckpt, for --resume), and finally evaluates the best model
on the 10,000 test images: accuracy, confusion matrix, per-class precision,
recall and F1. The defaults reach about 98.5% test accuracy; --model cnn trains
a small convolutional network instead (SGD + momentum, about 99.3%).

MNIST is read from --data, $FASTNN_DATA or ~/.cache/fastnn/mnist (downloaded
there if missing). Without it, the same pipeline runs on scikit-learn's small
8x8 digits dataset.
"""

TRAIN_EPILOG = """\
examples:
  # train with the defaults (about 98.5%% test accuracy)
  FASTNN_DATA=../shared/data/mnist %(prog)s
  # a smaller, quicker model
  %(prog)s --epochs 5 --hidden 256,128
  # the small convolutional network (SGD + momentum)
  %(prog)s --model cnn --out out/mnist_cnn
  # continue an interrupted run (same --out)
  %(prog)s --resume
  # train a finished model further with a 10x lower learning rate
  %(prog)s --init out/mnist/best.fnn --lr 2e-4 --epochs 3 --out out/finetune
  # evaluate a saved model again
  fastnn evaluate out/mnist/best.fnn
"""


def main(argv=None):
    """Entry point of examples/train_mnist.py: the training flags without a subcommand."""
    parser = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0]) or "train_mnist.py",
                                     description=TRAIN_DESCRIPTION, epilog=TRAIN_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_train(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with --resume (checkpoint in {args.out})", file=sys.stderr)
        return 130
    return 0
