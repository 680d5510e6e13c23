"""The scikit-learn face: ``fastnn.sklearn.MLPClassifier`` vs scikit-learn's ``MLPClassifier``, same parameters.

Group ``sklearn-fit``: one whole ``fit`` per round (sklearn's defaults -- hidden
(100,), ReLU, Adam 1e-3, batch min(200, n), alpha 1e-4 -- with a fixed
``max_iter`` and ``n_iter_no_change=max_iter`` so both run every epoch), on
scikit-learn's digits (1,347 train / 450 test) and a 10,000-image MNIST subset
(tested on the next 5,000). ``extra_info`` holds the held-out accuracy and the
seconds; read fastnn/sklearn ratios from one run (the machine is shared).
Smoke (``--benchmark-disable``): 3 epochs on at most 1,000 samples.
"""
import time
import warnings

import numpy as np
import pytest

from bench import data, peers

PARAMS = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4, batch_size="auto",
              learning_rate_init=1e-3, random_state=0)
EPOCHS = {"digits": 100, "mnist-10k": 20}


def _dataset(name, smoke):
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=450, random_state=0, stratify=y)
    else:
        X, y = data.mnist_like(15000)
        Xtr, ytr, Xte, yte = X[:10000], y[:10000], X[10000:], y[10000:]
    if smoke:
        Xtr, ytr = Xtr[:1000], ytr[:1000]
    return np.ascontiguousarray(Xtr), ytr, np.ascontiguousarray(Xte), yte


def _estimator(impl, epochs):
    if impl == "fastnn":
        from fastnn.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    return MLPClassifier(max_iter=epochs, n_iter_no_change=epochs, **PARAMS)


@pytest.mark.parametrize("dataset", sorted(EPOCHS))
@pytest.mark.parametrize("impl", ["fastnn", "sklearn"])
def test_sklearn_fit(benchmark, bench_record, dataset, impl):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    Xtr, ytr, Xte, yte = _dataset(dataset, benchmark.disabled)
    epochs = 3 if benchmark.disabled else EPOCHS[dataset]
    threads = 2
    state = {}

    def fit():
        est = _estimator(impl, epochs)
        with peers.blas_limit(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(Xtr, ytr)
            state["seconds"] = time.perf_counter() - t0
        state["est"] = est
        return est

    benchmark.group = "sklearn-fit"
    benchmark.pedantic(fit, rounds=1 if benchmark.disabled else 3, iterations=1, warmup_rounds=0)
    est = state["est"]
    accuracy = float((est.predict(Xte) == yte).mean())
    assert est.n_iter_ == epochs and np.isfinite(est.loss_)
    assert est.coefs_[0].dtype == np.float32, f"{impl} silently promoted float32 input"
    run = peers.PeerRun(fit, f"{impl}-mlpclassifier-{dataset}", Xtr.shape[0] * epochs, 200, threads)
    bench_record(run, accuracy=accuracy, seconds=state["seconds"], epochs=epochs, dataset=dataset,
                 final_loss=float(est.loss_))
