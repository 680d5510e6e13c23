"""Exception types raised by fastnn.

Every error fastnn raises on purpose derives from :class:`FastnnError`, and
also from the builtin a caller would expect (``ValueError`` for bad values),
so ``except ValueError`` keeps working.
"""


class FastnnError(Exception):
    """Base class of all fastnn errors."""


class DataFormatError(FastnnError, ValueError):
    """A data file (IDX, CSV...) is malformed, truncated or forged."""


class ModelFormatError(FastnnError, ValueError):
    """A model or checkpoint file is malformed, unsupported or hostile."""


class NotRegularFileError(ModelFormatError, DataFormatError, OSError):
    """A loader was given a path that is not a regular file (a FIFO, a device, a socket, a directory).

    Refused before anything is read (reading one could block forever). It is the
    format error of either loader and an ``OSError``; the message names the path.
    """


class ParameterError(FastnnError, ValueError, TypeError):
    """A bad argument, hyper-parameter or attribute value; the message names it.

    Both a ``ValueError`` and a ``TypeError`` (as numpy's ``AxisError`` is two
    builtins), so ``except ValueError`` and ``except TypeError`` both keep working
    whether the value had the wrong type or was out of range.
    """


class NonFiniteError(FastnnError, FloatingPointError):
    """A NaN or Inf appeared in a tensor during training."""


class BackendUnavailableError(FastnnError, ImportError):
    """An explicitly requested compute backend cannot be imported."""


class FastnnWarning(UserWarning):
    """A warning from fastnn about how training is going (with a hint on what to change)."""
