"""Plan drivers per backend (until every backend namespace carries ``train_steps`` itself)."""
import importlib

_DRIVERS = {"numba": "fastnn.kernels.plan_numba", "cython": "fastnn.kernels.plan_cython"}


def for_backend(name):
    """The module with ``train_steps``/``grad_steps``/``apply_update`` for backend ``name``, or None."""
    mod = _DRIVERS.get(name)
    return importlib.import_module(mod) if mod else None
