"""The float32 recurrent kernels alone, per micro-kernel ISA: one LSTM(128) / GRU(128) forward and
backward call (the layer's whole sequence) at batch 64 on 28 steps of 28 features, as in one training
step of ``bench.sequence``.

Contenders: the Cython kernels with the micro-kernel (``csrc/rnn_tiles.pxi``) in each ISA the CPU runs
(``avx512``, ``avx2`` -- forced on an AVX-512 machine, what an AVX2-only CPU runs) and switched off
(``blas``: OpenBLAS per step). Interleaved rounds (each round calls every contender in turn); the figure is
the calling thread's CPU time per call (``--threads 1``, the default: other jobs on the machine then
change it far less than the wall-clock), or wall-clock with more threads. To see what an AVX2-only
machine's OpenBLAS does, run with ``OPENBLAS_CORETYPE=Haswell`` (its ``blas`` row)::

    python -m bench.rnn_kernels --cells lstm,gru --rounds 10
    OPENBLAS_CORETYPE=Haswell python -m bench.rnn_kernels --isas blas
"""
import argparse
import os
import statistics
import time

import numpy as np

STEPS = FEATURES = 28


def isas():
    """The micro-kernel settings this build and CPU run, fastest first ('blas': off)."""
    from fastnn._ext import _kernels

    best = _kernels.rnn_tiles_isa()
    return [isa for isa in ("avx512", "avx2") if isa == best or best == "avx512"] + ["blas"]


def make_calls(cell, batch=64, units=128, seed=0):
    """``(forward, backward)``: calls of the Cython ``cell`` ('lstm' or 'gru') kernels on fixed buffers."""
    from fastnn.kernels.cython import rnn as C

    f, T, n, k = np.float32, STEPS, batch, units
    g = {"lstm": 4, "gru": 3}[cell] * k
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, n, FEATURES)).astype(f)
    W, U = (rng.standard_normal((FEATURES, g)) / 9).astype(f), (rng.standard_normal((k, g)) / 20).astype(f)
    b, dH = np.zeros(g, f), rng.standard_normal((T, n, k)).astype(f)
    H, G, S = np.empty((T, n, k), f), np.empty((T, n, g), f), np.empty((T, n, k), f)
    grads = [np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(X)]
    if cell == "lstm":
        bufs = [np.empty_like(G), np.empty((2, n, k), f), np.empty((n, k), f)]
        return (lambda: C.lstm_forward(X, W, U, b, None, H, S, G, None),
                lambda: C.lstm_backward(X, W, U, H, S, G, dH, None, *grads, *bufs))
    grads.insert(3, np.empty_like(b))
    bufs = [np.empty_like(G), np.empty_like(G), np.empty((2, n, k), f)]
    return (lambda: C.gru_forward(X, W, U, b, b, True, None, H, G, S, np.empty((n, g), f)),
            lambda: C.gru_backward(X, W, U, H, G, S, dH, True, None, *grads, *bufs))


def kernel_times(cell, settings, rounds, calls_per_round=5, clock=time.thread_time):
    """Milliseconds per call, ``{(isa, 'forward' | 'backward'): [per round]}``, interleaved by round; BLAS
    on one thread inside the kernels' threads, as the trainer runs them."""
    from fastnn._config import blas_single_thread
    from fastnn._ext import _kernels

    fwd, bwd = make_calls(cell)
    out = {}
    try:
        with blas_single_thread():
            for rnd in range(rounds + 1):  # round 0 warms up
                for isa in settings:
                    _kernels.rnn_tiles_isa(isa)
                    for name, fn in (("forward", fwd), ("backward", bwd)):
                        t0 = clock()
                        for _ in range(calls_per_round):
                            fn()
                        if rnd:
                            out.setdefault((isa, name), []).append((clock() - t0) / calls_per_round * 1e3)
    finally:
        _kernels.rnn_tiles(True)
    return out


def main(argv=None):
    import fastnn as fnn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--isas", default=None, help="of avx512,avx2,blas (default: all this CPU runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    settings = args.isas.split(",") if args.isas else isas()
    fnn.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"batch 64, {STEPS} steps, 128 units, float32; {args.threads} thread(s), "
          f"{'CPU time of the calling thread' if args.threads == 1 else 'wall-clock'}; load average "
          f"{os.getloadavg()[0]:.2f}; median of {args.rounds} interleaved rounds, ms per call")
    for cell in args.cells.split(","):
        times = kernel_times(cell, settings, args.rounds, clock=clock)
        base = {name: statistics.median(times[(settings[-1], name)]) for name in ("forward", "backward")}
        for isa in settings:
            med = {name: statistics.median(times[(isa, name)]) for name in ("forward", "backward")}
            total = med["forward"] + med["backward"]
            print(f"  {cell} {isa:7s} forward {med['forward']:6.2f}  backward {med['backward']:6.2f}  "
                  f"total {total:6.2f}  ({sum(base.values()) / total:4.2f}x {settings[-1]})")


if __name__ == "__main__":
    main()
