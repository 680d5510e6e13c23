"""Where a row-sharded step's time goes (issue 12): the phases of one LSTM(128) / GRU(128) / transformer
step of ``bench.sequence`` at batch 64 in 2 row shards (:mod:`fastnn.engine.sharded`), each phase timed
alone on the calling thread (its CPU time: other jobs on the machine change it far less than the
wall-clock), beside the whole step of the sharded runner (wall-clock).

Phases (milliseconds per step, medians of interleaved rounds):

- ``gather``: the batch gather of X and Y (``kern.gather_rows``) -- of the whole batch, or of one
  shard's rows (what each shard thread now gathers itself);
- ``shard``: one shard's forward, loss and backward (the layers' kernels on one thread);
- ``numpy sum``, ``clip``, ``update``: the reduction of the shard gradients in numpy, the (no-op)
  clip pass and Adam over every parameter, on one thread -- the serial tail of the runner before
  issue 12's change;
- ``reduce+update``: the compiled reduction and Adam update of one thread's half of the parameters
  (``reduce_gradients`` + ``update_span``), what each shard thread now runs;
- ``step``: the sharded runner's whole step (an epoch's wall-clock over its steps).

``serial tail`` sums what the caller ran alone while the other shard's thread waited before issue 12
(batch gather, numpy sum, clip, update); ``per-thread tail`` what each thread runs now (its rows'
gather, its half's reduce + update). ``step`` minus ``shard`` is what the shards do not overlap (the
hand-off, the tail, waiting for the slower shard; on a loaded machine, other jobs)::

    FASTNN_DATA=../shared/data/mnist python -m bench.shard_phases --models lstm --rounds 5
"""
import argparse
import os
import statistics
import time

import numpy as np

from fastnn._config import blas_single_thread
from fastnn.kernels import codes, get_backend
from fastnn.kernels.threads import layer_threads

from bench.data import mnist_like
from bench.sequence import BATCH, FEATURES, STEPS, make_fastnn_sequence_epoch, sequences


def _ms(fn, repeats):
    t0 = time.thread_time()
    for _ in range(repeats):
        fn()
    return (time.thread_time() - t0) / repeats * 1e3


def phase_calls(tr, X, Y, n_shards=2):
    """``{phase: call}`` on the trainer's own network, one shard's layers and the backend's kernels."""
    from fastnn.engine.sharded import _shard_layers
    net, opt, loss = tr.network, tr.optimizer, tr.loss
    kern = get_backend(net.backend)
    m, rows = BATCH, -(-BATCH // n_shards)
    idx = np.random.default_rng(0).permutation(len(X))[:m].astype(np.int64)
    Xb, Yb = np.empty((m, X.shape[1]), X.dtype), np.empty((m, Y.shape[1]), Y.dtype)
    kern.gather_rows(X, idx, Xb)
    kern.gather_rows(Y, idx, Yb)
    shard_grads = np.zeros((n_shards, net.n_params), net.dtype)
    layers = _shard_layers(net, shard_grads[0])
    dout = np.empty((rows, net.n_outputs), net.dtype)
    logits = loss.fused_activation is not None and getattr(layers[-1], "activation", None) == loss.fused_activation
    hyper = np.array(opt.hyper_vector(0.0, 0.0), np.float64)
    hyper[codes.H_LR] = 0.0  # leave the weights as they are
    state = opt.state.copy()
    params, grads = net.params.copy(), np.empty_like(net.grads)
    half = net.n_params // 2

    def shard():
        A = Xb[:rows]
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1 and logits
            A = layer.forward(A, training=True, backend=net.backend, **({"logits": True} if last else {}))
        kern.loss_forward_backward(loss.code, A, Yb[:rows], 1.0 / m, dout)
        dA = dout
        for i in range(len(layers) - 1, -1, -1):
            dA = layers[i].backward(dA, backend=net.backend, need_dX=i > 0)

    def numpy_sum():
        np.copyto(grads, shard_grads[0])
        for s in range(1, n_shards):
            np.add(grads, shard_grads[s], out=grads)

    calls = {
        "gather (batch)": lambda: (kern.gather_rows(X, idx, Xb), kern.gather_rows(Y, idx, Yb)),
        "gather (shard)": lambda: (kern.gather_rows(X, idx[:rows], Xb[:rows]),
                                   kern.gather_rows(Y, idx[:rows], Yb[:rows])),
        "shard": shard,
        "numpy sum": numpy_sum,
        "clip": lambda: kern.clip_gradients(grads, 0.0, 0.0),
        "update": lambda: kern.optimizer_update(opt.code, params, grads, state, hyper, 1),
    }
    if hasattr(kern, "reduce_gradients"):
        calls["reduce+update (half)"] = lambda: (
            kern.reduce_gradients(shard_grads, 0, half, 0.0, False, grads),
            kern.update_span(opt.code, params, grads, state, hyper, 1, 0, half, 1.0))
    return calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lstm")
    parser.add_argument("--backend", default="cython")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=3200, help="samples per timed epoch")
    parser.add_argument("--repeats", type=int, default=50, help="calls of each phase per round")
    args = parser.parse_args(argv)
    Xr, yr = mnist_like(args.n)
    X, y = sequences(Xr, yr)
    for model in args.models.split(","):
        run = make_fastnn_sequence_epoch(X, y, model, args.backend, 2, split="shards")
        tr = _trainer_of(run)
        Xf = X.reshape(len(X), STEPS * FEATURES)
        Yf = np.eye(10, dtype=np.float32)[y]
        calls = phase_calls(tr, Xf, Yf)
        n_steps = -(-len(X) // BATCH)
        times = {name: [] for name in [*calls, "step"]}
        kern = get_backend(tr.network.backend)
        for _ in range(args.rounds):
            with blas_single_thread(), layer_threads(kern, 1):  # as a shard thread runs them
                for name, fn in calls.items():
                    times[name].append(_ms(fn, args.repeats))
            t0 = time.perf_counter()
            run()
            times["step"].append((time.perf_counter() - t0) / n_steps * 1e3)
        med = {name: statistics.median(values) for name, values in times.items()}
        med["serial tail"] = sum(med[k] for k in ("gather (batch)", "numpy sum", "clip", "update"))
        if "reduce+update (half)" in med:
            med["per-thread tail"] = med["gather (shard)"] + med["reduce+update (half)"]
        print(f"{model} ({args.backend}, batch {BATCH}, 2 row shards), ms per step, median of {args.rounds}; "
              f"load average {os.getloadavg()[0]:.2f}:")
        for name, value in med.items():
            print(f"  {name:22s} {value:8.3f}")


def _trainer_of(run):
    """The Trainer inside a :class:`bench.peers.PeerRun` of :func:`make_fastnn_sequence_epoch`."""
    return next(c.cell_contents for c in run.fn.__closure__ if type(c.cell_contents).__name__ == "Trainer")


if __name__ == "__main__":
    main()
