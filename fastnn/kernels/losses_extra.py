"""Compatibility shim: the extra-loss kernels (MAE, Huber, focal) are ops of every backend now.

They live in ``fastnn/kernels/<backend>/losses.py`` (contracts in
:mod:`fastnn.kernels.reference.losses`) and are reached through
``fastnn.kernels.get_backend(name)``; :func:`kernels_for` is that namespace.
``REFERENCE`` and ``NUMBA`` (None without numba) remain for old callers.
"""
__all__ = ["REFERENCE", "NUMBA", "kernels_for"]


def kernels_for(backend_name):
    """The kernel namespace of a backend name (it holds ``mae_forward_backward``, ...)."""
    from . import get_backend

    return get_backend(backend_name)


def __getattr__(name):
    from . import _legacy_kernel_set

    return _legacy_kernel_set(__name__, name)
