"""Conformance of the ``attention`` and ``embedding`` families: every backend against the reference, per dtype."""
import numpy as np
import pytest

from .helpers import check_op


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
# T = 7, 12, 28: rows shorter than, not a multiple of, and several of the Cython softmax's 8-lane blocks
@pytest.mark.parametrize("n,T,heads,dk", [(1, 1, 1, 3), (3, 7, 2, 4), (5, 12, 4, 8), (2, 28, 2, 4)])
def test_attention(n, T, heads, dk, causal, masked):
    D = heads * dk

    def forward(dtype, rng):
        key_mask = None
        if masked:
            key_mask = (rng.random((n, T)) > 0.4).astype(dtype)
            key_mask[0] = 0  # a fully padded sequence: P = 0, O = 0, no NaN
        return dict(QKV=_rand(rng, (n, T, 3 * D), dtype, 2.0), n_heads=heads, causal=causal, key_mask=key_mask,
                    P_out=np.empty((n, heads, T, T), dtype), O_out=np.empty((n, T, D), dtype))

    def backward(fwd, dtype, rng):
        return dict(QKV=fwd["QKV"], P=fwd["P_out"], dO=_rand(rng, (n, T, D), dtype), n_heads=heads, causal=causal,
                    dS_buf=np.empty_like(fwd["P_out"]), dQKV_out=np.empty_like(fwd["QKV"]))
    check_op("attention_forward", forward, ["P_out", "O_out"],
             backward=("attention_backward", backward, ["dQKV_out"]), chain=4 * T * dk)


def test_attention_softmax_propagates_nan_and_masks_exactly():
    """A NaN query makes its row NaN (the non-finite guard sees it); masked and causal weights are exactly 0."""
    from fastnn.kernels import available_backends, get_backend

    rng = np.random.default_rng(3)
    n, T, D = 2, 20, 8
    for dtype in (np.float32, np.float64):
        QKV = rng.standard_normal((n, T, 3 * D)).astype(dtype)
        QKV[1, 4, 0] = np.nan  # query 4 of sample 1
        key_mask = np.ones((n, T), dtype)
        key_mask[0, 3:9] = 0
        for name in available_backends():
            P, O = np.empty((n, 2, T, T), dtype), np.empty((n, T, D), dtype)
            get_backend(name).attention_forward(QKV, 2, True, key_mask, P, O)
            assert np.isnan(P[1, 0, 4, :5]).all() and np.isfinite(P[0]).all(), name
            above = np.triu_indices(T, 1)  # causal: no look-ahead
            assert (P[0, :, :, 3:9] == 0).all() and (P[0][:, above[0], above[1]] == 0).all(), name
            np.testing.assert_allclose(P[0].sum(axis=-1), 1, rtol=1e-5, err_msg=name)


def test_attention_softmax_is_stable_for_huge_scores():
    from fastnn.kernels import available_backends, get_backend

    QKV = np.zeros((1, 3, 6), np.float32)
    QKV[0, :, :2] = 1e4  # q . k / sqrt(2) ~ 1e8: exp overflows without the row maximum subtracted
    QKV[0, :, 2:4] = 1e4
    for name in available_backends():
        P, O = np.empty((1, 1, 3, 3), np.float32), np.empty((1, 3, 2), np.float32)
        get_backend(name).attention_forward(QKV, 1, False, None, P, O)
        assert np.isfinite(P).all() and np.allclose(P.sum(axis=-1), 1), name


@pytest.mark.parametrize("m,V,D", [(1, 1, 1), (40, 7, 5)])
def test_embedding(m, V, D):
    def forward(dtype, rng):
        return dict(ids=rng.integers(0, V, m).astype(np.int64), E=_rand(rng, (V, D), dtype),
                    out=np.empty((m, D), dtype))

    def backward(fwd, dtype, rng):  # repeated ids must accumulate
        return dict(ids=fwd["ids"], dout=_rand(rng, (m, D), dtype), dE_out=np.full((V, D), 7, dtype))
    check_op("embedding_forward", forward, ["out"], backward=("embedding_backward", backward, ["dE_out"]))
