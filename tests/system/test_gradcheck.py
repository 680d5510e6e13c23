"""float64 central-difference gradient checks: Dense with every activation, every loss, several shapes."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import activations, losses
from fastnn.kernels import available_backends, get_backend
from naive import numeric_grad  # tests/naive.py

BACKENDS = available_backends()
SHAPES = [(1, 3, 4), (5, 4, 3), (17, 6, 5)]  # (batch, n_in, n_out)


def loss_and_grads(net, loss, X, y, backend):
    """Mean loss and the flat parameter gradient through the per-layer path."""
    kern = get_backend(backend)
    fused = loss.fused_activation
    last = net.layers[-1]
    logits = fused is not None and last.activation == fused
    A = X
    for i, layer in enumerate(net.layers):
        A = layer.forward(A, training=True, backend=backend, logits=logits and i == len(net.layers) - 1)
    target = loss.prepare_targets(y, net.n_outputs, net.dtype)
    dout = np.empty_like(A)
    value = kern.loss_forward_backward(loss.code, A, target, 1.0 / len(X), dout) / len(X)
    dA = dout
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), dA.copy()


def _targets(loss_name, rng, n, k):
    if loss_name == "cross_entropy":
        return rng.integers(0, k, n)
    if loss_name == "binary_cross_entropy":
        return (rng.random((n, k)) > 0.5).astype(float)
    return rng.standard_normal((n, k))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", activations.NAMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_activation_gradients(backend, act, shape):
    """Two Dense layers, the first with ``act``, MSE on top: params and input gradients."""
    n, n_in, n_out = shape
    rng = np.random.default_rng(activations.NAMES.index(act) * 100 + n)
    net = fnn.Network([fnn.Dense(n_in, 6, act, alpha=0.1 if act in ("leaky_relu", "elu") else None),
                       fnn.Dense(6, n_out)], seed=1, dtype="float64", backend=backend)
    X = rng.standard_normal((n, n_in))
    # Keep pre-activations away from the ReLU kinks, where finite differences are meaningless.
    if act in ("relu", "leaky_relu", "elu"):
        net.layers[0].params["b"][...] = np.where(rng.random(6) > 0.5, 0.37, -0.41)
    y = _targets("mse", rng, n, n_out)
    loss = losses.get("mse")
    _, analytic, dX = loss_and_grads(net, loss, X, y, backend)
    numeric = numeric_grad(lambda: loss_and_grads(net, loss, X, y, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    numeric_dX = numeric_grad(lambda: loss_and_grads(net, loss, X, y, backend)[0], X)
    np.testing.assert_allclose(dX, numeric_dX, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss_name,last_act", [
    ("cross_entropy", None), ("cross_entropy", "softmax"), ("binary_cross_entropy", None),
    ("binary_cross_entropy", "sigmoid"), ("mse", None), ("mse", "softmax"), ("mse", "tanh"),
])
@pytest.mark.parametrize("shape", SHAPES)
def test_loss_gradients(backend, loss_name, last_act, shape):
    n, n_in, n_out = shape
    rng = np.random.default_rng(n * n_out)
    net = fnn.Network([fnn.Dense(n_in, 5, "tanh"), fnn.Dense(5, n_out, last_act)], seed=2, dtype="float64",
                      backend=backend)
    if loss_name == "cross_entropy" and n_out < 2:
        pytest.skip("cross-entropy needs two classes")
    X = rng.standard_normal((n, n_in))
    y = _targets(loss_name, rng, n, n_out)
    loss = losses.get(loss_name)
    value, analytic, _ = loss_and_grads(net, loss, X, y, backend)
    assert np.isfinite(value)
    numeric = numeric_grad(lambda: loss_and_grads(net, loss, X, y, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_hot_cross_entropy_gradient(backend):
    rng = np.random.default_rng(0)
    net = fnn.Network([fnn.Dense(3, 4)], seed=0, dtype="float64", backend=backend)
    X = rng.standard_normal((6, 3))
    y = rng.dirichlet(np.ones(4), size=6)  # soft targets
    loss = losses.get("cross_entropy")
    _, analytic, _ = loss_and_grads(net, loss, X, y, backend)
    numeric = numeric_grad(lambda: loss_and_grads(net, loss, X, y, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.05), (0.02, 0.03)])
def test_l1_l2_penalty_gradients(backend, l1, l2):
    rng = np.random.default_rng(5)
    net = fnn.Network([fnn.Dense(4, 5, "tanh", l1=l1, l2=l2), fnn.Dense(5, 3, l2=l2)], seed=3, dtype="float64",
                      backend=backend)
    X = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)
    loss = losses.get("cross_entropy")

    def total():
        value, grads, _ = loss_and_grads(net, loss, X, y, backend)
        for layer in net.layers:
            layer.add_penalty_gradient()
        return value + sum(layer.penalty() for layer in net.layers), net.grads.copy()

    _, analytic = total()
    numeric = numeric_grad(lambda: total()[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
