"""The Cython LayerNorm kernels on every lane width this CPU can run (``layernorm_isa``): AVX-512 (8 doubles),
AVX2 and the baseline build (4), each against the reference, both float types, widths around the lane
blocks. The conformance suite runs only the CPU's best; these are the kernels other CPUs pick."""
import numpy as np
import pytest

from fastnn.kernels import reference as R

from .helpers import assert_matches

K = pytest.importorskip("fastnn._ext._kernels")


def _available():
    out = []
    for isa in ("off", "avx2", "avx512"):
        try:
            K.layernorm_isa(isa)
        except ValueError:
            continue
        finally:
            K.layernorm_isa("auto")
        out.append(isa)
    return out


@pytest.fixture(params=_available())
def isa(request):
    K.layernorm_isa(request.param)
    yield request.param
    K.layernorm_isa("auto")


def test_unknown_or_missing_isa_is_refused():
    with pytest.raises(ValueError, match="isa must be one of"):
        K.layernorm_isa("sse9")
    assert K.layernorm_isa() == K.layernorm_isa("auto")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 7, 8, 12, 64, 128, 129, 256])
def test_layernorm_kernels_match_the_reference(isa, dtype, k):
    rng = np.random.default_rng(k)
    n = 11
    X = (rng.standard_normal((n, k)) * 3 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(k).astype(dtype), rng.standard_normal(k).astype(dtype)
    dout = rng.standard_normal((n, k)).astype(dtype)
    what = f"[{isa}, {np.dtype(dtype).name}, k={k}]"
    got, ref = {}, {}
    for mod, res in ((R, ref), (K, got)):  # backward: both from the reference's forward
        res["mean"], res["inv"], res["out"] = np.empty(n), np.empty(n), np.empty_like(X)
        mod.layernorm_rows_forward(X, gamma, beta, 1e-5, res["mean"], res["inv"], res["out"])
        res["dg"], res["db"], res["dX"] = np.empty(k, dtype), np.empty(k, dtype), np.empty_like(X)
        mod.layernorm_rows_backward(dout, X, ref.get("mean", res["mean"]), ref.get("inv", res["inv"]), gamma,
                                    res["dg"], res["db"], res["dX"])
        res["Xh"], res["inv_f"], res["out2"] = np.empty_like(X), np.empty(n, dtype), np.empty_like(X)
        mod.layernorm_forward(X, gamma, beta, 1e-5, res["Xh"], res["inv_f"], res["out2"])
        res["dg2"], res["db2"], res["dX2"] = np.empty(k, dtype), np.empty(k, dtype), np.empty_like(X)
        mod.layernorm_backward(dout, ref.get("Xh", res["Xh"]), ref.get("inv_f", res["inv_f"]), gamma,
                               res["dg2"], res["db2"], res["dX2"])
    for name in got:
        assert_matches(got[name], ref[name], dtype, k, f"{what} {name}")
