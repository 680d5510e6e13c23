"""Cython activations (``_act_row`` / ``_act_bwd`` in csrc/activations.pxi)."""
from ._adapt import _back, _fast_path, _in, _k, _out


@_fast_path(_k.activation_forward)
def activation_forward(Z, act, alpha, A_out):
    """A = f(Z), row-wise for softmax."""
    if A_out is Z:
        buf, dest = _out(A_out)
        if dest is not None:
            buf[...] = Z
        _k.activation_forward(buf, act, alpha, buf)
        _back(buf, dest)
        return
    buf, dest = _out(A_out)
    _k.activation_forward(_in(Z, buf.dtype), act, alpha, buf)
    _back(buf, dest)


@_fast_path(_k.activation_backward)
def activation_backward(Z, A, dA, act, alpha, dZ_out):
    """dZ = dA * f'(Z) (a Jacobian-vector product for softmax)."""
    buf, dest = _out(dZ_out)
    dt = buf.dtype
    _k.activation_backward(_in(Z, dt), _in(A, dt), _in(dA, dt), act, alpha, buf)
    _back(buf, dest)
