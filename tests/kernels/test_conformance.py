"""Conformance: every op of the spec x every backend x every code, against the reference oracle.

For each op: present on every backend (its own implementation where the spec
says so, else the declared fallback), the spec's argument names, the same
result as the reference for float32 and float64 (forward and backward, through
``check_op``), and ValueError for an unknown code on every backend.
"""
import importlib

import numpy as np
import pytest

from fastnn.data.augment import _RotationMaps
from fastnn.kernels import codes, get_backend, spec
from fastnn.kernels.codes import (
    ACT_SOFTMAX, H_BETA1, H_BETA2, H_CLIP_NORM, H_CLIP_VALUE, H_DECOUPLED, H_EPS, H_LR, H_MOMENTUM,
    H_NESTEROV, H_WEIGHT_DECAY, LOSS_BCE_LOGITS, LOSS_SOFTMAX_CE, N_HYPER, OPT_RMSPROP,
)

from .helpers import backends, call, check_op, dense_plan, signature


def _codes(prefix):
    return sorted((v, k) for k, v in vars(codes).items() if k.startswith(prefix) and isinstance(v, int))


ACTS = _codes("ACT_")
LOSSES = [(v, k) for v, k in _codes("LOSS_") if v in codes.KERNEL_LOSSES]  # plan-only codes: tests/engine
OPTS = _codes("OPT_")
BAD_CODES = (-1, 99)


def _ids(pairs):
    return [name for _, name in pairs]


# --------------------------------------------------------------------------- the table itself
def test_spec_is_consistent():
    names = [op.name for op in spec.OPS]
    assert len(names) == len(set(names))
    for op in spec.OPS:
        assert "reference" in op.backends, f"{op.name}: the reference is the oracle of every op"
        if set(op.backends) != set(spec.BACKENDS):
            assert op.fallback in op.backends, f"{op.name}: needs a declared fallback it implements"
        else:
            assert op.fallback is None, f"{op.name}: a fallback for an op every backend implements"


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("op", spec.OPS, ids=lambda op: op.name)
def test_op_present_with_the_spec_signature(backend, op):
    ns = get_backend(backend)
    fn = getattr(ns, op.name)
    assert callable(fn)
    assert signature(fn) == op.args, f"{backend}.{op.name}{signature(fn)} != spec {op.args}"
    if backend in op.backends:  # its own implementation, in its own family module
        assert ns.source(op.name) == backend
        family = importlib.import_module(f"fastnn.kernels.{backend}.{op.family}")
        assert getattr(family, op.name) is fn
    else:
        assert ns.source(op.name) == op.fallback
        assert ns.fallbacks()[op.name] == op.fallback


@pytest.mark.parametrize("backend", spec.BACKENDS)
def test_every_backend_has_every_family_file(backend):
    import pathlib

    import fastnn.kernels as K

    root = pathlib.Path(K.__file__).parent / backend
    for family in spec.FAMILIES:
        assert (root / f"{family}.py").is_file(), f"fastnn/kernels/{backend}/{family}.py"


# --------------------------------------------------------------------------- argument factories
def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _act_args(act, shape=(7, 5)):
    def make(dtype, rng):
        Z = _rand(rng, shape, dtype, 3.0)
        return dict(Z=Z, act=act, alpha=0.1, A_out=np.empty_like(Z))
    return make


def _act_bwd_args(fwd, dtype, rng):
    Z = fwd["Z"]
    return dict(Z=Z, A=fwd["A_out"], dA=_rand(rng, Z.shape, dtype), act=fwd["act"], alpha=fwd["alpha"],
                dZ_out=np.empty_like(Z))


def _dense_args(act, n=16, n_in=20, n_out=7):
    def make(dtype, rng):
        return dict(X=_rand(rng, (n, n_in), dtype), W=_rand(rng, (n_in, n_out), dtype, 0.3),
                    b=_rand(rng, n_out, dtype), act=act, alpha=0.2, Z_out=np.empty((n, n_out), dtype),
                    A_out=np.empty((n, n_out), dtype))
    return make


def _dense_bwd_args(need_dX):
    def make(fwd, dtype, rng):
        X, W, Z = fwd["X"], fwd["W"], fwd["Z_out"]
        return dict(X=X, W=W, Z=Z, A=fwd["A_out"], dA=_rand(rng, Z.shape, dtype), act=fwd["act"],
                    alpha=fwd["alpha"], dZ_buf=np.empty_like(Z), dW_out=np.empty_like(W),
                    db_out=np.empty(W.shape[1], dtype), dX_out=np.empty_like(X) if need_dX else None)
    return make


def _chain_args(act, n=9, widths=(20, 16, 7, 5), bias=True, n_threads=1):
    def make(dtype, rng):
        rows, off = [], 0
        for q, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            rows.append([a, b, off, off + a * b if bias or q == 0 else -1, act if q % 2 == 0 else 1])
            off += a * b + b
        return dict(X=_rand(rng, (n, widths[0]), dtype), params=_rand(rng, off, dtype, 0.3),
                    layers=np.array(rows, np.int64), alphas=np.full(len(rows), 0.2),
                    work=np.zeros((2, n * max(widths[1:-1], default=1)), dtype), out=np.empty((n, widths[-1]), dtype),
                    n_threads=n_threads)
    return make


def _target(loss, kind, rng, n, k, dtype):
    if loss == LOSS_SOFTMAX_CE:
        labels = rng.integers(0, k, n)
        return np.eye(k, dtype=dtype)[labels] if kind == "rows" else labels.reshape(-1, 1).astype(dtype)
    if loss == LOSS_BCE_LOGITS:
        return rng.random((n, k)).astype(dtype) if kind == "rows" else (rng.random((n, k)) > 0.5).astype(dtype)
    return _rand(rng, (n, k), dtype)


def _loss_args(loss, kind, n=9, k=4):
    def make(dtype, rng):
        out = _rand(rng, (n, k), dtype, 4.0)
        return dict(loss=loss, out=out, target=_target(loss, kind, rng, n, k, dtype), scale=1.0 / n,
                    dout=np.empty_like(out))
    return make


def _hyper(slots=None):
    h = np.zeros(N_HYPER)
    h[[H_LR, H_BETA1, H_BETA2, H_EPS]] = [1e-2, 0.9, 0.999, 1e-8]
    for slot, value in (slots or {}).items():
        h[slot] = value
    return h


OPT_VARIANTS = {  # hyper-parameters that select a different code path of an optimizer
    "plain": _hyper(), "l2": _hyper({H_WEIGHT_DECAY: 0.01}), "momentum": _hyper({H_MOMENTUM: 0.9}),
    "nesterov_l2": _hyper({H_MOMENTUM: 0.9, H_NESTEROV: 1, H_WEIGHT_DECAY: 0.01}),
    "decoupled": _hyper({H_WEIGHT_DECAY: 0.01, H_DECOUPLED: 1}),
}


def _opt_args(opt, hyper, n=70001):  # not a multiple of the parallel chunk
    def make(dtype, rng):
        return dict(opt=opt, params=_rand(rng, n, dtype), grads=_rand(rng, n, dtype, 0.1),
                    state=np.abs(_rand(rng, (2, n), dtype, 0.01)), hyper=hyper, step=3)
    return make


# --------------------------------------------------------------------------- every code, every op
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 130)])
@pytest.mark.parametrize("act,name", ACTS, ids=_ids(ACTS))
def test_activations(act, name, shape):
    check_op("activation_forward", _act_args(act, shape), ["A_out"],
             backward=("activation_backward", _act_bwd_args, ["dZ_out"]))


@pytest.mark.parametrize("need_dX", [True, False])
@pytest.mark.parametrize("act,name", ACTS, ids=_ids(ACTS))
def test_dense(act, name, need_dX):
    check_op("dense_forward", _dense_args(act), ["Z_out", "A_out"],
             backward=("dense_backward", _dense_bwd_args(need_dX), ["dW_out", "db_out", "dX_out"]))


@pytest.mark.parametrize("n,n_in,n_out", [(1, 20, 7), (1, 1, 7), (5, 1, 7), (1, 20, 1)])
def test_dense_one_row_or_column(n, n_in, n_out):
    """One row of a GEMM's output goes to GEMV in the cython backend (either operand transposed)."""
    check_op("dense_forward", _dense_args(1, n=n, n_in=n_in, n_out=n_out), ["Z_out", "A_out"],
             backward=("dense_backward", _dense_bwd_args(True), ["dW_out", "db_out", "dX_out"]))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("act,name", ACTS, ids=_ids(ACTS))
def test_dense_chain(act, name, bias):
    check_op("dense_chain_forward", _chain_args(act, bias=bias), ["out"], chain=3)
    check_op("dense_chain_forward", _chain_args(act, n=1, widths=(3, 4)), ["out"])  # one row, one layer
    # 301 rows on 2 threads: the cython row split (blocks of 151 and 150), checked against the oracle
    check_op("dense_chain_forward", _chain_args(act, n=301, bias=bias, n_threads=2), ["out"], chain=3)
    # 65 rows: just over the 32 rows a thread the split needs (blocks of 33 and 32)
    check_op("dense_chain_forward", _chain_args(act, n=65, bias=bias, n_threads=2), ["out"], chain=3)


def test_dense_chain_refuses_what_does_not_fit():
    for spoil in (lambda a: a["layers"].__setitem__((1, 0), 15),      # widths do not chain
                  lambda a: a["layers"].__setitem__((2, 2), 10 ** 6),  # W outside params
                  lambda a: a.__setitem__("work", np.zeros((2, 5), a["out"].dtype)),  # work too small
                  lambda a: a.__setitem__("out", np.zeros((8, 5), a["out"].dtype))):  # wrong rows
        for backend in backends():
            args = _chain_args(1)(np.float32, np.random.default_rng(0))
            spoil(args)
            with pytest.raises(ValueError):
                call(backend, "dense_chain_forward", args)


@pytest.mark.parametrize("kind", ["column", "rows"])
@pytest.mark.parametrize("loss,name", LOSSES, ids=_ids(LOSSES))
def test_losses(loss, name, kind):
    check_op("loss_forward_backward", _loss_args(loss, kind), ["dout"])
    check_op("count_correct", _loss_args(loss, kind), [])


@pytest.mark.parametrize("variant", sorted(OPT_VARIANTS))
@pytest.mark.parametrize("opt,name", OPTS, ids=_ids(OPTS))
def test_optimizers(opt, name, variant):
    check_op("optimizer_update", _opt_args(opt, OPT_VARIANTS[variant]), ["params", "state"])


@pytest.mark.parametrize("clip_norm,clip_value", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.01), (1.0, 0.05), (1e9, 0.0)])
def test_clip_gradients(clip_norm, clip_value):
    check_op("clip_gradients", lambda dt, rng: dict(grads=_rand(rng, 5000, dt, 0.05), clip_norm=clip_norm,
                                                    clip_value=clip_value), ["grads"])


# The row shards' reduce + update (issue 12): spans of a 70001-entry gradient, unaligned ends, an empty span.
SPANS = [(0, 70001), (0, 35072), (35072, 70001), (100, 100)]


@pytest.mark.parametrize("n_rows", [1, 2, 3])
@pytest.mark.parametrize("clip_value", [0.0, 0.05])
@pytest.mark.parametrize("lo,hi", SPANS)
def test_reduce_gradients(n_rows, clip_value, lo, hi):
    def make(dt, rng):
        return dict(shard_grads=_rand(rng, (n_rows, 70001), dt, 0.1), lo=lo, hi=hi, clip_value=clip_value,
                    want_norm=True, grads_out=_rand(rng, 70001, dt))  # outside the span: left as it was
    check_op("reduce_gradients", make, ["grads_out"])


def test_reduce_gradients_sums_in_row_order_and_may_alias_its_output():
    rng = np.random.default_rng(0)
    for backend in backends():
        for dt in (np.float32, np.float64):
            rows = _rand(rng, (3, 1000), dt, 0.1)
            out = np.zeros(1000, dt)
            assert call(backend, "reduce_gradients", dict(shard_grads=rows, lo=0, hi=1000, clip_value=0.0,
                                                          want_norm=False, grads_out=out)) == -1
            np.testing.assert_array_equal(out, (rows[0] + rows[1]) + rows[2])  # numpy's += order, bit for bit
            in_place = out.copy()
            call(backend, "reduce_gradients", dict(shard_grads=in_place[None], lo=10, hi=900, clip_value=0.1,
                                                   want_norm=False, grads_out=in_place))
            np.testing.assert_array_equal(in_place[10:900], np.clip(out[10:900], -0.1, 0.1))
            np.testing.assert_array_equal(in_place[:10], out[:10])


@pytest.mark.parametrize("scale", [1.0, 0.37])
@pytest.mark.parametrize("lo,hi", SPANS)
@pytest.mark.parametrize("opt,name", OPTS, ids=_ids(OPTS))
def test_update_span(opt, name, lo, hi, scale):
    variant = OPT_VARIANTS["nesterov_l2" if opt == codes.OPT_SGD else "decoupled"]
    check_op("update_span", lambda dt, rng: dict(_opt_args(opt, variant)(dt, rng), lo=lo, hi=hi, scale=scale),
             ["params", "grads", "state"])


def test_update_span_of_every_span_is_the_whole_update():
    for backend in backends():
        whole, parts = (_opt_args(codes.OPT_ADAM, OPT_VARIANTS["l2"])(np.float32, np.random.default_rng(0))
                        for _ in range(2))
        call(backend, "optimizer_update", whole)
        for lo, hi in ((0, 35072), (35072, 70001)):
            call(backend, "update_span", dict(parts, lo=lo, hi=hi, scale=1.0))
        for name in ("params", "state"):
            np.testing.assert_array_equal(parts[name], whole[name], err_msg=f"{backend} {name}")


@pytest.mark.parametrize("backend", backends())
def test_shard_update_ops_refuse_bad_spans_and_shapes(backend):
    rng = np.random.default_rng(0)
    grads = np.zeros(50, np.float32)
    for lo, hi, rows in ((0, 51, 2), (-1, 5, 2), (6, 5, 2), (0, 5, 0)):
        with pytest.raises(ValueError):
            call(backend, "reduce_gradients", dict(shard_grads=np.zeros((rows, 50), np.float32), lo=lo, hi=hi,
                                                   clip_value=0.0, want_norm=False, grads_out=grads))
    with pytest.raises(ValueError):  # rows of another width
        call(backend, "reduce_gradients", dict(shard_grads=np.zeros((2, 49), np.float32), lo=0, hi=5,
                                               clip_value=0.0, want_norm=False, grads_out=grads))
    args = dict(_opt_args(codes.OPT_ADAM, OPT_VARIANTS["plain"], n=50)(np.float32, rng), lo=0, hi=51, scale=1.0)
    before = args["params"].copy()
    with pytest.raises(ValueError):
        call(backend, "update_span", args)
    np.testing.assert_array_equal(args["params"], before)


@pytest.mark.parametrize("name,extra", [("mae", ()), ("huber", (0.7,))])
@pytest.mark.parametrize("shape", [(1, 1), (9, 4), (40, 10)])
def test_regression_losses(name, extra, shape):
    def make(dtype, rng):
        out = _rand(rng, shape, dtype, 2.0)
        args = dict(out=out, target=_rand(rng, shape, dtype), scale=0.25, dout=np.empty_like(out))
        if extra:
            args["delta"] = extra[0]
        return args
    check_op(f"{name}_forward_backward", make, ["dout"])


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("kind", ["column", "rows"])
@pytest.mark.parametrize("shape", [(1, 3), (9, 4), (40, 10)])
def test_focal(gamma, kind, shape):
    def make(dtype, rng):
        n, k = shape
        out = _rand(rng, shape, dtype, 3.0)
        target = _target(LOSS_SOFTMAX_CE, kind, rng, n, k, dtype)
        if kind == "rows":
            target = (target * 0.8 + 0.2 / k).astype(dtype)  # soft rows
        return dict(out=out, target=target, gamma=gamma, alpha=rng.random(k) + 0.5, scale=0.5,
                    dout=np.empty_like(out))
    check_op("focal_forward_backward", make, ["dout"])


def _norm_inputs(dtype, rng, shape):
    n, k = shape
    return (_rand(rng, shape, dtype, 3.0) + 1).astype(dtype), _rand(rng, k, dtype), _rand(rng, k, dtype)


def _norm_bwd(need_dX, per_row):
    def make(fwd, dtype, rng):
        X = fwd["X"]
        return dict(dout=_rand(rng, X.shape, dtype), Xhat=fwd["Xhat_out"], inv_std=fwd["inv_std_out"],
                    gamma=fwd["gamma"], dgamma_out=np.empty(X.shape[1], dtype),
                    dbeta_out=np.empty(X.shape[1], dtype), dX_out=np.empty_like(X) if need_dX else None)
    return make


@pytest.mark.parametrize("need_dX", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 3), (2, 5), (7, 1), (64, 33)])
def test_batchnorm(shape, training, need_dX):
    def make(dtype, rng):
        X, gamma, beta = _norm_inputs(dtype, rng, shape)
        k = shape[1]
        return dict(X=X, gamma=gamma, beta=beta, eps=1e-5, training=training,
                    running_mean=np.linspace(-0.5, 0.5, k).astype(dtype),
                    running_var=np.linspace(0.5, 2.0, k).astype(dtype), momentum=0.9,
                    Xhat_out=np.empty_like(X), inv_std_out=np.empty(k, dtype), out=np.empty_like(X))
    check_op("batchnorm_forward", make, ["Xhat_out", "inv_std_out", "out", "running_mean", "running_var"],
             backward=("batchnorm_backward", _norm_bwd(need_dX, False), ["dgamma_out", "dbeta_out", "dX_out"]),
             chain=shape[0])  # dX is a difference of O(n) sums


@pytest.mark.parametrize("need_dX", [True, False])
# widths of 8k: the Cython float32 row-group kernel (64 and 128 compiled apart), rows not a multiple of 8
@pytest.mark.parametrize("shape", [(1, 3), (2, 5), (7, 1), (64, 33), (13, 64), (9, 24), (17, 128), (1, 8)])
def test_layernorm(shape, need_dX):
    def make(dtype, rng):
        X, gamma, beta = _norm_inputs(dtype, rng, shape)
        return dict(X=X, gamma=gamma, beta=beta, eps=1e-5, Xhat_out=np.empty_like(X),
                    inv_std_out=np.empty(shape[0], dtype), out=np.empty_like(X))
    check_op("layernorm_forward", make, ["Xhat_out", "inv_std_out", "out"],
             backward=("layernorm_backward", _norm_bwd(need_dX, True), ["dgamma_out", "dbeta_out", "dX_out"]),
             chain=shape[1])


@pytest.mark.parametrize("need_dX", [True, False])
# the plan rows' pair: widths around the Cython lane blocks (4 and 8 lanes, the scalar tail), rows of one
# shard; a large mean checks the shifted one-pass statistics
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (3, 8), (13, 64), (9, 128), (4, 129), (17, 256)])
def test_layernorm_rows(shape, need_dX):
    def make(dtype, rng):
        X, gamma, beta = _norm_inputs(dtype, rng, shape)
        return dict(X=X, gamma=gamma, beta=beta, eps=1e-5, mean_out=np.empty(shape[0]),
                    inv_std_out=np.empty(shape[0]), out=np.empty_like(X))

    def make_bwd(fwd, dtype, rng):
        X = fwd["X"]
        return dict(dout=_rand(rng, X.shape, dtype), X=X, mean=fwd["mean_out"], inv_std=fwd["inv_std_out"],
                    gamma=fwd["gamma"], dgamma_out=np.empty(X.shape[1], dtype),
                    dbeta_out=np.empty(X.shape[1], dtype), dX_out=np.empty_like(X) if need_dX else None)
    check_op("layernorm_rows_forward", make, ["mean_out", "inv_std_out", "out"],
             backward=("layernorm_rows_backward", make_bwd, ["dgamma_out", "dbeta_out", "dX_out"]),
             chain=shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_rows_large_mean(dtype):
    """Rows far from zero (mean 1e4, std 1): the one-pass statistics keep the reference's inv_std."""
    rng = np.random.default_rng(3)
    X = (1e4 + rng.standard_normal((6, 40))).astype(dtype)
    gamma, beta = np.ones(40, dtype), np.zeros(40, dtype)
    ref_mean, ref_inv, ref_out = np.empty(6), np.empty(6), np.empty_like(X)
    get_backend("reference").layernorm_rows_forward(X, gamma, beta, 1e-5, ref_mean, ref_inv, ref_out)
    for backend in ("numba", "cython"):
        mean, inv, out = np.empty(6), np.empty(6), np.empty_like(X)
        get_backend(backend).layernorm_rows_forward(X, gamma, beta, 1e-5, mean, inv, out)
        np.testing.assert_allclose(inv, ref_inv, rtol=1e-9, err_msg=backend)
        np.testing.assert_allclose(out, ref_out, atol=1e-5 if dtype == np.float32 else 1e-9, err_msg=backend)


@pytest.mark.parametrize("fill", [0.0, 0.25])
def test_image_ops(fill):
    H, W = 9, 7

    def shift(dtype, rng):
        src = rng.random((12, H * W)).astype(dtype)
        return dict(src=src, dst=np.empty_like(src), dy=rng.integers(-3, 4, 12), dx=rng.integers(-8, 9, 12),
                    H=H, W=W, fill=fill)

    def rotate(dtype, rng):
        src = rng.random((12, H * W)).astype(dtype)
        maps = _RotationMaps(np.array([-20.0, 0.0, 7.5]), (H, W), dtype, fill)
        return dict(src=src, dst=np.empty_like(src), codes=rng.integers(0, 3, 12), maps=maps,
                    scratch=[np.empty((12, H * W), dtype) for _ in range(2)])
    check_op("image_shift", shift, ["dst"])
    check_op("image_rotate", rotate, ["dst"])


def test_gather_rows():
    check_op("gather_rows", lambda dt, rng: dict(X=_rand(rng, (100, 13), dt), idx=rng.integers(0, 100, 37),
                                                 out=np.empty((37, 13), dt)), ["out"])


_LOSS_NAMES = {LOSS_SOFTMAX_CE: "cross_entropy", codes.LOSS_MSE: "mse", LOSS_BCE_LOGITS: "binary_cross_entropy"}


def _train_args(loss, opt, n_shards, acts=(1, 5, 0), kind="column", n=203, bs=32, slots=None):
    """Arguments of ``train_steps``: a Dense plan with raw optimizer codes and hyper-parameters."""
    def make(dtype, rng):
        k = 4
        X = _rand(rng, (n, 12), dtype)
        Y = _target(loss, kind, rng, n, k, dtype)
        starts = np.arange(0, n, bs, dtype=np.int64)
        hyper = _hyper(slots if slots is not None else {H_MOMENTUM: 0.9, H_CLIP_NORM: 2.0, H_CLIP_VALUE: 0.5})
        if opt == OPT_RMSPROP:
            hyper[H_BETA2] = 0.99
        perm = rng.permutation(n).astype(np.int64)
        n_params = 12 * 16 + 16 + 16 * 8 + 8 + 8 * k + k
        plan = dense_plan((12, 16, 8, k), acts, bs, n_shards, dtype, loss=_LOSS_NAMES[loss], ny=Y.shape[1],
                          opt=opt, hyper=hyper, params=_rand(rng, n_params, dtype, 0.3))
        return dict(plan=plan, X=X, Y=Y, perm=perm, batch_starts=starts, lrs=np.linspace(1e-2, 1e-3, len(starts)),
                    step0=5, batch_loss=np.zeros(len(starts)), batch_correct=np.zeros(len(starts)),
                    params=plan.params, state=plan.state)
    return make


@pytest.mark.parametrize("n_shards", [1, 3])
@pytest.mark.parametrize("loss,name", LOSSES, ids=_ids(LOSSES))
def test_train_steps_every_loss(loss, name, n_shards):
    check_op("train_steps", _train_args(loss, codes.OPT_ADAM, n_shards, acts=(1, 6, 0)),
             ["params", "state", "batch_loss", "batch_correct"], chain=50)


@pytest.mark.parametrize("n_shards", [1, 2])
@pytest.mark.parametrize("opt,name", OPTS, ids=_ids(OPTS))
def test_train_steps_every_optimizer(opt, name, n_shards):
    check_op("train_steps", _train_args(LOSS_SOFTMAX_CE, opt, n_shards, acts=(3, ACT_SOFTMAX, 0)),
             ["params", "state", "batch_loss", "batch_correct"], chain=50)


TRAIN_CASES = [  # hyper-parameter paths of the fused clip + update inside the drivers
    (LOSS_SOFTMAX_CE, "column", codes.OPT_ADAM, {H_CLIP_NORM: 0.5}),
    (LOSS_SOFTMAX_CE, "rows", codes.OPT_ADAM, {H_WEIGHT_DECAY: 0.01, H_DECOUPLED: 1}),
    (codes.LOSS_MSE, "column", codes.OPT_SGD,
     {H_MOMENTUM: 0.9, H_NESTEROV: 1, H_WEIGHT_DECAY: 1e-3, H_CLIP_VALUE: 0.05}),
    (LOSS_BCE_LOGITS, "column", OPT_RMSPROP, {H_WEIGHT_DECAY: 1e-3, H_CLIP_NORM: 0.3, H_CLIP_VALUE: 0.02}),
    (LOSS_SOFTMAX_CE, "column", codes.OPT_ADAGRAD, {}),
]


@pytest.mark.parametrize("n_shards", [1, 2, 3])
@pytest.mark.parametrize("loss,kind,opt,slots", TRAIN_CASES, ids=lambda c: str(c) if isinstance(c, str) else None)
def test_train_steps_ragged_batches_and_empty_shards(loss, kind, opt, slots, n_shards):
    # bs=7 with 3 shards: 3 rows per shard, the last batch (101 % 7 = 3 rows) leaves a shard empty.
    check_op("train_steps", _train_args(loss, opt, n_shards, kind=kind, n=101, bs=7, slots=slots),
             ["params", "state", "batch_loss", "batch_correct"], chain=50)


# --------------------------------------------------------------------------- unknown codes
_CODED = {  # op -> (valid args factory, {code argument: how to make it unknown})
    "activation_forward": _act_args(1),
    "activation_backward": lambda dt, rng: _act_bwd_args(dict(_act_args(1)(dt, rng), A_out=np.ones((7, 5), dt)),
                                                         dt, rng),
    "dense_forward": _dense_args(1),
    "dense_backward": lambda dt, rng: _dense_bwd_args(True)(
        dict(_dense_args(1)(dt, rng), Z_out=np.ones((16, 7), dt), A_out=np.ones((16, 7), dt)), dt, rng),
    "dense_chain_forward": _chain_args(1),
    "loss_forward_backward": _loss_args(LOSS_SOFTMAX_CE, "column"),
    "count_correct": _loss_args(LOSS_SOFTMAX_CE, "column"),
    "optimizer_update": _opt_args(codes.OPT_SGD, OPT_VARIANTS["plain"], n=100),
    "update_span": lambda dt, rng: dict(_opt_args(codes.OPT_SGD, OPT_VARIANTS["plain"], n=100)(dt, rng),
                                        lo=0, hi=100, scale=0.5),
    "train_steps": _train_args(LOSS_SOFTMAX_CE, codes.OPT_ADAM, 1),
}
_CODE_ARG = {"act": "act", "loss": "loss", "opt": "opt"}


def _bad_variants(op):
    for kind in op.codes.split():
        for bad in BAD_CODES:
            if op.name == "train_steps" and kind == "act":
                yield kind, bad, lambda a, bad=bad: a["plan"].ops.__setitem__((1, codes.P_ACT), bad)
            elif op.name == "dense_chain_forward":
                yield kind, bad, lambda a, bad=bad: a["layers"].__setitem__((2, 4), bad)
            elif op.name == "train_steps" and kind == "opt":
                yield kind, bad, lambda a, bad=bad: setattr(a["plan"], "opt_code", bad)
            else:
                yield kind, bad, lambda a, key=_CODE_ARG[kind], bad=bad: a.__setitem__(key, bad)


def test_every_coded_op_has_an_unknown_code_case():
    assert {op.name for op in spec.OPS if op.codes} == set(_CODED)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("op", [op for op in spec.OPS if op.codes], ids=lambda op: op.name)
def test_unknown_code_raises_value_error(op, backend, dtype):
    for kind, bad, spoil in _bad_variants(op):
        args = _CODED[op.name](dtype, np.random.default_rng(0))
        spoil(args)
        params = args.get("params")
        before = None if params is None else params.copy()
        with pytest.raises(ValueError, match="unknown"):
            call(backend, op.name, args)
        if before is not None:  # nothing was trained or updated with a bad code
            np.testing.assert_array_equal(params, before, err_msg=f"{op.name} {kind}={bad}")


# --------------------------------------------------------------------------- plan ops
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("shape", [(1, 1), (13, 11), (4, 64)])
def test_dropout_forward(rate, shape):
    """Counter-based masks: the same bits on every backend (the plan drivers' whole-step tests are
    in tests/engine: they need a plan, not a buffer factory)."""
    def args(dt, rng):
        return dict(X=rng.standard_normal(shape).astype(dt), key=987654321, step=3, row0=5, rate=rate,
                    mask_out=np.empty(shape, dt), out=np.empty(shape, dt))
    check_op("dropout_forward", args, ["mask_out", "out"])
