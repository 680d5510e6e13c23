"""What the three plan drivers share around their own step loop: the code check and the entry points.

Each backend's ``plan.py`` supplies its step loop, ``run(plan, X, Y, perm, batch_starts, lrs, step0,
batch_loss, batch_correct, update)``, and :func:`entry_points` wraps it, with the backend's clip and
optimizer ops, into the spec's ``train_steps``, ``grad_steps`` and ``apply_update``.
"""
import numpy as np

from . import codes


def _codes(prefix):
    return frozenset(v for k, v in vars(codes).items() if k.startswith(prefix) and isinstance(v, int))


_OPS, _LOSSES, _ACTS, _OPTIMIZERS = _codes("OP_"), _codes("LOSS_"), _codes("ACT_"), _codes("OPT_")


_IMAGE_OPS = frozenset((codes.OP_CONV2D, codes.OP_MAXPOOL2D, codes.OP_AVGPOOL2D))


def _check_image_row(q, row):
    """The geometry of a conv / pool row must fit its widths: the drivers index images by it unchecked."""
    H, W, C_in, Ho, Wo, kh, kw, sh, sw, ph, pw = (int(row[c]) for c in (
        codes.P_H, codes.P_W, codes.P_C, codes.P_HO, codes.P_WO, codes.P_KH, codes.P_KW, codes.P_SH, codes.P_SW,
        codes.P_PH, codes.P_PW))
    ok = min(H, W, C_in, Ho, Wo, kh, kw, sh, sw) > 0 and 0 <= ph < kh and 0 <= pw < kw \
        and (Ho - 1) * sh - ph < H and (Wo - 1) * sw - pw < W \
        and row[codes.P_N_IN] == H * W * C_in and row[codes.P_N_OUT] % (Ho * Wo) == 0
    if ok and row[codes.P_OP] != codes.OP_CONV2D:
        ok = row[codes.P_N_OUT] == Ho * Wo * C_in
    if not ok:
        raise ValueError(f"plan row {q}: its image geometry {(H, W, C_in, Ho, Wo, kh, kw, sh, sw, ph, pw)} "
                         f"does not fit its widths {int(row[codes.P_N_IN])} -> {int(row[codes.P_N_OUT])}")


_CHANNEL_OPS = frozenset((codes.OP_BATCHNORM, codes.OP_ACTIVATION))


def _check_channels(q, row, plan):
    """A BatchNorm / Activation row reads its n_out values as n_out / P_C rows of P_C channels (P_C = -1:
    one flat row): the drivers index gamma, beta, the running and the batch statistics by it unchecked."""
    channels, n_out = int(row[codes.P_C]), int(row[codes.P_N_OUT])
    if not (channels == -1 or (channels > 0 and n_out % channels == 0)):
        raise ValueError(f"plan row {q}: its channel count {channels} does not divide its width {n_out}")
    if row[codes.P_OP] != codes.OP_BATCHNORM:
        return
    k = channels if channels > 0 else n_out
    spans = ((codes.P_PARAM0, k, len(plan.params), "parameter"), (codes.P_PARAM1, k, len(plan.params), "parameter"),
             (codes.P_BUF0, k, len(plan.buffers), "buffer"), (codes.P_BUF1, k, len(plan.buffers), "buffer"),
             (codes.P_STATS, codes.BN_STATS * k, plan.stats.shape[1], "statistics"))
    for col, size, limit, what in spans:
        if not 0 <= row[col] <= limit - size:
            raise ValueError(f"plan row {q}: its {k} channels' {what} block at {int(row[col])} lies outside "
                             f"its buffer ({limit} values)")


def _check_layernorm(q, row, plan):
    """A LayerNorm row's float64 block (scratch per feature, each shard row's mean and inv_std) lies in
    the stats buffer: the compiled drivers write it unchecked."""
    size = codes.LN_STATS_K * int(row[codes.P_N_OUT]) + codes.LN_STATS_ROWS * int(plan.wofs[codes.W_ROWS])
    if not 0 <= row[codes.P_STATS] <= plan.stats.shape[1] - size:
        raise ValueError(f"plan row {q}: its LayerNorm statistics block at {int(row[codes.P_STATS])} lies outside "
                         f"the stats buffer ({plan.stats.shape[1]} values)")


def check_codes(plan):
    """Refuse unknown op, loss, activation and optimizer codes, image rows whose geometry does not fit
    their widths and channel counts that do not divide them, before any step (no silent default)."""
    for q, (op, act) in enumerate(plan.ops[:, [codes.P_OP, codes.P_ACT]]):
        if op not in _OPS:
            raise ValueError(f"unknown op code {op} in plan row {q}")
        if op in (codes.OP_DENSE, codes.OP_CONV2D, codes.OP_ACTIVATION) and act not in _ACTS:
            raise ValueError(f"unknown activation code {act} in plan row {q}")
        if op == codes.OP_BATCHNORM and act not in (codes.ACT_LINEAR, codes.ACT_RELU):
            raise ValueError(f"a BatchNorm plan row applies no activation or ReLU, not code {act} (plan row {q})")
        if op in _IMAGE_OPS:
            _check_image_row(q, plan.ops[q])
        if op in _CHANNEL_OPS:
            _check_channels(q, plan.ops[q], plan)
        if op == codes.OP_LAYERNORM:
            _check_layernorm(q, plan.ops[q], plan)
    if plan.loss_code not in _LOSSES:
        raise ValueError(f"unknown loss code {plan.loss_code} in the plan")
    if plan.opt_code not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer code {plan.opt_code}")


def entry_points(run, clip_gradients, optimizer_update):
    """``(train_steps, grad_steps, apply_update)`` of a backend, from its step loop and its ops."""

    def train_steps(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct):
        """Run one optimizer step per batch start: forward, loss, backward, clip, update (the fused path).

        Batch ``j`` is rows ``perm[batch_starts[j]:][:plan.batch_size]`` of ``X``/``Y``; it is
        optimizer step ``step0 + j + 1`` with learning rate ``lrs[j]``. Writes the batch's mean
        loss (plus penalties) into ``batch_loss[j]`` and its correct count into ``batch_correct[j]``.
        """
        run(plan, X, Y, perm, batch_starts, lrs, step0, batch_loss, batch_correct, True)

    def grad_steps(plan, X, Y, perm, batch_starts, step0, batch_loss, batch_correct):
        """Forward + backward of each batch into ``plan.grads`` without updating: their summed gradient.

        With one batch start ``plan.grads`` is exactly the gradient ``train_steps`` applies at
        that step; pair it with ``apply_update`` (gradient accumulation, distributed training).
        """
        run(plan, X, Y, perm, batch_starts, np.zeros(len(batch_starts)), step0, batch_loss, batch_correct, False)

    def apply_update(plan, lr, step):
        """Clip ``plan.grads`` (the plan's hyper-parameters say how) and apply one optimizer step."""
        h = np.array(plan.hyper, dtype=np.float64)
        if h[codes.H_CLIP_NORM] > 0 or h[codes.H_CLIP_VALUE] > 0:
            clip_gradients(plan.grads, h[codes.H_CLIP_NORM], h[codes.H_CLIP_VALUE])
        h[codes.H_LR] = lr
        optimizer_update(plan.opt_code, plan.params, plan.grads, plan.state, h, step)

    return train_steps, grad_steps, apply_update
