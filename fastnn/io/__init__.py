"""Safe model files and training checkpoints: a JSON header plus raw little-endian arrays, no pickle.

- :mod:`fastnn.io.container` — the ``.fnn`` container format (layout, limits, stable error phrases);
- :mod:`fastnn.io.model_file` — a :class:`~fastnn.network.Network` to and from a file;
- :mod:`fastnn.io.checkpoint` — training checkpoints (optimizer state, epoch, RNGs) for exact resumes.

Atomic writes live in :mod:`fastnn._fileio` (shared with :mod:`fastnn.data`); ``atomic_write``
is re-exported here.
"""
from .._fileio import atomic_write
from .checkpoint import load_checkpoint, save_checkpoint
from .container import DTYPES, FORMAT_VERSION, MAGIC, MAX_HEADER_BYTES, read_tensor, write_file
from .model_file import build_layers, load_network, network_config, param_tensors, read_header, save_network

__all__ = ["save_network", "load_network", "read_header", "atomic_write", "MAGIC", "FORMAT_VERSION",
           "MAX_HEADER_BYTES", "DTYPES", "save_checkpoint", "load_checkpoint"]
