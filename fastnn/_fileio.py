"""File access shared by :mod:`fastnn.io` and :mod:`fastnn.data`: safe opening for reading, atomic write,
directory fsync, stale-temp cleanup.

A leaf module: it imports nothing from fastnn.
"""
import contextlib
import os
import stat
import tempfile

__all__ = ["open_regular", "atomic_write", "fsync_dir", "remove_stale_temps"]

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _kind(mode):
    for test, what in _KINDS:
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path, error):
    """Open ``path`` for binary reading if it is a regular file, else raise ``error(message)`` at once.

    A FIFO, device or socket would make a plain ``open``/``read`` block forever
    (or read an endless stream): the path is opened non-blocking, checked with
    ``fstat`` on the open descriptor (no check-then-open race) and only then
    switched back to blocking reads. The message names the path and what it is.
    """
    path = os.fspath(path)
    shown = os.fsdecode(path)
    try:
        mode = os.stat(path).st_mode  # a socket cannot be opened at all: say what it is first
    except OSError:
        mode = None  # missing etc.: os.open below raises the usual FileNotFoundError/PermissionError
    if mode is not None and not stat.S_ISREG(mode):
        raise error(f"{shown!r} is {_kind(mode)}, not a regular file: refusing to read it")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced between the stat and the open
            raise error(f"{shown!r} is {_kind(mode)}, not a regular file: refusing to read it")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def fsync_dir(directory):
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
    fsync_dir(directory)
    remove_stale_temps(directory, prefix)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temps(directory, prefix):
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
