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


def test_every_layer_type_has_a_converter():
    missing = set(LAYER_TYPES) - {cls.__name__ for cls in CONVERTERS}
    assert not missing, f"layer types without an ONNX converter: {sorted(missing)} (fastnn/integrations/onnx/)"


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
#: every pooling layer, BatchNorm per channel on feature maps, Activation layers (softmax over channels)
CNN_CASES = {
    "same-stride2-maxpool": lambda: [fnn.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
                                     fnn.MaxPool2D(2, padding="same"), fnn.Flatten(), fnn.Dense(5)],
    "valid-5x5-avgpool-bn": lambda: [fnn.Conv2D(3, 5, activation="tanh", use_bias=False), fnn.BatchNorm(),
                                     fnn.AveragePooling2D(3, strides=2, padding="same"), fnn.Flatten(), fnn.Dense(4)],
    "1x1-gap-dropout": lambda: [fnn.Conv2D(6, 1, activation="elu"), fnn.Dropout(0.2),
                                fnn.Conv2D(5, (3, 2), strides=(2, 1), activation="softmax"),
                                fnn.GlobalAveragePooling2D(), fnn.Dense(3)],
    "bn-relu-activation-softmax": lambda: [fnn.Conv2D(4, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"),
                                           fnn.Conv2D(3, 1), fnn.Activation("softmax"), fnn.Flatten(),
                                           fnn.Dense(3)],
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


# ------------------------------------------------------------------------------ sequence layers
T, F, V = 5, 4, 7  # steps, features, vocabulary of the sequence cases


def _ids_head(mask_zero=False):
    return [fnn.Embedding(V, F, mask_zero=mask_zero)]


#: one network per case: every sequence layer type, return_sequences both ways, every recurrent cell
#: alone and in a Bidirectional (fastnn merges the directions by concatenation only), causal and
#: non-causal attention, padding masks from Masking and from Embedding(mask_zero=True) into every layer
#: that reads one (recurrent cells, Bidirectional, pooling, attention, the block). Input: "float"
#: sequences (n, T, F), "padded" ones (steps of zeros, Masking(0.0)), or token "ids" (n, T) with id 0
SEQUENCE_CASES = {
    "SimpleRNN-last": ("float", lambda: [fnn.SimpleRNN(5)]),
    "SimpleRNN-seq-masked": ("padded", lambda: [fnn.Masking(), fnn.SimpleRNN(5, return_sequences=True)]),
    "LSTM-last": ("float", lambda: [fnn.LSTM(5)]),
    "LSTM-seq": ("float", lambda: [fnn.LSTM(5, return_sequences=True)]),
    "LSTM-last-masked": ("padded", lambda: [fnn.Masking(), fnn.LSTM(5)]),
    "GRU-seq": ("float", lambda: [fnn.GRU(5, return_sequences=True)]),
    "GRU-reset-before-last": ("float", lambda: [fnn.GRU(5, reset_after=False)]),
    "GRU-reset-before-seq-masked": ("padded", lambda: [fnn.Masking(), fnn.GRU(5, return_sequences=True,
                                                                                reset_after=False)]),
    "Bidirectional-LSTM-seq": ("float", lambda: [fnn.Bidirectional(fnn.LSTM(3, return_sequences=True))]),
    "Bidirectional-GRU-last": ("float", lambda: [fnn.Bidirectional(fnn.GRU(3))]),
    "Bidirectional-SimpleRNN-last": ("float", lambda: [fnn.Bidirectional(fnn.SimpleRNN(3))]),
    "Bidirectional-LSTM-last-masked": ("padded", lambda: [fnn.Masking(), fnn.Bidirectional(fnn.LSTM(3))]),
    "Bidirectional-GRU-seq-masked-pooled": ("padded", lambda: [
        fnn.Masking(), fnn.Bidirectional(fnn.GRU(3, return_sequences=True)), fnn.GlobalAveragePooling1D()]),
    "Embedding-pooled": ("ids", lambda: _ids_head() + [fnn.GlobalAveragePooling1D()]),
    "Embedding-mask_zero-dropout-LSTM": ("ids", lambda: _ids_head(True) + [fnn.Dropout(0.5), fnn.LSTM(5)]),
    "PositionalEncoding-TimeDistributed": ("float", lambda: [
        fnn.PositionalEncoding(), fnn.TimeDistributed(fnn.Dense(6, "gelu")), fnn.TimeDistributed(fnn.BatchNorm()),
        fnn.Flatten()]),
    "BatchNorm-per-feature-LSTM": ("float", lambda: [fnn.BatchNorm(), fnn.LSTM(3)]),
    "MultiHeadAttention": ("float", lambda: [fnn.MultiHeadAttention(2)]),
    "MultiHeadAttention-causal": ("float", lambda: [fnn.MultiHeadAttention(4, causal=True)]),
    "MultiHeadAttention-causal-masked": ("padded", lambda: [fnn.Masking(), fnn.MultiHeadAttention(2, causal=True),
                                                            fnn.GlobalAveragePooling1D()]),
    "TransformerBlock": ("float", lambda: [fnn.PositionalEncoding(), fnn.TransformerBlock(2, 8, dropout=0.2)]),
    "TransformerBlock-causal-mask_zero": ("ids", lambda: _ids_head(True) + [
        fnn.PositionalEncoding(), fnn.TransformerBlock(2, 8, causal=True), fnn.GlobalAveragePooling1D()]),
}


def _randomise(net, rng):
    """Random weights everywhere (biases too) and running statistics, so a misplaced block shows."""
    net.params[...] = rng.normal(scale=0.6, size=net.params.shape)
    for layer in net.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, fnn.BatchNorm):
            k = inner.buffers["running_mean"].shape
            inner.buffers["running_mean"][...] = rng.normal(size=k)
            inner.buffers["running_var"][...] = rng.uniform(0.5, 2.0, k)


def _sequence_inputs(kind, rng, n=9, dtype="float32"):
    """Inputs of a case; padded/ids rows: 0 leading steps padded, 1 trailing, 2 all, 3 one in the middle."""
    if kind == "ids":
        X = rng.integers(1, V, (n, T))
    else:
        X = rng.normal(size=(n, T, F)).astype(dtype)
    if kind != "float":
        X[0, :2] = 0
        X[1, 3:] = 0
        X[2] = 0
        X[3, 2] = 0
    return X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(SEQUENCE_CASES))
def test_sequence_layers_match_forward_and_predict_proba(case, dtype):
    kind, layers = SEQUENCE_CASES[case]
    rng = np.random.default_rng(4)
    net = fnn.Network(layers(), input_shape=(T,) if kind == "ids" else (T, F), seed=0, dtype=dtype)
    _randomise(net, rng)
    X = _sequence_inputs(kind, rng, dtype=dtype)
    model = export_onnx(net, output="forward")
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    assert model.graph.input[0].type.tensor_type.elem_type == (7 if kind == "ids" else 1 if dtype == "float32" else 11)
    out = _run(model, X)  # int64 ids / floats as they are: onnxruntime checks the input type
    want = net.forward(X)
    assert out.dtype == np.dtype(dtype) and out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=1e-6)
    assert not np.allclose(out, out[:1])
    np.testing.assert_allclose(_run(export_onnx(net, output="proba"), X), net.predict_proba(X), rtol=RTOL, atol=1e-7)


def test_sequence_cases_cover_every_sequence_layer_type():
    from fastnn.layers import attention, recurrent, sequence

    def types(layer):
        inner = [getattr(layer, "layer", None), getattr(layer, "forward_layer", None)]
        return {type(layer).__name__} | {type(i).__name__ for i in inner if i is not None}

    covered = set().union(*(types(l) for _, make in SEQUENCE_CASES.values() for l in make()))
    declared = {name for name, cls in LAYER_TYPES.items() if cls.__module__ in
                (attention.__name__, recurrent.__name__, sequence.__name__)}
    assert declared and declared <= covered, f"sequence layers without an export case: {sorted(declared - covered)}"


def test_recurrent_layers_use_the_onnx_ops_unless_masked_or_float64():
    # the fast path: onnxruntime's own RNN/LSTM/GRU kernels; the Scan of fastnn's cell where they cannot say it
    def ops(layers, dtype="float32"):
        net = fnn.Network(layers, input_shape=(T, F), seed=0, dtype=dtype)
        return {n.op_type for n in export_onnx(net).graph.node}

    assert {"RNN", "LSTM", "GRU"} <= ops([fnn.SimpleRNN(3, return_sequences=True), fnn.LSTM(3, return_sequences=True),
                                           fnn.Bidirectional(fnn.GRU(2))]) and "Scan" not in ops([fnn.LSTM(3)])
    assert "Scan" in ops([fnn.Masking(), fnn.LSTM(3)]) and "LSTM" not in ops([fnn.Masking(), fnn.LSTM(3)])
    assert "Scan" in ops([fnn.GRU(3)], "float64")


def test_token_ids_are_int64_and_bad_ids_fail_in_onnxruntime():
    net = fnn.Network(_ids_head() + [fnn.GlobalAveragePooling1D(), fnn.Dense(3)], input_shape=(T,), seed=0)
    model = export_onnx(net)
    ids = np.random.default_rng(5).integers(0, V, (4, T))
    np.testing.assert_allclose(_run(model, ids), net.predict_proba(ids), rtol=RTOL, atol=1e-7)
    for bad in (-1, V):  # fastnn refuses both; Gather would read -1 from the end of the table
        wrong = ids.copy()
        wrong[2, 1] = bad
        with pytest.raises(ValueError, match="ids must be integers"):
            net.predict_proba(wrong)
        with pytest.raises(Exception, match="out of data bounds"):
            _run(model, wrong)
    with pytest.raises(Exception, match="(?i)type"):  # float ids: the graph input says int64
        _run(model, ids.astype(np.float32))


def _padded_tokens(n, rng):
    """Label = the first real token of a sequence that starts with 0-3 padding ids (Keras' pre-padding)."""
    X = rng.integers(1, V, (n, T))
    pad = rng.integers(0, 4, n)
    X[np.arange(T) < pad[:, None]] = 0
    return X, X[np.arange(n), pad]


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_short_trained_sequence_models_give_the_same_predictions(model):
    rng = np.random.default_rng(6)
    X, y = _padded_tokens(256, rng)
    layers = {"lstm": lambda: _ids_head(True) + [fnn.Bidirectional(fnn.LSTM(8)), fnn.Dense(V, "softmax")],
              "transformer": lambda: _ids_head(True) + [fnn.PositionalEncoding(), fnn.TransformerBlock(2, 16),
                                                         fnn.GlobalAveragePooling1D(), fnn.Dense(V)]}[model]
    net = fnn.Network(layers(), input_shape=(T,), seed=0)
    hist = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=64, verbose=0, seed=0).fit(X, y, epochs=3)
    assert hist["loss"][-1] < hist["loss"][0]
    X_test, _ = _padded_tokens(200, rng)
    proba = _run(export_onnx(net), X_test)
    np.testing.assert_allclose(proba, net.predict_proba(X_test), rtol=RTOL, atol=1e-6)
    np.testing.assert_array_equal(proba.argmax(axis=1), net.predict(X_test))


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
    from fastnn.apps.cli import main  # a sequence model through the same command, in-process (no second start-up)

    seq = fnn.Network(_ids_head(True) + [fnn.GRU(4), fnn.Dense(3)], input_shape=(T,), seed=0)
    seq.save(tmp_path / "seq.fnn")
    assert main(["export", str(tmp_path / "seq.fnn"), str(tmp_path / "seq.onnx")]) == 0
    ids = rng.integers(0, V, (10, T))
    np.testing.assert_allclose(_run(tmp_path / "seq.onnx", ids), seq.predict_proba(ids), rtol=RTOL, atol=1e-7)
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
