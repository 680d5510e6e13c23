"""Counter-based dropout masks (numpy reference): the same bits on every backend and shard count.

A mask element depends only on ``(key, step, row, unit)``, never on which
thread or shard computes it, so a batch split into row shards draws exactly
the mask the whole batch would, and a resumed run redraws the same masks.
The hash is SplitMix64's finalizer (Steele et al., 2014); one 64-bit hash
gives four 16-bit draws (units ``4p .. 4p + 3``, lowest bits first). A unit is
kept when its draw is below ``floor(keep * 2**16)``, i.e. with probability
``keep`` to within 2**-16 -- finer than any dropout rate needs, and four draws
per hash keep the mask at a fraction of a GEMM's cost.
"""
import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1


def keep_threshold(rate):
    """The 16-bit draw below which a unit is kept, for drop probability ``rate`` in [0, 1)."""
    return int((1.0 - rate) * 65536.0)


def _mix64(z):
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def row_keys(key, step, row0, n_rows):
    """uint64 key of each row ``row0 .. row0 + n_rows - 1`` of training step ``step``."""
    base = np.uint64((int(key) + (int(step) << 32) * GOLDEN) & _MASK64)
    rows = np.arange(row0, row0 + n_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(base + rows * np.uint64(GOLDEN))


def dropout_forward(X, key, step, row0, rate, mask_out, out):
    """mask = (draw < threshold) / keep, out = X * mask; rows are ``row0 ..`` of the batch."""
    n, k = X.shape
    keep = 1.0 - rate
    thr = np.uint64(keep_threshold(rate))
    rk = row_keys(key, step, row0, n)
    quads = np.arange(1, (k + 3) // 4 + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix64(rk[:, None] + quads[None, :] * np.uint64(GOLDEN))
    draws = np.empty((n, 4 * quads.size), np.uint64)
    for t in range(4):
        draws[:, t::4] = (h >> np.uint64(16 * t)) & np.uint64(0xFFFF)
    kept = draws[:, :k] < thr
    mask_out[...] = np.where(kept, X.dtype.type(1.0 / keep), X.dtype.type(0))
    np.multiply(X, mask_out, out=out)


def dropout_backward(dA, mask, dX_out):
    """dX = dA * mask."""
    np.multiply(dA, mask, out=dX_out)
