"""fastnn.data.augment: shifts, rotations, noise, the Augmenter pipeline and per-epoch augmentation."""
import numpy as np
import pytest

from fastnn.data import augment as A
from fastnn.data.augment import (Augmenter, GaussianNoise, RandomRotation, RandomShift, augment_epochs,
                                 gaussian_noise, get_kernels, random_rotation, random_shift, rotate, shift)
from fastnn.errors import BackendUnavailableError

try:
    import numba  # noqa: F401
    BACKENDS = ["reference", "numba"]
except ImportError:  # pragma: no cover
    BACKENDS = ["reference"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def _images(n=64, shape=(28, 28), seed=0, dtype=np.float32):
    """Blobby digit-like images in [0, 1], flat, zero near the border."""
    rng = np.random.default_rng(seed)
    H, W = shape
    r, c = np.mgrid[:H, :W]
    cy = rng.uniform(0.4, 0.6, (n, 1, 1)) * (H - 1)
    cx = rng.uniform(0.4, 0.6, (n, 1, 1)) * (W - 1)
    sy, sx = rng.uniform(1.5, 3.5, (2, n, 1, 1))
    img = np.exp(-((r - cy) ** 2 / (2 * sy ** 2) + (c - cx) ** 2 / (2 * sx ** 2)))
    return img.reshape(n, H * W).astype(dtype)


def _one_hot(n, shape, rows, cols, dtype=np.float32):
    X = np.zeros((n, *shape), dtype)
    X[np.arange(n), rows, cols] = 1
    return X


# ------------------------------------------------------------------ shapes, dtypes, out
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["flat", "3d"])
def test_shapes_and_dtypes_are_kept(dtype, layout):
    X = _images(10, dtype=dtype)
    if layout == "3d":
        X = X.reshape(10, 28, 28)
    for result in (random_shift(X, 2, rng=0), random_rotation(X, 10, rng=0), gaussian_noise(X, 0.1, rng=0),
                   Augmenter([RandomShift(1), RandomRotation(5), GaussianNoise(0.05)], seed=0)(X)):
        assert result.shape == X.shape and result.dtype == X.dtype and result.flags.c_contiguous
        assert result is not X


def test_image_shape_inferred_or_given():
    X = _images(4, shape=(6, 10))
    with pytest.raises(ValueError, match="not a square image"):
        random_shift(X, 1, rng=0)
    out = random_shift(X, 1, image_shape=(6, 10), rng=0)
    np.testing.assert_array_equal(out, random_shift(X.reshape(4, 6, 10), 1, rng=0).reshape(4, 60))
    assert random_shift(_images(3, shape=(8, 8)), 1, rng=0).shape == (3, 64)  # sklearn digits: 64 -> 8x8


def test_input_is_not_modified_and_out_is_used():
    X = _images(20)
    before = X.copy()
    out = np.empty_like(X)
    aug = Augmenter([RandomShift(2), RandomRotation(10), GaussianNoise(0.1)], seed=3)
    result = aug(X, out=out)
    assert result is out
    np.testing.assert_array_equal(X, before)


def test_in_place_equals_out_of_place():
    X = _images(50)
    expected = Augmenter([RandomShift(2), GaussianNoise(0.1)], seed=5, batch_size=16)(X)
    for transforms in ([RandomShift(2), GaussianNoise(0.1)],):
        Y = X.copy()
        result = Augmenter(transforms, seed=5, batch_size=16)(Y, out=Y)
        assert result is Y
        np.testing.assert_array_equal(Y, expected)
    Y = X.copy()
    np.testing.assert_array_equal(random_shift(Y, 3, rng=1, out=Y), random_shift(X, 3, rng=1))
    Y = X.copy()
    np.testing.assert_array_equal(rotate(Y, 12.0, out=Y), rotate(X, 12.0))


def test_empty_batch_and_empty_pipeline():
    X = _images(5)
    assert random_shift(X[:0], 1, rng=0).shape == (0, 784)
    copy = Augmenter([], seed=0)(X)
    np.testing.assert_array_equal(copy, X)
    assert copy is not X


# ------------------------------------------------------------------ randomness
def test_same_seed_same_output_and_fresh_draws_per_call():
    X = _images(40)
    make = lambda: Augmenter([RandomShift(2), RandomRotation(10), GaussianNoise(0.05)], seed=42)  # noqa: E731
    a, b = make(), make()
    first = a(X)
    np.testing.assert_array_equal(first, b(X))
    second = a(X)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, b(X))
    assert not np.array_equal(first, Augmenter(a.transforms, seed=43)(X))


def test_result_does_not_depend_on_batch_size():
    X = _images(300)
    transforms = [RandomShift(3), RandomRotation(15), GaussianNoise(0.1)]
    ref = Augmenter(transforms, seed=7)(X)
    for bs in (1, 7, 128, 299, 10_000):
        np.testing.assert_array_equal(Augmenter(transforms, seed=7, batch_size=bs)(X), ref)


def test_adding_a_last_step_keeps_the_earlier_ones():
    X = _images(30)
    shifted = Augmenter([RandomShift(2)], seed=1)(X)
    then_noise = Augmenter([RandomShift(2), GaussianNoise(0.1, clip=None)], seed=1)(X)
    assert (then_noise - shifted).std() == pytest.approx(0.1, rel=0.05)


def test_generator_seed_is_used_and_advanced():
    X = _images(10)
    g = np.random.default_rng(0)
    a = random_shift(X, 2, rng=g)
    b = random_shift(X, 2, rng=g)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, random_shift(X, 2, rng=np.random.default_rng(0)))


# ------------------------------------------------------------------ shifts
def test_integer_shift_moves_a_one_hot_pixel_exactly(backend):
    shape = (28, 28)
    X = _one_hot(4, shape, [10, 0, 27, 14], [10, 5, 27, 0])
    dy, dx = np.array([3, 2, -4, 0]), np.array([-2, 1, -1, 5])
    out = shift(X, dy, dx, backend=backend)
    expected = _one_hot(4, shape, [13, 2, 23, 14], [8, 6, 26, 5])
    np.testing.assert_array_equal(out, expected)
    # what moves in from outside is the fill value; what moves out is gone
    up = shift(X[:1], -11, 0, fill=0.25, backend=backend)[0]
    np.testing.assert_array_equal(up[17:], 0.25)
    np.testing.assert_array_equal(up[:17], 0.0)
    np.testing.assert_array_equal(shift(X[:1], 0, 28, fill=0.25, backend=backend),
                                  np.full((1, 28, 28), 0.25, np.float32))


def test_random_shift_is_a_whole_pixel_translation_with_fill(backend):
    rng = np.random.default_rng(0)
    X = rng.random((500, 9, 9)).astype(np.float32)
    out = random_shift(X, 2, rng=1, fill=-1.0, backend=backend)
    seen = set()
    for x, o in zip(X, out):  # test oracle: a per-image loop over the 25 candidate shifts
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.full_like(x, -1.0)
                ref[max(dy, 0):9 + min(dy, 0), max(dx, 0):9 + min(dx, 0)] = \
                    x[max(-dy, 0):9 - max(dy, 0), max(-dx, 0):9 - max(dx, 0)]
                if np.array_equal(ref, o):
                    matches.append((dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 25  # every shift in [-2, 2]^2 occurs
    np.testing.assert_array_equal(random_shift(X, 0, rng=0), X)


def test_random_shift_is_uniform():
    X = _one_hot(4000, (9, 9), np.full(4000, 4), np.full(4000, 4))
    out = random_shift(X, 2, rng=0).reshape(4000, -1)
    where = out.argmax(axis=1)
    assert (out.sum(axis=1) == 1).all()  # nothing lost: the pixel stays in frame
    dy, dx = where // 9 - 4, where % 9 - 4
    counts = np.bincount((dy + 2) * 5 + (dx + 2), minlength=25)
    assert counts.min() > 4000 / 25 * 0.7 and counts.max() < 4000 / 25 * 1.3


# ------------------------------------------------------------------ rotations
def test_rotation_by_zero_is_the_identity(backend):
    X = _images(20)
    X[3, 5] = -0.5  # negative pixels too
    np.testing.assert_array_equal(random_rotation(X, 0, rng=0, backend=backend), X)
    np.testing.assert_array_equal(rotate(X, 0.0, backend=backend), X)
    np.testing.assert_array_equal(rotate(X, 0.0, fill=0.7, backend=backend), X)
    np.testing.assert_array_equal(random_rotation(X, 3, rng=0, resolution=5.0, backend=backend), X)  # only 0


@pytest.mark.parametrize("angle", [3.0, -7.5, 12.0, 45.0, 90.0, 180.0])
@pytest.mark.parametrize("fill", [0.0, 0.3])
def test_rotation_matches_scipy_bilinear(angle, fill, backend):
    ndimage = pytest.importorskip("scipy.ndimage")
    X = np.random.default_rng(0).random((3, 28, 28))
    ref = np.stack([ndimage.rotate(x, angle, reshape=False, order=1, mode="grid-constant", cval=fill,
                                   prefilter=False) for x in X])
    np.testing.assert_allclose(rotate(X, angle, fill=fill, backend=backend), ref, rtol=0, atol=1e-12)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(rotate(X32, angle, fill=fill, backend=backend), ref, rtol=0, atol=2e-6)


def test_rotation_direction_and_quarter_turns():
    X = _one_hot(1, (7, 7), [3], [5])   # right of the centre
    np.testing.assert_allclose(rotate(X, 90.0), _one_hot(1, (7, 7), [1], [3]), atol=1e-12)  # counter-clockwise
    Y = _images(5, shape=(11, 11))
    out = Y
    for _ in range(4):
        out = rotate(out, 90.0)
    np.testing.assert_allclose(out, Y, atol=1e-5)


def test_small_rotations_preserve_mass():
    X = _images(200)
    out = random_rotation(X, 15, rng=0)
    ratio = out.sum(axis=1) / X.sum(axis=1)
    np.testing.assert_allclose(ratio, 1.0, atol=0.02)
    assert not np.allclose(out, X)


def test_random_rotation_angles_lie_on_the_grid():
    X = _images(60, shape=(15, 15))
    out = random_rotation(X, 10, rng=0, resolution=5.0)
    candidates = np.stack([rotate(X, a) for a in (-10.0, -5.0, 0.0, 5.0, 10.0)])  # (5, n, 225)
    hit = np.isclose(candidates, out[None], atol=1e-6).all(axis=2)            # (5, n)
    assert (hit.sum(axis=0) == 1).all()
    assert hit.any(axis=1).all()  # every grid angle was drawn


def test_rotate_per_image_angles():
    X = _images(6)
    angles = np.array([0.0, 5.0, -5.0, 5.0, 30.0, 0.0])
    out = rotate(X, angles)
    for i, a in enumerate(angles):
        np.testing.assert_array_equal(out[i], rotate(X[i:i + 1], a)[0])


# ------------------------------------------------------------------ noise
def test_noise_statistics():
    X = np.full((2000, 784), 0.5, np.float32)
    z = gaussian_noise(X, 0.1, clip=None, rng=0) - 0.5
    assert abs(z.mean()) < 1e-3
    assert z.std() == pytest.approx(0.1, rel=0.01)
    assert (np.abs(z) > 0.2).mean() == pytest.approx(0.0455, abs=0.002)   # 2-sigma tails
    assert abs(np.corrcoef(z[:, :392].ravel(), z[:, 392:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]) < 0.01
    z64 = gaussian_noise(X.astype(np.float64), 0.1, clip=None, rng=0) - 0.5
    assert z64.std() == pytest.approx(0.1, rel=0.01)


def test_noise_clip_and_zero_std():
    X = _images(100)
    out = gaussian_noise(X, 0.5, rng=0)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out == 0).any() and (out == 1).any()
    np.testing.assert_array_equal(gaussian_noise(X, 0.0, rng=0), X)
    clipped = gaussian_noise(X, 0.0, clip=(0.2, 0.4), rng=0)
    np.testing.assert_array_equal(clipped, np.clip(X, 0.2, 0.4))


# ------------------------------------------------------------------ backends
@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fill", [0.0, 0.2])
def test_numba_kernels_equal_the_reference(dtype, fill):
    X = np.random.default_rng(1).random((257, 13, 11)).astype(dtype)
    for transforms in ([RandomShift(4, fill=fill)], [RandomRotation(30, fill=fill, resolution=2.5)],
                       [RandomShift(2, fill=fill), RandomRotation(12, fill=fill), GaussianNoise(0.1)]):
        ref = Augmenter(transforms, seed=3, backend="reference", batch_size=100)(X)
        fast = Augmenter(transforms, seed=3, backend="numba", batch_size=64)(X)
        np.testing.assert_array_equal(fast, ref)
    angles = np.random.default_rng(2).uniform(-180, 180, len(X))
    np.testing.assert_array_equal(rotate(X, angles, fill=fill, backend="numba"),
                                  rotate(X, angles, fill=fill, backend="reference"))
    np.testing.assert_array_equal(shift(X, 3, -12, fill=fill, backend="numba"),
                                  shift(X, 3, -12, fill=fill, backend="reference"))


def test_non_contiguous_input(backend):
    X = _images(40)
    view = X[::2]                      # rows not adjacent in memory
    np.testing.assert_array_equal(random_shift(view, 2, rng=0, backend=backend),
                                  random_shift(view.copy(), 2, rng=0, backend=backend))
    F = np.asfortranarray(X.reshape(40, 28, 28))
    np.testing.assert_array_equal(rotate(F, 7.0, backend=backend), rotate(X, 7.0).reshape(40, 28, 28))


def test_backend_selection(monkeypatch):
    assert get_kernels("reference").NAME == "reference"
    monkeypatch.setenv("FASTNN_BACKEND", "reference")
    assert get_kernels().NAME == "reference"
    assert Augmenter([RandomShift(1)]).kernels.NAME == "reference"
    monkeypatch.setenv("FASTNN_BACKEND", "cython")
    assert get_kernels().NAME == ("numba" if "numba" in BACKENDS else "reference")
    with pytest.raises(ValueError, match="backend"):
        get_kernels("cuda")
    if "numba" not in BACKENDS:  # pragma: no cover
        with pytest.raises(BackendUnavailableError):
            get_kernels("numba")


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("X, error, match", [
    (np.zeros(784, np.float32), ValueError, "must be"),
    (np.zeros((2, 28, 28, 1, 1), np.float32), ValueError, "must be"),
    (np.zeros((2, 28, 28, 3), np.float32), ValueError, "3 channels"),  # (n, H, W, 1) is fine (issue 11)
    (np.zeros((2, 780), np.float32), ValueError, "not a square"),
    (np.zeros((2, 784), np.uint8), TypeError, "floating-point"),
    (np.zeros((2, 784), np.int64), TypeError, "scale_to_unit"),
    (np.array([["a"] * 4]), TypeError, "floating-point"),
    ("images", TypeError, "array of images"),
])
def test_bad_images_are_rejected(X, error, match):
    for fn in (lambda X: random_shift(X, 1, rng=0), lambda X: random_rotation(X, 5, rng=0),
               lambda X: gaussian_noise(X, 0.1, rng=0), lambda X: rotate(X, 5.0)):
        with pytest.raises(error, match=match):
            fn(X)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_rejected(value):
    X = _images(10)
    X[7, 100] = value
    kind = "NaN" if np.isnan(value) else "Inf"
    for aug in (Augmenter([RandomShift(1)], seed=0, batch_size=4), Augmenter([GaussianNoise(0.1)], seed=0)):
        with pytest.raises(ValueError, match=f"{kind} .*image 7, pixel 100"):
            aug(X)
    with pytest.raises(ValueError, match=kind):
        shift(X, 1, 1)


def test_bad_image_shape():
    X = _images(2)
    for bad in [(28,), (28, 28, 1), (0, 784), (-28, -28), "28x28", (28.5, 28)]:
        with pytest.raises(ValueError, match="image_shape"):
            random_shift(X, 1, image_shape=bad, rng=0)
    with pytest.raises(ValueError, match="features but image_shape"):
        random_shift(X, 1, image_shape=(27, 28), rng=0)
    with pytest.raises(ValueError, match="images of shape"):
        random_shift(X.reshape(2, 28, 28), 1, image_shape=(14, 56), rng=0)


@pytest.mark.parametrize("make, match", [
    (lambda: RandomShift(-1), "max_shift"),
    (lambda: RandomShift(1.5), "max_shift"),
    (lambda: RandomShift(True), "max_shift"),
    (lambda: RandomShift(1, fill=np.nan), "fill"),
    (lambda: RandomRotation(-1), "max_degrees"),
    (lambda: RandomRotation(np.nan), "max_degrees"),
    (lambda: RandomRotation(181), "max_degrees"),
    (lambda: RandomRotation(10, resolution=0), "resolution"),
    (lambda: GaussianNoise(-0.1), "std"),
    (lambda: GaussianNoise(np.inf), "std"),
    (lambda: GaussianNoise(0.1, clip=(1, 0)), "clip"),
    (lambda: GaussianNoise(0.1, clip=(0, 1, 2)), "clip"),
    (lambda: GaussianNoise(0.1, clip=(0, np.nan)), "clip"),
    (lambda: Augmenter([RandomShift(1), "noise"]), "Transform"),
    (lambda: Augmenter([RandomShift(1)], seed="x"), "seed"),
    (lambda: Augmenter([RandomShift(1)], batch_size=0), "batch_size"),
])
def test_bad_parameters_are_rejected(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_shift_larger_than_the_image_and_bad_out():
    X = _images(4, shape=(8, 8))
    with pytest.raises(ValueError, match="out of the frame"):
        random_shift(X, 8, rng=0)
    with pytest.raises(ValueError, match="shape and dtype"):
        random_shift(X, 1, rng=0, out=np.empty((4, 64), np.float64))
    with pytest.raises(ValueError, match="shape and dtype"):
        random_shift(X, 1, rng=0, out=np.empty((3, 64), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        random_shift(X[1:], 1, rng=0, out=X[:-1])
    with pytest.raises(ValueError, match="C-contiguous"):
        random_shift(X[:, :32], 1, image_shape=(4, 8), rng=0, out=np.empty((4, 64), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="dy"):
        shift(X, 0.5, 0)
    with pytest.raises(ValueError, match="dx"):
        shift(X, 0, [1, 2])
    with pytest.raises(ValueError, match="degrees"):
        rotate(X, np.nan)


# ------------------------------------------------------------------ training with augmentation
def test_augment_epochs_reuses_one_buffer_and_draws_fresh_data():
    X, y = _images(30), np.arange(30) % 3
    seen = []
    for Xe, ye in augment_epochs(X, y, Augmenter([RandomShift(2)], seed=0), epochs=3):
        assert ye is y
        seen.append((Xe, Xe.copy()))
    assert len(seen) == 3
    assert seen[0][0] is seen[1][0] is seen[2][0]
    assert not np.array_equal(seen[0][1], seen[1][1])
    with pytest.raises(ValueError, match="len"):
        next(augment_epochs(X, y[:-1], Augmenter([]), 1))
    with pytest.raises(ValueError, match="epochs"):
        next(augment_epochs(X, y, Augmenter([]), -1))
    with pytest.raises(TypeError, match="callable"):
        next(augment_epochs(X, y, None, 1))


def test_training_loop_with_augmentation_on_digits():
    """The documented loop: one fit call per epoch on fresh augmented data keeps optimizer state and epochs."""
    import fastnn as fnn
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    (X_train, y_train), (X_test, y_test) = fnn.data.train_test_split(X, y, 0.25, seed=0, stratify=True)
    net = fnn.Network([fnn.Dense(64, 64, "relu"), fnn.Dense(64, 10)], seed=0)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(3e-3), batch_size=32, seed=0, n_threads=1, verbose=0)
    augment = Augmenter([RandomRotation(10), GaussianNoise(0.05)], seed=0)  # 8x8: a 1-pixel shift is too much
    for X_epoch, y_epoch in augment_epochs(X_train, y_train, augment, epochs=8):
        trainer.fit(X_epoch, y_epoch, epochs=1)
    assert trainer.epoch == 8
    assert trainer.optimizer.iterations == 8 * int(np.ceil(len(X_train) / 32))
    assert trainer.evaluate(X_test, y_test)["accuracy"] > 0.93


def test_public_names():
    assert set(A.__all__) <= set(dir(A))
    assert repr(Augmenter([RandomShift(2), RandomRotation(10), GaussianNoise(0.05)])) == \
        "Augmenter([RandomShift(2), RandomRotation(10), GaussianNoise(0.05, clip=(0.0, 1.0))])"


# --- image-shaped input for convolutional networks (issue 11)
def test_nhwc_one_channel_images_augment_like_flat_ones():
    X = _images(12)
    X4 = X.reshape(12, 28, 28, 1)
    aug = lambda: Augmenter([RandomShift(2), RandomRotation(8), GaussianNoise(0.05)], seed=3)  # noqa: E731
    out4 = aug()(X4)
    assert out4.shape == X4.shape and out4.dtype == X4.dtype
    np.testing.assert_array_equal(out4.reshape(12, -1), aug()(X))
    with pytest.raises(ValueError, match="3 channels"):
        aug()(np.zeros((2, 28, 28, 3), np.float32))


def test_fit_with_augmentation_trains_a_cnn():
    import fastnn as fnn

    X, y = _images(48), np.arange(48) % 3
    net = fnn.Network([fnn.Conv2D(2, 3), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(3)], input_shape=(28, 28, 1),
                      seed=0)
    tr = fnn.Trainer(net, batch_size=16, verbose=0, seed=0)
    h = tr.fit(X.reshape(48, 28, 28, 1), y, epochs=2, augment=Augmenter([RandomShift(1)], seed=0))
    assert len(h["loss"]) == 2 and all(np.isfinite(h["loss"])) and h["augment_time"][0] >= 0
