"""Datasets a sweep can run on without a network connection: MNIST (from its IDX files), the
small real datasets scikit-learn ships inside its package (digits, iris, wine, breast cancer), and
the known-weights linear regression of :mod:`fastnn.data.synthetic`."""
from dataclasses import dataclass

import numpy as np

from ..data import Standardizer, load_mnist, train_test_split
from ..data.synthetic import linear_regression
from ..errors import ParameterError

#: name -> one line about it (``fastnn sweep --dataset NAME``).
DATASETS = {
    "mnist": "MNIST handwritten digits, 28x28 -> 784 inputs, 10 classes; validation = the test set",
    "digits": "scikit-learn's 8x8 handwritten digits (1,797 images), 64 inputs, 10 classes",
    "iris": "scikit-learn's iris flowers (150 samples), 4 inputs, 3 classes",
    "wine": "scikit-learn's wine cultivars (178 samples), 13 inputs, 3 classes",
    "breast_cancer": "scikit-learn's breast cancer diagnosis (569 samples), 30 inputs, 2 classes",
    "linear_regression": "known weights y = 2.5 x1 + 0.8 x2 + 1.5 x3 + 3.0 + N(0, 0.1) (1,000 samples)",
}
_SKLEARN = {"digits": "load_digits", "iris": "load_iris", "wine": "load_wine",
            "breast_cancer": "load_breast_cancer"}


@dataclass
class Dataset:
    """Training and validation arrays of one dataset, and how to train on it."""
    name: str
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int  # 0 for regression
    loss: str

    @property
    def n_inputs(self):
        return self.X.shape[1]

    @property
    def n_outputs(self):
        return self.n_classes or self.y.shape[1]

    def describe(self):
        """``digits: 1,437 training / 360 validation samples, 64 inputs, 10 classes``."""
        kind = f"{self.n_classes} classes" if self.n_classes else "regression"
        return (f"{self.name}: {len(self.X):,} training / {len(self.X_val):,} validation samples, "
                f"{self.n_inputs} inputs, {kind}")


def load_dataset(name, *, path=None, limit=None, val_fraction=0.2, seed=0):
    """Load dataset ``name`` (see :data:`DATASETS`), split and scaled for training.

    Parameters
    ----------
    name : str
    path : str, optional
        MNIST only: the directory of its IDX files (default: ``FASTNN_DATA``, the cache, a download).
    limit : int, optional
        Keep at most this many training samples (and validation samples in proportion).
    val_fraction : float, default 0.2
        Share held out for validation (stratified); MNIST validates on its own test set.
    seed : int, default 0
        Seed of the split.

    Returns
    -------
    Dataset
        Features standardized with the training part's statistics (MNIST: pixels in [0, 1]).
    """
    if name not in DATASETS:
        raise ParameterError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 10):
        raise ParameterError(f"limit must be an integer >= 10 or None, not {limit!r}")
    if name == "mnist":
        (X, y), (X_val, y_val) = load_mnist(path)
        if limit is not None:
            X, y = X[:limit], y[:limit]
            X_val, y_val = X_val[:max(1, limit // 6)], y_val[:max(1, limit // 6)]
        return Dataset(name, X, y, X_val, y_val, 10, "cross_entropy")
    if name == "linear_regression":
        X, y, _, _ = linear_regression(1000, 3, noise=0.1, weights=(2.5, 0.8, 1.5), bias=3.0, seed=seed)
        stratify, n_classes, loss = False, 0, "mse"
    else:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, _SKLEARN[name])()
        X, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
        stratify, n_classes, loss = True, int(y.max()) + 1, "cross_entropy"
    (X, y), (X_val, y_val) = train_test_split(X, y, val_fraction, seed=seed, stratify=stratify)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    if n_classes:  # the features of the real datasets span very different ranges
        scaler = Standardizer().fit(X)
        X, X_val = scaler.transform(X), scaler.transform(X_val)
    return Dataset(name, X, y, X_val, y_val, n_classes, loss)
