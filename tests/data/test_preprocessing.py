"""Tests for fastnn.data.preprocessing."""
import numpy as np
import pytest

from fastnn.data.preprocessing import (
    split_indices, train_val_split, train_test_split, scale_to_unit, Standardizer, one_hot,
)


def data(n=1000, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    # imbalanced classes: 70% / 20% / 10%
    y = np.repeat([0, 1, 2], [int(0.7 * n), int(0.2 * n), n - int(0.7 * n) - int(0.2 * n)])
    return X, rng.permutation(y)


# ------------------------------------------------------------------ splits

def test_split_partitions_rows():
    X, y = data()
    X[:, 0] = np.arange(len(X))  # row ids
    (Xtr, ytr), (Xva, yva) = train_val_split(X, y, 0.1)
    assert len(Xva) == 100 and len(Xtr) == 900
    ids = np.concatenate([Xtr[:, 0], Xva[:, 0]]).astype(int)
    assert sorted(ids) == list(range(1000))
    # rows stay paired with their labels
    np.testing.assert_array_equal(ytr, y[Xtr[:, 0].astype(int)])
    np.testing.assert_array_equal(yva, y[Xva[:, 0].astype(int)])


def test_split_reproducible_and_seeded():
    X, y = data()
    a = train_val_split(X, y, seed=1)
    b = train_val_split(X, y, seed=1)
    c = train_val_split(X, y, seed=2)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[1][0], c[1][0])
    gen = train_val_split(X, y, seed=np.random.default_rng(5))
    assert len(gen[1][0]) == 100


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.33])
def test_stratification_preserves_proportions(fraction):
    X, y = data(n=997)
    (_, ytr), (_, yva) = train_val_split(X, y, fraction, stratify=True, seed=3)
    total = np.bincount(y)
    assert len(yva) == round(fraction * len(y))
    val_counts = np.bincount(yva, minlength=3)
    exact = total * len(yva) / len(y)
    assert np.all(np.abs(val_counts - exact) < 1)  # within one sample per class
    np.testing.assert_array_equal(val_counts + np.bincount(ytr, minlength=3), total)


def test_stratify_beats_chance_on_rare_class():
    y = np.array([0] * 95 + [1] * 5)
    X = np.arange(100)[:, None]
    for seed in range(20):
        (_, _), (_, yva) = train_val_split(X, y, 0.2, stratify=True, seed=seed)
        assert np.sum(yva == 1) == 1 and len(yva) == 20


def test_stratify_string_labels_and_shuffled_output():
    y = np.array(["cat", "dog"] * 50)
    X = np.arange(100)
    (_, ytr), (_, yva) = train_val_split(X, y, 0.2, stratify=True)
    assert (yva == "cat").sum() == 10
    assert not np.all(ytr[:40] == "cat")  # classes interleaved, not blocked


def test_train_test_split_alias():
    X, y = data()
    (Xtr, _), (Xte, _) = train_test_split(X, y)
    assert len(Xte) == 200 and len(Xtr) == 800


def test_split_indices():
    keep, held = split_indices(10, 0.3, seed=0)
    assert keep.dtype == np.int64 and len(held) == 3
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="labels"):
        split_indices(10, 0.3, stratify=True)


@pytest.mark.parametrize("fraction, exc, match", [
    (0.0, ValueError, r"val_fraction must be in \(0, 1\)"),
    (1.0, ValueError, "val_fraction"),
    (-0.1, ValueError, "val_fraction"),
    (float("nan"), ValueError, "val_fraction"),
    ("0.1", TypeError, "val_fraction"),
    (True, TypeError, "val_fraction"),
    (0.001, ValueError, "val_fraction=0.001 of 100 samples gives 0"),
    (0.999, ValueError, "gives 100 held-out"),
])
def test_split_bad_fraction(fraction, exc, match):
    X, y = np.zeros((100, 2)), np.zeros(100)
    with pytest.raises(exc, match=match):
        train_val_split(X, y, fraction)


def test_split_bad_inputs():
    with pytest.raises(ValueError, match="different lengths: 10 and 9"):
        train_val_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="empty"):
        train_val_split(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="at least 2"):
        train_val_split(np.zeros((1, 2)), np.zeros(1), 0.5)
    with pytest.raises(ValueError, match="scalar"):
        train_val_split(np.float32(1), np.zeros(1))
    with pytest.raises(TypeError, match="None"):
        train_val_split(np.zeros((4, 2)), None)
    with pytest.raises(ValueError, match="1-D class labels"):
        train_val_split(np.zeros((10, 2)), np.zeros((10, 3)), stratify=True)
    with pytest.raises(TypeError, match="seed"):
        train_val_split(np.zeros((10, 2)), np.zeros(10), seed=0.5)


# ------------------------------------------------------------------ scaling

def test_scale_to_unit():
    X = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    out = scale_to_unit(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    assert out[0, 0] == 0.0 and out[0, -1] == 1.0
    np.testing.assert_allclose(out, X / 255.0, rtol=1e-7)
    assert scale_to_unit(X, dtype=np.float64).dtype == np.float64
    assert scale_to_unit(np.array([3, 255], dtype=np.int32))[1] == 1.0


def test_scale_to_unit_rejects():
    with pytest.raises(TypeError, match="already scaled"):
        scale_to_unit(np.array([0.5], dtype=np.float32))
    with pytest.raises(ValueError, match="0..255"):
        scale_to_unit(np.array([0, 256]))
    with pytest.raises(ValueError, match="0..255"):
        scale_to_unit(np.array([-1, 3]))
    with pytest.raises(TypeError):
        scale_to_unit(np.array(["a"]))
    with pytest.raises(TypeError, match="floating"):
        scale_to_unit(np.array([1], np.uint8), dtype=np.int32)


def test_standardizer_fit_on_train_reused_on_test():
    rng = np.random.default_rng(0)
    Xtr = rng.normal(5.0, 3.0, size=(2000, 4)).astype(np.float32)
    Xte = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    s = Standardizer().fit(Xtr)
    Ztr = s.transform(Xtr)
    assert Ztr.dtype == np.float32
    np.testing.assert_allclose(Ztr.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Ztr.std(0), 1, atol=1e-5)
    Zte = s.transform(Xte)  # train statistics, not test's own
    np.testing.assert_allclose(Zte, (Xte - Xtr.mean(0, dtype=np.float64)) / Xtr.std(0, dtype=np.float64),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(Zte.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(s.inverse_transform(Zte), Xte, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Standardizer().fit_transform(Xtr), Ztr)


def test_standardizer_matches_float64_reference_chunked():
    rng = np.random.default_rng(1)
    X = rng.normal(1e3, 1e-1, size=(10_000, 3))  # large mean, tiny spread; > one chunk
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.scale_, X.std(0), rtol=1e-9)
    assert s.n_samples_seen_ == 10_000


def test_standardizer_zero_variance_and_images():
    X = np.full((50, 3), 7.0, dtype=np.float32)
    X[:, 1] = np.arange(50)
    X[:, 2] = 0.1  # constant whose float mean is inexact
    s = Standardizer().fit(X)
    Z = s.transform(X)
    assert np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z[:, 0], 0)
    np.testing.assert_allclose(Z[:, 2], 0, atol=1e-6)
    assert s.scale_[0] == 1.0 and s.scale_[2] == 1.0
    imgs = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    imgs[:, 0, 0] = 0  # a constant pixel, as in MNIST borders
    Z = Standardizer().fit_transform(imgs)
    assert Z.shape == (20, 28, 28) and Z.dtype == np.float32  # integer input -> float32
    assert np.all(Z[:, 0, 0] == 0)


def test_standardizer_options_and_errors():
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    s = Standardizer(with_mean=False).fit(X)
    assert np.all(s.mean_ == 0)
    s = Standardizer(with_std=False).fit(X)
    assert np.all(s.scale_ == 1)
    assert Standardizer(dtype=np.float32).fit(X).transform(X).dtype == np.float32
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().transform(X)
    with pytest.raises(ValueError, match="feature shape"):
        Standardizer().fit(X).transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="empty"):
        Standardizer().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        Standardizer().fit(np.array([[1e308], [-1e308], [1e308]]))
    with pytest.raises(TypeError):
        Standardizer(dtype=np.int32)
    with pytest.raises(TypeError, match="numeric"):
        Standardizer().fit(np.array([["a"]]))


def test_standardizer_state_dict_round_trip():
    X = np.random.default_rng(2).normal(size=(100, 3))
    s = Standardizer().fit(X)
    state = s.state_dict()
    assert set(state) == {"mean", "scale", "n_samples_seen", "with_mean", "with_std"}
    assert isinstance(state["mean"], np.ndarray) and state["mean"].dtype == np.float64
    state["mean"][0] = 99  # a copy, not a view of the fitted state
    assert s.mean_[0] != 99
    s2 = Standardizer().load_state_dict(s.state_dict())
    np.testing.assert_array_equal(s2.transform(X), s.transform(X))
    # survives np.savez / np.load without pickle
    import io
    buf = io.BytesIO()
    np.savez(buf, **s.state_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        s3 = Standardizer().load_state_dict({k: z[k] for k in z.files})
    np.testing.assert_array_equal(s3.scale_, s.scale_)
    with pytest.raises(RuntimeError):
        Standardizer().state_dict()
    with pytest.raises(ValueError, match="missing"):
        Standardizer().load_state_dict({"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="shapes differ"):
        Standardizer().load_state_dict({"mean": np.zeros(3), "scale": np.ones(2)})
    with pytest.raises(ValueError, match="non-positive"):
        Standardizer().load_state_dict({"mean": np.zeros(2), "scale": np.array([1.0, 0.0])})
    with pytest.raises(ValueError, match="NaN"):
        Standardizer().load_state_dict({"mean": np.array([np.nan]), "scale": np.ones(1)})


# ------------------------------------------------------------------ one_hot

def test_one_hot():
    out = one_hot([2, 0, 1])
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1]])
    assert one_hot(np.array([1], np.uint8), n_classes=4).shape == (1, 4)
    assert one_hot(np.array([1.0, 3.0]), 4, dtype=np.float64).dtype == np.float64
    assert one_hot(np.array([True, False])).shape == (2, 2)
    assert one_hot(np.array([], dtype=np.int64), n_classes=3).shape == (0, 3)
    assert one_hot([0, 1], n_classes=np.int64(5)).shape == (2, 5)


@pytest.mark.parametrize("y, kw, exc, match", [
    ([0, 1.5], {}, ValueError, r"whole numbers; y\[1\] = 1.5"),
    ([0, np.nan], {}, ValueError, "whole numbers"),
    ([0, -1, 2], {}, ValueError, r">= 0; y\[1\] = -1"),
    ([0, 3, 1], {"n_classes": 3}, ValueError, r"< n_classes=3; y\[1\] = 3"),
    ([[0], [1]], {}, ValueError, "ravel"),
    (5, {}, ValueError, "1-D"),
    (["a", "b"], {}, TypeError, "integer class labels"),
    ([], {}, ValueError, "n_classes"),
    ([0, 1], {"n_classes": 0}, ValueError, ">= 1"),
    ([0, 1], {"n_classes": 2.0}, TypeError, "n_classes"),
    ([0, 1], {"n_classes": True}, TypeError, "n_classes"),
])
def test_one_hot_errors(y, kw, exc, match):
    with pytest.raises(exc, match=match):
        one_hot(np.asarray(y), **kw)


@pytest.mark.parametrize("bad", ["x", -1, 2.5, None])
def test_standardizer_refused_state_changes_nothing(bad):
    s = Standardizer().fit(np.arange(12, dtype=np.float64).reshape(4, 3))
    mean, scale = s.mean_.copy(), s.scale_.copy()
    state = dict(s.state_dict(), mean=np.zeros(3), scale=np.ones(3), n_samples_seen=bad)
    with pytest.raises((TypeError, ValueError)):
        s.load_state_dict(state)
    np.testing.assert_array_equal(s.mean_, mean)
    np.testing.assert_array_equal(s.scale_, scale)
    assert s.n_samples_seen_ == 4
