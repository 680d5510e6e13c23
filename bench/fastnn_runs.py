"""fastnn's side of the benchmark: factories with the same shape as :mod:`bench.peers`.

``make_fastnn_epoch(X, y, batch_size, threads, backend=..., parallel=...)``
returns a :class:`bench.peers.PeerRun` that runs ONE epoch of the
784-256-128-10 ReLU MLP with softmax cross-entropy and Adam(1e-3) through
``fastnn.Trainer.fit`` — the public API a user calls, not a private kernel.
``optimizer='sgd'`` trains with plain SGD instead. ``variant`` adds ``Dropout(0.2)`` (``'dropout'``), ``BatchNorm()``
(``'batchnorm'``) or ``LayerNorm()`` (``'layernorm'``) after each hidden layer: all run on the fused plan too.
"""
from __future__ import annotations

import numpy as np

from bench.peers import PeerRun


def make_fastnn_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0, backend="cython",
                      parallel="auto", variant="plain", optimizer="adam"):
    import fastnn as fnn

    optimizers = {"adam": fnn.Adam, "sgd": fnn.SGD}

    extra = {"plain": lambda: [], "dropout": lambda: [fnn.Dropout(0.2)], "batchnorm": lambda: [fnn.BatchNorm()],
             "layernorm": lambda: [fnn.LayerNorm()]}
    layers = []
    for units in hidden:
        layers += [fnn.Dense(units, "relu")] + extra[variant]()
    layers.append(fnn.Dense(10))
    net = fnn.Network(layers, input_shape=(X.shape[1],), seed=seed, backend=backend)
    trainer = fnn.Trainer(net, loss="cross_entropy", optimizer=optimizers[optimizer](lr), batch_size=batch_size, seed=seed,
                          n_threads=threads, parallel=parallel, verbose=0)
    X = np.ascontiguousarray(X, np.float32)

    def epoch():
        h = trainer.fit(X, y, epochs=1)
        return h["loss"][-1]

    epoch()  # compile / warm caches outside the timing (the benchmark also has a warm-up round)
    plan = trainer.last_plan
    suffix = "" if variant == "plain" else f"-{variant}"
    run = PeerRun(epoch, f"fastnn-{backend}-{parallel}{suffix}", X.shape[0], batch_size, threads)
    run.plan = plan
    return run


def without_gemm_tiles(run):
    """``run`` (a PeerRun of the Cython backend) with its float32 GEMM micro-kernels switched off: the BLAS
    path (``gemm_tiles("off")``, restored after each call), for before/after rows in one interleaved run."""
    from fastnn._ext import _kernels

    def blas():
        was = _kernels.gemm_tiles()
        _kernels.gemm_tiles("off")
        try:
            return run()
        finally:
            _kernels.gemm_tiles(was)

    out = PeerRun(blas, run.impl + "-blas-gemm", run.n_samples, run.batch_size, run.threads)
    out.plan = getattr(run, "plan", None)
    return out


def make_fastnn_predict(X, batch=1000, threads=1, backend="cython", seed=0):
    import fastnn as fnn

    net = fnn.Network([fnn.Dense(784, 256, "relu"), fnn.Dense(256, 128, "relu"), fnn.Dense(128, 10)],
                      seed=seed, backend=backend)
    X = np.ascontiguousarray(X, np.float32)

    def predict():
        # fastnn's one thread knob: predict splits large batches over it, with one-thread BLAS
        old = fnn.get_num_threads()
        fnn.set_num_threads(threads)
        try:
            return np.concatenate([net.predict(X[i:i + batch]) for i in range(0, len(X), batch)])
        finally:
            fnn.set_num_threads(old)

    return PeerRun(predict, f"fastnn-{backend}-predict", X.shape[0], batch, threads)


def make_fastnn_latency(X, backend="cython", seed=0):
    import fastnn as fnn

    net = fnn.Network([fnn.Dense(784, 256, "relu"), fnn.Dense(256, 128, "relu"), fnn.Dense(128, 10)],
                      seed=seed, backend=backend)
    rows = [np.ascontiguousarray(X[i:i + 1], np.float32) for i in range(len(X))]
    state = {"i": 0}

    def one():
        state["i"] = (state["i"] + 1) % len(rows)
        return int(net.predict(rows[state["i"]])[0])

    return PeerRun(one, f"fastnn-{backend}-latency", 1, 1, 1)
