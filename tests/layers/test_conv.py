"""Conv2D and the pooling layers: float64 gradient checks, loop oracles, PyTorch parity, bad input,
model files and checkpoints, BatchNorm per channel on feature maps."""
import json
import struct

import numpy as np
import pytest

import fastnn as fnn
import naive
from naive import numeric_grad as _numeric  # tests/naive.py
from fastnn.errors import ModelFormatError
from fastnn.io import load_network
from fastnn.kernels import available_backends

BACKENDS = available_backends()


def _loss_and_grads(net, X, G, backend):
    """0.5 * sum((net(X) - 0) * G)-style linear loss: value, flat parameter gradient, input gradient."""
    A = X.reshape(len(X), -1)
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    value = float((A * G).sum())
    dA = G.copy()
    for i in range(len(net.layers) - 1, -1, -1):
        dA = net.layers[i].backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), dA.reshape(X.shape).copy()


def _gradcheck(layers, input_shape, batch, backend, seed=0):
    net = fnn.Network(layers, input_shape=input_shape, seed=seed, dtype="float64", backend=backend)
    rng = np.random.default_rng(seed + 1)
    net.params[...] = rng.standard_normal(net.n_params) * 0.5
    X = rng.standard_normal((batch, *input_shape))
    G = rng.standard_normal((batch, net.n_outputs))
    _, analytic, dX = _loss_and_grads(net, X, G, backend)
    numeric = _numeric(lambda: _loss_and_grads(net, X, G, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
    numeric_dX = _numeric(lambda: _loss_and_grads(net, X, G, backend)[0], X)
    np.testing.assert_allclose(dX, numeric_dX, rtol=1e-6, atol=1e-7)


# (layer factory, per-sample input shape, batch): strides, padding, odd sizes, 1x1 and 5x5, batch 1
CONV_CASES = {
    "3x3-valid": (lambda: fnn.Conv2D(3, 3), (6, 5, 2), 2),
    "3x3-same-stride2": (lambda: fnn.Conv2D(2, 3, strides=2, padding="same"), (7, 6, 2), 2),
    "1x1": (lambda: fnn.Conv2D(3, 1, activation="tanh"), (4, 3, 2), 2),
    "1x1-stride2": (lambda: fnn.Conv2D(2, 1, strides=2), (5, 5, 2), 1),
    "5x5-same-odd": (lambda: fnn.Conv2D(2, 5, padding="same", activation="tanh"), (7, 5, 1), 1),
    "2x3-strides21-nobias": (lambda: fnn.Conv2D(2, (2, 3), strides=(2, 1), use_bias=False), (5, 7, 3), 3),
    "5x5-valid-batch1": (lambda: fnn.Conv2D(2, 5, activation="elu"), (5, 6, 1), 1),
}
POOL_CASES = {
    "max2": (lambda: fnn.MaxPool2D(2), (6, 4, 2), 2),
    "max3-s2-same": (lambda: fnn.MaxPool2D(3, strides=2, padding="same"), (7, 5, 2), 2),
    "max-odd-valid": (lambda: fnn.MaxPool2D((2, 3)), (5, 7, 1), 1),
    "avg2": (lambda: fnn.AveragePooling2D(2), (6, 4, 2), 2),
    "avg3-s2-same": (lambda: fnn.AveragePooling2D(3, strides=2, padding="same"), (7, 5, 2), 1),
    "global-avg": (lambda: fnn.GlobalAveragePooling2D(), (5, 3, 3), 2),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_gradients(backend, case):
    make, shape, batch = CONV_CASES[case]
    _gradcheck([make(), fnn.Flatten(), fnn.Dense(3)], shape, batch, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling_gradients(backend, case):
    make, shape, batch = POOL_CASES[case]
    # A conv first so the pooled values are distinct and parameters carry the gradient through the pool.
    _gradcheck([fnn.Conv2D(2, 1, activation="tanh"), make(), fnn.Flatten(), fnn.Dense(2)], shape, batch, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_on_feature_maps_gradients_and_statistics(backend):
    _gradcheck([fnn.Conv2D(3, 3, padding="same"), fnn.BatchNorm(), fnn.Flatten(), fnn.Dense(2)], (5, 4, 2), 3,
               backend)
    net = fnn.Network([fnn.BatchNorm(momentum=0.0)], input_shape=(4, 3, 2), dtype="float64", backend=backend)
    assert net.layers[0].gamma.shape == (2,) and net.output_shape == (4, 3, 2)
    X = np.random.default_rng(0).standard_normal((5, 4, 3, 2)) * 3 + 1
    out = net.layers[0].forward(X.reshape(5, -1), training=True, backend=backend).reshape(X.shape)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)   # per channel over batch and positions
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, rtol=1e-4)
    np.testing.assert_allclose(net.layers[0].running_mean, X.mean(axis=(0, 1, 2)), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_matches_the_loop_oracle(backend, case):
    make, shape, batch = CONV_CASES[case]
    layer = make()
    net = fnn.Network([layer], input_shape=shape, seed=3, dtype="float64", backend=backend)
    X = np.random.default_rng(4).standard_normal((batch + 1, *shape))
    b = layer.b if layer.use_bias else None
    layer.params["W"][...] = np.random.default_rng(5).standard_normal(layer.W.shape)
    Z = naive.conv2d(X, layer.W, b, layer.strides, layer.padding)
    expected = {"linear": Z, "tanh": np.tanh(Z), "elu": np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))}[layer.activation]
    got = net.forward(X).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert net.output_shape == expected.shape[1:]


def test_float32_matches_float64():
    layers = lambda: [fnn.Conv2D(4, 3, padding="same", activation="relu"), fnn.MaxPool2D(2),  # noqa: E731
                      fnn.Conv2D(3, 3), fnn.GlobalAveragePooling2D(), fnn.Dense(2)]
    n64 = fnn.Network(layers(), input_shape=(9, 8, 2), seed=0, dtype="float64")
    n32 = fnn.Network(layers(), input_shape=(9, 8, 2), seed=0, dtype="float32")
    X = np.random.default_rng(0).random((6, 9, 8, 2))
    np.testing.assert_allclose(n32.forward(X), n64.forward(X), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make,pattern", [
    (lambda: fnn.Conv2D(0, 3), r"Conv2D filters must be a positive integer, not 0"),
    (lambda: fnn.Conv2D(4, 3, strides=-1), r"Conv2D strides must be a positive integer or a pair of them: got -1"),
    (lambda: fnn.Conv2D(4, 0), r"Conv2D kernel_size"),
    (lambda: fnn.Conv2D(4, (3, 3, 3)), r"Conv2D kernel_size"),
    (lambda: fnn.Conv2D(4, 3, padding="full"), r"Conv2D padding must be 'valid' or 'same'"),
    (lambda: fnn.Conv2D(4, 3, use_bias="yes"), r"use_bias"),
    (lambda: fnn.Conv2D(True, 3), r"filters"),
    (lambda: fnn.MaxPool2D(0), r"MaxPool2D pool_size"),
    (lambda: fnn.MaxPool2D(2, strides=(1, -2)), r"MaxPool2D strides"),
    (lambda: fnn.AveragePooling2D(2, padding=None), r"AveragePooling2D padding"),
])
def test_bad_hyper_parameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_kernel_larger_than_its_input_names_layer_and_sizes():
    with pytest.raises(ValueError, match=r"layer 1 \(Conv2D\): Conv2D window height 5 is larger than its input "
                                         r"height 4"):
        fnn.Network([fnn.Conv2D(2, 3), fnn.Conv2D(2, 5)], input_shape=(6, 6, 1))
    with pytest.raises(ValueError, match=r"layer 0 \(MaxPool2D\).*width 3 is larger than its input width 2"):
        fnn.Network([fnn.MaxPool2D(3)], input_shape=(4, 2, 1))
    fnn.Network([fnn.Conv2D(2, 5, padding="same")], input_shape=(4, 2, 1))  # padded: fits
    with pytest.raises(ValueError, match=r"Conv2D takes images of per-sample shape \(height, width, channels\)"):
        fnn.Network([fnn.Conv2D(2, 3)], input_shape=(784,))


def test_image_of_the_wrong_shape_is_refused_before_anything_changes():
    net = fnn.Network([fnn.Conv2D(2, 3), fnn.Flatten(), fnn.Dense(2)], input_shape=(8, 8, 1), seed=0)
    tr = fnn.Trainer(net, batch_size=4, verbose=0)
    before = net.params.copy()
    for bad in (np.zeros((5, 8, 8)), np.zeros((5, 8, 7, 1)), np.zeros((5, 64)), np.zeros((5, 8, 8, 3))):
        with pytest.raises(ValueError, match=r"must have shape \(n_samples, 8, 8, 1\), got .*: layer 0 \(Conv2D\) "
                                             r"takes samples of shape \(8, 8, 1\)"):
            tr.fit(bad, np.zeros(5, int))
        with pytest.raises(ValueError, match=r"must have shape \(n_samples, 8, 8, 1\)"):
            net.predict(bad)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match=r"Conv2D expects images of shape \(n, 8, 8, 1\) or rows \(n, 64\), got"):
        net.layers[0].forward(np.zeros((2, 7, 8, 1)))


# --------------------------------------------------------------------------- training, files
def _cnn(seed=0, dtype="float32", backend=None):
    return fnn.Network([fnn.Conv2D(4, 3, activation="relu", padding="same"), fnn.BatchNorm(), fnn.MaxPool2D(2),
                        fnn.Conv2D(6, 3, activation="relu"), fnn.Dropout(0.2), fnn.AveragePooling2D(1),
                        fnn.Flatten(), fnn.Dense(3)], input_shape=(8, 8, 1), seed=seed, dtype=dtype,
                       backend=backend)


def _blobs(n=96, seed=0):
    """Three classes of 8x8 images: a bright square in one of three places."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.random((n, 8, 8, 1)).astype(np.float32) * 0.3
    for i, c in enumerate(y):
        X[i, 1 + 2 * c:4 + 2 * c, 1 + 2 * c:4 + 2 * c, 0] += 1.0
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_small_cnn_learns_with_sgd_momentum(backend):
    X, y = _blobs()
    net = _cnn(backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=16, verbose=0, seed=0)
    tr.fit(X, y, epochs=8)
    # conv, BatchNorm on feature maps and pooling are plan rows: the fused path
    assert tr.last_plan["path"] == "fused", tr.last_plan
    assert tr.evaluate(X, y)["accuracy"] > 0.9


def test_model_file_and_checkpoint_round_trip(tmp_path):
    X, y = _blobs()
    net = _cnn()
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=16, verbose=0, seed=0)
    tr.fit(X, y, epochs=1)
    net.save(tmp_path / "m.fnn")
    back = load_network(tmp_path / "m.fnn")
    assert back.input_shape == (8, 8, 1) and back.layer_shapes == net.layer_shapes
    assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in net.layers]
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.buffers, net.buffers)   # BatchNorm running statistics per channel
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    # resume: two epochs in one go == one epoch, checkpoint, one more epoch
    fnn.save_checkpoint(tmp_path / "c.fnn", tr)
    tr.fit(X, y, epochs=1)
    net2 = _cnn(seed=9)
    tr2 = fnn.Trainer(net2, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=16, verbose=0, seed=1)
    tr2.fit(X, y, epochs=2, resume_from=tmp_path / "c.fnn")
    np.testing.assert_allclose(net2.params, net.params, rtol=0, atol=1e-6)


def test_global_average_pooling_round_trip(tmp_path):
    net = fnn.Network([fnn.Conv2D(3, 2, strides=2, padding="same", use_bias=False, activation="leaky_relu",
                                  alpha=0.3), fnn.GlobalAveragePooling2D(), fnn.Dense(2)],
                      input_shape=(5, 7, 2), seed=0)
    assert net.output_shape == (2,) and net.layer_shapes[1] == (3,)
    net.save(tmp_path / "g.fnn")
    back = load_network(tmp_path / "g.fnn")
    assert back.layers[0].get_config() == net.layers[0].get_config() and back.layers[0].alpha == 0.3
    X = np.random.default_rng(0).random((4, 5, 7, 2))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def _forge(src, dst, mutate):
    raw = src.read_bytes()
    _, _, hlen = struct.unpack("<8sIQ", raw[:20])
    header = json.loads(raw[20:20 + hlen])
    mutate(header)
    text = json.dumps(header).encode()
    dst.write_bytes(raw[:8] + struct.pack("<IQ", 1, len(text)) + text + raw[20 + hlen:])
    return dst


@pytest.mark.parametrize("mutate,pattern", [
    (lambda h: h["network"]["layers"][0]["config"].update(kernel_size=[5, 5]), r"tensor shape mismatch"),
    (lambda h: h["network"]["layers"][0]["config"].update(filters=5), r"tensor shape mismatch"),
    (lambda h: h["network"].update(input_shape=[8, 8, 2]), r"tensor shape mismatch"),
    (lambda h: h["network"]["layers"][0]["config"].update(kernel_size=[9, 9], padding="valid"),
     r"invalid layer stack.*larger than its input"),
    (lambda h: h["network"]["layers"][0]["config"].update(strides=[-1, 1]), r"invalid layer 0 \(Conv2D\)"),
    (lambda h: h["network"]["layers"][0]["config"].update(filters=0), r"invalid layer 0 \(Conv2D\)"),
    (lambda h: h["network"]["layers"][2]["config"].update(pool_size=[0, 2]), r"invalid layer 2 \(MaxPool2D\)"),
    (lambda h: h["network"]["layers"][1]["config"].update(n_units=3), r"invalid layer stack"),
])
def test_forged_model_files_are_refused(tmp_path, mutate, pattern):
    _cnn().save(tmp_path / "m.fnn")
    with pytest.raises(ModelFormatError, match=pattern):
        load_network(_forge(tmp_path / "m.fnn", tmp_path / "bad.fnn", mutate))


def test_summary_shows_output_shapes():
    text = _cnn().summary(print_fn=None)
    for shape in ("(None, 8, 8, 4)", "(None, 4, 4, 4)", "(None, 2, 2, 6)", "(None, 24)", "(None, 3)"):
        assert shape in text
    assert "Conv2D(filters=4, kernel_size=[3, 3]" in text


def test_predict_runs_in_bounded_chunks(monkeypatch):
    import fastnn.network as network_module

    monkeypatch.setattr(network_module, "_PREDICT_CHUNK_CONV", 7)
    net = _cnn()
    X, _ = _blobs(30)
    calls = []
    first = net.layers[0]
    original = first.forward
    monkeypatch.setattr(first, "forward", lambda A, **kw: calls.append(len(A)) or original(A, **kw))
    out = net.forward(X)
    assert calls == [7, 7, 7, 7, 2]
    monkeypatch.setattr(first, "forward", original)
    np.testing.assert_allclose(out, np.concatenate([net.forward(X[i:i + 5]) for i in range(0, 30, 5)]),
                               rtol=1e-6, atol=1e-6)
