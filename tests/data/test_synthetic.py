"""fastnn.data.synthetic: shapes, dtypes, determinism, balance and labelling rules."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from fastnn.data import synthetic as S

# name -> generator taking only seed=; each returns (X, y) of a classification problem.
CLASSIFICATION = {
    "xor": lambda seed: S.xor(seed=seed),
    "xor_noisy": lambda seed: S.xor(101, noise=0.1, seed=seed),
    "spiral": lambda seed: S.spiral_data(50, 3, seed=seed),
    "spiral_shuffled": lambda seed: S.spiral_data(40, 5, seed=seed, shuffle=True),
    "sine": lambda seed: S.sine(301, noise=0.05, seed=seed),
    "checkerboard": lambda seed: S.checkerboard(400, tiles=4, seed=seed),
    "rgb": lambda seed: S.rgb_colors(505, seed=seed),
    "rgb_unbalanced": lambda seed: S.rgb_colors(300, balanced=False, seed=seed),
    "circles": lambda seed: S.circles(201, noise=0.05, seed=seed),
    "moons": lambda seed: S.moons(201, noise=0.1, seed=seed),
}
EXPECTED = {  # name -> (n_samples, n_features, n_classes)
    "xor": (4, 2, 2), "xor_noisy": (101, 2, 2), "spiral": (150, 2, 3),
    "spiral_shuffled": (200, 2, 5), "sine": (301, 2, 2), "checkerboard": (400, 2, 2),
    "rgb": (505, 3, 10), "rgb_unbalanced": (300, 3, 10), "circles": (201, 2, 2), "moons": (201, 2, 2),
}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_shapes_dtypes_and_contiguity(name):
    X, y = CLASSIFICATION[name](0)
    n_samples, n_features, n_classes = EXPECTED[name]
    assert X.shape == (n_samples, n_features) and X.dtype == np.float32
    assert y.shape == (n_samples,) and y.dtype == np.int64
    assert X.flags.c_contiguous and y.flags.c_contiguous
    assert np.isfinite(X).all()
    assert y.min() >= 0 and y.max() < n_classes


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_same_seed_same_data_and_generator_seed(name):
    X1, y1 = CLASSIFICATION[name](123)
    X2, y2 = CLASSIFICATION[name](123)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, y3 = CLASSIFICATION[name](np.random.default_rng(123))
    np.testing.assert_array_equal(X1, X3)
    np.testing.assert_array_equal(y1, y3)
    if name != "xor":  # the 4-point truth table involves no randomness
        X4, _ = CLASSIFICATION[name](124)
        assert not np.array_equal(X1, X4)


@pytest.mark.parametrize("name", [n for n in CLASSIFICATION if n != "rgb_unbalanced"])
def test_classes_balanced_within_one(name):
    _, y = CLASSIFICATION[name](1)
    counts = np.bincount(y, minlength=EXPECTED[name][2])
    assert counts.max() - counts.min() <= 1, counts


def test_generator_seed_is_advanced():
    rng = np.random.default_rng(5)
    X1, _ = S.moons(50, noise=0.1, seed=rng)
    X2, _ = S.moons(50, noise=0.1, seed=rng)
    assert not np.array_equal(X1, X2)


# ---------------------------------------------------------------- labelling rules

def test_xor_truth_table_and_noisy_corners():
    X, y = S.xor()
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    X, y = S.xor(400, noise=0.1, seed=0)
    corner = np.round(np.clip(X, 0, 1)).astype(int)  # noise 0.1 stays near its corner
    np.testing.assert_array_equal(y, corner[:, 0] ^ corner[:, 1])


def test_spiral_matches_nnfs_reference_construction():
    samples, classes, noise = 30, 3, 0.2
    X, y = S.spiral_data(samples, classes, noise=noise, seed=7)
    rng = np.random.default_rng(7)
    noise_draws = rng.standard_normal(samples * classes).reshape(classes, samples)
    for k in range(classes):  # the nnfs create_data loop, written out
        r = np.linspace(0.0, 1, samples)
        t = np.linspace(k * 4, (k + 1) * 4, samples) + noise_draws[k] * noise
        block = slice(k * samples, (k + 1) * samples)
        np.testing.assert_allclose(X[block], np.c_[r * np.sin(t * 2.5), r * np.cos(t * 2.5)].astype(np.float32),
                                   rtol=1e-5, atol=1e-6)
        assert (y[block] == k).all()


@pytest.mark.parametrize("classes", [2, 3, 4])
def test_spiral_points_lie_on_their_class_arm(classes):
    X, y = S.spiral_data(200, classes, noise=0.0, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1]).astype(np.float64)
    angle = np.arctan2(X[:, 0], X[:, 1])  # from +y towards +x, as r*(sin, cos)
    away_from_centre = radius > 0.05  # all arms meet at the origin
    arm_angles = 10.0 * np.arange(classes)[None, :] + 10.0 * radius[:, None]
    gap = np.angle(np.exp(1j * (angle[:, None] - arm_angles)))  # wrapped to (-pi, pi]
    nearest_arm = np.abs(gap).argmin(axis=1)
    np.testing.assert_array_equal(nearest_arm[away_from_centre], y[away_from_centre])
    assert radius.max() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("amplitude,periods", [(0.8, 1.0), (0.3, 2.5)])
def test_sine_labels_follow_the_curve(amplitude, periods):
    X, y = S.sine(500, amplitude=amplitude, periods=periods, seed=2)
    assert X.min() >= -1 and X.max() <= 1
    above = X[:, 1] > amplitude * np.sin(np.pi * periods * X[:, 0].astype(np.float64))
    np.testing.assert_array_equal(y, above.astype(np.int64))


@pytest.mark.parametrize("tiles", [2, 4, 5])
def test_checkerboard_labels_follow_the_tiles(tiles):
    X, y = S.checkerboard(600, tiles=tiles, seed=3)
    assert X.min() >= -1 and X.max() <= 1
    cell = np.floor((X.astype(np.float64) + 1) * tiles / 2).clip(max=tiles - 1).astype(int)
    np.testing.assert_array_equal(y, (cell[:, 0] + cell[:, 1]) % 2)
    # Every tile is populated: the board is really tiles x tiles.
    assert np.unique(cell[:, 0] * tiles + cell[:, 1]).size == tiles * tiles


@pytest.mark.parametrize("balanced", [True, False])
def test_rgb_labels_are_the_nearest_named_colour(balanced):
    X, y = S.rgb_colors(1000, balanced=balanced, seed=4)
    assert X.min() >= 0 and X.max() <= 1
    distance = ((X[:, None, :].astype(np.float64) - S.RGB_COLOR_VALUES[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(y, distance.argmin(axis=1))
    assert len(S.RGB_COLOR_NAMES) == len(S.RGB_COLOR_VALUES) == 10
    red = S.RGB_COLOR_NAMES.index("red")
    np.testing.assert_array_equal(S.RGB_COLOR_VALUES[red], [1, 0, 0])
    if not balanced:  # uniform over the cube: gray's big middle cell dominates
        assert np.bincount(y).argmax() == S.RGB_COLOR_NAMES.index("gray")


def test_rgb_reference_colours_are_read_only():
    with pytest.raises(ValueError):
        S.RGB_COLOR_VALUES[0, 0] = 0.5


def test_circles_and_moons_follow_their_geometry():
    X, y = S.circles(200, factor=0.3, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-6)
    X, y = S.moons(200, seed=0)
    upper, lower = X[y == 0].astype(np.float64), X[y == 1].astype(np.float64)
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(1 - lower[:, 0], 0.5 - lower[:, 1]), 1.0, atol=1e-6)
    assert (upper[:, 1] >= -1e-7).all() and (lower[:, 1] <= 0.5 + 1e-7).all()


def test_circles_and_moons_agree_with_sklearn_without_noise():
    from sklearn.datasets import make_circles, make_moons
    for ours, theirs in ((S.circles(100, factor=0.8, shuffle=False), make_circles(100, factor=0.8, shuffle=False)),
                         (S.moons(101, shuffle=False), make_moons(101, shuffle=False))):
        np.testing.assert_allclose(ours[0], theirs[0], atol=1e-6)
        np.testing.assert_array_equal(ours[1], theirs[1])


# ---------------------------------------------------------------- regression

def test_linear_regression_shapes_and_dtypes():
    X, y, true_w, true_b = S.linear_regression(200, 4, seed=0)
    assert X.shape == (200, 4) and X.dtype == np.float32
    assert y.shape == (200, 1) and y.dtype == np.float32
    assert true_w.shape == (4, 1) and true_w.dtype == np.float32
    assert true_b.shape == (1,) and true_b.dtype == np.float32
    # Default weights are readable one-decimal numbers in [-3, 3].
    np.testing.assert_allclose(true_w * 10, np.round(true_w * 10), atol=1e-4)
    assert np.abs(true_w).max() <= 3
    again = S.linear_regression(200, 4, seed=0)
    for first, second in zip((X, y, true_w, true_b), again):
        np.testing.assert_array_equal(first, second)


def test_linear_regression_target_is_linear_within_noise():
    noise = 0.1
    X, y, true_w, true_b = S.linear_regression(5000, 3, noise=noise, seed=1)
    residual = y - (X @ true_w + true_b)
    assert abs(residual.mean()) < 4 * noise / np.sqrt(5000)
    assert residual.std() == pytest.approx(noise, rel=0.05)
    X, y, true_w, true_b = S.linear_regression(50, 3, noise=0.0, seed=1)
    np.testing.assert_allclose(y, X @ true_w + true_b, rtol=1e-5, atol=1e-5)


def test_linear_regression_weights_are_recoverable():
    X, y, true_w, true_b = S.linear_regression(2000, 5, noise=0.1, seed=2)
    fit = LinearRegression().fit(X, y)
    np.testing.assert_allclose(fit.coef_.T, true_w, atol=0.02)
    np.testing.assert_allclose(fit.intercept_, true_b, atol=0.02)


def test_linear_regression_explicit_weights():
    X, y, true_w, true_b = S.linear_regression(500, 2, weights=[2.0, -1.0], bias=0.5, noise=0.0, seed=0)
    assert true_w.ravel().tolist() == [2.0, -1.0] and true_b.tolist() == [0.5]
    np.testing.assert_allclose(y[:, 0], 2 * X[:, 0] - X[:, 1] + 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="n_features=3"):
        S.linear_regression(10, 3, weights=[1.0, 2.0])


# ---------------------------------------------------------------- argument validation

@pytest.mark.parametrize("call,match", [
    (lambda: S.spiral_data(0, 3), "samples"),
    (lambda: S.spiral_data(10, 3, noise=-1), "noise"),
    (lambda: S.xor(2.5), "n_samples"),
    (lambda: S.sine(100, amplitude=1.5), "amplitude"),
    (lambda: S.checkerboard(100, tiles=1), "tiles"),
    (lambda: S.circles(100, factor=1.2), "factor"),
    (lambda: S.moons(1), "n_samples"),
    (lambda: S.rgb_colors(10, noise=float("nan")), "noise"),
    (lambda: S.linear_regression(10, 0), "n_features"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_seed_raises_type_error():
    with pytest.raises(TypeError, match="seed"):
        S.moons(10, seed="abc")
