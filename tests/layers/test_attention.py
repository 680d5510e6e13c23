"""MultiHeadAttention, TransformerBlock, Embedding, PositionalEncoding, GlobalAveragePooling1D, TimeDistributed:
float64 gradient checks (T = 1 and 7, batch 1, causal), the loop-level oracle, torch parity, training, files,
bad input."""
import numpy as np
import pytest

import fastnn as fnn
import naive  # tests/naive.py
from naive import numeric_grad as _numeric  # tests/naive.py
from fastnn import losses

BACKENDS = [b for b in ("reference", "numba") if b in fnn.available_backends()]


def _loss_and_grads(net, X, y, backend):
    loss = losses.get("mse")
    A = X.reshape(len(X), -1)
    for layer in net.layers:
        A = layer.forward(A, training=True, backend=backend)
    dout = np.empty_like(A)
    target = loss.prepare_targets(y, net.n_outputs, net.dtype)
    value = fnn.get_backend(backend).loss_forward_backward(loss.code, A, target, 1.0 / len(X), dout) / len(X)
    dA = dout
    for layer in reversed(net.layers):
        dA = layer.backward(dA, backend=backend, need_dX=True)
    return value, net.grads.copy(), None if dA is None else dA.copy()


def _gradcheck(net, X, y, backend, check_dX=True):
    rng = np.random.default_rng(5)
    net.params[...] += rng.standard_normal(net.n_params) * 0.2  # non-trivial biases and LayerNorm scales
    _, analytic, dX = _loss_and_grads(net, X, y, backend)
    numeric = _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], net.params)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    if check_dX:
        numeric_dX = _numeric(lambda: _loss_and_grads(net, X, y, backend)[0], X)
        np.testing.assert_allclose(dX.reshape(X.shape), numeric_dX, rtol=1e-5, atol=1e-8)


HEAD = [fnn.GlobalAveragePooling1D(), fnn.Dense(2)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n,T", [(1, 1), (1, 7), (3, 7)])
def test_attention_gradients(n, T, causal, backend):
    D = 4
    net = fnn.Network([fnn.MultiHeadAttention(2, causal=causal), fnn.TimeDistributed(fnn.Dense(3, "tanh")),
                       fnn.Flatten(), fnn.Dense(2)], input_shape=(T, D), seed=0, dtype="float64", backend=backend)
    rng = np.random.default_rng(n + T)
    _gradcheck(net, rng.standard_normal((n, T, D)), rng.standard_normal((n, 2)), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,T", [(1, 1), (1, 7), (2, 5)])
def test_transformer_block_gradients(n, T, backend):
    D = 4
    net = fnn.Network([fnn.PositionalEncoding(), fnn.TransformerBlock(2, 6), fnn.GlobalAveragePooling1D(),
                       fnn.Dense(2)], input_shape=(T, D), seed=0, dtype="float64", backend=backend)
    rng = np.random.default_rng(n * T)
    _gradcheck(net, rng.standard_normal((n, T, D)), rng.standard_normal((n, 2)), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_embedding_gradients(backend):
    net = fnn.Network([fnn.Embedding(5, 3), fnn.LSTM(4), fnn.Dense(2)], input_shape=(6,), seed=0, dtype="float64",
                      backend=backend)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, (2, 6)).astype(np.float64)
    _gradcheck(net, ids, rng.standard_normal((2, 2)), backend, check_dX=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_the_naive_loops(causal, backend):
    T, D = 5, 6
    net = fnn.Network([fnn.MultiHeadAttention(3, causal=causal)], input_shape=(T, D), seed=1, dtype="float64",
                      backend=backend)
    net.params[...] += np.random.default_rng(2).standard_normal(net.n_params) * 0.1
    X = np.random.default_rng(3).standard_normal((2, T, D))
    p = net.layers[0].params
    expected = naive.self_attention(X, p["Wqkv"], p["bqkv"], p["Wo"], p["bo"], 3, causal)
    np.testing.assert_allclose(net.forward(X).reshape(2, T, D), expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_attention_parity_with_torch(causal, backend):
    torch = pytest.importorskip("torch")
    n, T, D, h = 3, 6, 8, 2
    net = fnn.Network([fnn.MultiHeadAttention(h, causal=causal)], input_shape=(T, D), seed=4, dtype="float64",
                      backend=backend)
    layer = net.layers[0]
    net.params[...] += np.random.default_rng(6).standard_normal(net.n_params) * 0.1
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, T, D))
    R = rng.standard_normal((n, T, D))
    out = layer.forward(X, training=True, backend=backend)
    dX = layer.backward(R.reshape(n, -1), backend=backend)
    mha = torch.nn.MultiheadAttention(D, h, batch_first=True, dtype=torch.float64)
    p = layer.params
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(p["Wqkv"].T))
        mha.in_proj_bias.copy_(torch.tensor(p["bqkv"]))
        mha.out_proj.weight.copy_(torch.tensor(p["Wo"].T))
        mha.out_proj.bias.copy_(torch.tensor(p["bo"]))
    Xt = torch.tensor(X, requires_grad=True)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    out_t, _ = mha(Xt, Xt, Xt, attn_mask=mask, need_weights=False)
    (out_t * torch.tensor(R)).sum().backward()
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.reshape(n, T, D), out_t.detach().numpy(), **tol)
    np.testing.assert_allclose(dX.reshape(X.shape), Xt.grad.numpy(), **tol)
    g = layer.grads
    np.testing.assert_allclose(g["Wqkv"].T, mha.in_proj_weight.grad.numpy(), **tol)
    np.testing.assert_allclose(g["bqkv"], mha.in_proj_bias.grad.numpy(), **tol)
    np.testing.assert_allclose(g["Wo"].T, mha.out_proj.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(g["bo"], mha.out_proj.bias.grad.numpy(), **tol)


def test_causal_attention_does_not_look_ahead():
    T, D = 6, 4
    net = fnn.Network([fnn.TransformerBlock(2, 8, causal=True)], input_shape=(T, D), seed=0)
    X = np.random.default_rng(0).standard_normal((1, T, D)).astype(np.float32)
    Y = X.copy()
    Y[0, 4:] += 5.0  # change the future only
    a, b = net.forward(X).reshape(T, D), net.forward(Y).reshape(T, D)
    np.testing.assert_allclose(a[:4], b[:4], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[4:], b[4:])


def test_positional_encoding_and_pooling_values():
    pe = fnn.layers.sequence.sinusoidal_encoding(3, 4)
    np.testing.assert_allclose(pe[1], [np.sin(1), np.cos(1), np.sin(1e-2), np.cos(1e-2)])
    net = fnn.Network([fnn.PositionalEncoding(), fnn.GlobalAveragePooling1D()], input_shape=(3, 4), dtype="float64")
    X = np.arange(24, dtype=float).reshape(2, 3, 4)
    np.testing.assert_allclose(net.forward(X), (X + pe).mean(axis=1))


# --------------------------------------------------------------------------- training, files, bad input
def _copy_task(n=384, T=6, V=5, seed=0):
    """Token sequences; label = the first token (a transformer must look back to step 0)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, V, (n, T))
    return X, X[:, 0].copy()


def test_transformer_trains_on_tokens_and_round_trips(tmp_path):
    X, y = _copy_task()
    net = fnn.Network([fnn.Embedding(5, 16), fnn.PositionalEncoding(), fnn.TransformerBlock(2, 32, dropout=0.1),
                       fnn.TimeDistributed(fnn.Dense(16, "relu")), fnn.GlobalAveragePooling1D(), fnn.Dense(5)],
                      input_shape=(6,), seed=0)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(3e-3), batch_size=32, verbose=0, seed=0, clip_norm=1.0)
    hist = tr.fit(X, y, epochs=15)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert tr.evaluate(X, y)["accuracy"] > 0.9
    path = tmp_path / "tf.fnn"
    net.save(path)
    back = fnn.Network.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert "TransformerBlock" in net.summary(print_fn=None)


def test_dropout_in_the_block_is_reproducible_and_resumable(tmp_path):
    X, y = _copy_task(n=96)

    def make():
        net = fnn.Network([fnn.Embedding(5, 8), fnn.TransformerBlock(2, 8, dropout=0.3), fnn.Flatten(),
                           fnn.Dense(5)], input_shape=(6,), seed=2, backend="reference")
        return net, fnn.Trainer(net, batch_size=32, verbose=0, seed=0)

    a, tr_a = make()
    tr_a.fit(X, y, epochs=2)
    b, tr_b = make()
    tr_b.fit(X, y, epochs=1)
    fnn.save_checkpoint(tmp_path / "ck.fnn", tr_b)
    c, tr_c = make()
    tr_c.fit(X, y, epochs=2, resume_from=tmp_path / "ck.fnn")
    np.testing.assert_array_equal(c.params, a.params)


def test_bad_input_is_a_value_error_before_anything_changes():
    X, y = _copy_task(n=32)
    net = fnn.Network([fnn.Embedding(5, 4), fnn.GlobalAveragePooling1D(), fnn.Dense(5)], input_shape=(6,), seed=0)
    before = net.params.copy()
    tr = fnn.Trainer(net, batch_size=8, verbose=0)
    bad = X.copy()
    bad[3, 2] = 5
    with pytest.raises(ValueError, match=r"ids must be integers in \[0, 5\).*\(3, 2\)"):
        tr.fit(bad, y)
    with pytest.raises(ValueError, match="ids must be integers"):
        net.predict(X - 0.5)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match=r"does not split the width D=6"):
        fnn.Network([fnn.MultiHeadAttention(4)], input_shape=(3, 6))
    with pytest.raises(ValueError, match=r"does not split the width D=8"):
        fnn.Network([fnn.MultiHeadAttention(2, key_dim=3)], input_shape=(3, 8))
    with pytest.raises(ValueError, match="takes sequences"):
        fnn.Network([fnn.TransformerBlock(2, 8)], input_shape=(8,))
    with pytest.raises(ValueError, match="dropout"):
        fnn.TransformerBlock(2, 8, dropout=1.0)
    with pytest.raises(ValueError, match="input_dim"):
        fnn.Embedding(0, 3)
    with pytest.raises(TypeError, match="wraps a fastnn layer"):
        fnn.TimeDistributed("Dense")


def test_time_distributed_dense_is_one_dense_per_step():
    net = fnn.Network([fnn.TimeDistributed(fnn.Dense(3))], input_shape=(4, 2), seed=0, dtype="float64")
    X = np.random.default_rng(0).standard_normal((5, 4, 2))
    inner = net.layers[0].layer
    np.testing.assert_allclose(net.forward(X).reshape(5, 4, 3), X @ inner.W + inner.b)
    cfg = net.layers[0].get_config()
    assert fnn.layers.layer_from_config("TimeDistributed", cfg).layer.n_outputs == 3
    with pytest.raises(ValueError, match="TimeDistributed config"):
        fnn.layers.layer_from_config("TimeDistributed", {"layer_type": "Dense", "layer_config": {"n_out": 3}})


# --------------------------------------------------------------------------- padding masks
@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_transformer_gradients(backend):
    net = fnn.Network([fnn.Embedding(5, 4, mask_zero=True), fnn.PositionalEncoding(), fnn.TransformerBlock(2, 6),
                       fnn.GlobalAveragePooling1D(), fnn.Dense(2)], input_shape=(6,), seed=0, dtype="float64",
                      backend=backend)
    ids = np.array([[3, 1, 4, 0, 0, 0], [0, 0, 2, 2, 1, 3], [1, 0, 4, 0, 2, 0]], float)
    _gradcheck(net, ids, np.random.default_rng(1).standard_normal((3, 2)), backend, check_dX=False)
    np.testing.assert_array_equal(net.layers[3].incoming_mask(), ids != 0)  # the mask reached the pooling


@pytest.mark.parametrize("backend", BACKENDS)
def test_padded_steps_do_not_change_the_real_ones(backend):
    T, D = 6, 4
    net = fnn.Network([fnn.MultiHeadAttention(2)], input_shape=(T, D), seed=0, dtype="float64", backend=backend)
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    X = np.random.default_rng(0).standard_normal((1, T, D))
    Y = X.copy()
    Y[0, 4:] = 100.0
    layer = net.layers[0]
    a = layer.forward(X, backend=backend, mask=mask).reshape(T, D)
    b = layer.forward(Y, backend=backend, mask=mask).reshape(T, D)
    np.testing.assert_allclose(a[:4], b[:4], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"MultiHeadAttention mask must have shape \(n, T\) = \(1, 6\)"):
        layer.forward(X, mask=np.ones((6, 1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_padding_mask_parity_with_torch(backend):
    torch = pytest.importorskip("torch")
    n, T, D, h = 3, 5, 8, 2
    net = fnn.Network([fnn.MultiHeadAttention(h)], input_shape=(T, D), seed=4, dtype="float64", backend=backend)
    layer = net.layers[0]
    rng = np.random.default_rng(8)
    X, R = rng.standard_normal((n, T, D)), rng.standard_normal((n, T, D))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]])
    out = layer.forward(X, training=True, backend=backend, mask=mask)
    dX = layer.backward(R.reshape(n, -1), backend=backend)
    mha = torch.nn.MultiheadAttention(D, h, batch_first=True, dtype=torch.float64)
    p = layer.params
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(p["Wqkv"].T))
        mha.in_proj_bias.copy_(torch.tensor(p["bqkv"]))
        mha.out_proj.weight.copy_(torch.tensor(p["Wo"].T))
        mha.out_proj.bias.copy_(torch.tensor(p["bo"]))
    Xt = torch.tensor(X, requires_grad=True)
    out_t, _ = mha(Xt, Xt, Xt, key_padding_mask=torch.tensor(mask == 0), need_weights=False)
    (out_t * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out.reshape(n, T, D), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX.reshape(X.shape), Xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["Wqkv"].T, mha.in_proj_weight.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_token_ids_do_not_warn_as_unscaled_integers_and_penalties_pass_through_time_distributed():
    import warnings

    X, y = _copy_task(n=64)
    net = fnn.Network([fnn.Embedding(5, 4), fnn.TimeDistributed(fnn.Dense(3, l2=0.5)), fnn.Flatten(), fnn.Dense(5)],
                      input_shape=(6,), seed=0)
    assert net.layers[1].has_penalty
    tr = fnn.Trainer(net, batch_size=64, verbose=0, optimizer=fnn.SGD(1e-12))  # ~fixed weights: loss comparable
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # integer ids up to 4 are not unscaled pixels
        hist = tr.fit(X, y, epochs=1)
    plain = tr.evaluate(X, y)["loss"]
    assert hist["loss"][0] == pytest.approx(plain + net.layers[1].penalty(), rel=1e-5)
