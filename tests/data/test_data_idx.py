"""Tests for fastnn.data.idx: round trips and hostile/corrupt files."""
import gzip
import io
import os
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from fastnn.errors import DataFormatError
from fastnn.data.idx import read_idx, write_idx, IDX_DTYPES, MAX_NDIM

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def sample(dtype, shape=(3, 4, 5)):
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "f":
        a = np.linspace(-1e3, 1e3, n).astype(dt)
        a.flat[0] = np.finfo(dt).max
        a.flat[1] = np.finfo(dt).tiny
        a.flat[2] = np.nan
        a.flat[3] = -np.inf
    else:
        info = np.iinfo(dt)
        a = np.arange(n, dtype=np.int64) % (int(info.max) - int(info.min) + 1) + int(info.min)
        a = a.astype(dt)
        a.flat[-1] = info.max
    return a.reshape(shape)


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_round_trip(tmp_path, dtype, suffix, shape):
    a = sample(dtype, shape)
    p = tmp_path / ("a" + suffix)
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == a.dtype and b.dtype.isnative
    assert b.shape == a.shape
    assert b.flags.writeable
    np.testing.assert_array_equal(b, a)  # NaN-aware, bit-exact values
    # Same through a file object, seekable and not.
    np.testing.assert_array_equal(read_idx(io.BytesIO(p.read_bytes())), a)
    with open(p, "rb") as f:
        np.testing.assert_array_equal(read_idx(f), a)


class _Stream(io.RawIOBase):
    """A non-seekable byte stream (e.g. a socket or pipe)."""

    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        data = self._b.read(min(len(b), 1000))  # short reads on purpose
        b[: len(data)] = data
        return len(data)


@pytest.mark.parametrize("compress", [False, True])
def test_non_seekable_stream(tmp_path, compress):
    a = sample("int32")
    p = tmp_path / "s.idx"
    write_idx(p, a, compress=compress)
    np.testing.assert_array_equal(read_idx(_Stream(p.read_bytes())), a)


def test_big_endian_on_disk(tmp_path):
    p = tmp_path / "be.idx"
    write_idx(p, np.array([1, 256], dtype=np.int16))
    assert p.read_bytes() == header(0x0B, [2]) + b"\x00\x01\x01\x00"
    write_idx(p, np.array([1.0], dtype=">f8"))  # non-native input is fine
    assert read_idx(p).tolist() == [1.0]


def test_gzip_detected_by_content_not_name(tmp_path):
    a = sample("uint8")
    raw_named_gz = tmp_path / "raw.gz"
    gz_named_raw = tmp_path / "gz.idx"
    write_idx(raw_named_gz, a, compress=False)
    write_idx(gz_named_raw, a, compress=True)
    assert raw_named_gz.read_bytes()[:2] == b"\x00\x00"
    assert gz_named_raw.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)
    np.testing.assert_array_equal(read_idx(gz_named_raw), a)


def test_reads_from_current_position_and_user_gzipfile(tmp_path):
    a = sample("float32")
    p = tmp_path / "a.idx.gz"
    write_idx(p, a)
    with gzip.open(p, "rb") as g:  # already decompressing: must not use fstat
        np.testing.assert_array_equal(read_idx(g), a)
    buf = io.BytesIO(b"junk" + gzip.decompress(p.read_bytes()))
    buf.seek(4)
    np.testing.assert_array_equal(read_idx(buf), a)


def test_empty_dimension_round_trip(tmp_path):
    p = tmp_path / "e.idx"
    write_idx(p, np.zeros((0, 28, 28), np.uint8))
    assert read_idx(p).shape == (0, 28, 28)


def test_write_is_deterministic_and_atomic(tmp_path):
    a = sample("uint8")
    p1, p2 = tmp_path / "1.gz", tmp_path / "2.gz"
    write_idx(p1, a)
    write_idx(p2, a)
    assert p1.read_bytes() == p2.read_bytes()  # no mtime/name in gzip header
    write_idx(p1, a[:1])  # replaces
    assert read_idx(p1).shape == (1, 4, 5)
    assert sorted(os.listdir(tmp_path)) == ["1.gz", "2.gz"]  # no temp files left


def test_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "a.idx"
    write_idx(p, np.arange(3, dtype=np.uint8))
    before = p.read_bytes()

    def boom(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_idx(p, np.arange(5, dtype=np.uint8))
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.idx"]


@pytest.mark.parametrize("bad", [np.zeros(3, np.int64), np.zeros(3, bool),
                                 np.zeros(3, np.float16), np.zeros(3, np.uint16),
                                 np.zeros(3, np.complex64)])
def test_write_rejects_unsupported_dtype(tmp_path, bad):
    with pytest.raises(TypeError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x.idx", bad)
    assert os.listdir(tmp_path) == []


def test_write_rejects_bad_ndim(tmp_path):
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x.idx", np.uint8(3))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x.idx", np.zeros((1,) * (MAX_NDIM + 1), np.uint8))


def test_all_type_codes_covered():
    assert sorted(IDX_DTYPES) == [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


# ---------------------------------------------------------------- bad files

def write(tmp_path, data, name="bad.idx"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def check_bad(path, match):
    with pytest.raises(DataFormatError, match=match) as exc:
        read_idx(path)
    assert os.path.basename(str(path)) in str(exc.value)  # names the file
    assert isinstance(exc.value, ValueError)


VALID = header(0x08, [2, 3]) + bytes(range(6))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("data, match", [
    (b"", "empty"),
    (b"\x00\x00\x08", "too short"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"x", "bad magic"),
    (b"\x00\x01\x08\x01" + b"\x00\x00\x00\x01" + b"x", "bad magic"),
    (b"\x00\x00\x0a\x01" + b"\x00\x00\x00\x01" + b"x", "unknown data type code 0x0A"),
    (b"\x00\x00\x08\x00" + b"x", "declares 0 dimensions"),
    (b"\x00\x00\x08\x09" + b"\x00\x00\x00\x01" * 9 + b"x", "declares 9 dimensions"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01", "truncated inside its header"),
    (VALID[:-1], "truncated: .*6 .*5"),
    (header(0x0C, [2]) + b"\x00" * 7, "truncated"),
    (VALID + b"\x00", "trailing data"),
    (VALID + b"garbage" * 10, "trailing data"),
    (header(0x08, [0x80000000]) + b"x", "above the limit"),
])
def test_malformed(tmp_path, gz, data, match):
    if gz:
        data = gzip.compress(data)
    check_bad(write(tmp_path, data), match)


def test_bad_magic_hints_at_zip(tmp_path):
    check_bad(write(tmp_path, b"PK\x03\x04rest of a zip"), "zip archive")


def test_not_gzip_garbage(tmp_path):
    rng = np.random.default_rng(0)
    check_bad(write(tmp_path, b"\x7fELF" + rng.bytes(100)), "bad magic")


def test_garbage_after_gzip_magic(tmp_path):
    check_bad(write(tmp_path, b"\x1f\x8b" + b"\xff" * 50), "gzip")


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(header(0x08, [1000]) + bytes(range(256)) * 4)
    for cut in (len(data) - 4, len(data) // 2, 12):
        check_bad(write(tmp_path, data[:cut], f"cut{cut}.gz"), "truncated|gzip")


def test_corrupt_gzip_crc(tmp_path):
    data = bytearray(gzip.compress(VALID))
    data[-8] ^= 0xFF  # CRC32 in the trailer
    check_bad(write(tmp_path, bytes(data)), "gzip")


def test_gzip_with_trailing_garbage(tmp_path):
    check_bad(write(tmp_path, gzip.compress(VALID) + b"\x00\x00garbage"), "gzip")


def _peak_alloc(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("gz", [False, True])
def test_forged_huge_header_above_cap(tmp_path, gz):
    data = header(0x0E, [0xFFFFFFF, 0xFFFFFFF, 0xFFFFFFF]) + b"\x00" * 64
    p = write(tmp_path, gzip.compress(data) if gz else data)
    peak = _peak_alloc(lambda: check_bad(p, "above max_bytes"))
    assert peak < 4 << 20


@pytest.mark.parametrize("gz", [False, True])
def test_forged_header_below_cap_allocates_nothing_big(tmp_path, gz):
    # 1 GiB announced, under the default 2 GiB cap, but only 64 bytes present.
    data = header(0x08, [1 << 14, 1 << 14, 4]) + b"\x00" * 64
    p = write(tmp_path, gzip.compress(data) if gz else data)
    # gzip: refused at the header now (1 GiB cannot come out of a 50-byte stream), before decompressing
    peak = _peak_alloc(lambda: check_bad(p, "max_ratio" if gz else "truncated"))
    assert peak < 8 << 20


def test_max_bytes(tmp_path):
    p = tmp_path / "a.idx"
    write_idx(p, np.zeros(100, np.int32))
    assert read_idx(p, max_bytes=400).shape == (100,)
    with pytest.raises(DataFormatError, match="max_bytes=399"):
        read_idx(p, max_bytes=399)
    assert read_idx(p, max_bytes=None).shape == (100,)
    with pytest.raises(ValueError):
        read_idx(p, max_bytes=-1)
    with pytest.raises(TypeError):
        read_idx(p, max_bytes=1.5)


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")
    with pytest.raises(TypeError):
        read_idx(12345.0)
    p = tmp_path / "a.idx"
    write_idx(p, np.zeros(3, np.uint8))
    with open(p, "r", encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        read_idx(f)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutations_raise_only_data_format_error(data):
    """Random corruptions of a valid file (raw or gzip) either still decode
    or raise DataFormatError; never anything else, never a big allocation."""
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    raw = header(0x0B, [3, 4, 5]) + a.astype(">i2").tobytes()
    blob = bytearray(gzip.compress(raw, mtime=0) if data.draw(st.booleans()) else raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "append"]))
        if op == "flip" and blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            blob = blob[: data.draw(st.integers(0, len(blob)))]
        else:
            blob += data.draw(st.binary(max_size=8))
    try:
        out = read_idx(io.BytesIO(bytes(blob)), max_bytes=1 << 20)
    except DataFormatError:
        return
    assert out.nbytes <= 1 << 20


# ---------------------------------------------------------------------------- decompression bombs

def _gzip_bomb(n_payload, announced=None):
    """A gzip IDX file: 1-D uint8 header announcing ``announced`` bytes, then ``n_payload`` zeros,
    compressed chunk by chunk (the test process never holds the payload)."""
    import struct
    import zlib

    header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", n_payload if announced is None else announced)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    parts = [comp.compress(header)]
    zeros = bytes(1 << 20)
    left = n_payload
    while left:
        parts.append(comp.compress(zeros[:min(left, len(zeros))]))
        left -= min(left, len(zeros))
    parts.append(comp.flush())
    return b"".join(parts)


class _BareStream:
    """A bare, non-seekable stream: the compressed size is unknown to the reader."""

    def __init__(self, data):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(n)


def _peak(fn):
    tracemalloc.start()
    try:
        try:
            fn()
        except DataFormatError as exc:
            error = exc
        else:
            error = None
        return error, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", ["path", "bytesio", "stream"])
def test_gzip_bomb_is_refused_with_bounded_memory(tmp_path, source):
    """40 MiB of zeros in a ~40 KB gzip (ratio ~1000): refused, memory bounded by ratio x file size."""
    bomb = _gzip_bomb(40 << 20)
    assert len(bomb) < 100_000
    p = tmp_path / "bomb.idx.gz"
    p.write_bytes(bomb)
    make = {"path": lambda: p, "bytesio": lambda: io.BytesIO(bomb), "stream": lambda: _BareStream(bomb)}[source]
    error, peak = _peak(lambda: read_idx(make()))
    assert error is not None and "max_ratio" in str(error), error
    # before allocating when the size is known; a stream stops at max_ratio x consumed + 1 MiB
    limit = 100 * len(bomb) + (1 << 20) + (2 << 20 if source == "stream" else 0) + 200_000
    assert peak < limit, f"peak {peak} bytes for a {len(bomb)}-byte file"


def test_gzip_within_the_ratio_and_explicit_opt_out_load(tmp_path):
    data = _gzip_bomb(3 << 20)  # ratio ~1000 and 3 MiB > the 1 MiB slack: over the default cap
    with pytest.raises(DataFormatError, match="max_ratio"):
        read_idx(io.BytesIO(data))
    assert read_idx(io.BytesIO(data), max_ratio=None).shape == (3 << 20,)
    assert read_idx(io.BytesIO(data), max_ratio=2000).sum() == 0
    small = _gzip_bomb(100_000)  # tiny files: the 1 MiB slack keeps highly compressible ones loading
    assert read_idx(io.BytesIO(small)).shape == (100_000,)
    real = np.random.default_rng(0).integers(0, 255, (50, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / "r.idx.gz", real)
    np.testing.assert_array_equal(read_idx(tmp_path / "r.idx.gz"), real)


def test_gzip_header_announcing_more_than_the_ratio_is_refused_before_decompressing():
    """A small gzip whose IDX header claims 1 GB (the data is not even there): refused at the header."""
    forged = _gzip_bomb(1000, announced=10 ** 9)
    error, peak = _peak(lambda: read_idx(io.BytesIO(forged), max_bytes=2 * 10 ** 9))
    assert error is not None and "max_ratio" in str(error)
    assert peak < 2 << 20


@pytest.mark.parametrize("bad", [0, 0.5, -1, float("nan"), "10"])
def test_bad_max_ratio(bad):
    with pytest.raises(ValueError, match="max_ratio"):
        read_idx(io.BytesIO(_gzip_bomb(10)), max_ratio=bad)
