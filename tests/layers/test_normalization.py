"""BatchNorm / LayerNorm: kernel parity per dtype, float64 gradient checks, running statistics, training."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import losses
from fastnn.kernels import available_backends, get_backend
from fastnn.kernels import norm
from fastnn.layers import LAYER_TYPES, BatchNorm, LayerNorm
from naive import numeric_grad  # tests/naive.py

BACKENDS = available_backends()
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-5, np.float64: 1e-12}

needs_numba = pytest.mark.skipif(norm.NUMBA is None, reason="numba not installed")


def close(a, b, dtype, scale=1.0):
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)


# --------------------------------------------------------------------------- kernels
def _bn_run(K, X, gamma, beta, dout, training, need_dX):
    n, k = X.shape
    dt = X.dtype
    rm = np.linspace(-0.5, 0.5, k).astype(dt)
    rv = np.linspace(0.5, 2.0, k).astype(dt)
    Xhat, inv, out = np.empty_like(X), np.empty(k, dt), np.empty_like(X)
    K.batchnorm_forward(X, gamma, beta, 1e-5, training, rm, rv, 0.9, Xhat, inv, out)
    dg, db = np.empty(k, dt), np.empty(k, dt)
    dX = np.empty_like(X) if need_dX else None
    K.batchnorm_backward(dout, Xhat, inv, gamma, dg, db, dX)
    return [out, Xhat, inv, rm, rv, dg, db] + ([dX] if need_dX else [])


def _ln_run(K, X, gamma, beta, dout, need_dX):
    n, k = X.shape
    dt = X.dtype
    Xhat, inv, out = np.empty_like(X), np.empty(n, dt), np.empty_like(X)
    K.layernorm_forward(X, gamma, beta, 1e-5, Xhat, inv, out)
    dg, db = np.empty(k, dt), np.empty(k, dt)
    dX = np.empty_like(X) if need_dX else None
    K.layernorm_backward(dout, Xhat, inv, gamma, dg, db, dX)
    return [out, Xhat, inv, dg, db] + ([dX] if need_dX else [])


def _inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    n, k = shape
    X = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal(k).astype(dtype)
    beta = rng.standard_normal(k).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return X, gamma, beta, dout


# Backend parity of the norm kernels: tests/kernels/test_conformance.py (check_op).


def test_kernel_selection():
    assert norm.kernels_for("reference") is norm.REFERENCE
    if norm.NUMBA is not None:
        assert norm.kernels_for("numba") is norm.NUMBA
    for name in available_backends():  # every backend has its own norm kernels: no fallback
        assert "batchnorm_forward" not in get_backend(name).fallbacks()


def test_batchnorm_reference_closed_form():
    X, gamma, beta, _ = _inputs((6, 4), np.float64, 0)
    out = _bn_run(norm.REFERENCE, X, gamma, beta, np.zeros_like(X), True, True)[0]
    expected = gamma * (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-5) + beta
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    out = _ln_run(norm.REFERENCE, X, gamma, beta, np.zeros_like(X), True)[0]
    mu, var = X.mean(1, keepdims=True), X.var(1, keepdims=True)
    np.testing.assert_allclose(out, gamma * (X - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12)


# --------------------------------------------------------------------------- gradient checks
def loss_and_grads(net, loss, X, y, backend):
    """Mean MSE and the flat parameter gradient / input gradient through the per-layer path."""
    kern = get_backend(backend)
    A = X
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    target = loss.prepare_targets(y, net.n_outputs, net.dtype)
    dout = np.empty_like(A)
    value = kern.loss_forward_backward(loss.code, A, target, 1.0 / len(X), dout) / len(X)
    dA = dout
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), dA.copy()


def _randomise_affine(net, rng):
    for layer in net.layers:
        if isinstance(layer, (BatchNorm, LayerNorm)):
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, layer.n_inputs)
            layer.params["beta"][...] = rng.standard_normal(layer.n_inputs) * 0.3


# (batch, n_in, n_out); batch-1 BatchNorm (constant batch statistics) has its own test below
GRAD_CASES = [(BatchNorm, s) for s in [(2, 3, 4), (5, 4, 3), (17, 6, 5)]] + \
             [(LayerNorm, s) for s in [(1, 3, 4), (2, 3, 4), (5, 4, 3), (17, 6, 5)]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,shape", GRAD_CASES, ids=[f"{c.__name__}-{s}" for c, s in GRAD_CASES])
@pytest.mark.parametrize("first", [False, True], ids=["middle", "first"])
def test_gradients(backend, cls, shape, first):
    """Params and input gradients of a net with the norm layer in the middle / as the first layer."""
    n, n_in, n_out = shape
    rng = np.random.default_rng(n * 10 + n_in)
    if first:
        layers = [cls(n_in), fnn.Dense(n_in, n_out, "tanh"), fnn.Dense(n_out, n_out)]
    else:
        layers = [fnn.Dense(n_in, 5, "tanh"), cls(), fnn.Dense(5, n_out)]
    net = fnn.Network(layers, seed=3, dtype="float64", backend=backend)
    _randomise_affine(net, rng)
    X = rng.standard_normal((n, n_in))
    y = rng.standard_normal((n, n_out))
    loss = losses.get("mse")
    _, analytic, dX = loss_and_grads(net, loss, X, y, backend)
    f = lambda: loss_and_grads(net, loss, X, y, backend)[0]  # noqa: E731
    np.testing.assert_allclose(analytic, numeric_grad(f, net.params), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dX, numeric_grad(f, X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_batch_of_one(backend):
    """One row: Xhat = 0, output = beta, zero input gradient, dgamma = 0, dbeta = dout."""
    net = fnn.Network([BatchNorm(3)], dtype="float64", backend=backend)
    layer = net.layers[0]
    layer.params["beta"][...] = [1.0, -2.0, 0.5]
    out = layer.forward(np.array([[3.0, 4.0, 5.0]]), training=True, backend=backend)
    np.testing.assert_array_equal(out, [[1.0, -2.0, 0.5]])
    dX = layer.backward(np.array([[1.0, 2.0, 3.0]]), backend=backend)
    np.testing.assert_array_equal(dX, np.zeros((1, 3)))
    np.testing.assert_array_equal(layer.grads["gamma"], 0)
    np.testing.assert_array_equal(layer.grads["beta"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.running_var, 1.0)  # one row says nothing about the spread
    np.testing.assert_allclose(layer.running_mean, [0.3, 0.4, 0.5])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_inference_mode_gradients(backend):
    """Backward after an inference forward: the affine map with the running statistics."""
    rng = np.random.default_rng(5)
    net = fnn.Network([BatchNorm(4), fnn.Dense(4, 2)], seed=0, dtype="float64", backend=backend)
    bn = net.layers[0]
    bn.buffers["running_mean"][...] = rng.standard_normal(4)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2, 4)
    _randomise_affine(net, rng)
    X = rng.standard_normal((3, 4))
    y = rng.standard_normal((3, 2))
    loss = losses.get("mse")
    kern = get_backend(backend)

    def run():
        A = X
        for layer in net.layers:
            A = layer.forward(A, training=False, backend=backend)
        target = loss.prepare_targets(y, 2, net.dtype)
        dout = np.empty_like(A)
        value = kern.loss_forward_backward(loss.code, A, target, 1.0 / 3, dout) / 3
        dA = dout
        for layer in reversed(net.layers):
            dA = layer.backward(dA, backend=backend)
        return value, net.grads.copy(), dA.copy()

    _, analytic, dX = run()
    np.testing.assert_allclose(analytic, numeric_grad(lambda: run()[0], net.params), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dX, numeric_grad(lambda: run()[0], X), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- running statistics
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_running_statistics_update_rule(backend, dtype):
    rng = np.random.default_rng(1)
    net = fnn.Network([BatchNorm(3, momentum=0.8)], dtype=dtype, backend=backend)
    bn = net.layers[0]
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        X = rng.standard_normal((8, 3)) * (step + 1) + step
        bn.forward(X.astype(dtype), training=True, backend=backend)
        Xd = X.astype(dtype).astype(np.float64)
        rm = 0.8 * rm + 0.2 * Xd.mean(0)
        rv = 0.8 * rv + 0.2 * Xd.var(0, ddof=1)  # unbiased batch variance, as PyTorch
        close(bn.running_mean, rm, dtype, scale=10)
        close(bn.running_var, rv, dtype, scale=10)
    # inference forwards leave them alone
    bn.forward(rng.standard_normal((8, 3)).astype(dtype), training=False, backend=backend)
    close(bn.running_mean, rm, dtype, scale=10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_uses_running_statistics(backend):
    rng = np.random.default_rng(2)
    net = fnn.Network([fnn.Dense(3, 4), BatchNorm(eps=1e-3)], seed=0, dtype="float64", backend=backend)
    bn = net.layers[1]
    bn.buffers["running_mean"][...] = [0.5, -1.0, 2.0, 0.0]
    bn.buffers["running_var"][...] = [1.0, 4.0, 0.25, 9.0]
    bn.params["gamma"][...] = [1.0, 2.0, 0.5, -1.0]
    bn.params["beta"][...] = [0.0, 1.0, -1.0, 3.0]
    X = rng.standard_normal((5, 3))
    Z = X @ net.layers[0].W + net.layers[0].b
    expected = bn.gamma * (Z - bn.running_mean) / np.sqrt(bn.running_var + 1e-3) + bn.beta
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-12)
    # one row at inference is fine (running stats do not depend on the batch)
    np.testing.assert_allclose(net.forward(X[:1]), expected[:1], rtol=1e-12)
    # training mode normalises with the batch statistics instead (and moves the running ones)
    batch = bn.gamma * (Z - Z.mean(0)) / np.sqrt(Z.var(0) + 1e-3) + bn.beta
    np.testing.assert_allclose(net.forward(X, training=True), batch, rtol=1e-10)


def test_inference_output_is_not_a_shared_buffer():
    net = fnn.Network([fnn.Dense(2, 3), LayerNorm(), BatchNorm()], seed=0)
    X = np.ones((4, 2), np.float32)
    first = net.forward(X)
    kept = first.copy()
    net.forward(X * 2)
    np.testing.assert_array_equal(first, kept)


def test_layernorm_is_per_sample():
    net = fnn.Network([LayerNorm(4)], dtype="float64")
    X = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 12.0]])
    out = net.forward(X)
    np.testing.assert_allclose(out[0], net.forward(X[:1])[0])  # no dependence on the other rows
    np.testing.assert_allclose(out.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(1), 1 / (1 + 1e-5 / X.var(1)), rtol=1e-9)
    np.testing.assert_allclose(net.forward(X, training=True), out)


# --------------------------------------------------------------------------- layer API
def test_registry_config_and_width_inference():
    assert LAYER_TYPES["BatchNorm"] is BatchNorm and LAYER_TYPES["LayerNorm"] is LayerNorm
    assert fnn.layers.BatchNorm is BatchNorm
    net = fnn.Network([fnn.Dense(3, 7), BatchNorm(momentum=0.95), LayerNorm(eps=1e-6), fnn.Dense(7, 2)], seed=0)
    bn, ln = net.layers[1], net.layers[2]
    assert bn.n_inputs == bn.n_outputs == 7 and ln.n_outputs == 7
    assert bn.get_config() == {"n_units": 7, "momentum": 0.95, "eps": 1e-5}
    assert ln.get_config() == {"n_units": 7, "eps": 1e-6}
    assert net.n_params == 3 * 7 + 7 + 4 * 7 + 7 * 2 + 2
    np.testing.assert_array_equal(bn.gamma, 1)
    np.testing.assert_array_equal(ln.beta, 0)
    assert bn.running_mean.dtype == np.float32 and bn.buffer_shapes() == {"running_mean": (7,), "running_var": (7,)}
    rebuilt = fnn.layers.layer_from_config("BatchNorm", bn.get_config())
    assert rebuilt.get_config() == bn.get_config()
    # the flat buffer holds gamma and beta
    names = [name for name, _ in net.parameters()]
    assert names == ["0.W", "0.b", "1.gamma", "1.beta", "2.gamma", "2.beta", "3.W", "3.b"]


@pytest.mark.parametrize("kwargs", [{"n_units": 0}, {"n_units": 2.5}, {"n_units": True}, {"eps": 0},
                                    {"eps": float("nan")}, {"momentum": 1.0}, {"momentum": -0.1}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        BatchNorm(**kwargs)
    if "momentum" not in kwargs:
        with pytest.raises(ValueError):
            LayerNorm(**kwargs)


def test_width_errors():
    with pytest.raises(ValueError, match="cannot be first"):
        fnn.Network([BatchNorm(), fnn.Dense(3, 2)])
    with pytest.raises(ValueError, match="expects 4 inputs"):
        fnn.Network([fnn.Dense(3, 5), LayerNorm(4)])
    net = fnn.Network([BatchNorm(3)])
    with pytest.raises(ValueError, match="shape"):
        net.layers[0].forward(np.ones((2, 4), np.float32))


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("cls", [BatchNorm, LayerNorm])
def test_network_with_normalization_trains(cls):
    X, y = fnn.data.synthetic.moons(300, noise=0.1, seed=0)
    net = fnn.Network([fnn.Dense(2, 32, "relu"), cls(), fnn.Dense(32, 32, "relu"), fnn.Dense(32, 2)],
                      seed=0, dtype="float64")
    trainer = fnn.Trainer(net, "cross_entropy", fnn.Adam(0.01), batch_size=32, seed=0, verbose=0)
    trainer.fit(X, y, epochs=30)
    assert trainer.last_plan["path"] == "fused"
    # evaluate runs in inference mode: BatchNorm uses its running statistics
    assert trainer.evaluate(X, y)["accuracy"] >= 0.97
    assert (net.predict(X) == y).mean() >= 0.97
    if cls is BatchNorm:
        assert not np.allclose(net.layers[1].running_mean, 0)


def test_batchnorm_float32_matches_float64_training_step():
    """One training step in float32 agrees with float64 (the numba kernels accumulate in float64)."""
    X, y = fnn.data.synthetic.spiral_data(20, 3, seed=1, shuffle=True)
    nets = []
    for dtype in ("float32", "float64"):
        net = fnn.Network([fnn.Dense(2, 8, "tanh"), BatchNorm(), fnn.Dense(8, 3)], seed=4, dtype=dtype)
        trainer = fnn.Trainer(net, "cross_entropy", fnn.SGD(0.1), batch_size=60, verbose=0)
        trainer.fit(X, y, epochs=1, shuffle=False)
        nets.append(net)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nets[0].layers[1].running_var, nets[1].layers[1].running_var, rtol=1e-4)


# --------------------------------------------------------------------------- persistence (needs Network.buffers)
_net_has_buffers = hasattr(fnn.Network([fnn.Dense(1, 1)]), "buffers")
needs_buffers = pytest.mark.skipif(not _net_has_buffers, reason="Network has no flat `buffers` state array yet")


@needs_buffers
def test_running_statistics_live_in_the_network_state_and_survive_save_load(tmp_path):
    X, y = fnn.data.synthetic.moons(200, noise=0.1, seed=1)
    net = fnn.Network([fnn.Dense(2, 8, "relu"), BatchNorm(momentum=0.8), fnn.Dense(8, 2)], seed=0)
    bn = net.layers[1]
    assert net.buffers.shape == (16,) and np.shares_memory(bn.running_mean, net.buffers)
    np.testing.assert_array_equal(net.buffers, [0] * 8 + [1] * 8)
    fnn.Trainer(net, "cross_entropy", fnn.Adam(0.01), batch_size=32, seed=0, verbose=0).fit(X, y, epochs=3)
    assert not np.allclose(bn.running_mean, 0)
    path = tmp_path / "bn.fnn"
    net.save(path)
    loaded = fnn.Network.load(path)
    np.testing.assert_array_equal(loaded.layers[1].running_mean, bn.running_mean)
    np.testing.assert_array_equal(loaded.layers[1].running_var, bn.running_var)
    np.testing.assert_array_equal(loaded.params, net.params)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


@needs_buffers
def test_checkpoint_resume_restores_running_statistics(tmp_path):
    from fastnn.checkpoint import load_checkpoint, save_checkpoint

    X, y = fnn.data.synthetic.moons(100, noise=0.1, seed=2)

    def make():
        net = fnn.Network([fnn.Dense(2, 8, "tanh"), BatchNorm(), fnn.Dense(8, 2)], seed=0)
        return net, fnn.Trainer(net, "cross_entropy", fnn.Adam(0.01), batch_size=20, seed=0, verbose=0)

    net, trainer = make()
    trainer.fit(X, y, epochs=2)
    path = tmp_path / "ck.fnn"
    save_checkpoint(path, trainer)
    expected = net.buffers.copy()
    net2, trainer2 = make()
    load_checkpoint(path, trainer=trainer2)
    np.testing.assert_array_equal(net2.buffers, expected)
    np.testing.assert_array_equal(net2.params, net.params)


def test_layernorm_round_trip(tmp_path):
    net = fnn.Network([fnn.Dense(3, 5, "tanh"), LayerNorm(eps=1e-6), fnn.Dense(5, 2)], seed=0)
    net.layers[1].params["gamma"][...] = np.arange(1, 6)
    net.save(tmp_path / "ln.fnn")
    loaded = fnn.Network.load(tmp_path / "ln.fnn")
    assert [type(l).__name__ for l in loaded.layers] == ["Dense", "LayerNorm", "Dense"]
    assert loaded.layers[1].get_config() == {"n_units": 5, "eps": 1e-6}
    np.testing.assert_array_equal(loaded.params, net.params)
    X = np.random.default_rng(0).random((4, 3))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
