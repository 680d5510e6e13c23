"""Tests for fastnn.data.mnist: real MNIST, lookup order, verification and
downloads (the network is always replaced by a fake)."""
import gzip
import hashlib
import io
import os
import struct
import time
import urllib.error

import numpy as np
import pytest

from fastnn.errors import DataFormatError
from fastnn.data import mnist
from fastnn.data.idx import write_idx
from fastnn.data.mnist import load_mnist, cache_dir, DatasetSpec, DATASETS

STEMS = {
    "train_images": ("train-images", "idx3-ubyte"),
    "train_labels": ("train-labels", "idx1-ubyte"),
    "test_images": ("t10k-images", "idx3-ubyte"),
    "test_labels": ("t10k-labels", "idx1-ubyte"),
}


def fname(role, style="gz"):
    stem, suffix = STEMS[role]
    return {
        "gz": f"{stem}-{suffix}.gz",
        "raw": f"{stem}-{suffix}",
        "dot": f"{stem}.{suffix}",
        "dotgz": f"{stem}.{suffix}.gz",
    }[style]


def fake_arrays(tag, n_train=12, n_test=6):
    """Small MNIST-like arrays; pixel [0, 0] of every image is ``tag`` so a
    test can tell which directory the loader used."""
    rng = np.random.default_rng(tag)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        X[:, 0, 0] = tag
        out[f"{split}_images"] = X
        out[f"{split}_labels"] = (np.arange(n) % 10).astype(np.uint8)
    return out


def make_fake(directory, tag, style="gz", roles=tuple(STEMS), arrays=None):
    directory.mkdir(parents=True, exist_ok=True)
    arrays = arrays or fake_arrays(tag)
    for role in roles:
        # compress according to the name, like real distributions
        write_idx(directory / fname(role, style), arrays[role])
    return arrays


def tag_of(result):
    (X, _), (Xt, _) = result
    assert X[0, 0] == Xt[0, 0]
    return int(X[0, 0])


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No FASTNN_DATA, a private cache, and a network that always fails
    (recording the URLs tried)."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    calls = []

    def no_network(url, timeout):
        calls.append(url)
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(mnist, "_urlopen", no_network)
    return calls


def load(**kw):
    kw.setdefault("verify", False)
    kw.setdefault("scale", False)
    return load_mnist(**kw)


# ------------------------------------------------------------- real MNIST

@pytest.fixture(scope="module")
def real(mnist_dir):
    t = time.perf_counter()
    data = load_mnist(mnist_dir)  # verify=True: checksums must pass
    return data, time.perf_counter() - t


def test_real_mnist_shapes_dtypes(real):
    ((X, y), (Xt, yt)), seconds = real
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == np.float32 and Xt.dtype == np.float32
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert y.dtype == np.int64 and yt.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10)) == set(np.unique(yt))
    assert y[:5].tolist() == [5, 0, 4, 1, 9] and yt[:5].tolist() == [7, 2, 1, 0, 4]
    # class balance of the canonical split
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert seconds < 10


def test_real_mnist_raw_matches_scaled(real, mnist_dir):
    ((X, y), _), _ = real
    (Xr, yr), (Xtr, _) = load_mnist(mnist_dir, scale=False, flatten=False, verify=False)
    assert Xr.dtype == np.uint8 and Xr.shape == (60000, 28, 28, 1) and Xtr.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(yr, y)
    np.testing.assert_array_equal(Xr[:100].reshape(100, -1) / np.float32(255), X[:100])


def test_real_download_verification(mnist_dir, tmp_path, monkeypatch):
    """The registry's checksums accept the real files: the canonical .gz by
    MD5 (t10k-labels) and a re-compressed one by the SHA-256 of its content
    (train-images here)."""
    served = {}

    def serve(url, timeout):
        served[url] = True
        return open(mnist_dir / os.path.basename(url), "rb")

    spec = DATASETS["mnist"]
    monkeypatch.setattr(mnist, "_urlopen", serve)
    for role in ("test_labels", "train_images"):
        url = spec.mirrors[0] + fname(role)
        tmp = mnist._fetch(url, str(tmp_path), role, spec)
        assert os.path.getsize(tmp) == os.path.getsize(mnist_dir / fname(role))
        os.unlink(tmp)
    assert len(served) == 2


# ------------------------------------------------------------- lookup order

def test_explicit_path_beats_env_and_cache(offline, tmp_path, monkeypatch):
    make_fake(tmp_path / "explicit", 1)
    make_fake(tmp_path / "env" / "mnist", 2)
    make_fake(tmp_path / "xdg" / "fastnn" / "mnist", 3)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "env"))
    assert tag_of(load(path=tmp_path / "explicit")) == 1
    assert tag_of(load(path=str(tmp_path / "explicit"))) == 1
    assert tag_of(load()) == 2
    monkeypatch.delenv("FASTNN_DATA")
    assert tag_of(load()) == 3
    assert offline == []


def test_env_may_hold_files_directly_or_in_subdir(offline, tmp_path, monkeypatch):
    make_fake(tmp_path / "flat", 4, style="raw")
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "flat"))
    assert tag_of(load()) == 4
    make_fake(tmp_path / "flat" / "mnist", 5)  # subdir wins over the root
    assert tag_of(load()) == 5


def test_env_without_files_falls_through_to_cache(offline, tmp_path, monkeypatch):
    (tmp_path / "emptyenv").mkdir()
    make_fake(tmp_path / "xdg" / "fastnn" / "mnist", 6)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "emptyenv"))
    assert tag_of(load()) == 6
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "does-not-exist"))
    assert tag_of(load()) == 6


def test_explicit_path_subdirs(offline, tmp_path):
    make_fake(tmp_path / "root" / "mnist", 7)
    assert tag_of(load(path=tmp_path / "root")) == 7
    make_fake(tmp_path / "tv" / "MNIST" / "raw", 8, style="raw")  # torchvision layout
    assert tag_of(load(path=tmp_path / "tv")) == 8


@pytest.mark.parametrize("style", ["gz", "raw", "dot", "dotgz"])
def test_file_name_variants(offline, tmp_path, style):
    make_fake(tmp_path / "d", 9, style=style)
    assert tag_of(load(path=tmp_path / "d")) == 9


def test_gzip_content_under_raw_name(offline, tmp_path):
    d = tmp_path / "d"
    arrays = fake_arrays(10)
    d.mkdir()
    for role in STEMS:
        write_idx(d / fname(role, "raw"), arrays[role], compress=True)
    assert tag_of(load(path=d)) == 10


def test_cache_dir_follows_xdg(offline, tmp_path, monkeypatch):
    assert cache_dir() == str(tmp_path / "xdg" / "fastnn" / "mnist")
    assert cache_dir("fashion-mnist") == str(tmp_path / "xdg" / "fastnn" / "fashion_mnist")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home" / ".cache" / "fastnn" / "mnist")


def test_other_kinds_need_their_subdir(offline, tmp_path, monkeypatch):
    make_fake(tmp_path / "env", 11)  # MNIST files directly in FASTNN_DATA
    make_fake(tmp_path / "env" / "fashion_mnist", 12)
    make_fake(tmp_path / "xdg" / "fastnn" / "kmnist", 13)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "env"))
    assert tag_of(load()) == 11
    assert tag_of(load(kind="fashion_mnist")) == 12
    assert tag_of(load(kind="Fashion-MNIST")) == 12
    # not the MNIST files sitting in the FASTNN_DATA root:
    assert tag_of(load(kind="kmnist")) == 13
    with pytest.raises(ValueError, match="unknown dataset kind 'emnist'"):
        load(kind="emnist")


# ------------------------------------------------------------- not found

def test_missing_explicit_path_no_download(offline, tmp_path, monkeypatch):
    make_fake(tmp_path / "xdg" / "fastnn" / "mnist", 14)  # not used: path is authoritative
    with pytest.raises(FileNotFoundError) as exc:
        load(path=tmp_path / "nowhere", download=False)
    msg = str(exc.value)
    assert "nowhere" in msg and "FASTNN_DATA" in msg and "download=False" in msg
    assert offline == []


def test_nothing_anywhere_fails_fast_and_clearly(offline, tmp_path):
    t = time.perf_counter()
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist()
    assert time.perf_counter() - t < 2
    msg = str(exc.value)
    assert cache_dir() in msg and "FASTNN_DATA" in msg and "offline (test)" in msg
    assert "train-images-idx3-ubyte" in msg
    # each mirror tried once, then the loader gave up
    assert len(offline) == len(DATASETS["mnist"].mirrors)
    assert all(u.endswith("train-images-idx3-ubyte.gz") for u in offline)
    assert not (tmp_path / "xdg").exists()  # nothing created when offline


def test_partial_directory_is_reported(offline, tmp_path):
    make_fake(tmp_path / "d", 15, roles=("train_images", "train_labels"))
    with pytest.raises(FileNotFoundError, match="found 2 of 4 files"):
        load(path=tmp_path / "d", download=False)


# ------------------------------------------------------------- verification

def test_checksum_mismatch(offline, tmp_path):
    make_fake(tmp_path / "d", 16)
    with pytest.raises(DataFormatError, match="does not match the known MNIST.*verify=False"):
        load_mnist(tmp_path / "d")  # verify=True by default
    assert tag_of(load(path=tmp_path / "d", verify=False)) == 16


def test_structure_checked_even_without_verify(offline, tmp_path):
    arrays = fake_arrays(17)
    arrays["train_labels"][3] = 10
    make_fake(tmp_path / "a", 17, arrays=arrays)
    with pytest.raises(DataFormatError, match="label 10"):
        load(path=tmp_path / "a")

    arrays = fake_arrays(18)
    arrays["test_labels"] = arrays["test_labels"][:-1]
    make_fake(tmp_path / "b", 18, arrays=arrays)
    with pytest.raises(DataFormatError, match="6 images .* 5 labels"):
        load(path=tmp_path / "b")

    arrays = fake_arrays(19)
    arrays["train_images"] = arrays["train_images"].reshape(12, -1)
    make_fake(tmp_path / "c", 19, arrays=arrays)
    with pytest.raises(DataFormatError, match="shape"):
        load(path=tmp_path / "c")

    make_fake(tmp_path / "d", 20)
    (tmp_path / "d" / fname("test_images")).write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataFormatError, match="t10k-images"):
        load(path=tmp_path / "d")


def test_output_options(offline, tmp_path):
    arrays = make_fake(tmp_path / "d", 21)
    (X, y), (Xt, yt) = load_mnist(tmp_path / "d", verify=False)
    assert X.shape == (12, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, arrays["train_images"].reshape(12, -1) / np.float32(255))
    (X, _), _ = load_mnist(tmp_path / "d", verify=False, flatten=False, dtype=np.float64)
    assert X.shape == (12, 28, 28, 1) and X.dtype == np.float64
    (X, _), _ = load_mnist(tmp_path / "d", verify=False, scale=False)
    assert X.dtype == np.uint8 and X.shape == (12, 784)
    with pytest.raises(TypeError, match="floating"):
        load_mnist(tmp_path / "d", verify=False, dtype=np.int32)


# ------------------------------------------------------------- downloads

def _tiny_spec(arrays, mirrors=("https://a.test/", "https://b.test/"), checks=True):
    raw = {role: _idx_bytes(arr) for role, arr in arrays.items()}
    sha = {r: hashlib.sha256(b).hexdigest() for r, b in raw.items()} if checks else {}
    return DatasetSpec(name="Tiny", subdirs=("tiny",), mirrors=mirrors, sha256=sha), raw


def _idx_bytes(arr):
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


@pytest.fixture
def tiny(offline, monkeypatch):
    """A registered 'tiny' dataset and a fake network serving it."""
    arrays = fake_arrays(30)
    spec, raw = _tiny_spec(arrays)
    monkeypatch.setitem(DATASETS, "tiny", spec)
    server = {"calls": [], "routes": {}}
    for role, data in raw.items():
        server["routes"]["https://b.test/" + fname(role)] = gzip.compress(data)

    def fake_urlopen(url, timeout):
        server["calls"].append(url)
        assert timeout == mnist.DOWNLOAD_TIMEOUT
        if url.startswith("https://a.test/"):
            raise urllib.error.URLError("a.test is down")
        if url not in server["routes"]:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(server["routes"][url])

    monkeypatch.setattr(mnist, "_urlopen", fake_urlopen)
    return server


def test_download_into_cache_with_mirror_fallback(tiny, tmp_path):
    result = load_mnist(kind="tiny", scale=False)
    assert tag_of(result) == 30
    cache = tmp_path / "xdg" / "fastnn" / "tiny"
    assert sorted(os.listdir(cache)) == sorted(fname(r) for r in STEMS)  # no temp files
    # the dead mirror was tried once, then skipped
    assert sum(u.startswith("https://a.test/") for u in tiny["calls"]) == 1
    # second call: served from the cache, no network
    n = len(tiny["calls"])
    assert tag_of(load_mnist(kind="tiny", scale=False)) == 30
    assert len(tiny["calls"]) == n


def test_download_only_missing_files(tiny, tmp_path):
    arrays = fake_arrays(30)
    make_fake(tmp_path / "xdg" / "fastnn" / "tiny", 30, roles=("train_images", "train_labels"),
              arrays=arrays)
    load_mnist(kind="tiny")
    assert all("t10k" in u for u in tiny["calls"])


def test_download_into_explicit_path(tiny, tmp_path):
    target = tmp_path / "new" / "dir"
    assert tag_of(load_mnist(target, kind="tiny", scale=False)) == 30
    assert len(os.listdir(target)) == 4


def test_corrupt_download_rejected(tiny, tmp_path):
    url = "https://b.test/" + fname("test_labels")
    good = gzip.decompress(tiny["routes"][url])
    tiny["routes"][url] = gzip.compress(good[:-1] + b"\x09")
    with pytest.raises(FileNotFoundError, match="checksum"):
        load_mnist(kind="tiny")
    cache = tmp_path / "xdg" / "fastnn" / "tiny"
    assert fname("test_labels") not in os.listdir(cache)
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp")]


def test_garbage_gzip_download_rejected(tiny, tmp_path):
    url = "https://b.test/" + fname("train_images")
    tiny["routes"][url] = b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"\xff" * 40
    with pytest.raises(FileNotFoundError, match="not a valid gzip file"):
        load_mnist(kind="tiny")


def test_unwritable_download_dir(tiny, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="cannot write"):
        load_mnist(not_a_dir, kind="tiny")


def test_oversized_download_rejected(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(FileNotFoundError, match="more than 100 bytes"):
        load_mnist(kind="tiny")
    assert not [f for f in os.listdir(tmp_path / "xdg" / "fastnn" / "tiny") if f.endswith(".tmp")]


def test_download_without_checksums_checks_structure(tiny, monkeypatch):
    spec, _ = _tiny_spec(fake_arrays(30), checks=False)
    monkeypatch.setitem(DATASETS, "tiny", spec)
    url = "https://b.test/" + fname("train_labels")
    good = tiny["routes"][url]
    tiny["routes"][url] = gzip.compress(b"not an idx file")
    with pytest.raises(FileNotFoundError, match="bad magic"):
        load_mnist(kind="tiny")
    tiny["routes"][url] = good
    assert tag_of(load_mnist(kind="tiny", scale=False)) == 30


def test_real_urlopen_gets_the_timeout(monkeypatch):
    seen = {}

    def fake(url, timeout):
        seen["timeout"] = timeout
        raise urllib.error.URLError("no")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", fake)
    with pytest.raises(urllib.error.URLError):
        mnist._urlopen("https://x.test/", mnist.DOWNLOAD_TIMEOUT)
    assert 0 < seen["timeout"] <= 10
