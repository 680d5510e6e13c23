"""MNIST and MNIST-format datasets (Fashion-MNIST, Kuzushiji-MNIST).

Where the files are looked for, in order:

1. ``path`` passed to :func:`load_mnist`: ``path/<kind>/`` or ``path`` itself.
   It is authoritative: if given, no other place is searched (missing
   files are downloaded *into* it when ``download=True``);
2. the ``FASTNN_DATA`` environment variable: ``$FASTNN_DATA/<kind>/``, or for
   MNIST also ``$FASTNN_DATA`` itself;
3. the user cache, ``$XDG_CACHE_HOME/fastnn/<kind>`` (default
   ``~/.cache/fastnn/<kind>``);
4. a download from public mirrors into that cache, checked against known
   checksums and written atomically.

Any of the usual file names is accepted: ``train-images-idx3-ubyte``,
``train-images.idx3-ubyte``, either with or without ``.gz`` (compression is
detected from the content). Checksums are SHA-256 digests of the
*uncompressed* content, so they hold whatever gzip level was used.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataFormatError, NotRegularFileError
from .._fileio import fsync_dir
from .idx import _read_idx

__all__ = ["load_mnist", "DATASETS", "DatasetSpec", "cache_dir"]

logger = logging.getLogger(__name__)

#: Seconds a download waits for a mirror to connect or send data. Short on
#: purpose: offline machines should hear "no" quickly.
DOWNLOAD_TIMEOUT = 5.0
#: Largest file accepted from a mirror (the largest MNIST .gz is ~10 MB).
MAX_DOWNLOAD_BYTES = 128 << 20
#: Largest uncompressed IDX payload accepted when loading.
MAX_PAYLOAD_BYTES = 512 << 20

_ROLES = ("train_images", "train_labels", "test_images", "test_labels")
_STEMS = {
    "train_images": ("train-images", "idx3-ubyte"),
    "train_labels": ("train-labels", "idx1-ubyte"),
    "test_images": ("t10k-images", "idx3-ubyte"),
    "test_labels": ("t10k-labels", "idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Where to find and how to check one MNIST-format dataset.

    Attributes
    ----------
    name : str
        Display name for messages.
    subdirs : tuple of str
        Directory names the dataset may sit in under a data root; the first
        is the cache directory name.
    mirrors : tuple of str
        Base URLs (ending in ``/``) serving ``<stem>-<suffix>.gz`` files.
    sha256 : dict
        role -> SHA-256 of the uncompressed file, where known.
    gz_md5 : dict
        role -> MD5 of the ``.gz`` the mirrors serve, where known (only used
        to accept downloads).
    n_classes : int
        Labels must lie in ``[0, n_classes)``.
    """

    name: str
    subdirs: tuple
    mirrors: tuple
    sha256: dict = field(default_factory=dict)
    gz_md5: dict = field(default_factory=dict)
    n_classes: int = 10


#: Registry of the datasets :func:`load_mnist` knows, keyed by ``kind``.
DATASETS = {
    "mnist": DatasetSpec(
        name="MNIST",
        subdirs=("mnist", "MNIST", "MNIST/raw"),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        gz_md5={
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion_mnist": DatasetSpec(
        name="Fashion-MNIST",
        subdirs=("fashion_mnist", "fashion-mnist", "FashionMNIST", "FashionMNIST/raw"),
        mirrors=(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            # http only, but every file is checked against its MD5 below.
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        gz_md5={
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": DatasetSpec(
        name="Kuzushiji-MNIST",
        subdirs=("kmnist", "KMNIST", "KMNIST/raw"),
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        gz_md5={
            "train_images": "bdb82020997e1d708af4cf47b453dcf7",
            "train_labels": "e144d726b3acfaa3e44228e80efcd344",
            "test_images": "5c965bf0a639b31b8f53240b1b52f4d7",
            "test_labels": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fashion": "fashion_mnist", "k-mnist": "kmnist"}


def _spec(kind):
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, got {type(kind).__name__}")
    key = kind.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {', '.join(sorted(DATASETS))}")
    return key, DATASETS[key]


def cache_dir(kind="mnist"):
    """Directory where downloaded files of ``kind`` are kept.

    ``$XDG_CACHE_HOME/fastnn/<kind>`` when ``XDG_CACHE_HOME`` is set to an
    absolute path, else ``~/.cache/fastnn/<kind>``. Nothing is created.
    """
    key, _ = _spec(kind)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastnn", key)


def _candidates(role):
    stem, suffix = _STEMS[role]
    # Uncompressed names first: they load faster when both are present.
    names = (f"{stem}-{suffix}", f"{stem}.{suffix}")
    return names + tuple(n + ".gz" for n in names)


def _find_in(directory):
    """role -> path of the files present in ``directory`` (may be partial)."""
    found = {}
    if not os.path.isdir(directory):
        return found
    for role in _ROLES:
        for name in _candidates(role):
            p = os.path.join(directory, name)
            if os.path.isfile(p):
                found[role] = p
                break
            if os.path.lexists(p) and os.path.exists(p):  # a FIFO, device, socket or directory by that name
                raise NotRegularFileError(f"{p!r} is not a regular file: refusing to read it as {role}")
    return found


def _search(directories, tried):
    """First directory holding all four files -> (dir, files), else None."""
    for d in directories:
        files = _find_in(d)
        if len(files) == len(_ROLES):
            return d, files
        tried.append((d, len(files)))
    return None


def _urlopen(url, timeout):
    # Indirection so tests can replace the network.
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https/http mirrors only)


def _gunzip_sha256(path):
    h = hashlib.sha256()
    with gzip.open(path, "rb") as g:
        for chunk in iter(lambda: g.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _LocalWriteError(Exception):
    """The download directory cannot be written: no mirror can help."""


def _fetch(url, dest_dir, role, spec):
    """Download ``url`` into a temp file in ``dest_dir``, verify it, and
    return the temp path. Raises on any failure (temp file removed).

    The URL is opened before anything touches the disk, so an offline
    attempt leaves no empty directories behind.
    """
    with _urlopen(url, DOWNLOAD_TIMEOUT) as resp:
        try:
            os.makedirs(dest_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=".tmp")
        except OSError as exc:
            raise _LocalWriteError(f"cannot write to {dest_dir!r}: {exc}") from exc
        try:
            md5 = hashlib.md5(usedforsecurity=False)
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise DataFormatError(f"{url} sent more than {MAX_DOWNLOAD_BYTES} bytes")
                    md5.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _verify_download(tmp, url, role, spec, md5.hexdigest())
            return tmp
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _verify_download(tmp, url, role, spec, md5_hex):
    # Accept the file if the compressed bytes are the known release, or if
    # the uncompressed content is (a mirror may re-compress); with no
    # checksum known at all, check that it is a well-formed IDX file.
    if spec.gz_md5.get(role) == md5_hex:
        return
    if role in spec.sha256:
        try:
            ok = _gunzip_sha256(tmp) == spec.sha256[role]
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"{url} is not a valid gzip file: {exc}") from exc
        if ok:
            return
    elif not spec.gz_md5.get(role):
        _read_idx(tmp, max_bytes=MAX_PAYLOAD_BYTES)
        return
    raise DataFormatError(f"{url} failed checksum verification")


def _download(spec, dest_dir, present):
    """Download the files missing from ``present`` into ``dest_dir``.

    Returns role -> path for all four files. Raises FileNotFoundError with
    the reasons when some file cannot be had from any mirror.
    """
    files = dict(present)
    dead = set()  # mirrors that failed at the network level: skip them
    for role in _ROLES:
        if role in files:
            continue
        stem, suffix = _STEMS[role]
        fname = f"{stem}-{suffix}.gz"
        errors = []
        for base in spec.mirrors:
            if base in dead:
                errors.append(f"{base}: skipped (unreachable)")
                continue
            url = base + fname
            logger.info("downloading %s", url)
            try:
                tmp = _fetch(url, dest_dir, role, spec)
            except _LocalWriteError as exc:
                raise FileNotFoundError(f"download of {fname} failed: {exc}") from None
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                dead.add(base)
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            except (DataFormatError, EOFError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            final = os.path.join(dest_dir, fname)
            os.replace(tmp, final)
            fsync_dir(dest_dir)
            files[role] = final
            break
        else:
            raise FileNotFoundError("download of " + fname + " failed: " + "; ".join(errors))
    return files


def _not_found_message(spec, key, tried, reason):
    names = ", ".join(f"{_STEMS[r][0]}-{_STEMS[r][1]}[.gz]" for r in _ROLES)
    lines = [f"{spec.name} files not found ({names})."]
    for d, n in tried:
        lines.append(f"  looked in {d}" + (f" (found {n} of 4 files)" if n else ""))
    lines.append(f"  {reason}")
    lines.append(
        f"Put the four files in {cache_dir(key)}, or set FASTNN_DATA to a directory "
        f"holding them in a '{spec.subdirs[0]}/' subdirectory"
        + (" (or directly)" if key == "mnist" else "")
        + ", or pass path=... to load_mnist."
    )
    return "\n".join(lines)


def _locate(path, key, spec, download):
    """Resolve the four files of ``key``; returns role -> path."""
    tried = []
    if path is not None:
        root = os.path.expanduser(os.fspath(path))
        if os.path.exists(root) and not os.path.isdir(root) and not os.path.isfile(root):
            # a FIFO, device or socket: say so at once, never open it
            raise NotRegularFileError(f"load_mnist path {root!r} is neither a directory nor a regular file")
        # Dataset subdirectories first, so a data root holding MNIST files
        # next to a fashion_mnist/ folder still gives the right kind.
        dirs = [os.path.join(root, s) for s in spec.subdirs] + [root]
        hit = _search(dirs, tried)
        if hit:
            return hit[1]
        if not download:
            raise FileNotFoundError(
                _not_found_message(spec, key, tried, "download=False: not downloading.")
            )
        try:
            return _download(spec, root, _find_in(root))
        except FileNotFoundError as exc:
            raise FileNotFoundError(_not_found_message(spec, key, tried, str(exc))) from None

    env = os.environ.get("FASTNN_DATA")
    if env:
        root = os.path.expanduser(env)
        dirs = [os.path.join(root, s) for s in spec.subdirs]
        if key == "mnist":  # the brief layout: FASTNN_DATA may hold MNIST itself
            dirs.append(root)
        hit = _search(dirs, tried)
        if hit:
            return hit[1]

    cache = cache_dir(key)
    hit = _search([cache], tried)
    if hit:
        return hit[1]
    if not download:
        raise FileNotFoundError(
            _not_found_message(spec, key, tried, "download=False: not downloading.")
        )
    try:
        return _download(spec, cache, _find_in(cache))
    except FileNotFoundError as exc:
        raise FileNotFoundError(_not_found_message(spec, key, tried, str(exc))) from None


def _load_file(path, role, spec, verify):
    expected = spec.sha256.get(role) if verify else None
    hasher = hashlib.sha256() if expected else None
    arr = _read_idx(path, max_bytes=MAX_PAYLOAD_BYTES, hasher=hasher)
    if hasher is not None and hasher.hexdigest() != expected:
        raise DataFormatError(
            f"{path!r} does not match the known {spec.name} {role.replace('_', ' ')} "
            f"(sha256 of the uncompressed content is {hasher.hexdigest()}, expected "
            f"{expected}); the file is corrupt or from another dataset. Delete it to "
            f"re-download, or pass verify=False to load it anyway."
        )
    return arr


def _check_pair(images, labels, files, split, spec):
    """Structural checks, always done: they are cheap and keep bad labels
    away from compiled kernels that do no bounds checks."""
    ipath, lpath = files[f"{split}_images"], files[f"{split}_labels"]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(
            f"{ipath!r} should hold uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} array of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataFormatError(
            f"{lpath!r} should hold uint8 labels of shape (n,), "
            f"got {labels.dtype} array of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataFormatError(
            f"{split} set: {len(images)} images in {ipath!r} but {len(labels)} labels in {lpath!r}"
        )
    if len(labels) and int(labels.max()) >= spec.n_classes:
        raise DataFormatError(
            f"{lpath!r} holds label {int(labels.max())}; {spec.name} labels are 0..{spec.n_classes - 1}"
        )


def load_mnist(path=None, *, kind="mnist", flatten=True, scale=True, dtype=np.float32,
               verify=True, download=True):
    """Load MNIST (or Fashion-MNIST / Kuzushiji-MNIST) as numpy arrays.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the four IDX files, directly or in a subdirectory
        named after ``kind`` (e.g. ``mnist/``). When given, nothing else is
        searched. When omitted: ``$FASTNN_DATA``, then the user cache (see
        :func:`cache_dir`), then a download into the cache.
    kind : {"mnist", "fashion_mnist", "kmnist"}, optional
        Which dataset (see :data:`DATASETS`).
    flatten : bool, optional
        Images as ``(n, 784)`` rows (default) or NHWC images ``(n, 28, 28, 1)`` for
        convolutional networks (``Network(..., input_shape=(28, 28, 1))``).
    scale : bool, optional
        If True (default), images are ``dtype`` in ``[0, 1]`` (pixel / 255);
        if False, the raw ``uint8`` pixels (``dtype`` is then ignored).
    dtype : floating dtype, optional
        Type of scaled images, float32 by default.
    verify : bool, optional
        Check the SHA-256 of each file's uncompressed content where known
        (MNIST: all four files; ~0.1 s). Structure (shapes, types, label
        range) is always checked.
    download : bool, optional
        Download missing files from public mirrors (into ``path`` if given,
        else the cache). Each download is checksum-verified and written
        atomically.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of numpy.ndarray
        Images as described above; labels ``int64`` of shape ``(n,)``, in
        ``[0, 10)``, ready to index classes.

    Raises
    ------
    FileNotFoundError
        If the files are not found and cannot be downloaded; the message
        lists where it looked and where to put the files.
    fastnn.errors.DataFormatError
        If a file is malformed or fails verification.

    Examples
    --------
    >>> (X, y), (X_test, y_test) = load_mnist()   # doctest: +SKIP
    >>> X.shape, X.dtype, y.dtype                  # doctest: +SKIP
    ((60000, 784), dtype('float32'), dtype('int64'))
    """
    key, spec = _spec(kind)
    if scale:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type when scale=True, got {dtype}")
    files = _locate(path, key, spec, download)
    arrays = {role: _load_file(files[role], role, spec, verify) for role in _ROLES}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        _check_pair(images, labels, files, split, spec)
        if flatten:
            images = images.reshape(len(images), -1)
        else:  # NHWC with one channel, what Conv2D takes (issue 11)
            images = images.reshape(*images.shape[:3], 1)
        if scale:
            X = images.astype(dtype)
            X /= dtype.type(255)
        else:
            X = images
        out.append((X, labels.astype(np.int64)))
    return tuple(out)
