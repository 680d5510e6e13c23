"""Paths that are not regular files, and file objects of the wrong kind: every loader refuses them at once.

A FIFO, a device or a socket would make a plain ``open``/``read`` block forever
(or read an endless stream). Each loader runs in a watchdog thread: a loader
that blocks fails the test instead of hanging the suite (the FIFO is then
opened for writing, which releases the blocked reader).
"""
import io
import os
import socket
import sys
import threading

import numpy as np
import pytest

import fastnn as fnn
from fastnn.data.idx import read_idx, write_idx
from fastnn.errors import DataFormatError, FastnnError, ModelFormatError, NotRegularFileError, ParameterError
from fastnn.io import load_network, read_header

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and Unix sockets (POSIX)")

LOADERS = {
    "Network.load": fnn.Network.load,
    "load_network": load_network,
    "read_header": read_header,
    "load_checkpoint": fnn.load_checkpoint,
    "read_idx": read_idx,
}
WATCHDOG_S = 10


def _release(path):
    """Unblock a reader stuck in open()/read() of the FIFO ``path``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def _call_watched(fn, arg, fifo=None):
    box = {}

    def target():
        try:
            fn(arg)
        except BaseException as exc:  # noqa: BLE001 - the test checks the type
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(WATCHDOG_S)
    if t.is_alive():
        if fifo is not None:
            _release(fifo)
            t.join(5)
        return "blocked"
    return box.get("error")


def _special(tmp_path, kind):
    path = tmp_path / f"special-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        return path, s
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"
    return path, None


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory", "device"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_non_regular_path_is_refused_at_once(tmp_path, kind, loader):
    if kind == "device" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    path, keep = _special(tmp_path, kind)
    try:
        error = _call_watched(LOADERS[loader], path, fifo=path if kind == "fifo" else None)
    finally:
        if keep is not None:
            keep.close()
    assert error != "blocked", f"{loader} blocked on a {kind}"
    assert isinstance(error, NotRegularFileError), f"{loader} on a {kind}: {type(error).__name__}: {error}"
    assert isinstance(error, (ModelFormatError if loader != "read_idx" else DataFormatError))
    assert isinstance(error, OSError) and isinstance(error, FastnnError)
    assert str(path) in str(error)


def test_load_mnist_refuses_a_fifo_in_the_data_directory(tmp_path):
    rng = np.random.default_rng(0)
    for stem, arr in (("train-images-idx3-ubyte", rng.integers(0, 255, (4, 28, 28), dtype=np.uint8)),
                      ("train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8)),
                      ("t10k-labels-idx1-ubyte", np.arange(2, dtype=np.uint8))):
        write_idx(tmp_path / stem, arr)
    fifo = tmp_path / "t10k-images-idx3-ubyte"
    os.mkfifo(fifo)
    error = _call_watched(lambda p: fnn.data.load_mnist(path=p, download=False, verify=False), tmp_path, fifo)
    assert error != "blocked"
    assert isinstance(error, NotRegularFileError), error
    assert str(fifo) in str(error)


def test_file_object_on_a_pipe_is_refused_by_the_model_loaders():
    """Model files are read with seeks: a file object on a pipe is refused, not read until it blocks."""
    r, w = os.pipe()
    try:
        with os.fdopen(r, "rb", closefd=False) as f:
            for name in ("Network.load", "load_checkpoint", "read_header"):
                error = _call_watched(LOADERS[name], f)
                assert isinstance(error, NotRegularFileError), (name, error)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_text_mode_file_object_is_a_named_error(tmp_path, loader):
    path = tmp_path / "f.bin"
    if loader == "read_idx":
        write_idx(path, np.arange(6, dtype=np.uint8))
    else:
        net = fnn.Network([fnn.Dense(2, 2)], seed=0)
        tr = fnn.Trainer(net, verbose=0)
        tr.optimizer.build(net.n_params, net.dtype)
        fnn.save_checkpoint(path, tr)
    with open(path, "r", encoding="latin-1") as f:
        with pytest.raises(ParameterError, match="text mode"):
            LOADERS[loader](f)
    # and a path that is not a path at all
    with pytest.raises(ParameterError):
        LOADERS[loader](12345)


def test_regular_files_still_load(tmp_path):
    net = fnn.Network([fnn.Dense(2, 3, "relu"), fnn.Dense(3, 2)], seed=0)
    net.save(tmp_path / "m.fnn")
    np.testing.assert_array_equal(fnn.Network.load(tmp_path / "m.fnn").params, net.params)
    with open(tmp_path / "m.fnn", "rb") as f:
        np.testing.assert_array_equal(fnn.Network.load(f).params, net.params)
    write_idx(tmp_path / "x.idx", np.arange(5, dtype=np.int16))
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx"), np.arange(5))
    np.testing.assert_array_equal(read_idx(io.BytesIO((tmp_path / "x.idx").read_bytes())), np.arange(5))
    link = tmp_path / "link.fnn"
    link.symlink_to(tmp_path / "m.fnn")  # a symlink to a regular file is a regular file
    fnn.Network.load(link)


def test_load_mnist_refuses_a_special_file_as_its_path(tmp_path):
    fifo = tmp_path / "data"
    os.mkfifo(fifo)
    for download in (False, True):
        error = _call_watched(lambda p: fnn.data.load_mnist(path=p, download=download), fifo, fifo)
        assert isinstance(error, NotRegularFileError) and str(fifo) in str(error), error
