"""fastnn: fast, light neural-network training on the CPU."""
__version__ = "0.1.0"
from .errors import FastnnError, DataFormatError, ModelFormatError, NonFiniteError  # noqa: F401
