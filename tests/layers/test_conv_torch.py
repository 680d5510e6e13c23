"""Parity with PyTorch (skipped when it is not installed): the same weights in give the same outputs and
gradients out for Conv2d, MaxPool2d, AvgPool2d and BatchNorm2d, NHWC here and NCHW there."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.kernels import available_backends

torch = pytest.importorskip("torch")
F = torch.nn.functional

BACKENDS = available_backends()


def _same_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _run_fastnn(net, X, G, backend):
    A = X.reshape(len(X), -1)
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    dA = G.reshape(len(X), -1)
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return A.reshape(G.shape), dA.reshape(X.shape)


def _pad_nchw(x, H, W, k, s, padding, value=0.0):
    if padding == "valid":
        return x
    top, bottom = _same_pad(H, k[0], s[0])
    left, right = _same_pad(W, k[1], s[1])
    return F.pad(x, (left, right, top, bottom), value=value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel,strides,padding,shape", [
    (3, 1, "valid", (9, 8, 3)), (3, 2, "same", (9, 8, 3)), (5, 1, "same", (7, 7, 2)), (1, 1, "valid", (5, 4, 6)),
    ((2, 3), (2, 1), "same", (6, 9, 2)),
])
def test_conv2d_matches_torch(backend, kernel, strides, padding, shape):
    H, W, C = shape
    layer = fnn.Conv2D(5, kernel, strides=strides, padding=padding, activation="relu")
    net = fnn.Network([layer], input_shape=shape, seed=0, dtype="float64", backend=backend)
    net.params[...] = np.random.default_rng(1).standard_normal(net.n_params) * 0.3
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, H, W, C))
    Ho, Wo, _ = net.output_shape
    G = rng.standard_normal((3, Ho, Wo, 5))
    out, dX = _run_fastnn(net, X, G, backend)

    xt = torch.tensor(X.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(layer.W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bt = torch.tensor(layer.b.copy(), requires_grad=True)
    conv = F.conv2d(_pad_nchw(xt, H, W, layer.kernel_size, layer.strides, padding), wt, bt, stride=layer.strides)
    yt = torch.relu(conv)
    yt.backward(torch.tensor(G.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,strides,padding,shape", [
    (2, None, "valid", (8, 6, 3)), (3, 2, "valid", (9, 7, 2)), (3, 2, "same", (9, 7, 2)), ((2, 3), 1, "valid", (5, 6, 1)),
])
def test_pooling_matches_torch(backend, kind, pool, strides, padding, shape):
    H, W, C = shape
    layer = (fnn.MaxPool2D if kind == "max" else fnn.AveragePooling2D)(pool, strides=strides, padding=padding)
    net = fnn.Network([layer], input_shape=shape, dtype="float64", backend=backend)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, H, W, C))
    G = rng.standard_normal((2, *net.output_shape))
    out, dX = _run_fastnn(net, X, G, backend)
    xt = torch.tensor(X.transpose(0, 3, 1, 2), requires_grad=True)
    k, s = layer.pool_size, layer.strides
    if kind == "max":
        yt = F.max_pool2d(_pad_nchw(xt, H, W, k, s, padding, value=-np.inf), k, s)
    elif padding == "same":  # Keras averages the valid entries only: sum of x over sum of a mask of ones
        ones = torch.ones_like(xt)
        yt = F.avg_pool2d(_pad_nchw(xt, H, W, k, s, padding), k, s) / F.avg_pool2d(
            _pad_nchw(ones, H, W, k, s, padding), k, s)
    else:
        yt = F.avg_pool2d(xt, k, s)
    yt.backward(torch.tensor(G.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_on_feature_maps_matches_batchnorm2d(backend):
    net = fnn.Network([fnn.BatchNorm(momentum=0.9, eps=1e-5)], input_shape=(5, 4, 3), dtype="float64",
                      backend=backend)
    bn = net.layers[0]
    rng = np.random.default_rng(4)
    bn.params["gamma"][...] = rng.random(3) + 0.5
    bn.params["beta"][...] = rng.standard_normal(3)
    X = rng.standard_normal((6, 5, 4, 3)) * 2 + 1
    G = rng.standard_normal(X.shape)
    out, dX = _run_fastnn(net, X, G, backend)
    tbn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        tbn.weight[...] = torch.tensor(bn.gamma)
        tbn.bias[...] = torch.tensor(bn.beta)
    xt = torch.tensor(X.transpose(0, 3, 1, 2), requires_grad=True)
    yt = tbn(xt)
    yt.backward(torch.tensor(G.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(bn.grads["gamma"], tbn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean, tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), rtol=1e-12)


def test_training_matches_torch_for_a_few_sgd_steps():
    """The example architecture in small: same weights, same batches, SGD + momentum -> same weights."""
    torch.manual_seed(0)
    net = fnn.Network([fnn.Conv2D(4, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Conv2D(6, 3, activation="relu"),
                       fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(8, activation="relu"), fnn.Dense(3)],
                      input_shape=(14, 14, 1), seed=0, dtype="float64")
    c1, _, c2, _, _, d1, d2 = net.layers
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(24, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for conv, tconv in ((c1, model[0]), (c2, model[3])):
            tconv.weight[...] = torch.tensor(conv.W.transpose(3, 2, 0, 1))
            tconv.bias[...] = torch.tensor(conv.b)
        # torch flattens NCHW, fastnn NHWC: permute the first Dense layer's rows to match
        rows = np.arange(24).reshape(6, 2, 2).transpose(1, 2, 0).reshape(-1)  # NHWC position -> NCHW index
        W1 = np.empty((24, 8))
        W1[rows] = d1.W
        model[7].weight[...] = torch.tensor(W1.T)
        model[7].bias[...] = torch.tensor(d1.b)
        model[9].weight[...] = torch.tensor(d2.W.T)
        model[9].bias[...] = torch.tensor(d2.b)
    rng = np.random.default_rng(0)
    X = rng.random((32, 14, 14, 1))
    y = rng.integers(0, 3, 32)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=8, verbose=0)
    tr.fit(X, y, epochs=1, shuffle=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for lo in range(0, 32, 8):
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.tensor(X[lo:lo + 8].transpose(0, 3, 1, 2))), torch.tensor(y[lo:lo + 8]))
        loss.backward()
        opt.step()
    np.testing.assert_allclose(c2.W, model[3].weight.detach().numpy().transpose(2, 3, 1, 0), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(d2.W, model[9].weight.detach().numpy().T, rtol=1e-8, atol=1e-10)
