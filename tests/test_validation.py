"""Bad input gets a clear ValueError/TypeError naming the problem, and leaves the network untouched."""
import numpy as np
import pytest

import fastnn as fnn


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    net = fnn.Network([fnn.Dense(4, 8, "relu"), fnn.Dense(8, 3)], seed=0)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=8, verbose=0)
    X = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    return net, trainer, X, y


def _with(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


BAD_FIT = [
    ("X not 2-D", lambda X, y: (X[:, 0], y), ValueError, "2-D"),
    ("3-D X", lambda X, y: (X[:, :, None], y), ValueError, "2-D"),
    ("feature count", lambda X, y: (X[:, :3], y), ValueError, "3 features but the network expects 4"),
    ("len mismatch", lambda X, y: (X, y[:-1]), ValueError, "len"),
    ("NaN in X", lambda X, y: (_with(X, 3, 1, np.nan), y), ValueError, "NaN"),
    ("Inf in X", lambda X, y: (_with(X, 2, 0, np.inf), y), ValueError, "Inf"),
    ("label too large", lambda X, y: (X, np.where(np.arange(20) == 5, 3, y)), ValueError, r"outside \[0, 3\)"),
    ("negative label", lambda X, y: (X, np.where(np.arange(20) == 5, -1, y)), ValueError, r"outside \[0, 3\)"),
    ("float labels", lambda X, y: (X, y + 0.5), ValueError, "non-integer"),
    ("NaN label", lambda X, y: (X, np.where(np.arange(20) == 1, np.nan, y)), ValueError, "non-integer"),
    ("object X", lambda X, y: (X.astype(object), y), TypeError, "numbers"),
    ("str X", lambda X, y: (X.astype(str), y), TypeError, "numbers"),
    ("str labels", lambda X, y: (X, y.astype(str)), TypeError, "numbers"),
    ("empty X", lambda X, y: (X[:0], y[:0]), ValueError, "0 samples"),
    ("0 features", lambda X, y: (X[:, :0], y), ValueError, "0 features"),
    ("one-hot width", lambda X, y: (X, np.eye(4)[y % 4]), ValueError, "columns"),
    ("y missing", lambda X, y: (X, None), ValueError, "required"),
]


@pytest.mark.parametrize("case,make,exc,match", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_bad_fit_input_raises_and_changes_nothing(setup, case, make, exc, match):
    net, trainer, X, y = setup
    before = net.params.copy()
    Xb, yb = make(X, y)
    with pytest.raises(exc, match=match):
        trainer.fit(Xb, yb, epochs=1)
    np.testing.assert_array_equal(net.params, before)
    assert trainer.optimizer.iterations == 0
    assert trainer.epoch == 0


@pytest.mark.parametrize("batch_size,exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                            ("32", TypeError), (True, TypeError)])
def test_bad_batch_size(setup, batch_size, exc):
    net, trainer, X, y = setup
    before = net.params.copy()
    with pytest.raises(exc, match="batch_size"):
        trainer.fit(X, y, batch_size=batch_size)
    with pytest.raises(exc, match="batch_size"):
        fnn.Trainer(net, batch_size=batch_size)
    np.testing.assert_array_equal(net.params, before)


def test_bad_validation_data(setup):
    net, trainer, X, y = setup
    before = net.params.copy()
    with pytest.raises(ValueError, match="X_val"):
        trainer.fit(X, y, validation_data=(X[:, :2], y))
    with pytest.raises(ValueError, match="y_val"):
        trainer.fit(X, y, validation_data=(X, y + 7))
    with pytest.raises(ValueError, match="tuple"):
        trainer.fit(X, y, validation_data=X)
    np.testing.assert_array_equal(net.params, before)


def test_bad_predict_input(setup):
    net, _, X, _ = setup
    with pytest.raises(ValueError, match="expects 4"):
        net.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        net.predict(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError, match="reshape"):
        net.predict(X[0])
    with pytest.raises(ValueError, match="0 samples"):
        net.predict_proba(X[:0])
    with pytest.raises(TypeError):
        net.predict("not an array")


def test_bad_construction():
    with pytest.raises(ValueError, match="expects 5 inputs"):
        fnn.Network([fnn.Dense(4, 8), fnn.Dense(5, 2)])
    with pytest.raises(ValueError, match="at least one layer"):
        fnn.Network([])
    with pytest.raises(TypeError, match="fastnn layers"):
        fnn.Network([lambda x: x])
    with pytest.raises(ValueError, match="unknown activation"):
        fnn.Dense(3, 3, activation="relu6")
    with pytest.raises(ValueError, match="positive integer"):
        fnn.Dense(0, 3)
    with pytest.raises(ValueError, match="dtype"):
        fnn.Network([fnn.Dense(2, 2)], dtype="int32")
    with pytest.raises(ValueError, match="unknown loss"):
        fnn.Trainer(fnn.Network([fnn.Dense(2, 2)]), loss="hinge")
    with pytest.raises(ValueError, match="unknown optimizer"):
        fnn.Trainer(fnn.Network([fnn.Dense(2, 2)]), optimizer="lbfgs")
    with pytest.raises(ValueError, match="takes logits"):
        fnn.Trainer(fnn.Network([fnn.Dense(2, 2, "relu")]), loss="cross_entropy")
    with pytest.raises(ValueError, match="lr"):
        fnn.Adam(lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        fnn.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="clip_norm"):
        fnn.Trainer(fnn.Network([fnn.Dense(2, 2)]), clip_norm=0)
    with pytest.raises(ValueError, match="unknown backend"):
        fnn.Network([fnn.Dense(2, 2)], backend="cuda")


def test_missing_backend_is_actionable(monkeypatch):
    from fastnn import kernels

    monkeypatch.setitem(kernels._cache, "cython", ImportError("No module named 'fastnn._ext._kernels'"))
    with pytest.raises(fnn.BackendUnavailableError, match="pip install"):
        kernels.get_backend("cython")
    with pytest.raises(ImportError):  # BackendUnavailableError is an ImportError
        fnn.Network([fnn.Dense(2, 2)], backend="cython")
    monkeypatch.setenv("FASTNN_BACKEND", "")
    with pytest.warns(RuntimeWarning, match="falling back"):
        monkeypatch.setattr(kernels, "_warned", set())
        assert kernels.get_backend().NAME == "numba"


def test_one_sample_fit_works():
    net = fnn.Network([fnn.Dense(3, 2)], seed=0)
    before = net.params.copy()
    fnn.Trainer(net, optimizer=fnn.SGD(0.1), verbose=0).fit(np.ones((1, 3)), [1], epochs=1)
    assert not np.array_equal(net.params, before)
