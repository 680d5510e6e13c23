"""The float64 central-difference check of the fused driver's gradient entry point (``grad_steps``),
shared by the fused-path suites (tests/ is on sys.path: its conftest.py)."""
import numpy as np

import fastnn as fnn
from fastnn import engine
from fastnn.kernels import get_backend
from naive import numeric_grad


def check_fused_grad_steps(net, X, labels, n_classes, step=0):
    """Check ``grad_steps`` of ``net`` on one batch ``X`` against central differences, with 1 and 2
    row shards; return the two plans (their ``path`` for the caller to check).

    The network's buffers (BatchNorm running statistics, which move each call) are restored before
    every evaluation; the loss does not read them. ``step`` is the step number the dropout masks use.
    """
    opt = fnn.SGD(0.1)  # built only: grad_steps does not update
    opt.build(net.n_params, net.dtype)
    loss = fnn.losses.get("cross_entropy")
    X = np.ascontiguousarray(X)
    n = X.shape[0]
    Y = loss.prepare_targets(labels[:n], n_classes, net.dtype)
    driver = get_backend(net.backend)
    plans = []
    for n_shards in (1, 2):
        plan = engine.build_plan(net, loss, n, n_shards, 1).bind(net, opt, opt.hyper_vector())
        perm, starts = np.arange(n, dtype=np.int64), np.zeros(1, np.int64)
        bl, bc = np.zeros(1), np.zeros(1)
        buffers = net.buffers.copy()

        def f():
            net.buffers[...] = buffers
            driver.grad_steps(plan, X, Y, perm, starts, step, bl, bc)
            return bl[0]

        f()
        analytic = net.grads.copy()
        numeric = numeric_grad(f, net.params)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
        plans.append(plan)
    return plans


def fit_sgd(layers, X, y, *, backend, path, n_threads=1, batch_size=16, epochs=1):
    """``(net, trainer, history)`` of a small SGD-momentum fit of a fresh ``Network(layers())`` on ``X``:
    the fused-vs-per-layer comparisons' common run (seeds fixed; ``n_threads > 1`` forces row shards)."""
    net = fnn.Network(layers(), input_shape=X.shape[1:], seed=3, dtype=X.dtype.name, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9), batch_size=batch_size, seed=5, verbose=0,
                     n_threads=n_threads, parallel="shards" if n_threads > 1 else "auto", path=path)
    return net, tr, tr.fit(X, y, epochs=epochs)
