"""One data-parallel worker of :class:`fastnn.distributed.RayTrainer`: plain Python, no Ray import.

:mod:`fastnn.integrations.ray_trainer` wraps :class:`ShardWorker` with ``ray.remote`` (one CPU per
actor); keeping the logic free of Ray lets it be tested, and read, on its own.

A worker holds a copy of the network and optimizer, its own single-shard plan sized for its part
of a global batch, and the training data as the object store hands it over (a read-only,
zero-copy view; the whole set shared by every worker of a node, or only this worker's shard).
Each call names global batches by their start in the epoch's permutation; the worker takes rows
``row0 .. row0 + m - 1`` of each (its part, split as the engine splits a batch into shards), or
the explicit part the driver gives for sharded data, and runs the engine's entry points on them:
the compiled ``grad_steps`` / ``train_steps`` on the fused path, or the per-layer path's
:func:`~fastnn.engine.layerwise_grad` (conv and sequence nets, user-defined layers), as the
driver's engine decided.

BatchNorm normalises with the statistics of the worker's part of the batch; the worker returns its
running statistics (``network.buffers``) with every result, and the driver averages them.
"""
import os
import socket
import time

import numpy as np

from .. import _config
from ..engine import Plan, build_plan, layerwise_grad, shard_rows
from ..kernels import codes as C
from ..kernels import get_backend
from ..kernels.dropout_ref import GOLDEN

_MASK64 = (1 << 64) - 1


def part_of(rank, num_workers, m):
    """``(row0, rows)`` of worker ``rank`` in a global batch of ``m`` rows (rows may be 0 in a short last batch)."""
    per = shard_rows(m, num_workers)
    row0 = rank * per
    return row0, max(0, min(per, m - row0))


class ShardWorker:
    """Computes gradients (or runs local steps) on its part of every global batch.

    Parameters
    ----------
    rank, num_workers : int
        This worker's index and the number of workers: the worker's part of each batch.
    network, loss, optimizer
        Copies of the driver's objects (the optimizer built, the network's parameters current).
    X, Y : ndarray
        The whole prepared training set, or this worker's shard of it (read-only views are fine:
        nothing writes to them).
    batch_size : int
        The global batch size.
    hyper : ndarray
        The optimizer's hyper-parameter vector (clipping included).
    backend : str
    path : {'fused', 'per-layer'}, default 'fused'
        The driver's engine decision for this network: the worker builds its own plan of that path.
    pin_threads : bool, default False
        Set this process to one thread (fastnn, BLAS, Numba): what the Ray actor does.
    """

    def __init__(self, rank, num_workers, network, loss, optimizer, X, Y, batch_size, hyper, backend, *,
                 path="fused", pin_threads=False):
        if pin_threads:
            # One thread per worker process: N workers on N CPUs would oversubscribe with threaded
            # kernels or BLAS. Process-wide, hence only in a worker's own process (the Ray actor).
            _config.set_num_threads(1)
            self._limits = _config.thread_limits(1)
            self._limits.__enter__()
            if backend == "numba":
                _config.apply_numba_threads(1)
        self.rank, self.num_workers = int(rank), int(num_workers)
        # Arrays that arrive through the object store are read-only views: the worker writes its own,
        # and re-points the layers' views at them (the per-layer path reads and writes through those).
        for name in ("params", "grads", "buffers"):
            setattr(network, name, np.array(getattr(network, name)))
        network._bind()
        optimizer.state = np.array(optimizer.state)
        self.net, self.loss, self.opt = network, loss, optimizer
        self.X, self.Y = X, Y
        self.batch_size = int(batch_size)
        self.kern = get_backend(backend)
        cap = shard_rows(self.batch_size, self.num_workers)
        hyper = np.array(hyper, np.float64)
        if path == "fused":
            self.plan = build_plan(network, loss, cap, 1, Y.shape[1],
                                   backend_has_driver=hasattr(self.kern, "grad_steps"))
            if self.plan.path != "fused":
                raise ValueError(f"the driver planned the fused path but this worker cannot: {self.plan.reason}")
            self._grad = None
        elif path == "per-layer":
            self.plan = Plan(path="per-layer", reason="the driver's engine chose the per-layer path")
            self._grad = layerwise_grad(self.kern, backend, network, loss, X, Y, cap)
        else:
            raise ValueError(f"path must be 'fused' or 'per-layer', not {path!r}")
        self.plan.bind(network, optimizer, hyper)  # apply_update reads only the bound arrays
        # Dropout masks hash (key, step, row in the batch): a worker's rows start at 0 in its own
        # plan, so its keys are shifted by row0 * GOLDEN, which is exactly the hash of rows
        # row0.. of the whole batch (dropout_ref.row_keys) -- the masks of serial training. The
        # per-layer path passes row0 to the Dropout layers instead.
        self._dropout_rows = [] if self._grad is not None else \
            [q for q in range(len(self.plan.ops)) if self.plan.ops[q, C.P_OP] == C.OP_DROPOUT]
        self._dropout_keys = [int(self.plan.ops[q, C.P_SEED]) for q in self._dropout_rows]
        self._row0 = 0
        self.perm = None
        self._fault = None
        self._loss1 = np.zeros(1)
        self._correct1 = np.zeros(1)
        self._start1 = np.zeros(1, np.int64)

    def ready(self):
        """``{'rank', 'host', 'pid', 'threads', 'blas_threads'}``: the worker is constructed and answering."""
        from threadpoolctl import threadpool_info

        blas = [p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"]
        return {"rank": self.rank, "host": socket.gethostname(), "pid": os.getpid(),
                "threads": _config.get_num_threads(), "blas_threads": max(blas) if blas else None}

    def set_perm(self, perm):
        """The epoch's permutation (sent once per epoch through the object store)."""
        self.perm = perm

    def _inject_fault(self, message=None, sleep=0.0):
        """Make the next step sleep ``sleep`` seconds, then raise ``ValueError(message)`` (unless None).

        Stand-ins for a hung worker and for bad data, for the fault tests.
        """
        self._fault = (message, float(sleep))

    def _rows(self, start, m_total, part=None):
        """This worker's rows of a global batch: ``part_of`` the batch at ``start`` of the (shared)
        permutation, or, for sharded data, ``part = (lo, m, row0)``: rows ``lo .. lo + m - 1`` of this
        worker's own permutation, which are rows ``row0 ..`` of the global batch."""
        if part is None:
            row0, m = part_of(self.rank, self.num_workers, m_total)
            lo = start + row0
        else:
            lo, m, row0 = (int(v) for v in part)
        if m and row0 != self._row0:
            for q, key in zip(self._dropout_rows, self._dropout_keys):
                shifted = (key + row0 * GOLDEN) & _MASK64
                self.plan.ops[q, C.P_SEED] = shifted - (1 << 64) if shifted >= 1 << 63 else shifted
            self._row0 = row0
        return self.perm[lo:lo + m], m, row0

    def _check_fault(self):
        if self._fault is not None:
            (message, sleep), self._fault = self._fault, None
            time.sleep(sleep)
            if message is not None:
                raise ValueError(message)

    def _gradient(self, idx, row0, step):
        """Forward + backward of rows ``idx`` into ``net.grads`` at optimizer step ``step``: ``(loss, correct)``."""
        if self._grad is not None:
            return self._grad(idx, step, row0)
        self.kern.grad_steps(self.plan, self.X, self.Y, idx, self._start1, step - 1, self._loss1, self._correct1)
        return float(self._loss1[0]), float(self._correct1[0])

    def grad_step(self, params, start, m_total, step, part=None, buffers=None):
        """Gradient of this worker's part of one global batch at ``params`` (``part``: see ``_rows``).

        ``buffers`` (the driver's running statistics, or None without any) replace the worker's.
        Returns ``(grads, mean loss, correct, rows, compute seconds, buffers)``; ``grads`` and
        ``buffers`` are None when the worker has no rows in this (short, last) batch, ``buffers``
        also for a network without any.
        """
        t0 = time.perf_counter()
        self._check_fault()
        idx, m, row0 = self._rows(int(start), int(m_total), part)
        if m == 0:
            return None, 0.0, 0.0, 0, time.perf_counter() - t0, None
        np.copyto(self.net.params, params)
        if buffers is not None:
            np.copyto(self.net.buffers, buffers)
        loss, correct = self._gradient(idx, row0, int(step))
        bufs = self.net.buffers if self.net.buffers.size else None
        return self.net.grads, loss, correct, m, time.perf_counter() - t0, bufs

    def local_steps(self, params_state, starts, m_totals, step0, lrs, sync, parts=None):
        """Optimizer steps on this worker's parts of several global batches (parameter averaging).

        ``params_state`` (the flat parameters, then the flat optimizer state, then the flat
        buffers) replaces the worker's own after a sync; None continues from them. Returns
        ``(params_state or None, per-batch mean losses, per-batch correct counts, per-batch rows,
        compute seconds)``; the parameters, state and buffers come back only when ``sync``.
        """
        t0 = time.perf_counter()
        self._check_fault()
        n_p, n_s = self.net.n_params, self.opt.state.size
        if params_state is not None:
            np.copyto(self.net.params, params_state[:n_p])
            self.opt.state.reshape(-1)[...] = params_state[n_p:n_p + n_s]
            np.copyto(self.net.buffers, params_state[n_p + n_s:])
        k = len(starts)
        losses, correct, rows = np.zeros(k), np.zeros(k), np.zeros(k, np.int64)
        lr1 = np.zeros(1)
        for j in range(k):
            idx, m, row0 = self._rows(int(starts[j]), int(m_totals[j]), None if parts is None else parts[j])
            rows[j] = m
            if m == 0:
                continue
            step = int(step0) + j + 1
            if self._grad is not None:
                losses[j], correct[j] = self._grad(idx, step, row0)
                self.kern.apply_update(self.plan, lrs[j], step)
                continue
            lr1[0] = lrs[j]
            self.kern.train_steps(self.plan, self.X, self.Y, idx, self._start1, lr1, step - 1,
                                  self._loss1, self._correct1)
            losses[j], correct[j] = self._loss1[0], self._correct1[0]
        out = np.concatenate([self.net.params, self.opt.state.reshape(-1), self.net.buffers]) if sync else None
        return out, losses, correct, rows, time.perf_counter() - t0
