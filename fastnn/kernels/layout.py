"""Layout of the per-shard work buffer the whole-run drivers use.

Plain Python on scalars and an int64 table, so the numba backend compiles this
very function (no second copy of the rule) and the Cython driver mirrors it.
Per shard, with ``r`` rows at most and ``ny`` target columns::

    [X rows: r*n_in0][targets: r*ny][Z_0, A_0, Z_1, A_1, ...: r*n_out_l each]
    [dA: r*w][dX: r*w][dZ: r*w]          w = widest layer (inputs or outputs)
    [shard gradient: n_params]           only when n_shards > 1
"""


def shard_rows(batch_size, n_shards):
    """Rows per shard: the batch split as evenly as possible, ceil(batch / shards)."""
    return (batch_size + n_shards - 1) // n_shards


def max_width(meta):
    """Widest layer input or output in the Dense table ``meta``."""
    w = meta[0, 0]
    for li in range(meta.shape[0]):
        if meta[li, 0] > w:
            w = meta[li, 0]
        if meta[li, 1] > w:
            w = meta[li, 1]
    return w


def shard_stride(meta, rows, ny, n_params, n_shards):
    """Number of elements of one shard's slice of the work buffer."""
    size = rows * meta[0, 0] + rows * ny
    for li in range(meta.shape[0]):
        size += 2 * rows * meta[li, 1]
    size += 3 * rows * max_width(meta)
    if n_shards > 1:
        size += n_params
    return size
