"""Reading and writing IDX files, the format of MNIST and its relatives.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the C-ordered big-endian payload. Files
are often gzip-compressed; compression is detected from the content (gzip
magic bytes), never from the file name.

The reader treats every file as untrusted: the header is validated and the
payload size it implies is checked against ``max_bytes`` and, for
uncompressed files, against the real file size *before* anything is
allocated, so a forged header cannot make it allocate gigabytes. A gzip
file is bounded by what it can really hold: its payload may be at most
``max_ratio`` times the compressed size (plus 1 MiB), checked before anything
is allocated when the compressed size is known and while decompressing when
it is not (a stream); the chunks read stop one byte past the size the header
announces. Memory per input byte is therefore at most 1 (raw files) or
``max_ratio`` (gzip; default :data:`DEFAULT_MAX_RATIO`) beyond the 1 MiB slack.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import zlib

import numpy as np

from .._validation import check_real, is_int
from ..errors import DataFormatError, NotRegularFileError, ParameterError
from .._fileio import atomic_write, open_regular

__all__ = ["read_idx", "write_idx", "IDX_DTYPES", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_RATIO", "MAX_NDIM"]

#: IDX type code -> numpy dtype (big-endian, as stored on disk).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) -> type code, for write_idx.
_CODE_FOR = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}

#: Default cap on the payload size read_idx accepts (2 GiB).
DEFAULT_MAX_BYTES = 2 << 30
#: Default cap on uncompressed / compressed size of a gzip IDX file. Real data sets compress 2-5x
#: (MNIST images 4.7x, labels 2.1x); deflate itself can reach ~1032x, which is what a "zip bomb" uses.
DEFAULT_MAX_RATIO = 100
# Bytes any gzip file may decompress to regardless of the ratio (tiny files have large ratios).
_RATIO_SLACK = 1 << 20
#: Largest number of dimensions accepted (MNIST-style files use 1 to 3).
MAX_NDIM = 8
# The format stores dimensions as 32-bit integers; readers in other
# languages treat them as signed, so stay below 2**31.
_MAX_DIM = 2**31 - 1
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# Magic numbers of formats people mistake for IDX, for a helpful message.
_OTHER_FORMATS = (
    (b"PK\x03\x04", "a zip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\x93NUMPY", "a .npy file"),
)


def _describe(source):
    """Name of a path or file object, for error messages."""
    if isinstance(source, (str, bytes, os.PathLike)):
        return repr(os.fsdecode(source))
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, (str, bytes)) else "<file object>"


class _PrefixedReader(io.RawIOBase):
    """A non-seekable reader that yields ``prefix`` then the rest of ``f``; counts the bytes it gave."""

    def __init__(self, prefix, f):
        self._prefix = prefix
        self._f = f
        self.consumed = len(prefix)

    def readable(self):
        return True

    def readinto(self, b):
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._f.read(len(b))
        b[: len(data)] = data
        self.consumed += len(data)
        return len(data)


def _read_exact(f, n):
    """Read up to ``n`` bytes, looping over short reads; stops at EOF."""
    parts = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        if isinstance(chunk, str):
            raise ParameterError("read_idx needs a binary file object, got one opened in text mode; "
                                 "open it with open(path, 'rb')")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _remaining_size(f):
    """Bytes left from the current position, for plain files and BytesIO.

    Other file objects (a user's GzipFile, sockets...) return None and are
    read as streams: their ``fileno``/``seek`` may describe something else
    than the bytes ``read`` returns.
    """
    try:
        if isinstance(f, (io.BufferedReader, io.FileIO)):
            return os.fstat(f.fileno()).st_size - f.tell()
        if isinstance(f, io.BytesIO):
            return f.getbuffer().nbytes - f.tell()
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    return None


def _parse_header(f, head, name, hasher):
    """Read and validate the magic number and dimensions; ``head`` holds
    the first bytes of the file, already read.

    Returns ``(dtype, shape, header_bytes)``.
    """
    magic = head + _read_exact(f, 4 - len(head))
    if hasher is not None:
        hasher.update(magic)
    if len(magic) == 0:
        raise DataFormatError(f"IDX file {name} is empty")
    if len(magic) < 4:
        raise DataFormatError(
            f"IDX file {name} is too short ({len(magic)} bytes) to hold an IDX header"
        )
    if magic[0] != 0 or magic[1] != 0:
        hint = ""
        for sig, what in _OTHER_FORMATS:
            if magic.startswith(sig[:4]):
                hint = f"; it looks like {what}, not an IDX file"
                break
        raise DataFormatError(
            f"IDX file {name} has a bad magic number 0x{magic.hex()} "
            f"(an IDX file starts with two zero bytes){hint}"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise DataFormatError(
            f"IDX file {name} has unknown data type code 0x{code:02X}; known: {known}"
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise DataFormatError(
            f"IDX file {name} declares {ndim} dimensions; supported: 1 to {MAX_NDIM}"
        )
    raw_dims = _read_exact(f, 4 * ndim)
    if hasher is not None:
        hasher.update(raw_dims)
    if len(raw_dims) < 4 * ndim:
        raise DataFormatError(
            f"IDX file {name} is truncated inside its header: expected "
            f"{4 * ndim} bytes of dimensions for {ndim} dimensions, got {len(raw_dims)}"
        )
    shape = struct.unpack(f">{ndim}I", raw_dims)
    for axis, d in enumerate(shape):
        if d > _MAX_DIM:
            raise DataFormatError(
                f"IDX file {name} declares dimension {axis} of size {d}, "
                f"above the limit {_MAX_DIM}"
            )
    return IDX_DTYPES[code], shape, 4 + 4 * ndim


def _read_payload_known_size(f, nbytes, name):
    """Read exactly ``nbytes`` (already checked against the file size)."""
    buf = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        if hasattr(f, "readinto"):  # straight into the array: no extra copy
            n = f.readinto(view[got:]) or 0
        else:
            chunk = f.read(min(nbytes - got, _CHUNK))
            n = len(chunk)
            view[got : got + n] = chunk
        if n == 0:
            break
        got += n
    if got != nbytes:  # the file shrank under us
        raise DataFormatError(
            f"IDX file {name} is truncated: expected {nbytes} payload bytes, got {got}"
        )
    return buf


def _read_payload_stream(f, nbytes, name, budget=None):
    """Read ``nbytes`` from a stream of unknown length, in bounded chunks.

    Memory grows only with the bytes actually read, so a forged header that
    announces more data than the stream holds costs nothing. Reads one byte
    past the end to detect trailing data (and, for gzip, to reach the end of
    the stream, which makes the gzip module check its CRC and length).
    """
    buf = bytearray()
    remaining = nbytes
    while remaining > 0:
        chunk = f.read(min(remaining, _CHUNK))
        if not chunk:
            raise DataFormatError(
                f"IDX file {name} is truncated: expected {nbytes} payload bytes, "
                f"got {len(buf)}"
            )
        buf += chunk
        remaining -= len(chunk)
        if budget is not None:
            budget(len(buf))
    if f.read(1):
        raise DataFormatError(
            f"IDX file {name} has trailing data after the {nbytes} payload bytes "
            f"its header announces"
        )
    return np.frombuffer(buf, dtype=np.uint8)


def _read_idx(source, *, max_bytes=DEFAULT_MAX_BYTES, hasher=None, max_ratio=DEFAULT_MAX_RATIO):
    """Implementation of :func:`read_idx`; ``hasher`` (a hashlib object), if
    given, is fed the uncompressed file content (header and payload)."""
    name = _describe(source)
    if isinstance(source, (str, bytes, os.PathLike)):
        with open_regular(source, NotRegularFileError) as f:
            return _read_idx_from(f, name, max_bytes, hasher, max_ratio)
    if not hasattr(source, "read"):
        raise ParameterError(
            f"read_idx expects a path or a binary file object, got {type(source).__name__}"
        )
    if isinstance(source, io.TextIOBase):
        raise ParameterError(f"IDX file {name}: read_idx needs a binary file object, this one is open in "
                             f"text mode; open it with open(path, 'rb')")
    return _read_idx_from(source, name, max_bytes, hasher, max_ratio)


class _RatioGuard:
    """The ratio cap of one gzip stream: checked against the announced size before allocating (when the
    compressed size is known) and against the bytes decompressed so far (always)."""

    def __init__(self, name, raw, compressed_size, max_ratio):
        self.name, self.raw, self.size, self.max_ratio = name, raw, compressed_size, max_ratio

    def _limit(self, compressed):
        return self.max_ratio * compressed + _RATIO_SLACK

    def check_announced(self, header_len, nbytes):
        if self.max_ratio is not None and self.size is not None and header_len + nbytes > self._limit(self.size):
            raise DataFormatError(
                f"IDX file {self.name} is a {self.size}-byte gzip stream whose header announces {nbytes} "
                f"payload bytes, more than max_ratio={self.max_ratio} times its size (+1 MiB): "
                f"a decompression bomb or a forged header; pass a larger max_ratio if it is real data"
            )

    def __call__(self, produced):
        if self.max_ratio is not None and produced > self._limit(self.raw.consumed):
            raise DataFormatError(
                f"IDX file {self.name}: {self.raw.consumed} compressed bytes decompressed to more than "
                f"{produced} bytes, above max_ratio={self.max_ratio} (+1 MiB): a decompression bomb; pass "
                f"a larger max_ratio if it is real data"
            )


def _read_idx_from(f, name, max_bytes, hasher, max_ratio=DEFAULT_MAX_RATIO):
    size = _remaining_size(f)
    head = _read_exact(f, 2)
    if head == _GZIP_MAGIC:
        # Reuse the two bytes already consumed rather than seeking back, so
        # non-seekable streams work too.
        raw = _PrefixedReader(head, f)
        guard = _RatioGuard(name, raw, size, max_ratio)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _decode(gz, b"", name, max_bytes, hasher, known_size=None, guard=guard)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataFormatError(
                f"IDX file {name} is a corrupt or truncated gzip stream: {exc}"
            ) from exc
    return _decode(f, head, name, max_bytes, hasher, known_size=size)


def _decode(f, head, name, max_bytes, hasher, known_size, guard=None):
    dtype, shape, header_len = _parse_header(f, head, name, hasher)
    count = 1
    for d in shape:
        count *= d  # Python ints: no overflow from forged dimensions
    nbytes = count * dtype.itemsize
    shape_s = "x".join(map(str, shape))
    if max_bytes is not None and nbytes > max_bytes:
        raise DataFormatError(
            f"IDX file {name} declares a {shape_s} {dtype.name} array "
            f"({nbytes} bytes), above max_bytes={max_bytes}; the header is "
            f"corrupt or forged, or pass a larger max_bytes"
        )
    if count == 0:
        # An empty array, but numpy still refuses a shape whose non-zero dimensions multiply
        # past its index range: refuse it here, as the format error it is.
        extent = dtype.itemsize
        for d in shape:
            extent *= max(d, 1)
        if extent > np.iinfo(np.intp).max:
            raise DataFormatError(
                f"IDX file {name} declares a {shape_s} array: a zero dimension next to "
                f"dimensions that multiply past what numpy can index (corrupt or forged header)"
            )
    if known_size is not None:
        actual = known_size - header_len
        if actual < nbytes:
            raise DataFormatError(
                f"IDX file {name} is truncated: its header declares a {shape_s} "
                f"{dtype.name} array ({nbytes} bytes) but only {actual} bytes follow"
            )
        if actual > nbytes:
            raise DataFormatError(
                f"IDX file {name} has {actual - nbytes} bytes of trailing data after "
                f"the {shape_s} {dtype.name} array ({nbytes} bytes) its header declares"
            )
        buf = _read_payload_known_size(f, nbytes, name)
    else:
        if guard is not None:
            guard.check_announced(header_len, nbytes)
        buf = _read_payload_stream(f, nbytes, name, guard)
    if hasher is not None:
        hasher.update(buf)
    arr = buf.view(dtype)
    if not dtype.isnative and dtype.itemsize > 1:
        arr.byteswap(inplace=True)  # buf is ours and writable: swap in place
    arr = arr.view(dtype.newbyteorder("="))
    return arr.reshape(shape)


def read_idx(path_or_fileobj, *, max_bytes=DEFAULT_MAX_BYTES, max_ratio=DEFAULT_MAX_RATIO):
    """Read an IDX file (raw or gzip-compressed) into a numpy array.

    Parameters
    ----------
    path_or_fileobj : str, os.PathLike or binary file object
        The file to read. Gzip compression is detected from the first two
        bytes, whatever the file is called. A file object is read from its
        current position and need not be seekable.
    max_bytes : int or None, optional
        Largest payload (in bytes, uncompressed) to accept; a header that
        announces more raises :class:`~fastnn.errors.DataFormatError` before
        anything is allocated. ``None`` removes the cap (uncompressed files
        are still checked against their real size). Default 2 GiB.
    max_ratio : float or None, optional
        Largest uncompressed / compressed size of a gzip file (plus 1 MiB any
        file may have), checked before allocating when the compressed size is
        known (paths, plain files, BytesIO) and while decompressing otherwise.
        Bounds memory per input byte against decompression bombs. ``None``
        removes it. Default :data:`DEFAULT_MAX_RATIO` (100; real data sets
        compress 2-5x).

    Returns
    -------
    numpy.ndarray
        Array of the shape and type the header declares (uint8, int8, int16,
        int32, float32 or float64), in native byte order, writable.

    Raises
    ------
    fastnn.errors.DataFormatError
        If the file is empty, has a bad magic number, an unknown type code,
        an unsupported number of dimensions, a dimension or total size above
        the limits, a truncated payload, trailing data, or is a corrupt gzip
        stream. The message names the file and the problem.
    FileNotFoundError
        If the path does not exist.

    Examples
    --------
    >>> labels = read_idx("t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> labels.shape, labels.dtype                        # doctest: +SKIP
    ((10000,), dtype('uint8'))
    """
    if max_bytes is not None:
        if not is_int(max_bytes):
            raise TypeError(f"max_bytes must be an int or None, got {max_bytes!r}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    if max_ratio is not None:
        max_ratio = check_real(max_ratio, "read_idx max_ratio", lo=1)
    return _read_idx(path_or_fileobj, max_bytes=max_bytes, max_ratio=max_ratio)


def _idx_header(arr):
    """Validate an array for IDX and return (big-endian dtype, header bytes)."""
    code = _CODE_FOR.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        supported = ", ".join(dt.name for dt in IDX_DTYPES.values())
        raise TypeError(
            f"IDX cannot store dtype {arr.dtype}; supported dtypes: {supported}"
        )
    if not 1 <= arr.ndim <= MAX_NDIM:
        raise ValueError(f"IDX stores arrays with 1 to {MAX_NDIM} dimensions, got {arr.ndim}")
    for axis, d in enumerate(arr.shape):
        if d > _MAX_DIM:
            raise ValueError(f"dimension {axis} of size {d} exceeds the IDX limit {_MAX_DIM}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return IDX_DTYPES[code], header


def write_idx(path, array, *, compress=None):
    """Write an array to an IDX file, atomically.

    The data goes to a temporary file in the destination directory, which is
    flushed, fsync'ed and then renamed over ``path`` (``os.replace``), so a
    reader never sees a half-written file and a crash leaves the old file
    intact.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64 with 1 to
        :data:`MAX_NDIM` dimensions. Stored big-endian, C order.
    compress : bool or None, optional
        Gzip-compress the file. ``None`` (default) compresses when ``path``
        ends with ``.gz``. The gzip header carries no name or timestamp, so
        equal arrays give byte-identical files.

    Raises
    ------
    TypeError
        If the dtype has no IDX type code (e.g. int64, bool, float16).
    ValueError
        If the array has 0 or more than :data:`MAX_NDIM` dimensions.
    """
    arr = np.asarray(array)
    be_dtype, header = _idx_header(arr)
    path = os.fspath(path)
    if compress is None:
        compress = os.fsdecode(path).endswith(".gz")
    # Big-endian, C-contiguous bytes; a no-op copy-wise when already so.
    payload = np.ascontiguousarray(arr, dtype=be_dtype).reshape(-1).view(np.uint8)
    with atomic_write(path) as f:
        if compress:
            with gzip.GzipFile(fileobj=f, mode="wb", filename="", mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)


