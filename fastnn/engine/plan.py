"""The compiled plan: which path a fit takes, the plan table, the step schedule and the work layout.

Everything the drivers need is computed here, once per fit, in one place:

- **Rows.** Every layer describes itself with :class:`~fastnn.layers.PlanRow`
  objects (:meth:`Layer.plan_rows`); this module turns names into offsets and
  fills the int64 table ``ops`` and the float64 table ``fops`` (columns
  ``P_*`` / ``F_*`` in :mod:`fastnn.kernels.codes`). A layer whose
  ``plan_rows`` returns None, or a loss without a plan code, sends the fit to
  the per-layer path (the oracle, and the home of user-defined layers).
- **Schedule.** A training step is a list of *items* (gather, forward of a
  row, loss, backward of a row, penalties) cut into *sections*: each shard
  runs a section's items on its rows, then the driver runs the section's sync
  (a serial combine across shards, e.g. BatchNorm's batch statistics) before
  the next section. A network without sync ops has one section per step.
- **Layout.** Offsets of every block in a shard's slice of the work buffer
  (``wofs``, columns ``W_*``) and of BatchNorm statistics in the float64
  ``stats`` buffer. The drivers read these; they hold no layout rule.
"""
from dataclasses import dataclass, replace

import numpy as np

from ..kernels import codes as C

from ..kernels.codes import (BN_STATS, IT_BACKWARD, IT_FORWARD, IT_GATHER, IT_LOSS, IT_PENALTY,
                             SYNC_BN_BACKWARD, SYNC_BN_FORWARD, SYNC_NONE)

_FLOAT_COLS = {"alpha": C.F_ALPHA, "eps": C.F_EPS, "rate": C.F_RATE, "momentum": C.F_MOMENTUM,
               "l1": C.F_L1, "l2": C.F_L2}


_GEOMETRY_COLS = [C.P_H, C.P_W, C.P_C, C.P_HO, C.P_WO, C.P_KH, C.P_KW, C.P_SH, C.P_SW, C.P_PH, C.P_PW]


def _pointwise(geometry):
    """A 1x1 kernel with stride 1 and no padding: the im2col columns are the input itself."""
    kh, kw, sh, sw, ph, pw = geometry[5:]
    return (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)


def _cols_width(geometry):
    """Values per sample of a conv row's im2col block: Ho * Wo * kh * kw * C."""
    _, _, C_in, Ho, Wo, kh, kw = geometry[:7]
    return Ho * Wo * kh * kw * C_in


def shard_rows(batch_size, n_shards):
    """Rows per shard: the batch split as evenly as possible, ceil(batch / shards)."""
    return (batch_size + n_shards - 1) // n_shards


@dataclass
class Plan:
    """Everything one fit's compiled driver needs (built by :func:`build_plan`).

    Attributes
    ----------
    path : {'fused', 'per-layer'}
    reason : str
        Why the per-layer path was chosen; for a fused plan, the trainer's why of its thread split.
    ops, fops : ndarray
        The plan table (int64 / float64), one row per op.
    items, sections : ndarray
        The schedule of one step (see the module docstring).
    wofs : ndarray
        Work offsets and sizes (``W_*`` columns).
    loss_code : int
    loss_f : ndarray
        Float parameters of the loss (Huber delta; focal gamma and class weights).
    n_shards, batch_size : int
    col_threads : int
        With one shard, threads that split each layer's GEMMs by output columns (the Cython
        driver, Dense-only plans; see :func:`choose_split`); 1: the serial driver.
    work, stats : ndarray
        ``(n_shards, stride)`` work buffer of the parameter dtype; ``(n_shards, n_stats)`` float64.
    layers_of_rows : list of int
        Network layer index of each plan row.
    """

    path: str
    reason: str = ""
    ops: np.ndarray = None
    fops: np.ndarray = None
    items: np.ndarray = None
    sections: np.ndarray = None
    wofs: np.ndarray = None
    loss_code: int = -1
    loss_f: np.ndarray = None
    n_shards: int = 1
    col_threads: int = 1
    batch_size: int = 0
    work: np.ndarray = None
    stats: np.ndarray = None
    layers_of_rows: list = None
    params: np.ndarray = None
    grads: np.ndarray = None
    buffers: np.ndarray = None
    opt_code: int = -1
    state: np.ndarray = None
    hyper: np.ndarray = None

    def bind(self, network, optimizer, hyper):
        """Attach the arrays the driver updates: the network's params/grads/buffers, the optimizer's state.

        ``optimizer`` must be built (``optimizer.build(network.n_params, network.dtype)``);
        ``hyper`` is its :meth:`~fastnn.optimizers.Optimizer.hyper_vector` (clipping included).
        """
        self.params, self.grads, self.buffers = network.params, network.grads, network.buffers
        self.opt_code, self.state, self.hyper = optimizer.code, optimizer.state, hyper
        return self

    def describe(self):
        """One line per plan row: op, widths, activation (for people reading a plan)."""
        if self.path != "fused":
            return f"per-layer path: {self.reason}"
        names = {C.OP_DENSE: "dense", C.OP_DROPOUT: "dropout", C.OP_BATCHNORM: "batchnorm",
                 C.OP_LAYERNORM: "layernorm", C.OP_CONV2D: "conv2d", C.OP_MAXPOOL2D: "maxpool2d",
                 C.OP_AVGPOOL2D: "avgpool2d", C.OP_ACTIVATION: "activation"}
        split = f", columns over {self.col_threads} threads" if self.col_threads > 1 else ""
        lines = [f"fused plan: {len(self.ops)} rows, {len(self.sections)} section(s) per step, "
                 f"{self.n_shards} shard(s){split}"]
        for q, row in enumerate(self.ops):
            lines.append(f"  {q}: layer {self.layers_of_rows[q]} {names.get(int(row[C.P_OP]), row[C.P_OP])} "
                         f"{row[C.P_N_IN]} -> {row[C.P_N_OUT]}")
        return "\n".join(lines)


def plan_rows_of(network, loss):
    """``(rows, layer index of each row)`` or ``(None, reason)`` when a layer or the loss has no plan row."""
    fuse = loss.fused_activation
    rows, owners = [], []
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        got = layer.plan_rows(fuse if i == last else None)
        if got is None:
            return None, f"layer {i} ({type(layer).__name__}) has no compiled plan row"
        if i == last and fuse is not None and getattr(layer, "activation", None) == fuse and not got:
            return None, f"the last layer must apply the {fuse} the loss fuses"
        rows += got
        owners += [i] * len(got)
    if not rows:
        return None, "the network has no compiled op"
    if network.n_params == 0:
        return None, "the network has no parameters"
    return rows, owners


def fuse_relu_into_batchnorm(rows, owners):
    """Rows and owners with each ReLU Activation row that follows a BatchNorm row folded into it.

    BatchNorm -> ReLU is the Conv-BN-ReLU block: the BatchNorm row then applies the ReLU in its
    normalize pass and masks its output gradient in its first backward pass, which saves the
    Activation row's output block and its own forward and backward passes over the feature maps.
    Only ReLU: relu(y) > 0 exactly where y > 0, so the kept output is all its derivative needs.
    """
    out_rows, out_owners = [], []
    for r, owner in zip(rows, owners):
        prev = out_rows[-1] if out_rows else None
        if (r.op == C.OP_ACTIVATION and r.act == C.ACT_RELU and prev is not None and prev.op == C.OP_BATCHNORM
                and prev.act == C.ACT_LINEAR and prev.n_out == r.n_in):
            out_rows[-1] = replace(prev, act=C.ACT_RELU)
            continue
        out_rows.append(r)
        out_owners.append(owner)
    return out_rows, out_owners


def build_plan(network, loss, batch_size, n_shards, ny, backend_has_driver=True):
    """Build the :class:`Plan` of one fit: fused when every layer and the loss have plan rows.

    Parameters
    ----------
    network : Network
    loss : Loss
    batch_size, n_shards : int
    ny : int
        Target columns (1 for class labels, else the output width).
    backend_has_driver : bool
        False for a backend without a plan driver: the per-layer path.
    """
    if not backend_has_driver:
        return Plan(path="per-layer", reason="the backend has no compiled plan driver")
    plan_loss = loss.plan_loss(network.n_outputs)
    if plan_loss is None:
        return Plan(path="per-layer", reason=f"loss {loss.name!r} has no compiled plan code")
    rows, owners = plan_rows_of(network, loss)
    if rows is None:
        return Plan(path="per-layer", reason=owners)
    rows, owners = fuse_relu_into_batchnorm(rows, owners)
    loss_code, loss_f = plan_loss
    n_shards = max(1, min(int(n_shards), int(batch_size)))
    cap = shard_rows(batch_size, n_shards)
    param_off = {(i, name): off for i, name, off, _ in network._slots}
    buffer_off = {(i, name): off for i, name, off, _ in network._buffer_slots}

    n = len(rows)
    ops = np.full((n, C.N_PCOL), -1, np.int64)
    fops = np.zeros((n, C.N_FCOL))
    wofs = np.full(C.N_WCOL, -1, np.int64)
    off = 0
    wofs[C.W_X] = off
    off += cap * rows[0].n_in
    wofs[C.W_Y] = off
    off += cap * ny
    n_stats = 0
    dcols = 0  # the widest input-gradient columns of a conv row that needs dX
    prev_out = wofs[C.W_X]
    first_grad = min(q for q, r in enumerate(rows) if r.params)
    # Gradient blocks hold row outputs' gradients and the input gradients backward computes: the
    # input width of the first rows (784 for MNIST) never needs one, and the blocks stay in cache.
    widest = max([r.n_out for r in rows] + [r.n_in for q, r in enumerate(rows) if q > first_grad])
    for q, (r, owner) in enumerate(zip(rows, owners)):
        if q > 0 and r.n_in != rows[q - 1].n_out:
            raise ValueError(f"plan row {q} expects {r.n_in} inputs but row {q - 1} gives {rows[q - 1].n_out}")
        row = ops[q]
        row[C.P_OP], row[C.P_ACT] = r.op, r.act
        row[C.P_N_IN], row[C.P_N_OUT] = r.n_in, r.n_out
        for col, name in zip((C.P_PARAM0, C.P_PARAM1), r.params):
            row[col] = param_off[(owner, name)]
        for col, name in zip((C.P_BUF0, C.P_BUF1), r.buffers):
            row[col] = buffer_off[(owner, name)]
        for name, value in r.floats.items():
            fops[q, _FLOAT_COLS[name]] = value
        row[C.P_SEED] = r.seed
        row[C.P_NEED_DX] = int(q > first_grad)
        row[C.P_IN] = prev_out
        if r.channels > 0:
            row[C.P_C] = r.channels  # BatchNorm / Activation on NHWC rows: per channel
        if r.geometry:
            row[_GEOMETRY_COLS] = r.geometry
            if r.op == C.OP_CONV2D and not _pointwise(r.geometry):
                row[C.P_COLS] = off  # the im2col block, kept for the weight gradient
                off += cap * _cols_width(r.geometry)
                if q > first_grad:
                    dcols = max(dcols, _cols_width(r.geometry))
        row[C.P_Z] = off
        off += cap * r.n_out
        if (r.op in (C.OP_DENSE, C.OP_CONV2D) and r.act == C.ACT_LINEAR) or not r.z_block:
            row[C.P_OUT] = row[C.P_Z]  # a linear layer's output is its Z; pooling keeps no Z
        else:
            row[C.P_OUT] = off
            off += cap * r.n_out
        if r.op == C.OP_LAYERNORM:
            row[C.P_STATS] = n_stats  # float64 scratch per feature, then each shard row's mean and inv_std
            n_stats += C.LN_STATS_K * r.n_out + C.LN_STATS_ROWS * cap
        elif r.op == C.OP_BATCHNORM:
            row[C.P_STATS] = n_stats  # BN_STATS x features (channels of feature maps) in the float64 stats
            n_stats += BN_STATS * (r.channels if r.channels > 0 else r.n_out)
        prev_out = row[C.P_OUT]
    wofs[C.W_DA] = off
    off += cap * widest
    wofs[C.W_DX] = off
    off += cap * widest
    wofs[C.W_DZ] = off
    off += cap * widest
    if dcols:
        wofs[C.W_DCOLS] = off
        off += cap * dcols
    if n_shards > 1:
        wofs[C.W_GRAD] = off
        off += network.n_params
    wofs[C.W_STRIDE] = off
    wofs[C.W_ROWS] = cap
    items, sections = _schedule(ops, fops, first_grad)
    return Plan(path="fused", ops=ops, fops=fops, items=items, sections=sections, wofs=wofs,
                loss_code=int(loss_code), loss_f=np.ascontiguousarray(loss_f, np.float64),
                n_shards=n_shards, batch_size=int(batch_size),
                work=np.zeros((n_shards, off), network.dtype), stats=np.zeros((n_shards, max(n_stats, 1))),
                layers_of_rows=owners)


def _schedule(ops, fops, first_grad):
    """Items and sections of one training step (the module docstring explains both)."""
    items, sections = [], []
    lo = 0

    def cut(kind, row):
        nonlocal lo
        sections.append((lo, len(items), kind, row))
        lo = len(items)

    items.append((IT_GATHER, -1, 0))
    for q in range(len(ops)):
        if ops[q, C.P_OP] == C.OP_BATCHNORM:
            items.append((IT_FORWARD, q, 0))   # partial statistics of the shard
            cut(SYNC_BN_FORWARD, q)            # batch statistics, running statistics
            items.append((IT_FORWARD, q, 1))   # normalize
        else:
            items.append((IT_FORWARD, q, 0))
    items.append((IT_LOSS, -1, 0))
    for q in range(len(ops) - 1, first_grad - 1, -1):
        if ops[q, C.P_OP] == C.OP_BATCHNORM and ops[q, C.P_NEED_DX]:
            items.append((IT_BACKWARD, q, 0))  # partial sums of dY and dY * Xhat (= the shard's dbeta, dgamma)
            cut(SYNC_BN_BACKWARD, q)           # batch sums
            items.append((IT_BACKWARD, q, 1))  # input gradient
        else:
            items.append((IT_BACKWARD, q, 0))
    if (fops[:, C.F_L1] > 0).any() or (fops[:, C.F_L2] > 0).any():
        items.append((IT_PENALTY, -1, 0))
    cut(SYNC_NONE, -1)
    return np.array(items, np.int64), np.array(sections, np.int64)
