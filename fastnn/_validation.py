"""Input checks shared by every fastnn object: clear errors before any state changes.

Besides the ``check_*`` functions, the declarative rules of hyper-parameters live
here: a :class:`Constraint` (:class:`Integer`, :class:`Real`, :class:`OneOf`,
:class:`Boolean`) says what one value may be, and a :class:`Param` class attribute
applies it every time the attribute is set -- in the constructor, by a user
later, and (because model files are built through the constructor) when a file
is loaded. One rule, one place::

    class MyLayer(Layer):
        rate = Param(Real(0, 1, hi_open=True))      # checked on every assignment
        n_inputs = Param(Integer(1, optional=True), label="n_units")

:func:`declared_params` lists them, so conformance tests and fuzzers can walk
every rule of every class (``Constraint.invalid_examples``).
"""
import math
import numbers

import numpy as np

from .errors import ParameterError


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy) and not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def is_real(value):
    """Whether ``value`` is a real number (Python or numpy, int or float) and not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def check_shape(shape, name):
    """Return ``shape`` as a tuple of positive ints (a per-sample shape), or raise ValueError."""
    if isinstance(shape, (numbers.Integral,)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of positive integers, not {shape!r}") from None
    if not dims or len(dims) > 8 or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
                                        for d in dims):
        raise ValueError(f"{name} must be a tuple of 1 to 8 positive integers, not {shape!r}")
    if int(np.prod([int(d) for d in dims], dtype=object)) > 2 ** 31:
        raise ValueError(f"{name} {dims} has more than 2**31 values per sample")
    return tuple(int(d) for d in dims)


def check_array_X(X, n_features=None, dtype=np.float32, name="X", sample_shape=None):
    """Return ``X`` as a C-contiguous float array of ``dtype`` with one row per sample, or raise.

    Rejects: non-numeric dtypes (object, str, bool is accepted as 0/1), zero
    samples or zero features, NaN/Inf, and a feature count other than
    ``n_features``. With a ``sample_shape`` of several dimensions, ``X`` must
    have shape ``(n, *sample_shape)`` and comes back as ``(n, prod(sample_shape))``
    rows (a view when it is already contiguous); otherwise ``X`` must be 2-D.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric 2-D array, not {type(X).__name__}")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype} "
                        f"(convert strings/objects to floats first)")
    if sample_shape is not None and len(sample_shape) > 1:
        if arr.ndim < 2 or arr.shape[1:] != tuple(sample_shape):
            raise ValueError(f"{name} must have shape (n_samples, {', '.join(map(str, sample_shape))}), "
                             f"got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} has 0 samples")
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the network expects {n_features}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        kind = "NaN" if np.isnan(arr[tuple(bad)]) else "Inf"
        raise ValueError(f"{name} contains {kind} (first at row {bad[0]}, column {bad[1]}); "
                         f"clean or impute the data first")
    return arr


def check_seed(seed, name="seed"):
    """Return ``seed`` if numpy can seed a generator with it the way fastnn documents (None, an int >= 0,
    a ``numpy.random.Generator`` or ``SeedSequence``), else raise ParameterError naming ``name``."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if is_int(seed) and seed >= 0:
        return int(seed)
    raise ParameterError(f"{name} must be None, a non-negative integer or a numpy.random.Generator, "
                         f"not {seed!r}"[:300])


def check_batch_size(batch_size):
    """Return ``batch_size`` as a positive int or raise ValueError/TypeError."""
    if not is_int(batch_size):
        raise ParameterError(f"batch_size must be a positive integer, not {batch_size!r}")
    if batch_size <= 0:
        raise ParameterError(f"batch_size must be a positive integer, not {batch_size}")
    return int(batch_size)


def check_nonneg_int(value, name):
    """Return ``value`` as a non-negative int or raise ValueError."""
    if not is_int(value) or value < 0:
        raise ParameterError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


#: the historical name of :func:`check_nonneg_int` (it accepts 0)
check_positive_int = check_nonneg_int


def check_nonneg_float(value, name):
    """Return ``value`` as a finite float >= 0 or raise ValueError."""
    if not is_real(value) or not math.isfinite(value) or value < 0:
        raise ParameterError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def check_real(value, name, *, lo=None, hi=None, lo_open=False, hi_open=False):
    """Return ``value`` as a finite float within the given bounds (open or closed) or raise ValueError."""
    if not is_real(value) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, not {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ParameterError(f"{name} must be {'>' if lo_open else '>='} {lo}, not {value!r}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ParameterError(f"{name} must be {'<' if hi_open else '<='} {hi}, not {value!r}")
    return float(value)


def check_positive_real(value, name):
    """Return ``value`` as a finite float > 0 or raise ValueError."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive finite number, not {value!r}")
    return float(value)


def check_int_min(value, name, minimum, *, verb="not"):
    """Return ``value`` as an int >= ``minimum`` or raise ValueError ("... , {verb} {value!r}")."""
    if not is_int(value) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, {verb} {value!r}")
    return int(value)


# ---------------------------------------------------------------------------- declared rules

class Constraint:
    """What one value may be. :meth:`check` returns the value normalised (plain int/float/str)."""

    optional = False

    def check(self, value, name):
        """Return ``value`` normalised, or raise :class:`~fastnn.errors.ParameterError` naming ``name``."""
        if value is None and self.optional:
            return None
        if not self._ok(value):
            raise ParameterError(f"{name} must be {self.describe()}, not {value!r}"[:300])
        return self._normalise(value)

    def _ok(self, value):
        raise NotImplementedError

    def _normalise(self, value):
        return value

    def describe(self):
        """What the rule accepts, in words (the error messages use it)."""
        raise NotImplementedError

    def _or_none(self, text):
        return text + " or None" if self.optional else text

    def invalid_examples(self):
        """Values this rule refuses: conformance tests and fuzzers feed them to every declared parameter."""
        return ([] if self.optional else [None]) + ["1", [1], {"a": 1}]


class Integer(Constraint):
    """An int (not a bool) in ``[lo, hi]`` (either bound may be None)."""

    def __init__(self, lo=None, hi=None, *, optional=False):
        self.lo, self.hi, self.optional = lo, hi, optional

    def _ok(self, value):
        return is_int(value) and (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def _normalise(self, value):
        return int(value)

    def describe(self):
        if self.lo == 1 and self.hi is None:
            text = "a positive integer"
        elif self.lo is not None and self.hi is not None:
            text = f"an integer in [{self.lo}, {self.hi}]"
        elif self.lo is not None:
            text = f"an integer >= {self.lo}"
        elif self.hi is not None:
            text = f"an integer <= {self.hi}"
        else:
            text = "an integer"
        return self._or_none(text)

    def invalid_examples(self):
        out = super().invalid_examples() + [2.5, True, float("nan")]
        if self.lo is not None:
            out += [self.lo - 1, -(2 ** 63)]
        if self.hi is not None:
            out += [self.hi + 1]
        return out


class Real(Constraint):
    """A finite real number (int or float, not a bool) within the given bounds, open or closed."""

    def __init__(self, lo=None, hi=None, *, lo_open=False, hi_open=False, optional=False):
        self.lo, self.hi, self.lo_open, self.hi_open, self.optional = lo, hi, lo_open, hi_open, optional

    def _ok(self, value):
        if not is_real(value) or not math.isfinite(value):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return self.hi is None or not (value > self.hi or (self.hi_open and value == self.hi))

    def _normalise(self, value):
        return float(value)

    def describe(self):
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi}")
        text = "a finite number" + (" " + " and ".join(parts) if parts else "")
        return self._or_none(text)

    def invalid_examples(self):
        out = super().invalid_examples() + [float("nan"), float("inf"), float("-inf"), True]
        if self.lo is not None:
            out += [self.lo if self.lo_open else self.lo - 1, self.lo - 1e6]
        if self.hi is not None:
            out += [self.hi if self.hi_open else self.hi + 1, self.hi + 1e6]
        return out


class OneOf(Constraint):
    """One of a fixed set of values (strings, usually); ``aliases`` map other spellings to them."""

    def __init__(self, values, *, aliases=None, optional=False, noun=None):
        self.values, self.aliases, self.optional = tuple(values), dict(aliases or {}), optional
        self.noun = noun  # e.g. "activation": messages then say "unknown activation 'relu6'"

    def _key(self, value):
        key = value.lower() if isinstance(value, str) else value
        try:
            return self.aliases.get(key, key)
        except TypeError:  # unhashable
            return value

    def check(self, value, name):
        key = self._key(value)
        if isinstance(key, (str, type(None))) and key in self.values:
            return key
        if value is None and self.optional:
            return None
        aliases = f" (aliases: {sorted(k for k in self.aliases if isinstance(k, str))})" if self.aliases else ""
        if self.noun:
            raise ParameterError(f"{name}: unknown {self.noun} {value!r}; choose {self.describe()}{aliases}"[:400])
        raise ParameterError(f"{name} must be {self.describe()}{aliases}, not {value!r}"[:400])

    def describe(self):
        return self._or_none(f"one of {sorted(v for v in self.values if v is not None)}")

    def invalid_examples(self):
        return super().invalid_examples()[1:] + ["__no_such_choice__", 3, ""]


class Boolean(Constraint):
    """``True`` or ``False`` (numpy bools too; not 0/1)."""

    def _ok(self, value):
        return isinstance(value, (bool, np.bool_))

    def _normalise(self, value):
        return bool(value)

    def describe(self):
        return self._or_none("True or False")

    def invalid_examples(self):
        return super().invalid_examples() + [0, 1, "yes"]


class InstanceOf(Constraint):
    """An instance of ``cls`` (e.g. a ``numpy.random.Generator``)."""

    def __init__(self, cls, *, optional=False):
        self.cls, self.optional = cls, optional

    def _ok(self, value):
        return isinstance(value, self.cls)

    def describe(self):
        return self._or_none(f"a {self.cls.__module__}.{self.cls.__name__}")

    def invalid_examples(self):
        return super().invalid_examples() + [0, 12345, "PCG64"]


class Custom(Constraint):
    """A rule given as a function: ``convert(value)`` returns the value to store or raises
    ValueError/TypeError (re-raised as ParameterError naming the attribute). E.g. an optimizer
    given by name or instance, a backend name that must import."""

    def __init__(self, convert, text, *, invalid=()):
        self.convert, self.text, self.invalid = convert, text, list(invalid)

    def check(self, value, name):
        try:
            return self.convert(value)
        except ParameterError:
            raise
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"{name} must be {self.text}: {exc}"[:400]) from None

    def describe(self):
        return self.text

    def invalid_examples(self):
        return list(self.invalid)


_UNSET = object()


class Param:
    """A class attribute whose every assignment is checked by a :class:`Constraint`.

    The value lives in the instance ``__dict__`` under the attribute's name; a
    refused assignment raises :class:`~fastnn.errors.ParameterError`
    ("<Class> <label> must be ..., not ...") and leaves the old value in place.

    Parameters
    ----------
    constraint : Constraint
    label : str, optional
        The name in messages and in ``get_config`` (default: the attribute name),
        e.g. ``n_in`` for a Dense layer's ``n_inputs``.
    default : optional
        What reading the attribute gives before the first assignment.
    """

    def __init__(self, constraint, *, label=None, default=_UNSET):
        self.constraint = constraint
        self.label = label
        self.default = default
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name
        if self.label is None:
            self.label = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            if self.default is not _UNSET:
                return self.default
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r} yet") from None

    def __set__(self, obj, value):
        obj.__dict__[self.name] = self.constraint.check(value, f"{type(obj).__name__} {self.label}")


def declared_params(cls):
    """``{label: Param}`` of every checked attribute of ``cls`` (its bases' too)."""
    out = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Param):
                out[value.label] = value
    return out
