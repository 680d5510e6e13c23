"""Per-sample shapes: output_shape, width inference (Dense(units)), Network(input_shape=...), Flatten."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn.io import load_network, read_header


def test_output_shapes_of_every_layer():
    assert fnn.Dense(5).output_shape((7,)) == (5,)
    assert fnn.Dropout(0.5).output_shape((7,)) == (7,)
    assert fnn.BatchNorm().output_shape((7,)) == (7,)
    assert fnn.LayerNorm().output_shape((7,)) == (7,)
    assert fnn.Flatten().output_shape((4, 3, 2)) == (24,)


def test_dense_units_infers_its_input_width():
    net = fnn.Network([fnn.Dense(16, "relu"), fnn.Dropout(0.1), fnn.Dense(units=3)], input_shape=(8,), seed=0)
    assert [l.n_inputs for l in net.layers] == [8, 16, 16]
    assert net.layers[0].activation == "relu" and net.layers[0].units == 16
    assert net.layer_shapes == [(16,), (16,), (3,)]
    legacy = fnn.Network([fnn.Dense(8, 16, "relu"), fnn.Dropout(0.1), fnn.Dense(16, 3)], seed=0)
    np.testing.assert_array_equal(net.params, legacy.params)  # same layers, same init


def test_dense_argument_errors():
    with pytest.raises(TypeError, match="two activations"):
        fnn.Dense(8, "relu", activation="tanh")
    with pytest.raises(TypeError, match="output width"):
        fnn.Dense()
    with pytest.raises(ValueError, match="positive integer"):
        fnn.Dense(0)
    with pytest.raises(ValueError, match="cannot be first"):
        fnn.Network([fnn.Dense(4), fnn.Dense(2)])
    with pytest.raises(ValueError, match="input width is unknown"):
        fnn.Dense(4).param_shapes()


def test_input_shape_checks():
    with pytest.raises(ValueError, match="input_shape"):
        fnn.Network([fnn.Dense(2)], input_shape=(0,))
    with pytest.raises(ValueError, match="input_shape"):
        fnn.Network([fnn.Dense(2)], input_shape="28x28")
    with pytest.raises(ValueError, match="Flatten"):
        fnn.Network([fnn.Dense(2)], input_shape=(4, 4))
    with pytest.raises(ValueError, match="expects 5 inputs"):
        fnn.Network([fnn.Dense(5, 2)], input_shape=(4,))


def test_image_shaped_input_trains_through_flatten(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((64, 6, 5)).astype(np.float32)
    y = (X[:, :3].mean(axis=(1, 2)) > X[:, 3:].mean(axis=(1, 2))).astype(int)
    net = fnn.Network([fnn.Flatten(), fnn.Dense(16, "relu"), fnn.BatchNorm(), fnn.Dense(2)], input_shape=(6, 5),
                      seed=0)
    assert net.n_inputs == 30 and net.input_shape == (6, 5)
    tr = fnn.Trainer(net, batch_size=16, verbose=0, seed=0)
    tr.fit(X, y, epochs=2)
    assert tr.last_plan["path"] == "fused"  # Flatten adds no plan row
    assert net.predict(X).shape == (64,)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 6, 5\)"):
        net.predict(X.reshape(64, 30))
    with pytest.raises(ValueError, match="NaN"):
        bad = X.copy()
        bad[3, 2, 1] = np.nan
        net.predict(bad)
    assert "(None, 30)" in net.summary(print_fn=None) and "(None, 2)" in net.summary(print_fn=None)
    net.save(tmp_path / "img.fnn")
    assert read_header(tmp_path / "img.fnn")["network"]["input_shape"] == [6, 5]
    loaded = load_network(tmp_path / "img.fnn")
    assert loaded.input_shape == (6, 5)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_flat_networks_keep_the_old_file_header(tmp_path):
    net = fnn.Network([fnn.Dense(4, 3), fnn.Dense(3, 2)], seed=0)
    net.save(tmp_path / "flat.fnn")
    assert "input_shape" not in read_header(tmp_path / "flat.fnn")["network"]
