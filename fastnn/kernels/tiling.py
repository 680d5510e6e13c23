"""The tile rule of the compiled conv plan rows, one source for every backend.

A conv row runs a shard's images in tiles: im2col of a tile, then its GEMM while the columns are
still in L2, and in backward the tile's dZ, input-gradient columns and col2im likewise. How many
images a tile holds is :func:`conv_tile_images`, with the budget ``codes.CONV_TILE_BYTES`` (why that
size: its comment). The Numba driver compiles this function itself; the Cython driver's
``_conv_tile`` (``csrc/plan_conv.pxi``) is its C twin, built with the same constant from
``_codes.pxi`` and tested equal to it.
"""
from .codes import CONV_TILE_BYTES


def conv_tile_images(ho_wo, k, f, m, itemsize):
    """Images per tile of a conv row on a shard of ``m`` images.

    Parameters
    ----------
    ho_wo : int
        Output positions per image (``Ho * Wo``).
    k : int
        Column width (``kh * kw * C``).
    f : int
        Filters.
    m : int
        Images of the shard.
    itemsize : int
        Bytes per element.

    Returns
    -------
    int
        As many images as keep a tile's columns, Z, A and input-gradient columns within
        ``CONV_TILE_BYTES``, at most ``m``, at least one.
    """
    per = ho_wo * (2 * k + 2 * f) * itemsize
    return max(1, min(m, CONV_TILE_BYTES // per))
