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
