"""The ``.fnn`` container: a small JSON header plus raw little-endian arrays, no pickle.

Layout of a ``.fnn`` file (model or training checkpoint)::

    offset 0   8 bytes   magic  b"\\x89FASTNN\\n"
    offset 8   uint32 LE format version (currently 1)
    offset 12  uint64 LE header length H (at most MAX_HEADER_BYTES)
    offset 20  H bytes   UTF-8 JSON header (space-padded so tensor data is 64-byte aligned)
    offset 20+H          tensor data: raw little-endian arrays, back to back

The header (a JSON object, duplicate keys rejected, no NaN/Infinity)::

    {"kind": "model" | "checkpoint",
     "fastnn_version": "0.1.0",
     "network": {"dtype": "float32", "task": "classification" | "regression" | null,
                 "layers": [{"type": "Dense", "config": {"n_in": 784, ...}}, ...]},
     "tensors": {"layers.0.W": {"dtype": "float32", "shape": [784, 256], "offsets": [0, 802816]}, ...,
                 "buffers.3.running_mean": {...}},   # non-trainable state (BatchNorm), after the parameters
     "metadata": {"key": "string value", ...},
     "training": {...}}           # checkpoints only, see fastnn.io.checkpoint

``offsets`` are ``[begin, end)`` byte positions relative to the start of the
tensor data; extents must tile the data exactly (no overlap, hole or trailing
byte). Layer types come from the closed registry
:data:`fastnn.layers.LAYER_TYPES` and are built through their validating
constructors: loading never imports, calls or evaluates anything a file names.
Every size is checked against the real file size before anything is allocated.

Errors
------
Every defect raises :class:`fastnn.errors.ModelFormatError` whose message
starts with the file name and one of these stable phrases (a test corpus may
match on them): ``not a fastnn model file (bad magic)``, ``truncated``,
``unsupported format version``, ``header length``, ``header is not valid
UTF-8``, ``header is not valid JSON``, ``duplicate key``, ``non-finite number``,
``invalid header``, ``unknown layer type``, ``invalid layer``, ``unknown
dtype``, ``tensor too large``, ``tensor extent``, ``overlapping tensors``,
``gap between tensors``, ``trailing bytes``, ``missing tensor``, ``unexpected
tensor``, ``tensor shape mismatch``, ``tensor dtype mismatch``, ``invalid tensor value`` (a
NaN/Inf weight, a negative variance, non-finite or negative optimizer moments: the values a
layer's or optimizer's ``check_state`` refuses). A path that is not a regular file raises
:class:`fastnn.errors.NotRegularFileError` (a ModelFormatError and an OSError) before
anything is read; a text-mode file object a :class:`fastnn.errors.ParameterError`.
"""
import contextlib
import io
import json
import math
import os
import stat
import struct
import sys

import numpy as np

from .._fileio import atomic_write, open_regular
from ..errors import ModelFormatError, NotRegularFileError, ParameterError

__all__ = ["write_file", "read_tensor", "MAGIC", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "MAX_HEADER_BYTES",
           "MAX_NDIM", "DTYPES", "NETWORK_DTYPES", "KINDS", "TASKS", "PREFIX_SIZE"]

MAGIC = b"\x89FASTNN\n"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
#: Largest JSON header accepted (a header describes, it never holds weights).
MAX_HEADER_BYTES = 1 << 20
#: Most dimensions a tensor may declare.
MAX_NDIM = 8
#: Closed set of tensor dtypes: name -> little-endian numpy dtype.
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "int64": np.dtype("<i8")}
NETWORK_DTYPES = ("float32", "float64")
KINDS = ("model", "checkpoint")
TASKS = (None, "classification", "regression")

_PREFIX = struct.Struct("<8sIQ")
PREFIX_SIZE = _PREFIX.size  # 20
_ALIGN = 64
_HEADER_KEYS = {"kind", "fastnn_version", "network", "tensors", "metadata", "training"}
_REQUIRED_KEYS = {"kind", "network", "tensors"}


# ---------------------------------------------------------------------------- writing

def _le(arr):
    """C-contiguous little-endian version of ``arr`` (no copy on little-endian machines)."""
    arr = np.ascontiguousarray(arr)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


def write_file(path, header, tensors):
    """Write a container: ``header`` (dict, without 'tensors') and ``tensors``, a
    list of ``(name, array)`` stored in that order. Atomic."""
    header = dict(header)
    table = {}
    arrays = []
    offset = 0
    for name, arr in tensors:
        arr = _le(arr)
        dtype_name = arr.dtype.name
        if dtype_name not in DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored (allowed: {sorted(DTYPES)})")
        if name in table:
            raise ValueError(f"duplicate tensor name {name!r}")
        table[name] = {"dtype": dtype_name, "shape": list(arr.shape), "offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        arrays.append(arr)
    header["tensors"] = table
    try:
        text = json.dumps(header, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the model header is not plain JSON data: {exc}") from exc
    raw = text.encode("utf-8")
    raw += b" " * (-(PREFIX_SIZE + len(raw)) % _ALIGN)
    if len(raw) > MAX_HEADER_BYTES:
        raise ValueError(f"the model header would be {len(raw)} bytes, more than the {MAX_HEADER_BYTES} allowed "
                         f"(too much metadata?)")
    with atomic_write(path) as f:
        f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(raw)))
        f.write(raw)
        for arr in arrays:
            if arr.nbytes:
                f.write(memoryview(arr.reshape(-1)).cast("B"))


# ---------------------------------------------------------------------------- reading: container

class _Reader:
    """Validated access to one open file; every error names the file."""

    def __init__(self, f, name):
        self.f = f
        self.name = name
        try:
            self.size = os.fstat(f.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            pos = f.tell()
            self.size = f.seek(0, os.SEEK_END)
            f.seek(pos)

    def error(self, msg):
        return ModelFormatError(f"{self.name}: {msg}")


def _reject_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


class _DuplicateKey(Exception):
    pass


class _BadConstant(Exception):
    pass


def _bad_constant(token):
    raise _BadConstant(token)


def _parse_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise _BadConstant(text)
    return value


def _read_prefix_and_header(r, max_header_bytes):
    head = r.f.read(PREFIX_SIZE)
    if not isinstance(head, (bytes, bytearray, memoryview)):
        raise _text_mode(r.name)
    if len(head) < 8 or head[:8] != MAGIC:
        if len(head) < 8 and MAGIC.startswith(head):
            raise r.error(f"truncated: {r.size} bytes, too short for a fastnn model file")
        raise r.error("not a fastnn model file (bad magic)")
    if len(head) < PREFIX_SIZE:
        raise r.error(f"truncated: {r.size} bytes, the fixed {PREFIX_SIZE}-byte prefix is incomplete")
    _, version, hlen = _PREFIX.unpack(head)
    if version not in SUPPORTED_VERSIONS:
        raise r.error(f"unsupported format version {version} (this fastnn reads version(s) "
                      f"{', '.join(map(str, SUPPORTED_VERSIONS))}; a newer fastnn may read it)")
    if hlen > max_header_bytes:
        raise r.error(f"header length {hlen} exceeds the {max_header_bytes}-byte limit")
    if hlen == 0:
        raise r.error("header length 0: the header is missing")
    if PREFIX_SIZE + hlen > r.size:
        raise r.error(f"truncated: the header claims {hlen} bytes but only {r.size - PREFIX_SIZE} follow the prefix")
    raw = r.f.read(hlen)
    if len(raw) != hlen:
        raise r.error(f"truncated: read {len(raw)} of {hlen} header bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise r.error(f"header is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_bad_constant,
                            parse_float=_parse_float)
    except _DuplicateKey as exc:
        raise r.error(f"duplicate key {exc.args[0]!r} in the header") from None
    except _BadConstant as exc:
        raise r.error(f"non-finite number {exc.args[0]} in the header") from None
    except RecursionError:
        raise r.error("header is not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, over-long integer literals
        raise r.error(f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise r.error(f"invalid header: expected a JSON object, got {type(header).__name__}")
    return header, PREFIX_SIZE + hlen


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_tensor_table(r, table, data_size):
    """Validate dtypes, shapes and extents against the data size; return {name: (dtype, shape, begin, end)}."""
    if not isinstance(table, dict):
        raise r.error(f"invalid header: 'tensors' must be an object, got {type(table).__name__}")
    out = {}
    for name, entry in table.items():
        where = f"tensor {name!r}"
        if not isinstance(entry, dict):
            raise r.error(f"invalid header: {where} must be an object")
        extra = set(entry) - {"dtype", "shape", "offsets"}
        missing = {"dtype", "shape", "offsets"} - set(entry)
        if missing or extra:
            raise r.error(f"invalid header: {where} needs exactly the keys dtype, shape, offsets "
                          f"(missing {sorted(missing)}, unexpected {sorted(extra)})")
        dtype_name = entry["dtype"]
        if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
            raise r.error(f"unknown dtype {dtype_name!r} for {where} (allowed: {sorted(DTYPES)})")
        dtype = DTYPES[dtype_name]
        shape = entry["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise r.error(f"invalid header: {where} shape must be a list of at most {MAX_NDIM} "
                          f"non-negative integers, got {shape!r}"[:300])
        nbytes = dtype.itemsize
        for d in shape:
            nbytes *= d
        if nbytes > data_size:
            raise r.error(f"tensor too large: {where} of shape {shape} {dtype_name} needs {nbytes} bytes, "
                          f"but the file holds only {data_size} bytes of tensor data")
        offsets = entry["offsets"]
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            raise r.error(f"invalid header: {where} offsets must be [begin, end] integers, got {offsets!r}"[:300])
        begin, end = offsets
        if not 0 <= begin <= end:
            raise r.error(f"tensor extent [{begin}, {end}) of {where} is invalid (need 0 <= begin <= end)")
        if end - begin != nbytes:
            raise r.error(f"tensor extent [{begin}, {end}) of {where} holds {end - begin} bytes but its shape "
                          f"{shape} {dtype_name} needs {nbytes}")
        out[name] = (dtype, tuple(shape), begin, end)
    pos = 0
    prev = None
    for name, (_, _, begin, end) in sorted(out.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin < pos:
            raise r.error(f"overlapping tensors: {name!r} [{begin}, {end}) overlaps {prev!r}, which ends at {pos}")
        if begin > pos:
            raise r.error(f"gap between tensors: bytes [{pos}, {begin}) before {name!r} belong to no tensor")
        pos, prev = end, name
    if pos > data_size:
        raise r.error(f"truncated: tensor data should be {pos} bytes but the file holds {data_size}")
    if pos < data_size:
        raise r.error(f"trailing bytes: {data_size - pos} bytes after the last tensor (data ends at {pos})")
    return out


def _text_mode(name):
    return ParameterError(f"{name}: the file object is open in text mode; model files are binary, "
                          f"open it with open(path, 'rb')")


def _check_file_object(f, name):
    """A caller's file object: binary, and (when it has a descriptor) on a regular file, not a pipe."""
    if isinstance(f, io.TextIOBase):
        raise _text_mode(name)
    try:
        mode = os.fstat(f.fileno()).st_mode
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return  # BytesIO and the like: in memory, nothing can block
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(f"{name}: the file object reads from something that is not a regular file "
                                  f"(a pipe, device or socket); a model file must be a regular file")


@contextlib.contextmanager
def _open_validated(path_or_file, max_header_bytes=MAX_HEADER_BYTES):
    if hasattr(path_or_file, "read"):
        name = str(getattr(path_or_file, "name", "<file>"))
        _check_file_object(path_or_file, name)
        r, owned = _Reader(path_or_file, name), None
    else:
        if not isinstance(path_or_file, (str, bytes, os.PathLike)):
            raise ParameterError(f"path must be a str, os.PathLike or binary file object, "
                                 f"not {type(path_or_file).__name__}")
        path = os.fspath(path_or_file)
        owned = open_regular(path, NotRegularFileError)
        r = _Reader(owned, os.fsdecode(path))
    try:
        header, data_start = _read_prefix_and_header(r, max_header_bytes)
        keys = set(header)
        if keys - _HEADER_KEYS:
            raise r.error(f"invalid header: unexpected key(s) {sorted(keys - _HEADER_KEYS)}")
        if _REQUIRED_KEYS - keys:
            raise r.error(f"invalid header: missing key(s) {sorted(_REQUIRED_KEYS - keys)}")
        if header["kind"] not in KINDS:
            raise r.error(f"invalid header: kind must be one of {KINDS}, got {header['kind']!r}"[:300])
        version = header.get("fastnn_version", "")
        if not isinstance(version, str) or len(version) > 64:
            raise r.error("invalid header: fastnn_version must be a short string")
        meta = header.get("metadata", {})
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise r.error("invalid header: metadata must be an object of strings")
        table = _check_tensor_table(r, header["tensors"], r.size - data_start)
        yield r, header, table, data_start
    finally:
        if owned is not None:
            owned.close()


def _read_into(r, data_start, begin, out):
    """Read bytes [begin, begin + out.nbytes) of the tensor data into the C-contiguous array ``out``."""
    if out.nbytes == 0:
        return out
    r.f.seek(data_start + begin)
    view = memoryview(out.reshape(-1)).cast("B")
    got = 0
    while got < out.nbytes:
        n = r.f.readinto(view[got:])
        if not n:
            raise r.error(f"truncated: the file ended while reading tensor data at byte {data_start + begin + got}")
        got += n
    return out


def read_tensor(r, data_start, spec):
    """Allocate and read one tensor (native byte order)."""
    dtype, shape, begin, _ = spec
    arr = _read_into(r, data_start, begin, np.empty(shape, dtype))
    if dtype.byteorder not in ("=", "|") and sys.byteorder != "little":
        arr = arr.astype(dtype.newbyteorder("="))
    return arr
