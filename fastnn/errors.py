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


class NonFiniteError(FastnnError, FloatingPointError):
    """A NaN or Inf appeared in a tensor during training."""


class BackendUnavailableError(FastnnError, ImportError):
    """An explicitly requested compute backend cannot be imported."""


class FastnnWarning(UserWarning):
    """A warning from fastnn about how training is going (with a hint on what to change)."""
