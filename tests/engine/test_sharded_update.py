"""The row-sharded runner's threaded reduce + update (issue 12): every shard thread reduces and updates its
span of the parameters; the result is bit for bit the serial tail's (numpy sum in shard order, penalties,
clip, one optimizer update), and a failing thread stops every thread."""
import threading

import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine, losses
from fastnn.engine.sharded import _shard_layers, param_spans
from fastnn.kernels import available_backends, codes, get_backend

COMPILED = [b for b in available_backends() if b != "reference"]
CE = losses.get("cross_entropy")
N, BATCH, T, F = 50, 16, 5, 4   # batches of 16, 16, 16 and 2 rows: the last leaves a shard of 3 empty


def _setup(backend, dtype, penalty, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, T * F)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, N)]
    reg = dict(l1=1e-3, l2=1e-2) if penalty else {}
    net = fnn.Network([fnn.LSTM(6), fnn.Dense(3, **reg)], input_shape=(T, F), seed=seed, dtype=dtype,
                      backend=backend)
    opt = fnn.Adam(1e-2)
    opt.build(net.n_params, net.dtype)
    return net, opt, X, Y


def _serial_oracle(kern, backend, net, opt, X, Y, perm, starts, n_shards, clip_norm, clip_value):
    """The serial tail the threads replaced: each shard's gradient in turn on one thread, their numpy sum
    in shard order, the penalties, ``clip_gradients`` and one ``optimizer_update`` of every parameter."""
    shard_grads = np.zeros((n_shards, net.n_params), net.dtype)
    shards = [_shard_layers(net, shard_grads[s]) for s in range(n_shards)]
    hyper = opt.hyper_vector(clip_norm, clip_value)
    lrs = opt.learning_rates(opt.iterations, len(starts))
    losses_ = []
    for j, start in enumerate(starts):
        m = min(BATCH, len(perm) - start)
        per = -(-m // n_shards)
        total = 0.0
        for s in range(n_shards):
            lo, hi = min(m, s * per), min(m, (s + 1) * per)
            shard_grads[s] = 0
            if hi == lo:
                continue
            A = X[perm[start + lo:start + hi]]
            for layer in shards[s][:-1]:
                A = layer.forward(A, training=True, backend=backend)
            A = shards[s][-1].forward(A, training=True, backend=backend, logits=True)
            dout = np.empty_like(A)
            total += kern.loss_forward_backward(CE.code, A, Y[perm[start + lo:start + hi]], 1.0 / m, dout)
            for i in range(len(shards[s]) - 1, -1, -1):
                dout = shards[s][i].backward(dout, backend=backend, need_dX=i > 0)
        np.copyto(net.grads, shard_grads[0])
        for s in range(1, n_shards):
            net.grads += shard_grads[s]
        loss = total / m
        for layer in net.layers:
            if getattr(layer, "has_penalty", False):
                loss += layer.penalty()
                layer.add_penalty_gradient()
        kern.clip_gradients(net.grads, clip_norm, clip_value)
        hyper[codes.H_LR] = lrs[j]
        kern.optimizer_update(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1)
        opt.iterations += 1
        losses_.append(loss)
    return np.array(losses_)


def _sharded(kern, backend, net, opt, X, Y, perm, starts, n_shards, clip_norm, clip_value):
    run = engine.sharded_runner(kern, backend, net, CE, opt, X, Y, BATCH, opt.hyper_vector(clip_norm, clip_value),
                                clip_norm, clip_value, n_shards)
    batch_loss, batch_correct = np.zeros(len(starts)), np.zeros(len(starts))
    run(perm, starts, batch_loss, batch_correct)
    return batch_loss


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip_norm,clip_value,penalty,n_shards", [
    (0.0, 0.0, False, 2), (0.0, 0.02, False, 2), (0.0, 0.02, True, 2), (0.0, 0.0, True, 3),
    (0.3, 0.0, False, 2), (0.3, 0.02, True, 3)])
def test_threaded_update_equals_the_serial_tail(backend, dtype, clip_norm, clip_value, penalty, n_shards):
    kern = get_backend(backend)
    perm = np.random.default_rng(1).permutation(N).astype(np.int64)
    starts = np.arange(0, N, BATCH)
    results = []
    for runner in (_serial_oracle, _sharded):
        net, opt, X, Y = _setup(backend, dtype, penalty)
        results.append((runner(kern, backend, net, opt, X, Y, perm, starts, n_shards, clip_norm, clip_value),
                        net.params.copy(), opt.state.copy(), net.grads.copy(), opt.iterations))
    (loss_a, params_a, state_a, grads_a, it_a), (loss_b, params_b, state_b, grads_b, it_b) = results
    assert it_a == it_b == len(starts)
    assert not np.array_equal(params_a, _setup(backend, dtype, penalty)[0].params)  # it trained
    if clip_norm:  # the global norm: span sums added in span order instead of one pass (rounding only)
        tol = dict(rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7 if dtype == "float32" else 1e-15)
        for a, b in ((params_a, params_b), (state_a, state_b), (grads_a, grads_b), (loss_a, loss_b)):
            np.testing.assert_allclose(b, a, **tol)
    else:  # the same sums in the same order: bit for bit
        for a, b in ((params_a, params_b), (state_a, state_b), (grads_a, grads_b), (loss_a, loss_b)):
            np.testing.assert_array_equal(b, a)


def test_clipping_by_norm_clips_the_whole_gradient():
    net, opt, X, Y = _setup("cython" if "cython" in COMPILED else COMPILED[0], "float64", False)
    kern = get_backend(net.backend)
    perm, starts = np.arange(N, dtype=np.int64), np.array([0])
    _sharded(kern, net.backend, net, opt, X, Y, perm, starts, 2, 1e-3, 0.0)
    assert np.linalg.norm(net.grads) == pytest.approx(1e-3, rel=1e-9)  # both spans scaled by one factor


@pytest.mark.parametrize("n_params,n_shards", [(10, 2), (1000, 2), (1000, 3), (64, 2), (1, 4)])
def test_param_spans_cover_the_parameters_in_order(n_params, n_shards):
    spans = param_spans(n_params, n_shards)
    assert len(spans) == n_shards and spans[0][0] == 0 and spans[-1][1] == n_params
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(lo % 64 == 0 for lo, hi in spans if hi > lo)


class _Failing:
    """A backend whose ``op`` raises ValueError when called ``after`` times from a thread not the caller's."""

    def __init__(self, kern, op, after=0):
        self._kern, self._op, self._left = kern, op, after

    def __getattr__(self, name):
        real = getattr(self._kern, name)
        if name != self._op:
            return real

        def op(*args):
            if threading.current_thread() is not threading.main_thread():
                self._left -= 1
                if self._left < 0:
                    raise ValueError(f"{name} failed on purpose")
            return real(*args)
        return op


@pytest.mark.parametrize("op,after", [("loss_forward_backward", 1), ("update_span", 1), ("reduce_gradients", 0)])
def test_a_failing_thread_is_reported_and_every_thread_ends(op, after):
    backend = "cython" if "cython" in COMPILED else COMPILED[0]
    net, opt, X, Y = _setup(backend, "float32", op == "reduce_gradients")  # penalties: two more barriers
    kern = _Failing(get_backend(backend), op, after)
    before = threading.active_count()
    with pytest.raises(ValueError, match="failed on purpose"):
        _sharded(kern, backend, net, opt, X, Y, np.arange(N, dtype=np.int64), np.arange(0, N, BATCH), 2, 0.5, 0.0)
    assert threading.active_count() == before


@pytest.mark.parametrize("backend", COMPILED)
def test_repeats_are_bit_identical_for_a_shard_count(backend):
    kern = get_backend(backend)
    perm = np.random.default_rng(2).permutation(N).astype(np.int64)
    starts = np.arange(0, N, BATCH)
    for n_shards in (2, 3):
        runs = []
        for _ in range(3):  # the thread schedule differs between repeats; the sums' order does not
            net, opt, X, Y = _setup(backend, "float32", True)
            loss = _sharded(kern, backend, net, opt, X, Y, perm, starts, n_shards, 0.3, 0.02)
            runs.append((loss, net.params.copy(), opt.state.copy()))
        for run in runs[1:]:
            for a, b in zip(runs[0], run):
                np.testing.assert_array_equal(a, b)
