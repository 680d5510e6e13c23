"""Kernel backends: ``reference`` (numpy oracle), ``numba`` and ``cython``.

Each backend module exposes the same functions with the same signatures
(see :mod:`fastnn.kernels.reference`). :func:`get_backend` picks one:
explicit name > ``FASTNN_BACKEND`` > the fastest available (cython, then
numba, then reference). An explicitly requested backend that cannot be
imported raises :class:`~fastnn.errors.BackendUnavailableError`; an automatic
fallback warns once.
"""
import importlib
import os
import warnings

from ..errors import BackendUnavailableError

BACKENDS = ("reference", "numba", "cython")
_PREFERENCE = ("cython", "numba", "reference")
_MODULES = {
    "reference": "fastnn.kernels.reference",
    "numba": "fastnn.kernels.numba_backend",
    "cython": "fastnn.kernels.cython_backend",
}
_HOW_TO_GET = {
    "numba": "install it with `pip install numba`",
    "cython": "build fastnn's extension with `pip install .` (needs a C compiler), "
              "or `python setup.py build_ext --inplace` in a source checkout",
}
_cache = {}
_warned = set()


def _load(name):
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(_MODULES[name])
        except ImportError as exc:
            _cache[name] = exc
    return _cache[name]


def available_backends():
    """Names of the backends that import on this machine, fastest first."""
    return [name for name in _PREFERENCE if not isinstance(_load(name), Exception)]


def get_backend(name=None):
    """Return the kernel module for ``name`` (see the module docstring for the rules)."""
    if name is None:
        name = os.environ.get("FASTNN_BACKEND") or None
    if name is not None:
        if not isinstance(name, str) or name.lower() not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
        name = name.lower()
        mod = _load(name)
        if isinstance(mod, Exception):
            raise BackendUnavailableError(
                f"fastnn backend {name!r} is not available ({mod}); {_HOW_TO_GET.get(name, '')}"
            ) from mod
        return mod
    for candidate in _PREFERENCE:
        mod = _load(candidate)
        if not isinstance(mod, Exception):
            if candidate != _PREFERENCE[0] and candidate not in _warned:
                _warned.add(candidate)
                missing = ", ".join(f"{n} ({_load(n)})" for n in _PREFERENCE[:_PREFERENCE.index(candidate)])
                warnings.warn(f"fastnn: falling back to the {candidate!r} backend; unavailable: {missing}",
                              RuntimeWarning, stacklevel=2)
            return mod
    raise BackendUnavailableError("no fastnn backend could be imported")  # reference always imports
