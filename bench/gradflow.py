"""What GradientFlow costs (issue 16): one epoch with and without the callback, same network, same data.

The callback adds, per epoch, one copy of the weights at the start and one forward/backward of a
fixed probe batch (256 rows) at the end; the compiled training loop runs unchanged. A benchmarked
call is ``fit(epochs=1)``, so it pays two probes (the one before training and the epoch's): the
figures overstate the per-epoch cost of a longer fit. Models:

- ``mlp``: 784-256-128-10 ReLU, Adam, the fused plan;
- ``lstm``: row-sequential MNIST, LSTM(64) -> Dense(10), the per-layer path.

Interleaved comparison (each round runs both variants in turn, so load drift hits both alike)::

    FASTNN_DATA=../shared/data/mnist python -m bench.gradflow --rounds 5
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

from bench.peers import PeerRun
from bench.timing import interleaved_times

MODELS = ("mlp", "lstm")


def make_epoch(X, y, batch_size, threads, *, model="mlp", gradflow=False, backend="cython", seed=0):
    """A :class:`PeerRun` of one epoch of ``model``, with a GradientFlow callback when ``gradflow``."""
    import fastnn as fnn
    from fastnn.callbacks import GradientFlow

    X = np.ascontiguousarray(X, np.float32)
    if model == "mlp":
        layers, shape = [fnn.Dense(256, "relu"), fnn.Dense(128, "relu"), fnn.Dense(10)], (784,)
    else:
        layers, shape = [fnn.LSTM(64), fnn.Dense(10)], (28, 28)
        X = X.reshape(-1, 28, 28)
    net = fnn.Network(layers, input_shape=shape, seed=seed, backend=backend)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=batch_size, seed=seed, n_threads=threads,
                          verbose=0, callbacks=[GradientFlow()] if gradflow else [])

    def epoch():
        return trainer.fit(X, y, epochs=1)["loss"][-1]

    epoch()  # compile / warm caches outside the timing
    return PeerRun(epoch, f"fastnn-{model}{'-gradflow' if gradflow else ''}", X.shape[0], batch_size, threads)


def main(argv=None):
    from bench import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,lstm")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=20000, help="samples per epoch")
    args = ap.parse_args(argv)
    X, y = data.mnist_like(args.n)
    print(f"data: {data.data_source()}, {args.n} samples, batch {args.batch_size}, threads {args.threads}; "
          f"median of {args.rounds} interleaved rounds")
    for model in args.models.split(","):
        runs = [make_epoch(X, y, args.batch_size, args.threads, model=model, gradflow=g) for g in (False, True)]
        times = interleaved_times({r.impl: r for r in runs}, args.rounds, warmup=False)
        med = {k: statistics.median(v) for k, v in times.items()}
        for impl, t in med.items():
            print(f"  {impl:24s} {args.n / t:10,.0f} samples/s  {t:7.3f} s/epoch  (rounds: "
                  + ", ".join(f"{v:.3f}" for v in times[impl]) + ")")
        plain, flow = (med[r.impl] for r in runs)
        print(f"  {model}: epoch time with GradientFlow / without = {flow / plain:.3f}")


if __name__ == "__main__":
    main()
