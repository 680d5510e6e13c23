"""ONNX export: onnxruntime runs the exported graph and gives what Network.predict_proba / forward give."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastnn as fnn  # noqa: E402
from fastnn.activations import NAMES  # noqa: E402
from fastnn.integrations.onnx import CONVERTERS, OnnxConversionError, export_onnx  # noqa: E402
from fastnn.layers import LAYER_TYPES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RTOL = 1e-5


def _run(model_or_path, X):
    src = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else model_or_path.SerializeToString()
    session = ort.InferenceSession(os.fspath(src) if isinstance(src, os.PathLike) else src,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})[0]


def _randomise_norm_layers(net, rng):
    for layer in net.layers:
        if isinstance(layer, (fnn.BatchNorm, fnn.LayerNorm)):
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, layer.params["gamma"].shape)
            layer.params["beta"][...] = rng.normal(size=layer.params["beta"].shape)
        if isinstance(layer, fnn.BatchNorm):
            k = layer.buffers["running_mean"].shape
            layer.buffers["running_mean"][...] = rng.normal(size=k)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, k)


#: layer type -> why it has no converter yet (the issue that adds a layer adds its converter; a layer
#: merged before its converter is listed here with the issue that will write it, so the gap stays visible)
_SEQUENCE = "issue 12 (sequence models): the recurrent, attention and sequence layers landed before their converters"
NO_CONVERTER_YET = {name: _SEQUENCE for name in (
    "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Embedding", "Masking", "PositionalEncoding",
    "GlobalAveragePooling1D", "TimeDistributed", "MultiHeadAttention", "TransformerBlock")}


def test_every_layer_type_has_a_converter():
    with_converter = {cls.__name__ for cls in CONVERTERS}
    missing = set(LAYER_TYPES) - with_converter - set(NO_CONVERTER_YET)
    assert not missing, f"layer types without an ONNX converter: {sorted(missing)} (fastnn/integrations/onnx.py)"
    assert not set(NO_CONVERTER_YET) & with_converter, "NO_CONVERTER_YET lists a layer that has a converter now"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", NAMES)
def test_every_activation_and_layer_matches_predict_proba(activation, dtype):
    rng = np.random.default_rng(0)
    net = fnn.Network([fnn.Flatten(), fnn.Dense(12, activation), fnn.BatchNorm(), fnn.Dropout(0.3),
                       fnn.Dense(9, activation, alpha=0.2 if activation in ("leaky_relu", "elu") else None),
                       fnn.LayerNorm(), fnn.Dense(4)], input_shape=(3, 4), seed=0, dtype=dtype)
    _randomise_norm_layers(net, rng)
    X = (3 * rng.normal(size=(64, 3, 4))).astype(dtype)
    model = export_onnx(net)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    out = _run(model, X)
    assert out.dtype == np.dtype(dtype) and out.shape == (64, 4)
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=RTOL, atol=1e-7)
    assert not np.allclose(out, out[:1])  # the inputs are not all mapped to one output


#: conv nets: strides, 'same'/'valid' padding with uneven borders, odd sizes, 1x1 and 5x5 kernels, no bias,
#: every pooling layer, BatchNorm per channel on feature maps
CNN_CASES = {
    "same-stride2-maxpool": lambda: [fnn.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
                                     fnn.MaxPool2D(2, padding="same"), fnn.Flatten(), fnn.Dense(5)],
    "valid-5x5-avgpool-bn": lambda: [fnn.Conv2D(3, 5, activation="tanh", use_bias=False), fnn.BatchNorm(),
                                     fnn.AveragePooling2D(3, strides=2, padding="same"), fnn.Flatten(), fnn.Dense(4)],
    "1x1-gap-dropout": lambda: [fnn.Conv2D(6, 1, activation="elu"), fnn.Dropout(0.2),
                                fnn.Conv2D(5, (3, 2), strides=(2, 1), activation="softmax"),
                                fnn.GlobalAveragePooling2D(), fnn.Dense(3)],
}


@pytest.mark.parametrize("case", sorted(CNN_CASES))
def test_conv_networks_match_predict_proba(case, dtype="float32"):
    rng = np.random.default_rng(3)
    net = fnn.Network(CNN_CASES[case](), input_shape=(9, 7, 2), seed=0, dtype=dtype)
    _randomise_norm_layers(net, rng)
    for layer in net.layers:  # non-zero biases, so a bias dropped or misplaced shows
        if isinstance(layer, fnn.Conv2D) and layer.use_bias:
            layer.params["b"][...] = rng.normal(size=layer.params["b"].shape)
    X = rng.normal(size=(16, 9, 7, 2)).astype(dtype)
    out = _run(export_onnx(net), X)
    assert out.shape == (16, net.n_outputs)
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=RTOL, atol=1e-6)
    assert not np.allclose(out, out[:1])


def test_float64_conv_network_is_valid_onnx():
    # ONNX's Conv takes doubles, onnxruntime's CPU provider has no float64 Conv kernel: the model is
    # checked (export_onnx runs onnx.checker) and typed float64 throughout, but not run here
    net = fnn.Network(CNN_CASES["valid-5x5-avgpool-bn"](), input_shape=(9, 7, 2), seed=0, dtype="float64")
    model = export_onnx(net)
    assert {n.op_type for n in model.graph.node} >= {"Conv", "AveragePool", "BatchNormalization", "Transpose"}
    assert {t.data_type for t in model.graph.initializer} == {11}  # TensorProto.DOUBLE


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("head", ["binary-logit", "binary-sigmoid", "softmax", "multi-sigmoid", "regression"])
def test_output_heads_follow_predict_proba_and_forward(head, dtype):
    rng = np.random.default_rng(1)
    last = {"binary-logit": fnn.Dense(1), "binary-sigmoid": fnn.Dense(1, "sigmoid"), "softmax": fnn.Dense(5, "softmax"),
            "multi-sigmoid": fnn.Dense(3, "sigmoid"), "regression": fnn.Dense(2)}[head]
    net = fnn.Network([fnn.Dense(6, 8, "tanh"), last], seed=0, dtype=dtype)
    if head == "regression":
        net.task = "regression"
    if head == "binary-logit":  # one linear output: classification only once trained so (Network.predict's rule)
        assert _run(export_onnx(net), np.zeros((2, 6), dtype)).shape == (2, 1)
        net.task = "classification"
    X = rng.normal(size=(40, 6)).astype(dtype)
    out = _run(export_onnx(net), X)
    want = net.forward(X) if head == "regression" else net.predict_proba(X)
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(_run(export_onnx(net, output="forward"), X), net.forward(X), rtol=RTOL, atol=1e-7)


def test_a_layer_without_converter_is_named():
    class Doubler(fnn.Layer):
        def forward(self, X, training=False, backend=None):
            return 2 * X

        def get_config(self):
            return {}

    net = fnn.Network([fnn.Dense(4, 3), Doubler()], seed=0)
    with pytest.raises(OnnxConversionError, match=r"layer 1 \(Doubler\) has no ONNX converter.*register_converter"):
        export_onnx(net)
    with pytest.raises(NotImplementedError):  # the builtin a caller would catch
        export_onnx(net)
    with pytest.raises(TypeError, match="fastnn.Network"):
        export_onnx("model.fnn")
    with pytest.raises(ValueError, match="output"):
        export_onnx(fnn.Network([fnn.Dense(4, 3)], seed=0), output="logits")


def test_trained_mnist_model_gives_the_same_predictions(tmp_path, mnist_dir):
    (X, y), (X_test, y_test) = fnn.data.load_mnist(path=mnist_dir)
    net = fnn.Network([fnn.Dense(128, "relu"), fnn.BatchNorm(), fnn.Dropout(0.1), fnn.Dense(10)],
                      input_shape=(784,), seed=0)
    fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=128, verbose=0).fit(X[:10000], y[:10000], epochs=2)
    path = tmp_path / "mnist.onnx"
    fnn.export_onnx(net, path)  # the public name
    proba = _run(path, np.ascontiguousarray(X_test, np.float32))
    np.testing.assert_allclose(proba, net.predict_proba(X_test), rtol=RTOL, atol=1e-6)
    np.testing.assert_array_equal(proba.argmax(axis=1), net.predict(X_test))
    assert (proba.argmax(axis=1) == y_test).mean() > 0.9


def test_cli_export(tmp_path):
    rng = np.random.default_rng(2)
    net = fnn.Network([fnn.Dense(5, 7, "gelu"), fnn.LayerNorm(), fnn.Dense(3)], seed=0)
    net.save(tmp_path / "m.fnn")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fastnn", "export", "m.fnn", "m.onnx"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "m.onnx" in proc.stdout and "opset 17" in proc.stdout
    X = rng.normal(size=(10, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", X), net.predict_proba(X), rtol=RTOL, atol=1e-7)
    proc = subprocess.run([sys.executable, "-m", "fastnn", "export", "missing.fnn", "x.onnx"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1 and "missing.fnn" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression", "poisson"])
def test_sklearn_estimators_export_their_own_head(target):
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    y = {"multiclass": rng.integers(0, 3, 80), "binary": rng.integers(0, 2, 80),
         "multilabel": rng.integers(0, 2, (80, 3)), "regression": rng.normal(size=80),
         "poisson": rng.poisson(2.0, 80) * 1.0}[target]
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    if target in ("regression", "poisson"):
        est = MLPRegressor(loss="poisson" if target == "poisson" else "squared_error", **kw).fit(X, y)
        want = est.predict(X).reshape(80, -1)
    else:
        est = MLPClassifier(**kw).fit(X, y)
        want = est.predict_proba(X)
    np.testing.assert_allclose(_run(export_onnx(est), X), want, rtol=RTOL, atol=1e-9)
