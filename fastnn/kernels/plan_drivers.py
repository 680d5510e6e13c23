"""The plan driver of each backend: ``train_steps``, ``grad_steps``, ``apply_update`` (see ``*/plan.py``)."""
import importlib

_DRIVERS = {"reference": "fastnn.kernels.reference.plan", "numba": "fastnn.kernels.numba.plan",
            "cython": "fastnn.kernels.cython.plan"}


def for_backend(name):
    """The module with ``train_steps``/``grad_steps``/``apply_update`` for backend ``name``, or None."""
    mod = _DRIVERS.get(name)
    return importlib.import_module(mod) if mod else None
