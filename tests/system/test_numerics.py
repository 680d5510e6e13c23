"""Numerics at the edges: huge and equal logits, non-finite training, non-finite checkpoints.

- softmax (activation), the log-softmax inside the cross-entropy kernel,
  cross-entropy and binary cross-entropy from logits at logits of +-1e4,
  +-1e30 and all-equal rows, on every backend and both dtypes: no NaN/Inf in
  values or gradients, and the closed-form values;
- an Inf weight or a learning rate of 1e10 makes ``fit`` raise
  ``NonFiniteError`` naming the step, on every backend and both the fused
  and the per-layer path, and leaves finite weights finite;
- an optimizer moment overflowing to Inf under a finite loss raises too (the guard checks the
  optimizer state and buffers, not only the loss and weights);
- no checkpoint with non-finite weights is ever written.
"""
import math
import re

import numpy as np
import pytest

import fastnn as fnn
from fastnn.errors import NonFiniteError
from fastnn.kernels import available_backends, get_backend
from fastnn.kernels.codes import ACT_SIGMOID, ACT_SOFTMAX, ACT_TANH, LOSS_BCE_LOGITS, LOSS_SOFTMAX_CE

BACKENDS = ["reference"] + [b for b in ("numba", "cython") if b in available_backends()]
DTYPES = [np.float32, np.float64]

# rows of logits: (logits, expected softmax)
BIG = [1e4, 1e30]
ROWS = []
for big in BIG:
    ROWS += [([big, -big, 0.0], [1.0, 0.0, 0.0]),
             ([-big, big, 0.0], [0.0, 1.0, 0.0]),
             ([-big, -big, 0.0], [0.0, 0.0, 1.0]),
             ([big, big, -big], [0.5, 0.5, 0.0]),
             ([big, big, big], [1 / 3] * 3),
             ([-big, -big, -big], [1 / 3] * 3)]
ROWS += [([0.0, 0.0, 0.0], [1 / 3] * 3), ([7.5, 7.5, 7.5], [1 / 3] * 3)]


def _logits(dtype):
    Z = np.array([r for r, _ in ROWS], dtype=dtype)
    P = np.array([p for _, p in ROWS], dtype=np.float64)
    return Z, P


def _expected_neg_log_softmax(Z):
    """-log softmax in exact-enough float64 arithmetic (logits are exact in float32 and float64)."""
    Z = Z.astype(np.float64)
    mx = Z.max(axis=1, keepdims=True)
    s = np.exp(Z - mx).sum(axis=1, keepdims=True)
    return -(Z - mx - np.log(s))


@pytest.fixture(params=BACKENDS)
def kern(request):
    return get_backend(request.param)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def test_softmax_activation_at_huge_and_equal_logits(kern, dtype):
    Z, P = _logits(dtype)
    A = np.empty_like(Z)
    kern.activation_forward(Z, ACT_SOFTMAX, 0.0, A)
    assert np.isfinite(A).all(), A
    np.testing.assert_allclose(A, P, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6)
    dA = np.random.default_rng(0).standard_normal(Z.shape).astype(dtype)
    dZ = np.empty_like(Z)
    kern.activation_backward(Z, A, dA, ACT_SOFTMAX, 0.0, dZ)
    assert np.isfinite(dZ).all(), dZ
    expected = A * (dA - (dA * A).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(dZ, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", [ACT_SIGMOID, ACT_TANH])
def test_saturating_activations_at_huge_inputs(kern, dtype, act):
    Z = np.array([[1e4, -1e4, 1e30, -1e30, 0.0]], dtype)
    A, dZ = np.empty_like(Z), np.empty_like(Z)
    kern.activation_forward(Z, act, 0.0, A)
    kern.activation_backward(Z, A, np.ones_like(Z), act, 0.0, dZ)
    assert np.isfinite(A).all() and np.isfinite(dZ).all(), (A, dZ)
    lo = 0.0 if act == ACT_SIGMOID else -1.0
    np.testing.assert_allclose(A[0, :4], [1.0, lo, 1.0, lo])


@pytest.mark.parametrize("onehot", [False, True], ids=["index", "onehot"])
def test_cross_entropy_and_log_softmax_at_huge_and_equal_logits(kern, dtype, onehot):
    """The CE kernel's per-row loss is -log softmax[target]: check it for every class of every row."""
    Z, P = _logits(dtype)
    n, k = Z.shape
    neg_logp = _expected_neg_log_softmax(Z)
    for c in range(k):
        if onehot:
            T = np.zeros((n, k), dtype)
            T[:, c] = 1
        else:
            T = np.full((n, 1), c, dtype)
        dout = np.empty_like(Z)
        total = kern.loss_forward_backward(LOSS_SOFTMAX_CE, Z, T, 1.0, dout)
        assert math.isfinite(total), (c, total)
        assert np.isfinite(dout).all(), (c, dout)
        np.testing.assert_allclose(total, neg_logp[:, c].sum(), rtol=1e-6)
        grad = P.copy()
        grad[:, c] -= 1
        np.testing.assert_allclose(dout, grad, rtol=1e-5, atol=1e-6)
        # one row at a time: the per-row value is the log-softmax (no cancellation across rows)
        for i in range(n):
            d1 = np.empty_like(Z[i:i + 1])
            v = kern.loss_forward_backward(LOSS_SOFTMAX_CE, Z[i:i + 1], T[i:i + 1], 1.0, d1)
            np.testing.assert_allclose(v, neg_logp[i, c], rtol=1e-6, atol=1e-6,
                                       err_msg=f"row {ROWS[i][0]} class {c}")


def test_cross_entropy_soft_targets_at_huge_logits(kern, dtype):
    Z, P = _logits(dtype)
    T = np.full(Z.shape, 1 / 3, dtype)
    dout = np.empty_like(Z)
    total = kern.loss_forward_backward(LOSS_SOFTMAX_CE, Z, T, 0.5, dout)
    assert math.isfinite(total) and np.isfinite(dout).all()
    np.testing.assert_allclose(total, (_expected_neg_log_softmax(Z) * T.astype(np.float64)).sum(), rtol=1e-5)
    np.testing.assert_allclose(dout, 0.5 * (P - 1 / 3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("big", BIG)
def test_bce_from_logits_at_huge_logits(kern, dtype, big):
    Z = np.array([[big, -big, big, -big, big, -big, 0.0]], dtype)
    T = np.array([[1, 0, 0, 1, 0.5, 0.5, 1]], dtype)
    dout = np.empty_like(Z)
    total = kern.loss_forward_backward(LOSS_BCE_LOGITS, Z, T, 1.0, dout)
    assert math.isfinite(total) and np.isfinite(dout).all(), (total, dout)
    # per element: max(z, 0) - z*t + log1p(exp(-|z|)); mean over the 7 outputs
    per = [0.0, 0.0, big, big, big / 2, big / 2, math.log(2)]
    np.testing.assert_allclose(total, sum(per) / 7, rtol=1e-6)
    sig = np.array([1, 0, 1, 0, 1, 0, 0.5])
    np.testing.assert_allclose(dout[0], (sig - T[0]) / 7, rtol=1e-6, atol=1e-7)


def test_network_probabilities_at_huge_logits(dtype):
    """predict_proba's own softmax/sigmoid (network.py) at logits of +-1e30."""
    for backend in BACKENDS:
        for n_out in (3, 1):
            net = fnn.Network([fnn.Dense(2, n_out)], seed=0, backend=backend, dtype=dtype)
            net.layers[0].W[...] = np.array([[1e30] * n_out, [-1e30] * n_out], dtype)[:, :n_out] * \
                np.arange(1, n_out + 1, dtype=dtype)
            net.layers[0].b[...] = 0
            X = np.array([[1, 0], [0, 1], [0, 0]], dtype)
            proba = net.predict_proba(X)
            assert np.isfinite(proba).all(), (backend, n_out, proba)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------- the non-finite guard

def _data(n=96, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X, rng.integers(0, k, n)


def _net(backend, dropout=False, dtype="float32"):
    layers = [fnn.Dense(6, 16, "relu")] + ([fnn.Dropout(0.1)] if dropout else []) + [fnn.Dense(16, 3)]
    return fnn.Network(layers, seed=0, backend=backend, dtype=dtype)


STEP = re.compile(r"step (\d+)")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dropout", [False, True], ids=["fused", "per-layer"])
def test_inf_weight_raises_nonfinite_naming_the_step(backend, dropout):
    X, y = _data()
    net = _net(backend, dropout)
    net.params[0] = np.inf
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.1), batch_size=32, seed=0, verbose=0,
                     path="per-layer" if dropout else "fused")
    with pytest.raises(NonFiniteError, match=r"at step 1\b") as info:
        tr.fit(X, y, epochs=2)
    assert tr.last_plan["path"] == ("per-layer" if dropout else "fused")
    assert isinstance(info.value, FloatingPointError)
    assert tr.epoch == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dropout", [False, True], ids=["fused", "per-layer"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_learning_rate_raises_nonfinite_and_keeps_weights_finite(backend, dropout, dtype):
    X, y = _data()
    net = _net(backend, dropout, dtype)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(1e10), batch_size=16, seed=0, verbose=0)
    with pytest.raises(NonFiniteError) as info:
        tr.fit(X, y, epochs=20)
    m = STEP.search(str(info.value))
    assert m, str(info.value)
    assert int(m.group(1)) >= 1
    assert np.isfinite(net.params).all(), "the weights of the last finite state are restored"
    assert np.isfinite(tr.optimizer.state).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_with_huge_learning_rate_stays_finite_or_raises(backend):
    """Adam's step is bounded by lr, so lr=1e10 gives huge but finite weights for a while; any
    non-finite loss must still raise NonFiniteError (never a silent NaN history)."""
    X, y = _data()
    net = _net(backend)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e10), batch_size=16, seed=0, verbose=0)
    try:
        hist = tr.fit(X, y, epochs=3)
    except NonFiniteError as exc:
        assert STEP.search(str(exc))
        assert np.isfinite(net.params).all()
    else:
        assert np.isfinite(hist["loss"]).all() and np.isfinite(net.params).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["fused", "per-layer"])
@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_optimizer_moment_overflow_with_finite_loss_raises(backend, path):
    """Gradients of ~1e22 overflow Adam's float32 second moment to Inf while the loss (~1e24) and the
    weights stay finite: the update becomes 0 and those weights freeze, silently. The guard sees it."""
    net = fnn.Network([fnn.Dense(1, 1)], seed=0, backend=backend)
    X = np.full((16, 1), 1e12, np.float32)
    tr = fnn.Trainer(net, loss="mse", optimizer=fnn.Adam(1e-3), batch_size=16, seed=0, verbose=0, path=path)
    before = net.params.copy()
    with pytest.raises(NonFiniteError, match="optimizer state") as info:
        tr.fit(X, np.zeros((16, 1), np.float32), epochs=2)
    assert STEP.search(str(info.value))
    np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(tr.optimizer.state).all() and tr.optimizer.iterations == 0


# ---------------------------------------------------------------------------- no non-finite checkpoint

def test_training_blow_up_writes_no_checkpoint(tmp_path):
    """With the guard on, training stops before any callback sees non-finite weights."""
    X, y = _data()
    for backend in BACKENDS:
        path = tmp_path / f"{backend}-{{epoch}}.ckpt"
        cb = fnn.ModelCheckpoint(str(path), monitor="loss", save_training_state=True)
        tr = fnn.Trainer(_net(backend), optimizer=fnn.SGD(1e10), batch_size=16, seed=0, verbose=0,
                         callbacks=[cb])
        with pytest.raises(NonFiniteError):
            tr.fit(X, y, epochs=30)
        for f in tmp_path.glob(f"{backend}-*.ckpt"):
            assert np.isfinite(fnn.Network.load(f).params).all(), f


def _nan_trainer():
    X, y = _data()
    tr = fnn.Trainer(_net("reference"), optimizer=fnn.Adam(1e-3), batch_size=32, seed=0, verbose=0)
    tr.fit(X, y, epochs=1)
    tr.network.params[3] = np.nan
    return tr




def test_save_checkpoint_refuses_nan_weights(tmp_path):
    tr = _nan_trainer()
    with pytest.raises((NonFiniteError, ValueError)):
        fnn.save_checkpoint(tmp_path / "c.ckpt", tr)
    assert not list(tmp_path.iterdir())


def test_save_checkpoint_refuses_nan_optimizer_state(tmp_path):
    tr = _nan_trainer()
    tr.network.params[3] = 0.0
    tr.optimizer.state[1, 5] = np.inf
    with pytest.raises((NonFiniteError, ValueError)):
        fnn.save_checkpoint(tmp_path / "c.ckpt", tr)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("training_state", [True, False], ids=["checkpoint", "model"])
def test_model_checkpoint_never_writes_nan_weights(tmp_path, training_state):
    tr = _nan_trainer()
    cb = fnn.ModelCheckpoint(str(tmp_path / "m-{epoch}.fnn"), monitor="loss", save_training_state=training_state)
    cb.set_trainer(tr)
    try:
        cb.on_epoch_end(0, {"loss": 0.5})
    except (NonFiniteError, ValueError):
        pass
    written = list(tmp_path.iterdir())
    assert not written or all(np.isfinite(fnn.Network.load(f).params).all() for f in written)


def test_unguarded_blow_up_with_model_checkpoint_writes_no_nan(tmp_path):
    """check_finite=False + ModelCheckpoint(every epoch): the run may go NaN, the files must not."""
    X, y = _data()
    cb = fnn.ModelCheckpoint(str(tmp_path / "m-{epoch}.fnn"), monitor="loss")
    tr = fnn.Trainer(_net("reference"), optimizer=fnn.SGD(1e10), batch_size=16, seed=0, verbose=0,
                     check_finite=False, callbacks=[cb])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tr.fit(X, y, epochs=6)
        except (NonFiniteError, ValueError, FloatingPointError):
            pass
    assert not np.isfinite(tr.network.params).all(), "the run was meant to blow up"
    for f in tmp_path.iterdir():
        assert np.isfinite(fnn.Network.load(f).params).all(), f"{f.name} holds non-finite weights"


# ---------------------------------------------------------------------------- every layer type at extreme inputs

def _seed_fuzz_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_loaders.py"
    spec = importlib.util.spec_from_file_location("fuzz_loaders", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_FZ = _seed_fuzz_module()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed_name", sorted(_FZ.seed_networks()))
@pytest.mark.parametrize("big", [1e30, -1e30, 3e38])
@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_every_layer_type_at_extreme_inputs_stays_finite_or_raises(backend, seed_name, big):
    """Each seed network (together: every layer type) trained on +-1e30 inputs: the weights stay finite,
    or NonFiniteError is raised with the weights of before the failing chunk."""
    net = _FZ.build_seed_network(seed_name)
    net.backend = backend
    n_in = net.n_inputs
    X = np.full((16, n_in), big, net.dtype).reshape((16,) + tuple(net.input_shape))
    act = net.layers[-1].activation
    if act == "sigmoid":
        loss, y = "binary_cross_entropy", np.eye(2)[np.arange(16) % 2]
    elif act in ("linear", "softmax"):
        loss, y = "cross_entropy", np.arange(16) % net.n_outputs
    else:
        loss, y = "mse", np.zeros((16, net.n_outputs))
    tr = fnn.Trainer(net, loss=loss, optimizer=fnn.Adam(1e-3), batch_size=8, seed=0, verbose=0)
    before = net.params.copy()
    if getattr(net.layers[0], "takes_token_ids", False):  # an id of 1e30 is no token: refused up front
        with pytest.raises(ValueError, match="id"):
            tr.fit(X, y, epochs=1)
        np.testing.assert_array_equal(net.params, before)
        return
    try:
        tr.fit(X, y, epochs=1)
    except NonFiniteError:
        np.testing.assert_array_equal(net.params, before)  # one chunk: restored to the start
    assert np.isfinite(net.params).all() and np.isfinite(net.buffers).all()
    assert np.isfinite(tr.optimizer.state).all()
