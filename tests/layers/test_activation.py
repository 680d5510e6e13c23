"""The Activation layer: float64 gradient checks of every activation on flat rows and feature maps,
softmax over the channels, config round trip, bad input."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.activations import NAMES
from fastnn.kernels import available_backends
from naive import numeric_grad  # tests/naive.py

BACKENDS = available_backends()


def _loss_and_grads(net, X, G, backend):
    """sum(net(X) * G): value, flat parameter gradient, input gradient (the layers' own forward/backward)."""
    A = X.reshape(len(X), -1)
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    dA = G.copy()
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return float((A * G).sum()), net.grads.copy(), dA.reshape(X.shape).copy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "relu"] + ["relu"])
@pytest.mark.parametrize("shape", [(5,), (3, 2, 4)], ids=["flat", "feature-map"])
def test_activation_gradients(backend, name, shape):
    rng = np.random.default_rng(0)
    layers = [fnn.Conv2D(4, 1) if len(shape) == 3 else fnn.Dense(4), fnn.Activation(name), fnn.Flatten(),
              fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=shape, seed=0, dtype="float64", backend=backend)
    net.params[...] = rng.standard_normal(net.n_params) * 0.5
    X = rng.standard_normal((3, *shape))
    G = rng.standard_normal((3, 3))
    _, analytic, dX = _loss_and_grads(net, X, G, backend)
    f = lambda: _loss_and_grads(net, X, G, backend)[0]  # noqa: E731
    np.testing.assert_allclose(analytic, numeric_grad(f, net.params), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dX, numeric_grad(f, X), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_normalises_the_channels_of_a_feature_map(backend):
    net = fnn.Network([fnn.Activation("softmax")], input_shape=(2, 3, 4), dtype="float64", backend=backend)
    X = np.random.default_rng(1).standard_normal((5, 2, 3, 4))
    out = net.forward(X).reshape(X.shape)
    e = np.exp(X - X.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)


def test_relu_values_config_and_bad_input():
    layer = fnn.Activation("leaky_relu", alpha=0.1)
    net = fnn.Network([fnn.Dense(3, 4), layer], seed=0, dtype="float64")
    X = np.random.default_rng(2).standard_normal((6, 3))
    Z = X @ net.layers[0].W + net.layers[0].b
    np.testing.assert_allclose(net.forward(X), np.where(Z > 0, Z, 0.1 * Z), rtol=1e-12)
    assert layer.get_config() == {"activation": "leaky_relu", "alpha": 0.1}
    assert fnn.Activation.from_config(layer.get_config()).alpha == 0.1
    assert fnn.Activation("relu").get_config() == {"activation": "relu"}
    with pytest.raises(ValueError, match="activation"):
        fnn.Activation("nope")
    with pytest.raises(ValueError, match=r"Activation expects input of shape \(n, 4\)"):
        layer.forward(np.zeros((2, 5)))


def test_a_network_with_activation_layers_saves_and_loads(tmp_path):
    from fastnn.io import load_network, save_network

    net = fnn.Network([fnn.Conv2D(2, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"), fnn.Flatten(),
                       fnn.Dense(2)], input_shape=(5, 5, 1), seed=0)
    path = tmp_path / "m.fnn"
    save_network(net, path)
    back = load_network(path)
    X = np.random.default_rng(3).standard_normal((4, 5, 5, 1)).astype(np.float32)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
