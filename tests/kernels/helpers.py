"""``check_op``: one op on every backend against the reference oracle, forward and backward, per dtype.

The one parity idiom of the kernel tests (after tinygrad's ``helper_test_op``):
an args factory builds fresh arguments (named as in :mod:`fastnn.kernels.spec`)
for each backend; the op runs on the reference and on every available backend;
every output buffer and the return value must agree with the reference under
one tolerance rule per dtype. ``backward`` chains the op's backward partner,
fed the *reference* forward results, so a forward error is not reported twice.
"""
import inspect

import numpy as np

from fastnn.kernels import available_backends, get_backend
from fastnn.kernels.spec import BY_NAME

DTYPES = (np.float32, np.float64)
#: The tolerance rule: |got - expected| <= TOL[dtype] * chain * max(1, max|expected|), per array.
#: ``chain`` is the number of dependent steps an op chains (1 for a kernel, the number of
#: optimizer steps for a whole-run driver): rounding differences grow about linearly with it.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def backends():
    """The backends to compare with the oracle: every available one (the reference included)."""
    return available_backends()


def call(backend, op_name, args):
    """Call ``op_name`` of ``backend`` with ``args`` (a dict named as the spec) in the spec's order."""
    fn = getattr(get_backend(backend), op_name)
    return fn(*[args[a] for a in BY_NAME[op_name].args])


def signature(fn):
    """Argument names of a kernel op (through numba dispatchers and functools.wraps)."""
    return tuple(inspect.signature(getattr(fn, "py_func", fn)).parameters)


def assert_matches(got, expected, dtype, chain=1, what=""):
    """The tolerance rule (see TOL); integers and booleans must be equal, NaNs in the same places."""
    if expected is None:
        assert got is None, f"{what}: returned {got!r}, the reference returns None"
        return
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    e = expected.astype(np.float64)
    finite = np.isfinite(e)
    scale = max(1.0, float(np.abs(e[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(got.astype(np.float64), e, rtol=0, atol=TOL[np.dtype(dtype)] * chain * scale,
                               equal_nan=True, err_msg=what)


def _run(backend, op_name, args, outputs):
    ret = call(backend, op_name, args)
    return ret, {name: np.array(args[name], copy=True) for name in outputs if args[name] is not None}


def check_op(op_name, args_factory, outputs, *, dtypes=DTYPES, backward=None, chain=1, seed=0,
             compare_return=True):
    """Run ``op_name`` on every backend and compare it with the reference.

    Parameters
    ----------
    op_name : str
        An op of :data:`fastnn.kernels.spec.OPS`.
    args_factory : callable
        ``args_factory(dtype, rng) -> dict`` of the op's arguments (fresh buffers each call;
        the same ``rng`` seed for every backend, so they see the same inputs).
    outputs : sequence of str
        The arguments the op writes (``*_out`` buffers, in-place state); compared after the call.
    backward : (str, callable, sequence of str), optional
        ``(backward op, factory(forward_args, dtype, rng) -> dict, its outputs)``; the factory
        receives the reference forward's arguments after the call.
    chain : int
        Dependent steps inside one call (widens the tolerance linearly; see TOL).
    compare_return : bool
        Compare the return values too (a loss sum, a norm, a count).
    """
    for dtype in dtypes:
        ref_args = args_factory(dtype, np.random.default_rng(seed))
        ref_ret, ref_out = _run("reference", op_name, ref_args, outputs)
        if backward is not None:
            b_name, b_factory, b_outputs = backward
            b_ref_args = b_factory(ref_args, dtype, np.random.default_rng(seed + 1))
            b_ref_ret, b_ref_out = _run("reference", b_name, b_ref_args, b_outputs)
        for backend in backends():
            what = f"{op_name}[{backend}, {np.dtype(dtype).name}]"
            ret, out = _run(backend, op_name, args_factory(dtype, np.random.default_rng(seed)), outputs)
            if compare_return:
                assert_matches(ret, ref_ret, dtype, chain, what + " return")
            for name in out:
                assert_matches(out[name], ref_out[name], dtype, chain, f"{what} {name}")
            if backward is not None:
                what = f"{b_name}[{backend}, {np.dtype(dtype).name}]"
                b_args = b_factory(ref_args, dtype, np.random.default_rng(seed + 1))
                ret, out = _run(backend, b_name, b_args, b_outputs)
                if compare_return:
                    assert_matches(ret, b_ref_ret, dtype, chain, what + " return")
                for name in out:
                    assert_matches(out[name], b_ref_out[name], dtype, chain, f"{what} {name}")


def dense_plan(sizes, acts, batch_size, n_shards, dtype, *, loss="cross_entropy", ny=1, opt=0, hyper=None,
               params=None, n_slots=2, backend=None):
    """A bound :class:`fastnn.engine.Plan` of a Dense stack ``sizes[0] -> ... -> sizes[-1]``.

    ``acts`` are activation codes, one per layer; ``params`` (flat, W then b per layer) replace
    the initial weights; the optimizer is ``opt`` (a code) with ``hyper`` and zero state of
    ``n_slots`` rows -- the raw arguments the kernel tests control directly.
    """
    import fastnn as fnn
    from fastnn import activations, engine
    from fastnn.kernels import codes

    names = {activations.code_of(n): n for n in activations.NAMES}
    layers = [fnn.Dense(a, b, names[act]) for (a, b), act in zip(zip(sizes[:-1], sizes[1:]), acts)]
    net = fnn.Network(layers, seed=0, dtype=dtype, backend=backend)
    loss_obj = fnn.losses.get(loss)
    plan = engine.build_plan(net, loss_obj, batch_size, n_shards, ny)
    if loss_obj.fused_activation is not None and acts[-1] != codes.ACT_LINEAR:
        plan.ops[-1, codes.P_ACT] = acts[-1]  # the kernel tests drive the raw table, final softmax included
    if params is not None:
        net.params[...] = params
    plan.params, plan.grads, plan.buffers = net.params, net.grads, net.buffers
    plan.opt_code, plan.state = opt, np.zeros((n_slots, net.n_params), dtype)
    plan.hyper = np.zeros(codes.N_HYPER) if hyper is None else np.asarray(hyper, np.float64)
    return plan
