"""Kernel backends: ``reference`` (numpy oracle), ``numba`` and ``cython``, one dispatch.

Each backend is a package, ``fastnn/kernels/<backend>/``, with the same family
modules (``activations``, ``dense``, ``losses``, ``optim``, ``norm``,
``image``, ``driver``); :mod:`fastnn.kernels.spec` lists every op.
:func:`get_backend` returns one :class:`Backend` namespace holding every op of
the spec: the backend's own implementation, or the spec's declared fallback
(visible in :meth:`Backend.fallbacks` and :func:`fastnn.show_config`, never
silent). Selection: explicit name > ``FASTNN_BACKEND`` > the fastest
available (cython, then numba, then reference). An explicitly requested
backend that cannot be imported raises
:class:`~fastnn.errors.BackendUnavailableError`; an automatic fallback warns once.
"""
import importlib
import os
import warnings

from ..errors import BackendUnavailableError
from . import spec as _spec

BACKENDS = _spec.BACKENDS
_PREFERENCE = ("cython", "numba", "reference")
_MODULES = {
    "reference": "fastnn.kernels.reference",
    "numba": "fastnn.kernels.numba",
    "cython": "fastnn.kernels.cython",
}
_HOW_TO_GET = {
    "numba": "install it with `pip install numba`",
    "cython": "build fastnn's extension with `pip install .` (needs a C compiler), "
              "or `python setup.py build_ext --inplace` in a source checkout",
}
_cache = {}       # backend name -> its package, or the ImportError it raised
_namespaces = {}  # backend name -> Backend
_warned = set()


class Backend:
    """Every op of :data:`fastnn.kernels.spec.OPS` for one backend, as attributes.

    ``NAME`` is the backend's name; :meth:`source` tells which backend's
    implementation serves an op and :meth:`fallbacks` lists the ops served by
    another backend. Ops are the implementations themselves (no wrapper, no
    per-call cost).
    """

    def __init__(self, name, module, ops, sources):
        self.NAME = name
        self.module = module
        self._sources = dict(sources)
        if hasattr(module, "OPENMP"):
            self.OPENMP = module.OPENMP
        for op_name, fn in ops.items():
            setattr(self, op_name, fn)

    def source(self, op_name):
        """Name of the backend whose implementation serves ``op_name``."""
        return self._sources[op_name]

    def fallbacks(self):
        """``{op name: backend serving it}`` for every op this backend does not implement itself."""
        return {op: src for op, src in self._sources.items() if src != self.NAME}

    def __repr__(self):
        fb = self.fallbacks()
        return f"<fastnn kernels {self.NAME!r}" + (f", fallbacks {fb}>" if fb else ">")


def _load(name):
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(_MODULES[name])
        except ImportError as exc:
            _cache[name] = exc
    return _cache[name]


def _build(name, module):
    ops, sources = {}, {}
    for op in _spec.OPS:
        src = _spec.source(op, name)
        impl = module if src == name else _load(src)
        if isinstance(impl, Exception):  # the declared fallback is missing: the oracle always imports
            key = (name, op.name)
            if key not in _warned:
                _warned.add(key)
                warnings.warn(f"fastnn: {op.name} of the {name!r} backend falls back to {src!r}, which is "
                              f"unavailable ({impl}); using 'reference'", RuntimeWarning, stacklevel=3)
            src, impl = "reference", _load("reference")
        ops[op.name] = getattr(impl, op.name)
        sources[op.name] = src
    return Backend(name, module, ops, sources)


def _namespace(name, module):
    ns = _namespaces.get(name)
    if ns is None or ns.module is not module:
        ns = _namespaces[name] = _build(name, module)
    return ns


def available_backends():
    """Names of the backends that import on this machine, fastest first."""
    return [name for name in _PREFERENCE if not isinstance(_load(name), Exception)]


def get_backend(name=None):
    """Return the :class:`Backend` namespace for ``name`` (see the module docstring for the rules)."""
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
        return _namespace(name, mod)
    for candidate in _PREFERENCE:
        mod = _load(candidate)
        if not isinstance(mod, Exception):
            if candidate != _PREFERENCE[0] and candidate not in _warned:
                _warned.add(candidate)
                missing = ", ".join(f"{n} ({_load(n)})" for n in _PREFERENCE[:_PREFERENCE.index(candidate)])
                warnings.warn(f"fastnn: falling back to the {candidate!r} backend; unavailable: {missing}",
                              RuntimeWarning, stacklevel=2)
            return _namespace(candidate, mod)
    raise BackendUnavailableError("no fastnn backend could be imported")  # reference always imports


def _legacy_kernel_set(module_name, name):
    """``REFERENCE`` / ``NUMBA`` of the old ``kernels.norm`` / ``kernels.losses_extra`` modules (shims)."""
    if name == "REFERENCE":
        return get_backend("reference")
    if name == "NUMBA":
        return get_backend("numba") if "numba" in available_backends() else None
    raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
