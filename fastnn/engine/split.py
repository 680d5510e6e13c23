"""How a fused fit uses several cores: :func:`choose_split`, the documented rule of ``parallel='auto'``.

The four ways (``Trainer(parallel=...)``):

- ``'one'``: the serial driver, one-thread BLAS.
- ``'shards'``: one row shard of the batch per thread, each with its own copy of the gradient,
  summed in a fixed order every step.
- ``'columns'``: every layer's GEMMs split by output columns over the threads, one gradient, a
  barrier between layers (``csrc/plan_cols.pxi``: the Cython backend, Dense-only networks).
- ``'blas'``: the serial driver with BLAS threading each GEMM.

``'probe'`` times the first three on a few real steps instead of following this rule
(:mod:`fastnn.engine.split_probe`; the rule stays its fallback).

The rule for ``'auto'`` (``p`` parameters, ``rows`` = batch / threads), from interleaved sweeps
of ``python -m bench.shapes`` (samples/s, 2 threads, cython, float32, Adam; medians):

=========================== ======== ======== ======== ======== ==============
shape : batch                  one   shards  columns     blas   load average
=========================== ======== ======== ======== ======== ==============
100-50-10 : 16               1,177k     229k      68k   1,149k   3
784-256-128-10 : 32           53.6k    36.4k    33.1k     3.9k   3-13
784-256-128-10 : 64           75.0k    77.6k    91.3k    84.5k   3-13
784-256-128-10 : 32           14.2k     9.2k    13.7k     2.2k   10
784-256-128-10 : 64           43.0k    21.8k    27.0k    16.3k   10
784-256-128-10 : 128          91.4k    37.3k    44.8k    20.8k   10
784-256-128-10 : 256          93.9k    89.5k    85.0k    33.3k   10
256-64-10 : 64                 715k     730k     574k     598k   10
=========================== ======== ======== ======== ======== ==============

and the quiet measurement recorded in issue 10 (then: shards from 32 rows, else one thread):
batch 32: one 55.5k, columns 63.4k; batch 64: shards 83.3k, blas 93.1k; batch 128/256: shards
121.6k / 157.9k. The rule is for a machine whose cores are free: with other processes keeping
both cores busy (load 10 on 2 cores) every split, PyTorch's threads too, loses to one thread,
as the rows at load 10 show; ``Trainer(n_threads=1)`` is the setting for such a machine. So:

1. One thread asked for: ``'one'``.
   Compute-bound networks (conv layers: every row is millions of flops) take ``'shards'`` from
   ``COMPUTE_SHARD_ROWS`` = 8 rows per shard: even thin shards pay for the hand-off (measured with
   ``python -m bench.cnn``: the example CNN at batch 32 on 2 threads, shards of 16 rows).
2. Wide networks (``p >= 2**20``, ``batch * p >= 2**22``) on Cython, Dense only: ``'columns'`` --
   row shards would copy and reduce a >= 4 MB gradient every step (memory-bound).
3. ``rows >= 64`` and ``rows * p >= 2**20``: ``'shards'`` (each thread's GEMMs are big enough, the
   gradient copies stay in cache); for float32 networks the column split can run (Cython, Dense
   only) from ``TILED_SHARD_ROWS`` = 16 rows: their shards' GEMMs run on the one-thread
   micro-kernels (``gemm_tiles``), which made thin shards the fastest plan (below).
   Small Dense networks on Cython (``rows * p < 2**20``) take ``'shards'`` from ``SHARD_ROWS`` rows
   too: their per-row work (the gather, activations, the loss) is split as well, and the gradient
   they reduce is small (measured below).
4. Thinner shards on Cython, Dense only, ``batch * p >= 2**22``: ``'columns'`` (both cores on the
   whole batch without a gradient reduction).
5. Otherwise ``rows >= 32`` and ``rows * p >= 2**20``: ``'shards'`` (networks the column split
   cannot run: Dropout, BatchNorm, LayerNorm).
6. Otherwise ``'one'``: a tiny network or batch pays more for wake-ups and barriers than a
   second core gives.

Since the float32 Dense GEMMs run on the micro-kernels (a quiet run, 2026-12-01 20:50-21:00 UTC,
load 1.3-1.7, ``python -m bench.compare --interleaved`` and ``python -m bench.shapes --random 10
--seed 3``): the benchmark MLP at batch 32 shards 77.2k, columns 62.3k, one thread 70.8k; batch
64 shards 109.9k, columns 88.2k; shards were the best forced plan at all 10 random shapes, columns
lost to them by 1.23x on 1533-145-10 at batch 84. Not changed, measured in the same session:
float64 (BLAS; shards 30.6k / 46.6k, columns 31.5k / 43.9k at batch 32 / 64), the Numba backend
(one thread beat 16- and 32-row shards: 49.7k vs 38.6k, 75.5k vs 67.4k), tiny networks (100-50-10
at batch 32: one thread 1.00M, shards 0.78M).

Small networks (a quiet run, 2026-12-02 00:00-00:03 UTC, load 1.1-1.4, ``python -m bench.shapes``,
2 threads, samples/s one thread / shards): 100-50-10 at batch 128 1.27M / 1.95M, 3-35-4 at 250
2.66M / 4.72M, 54-7-541-5-39 at 137 0.53M / 0.91M, 20-20-2 at 512 2.98M / 5.13M, 64-32-10 at 128
1.81M / 2.92M (64-row shards and more: shards 1.5-1.8x one thread); at 16-32 rows per shard one
thread won or tied (100-50-10 at batch 16, 32, 64; 256-64-10 at 32; 20-20-2 at 64 within 8%), except
4-40-78-6-411 at batch 54 (27 rows, a 411-class softmax: shards 1.2x), left to the old rule.

``'blas'`` is never chosen by the rule (it lost or tied to the best of the others at every
measured point but batch 64, where columns beat it); it stays available by name.
"""
from dataclasses import dataclass

#: rows per shard from which row shards are the first choice (rule 3)
SHARD_ROWS = 64
#: rows per shard from which float32 networks the column split could run take row shards (rule 3)
TILED_SHARD_ROWS = 16
#: rows per shard below which row shards are never taken (rule 5)
MIN_SHARD_ROWS = 32
#: rows per shard from which compute-bound (conv) networks take row shards (rule 1)
COMPUTE_SHARD_ROWS = 8
#: rows per shard x parameters below which a shard's GEMMs are too small to split
MIN_SHARD_WORK = 1 << 20
#: parameters (4 MB of float32 gradient) from which columns beat row shards at any batch (rule 2)
COLUMN_PARAMS = 1 << 20
#: batch x parameters below which one thread beats any split (barriers, wake-ups)
COLUMN_MIN_WORK = 1 << 22


@dataclass(frozen=True)
class Split:
    """The outcome of :func:`choose_split`.

    Attributes
    ----------
    kind : {'one', 'shards', 'columns', 'blas'}
    threads : int
        Threads of that kind: shards, column threads or BLAS threads (1 for ``'one'``).
    reason : str
        Why, for ``trainer.last_plan['reason']``.
    """

    kind: str
    threads: int
    reason: str


def choose_split(parallel, n_threads, batch_size, n_params, columns_ok, itemsize=4, *, compute_bound=False):
    """How a fused fit splits its steps over ``n_threads`` (the module docstring has the rule).

    Parameters
    ----------
    parallel : {'auto', 'shards', 'columns', 'blas', 'probe'}
        The trainer's setting; ``'shards'``, ``'columns'`` and ``'blas'`` are taken as asked (``'columns'``
        must be possible: the caller checks ``columns_ok`` first and raises); ``'probe'`` gets the rule
        where the probe (:mod:`fastnn.engine.split_probe`) cannot run.
    n_threads, batch_size, n_params : int
    columns_ok : bool
        Whether the column-split driver can run this network (Cython backend, Dense layers only).
    itemsize : int, default 4
        Bytes per parameter, for the reason's gradient size.
    compute_bound : bool, default False
        Whether a layer is compute-bound per row (``Layer.compute_bound``: convolutions).

    Returns
    -------
    Split
    """
    n_threads, batch_size, p = int(n_threads), int(batch_size), int(n_params)
    rows = batch_size // max(n_threads, 1)
    if n_threads <= 1:
        return Split("one", 1, "one thread: one thread asked for")
    if parallel == "columns":
        return Split("columns", n_threads, f"columns over {n_threads} threads: asked for with parallel='columns'")
    if parallel == "blas":
        return Split("blas", n_threads, f"whole batch, BLAS threaded over {n_threads} threads: parallel='blas'")
    if parallel == "shards":
        shards = min(n_threads, batch_size)
        return Split("shards", shards, f"row shards: {shards} of {-(-batch_size // shards)} rows")
    work = batch_size * p
    if compute_bound and not columns_ok:
        if rows >= COMPUTE_SHARD_ROWS:
            return Split("shards", n_threads, f"row shards: {n_threads} of {-(-batch_size // n_threads)} rows "
                         f"(compute-bound layers: shards from {COMPUTE_SHARD_ROWS} rows)")
        return Split("one", 1, f"one thread: shards of {rows} rows < {COMPUTE_SHARD_ROWS} are too thin")
    if columns_ok and p >= COLUMN_PARAMS and work >= COLUMN_MIN_WORK:
        return Split("columns", n_threads, f"columns over {n_threads} threads: {p:,} parameters >= "
                     f"{COLUMN_PARAMS:,}, so row shards would copy and reduce a {p * itemsize / 2**20:.1f} MB "
                     f"gradient every step")
    if rows >= SHARD_ROWS and rows * p >= MIN_SHARD_WORK:
        return Split("shards", n_threads, f"row shards: {n_threads} of {-(-batch_size // n_threads)} rows")
    if columns_ok and rows >= SHARD_ROWS:
        return Split("shards", n_threads, f"row shards: {n_threads} of {-(-batch_size // n_threads)} rows (a small "
                     f"Dense network: from {SHARD_ROWS} rows per shard its per-row work -- gather, activations, "
                     f"loss -- pays for the barriers)")
    if columns_ok and itemsize == 4 and rows >= TILED_SHARD_ROWS and rows * p >= MIN_SHARD_WORK:
        return Split("shards", n_threads, f"row shards: {n_threads} of {-(-batch_size // n_threads)} rows "
                     f"(float32 Dense GEMMs on the one-thread micro-kernels: shards from {TILED_SHARD_ROWS} rows)")
    if columns_ok and work >= COLUMN_MIN_WORK:
        return Split("columns", n_threads, f"columns over {n_threads} threads: shards of {rows} rows < "
                     f"{SHARD_ROWS} would be thin, and batch x parameters = {work:,} >= {COLUMN_MIN_WORK:,}")
    if rows >= MIN_SHARD_ROWS and rows * p >= MIN_SHARD_WORK:
        return Split("shards", n_threads, f"row shards: {n_threads} of {-(-batch_size // n_threads)} rows")
    return Split("one", 1, f"one thread: the batch or the network is too small to split (batch x parameters "
                 f"= {work:,}; row shards need {MIN_SHARD_ROWS} rows each and rows x parameters >= "
                 f"{MIN_SHARD_WORK:,})")
