"""Row shards on the per-layer path (issue 11): every core busy on conv nets without threaded BLAS.

Threaded BLAS splits each GEMM across threads that busy-wait between calls;
measured on the shared 2-core machine (load ~7), a conv-net step at batch 128
ran 6x *slower* with 2 BLAS threads than with one. Row shards instead give
each thread its own slice of the batch (like the fused driver's shards): one
Python thread per shard runs that slice through per-shard copies of the
layers (same parameter views, own gradient buffer and work buffers), with
one-thread BLAS. The compiled kernels release the GIL, so the shards run in
parallel; a blocked thread sleeps. The shard gradients are summed in a fixed
order, then clipping and the optimizer update run once, as on the
per-layer path.

Only layers whose forward depends on their own rows alone can be split
(no batch statistics): Dense, Conv2D, the pooling layers, Flatten and Dropout
(its masks are keyed by the row in the batch, so a shard draws the rows'
masks of the whole batch). :func:`can_shard` says whether a network qualifies.
"""
import copy
import threading

import numpy as np

from ..kernels import codes

#: layer types whose forward/backward of a row depends on that row only
SHARDABLE = ("Dense", "Conv2D", "MaxPool2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Dropout")
MIN_SHARD_ROWS = 8  # below this a shard's GEMMs are too small to pay for the thread hand-off


def can_shard(network, loss):
    """``''`` when the per-layer path can run row shards for this network and loss, else the reason."""
    for i, layer in enumerate(network.layers):
        if type(layer).__name__ not in SHARDABLE or type(layer).__module__.split(".")[0] != "fastnn":
            return f"layer {i} ({type(layer).__name__}) cannot be split into row shards"
    if loss.code is None:
        return f"loss {loss.name!r} has no kernel code"
    if not any(getattr(layer, "compute_bound", False) for layer in network.layers):
        return "no compute-bound layer: one thread is faster"
    return ""


def _set_omp_threads(n):
    """Set the Cython kernels' OpenMP loop threads of the calling thread (1 on a shard: no nested
    teams); return the previous setting (None without the extension, which then runs nothing)."""
    try:
        from .._ext._kernels import set_omp_threads
    except ImportError:
        return None
    return set_omp_threads(n)


def _shard_layers(network, grads):
    """Copies of the network's layers bound to the same parameters and to the gradient array ``grads``."""
    views = [({}, {}) for _ in network.layers]
    for i, name, off, shape in network._slots:
        size = int(np.prod(shape))
        views[i][0][name] = network.params[off:off + size].reshape(shape)
        views[i][1][name] = grads[off:off + size].reshape(shape)
    clones = []
    for layer, (p, g) in zip(network.layers, views):
        clone = copy.copy(layer)
        clone.__dict__.pop("_buffers", None)  # own work buffers
        clone.__dict__.pop("_cache", None)
        clone.bind(p, g)
        clones.append(clone)
    return clones


def sharded_runner(kern, backend, network, loss, optimizer, X, Y, batch_size, hyper, clip_norm, clip_value,
                   n_shards):
    """The per-layer runner with each batch split into ``n_shards`` row shards run by as many threads."""
    net, opt = network, optimizer
    fused = loss.fused_activation
    last = net.layers[-1]
    logits = fused is not None and getattr(last, "activation", None) == fused and hasattr(last, "act_code")
    penalized = [layer for layer in net.layers if getattr(layer, "has_penalty", False)]
    shard_grads = np.zeros((n_shards, net.n_params), net.dtype)
    shards = [_shard_layers(net, shard_grads[s]) for s in range(n_shards)]
    dropouts = [[layer for layer in layers if type(layer).__name__ == "Dropout"] for layers in shards]
    originals = [layer for layer in net.layers if type(layer).__name__ == "Dropout"]
    Xb = np.empty((batch_size, X.shape[1]), X.dtype)
    Yb = np.empty((batch_size, Y.shape[1]), Y.dtype)
    dout_full = np.empty((batch_size, net.n_outputs), net.dtype)
    losses = np.zeros(n_shards)
    correct = np.zeros(n_shards)

    def shard_step(s, lo, hi, m, step):
        layers = shards[s]
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

    def run(perm, starts, batch_loss, batch_correct):
        lrs = opt.learning_rates(opt.iterations, len(starts))
        # One thread per shard but the first (the caller's): barriers hand each step's rows over.
        start_b, done_b = threading.Barrier(n_shards), threading.Barrier(n_shards)
        job = {}
        errors = []

        def worker(s):
            _set_omp_threads(1)
            while True:
                start_b.wait()
                if job.get("stop"):
                    return
                try:
                    lo, hi = job["spans"][s]
                    if hi > lo:
                        shard_step(s, lo, hi, job["m"], job["step"])
                    else:  # a last batch smaller than the shard count
                        shard_grads[s] = 0
                        losses[s] = correct[s] = 0
                except BaseException as exc:  # reported by the caller after the step
                    errors.append(exc)
                done_b.wait()

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(1, n_shards)]
        for t in threads:
            t.start()
        omp_before = _set_omp_threads(1)  # the caller runs shard 0
        try:
            for j, start in enumerate(starts):
                m = min(batch_size, len(perm) - int(start))
                kern.gather_rows(X, perm[start:start + m], Xb[:m])
                kern.gather_rows(Y, perm[start:start + m], Yb[:m])
                per = -(-m // n_shards)
                job.update(spans=[(min(m, s * per), min(m, (s + 1) * per)) for s in range(n_shards)], m=m,
                           step=opt.iterations + 1)
                start_b.wait()
                try:
                    lo, hi = job["spans"][0]
                    shard_step(0, lo, hi, m, job["step"])
                except BaseException as exc:
                    errors.append(exc)
                done_b.wait()
                if errors:
                    raise errors[0]
                np.copyto(net.grads, shard_grads[0])
                for s in range(1, n_shards):  # a fixed order: results do not depend on thread timing
                    net.grads += shard_grads[s]
                batch_loss[j] = float(losses.sum()) / m
                batch_correct[j] = float(correct.sum())
                for layer in penalized:
                    batch_loss[j] += layer.penalty()
                    layer.add_penalty_gradient()
                kern.clip_gradients(net.grads, clip_norm, clip_value)
                hyper[codes.H_LR] = lrs[j]
                kern.optimizer_update(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1)
                opt.iterations += 1
        finally:
            job["stop"] = True
            try:
                start_b.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
            for t in threads:
                t.join(timeout=10)
            if omp_before is not None:
                _set_omp_threads(omp_before)
        for layer in originals:
            layer.step = opt.iterations + 1
    return run
