"""Learning-rate range test: leaves everything as it was, records an exponential ramp, suggests a sane rate."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.data.synthetic import moons, xor
from fastnn.lr_finder import LRFinderResult, lr_find, zero_lag_smooth


@pytest.fixture(scope="module")
def data():
    return moons(512, noise=0.1, seed=0)


def small_net(seed=0, dropout=False):
    layers = [fnn.Dense(2, 16, "relu")] + ([fnn.Dropout(0.2)] if dropout else []) + [fnn.Dense(16, 2)]
    return fnn.Network(layers, seed=seed, backend="reference")


def test_leaves_network_and_optimizer_unchanged(data):
    X, y = data
    net = small_net(dropout=True)
    before = net.params.copy()
    rng_state = net.layers[1].rng.bit_generator.state
    opt = fnn.Adam(3e-3, beta1=0.8)
    result = lr_find(net, X, y, optimizer=opt, num_steps=30)
    np.testing.assert_array_equal(net.params, before)
    assert net.layers[1].rng.bit_generator.state == rng_state
    assert net.task is None
    assert opt.lr == 3e-3 and opt.iterations == 0 and opt.state is None  # the instance was copied, not used
    assert len(result.lrs) == 30 and result.losses.shape == (30,)


def test_ramp_and_recorded_losses(data):
    X, y = data
    r = lr_find(small_net(), X, y, start_lr=1e-5, end_lr=1e-1, num_steps=50, batch_size=32)
    assert r.lrs[0] == pytest.approx(1e-5) and r.lrs[-1] == pytest.approx(1e-1)
    np.testing.assert_allclose(np.diff(np.log(r.lrs)), np.log(1e4) / 49)
    assert not r.diverged and np.isfinite(r.losses).all()
    # the first batch loss is the untrained network's loss on that batch: about ln 2 here
    assert 0.3 < r.losses[0] < 1.5
    assert r.ema_losses[0] == r.losses[0] and r.smoothed_losses.shape == r.losses.shape


@pytest.mark.parametrize("optimizer,lo,hi", [("adam", 1e-4, 0.5), ("sgd", 1e-3, 3.0)])
def test_suggestion_in_sane_range(data, optimizer, lo, hi):
    X, y = data
    r = lr_find(small_net(), X, y, optimizer=optimizer)
    assert lo <= r.suggestion <= hi, r
    assert r.lr_min > 0 and r.suggestion <= r.lr_min * 100
    # the suggestion trains well: a few epochs at it reach a good accuracy
    net = small_net()
    opt = fnn.Adam(r.suggestion) if optimizer == "adam" else fnn.SGD(r.suggestion)
    hist = fnn.Trainer(net, optimizer=opt, batch_size=64, verbose=0, seed=0).fit(X, y, epochs=15)
    assert hist["accuracy"][-1] > 0.85, (r, hist["accuracy"])


def test_mnist_subset_suggestion(mnist_dir):
    from fastnn.data.idx import read_idx

    def one(pattern):  # the 10k test files: a quarter of a second to read
        return read_idx(sorted(mnist_dir.rglob(pattern))[0])

    X = one("t10k-images*").reshape(-1, 784).astype(np.float32) / 255
    y = one("t10k-labels*")
    net = fnn.Network([fnn.Dense(784, 32, "relu"), fnn.Dense(32, 10)], seed=0, backend="reference")
    r = lr_find(net, X, y, num_steps=100)
    assert 1e-4 <= r.suggestion <= 3e-2, r
    r = lr_find(net, X, y, optimizer="sgd", num_steps=100)
    assert 1e-3 <= r.suggestion <= 1.0, r


def test_stops_when_the_loss_blows_up(data):
    X, y = data
    net = small_net()
    before = net.params.copy()
    r = lr_find(net, X, y, optimizer=fnn.SGD(0.1, momentum=0.9), end_lr=1e6, num_steps=200)
    assert r.diverged and len(r.losses) < 200
    np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(r.suggestion) and r.suggestion < 10


def test_non_finite_loss_counts_as_divergence(data):
    X, y = data
    net = small_net()
    before = net.params.copy()
    with np.errstate(all="ignore"):
        r = lr_find(net, X, y, optimizer="sgd", start_lr=1e3, end_lr=1e30, num_steps=40, diverge_factor=1e300)
    assert r.diverged and len(r.losses) < 40
    np.testing.assert_array_equal(net.params, before)


def test_tiny_dataset_is_repeated():
    X, y = xor()
    r = lr_find(small_net(), X, y, num_steps=30, batch_size=64)  # 4 rows: batch of 4, rows reused
    assert len(r.losses) == 30


@pytest.mark.parametrize("kwargs", [dict(start_lr=1.0, end_lr=0.1), dict(start_lr=0), dict(num_steps=1),
                                    dict(smooth=1.0), dict(diverge_factor=1.0), dict(end_lr=float("inf")),
                                    dict(batch_size=0)])
def test_invalid_arguments(data, kwargs):
    X, y = data
    net = small_net()
    before = net.params.copy()
    with pytest.raises(ValueError):
        lr_find(net, X, y, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_bad_data_raises_before_anything_changes():
    net = small_net()
    with pytest.raises(ValueError):
        lr_find(net, np.zeros((10, 3)), np.zeros(10, int))
    with pytest.raises(ValueError):
        lr_find(net, np.zeros((10, 2)), np.full(10, 5))


def test_suggestion_on_a_synthetic_curve():
    lrs = np.logspace(-6, 1, 200)
    x = np.log10(lrs)
    curve = 2.0 - 1.5 / (1 + np.exp(-(x + 2) * 3)) + np.where(x > -0.5, (x + 0.5) ** 2 * 3, 0)
    noisy = curve + np.random.default_rng(0).normal(0, 0.02, size=curve.shape)
    r = LRFinderResult(lrs, noisy)
    assert 10 ** -2.5 <= r.lr_steep <= 10 ** -1.5  # the sigmoid's steepest point is at 1e-2
    i_min = np.argmin(curve)
    assert r.lr_min == pytest.approx(lrs[i_min] / 10, rel=1.0)
    flat = LRFinderResult(lrs, 1.0 + np.random.default_rng(1).normal(0, 0.01, size=200))
    assert flat.lr_steep is None and flat.suggestion == flat.lr_min  # nothing to read: min / 10
    with pytest.raises(ValueError):
        LRFinderResult(lrs[:5], noisy)


def test_zero_lag_smooth_has_no_lag():
    t = np.linspace(0, 1, 400)
    step = (t > 0.5).astype(float)
    sm = zero_lag_smooth(step, 0.9)
    assert abs(np.argmin(np.abs(sm - 0.5)) - 200) <= 2  # crosses the midpoint where the step is


def test_result_plot(data, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = data
    r = lr_find(small_net(), X, y, num_steps=40)
    fig = r.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_xscale() == "log"
    assert "suggestion" in repr(r)
