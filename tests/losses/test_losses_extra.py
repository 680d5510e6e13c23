"""Extra losses: closed forms / scikit-learn, float64 gradient checks, numba vs reference, weighted CE."""
import inspect

import numpy as np
import pytest

import fastnn as fnn
from fastnn import losses
from fastnn import losses_extra as LE
from fastnn.kernels import available_backends, codes, get_backend
from fastnn.kernels import losses_extra as K
from naive import numeric_grad  # tests/naive.py

BACKENDS = available_backends()
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}
SHAPES = [(1, 2), (7, 4), (33, 10)]

needs_numba = pytest.mark.skipif(K.NUMBA is None, reason="numba not installed")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# Backend parity of the extra-loss kernels: tests/kernels/test_conformance.py (check_op).


@needs_numba
def test_kernel_selection_and_nan_propagation():
    assert K.kernels_for("reference") is K.REFERENCE
    assert K.kernels_for("numba") is K.NUMBA
    out = np.array([[np.nan, 1.0]])
    t = np.zeros((1, 2))
    for kern in [K.kernels_for(name) for name in available_backends()]:
        for name, args in (("mae", (out, t)), ("huber", (out, t, 1.0)), ("focal", (out, np.zeros((1, 1)), 2.0,
                                                                                     np.ones(2)))):
            dout = np.empty_like(out)
            assert np.isnan(getattr(kern, name + "_forward_backward")(*args, 1.0, dout)), (kern.NAME, name)


# --------------------------------------------------------------------------- values vs closed forms
@pytest.mark.parametrize("backend", BACKENDS)
def test_mae_and_huber_values(backend):
    from scipy.special import huber as scipy_huber
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(0)
    out = rng.standard_normal((20, 3)) * 2
    y = rng.standard_normal((20, 3))
    mae = LE.MeanAbsoluteError()
    assert mae(out, y, backend=backend) == pytest.approx(mean_absolute_error(y, out), rel=1e-12)
    np.testing.assert_allclose(mae.gradient(out, y, backend=backend), np.sign(out - y) / out.size, rtol=1e-12)
    for delta in (0.5, 1.0, 2.0):
        h = LE.Huber(delta)
        expected = scipy_huber(delta, out - y).mean()
        assert h(out, y, backend=backend) == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(h.gradient(out, y, backend=backend), np.clip(out - y, -delta, delta) / out.size,
                                   rtol=1e-12)
    # small errors: Huber is half the MSE; 1-D targets for one output
    small = out[:, :1] * 1e-3
    assert LE.Huber(1.0)(small, np.zeros(20), backend=backend) == \
        pytest.approx(0.5 * losses.get("mse")(small, np.zeros(20)), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_focal_values(backend):
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    z = rng.standard_normal((30, 4)) * 2
    y = rng.integers(0, 4, 30)
    p = _softmax(z)
    py = p[np.arange(30), y]
    alpha = np.array([0.25, 1.0, 2.0, 0.5])
    for gamma in (0.0, 0.5, 2.0, 5.0):
        expected = np.mean(-alpha[y] * (1 - py) ** gamma * np.log(py))
        assert LE.FocalLoss(gamma, alpha)(z, y, backend=backend) == pytest.approx(expected, rel=1e-12)
    # gamma = 0, no alpha: the cross-entropy, gradient included
    focal0 = LE.FocalLoss(gamma=0.0)
    ce = losses.get("cross_entropy")
    assert focal0(z, y, backend=backend) == pytest.approx(log_loss(y, p, labels=range(4)), rel=1e-10)
    np.testing.assert_allclose(focal0.gradient(z, y, backend=backend), ce.gradient(z, y), rtol=1e-10, atol=1e-15)
    # a scalar alpha is a factor; one-hot rows equal labels
    assert LE.FocalLoss(2.0, 0.25)(z, y, backend=backend) == \
        pytest.approx(0.25 * LE.FocalLoss(2.0)(z, y, backend=backend), rel=1e-12)
    assert LE.FocalLoss(2.0, alpha)(z, np.eye(4)[y], backend=backend) == \
        pytest.approx(LE.FocalLoss(2.0, alpha)(z, y, backend=backend), rel=1e-12)
    # focusing: confident right answers cost less than under cross-entropy
    assert LE.FocalLoss(2.0)(z, y, backend=backend) < ce(z, y)


def test_focal_saturated_probabilities_are_finite():
    z = np.array([[80.0, 0.0, -80.0], [0.0, 0.0, 0.0]])
    for backend in BACKENDS:
        for gamma in (0.0, 0.5, 2.0):
            loss = LE.FocalLoss(gamma)
            assert np.isfinite(loss(z, [0, 1], backend=backend))
            assert np.isfinite(loss.gradient(z, [0, 1], backend=backend)).all()
            assert np.isfinite(loss.gradient(z, [2, 1], backend=backend)).all()


# --------------------------------------------------------------------------- gradient checks
def loss_and_grads(net, loss, X, target, backend):
    """Mean loss and flat parameter gradient; generic losses through forward_backward, others fused kernels."""
    A = X
    logits = loss.fused_activation is not None and net.layers[-1].activation == loss.fused_activation
    for i, layer in enumerate(net.layers):
        A = layer.forward(A, training=True, backend=backend, logits=logits and i == len(net.layers) - 1)
    dout = np.empty_like(A)
    if loss.code is None:
        value = loss.forward_backward(A, target, 1.0 / len(X), dout, backend=backend) / len(X)
    else:
        value = get_backend(backend).loss_forward_backward(loss.code, A, target, 1.0 / len(X), dout) / len(X)
    dA = dout
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), dA.copy()


GRAD_SHAPES = [(1, 3, 4), (5, 4, 3), (17, 6, 5)]  # (batch, n_in, n_out)
GRAD_LOSSES = ["mae", "huber", "focal", "focal_alpha", "focal_soft", "label_smoothing", "class_weighted"]


def _make_loss(name, n_out):
    return {
        "mae": lambda: LE.MeanAbsoluteError(),
        "huber": lambda: LE.Huber(0.5),
        "focal": lambda: LE.FocalLoss(2.0),
        "focal_alpha": lambda: LE.FocalLoss(1.5, np.linspace(0.5, 2.0, n_out)),
        "focal_soft": lambda: LE.FocalLoss(0.7),
        "label_smoothing": lambda: LE.LabelSmoothingCrossEntropy(0.2),
        "class_weighted": lambda: LE.WeightedCrossEntropy(class_weight=np.linspace(0.2, 3.0, n_out),
                                                          label_smoothing=0.1),
    }[name]()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", GRAD_LOSSES)
@pytest.mark.parametrize("shape", GRAD_SHAPES)
def test_gradients(backend, name, shape):
    n, n_in, n_out = shape
    rng = np.random.default_rng(n * 7 + n_out)
    loss = _make_loss(name, n_out)
    net = fnn.Network([fnn.Dense(n_in, 5, "tanh"), fnn.Dense(5, n_out)], seed=2, dtype="float64", backend=backend)
    X = rng.standard_normal((n, n_in))
    if name in ("mae", "huber"):
        y = rng.standard_normal((n, n_out))
    elif name == "focal_soft":
        y = rng.dirichlet(np.ones(n_out), n) * rng.uniform(0.5, 2, (n, 1))
    else:
        y = rng.integers(0, n_out, n)
    target = loss.prepare_targets(y, n_out, net.dtype)
    value, analytic, dX = loss_and_grads(net, loss, X, target, backend)
    assert np.isfinite(value)
    f = lambda: loss_and_grads(net, loss, X, target, backend)[0]  # noqa: E731
    np.testing.assert_allclose(analytic, numeric_grad(f, net.params), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dX, numeric_grad(f, X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", GRAD_SHAPES)
def test_sample_weighted_cross_entropy_gradient(backend, shape):
    """Weighted one-hot rows through the fused softmax-CE kernel: the exact gradient of sum w_i CE_i / n."""
    n, n_in, n_out = shape
    rng = np.random.default_rng(n)
    net = fnn.Network([fnn.Dense(n_in, 5, "tanh"), fnn.Dense(5, n_out)], seed=3, dtype="float64", backend=backend)
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, n_out, n)
    w = rng.uniform(0, 3, n)
    loss = losses.get("cross_entropy")
    target = loss.prepare_targets(LE.soft_targets(y, n_out, sample_weight=w, label_smoothing=0.05, dtype=np.float64),
                                  n_out, net.dtype)
    value, analytic, _ = loss_and_grads(net, loss, X, target, backend)
    f = lambda: loss_and_grads(net, loss, X, target, backend)[0]  # noqa: E731
    np.testing.assert_allclose(analytic, numeric_grad(f, net.params), rtol=1e-5, atol=1e-7)
    # and the value is the manually weighted smoothed cross-entropy
    logits = net.forward(X, logits=True)
    logp = np.log(_softmax(logits))
    per = -(0.95 * logp[np.arange(n), y] + 0.05 * logp.mean(axis=1))
    assert value == pytest.approx(np.sum(w * per) / n, rel=1e-10)


# --------------------------------------------------------------------------- weighted / smoothed cross-entropy
def test_weighted_cross_entropy_equals_manual_weighting():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(4)
    z = rng.standard_normal((40, 3))
    y = rng.integers(0, 3, 40)
    y[:3] = [0, 1, 2]
    cw = np.array([0.5, 2.0, 1.25])
    logp = np.log(_softmax(z))
    ce_i = -logp[np.arange(40), y]
    onehot = np.eye(3)[y]
    weighted = LE.WeightedCrossEntropy(class_weight=cw)
    assert weighted(z, y) == pytest.approx(np.mean(cw[y] * ce_i), rel=1e-12)
    np.testing.assert_allclose(weighted.gradient(z, y), cw[y, None] * (_softmax(z) - onehot) / 40, rtol=1e-10,
                               atol=1e-15)
    # dict form, and the same through soft_targets + the plain loss
    assert LE.WeightedCrossEntropy(class_weight={1: 2.0, 0: 0.5, 2: 1.25})(z, y) == pytest.approx(weighted(z, y))
    plain = losses.get("cross_entropy")
    assert plain(z, LE.soft_targets(y, 3, class_weight=cw, dtype=np.float64)) == pytest.approx(weighted(z, y))
    # sample weights: sum w l / n, which is sklearn's weighted mean times sum(w) / n
    w = rng.uniform(0, 2, 40)
    ours = plain(z, LE.soft_targets(y, 3, sample_weight=w, dtype=np.float64))
    assert ours == pytest.approx(np.sum(w * ce_i) / 40, rel=1e-12)
    assert ours * 40 / w.sum() == pytest.approx(log_loss(y, _softmax(z), sample_weight=w), rel=1e-10)
    # class and sample weights multiply; unit weights change nothing
    both = plain(z, LE.soft_targets(y, 3, class_weight=cw, sample_weight=w, dtype=np.float64))
    assert both == pytest.approx(np.sum(w * cw[y] * ce_i) / 40, rel=1e-12)
    assert LE.WeightedCrossEntropy(class_weight=np.ones(3))(z, y) == pytest.approx(plain(z, y), rel=1e-12)
    assert isinstance(weighted, losses.CrossEntropy) and weighted.code == codes.LOSS_SOFTMAX_CE


def test_label_smoothing_closed_form():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((25, 5))
    y = rng.integers(0, 5, 25)
    logp = np.log(_softmax(z))
    for eps in (0.0, 0.1, 0.3, 1.0):
        # PyTorch's CrossEntropyLoss(label_smoothing=eps): (1-eps) * nll + eps * mean_j(-log p_j)
        expected = np.mean(-(1 - eps) * logp[np.arange(25), y] - eps * logp.mean(axis=1))
        assert LE.LabelSmoothingCrossEntropy(eps)(z, y) == pytest.approx(expected, rel=1e-12)
    t = LE.soft_targets(y, 5, label_smoothing=0.1)
    assert t.dtype == np.float32 and t.shape == (25, 5)
    np.testing.assert_allclose(t.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(t.max(axis=1), 0.92, rtol=1e-6)
    assert (t.argmax(axis=1) == y).all()
    # soft rows keep their mass: (1-eps) t + eps * sum(t) / k
    rows = rng.dirichlet(np.ones(5), 25) * 2
    np.testing.assert_allclose(LE.soft_targets(rows, 5, label_smoothing=0.5, dtype=np.float64),
                               0.5 * rows + 0.5 * rows.sum(axis=1, keepdims=True) / 5, rtol=1e-12)


def test_soft_row_class_weight_is_the_mean_weight():
    rows = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 2.0]])
    t = LE.soft_targets(rows, 3, class_weight=[1.0, 3.0, 0.5], dtype=np.float64)
    np.testing.assert_allclose(t, [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_balanced_class_weight_matches_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 0, 1, 2, 2, 1, 0, 0])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(LE.balanced_class_weight(y), expected, rtol=1e-12)
    np.testing.assert_allclose(LE.balanced_class_weight(np.eye(3)[y], 3), expected, rtol=1e-12)
    w = LE.balanced_class_weight(y, 4)  # an absent class: weight 1, the others as if it did not exist
    np.testing.assert_allclose(w, list(expected) + [1.0], rtol=1e-12)
    assert np.mean(w[y]) == pytest.approx(1.0)


def test_smoothed_training_keeps_the_fused_path():
    X, y = fnn.data.synthetic.spiral_data(100, 3, seed=0, shuffle=True)
    net = fnn.Network([fnn.Dense(2, 64, "relu"), fnn.Dense(64, 64, "relu"), fnn.Dense(64, 3)], seed=0)
    trainer = fnn.Trainer(net, LE.WeightedCrossEntropy(class_weight=[1.0, 2.0, 0.5], label_smoothing=0.1),
                          fnn.Adam(0.01), batch_size=32, seed=0, verbose=0)
    trainer.fit(X, y, epochs=60)
    assert trainer.last_plan["path"] == "fused"
    assert (net.predict(X) == y).mean() >= 0.8  # plain cross-entropy: 0.87 with this set-up


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("make", [
    lambda: LE.Huber(0), lambda: LE.Huber(-1), lambda: LE.Huber(float("inf")), lambda: LE.Huber(True),
    lambda: LE.FocalLoss(-1), lambda: LE.FocalLoss(float("nan")), lambda: LE.FocalLoss(2, [1, -1]),
    lambda: LE.FocalLoss(2, [[1, 2]]), lambda: LE.LabelSmoothingCrossEntropy(1.5),
    lambda: LE.WeightedCrossEntropy(class_weight=[1, np.nan]), lambda: LE.WeightedCrossEntropy(label_smoothing=-0.1),
])
def test_invalid_hyperparameters(make):
    with pytest.raises(ValueError):
        make()


def test_invalid_targets():
    with pytest.raises(ValueError, match="class weights"):
        LE.FocalLoss(2, [1.0, 2.0]).prepare_targets([0, 1], 3, np.float64)
    with pytest.raises(ValueError, match="labels outside"):
        LE.FocalLoss().prepare_targets([0, 3], 3, np.float64)
    with pytest.raises(ValueError, match="one weight per class"):
        LE.WeightedCrossEntropy(class_weight=[1.0, 2.0]).prepare_targets([0, 1], 3, np.float64)
    with pytest.raises(ValueError, match="class index"):
        LE.soft_targets([0, 1], 3, class_weight={5: 1.0})
    with pytest.raises(ValueError, match="balanced"):
        LE.soft_targets([0, 1], 3, class_weight="balanced")
    with pytest.raises(ValueError, match="sample_weight"):
        LE.soft_targets([0, 1], 3, sample_weight=[1.0])
    with pytest.raises(ValueError, match="sample_weight"):
        LE.soft_targets([0, 1], 3, sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="for huber"):
        LE.Huber().prepare_targets(np.zeros((2, 3)), 2, np.float64)
    with pytest.raises(ValueError, match="NaN"):
        LE.MeanAbsoluteError().prepare_targets([0.0, np.nan], 1, np.float64)


def test_registry_and_generic_protocol():
    for name, cls in LE.REGISTRY.items():
        loss = LE.get(name)
        assert isinstance(loss, cls)
    assert LE.get("cross_entropy").code == codes.LOSS_SOFTMAX_CE
    for loss in (LE.MeanAbsoluteError(), LE.Huber(), LE.FocalLoss()):
        assert loss.code is None and hasattr(loss, "forward_backward") and hasattr(loss, "count_correct")
    assert LE.FocalLoss().is_classification and LE.FocalLoss().fused_activation == "softmax"
    assert not LE.Huber().is_classification
    z = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    assert LE.FocalLoss().count_correct(z, np.array([[0.0], [1.0], [1.0]])) == 2
    assert LE.Huber().count_correct(z, z) == 0


# --------------------------------------------------------------------------- trainer (needs the lead's hook)
def _trainer_runs_generic_losses():
    from fastnn.trainer import Trainer

    return "loss.forward_backward(" in inspect.getsource(Trainer)


@pytest.mark.skipif(not _trainer_runs_generic_losses(), reason="trainer lacks the generic-loss hook (code None)")
@pytest.mark.parametrize("loss", [LE.Huber(), LE.MeanAbsoluteError()], ids=["huber", "mae"])
def test_trainer_fits_regression_with_generic_loss(loss):
    X, y = fnn.data.synthetic.linear_regression(200, 3, noise=0.01, seed=0)[:2]
    net = fnn.Network([fnn.Dense(3, 1)], seed=0, dtype="float64")
    trainer = fnn.Trainer(net, loss, fnn.Adam(0.05), batch_size=16, seed=0, verbose=0)
    history = trainer.fit(X, y, epochs=40)
    assert trainer.last_plan["path"] == "fused"
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert trainer.evaluate(X, y)["loss"] == pytest.approx(loss(net.forward(X), y), rel=1e-6)


@pytest.mark.skipif(not _trainer_runs_generic_losses(), reason="trainer lacks the generic-loss hook (code None)")
def test_trainer_fits_classification_with_focal_loss():
    X, y = fnn.data.synthetic.moons(300, noise=0.1, seed=0)
    net = fnn.Network([fnn.Dense(2, 32, "relu"), fnn.Dense(32, 2)], seed=0)
    trainer = fnn.Trainer(net, LE.FocalLoss(2.0), fnn.Adam(0.02), batch_size=32, seed=0, verbose=0)
    history = trainer.fit(X, y, epochs=30)
    assert trainer.last_plan["path"] == "fused"
    assert history["accuracy"][-1] >= 0.95
    assert trainer.evaluate(X, y)["accuracy"] >= 0.95
