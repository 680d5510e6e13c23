"""What a Keras or scikit-learn user types first works, or fails with a hint (issue 13's findings)."""
import io
import warnings

import numpy as np
import pytest

import fastnn as fnn


def _data(n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


def test_keras_optimizer_names():
    opt = fnn.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (0.01, 0.8, 0.99, 1e-6)
    assert fnn.AdamW(learning_rate=0.02).lr == 0.02
    assert fnn.SGD(learning_rate=0.1, momentum=0.9).lr == 0.1
    with pytest.raises(TypeError, match="not both"):
        fnn.Adam(lr=0.1, learning_rate=0.2)


def test_sklearn_metric_names_are_the_same_functions():
    assert fnn.metrics.accuracy_score is fnn.metrics.accuracy
    assert fnn.metrics.precision_score is fnn.metrics.precision
    assert fnn.metrics.recall_score is fnn.metrics.recall
    assert fnn.metrics.roc_auc_score is fnn.metrics.roc_auc
    assert fnn.metrics.accuracy_score([0, 1, 1], [0, 1, 0]) == pytest.approx(2 / 3)


def test_network_fit_points_to_the_trainer():
    net = fnn.Network([fnn.Dense(6, 3)], seed=0)
    for name in ("fit", "compile", "evaluate"):
        with pytest.raises(AttributeError, match="Trainer"):
            getattr(net, name)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        net.nonsense


def test_string_labels_get_a_hint():
    X, _ = _data()
    y = np.array(["cat", "dog", "bird"] * 40)
    tr = fnn.Trainer(fnn.Network([fnn.Dense(6, 3)], seed=0), verbose=0)
    with pytest.raises(TypeError, match="return_inverse=True"):
        tr.fit(X, y)


def test_unscaled_integer_pixels_warn():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (64, 6)).astype(np.uint8)
    y = rng.integers(0, 3, 64)
    tr = fnn.Trainer(fnn.Network([fnn.Dense(6, 3)], seed=0), verbose=0)
    with pytest.warns(fnn.FastnnWarning, match=r"X / 255"):
        tr.fit(X, y, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fnn.FastnnWarning)
        tr.fit(X / 255.0, y, epochs=1)  # scaled: no warning


def test_network_seed_alone_makes_fit_reproducible():
    X, y = _data()
    runs = []
    for _ in range(2):
        net = fnn.Network([fnn.Dense(6, 8, "relu"), fnn.Dropout(0.2), fnn.Dense(8, 3)], seed=7)
        fnn.Trainer(net, batch_size=16, verbose=0).fit(X, y, epochs=2)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


@pytest.mark.parametrize("tty", [False, True])
def test_progress_bar_only_on_a_terminal(tty):
    X, y = _data()
    stream = _Stream(tty)
    tr = fnn.Trainer(fnn.Network([fnn.Dense(6, 3)], seed=0), verbose=0, callbacks=[fnn.ProgressBar(file=stream)])
    tr.fit(X, y, epochs=2)
    assert ("epoch 1/2" in stream.getvalue()) is tty
    assert ("\r" in stream.getvalue()) is tty


def test_lr_find_takes_a_trainer():
    X, y = _data(n=400)
    net = fnn.Network([fnn.Dense(6, 16, "relu"), fnn.Dense(16, 3)], seed=0)
    before = net.params.copy()
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.1, momentum=0.9), batch_size=32, verbose=0)
    result = fnn.lr_find(tr, X, y, num_steps=30)
    assert len(result.lrs) > 5 and np.isfinite(result.suggestion)
    np.testing.assert_array_equal(net.params, before)


def test_missing_extension_message_names_the_source_tree():
    from fastnn._ext import missing_extension_error

    msg = str(missing_extension_error(ImportError("no module")))
    assert "pip install" in msg
    if "site-packages" not in fnn.__file__:  # a source checkout: the likely cause is said
        assert "source tree" in msg
