"""Safe model files: a small JSON header plus raw little-endian arrays, no pickle.

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
     "training": {...}}           # checkpoints only, see fastnn.checkpoint

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
tensor``, ``tensor shape mismatch``, ``tensor dtype mismatch``.
"""
import contextlib
import json
import math
import numbers
import os
import struct
import sys
import tempfile

import numpy as np

from .errors import ModelFormatError

__all__ = ["save_network", "load_network", "read_header", "atomic_write", "MAGIC", "FORMAT_VERSION",
           "MAX_HEADER_BYTES", "DTYPES"]

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


# ---------------------------------------------------------------------------- atomic writes

def _fsync_dir(directory):
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_mode():
    # mkstemp creates files 0600; give the final file the usual umask-based mode.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Write ``path`` all-or-nothing: a temp file in the same directory, flushed,
    fsync'ed and renamed over ``path`` (``os.replace``) only if the block succeeds.

    Readers see either the old file or the complete new one, never a partial
    write; on an exception the temp file is removed and ``path`` is untouched.

    Examples
    --------
    >>> with atomic_write("model.fnn") as f:   # doctest: +SKIP
    ...     f.write(data)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = "." + os.path.basename(path) + "."
    # the writer's pid in the name lets a later save tell a dead writer's leftover from a live one's
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{prefix}{os.getpid()}.", suffix=".tmp")
    try:
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else _default_mode())
        except OSError:
            pass
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    _remove_stale_temps(directory, prefix)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def _remove_stale_temps(directory, prefix):
    """Remove temp files of earlier saves to the same path whose writer process is gone
    (killed mid-save: SIGKILL, OOM killer, power loss). Best effort, POSIX only; temp files
    of live writers (any process, this one included) are left alone."""
    if os.name != "posix":
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


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


def network_config(network):
    """The ``network`` header entry; raises ValueError for what a model file cannot hold."""
    from .layers import LAYER_TYPES

    dtype = np.dtype(network.dtype).name
    if dtype not in NETWORK_DTYPES:
        raise ValueError(f"network dtype {dtype} cannot be saved (allowed: {NETWORK_DTYPES})")
    layers = []
    for i, layer in enumerate(network.layers):
        name = type(layer).__name__
        if LAYER_TYPES.get(name) is not type(layer):
            raise ValueError(f"layer {i} ({name}) is not a registered layer type; model files can only hold "
                             f"{sorted(LAYER_TYPES)}")
        layers.append({"type": name, "config": layer.get_config()})
    task = network.task
    if task not in TASKS:
        raise ValueError(f"network.task must be one of {TASKS}, not {task!r}")
    config = {"dtype": dtype, "task": task, "layers": layers}
    shape = tuple(network.input_shape)
    if len(shape) != 1 or not network.layers[0].get_config():
        config["input_shape"] = list(shape)  # the first layer's config does not pin the input shape
    return config


def _net_slots(network):
    """``[(tensor name, flat array, offset, shape)]``: parameters (``layers.<i>.<name>``), then
    non-trainable buffers such as BatchNorm running statistics (``buffers.<i>.<name>``)."""
    out = [(f"layers.{i}.{name}", network.params, off, tuple(shape)) for i, name, off, shape in network._slots]
    flat = getattr(network, "buffers", None)
    out += [(f"buffers.{i}.{name}", flat, off, tuple(shape))
            for i, name, off, shape in getattr(network, "_buffer_slots", ())]
    return out


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def param_tensors(network):
    """``[(name, view)]`` of everything a model file stores, in file order (see :func:`_net_slots`)."""
    return [(name, flat[off:off + _size(shape)].reshape(shape)) for name, flat, off, shape in _net_slots(network)]


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict of str -> str, not {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str; got {key!r}: {value!r} "
                            f"(convert values with str() or json.dumps())")
    return dict(metadata)


def save_network(network, path, *, metadata=None):
    """Save a network (architecture, dtype, task, weights) to one file, atomically.

    Parameters
    ----------
    network : Network
    path : str or os.PathLike
        Destination, conventionally ``*.fnn``; replaced atomically if it exists.
    metadata : dict of str -> str, optional
        Free-form annotations stored in the header (see :func:`read_header`).

    Raises
    ------
    ValueError
        If a layer is not a registered type or its config is not plain JSON data.
    """
    from . import __version__

    header = {"kind": "model", "fastnn_version": __version__, "network": network_config(network),
              "metadata": _check_metadata(metadata)}
    write_file(path, header, param_tensors(network))


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


@contextlib.contextmanager
def _open_validated(path_or_file, max_header_bytes=MAX_HEADER_BYTES):
    if hasattr(path_or_file, "read"):
        r, owned = _Reader(path_or_file, str(getattr(path_or_file, "name", "<file>"))), None
    else:
        path = os.fspath(path_or_file)
        owned = open(path, "rb")
        r = _Reader(owned, path)
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


# ---------------------------------------------------------------------------- reading: networks

def _check_config_value(value, depth=0):
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return True
    if isinstance(value, list) and depth < 4:
        return all(_check_config_value(v, depth + 1) for v in value)
    return False


def build_layers(r, spec):
    """Validate a header's ``network`` entry and build its layers (nothing allocated).

    Returns ``(layers, dtype, task, expected)`` where ``expected`` lists
    ``(tensor name, shape)`` in file order: parameters, then non-trainable
    buffers. Only registry layer types, only through their validating
    constructors.
    """
    from .layers import LAYER_TYPES
    from .network import Network

    if not isinstance(spec, dict) or not {"dtype", "task", "layers"} <= set(spec) <= \
            {"dtype", "task", "layers", "input_shape"}:
        raise r.error("invalid header: 'network' must be an object with exactly dtype, task, layers "
                      "(and optionally input_shape)")
    dtype = spec["dtype"]
    if not isinstance(dtype, str) or dtype not in NETWORK_DTYPES:
        raise r.error(f"unknown dtype {dtype!r} for the network (allowed: {NETWORK_DTYPES})"[:300])
    task = spec["task"]
    if task not in TASKS:
        raise r.error(f"invalid header: network task must be one of {TASKS}, got {task!r}"[:300])
    entries = spec["layers"]
    if not isinstance(entries, list) or not entries:
        raise r.error("invalid header: network layers must be a non-empty list")
    layers = []
    expected = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"type", "config"}:
            raise r.error(f"invalid layer {i}: expected an object with exactly 'type' and 'config'")
        type_name, config = entry["type"], entry["config"]
        if not isinstance(type_name, str) or type_name not in LAYER_TYPES:
            raise r.error(f"unknown layer type {type_name!r} for layer {i} (known: {sorted(LAYER_TYPES)})"[:300])
        if not isinstance(config, dict) or not all(_check_config_value(v) for v in config.values()):
            raise r.error(f"invalid layer {i} ({type_name}): config must be an object of JSON scalars or lists")
        try:
            layer = LAYER_TYPES[type_name](**config)
        except Exception as exc:  # the constructor is the validator: any refusal is a format error
            raise r.error(f"invalid layer {i} ({type_name}): {type(exc).__name__}: {exc}"[:500]) from None
        layers.append(layer)

    class _Stack:  # width inference exactly as Network does it, without allocating anything
        pass

    stack = _Stack()
    stack.layers = layers
    try:
        Network._build_shapes(stack, spec.get("input_shape"))
    except (TypeError, ValueError) as exc:
        raise r.error(f"invalid layer stack: {exc}") from None
    buffers = []
    for i, layer in enumerate(layers):
        try:
            pshapes = layer.param_shapes()
            bshapes = layer.buffer_shapes() if hasattr(layer, "buffer_shapes") else {}
        except Exception as exc:
            raise r.error(f"invalid layer {i} ({type(layer).__name__}): {type(exc).__name__}: {exc}"[:500]) from None
        expected += [(f"layers.{i}.{name}", tuple(int(d) for d in shape)) for name, shape in pshapes.items()]
        buffers += [(f"buffers.{i}.{name}", tuple(int(d) for d in shape)) for name, shape in bshapes.items()]
    return layers, dtype, task, expected + buffers


def _check_params_table(r, table, expected, dtype, extra_allowed=()):
    names = [name for name, _ in expected]
    for name, shape in expected:
        if name not in table:
            raise r.error(f"missing tensor {name!r} (the architecture needs it)")
        t_dtype, t_shape, _, _ = table[name]
        if t_shape != shape:
            raise r.error(f"tensor shape mismatch: {name!r} is {list(t_shape)} but the architecture needs {list(shape)}")
        if t_dtype != DTYPES[dtype]:
            raise r.error(f"tensor dtype mismatch: {name!r} is {t_dtype.name} but the network is {dtype}")
    unexpected = set(table) - set(names) - set(extra_allowed)
    if unexpected:
        raise r.error(f"unexpected tensor(s) {sorted(unexpected)[:5]} for this architecture")


def _load_network_from(r, header, table, data_start, backend=None, seed=None, extra_tensors=()):
    from .network import Network

    layers, dtype, task, expected = build_layers(r, header["network"])
    _check_params_table(r, table, expected, dtype, extra_tensors)
    # Sizes are now known to fit in the file: allocating the network is bounded by the file size.
    try:
        net = Network(layers, dtype=dtype, backend=backend, seed=seed,
                      input_shape=header["network"].get("input_shape"))
    except (TypeError, ValueError) as exc:
        raise r.error(f"invalid layer stack: {exc}") from None
    slots = _net_slots(net)
    if [name for name, _ in expected] != [name for name, _, _, _ in slots]:  # cannot happen: same layers
        raise r.error("invalid layer stack: the network's tensors differ from the file's")
    for name, flat, off, shape in slots:
        view = flat[off:off + _size(shape)].reshape(shape)
        spec = table[name]
        if DTYPES[dtype] == flat.dtype:  # little-endian machine: read straight into the buffer
            _read_into(r, data_start, spec[2], view)
        else:
            view[...] = read_tensor(r, data_start, spec)
    net.task = task
    return net


def load_network(path, *, backend=None, seed=None):
    """Load a network saved by :func:`save_network` (or from a training checkpoint).

    Parameters
    ----------
    path : str, os.PathLike or binary file object
    backend : str, optional
        Kernel backend of the loaded network.
    seed : int, optional
        Seeds the loaded network's dropout masks if it is trained further.

    Returns
    -------
    Network

    Raises
    ------
    fastnn.errors.ModelFormatError
        If the file is not a valid fastnn model file (see the module docstring).
    FileNotFoundError
        If ``path`` does not exist.
    """
    with _open_validated(path) as (r, header, table, data_start):
        extra = ("optimizer.state",) if header["kind"] == "checkpoint" else ()
        return _load_network_from(r, header, table, data_start, backend, seed, extra)


def read_header(path):
    """The validated JSON header of a model or checkpoint file (a dict), without loading weights.

    Useful to inspect ``metadata``, the architecture (``header['network']``) or,
    for checkpoints, ``header['training']['epoch']``.
    """
    with _open_validated(path) as (r, header, table, data_start):
        build_layers(r, header["network"])
        return header
