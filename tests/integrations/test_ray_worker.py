"""The Ray worker's logic without Ray: its part of a batch, its dropout keys, its gradient.

``ShardWorker`` is plain Python; here N of them run in this process and their weighted gradients
are compared with ``grad_steps`` on the whole batch (the serial gradient), per backend.
"""
import copy

import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine
from fastnn.integrations._ray_worker import ShardWorker, part_of
from fastnn.kernels import available_backends, get_backend
from fastnn.losses import get as get_loss


@pytest.mark.parametrize("m, n", [(64, 2), (63, 2), (10, 3), (5, 4), (1, 2), (3, 8)])
def test_parts_cover_the_batch_once_in_order(m, n):
    parts = [part_of(k, n, m) for k in range(n)]
    rows = [r for row0, k in parts for r in range(row0, row0 + k)]
    assert rows == list(range(m))
    assert all(k >= 0 for _, k in parts)


def _net(dtype, backend, kind="mlp"):
    if kind == "cnn":  # the per-layer path (unless Conv2D joins the fused one): the layers' own code
        return fnn.Network([fnn.Conv2D(3, 3, activation="relu"), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dropout(0.3),
                            fnn.Dense(8, activation="relu", l2=1e-3), fnn.Dense(5)],
                           input_shape=(6, 6, 1), seed=4, dtype=dtype, backend=backend)
    if kind == "lstm":
        return fnn.Network([fnn.LSTM(6), fnn.Dropout(0.3), fnn.Dense(5)], input_shape=(4, 3), seed=4, dtype=dtype,
                           backend=backend)
    return fnn.Network([fnn.Dense(24, activation="relu", l2=1e-3), fnn.Dropout(0.3),
                        fnn.Dense(16, activation="tanh"), fnn.Dropout(0.5), fnn.Dense(5)],
                       input_shape=(12,), seed=4, dtype=dtype, backend=backend)


_FEATURES = {"mlp": 12, "cnn": 36, "lstm": 12}


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("n_workers, m", [(2, 40), (3, 40), (4, 7)])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm"])
def test_weighted_worker_gradients_equal_the_whole_batch_gradient(backend, n_workers, m, kind):
    dtype = np.float64  # exact enough to see a wrong dropout mask or weight at 1e-10
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, _FEATURES[kind])).astype(dtype)
    y = rng.integers(0, 5, 100)
    net, loss, opt = _net(dtype, backend, kind), get_loss("cross_entropy"), fnn.Adam(1e-3)
    opt.build(net.n_params, net.dtype)
    Y = loss.prepare_targets(y, net.n_outputs, net.dtype)
    hyper = opt.hyper_vector(0.0, 0.0)
    kern = get_backend(backend)
    perm = rng.permutation(100)
    start, step = 30, 7
    # the serial gradient of the whole batch, on the path the engine picks (as the driver does)
    plan = engine.build_plan(net, loss, m, 1, Y.shape[1], backend_has_driver=hasattr(kern, "grad_steps"))
    if kind == "mlp":
        assert plan.path == "fused"
    if plan.path == "fused":
        plan.bind(net, opt, hyper)
        bl, bc = np.zeros(1), np.zeros(1)
        kern.grad_steps(plan, X, Y, perm, np.array([start]), step - 1, bl, bc)
    else:
        bl, bc = (np.array([v]) for v in engine.layerwise_grad(kern, backend, net, loss, X, Y, m)(
            perm[start:start + m], step))
    serial = net.grads.copy()

    def worker(k, **kw):
        w = ShardWorker(k, n_workers, copy.deepcopy(net), loss, copy.deepcopy(opt), X, Y, m, hyper, backend,
                        path=plan.path, **kw)
        w.set_perm(perm)
        return w

    total, loss_sum, correct = np.zeros_like(serial), 0.0, 0.0
    for k in range(n_workers):
        g, l_k, c_k, m_k, _, bufs = worker(k).grad_step(net.params, start, m, step)
        assert bufs is None  # no running statistics in these networks
        if m_k:
            total += g * (m_k / m)
            loss_sum += l_k * (m_k / m)
            correct += c_k
        else:
            assert g is None
    np.testing.assert_allclose(total, serial, rtol=1e-10, atol=1e-13)
    assert loss_sum == pytest.approx(bl[0], rel=1e-12)
    assert correct == bc[0]
    # the test can fail: without the dropout row shift, worker 1's masks are worker 0's
    w = worker(1)
    if plan.path == "fused":
        w._dropout_rows = []
        g_wrong, *_ = w.grad_step(net.params, start, m, step)
    else:  # its rows with the masks of rows 0.. of the batch
        idx, _, _ = w._rows(start, m)
        np.copyto(w.net.params, net.params)
        w._grad(idx, step, 0)
        g_wrong = w.net.grads.copy()
    g_right, *_ = worker(1).grad_step(net.params, start, m, step)
    assert not np.allclose(g_wrong, g_right)


def test_injected_fault_raises_once():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 12))
    net, loss, opt = _net(np.float64, None), get_loss("cross_entropy"), fnn.SGD(0.1)
    opt.build(net.n_params, net.dtype)
    Y = loss.prepare_targets(rng.integers(0, 5, 20), 5, net.dtype)
    w = ShardWorker(0, 2, net, loss, opt, X, Y, 10, opt.hyper_vector(0.0, 0.0), net.backend)
    w.set_perm(np.arange(20))
    w._inject_fault("rows 3..5 are garbage")
    with pytest.raises(ValueError, match="rows 3..5 are garbage"):
        w.grad_step(net.params, 0, 10, 1)
    assert w.grad_step(net.params, 0, 10, 1)[3] == 5
