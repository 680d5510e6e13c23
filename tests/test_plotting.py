"""Plots render headless (Agg) to real PNG files of plausible size."""
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import fastnn as fnn  # noqa: E402
from fastnn import plotting  # noqa: E402
from fastnn.data.synthetic import moons  # noqa: E402
from fastnn.metrics import confusion_matrix  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_w=200, min_h=200, max_side=3000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert min_w <= w <= max_side and min_h <= h <= max_side, img.shape
    assert img.std() > 0  # not a blank canvas
    return img


@pytest.fixture(scope="module")
def trained():
    X, y = moons(300, noise=0.15, seed=0)
    Xv, yv = moons(100, noise=0.15, seed=1)
    net = fnn.Network([fnn.Dense(2, 16, "relu"), fnn.Dense(16, 2)], seed=0, backend="reference")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(0.03), batch_size=32, verbose=0, seed=0)
    hist = trainer.fit(X, y, epochs=6, validation_data=(Xv, yv))
    return net, hist, X, y, Xv, yv


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_history(trained, tmp_path):
    _, hist, *_ = trained
    fig = plotting.plot_history(hist, path=tmp_path / "h.png")
    img = assert_png(tmp_path / "h.png", min_w=600)
    assert img.shape[1] > img.shape[0]  # panels side by side
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy"]
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["train", "validation"]
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), hist["loss"])
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4, 5, 6])
    assert not plt.fignum_exists(fig.number)  # saved figures are closed


def test_history_plot_method_and_options(trained, tmp_path):
    _, hist, *_ = trained
    fig = hist.plot(tmp_path / "m.png", metrics=["loss"])
    assert_png(tmp_path / "m.png")
    assert len(fig.axes) == 1
    fig = plotting.plot_history(hist.history)  # a dict, no path: stays open for plt.show()
    assert plt.fignum_exists(fig.number)
    d = {"loss": [2.0, 1.0, 0.5], "lr": [0.1, 0.01, 0.001]}
    fig = plotting.plot_history(d)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "lr"] and fig.axes[1].get_yscale() == "log"
    with pytest.raises(ValueError, match="not in the history"):
        plotting.plot_history(hist, metrics=["banana"])
    with pytest.raises(ValueError, match="nothing to plot"):
        plotting.plot_history({})
    with pytest.raises(TypeError):
        plotting.plot_history([1, 2, 3])


def test_plot_confusion_matrix(trained, tmp_path):
    net, _, _, _, Xv, yv = trained
    cm = confusion_matrix(yv, net.predict(Xv))
    fig = plotting.plot_confusion_matrix(cm, class_names=["upper", "lower"], path=tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(str(v) for v in cm.ravel())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["upper", "lower"]
    fig = plotting.plot_confusion_matrix(np.array([[3, 1], [0, 0]]), normalize=True)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.00", "0.00", "0.25", "0.75"]
    for bad in (np.ones((2, 3)), np.array([[1, -1], [0, 1]]), np.zeros((0, 0))):
        with pytest.raises(ValueError):
            plotting.plot_confusion_matrix(bad)
    with pytest.raises(ValueError, match="class names"):
        plotting.plot_confusion_matrix(np.eye(3), class_names=["a", "b"])


def test_plot_decision_boundary(trained, tmp_path):
    net, _, X, y, _, _ = trained
    fig = plotting.plot_decision_boundary(net, X, y, path=tmp_path / "db.png", resolution=80)
    img = assert_png(tmp_path / "db.png")
    # both classes' regions are coloured: the image holds several distinct colours
    assert len(np.unique(img[..., :3].reshape(-1, 3).round(2), axis=0)) > 10
    assert fig.axes[0].get_xlim()[0] < X[:, 0].min()
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_decision_boundary(net, np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="resolution"):
        plotting.plot_decision_boundary(net, X, y, resolution=1)
    with pytest.raises(ValueError, match="len"):
        plotting.plot_decision_boundary(net, X, y[:10])
    wide = fnn.Network([fnn.Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match="2 inputs"):
        plotting.plot_decision_boundary(wide, X, y)


def test_plot_decision_boundary_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2)).astype(np.float32)
    t = (X[:, 0] * X[:, 1]).reshape(-1, 1)
    net = fnn.Network([fnn.Dense(2, 8, "tanh"), fnn.Dense(8, 1)], seed=0, backend="reference")
    fnn.Trainer(net, loss="mse", optimizer=fnn.Adam(0.01), verbose=0, seed=0).fit(X, t, epochs=3)
    fig = plotting.plot_decision_boundary(net, X, t, path=tmp_path / "r.png", resolution=50)
    assert_png(tmp_path / "r.png")
    assert len(fig.axes) == 2  # the map and its colour bar


def test_plot_lr_find(tmp_path):
    from fastnn.lr_finder import LRFinderResult

    lrs = np.logspace(-6, 1, 120)
    losses = 2 - 1.5 / (1 + np.exp(-(np.log10(lrs) + 2) * 3)) + np.where(lrs > 0.3, 50 * (lrs - 0.3), 0)
    result = LRFinderResult(lrs, losses)
    fig = plotting.plot_lr_find(result, path=tmp_path / "lr.png")
    assert_png(tmp_path / "lr.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_ylim()[1] < losses.max()  # the blow-up does not squash the curve
    assert any("suggestion" in line.get_label() for line in ax.get_lines())
    with pytest.raises(ValueError):
        plotting.plot_lr_find(type("R", (), {"lrs": [], "losses": []})())


def test_other_formats(trained, tmp_path):
    _, hist, *_ = trained
    plotting.plot_history(hist, path=tmp_path / "h.svg")
    assert (tmp_path / "h.svg").read_text().lstrip().startswith("<?xml")


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install fastnn\[plot\]"):
        plotting.plot_history({"loss": [1.0]})


def test_headless_detection(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert plotting._headless()
    monkeypatch.setenv("DISPLAY", ":0")
    assert not plotting._headless()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert not plotting._headless()  # an explicit choice is respected
    assert plotting.is_interactive_backend() is False  # Agg in this test session


def test_plot_gradient_flow(tmp_path):
    from fastnn.callbacks import GradientFlow

    X, y = moons(200, noise=0.15, seed=0)
    net = fnn.Network([fnn.Dense(2, 16, "sigmoid"), fnn.Dense(16, 16, "sigmoid"), fnn.Dense(16, 2)], seed=0,
                      backend="reference")
    flow = GradientFlow(warn=False)
    fnn.Trainer(net, optimizer=fnn.Adam(0.01), batch_size=32, verbose=0, seed=0, callbacks=[flow]).fit(X, y, epochs=4)
    fig = plotting.plot_gradient_flow(flow, path=tmp_path / "flow.png")
    assert_png(tmp_path / "flow.png", min_w=600)
    grad_ax, ratio_ax = fig.axes[:2]
    assert grad_ax.get_yscale() == "log" and ratio_ax.get_yscale() == "log"
    assert [line.get_label() for line in grad_ax.get_lines()] == ["0.W", "1.W", "2.W"]  # weights only
    assert len(grad_ax.get_lines()[0].get_xdata()) == 5  # before training + 4 epochs
    fig = plotting.plot_gradient_flow(flow, metrics="update_norm", weights_only=False)
    assert len(fig.axes[0].get_lines()) == 6
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown gradient-flow metric"):
        plotting.plot_gradient_flow(flow, metrics=["loss"])
    with pytest.raises(ValueError, match="no epochs"):
        plotting.plot_gradient_flow(GradientFlow())


def test_plot_gradient_flow_without_matplotlib_gives_install_hint(monkeypatch):
    from fastnn.callbacks import GradientFlow

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    flow = GradientFlow()
    flow.names, flow.weights, flow._epochs = ["0.W"], np.array([True]), [0]
    flow._rows = {k: [[1.0]] for k in flow._rows}
    with pytest.raises(ImportError, match=r"pip install fastnn\[plot\]"):
        plotting.plot_gradient_flow(flow)
