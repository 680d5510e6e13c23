"""SimpleRNN, LSTM, GRU: float64 gradient checks (T = 1 and 7, batch 1), the loop-level oracle, PyTorch parity
(same weights, outputs and gradients), training through the Trainer, model files, bad input."""
import numpy as np
import pytest

import fastnn as fnn
import naive  # tests/naive.py
from naive import numeric_grad as _numeric  # tests/naive.py
from fastnn import losses

BACKENDS = [b for b in ("reference", "numba") if b in fnn.available_backends()]
LAYERS = {
    "SimpleRNN": lambda **kw: fnn.SimpleRNN(4, **kw),
    "LSTM": lambda **kw: fnn.LSTM(4, **kw),
    "GRU": lambda **kw: fnn.GRU(4, **kw),
    "GRU-reset-before": lambda **kw: fnn.GRU(4, reset_after=False, **kw),
}


def _net(kind, T, F, backend, return_sequences, seed=0):
    rnn = LAYERS[kind](return_sequences=return_sequences)
    layers = [rnn, fnn.Flatten(), fnn.Dense(2)] if return_sequences else [rnn, fnn.Dense(2)]
    net = fnn.Network(layers, input_shape=(T, F), seed=seed, dtype="float64", backend=backend)
    rng = np.random.default_rng(seed + 7)
    net.params[...] = rng.standard_normal(net.n_params) * 0.5  # non-zero biases too
    return net


def _loss_and_grads(net, X, y, backend):
    loss = losses.get("mse")
    A = X.reshape(len(X), -1)
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    target = loss.prepare_targets(y, net.n_outputs, net.dtype)
    dout = np.empty_like(A)
    value = fnn.get_backend(backend).loss_forward_backward(loss.code, A, target, 1.0 / len(X), dout) / len(X)
    dA = dout
    for layer in reversed(net.layers):
        dA = layer.backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), dA.copy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("n,T", [(1, 1), (1, 7), (3, 7)])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradients_match_central_differences(kind, n, T, return_sequences, backend):
    F = 3
    rng = np.random.default_rng(n * 10 + T)
    net = _net(kind, T, F, backend, return_sequences)
    X = rng.standard_normal((n, T, F))
    y = rng.standard_normal((n, 2))
    _, analytic, dX = _loss_and_grads(net, X, y, backend)
    numeric = _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    numeric_dX = _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], X)
    np.testing.assert_allclose(dX.reshape(X.shape), numeric_dX, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_output_matches_the_naive_cell(kind, backend):
    T, F = 5, 3
    net = _net(kind, T, F, backend, return_sequences=True)
    rnn = net.layers[0]
    X = np.random.default_rng(3).standard_normal((4, T, F))
    got = rnn.forward(X, backend=backend).reshape(4, T, rnn.units)
    p = rnn.params
    if kind == "SimpleRNN":
        expected = naive.simple_rnn(X, p["W"], p["U"], p["b"])
    elif kind == "LSTM":
        expected = naive.lstm(X, p["W"], p["U"], p["b"])
    elif rnn.reset_after:
        expected = naive.gru(X, p["W"], p["U"], p["b"][0], p["b"][1], True)
    else:
        expected = naive.gru(X, p["W"], p["U"], p["b"], None, False)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    last = fnn.Network([LAYERS[kind]()], input_shape=(T, F), dtype="float64", backend=backend)
    last.params[...] = net.params[:last.n_params]
    np.testing.assert_allclose(last.forward(X), expected[:, -1], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- PyTorch parity
def _torch_module(torch, kind, layer):
    F, k = layer.features, layer.units
    p = {name: torch.tensor(np.asarray(v)) for name, v in layer.params.items()}
    if kind == "SimpleRNN":
        mod = torch.nn.RNN(F, k, batch_first=True, dtype=torch.float64)
        perm = [slice(0, k)]
    elif kind == "LSTM":
        mod = torch.nn.LSTM(F, k, batch_first=True, dtype=torch.float64)
        perm = [slice(0, 4 * k)]  # i, f, g, o in both
    else:
        mod = torch.nn.GRU(F, k, batch_first=True, dtype=torch.float64)
        perm = [slice(k, 2 * k), slice(0, k), slice(2 * k, 3 * k)]  # torch r, z, n <- Keras z, r, h

    def reorder(a):  # gate blocks along the last axis, in torch's order
        return torch.cat([a[..., s] for s in perm], dim=-1)

    b_ih, b_hh = (p["b"][0], p["b"][1]) if kind == "GRU" else (p["b"], torch.zeros_like(p["b"]))
    with torch.no_grad():
        mod.weight_ih_l0.copy_(reorder(p["W"]).T)
        mod.weight_hh_l0.copy_(reorder(p["U"]).T)
        mod.bias_ih_l0.copy_(reorder(b_ih))
        mod.bias_hh_l0.copy_(reorder(b_hh))
    return mod, reorder


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_parity_with_torch(kind, backend):
    torch = pytest.importorskip("torch")
    n, T, F = 4, 6, 3
    net = _net(kind, T, F, backend, return_sequences=True)
    rnn = net.layers[0]
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, T, F))
    R = rng.standard_normal((n, T, rnn.units))  # loss = sum(out * R)
    out = rnn.forward(X, training=True, backend=backend)
    dX = rnn.backward(R.reshape(n, -1), backend=backend, need_dX=True)

    mod, reorder = _torch_module(torch, kind, rnn)
    Xt = torch.tensor(X, requires_grad=True)
    out_t, _ = mod(Xt)
    (out_t * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out.reshape(n, T, -1), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX.reshape(X.shape), Xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    g = {name: torch.tensor(np.asarray(v)) for name, v in rnn.grads.items()}
    np.testing.assert_allclose(reorder(g["W"]).T.numpy(), mod.weight_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reorder(g["U"]).T.numpy(), mod.weight_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    if kind == "GRU":
        np.testing.assert_allclose(reorder(g["b"][0]).numpy(), mod.bias_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(reorder(g["b"][1]).numpy(), mod.bias_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    else:  # one fastnn bias = torch's two biases, which get the same gradient
        np.testing.assert_allclose(reorder(g["b"]).numpy(), mod.bias_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- training, files, summary
def _sequence_task(n=256, T=8, seed=0):
    """Label: is the sum of the first feature over the first half larger than over the second half?"""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 2)).astype(np.float32)
    y = (X[:, :T // 2, 0].sum(axis=1) > X[:, T // 2:, 0].sum(axis=1)).astype(np.int64)
    return X, y


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_trains_through_the_trainer_with_clipping(kind, tmp_path):
    X, y = _sequence_task()
    layer = {"SimpleRNN": fnn.SimpleRNN, "LSTM": fnn.LSTM, "GRU": fnn.GRU}[kind](16)
    net = fnn.Network([layer, fnn.Dense(2)], input_shape=(8, 2), seed=0)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=32, clip_norm=1.0, verbose=0, seed=0)
    hist = tr.fit(X, y, epochs=6)
    assert tr.last_plan["path"] == "per-layer" and "no compiled plan row" in tr.last_plan["reason"]
    assert hist["loss"][-1] < 0.7 * hist["loss"][0]
    assert tr.evaluate(X, y)["accuracy"] > 0.85
    path = tmp_path / "rnn.fnn"
    net.save(path)
    back = fnn.Network.load(path)
    assert type(back.layers[0]) is type(layer) and back.input_shape == (8, 2)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    text = net.summary(print_fn=None)
    assert kind in text and "(None, 16)" in text


def test_clip_norm_bounds_the_update():
    """The global-norm clip acts on the recurrent layers' gradients: with SGD(lr=1) one step moves the
    parameters by exactly the clipped norm when the raw gradient is larger."""
    X, y = _sequence_task(n=32)
    net = fnn.Network([fnn.LSTM(8), fnn.Dense(2)], input_shape=(8, 2), seed=1)
    before = net.params.copy()
    fnn.Trainer(net, optimizer=fnn.SGD(1.0), batch_size=32, clip_norm=1e-3, verbose=0).fit(X, y, epochs=1)
    assert np.linalg.norm(net.params - before) == pytest.approx(1e-3, rel=1e-3)


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    X, y = _sequence_task(n=96)

    def make():
        net = fnn.Network([fnn.GRU(6, return_sequences=True), fnn.LSTM(5), fnn.Dense(2)], input_shape=(8, 2),
                          seed=3, backend="reference")
        return net, fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=32, verbose=0, seed=0)

    net_a, tr_a = make()
    tr_a.fit(X, y, epochs=3)
    net_b, tr_b = make()
    tr_b.fit(X, y, epochs=1)
    fnn.save_checkpoint(tmp_path / "ck.fnn", tr_b)
    net_c, tr_c = make()
    tr_c.fit(X, y, epochs=3, resume_from=tmp_path / "ck.fnn")
    np.testing.assert_array_equal(net_c.params, net_a.params)


# --------------------------------------------------------------------------- bad input
def test_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="units"):
        fnn.LSTM(0)
    with pytest.raises(TypeError, match="return_sequences"):
        fnn.GRU(4, return_sequences="yes")
    with pytest.raises(TypeError, match="reset_after"):
        fnn.GRU(4, reset_after=1)
    with pytest.raises(ValueError, match="LSTM takes sequences"):
        fnn.Network([fnn.LSTM(4)], input_shape=(28,))
    with pytest.raises(ValueError, match="input shape is unknown"):
        fnn.LSTM(4).param_shapes()


def test_a_2d_array_is_rejected_before_anything_changes():
    X, y = _sequence_task(n=32)
    net = fnn.Network([fnn.LSTM(4), fnn.Dense(2)], input_shape=(8, 2), seed=0)
    before = net.params.copy()
    tr = fnn.Trainer(net, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 8, 2\)"):
        tr.fit(X.reshape(32, 16), y)
    with pytest.raises(ValueError, match=r"LSTM expects sequences of shape \(n, 8, 2\)"):
        net.layers[0].forward(X[:, :4])
    np.testing.assert_array_equal(net.params, before)


def test_model_file_configs_are_validated():
    from fastnn.layers import layer_from_config

    with pytest.raises(ValueError, match="units"):
        layer_from_config("GRU", {"units": 0, "return_sequences": False, "reset_after": True})
    with pytest.raises(TypeError, match="reset_after"):
        layer_from_config("GRU", {"units": 3, "return_sequences": False, "reset_after": "no"})
    layer = layer_from_config("LSTM", fnn.LSTM(7, return_sequences=True).get_config())
    assert layer.units == 7 and layer.return_sequences


# --------------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("n,T", [(1, 1), (1, 7), (2, 4)])
def test_bidirectional_gradients(n, T, return_sequences, backend):
    F = 3
    bi = fnn.Bidirectional(fnn.GRU(3, return_sequences=return_sequences))
    layers = [bi, fnn.Flatten(), fnn.Dense(2)] if return_sequences else [bi, fnn.Dense(2)]
    net = fnn.Network(layers, input_shape=(T, F), seed=0, dtype="float64", backend=backend)
    rng = np.random.default_rng(T)
    net.params[...] = rng.standard_normal(net.n_params) * 0.5
    X, y = rng.standard_normal((n, T, F)), rng.standard_normal((n, 2))
    _, analytic, dX = _loss_and_grads(net, X, y, backend)
    np.testing.assert_allclose(analytic, _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], net.params),
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dX.reshape(X.shape), _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], X),
                               rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bidirectional_parity_with_torch(backend):
    torch = pytest.importorskip("torch")
    n, T, F, k = 3, 5, 4, 6
    net = fnn.Network([fnn.Bidirectional(fnn.LSTM(k, return_sequences=True))], input_shape=(T, F), seed=0,
                      dtype="float64", backend=backend)
    net.params[...] = np.random.default_rng(1).standard_normal(net.n_params) * 0.4
    bi = net.layers[0]
    X = np.random.default_rng(2).standard_normal((n, T, F))
    mod = torch.nn.LSTM(F, k, batch_first=True, bidirectional=True, dtype=torch.float64)
    with torch.no_grad():
        for suffix, part in (("", bi.forward_layer), ("_reverse", bi.backward_layer)):
            getattr(mod, "weight_ih_l0" + suffix).copy_(torch.tensor(part.params["W"].T))
            getattr(mod, "weight_hh_l0" + suffix).copy_(torch.tensor(part.params["U"].T))
            getattr(mod, "bias_ih_l0" + suffix).copy_(torch.tensor(part.params["b"]))
            getattr(mod, "bias_hh_l0" + suffix).zero_()
    expected, _ = mod(torch.tensor(X))
    np.testing.assert_allclose(net.forward(X).reshape(n, T, 2 * k), expected.detach().numpy(), rtol=1e-10,
                               atol=1e-12)


def test_bidirectional_errors_and_config():
    with pytest.raises(TypeError, match="wraps a SimpleRNN, LSTM or GRU"):
        fnn.Bidirectional(fnn.Dense(3))
    with pytest.raises(ValueError, match="Bidirectional config"):
        fnn.Bidirectional(layer_type="Dense", layer_config=[])
    bi = fnn.Bidirectional(layer_type="GRU", layer_config=[["units", 4], ["reset_after", False]])
    assert bi.backward_layer.units == 4 and not bi.backward_layer.reset_after


# --------------------------------------------------------------------------- padding masks
MASKS = np.array([[1, 1, 1, 1, 0, 0, 0],    # post-padding
                  [0, 0, 1, 1, 1, 1, 1],    # pre-padding (Keras pad_sequences' default)
                  [1, 0, 1, 0, 0, 1, 1]])   # gaps


def _padded(X, mask, value=0.0):
    Xp = X.copy()
    Xp[mask == 0] = value
    return Xp


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_masked_steps_are_skipped(kind, backend):
    """The last state with a mask equals the naive cell run over the real steps only."""
    T, F = 7, 3
    net = _net(kind, T, F, backend, return_sequences=False)
    rnn = net.layers[0]
    X = np.random.default_rng(4).standard_normal((3, T, F))
    got = rnn.forward(X, backend=backend, mask=MASKS)
    p = rnn.params
    for s in range(3):
        Xs = X[s:s + 1, MASKS[s] == 1]
        if kind == "SimpleRNN":
            expected = naive.simple_rnn(Xs, p["W"], p["U"], p["b"])
        elif kind == "LSTM":
            expected = naive.lstm(Xs, p["W"], p["U"], p["b"])
        elif rnn.reset_after:
            expected = naive.gru(Xs, p["W"], p["U"], p["b"][0], p["b"][1], True)
        else:
            expected = naive.gru(Xs, p["W"], p["U"], p["b"], None, False)
        np.testing.assert_allclose(got[s], expected[0, -1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_masked_gradients_match_central_differences(kind, return_sequences, backend):
    T, F = 7, 3
    rnn = LAYERS[kind](return_sequences=return_sequences)
    tail = [fnn.GlobalAveragePooling1D(), fnn.Dense(2)] if return_sequences else [fnn.Dense(2)]
    net = fnn.Network([fnn.Masking(0.0), rnn, *tail], input_shape=(T, F), seed=0, dtype="float64", backend=backend)
    rng = np.random.default_rng(9)
    net.params[...] = rng.standard_normal(net.n_params) * 0.5
    X = _padded(rng.standard_normal((3, T, F)), MASKS)
    y = rng.standard_normal((3, 2))
    _, analytic, _ = _loss_and_grads(net, X, y, backend)
    assert net.layers[1].output_mask is (net.layers[0].output_mask if return_sequences else None)
    np.testing.assert_allclose(analytic, _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], net.params),
                               rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_lstm_parity_with_torch_packed_sequences(backend):
    torch = pytest.importorskip("torch")
    T, F = 6, 3
    lengths = [6, 3, 1, 4]
    net = _net("LSTM", T, F, backend, return_sequences=False)
    rnn = net.layers[0]
    rng = np.random.default_rng(12)
    X = rng.standard_normal((4, T, F))
    mask = (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype(float)
    R = rng.standard_normal((4, rnn.units))
    out = rnn.forward(X, training=True, backend=backend, mask=mask)
    dX = rnn.backward(R, backend=backend)
    mod, _ = _torch_module(torch, "LSTM", rnn)
    Xt = torch.tensor(X, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(Xt, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = mod(packed)
    (h_n[0] * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out, h_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX.reshape(X.shape), Xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rnn.grads["W"].T, mod.weight_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_mask_of_the_wrong_shape_is_a_value_error():
    net = fnn.Network([fnn.GRU(3)], input_shape=(7, 2), seed=0)
    X = np.zeros((3, 7, 2), np.float32)
    with pytest.raises(ValueError, match=r"GRU mask must have shape \(n, T\) = \(3, 7\).*got \(3, 6\)"):
        net.layers[0].forward(X, mask=np.ones((3, 6)))
    with pytest.raises(ValueError, match="mask must hold 0/1"):
        net.layers[0].forward(X, mask=np.full((3, 7), 0.5))
    with pytest.raises(ValueError, match=r"Bidirectional mask must have shape"):
        fnn.Network([fnn.Bidirectional(fnn.LSTM(2))], input_shape=(7, 2)).layers[0].forward(X, mask=np.ones(7))


def test_masked_bidirectional_reads_only_the_real_steps():
    T, F = 6, 2
    net = fnn.Network([fnn.Masking(), fnn.Bidirectional(fnn.GRU(3))], input_shape=(T, F), seed=0, dtype="float64")
    X = np.random.default_rng(0).standard_normal((1, T, F))
    X[0, 4:] = 0  # padding at the end
    short = fnn.Network([fnn.Bidirectional(fnn.GRU(3))], input_shape=(4, F), dtype="float64")
    short.params[...] = net.params
    np.testing.assert_allclose(net.forward(X), short.forward(X[:, :4]), rtol=1e-12, atol=1e-12)


def test_the_mask_passes_through_dropout():
    net = fnn.Network([fnn.Embedding(5, 3, mask_zero=True), fnn.Dropout(0.5), fnn.LSTM(2)], input_shape=(4,),
                      seed=0, dtype="float64")
    ids = np.array([[2, 3, 0, 0]])
    trimmed = fnn.Network([fnn.Embedding(5, 3), fnn.LSTM(2)], input_shape=(2,), dtype="float64")
    trimmed.params[...] = net.params
    np.testing.assert_allclose(net.forward(ids), trimmed.forward(ids[:, :2]), rtol=1e-12, atol=1e-12)
