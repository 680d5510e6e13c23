"""Cython gradient clipping and fused optimizer updates (``_clip``, ``_update_slice`` in csrc/optim.pxi)."""
import numpy as np

from ._adapt import _back, _fast_path, _in1, _k, _out1


@_fast_path(_k.clip_gradients)
def clip_gradients(grads, clip_norm, clip_value):
    """Clip to +-clip_value (if > 0), then scale to global L2 norm <= clip_norm (if > 0); return the norm."""
    buf, dest = _out1(grads)
    norm = _k.clip_gradients(buf, float(clip_norm), float(clip_value))
    _back(buf, dest)
    return norm


@_fast_path(_k.optimizer_update)
def optimizer_update(opt, params, grads, state, hyper, step):
    """One fused in-place update of the flat ``params``; see the reference for the math."""
    pbuf, pdest = _out1(params)
    st = state
    sdest = None
    if not (isinstance(state, np.ndarray) and state.ndim == 2 and state.flags.c_contiguous
            and state.flags.writeable and state.dtype == pbuf.dtype):
        st = np.ascontiguousarray(state, dtype=pbuf.dtype).reshape(-1, pbuf.shape[0])
        sdest = state
    _k.optimizer_update(int(opt), pbuf, _in1(grads, pbuf.dtype), st,
                        _in1(hyper, np.float64), int(step))
    _back(pbuf, pdest)
    if sdest is not None:
        sdest[...] = st.reshape(np.shape(sdest))


# --------------------------------------------------------------------------- row shards (issue 12)
@_fast_path(_k.reduce_gradients)
def reduce_gradients(shard_grads, lo, hi, clip_value, want_norm, grads_out):
    """grads_out[lo:hi] = the shard rows' sum in row order, clipped to +-clip_value (if > 0); return the
    span's sum of squares if ``want_norm``, else -1."""
    gbuf, gdest = _out1(grads_out)
    rows = np.ascontiguousarray(shard_grads, dtype=gbuf.dtype)
    ss = _k.reduce_gradients(rows, int(lo), int(hi), float(clip_value), bool(want_norm), gbuf)
    _back(gbuf, gdest)
    return ss


@_fast_path(_k.update_span)
def update_span(opt, params, grads, state, hyper, step, lo, hi, scale):
    """grads[lo:hi] *= scale (if != 1), then the fused update of params[lo:hi]."""
    pbuf, pdest = _out1(params)
    gbuf = np.ascontiguousarray(grads, dtype=pbuf.dtype)
    st = np.ascontiguousarray(state, dtype=pbuf.dtype).reshape(-1, pbuf.shape[0])
    _k.update_span(int(opt), pbuf, gbuf, st, _in1(hyper, np.float64), int(step), int(lo), int(hi), float(scale))
    _back(pbuf, pdest)
    if gbuf is not grads:
        grads[...] = gbuf
    if st is not state:
        state[...] = st.reshape(np.shape(state))
