"""Row shards on the per-layer path (issues 11, 12): every core busy without threaded BLAS.

Threaded BLAS splits each GEMM across threads that busy-wait between calls;
measured on the shared 2-core machine (load ~7), a conv-net step at batch 128
ran 6x *slower* with 2 BLAS threads than with one. Row shards instead give
each thread its own slice of the batch (like the fused driver's shards): one
Python thread per shard runs that slice through per-shard copies of the
layers (same parameter views, own gradient buffer and work buffers), with
one-thread kernels and BLAS. The compiled kernels release the GIL, so the shards
run in parallel; a blocked thread sleeps. Each shard thread also gathers its own
rows, and sums the shard gradients (in a fixed order), clips and updates its own
span of the parameters: the same math as the per-layer path's one clip + update,
with no serial tail on the caller while the other threads wait (issue 12).

Only layers whose forward depends on their own rows alone can be split
(no batch statistics): Dense, Conv2D, the pooling layers, Flatten, Dropout,
and every sequence layer (one sequence is one row): Embedding, PositionalEncoding,
Masking, LayerNorm, GlobalAveragePooling1D, TimeDistributed (of a row-local layer
other than Dropout), the recurrent layers, Bidirectional, MultiHeadAttention and
TransformerBlock. Padding masks are computed from the shard's own rows and flow to
the shard's next layer; Dropout and TransformerBlock key their masks by the row in
the batch (``row0``), so a shard draws its rows' masks of the whole batch.
:func:`shard_blocker` says whether a network can be split.

When shards are taken (:func:`choose_layer_shards`, ``Trainer(parallel='auto')``)
---------------------------------------------------------------------------------
The alternative is the kernels' own threads (``fastnn.kernels.threads.layer_threads``):
the recurrent kernels split the batch's rows over the threads and the weight
gradients by columns, the attention kernel its (sample, head) pairs; every other
kernel (Dense, LayerNorm, the projections inside attention) runs on one thread.
Measured on the shared 2-core machine at load 6-9, where the wall-clock rates of
either way tie within their noise (other jobs keep every core busy: shards / kernels
0.94-1.32x), so the figures below are ``bench.sequence --cpu``'s free-core estimate:
the epoch's samples over the CPU time of its busiest thread (a waiting thread
sleeps, so on free cores that thread's time is about the epoch's). It is an upper
bound for both ways (it misses the wait for the slower thread at each sync and
the lower clock of two busy cores): the quiet README "Sequence models" run's
1 -> 2 thread gains with the kernels' threads, transformer 1.03x and LSTM 1.29x at
batch 64, read here as 1.07x and 1.54x. ``python -m bench.sequence --threads 2
--splits kernels,shards --peers none --batches 32,64,128 --n 3200 --rounds 3 --cpu``
(and ``--threads 1``), float32, Adam, samples/s, medians of 3 rounds (CPU times in
10 ms ticks: +-4%):

========================= ========== ============ =========== ========= ==========
network : batch            one thread  kernels x2   shards x2   shards /  numba:
(cython)                                                        kernels   shards /
                                                                          kernels
========================= ========== ============ =========== ========= ==========
transformer block : 32       6,667       6,809       11,429      1.68x     1.71x
transformer block : 64       6,531       6,957       11,429      1.64x     1.55x
transformer block : 128      6,038       7,111       11,346      1.60x     1.60x
LSTM(128) : 32               5,517       7,442        8,205      1.10x     1.17x
LSTM(128) : 64               5,614       8,649        9,412      1.09x     1.22x
LSTM(128) : 128              5,614       9,697       10,000      1.03x     1.24x
========================= ========== ============ =========== ========= ==========

The transformer step is three quarters kernels that do not thread themselves
(projections, LayerNorm, feed-forward): the kernels' threads give it 1.02-1.18x
over one thread, shards 1.7-1.9x. The LSTM's kernels thread ~96% of its step, so
both ways are closer there (cython shards 1.03-1.10x; Numba's recurrent kernels
scale less, shards 1.2x). The rule:

1. One thread, the reference backend, ``parallel='blas'`` (threaded BLAS) or a layer
   that is not row-local: no shards.
2. Shards thinner than ``MIN_SHARD_ROWS`` = 8 rows: no shards (the hand-off costs more).
3. ``parallel='shards'``: shards.
4. Compute-bound layers (convolutions, issue 11): shards.
5. Recurrent or attention layers: shards.
6. Otherwise (helper layers only, e.g. Embedding -> pooling -> Dense): no shards;
   nothing there is big enough to split.
"""
import copy
import math
import threading

import numpy as np

from ..kernels import codes
from ..layers.base import Layer
from ..kernels.threads import layer_threads
from .runners import _dropout_layers

#: layer types whose forward/backward of a row depends on that row only (no batch statistics). A
#: sequence is one row, so every sequence layer qualifies: its padding mask is computed from the
#: shard's own rows (Embedding(mask_zero=True), Masking) and flows to the shard's next layer.
SHARDABLE = ("Dense", "Conv2D", "MaxPool2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Dropout",
             "Embedding", "PositionalEncoding", "Masking", "LayerNorm", "GlobalAveragePooling1D", "TimeDistributed",
             "SimpleRNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention", "TransformerBlock")
#: sequence layers whose work pays for row shards (rule 5)
SEQUENCE_MIXING = ("SimpleRNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention", "TransformerBlock")
MIN_SHARD_ROWS = 8  # below this a shard's GEMMs are too small to pay for the thread hand-off


def shard_blocker(network, loss):
    """``''`` when every layer and the loss can run in row shards, else the reason (the first layer that cannot)."""
    for i, layer in enumerate(network.layers):
        why = _not_row_local(layer)
        if why is not None:
            return f"layer {i} ({type(layer).__name__}) cannot be split into row shards{why}"
    if loss.code is None:
        return f"loss {loss.name!r} has no kernel code"
    return ""


def _not_row_local(layer):
    """None when each row of ``layer`` depends on that row only; else '' or ': why'."""
    if type(layer).__name__ not in SHARDABLE or type(layer).__module__.split(".")[0] != "fastnn":
        return ""
    inner = getattr(layer, "layer", None) if type(layer).__name__ == "TimeDistributed" else None
    if inner is None:
        return None
    if _not_row_local(inner) is not None:
        return f": the {type(inner).__name__} it wraps cannot"
    if getattr(inner, "rate", 0):  # a wrapped Dropout keys its masks by step rows and counts steps itself
        return f": the {type(inner).__name__} it wraps draws masks of its own step count"
    return None


def _clone(layer):
    """A shard's copy of ``layer``: own work buffers and caches, sub-layers (a TransformerBlock's parts,
    Bidirectional's directions, TimeDistributed's layer) copied too; the caller binds its parameters."""
    clone = copy.copy(layer)
    clone.__dict__.pop("_buffers", None)
    clone.__dict__.pop("_cache", None)
    for key, value in list(vars(clone).items()):
        if isinstance(value, Layer) and key != "_mask_source":
            clone.__dict__[key] = _clone(value)
    return clone


def _shard_layers(network, grads):
    """Copies of the network's layers bound to the same parameters and to the gradient array ``grads``,
    each reading the padding mask of the shard's previous layer."""
    views = [({}, {}) for _ in network.layers]
    for i, name, off, shape in network._slots:
        size = int(np.prod(shape))
        views[i][0][name] = network.params[off:off + size].reshape(shape)
        views[i][1][name] = grads[off:off + size].reshape(shape)
    clones = []
    for layer, (p, g) in zip(network.layers, views):
        clone = _clone(layer)
        clone.bind(p, g)
        clone._mask_source = clones[-1] if clones else None
        clones.append(clone)
    return clones


def param_spans(n_params, n_shards, align=64):
    """``[(lo, hi), ...]``: the parameter span each shard thread reduces and updates, contiguous, in order,
    starting on multiples of ``align`` elements (no cache line is written by two threads)."""
    per = -(-n_params // (n_shards * align)) * align
    return [(min(n_params, s * per), min(n_params, (s + 1) * per)) for s in range(n_shards)]


def sharded_runner(kern, backend, network, loss, optimizer, X, Y, batch_size, hyper, clip_norm, clip_value,
                   n_shards):
    """The per-layer runner with each batch split into ``n_shards`` row shards run by as many threads.

    Every thread runs the whole step for its share (issue 12): it gathers its shard's rows, runs them
    through its layer copies, then -- after one barrier -- reduces the shard gradients over its span of
    the parameters (:func:`param_spans`; ``kern.reduce_gradients``: shard order, as the numpy sum had),
    clips and updates that span (``kern.update_span``). Clipping by norm adds one barrier (the span
    norms are summed in span order by every thread); penalties (L1/L2) two, between which the caller
    adds their gradient to the reduced one. The next step's start barrier is the end of the update.
    """
    net, opt = network, optimizer
    fused = loss.fused_activation
    last = net.layers[-1]
    logits = fused is not None and getattr(last, "activation", None) == fused and hasattr(last, "act_code")
    penalized = [layer for layer in net.layers if getattr(layer, "has_penalty", False)]
    shard_grads = np.zeros((n_shards, net.n_params), net.dtype)
    shards = [_shard_layers(net, shard_grads[s]) for s in range(n_shards)]
    # Random layers (Dropout, TransformerBlock(dropout=)) key their masks by the step and the row in the batch.
    dropouts = [_dropout_layers(layers) for layers in shards]
    originals = _dropout_layers(net.layers)
    Xb = np.empty((batch_size, X.shape[1]), X.dtype)
    Yb = np.empty((batch_size, Y.shape[1]), Y.dtype)
    dout_full = np.empty((batch_size, net.n_outputs), net.dtype)
    losses = np.zeros(n_shards)
    correct = np.zeros(n_shards)
    spans = param_spans(net.n_params, n_shards)
    span_squares = np.zeros(n_shards)  # each span's squared norm, summed in span order by every thread
    grads_row = net.grads[None]  # the reduced gradient as a one-row sum: clipped after the penalties
    want_norm = clip_norm > 0
    bars = {}  # every thread meets the same barriers: after the gradients, the penalties, the span norms

    def shard_step(s, lo, hi, rows, m, step):
        layers = shards[s]
        kern.gather_rows(X, rows, Xb[lo:hi])  # each shard gathers its own rows, on its own thread
        kern.gather_rows(Y, rows, Yb[lo:hi])
        for layer in dropouts[s]:
            layer.step, layer.row0 = step, lo
        A = Xb[lo:hi]
        for i, layer in enumerate(layers):
            if i == len(layers) - 1 and logits:
                A = layer.forward(A, training=True, backend=backend, logits=True)
            else:
                A = layer.forward(A, training=True, backend=backend)
        yb, dout = Yb[lo:hi], dout_full[lo:hi]
        losses[s] = kern.loss_forward_backward(loss.code, A, yb, 1.0 / m, dout)
        correct[s] = kern.count_correct(loss.code, A, yb)
        dA = dout
        for i in range(len(layers) - 1, -1, -1):
            dA = layers[i].backward(dA, backend=backend, need_dX=i > 0)

    def update_share(s, step, my_hyper, add_penalties):
        """Thread ``s``'s span of the step's reduce, clip and update (the same math as the old serial
        tail: sum in shard order, penalties, clip by value, clip by the global norm, update)."""
        lo, hi = spans[s]
        if penalized:
            kern.reduce_gradients(shard_grads, lo, hi, 0.0, False, net.grads)
            bars["penalty"].wait()
            if add_penalties is not None:
                add_penalties()
            bars["penalty"].wait()
            squares = kern.reduce_gradients(grads_row, lo, hi, clip_value, want_norm, net.grads)
        else:
            squares = kern.reduce_gradients(shard_grads, lo, hi, clip_value, want_norm, net.grads)
        scale = 1.0
        if want_norm:
            span_squares[s] = squares
            bars["norm"].wait()
            norm = math.sqrt(sum(span_squares.tolist()))  # a Python sum: the same order on every thread
            if norm > clip_norm:
                scale = clip_norm / (norm + 1e-12)
        kern.update_span(opt.code, net.params, net.grads, opt.state, my_hyper, step, lo, hi, scale)

    def run(perm, starts, batch_loss, batch_correct):
        lrs = opt.learning_rates(opt.iterations, len(starts))
        # An unknown optimizer code fails here, before any thread starts or any state changes.
        kern.update_span(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1, 0, 0, 1.0)
        # One thread per shard but the first (the caller's): the start barrier hands each step over.
        bars.update(start=threading.Barrier(n_shards), grads=threading.Barrier(n_shards),
                    penalty=threading.Barrier(n_shards), norm=threading.Barrier(n_shards))
        start_b, grads_b = bars["start"], bars["grads"]
        hypers = np.tile(np.asarray(hyper, np.float64), (n_shards, 1))  # each thread sets its own lr
        job = {"stop": False}
        errors = []
        penalties = []

        def add_penalties():
            """The caller's work between the penalty barriers: the reduced gradient is complete."""
            for layer in penalized:
                penalties.append(layer.penalty())
                layer.add_penalty_gradient()

        def one_step(s, j, start, m, step, add_penalties=None):
            """Thread ``s``'s part of step ``j``: its rows' gradient, then its span's update."""
            lo, hi = min(m, s * -(-m // n_shards)), min(m, (s + 1) * -(-m // n_shards))
            try:
                if hi > lo:
                    shard_step(s, lo, hi, perm[start + lo:start + hi], m, step)
                else:  # a last batch smaller than the shard count
                    shard_grads[s] = 0
                    losses[s] = correct[s] = 0
            except BaseException as exc:  # reported by the caller after the step
                errors.append(exc)
            grads_b.wait()
            if errors:  # every thread sees the same list here: none updates
                return
            try:
                hypers[s, codes.H_LR] = lrs[j]
                update_share(s, step, hypers[s], add_penalties)
            except threading.BrokenBarrierError:
                raise
            except BaseException as exc:  # unexpected (inputs were checked): stop every thread
                errors.append(exc)
                for b in bars.values():
                    b.abort()

        def worker(s):
            with layer_threads(kern, 1):  # one-thread kernels: the shards are the parallelism
                try:
                    while True:
                        start_b.wait()
                        if job["stop"]:
                            return
                        one_step(s, job["j"], job["start"], job["m"], job["step"])
                except threading.BrokenBarrierError:
                    return  # another thread failed: the caller reports its error

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(1, n_shards)]
        for t in threads:
            t.start()
        with layer_threads(kern, 1):  # the caller runs shard 0 on one-thread kernels too
            try:
                for j, start in enumerate(starts):
                    start, m, step = int(start), min(batch_size, len(perm) - int(start)), opt.iterations + 1
                    job.update(j=j, start=start, m=m, step=step)
                    start_b.wait()
                    penalties.clear()
                    one_step(0, j, start, m, step, add_penalties if penalized else None)
                    if errors:
                        raise errors[0]
                    batch_loss[j] = float(losses.sum()) / m
                    for value in penalties:  # in layer order, after the loss: the sums the serial tail made
                        batch_loss[j] += value
                    batch_correct[j] = float(correct.sum())
                    opt.iterations += 1
            except threading.BrokenBarrierError:
                if errors:
                    raise errors[0] from None
                raise
            finally:
                job["stop"] = True
                try:
                    start_b.wait(timeout=10)  # the workers end their last update, then return
                except threading.BrokenBarrierError:
                    pass
                for t in threads:
                    t.join(timeout=10)
        if errors:  # a worker's update failed in the last step
            raise errors[0]
        if len(starts):
            hyper[codes.H_LR] = lrs[-1]
        for layer in originals:
            layer.step = opt.iterations + 1
    return run


def choose_layer_shards(network, loss, backend, n_threads, batch_size, parallel="auto"):
    """How the per-layer path uses ``n_threads``: ``(shards, reason)``; 1 shard = the kernels' own threads.

    The module docstring has the rule and the measurements behind it.

    Parameters
    ----------
    network : Network
    loss : Loss
    backend : str
        The kernel backend's name.
    n_threads, batch_size : int
    parallel : {'auto', 'shards', 'columns', 'blas'}
        The trainer's setting: ``'shards'`` takes row shards whenever the network allows them,
        ``'blas'`` never (threaded BLAS instead).

    Returns
    -------
    (int, str)
    """
    n_threads, batch_size = int(n_threads), int(batch_size)
    most = max(1, min(n_threads, batch_size // MIN_SHARD_ROWS))
    if n_threads <= 1:
        return 1, "one thread asked for"
    if backend == "reference" or parallel not in ("auto", "shards"):
        return 1, f"no row shards: backend {backend!r}, parallel={parallel!r}"
    blocker = shard_blocker(network, loss)
    if blocker:
        return 1, f"no row shards: {blocker}"
    if most < 2:
        return 1, f"no row shards: a batch of {batch_size} rows gives shards thinner than {MIN_SHARD_ROWS} rows"
    if backend == "numba" and not _numba_launches_thread_safe():
        return 1, ("no row shards: Numba's threading layer is 'workqueue', which aborts the process when "
                   "two threads run parallel kernels at once (install tbb, or use the cython backend)")
    if parallel == "shards":
        return most, f"{most} row shards: asked for with parallel='shards'"
    if any(getattr(layer, "compute_bound", False) for layer in network.layers):
        return most, f"{most} row shards: compute-bound layers (convolutions)"
    mixing = [type(layer).__name__ for layer in network.layers if type(layer).__name__ in SEQUENCE_MIXING]
    if mixing:
        return most, f"{most} row shards: {mixing[0]} (sequence layers run faster in shards than threaded)"
    return 1, "no row shards: no convolution, recurrent or attention layer is big enough to split"


def _numba_launches_thread_safe():
    """Whether two Python threads may run Numba's parallel kernels (recurrent, attention) at once: true
    for the ``omp`` and ``tbb`` threading layers; ``workqueue`` aborts the process. Numba picks its layer
    when it first starts its threads, which this does (a private Numba call: unknown counts as unsafe)."""
    try:
        import numba
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()
        return numba.threading_layer() in ("omp", "tbb")
    except Exception:  # noqa: BLE001 -- any failure here means: do not risk it
        return False
