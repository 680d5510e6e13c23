"""Crash safety of saves: a process SIGKILLed while saving never leaves a broken file at the path.

The trials come from ``scripts/crash_test.py`` (run it with ``--trials 200``
or more); here a handful run in CI. Temp files a killed save leaves behind are
ignored by loading; whether the next save removes them is checked separately.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.io import atomic_write

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="needs fork and SIGKILL (POSIX)")


def _crash_module():
    spec = importlib.util.spec_from_file_location("crash_test", REPO / "scripts" / "crash_test.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sigkill_while_saving_never_breaks_the_file(tmp_path):
    ct = _crash_module()
    summary = ct.run_trials(6, tmp_path, size="small", seed=1, log=lambda *a: None)
    assert summary["failures"] == []
    assert summary["trials"] == 6
    # the file at the path is always a whole one; the kills really interrupted saves
    assert summary["versions_saved"] + summary["killed_before_first_save"] > 0


def test_sigkill_of_a_fresh_interpreter(tmp_path):
    """The same with a spawned child (no fork): one trial."""
    ct = _crash_module()
    summary = ct.run_trials(1, tmp_path, size="small", seed=2, spawn=True, max_delay=0.05,
                            log=lambda *a: None)
    assert summary["failures"] == []


def _kill_inside_atomic_write(path):
    """A child that dies (SIGKILL) halfway through writing ``path``: leaves a temp file behind."""
    code = textwrap.dedent(f"""
        import os, signal
        from fastnn.io import atomic_write
        with atomic_write({str(path)!r}) as f:
            f.write(b"half a new mod")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def _small_net(seed):
    return fnn.Network([fnn.Dense(3, 4, "relu"), fnn.Dense(4, 2)], seed=seed, backend="reference")


def test_leftover_temp_file_is_ignored_by_loading(tmp_path):
    path = tmp_path / "m.fnn"
    old = _small_net(0)
    old.save(path)
    _kill_inside_atomic_write(path)
    leftovers = [n for n in os.listdir(tmp_path) if n != "m.fnn"]
    assert leftovers, "the killed writer should have left its temp file"
    np.testing.assert_array_equal(fnn.Network.load(path).params, old.params)
    # a second save still works next to the leftover, and loads as the new one
    new = _small_net(1)
    new.save(path)
    np.testing.assert_array_equal(fnn.Network.load(path).params, new.params)


def test_next_save_removes_temp_files_of_killed_writers(tmp_path):
    path = tmp_path / "m.fnn"
    _small_net(0).save(path)
    _kill_inside_atomic_write(path)
    _kill_inside_atomic_write(path)
    assert len(os.listdir(tmp_path)) == 3
    _small_net(1).save(path)
    assert os.listdir(tmp_path) == ["m.fnn"]


def test_save_does_not_remove_a_live_writers_temp_file(tmp_path):
    """Whatever cleanup exists must spare the temp file of a save still in progress (here: in this process)."""
    path = tmp_path / "m.fnn"
    _small_net(0).save(path)
    with atomic_write(path) as f:
        f.write(b"x")
        _small_net(1).save(path)  # another save to the same path while this one is open
        names = [n for n in os.listdir(tmp_path) if n != "m.fnn"]
        assert len(names) == 1, names  # our temp file is still there
        f.seek(0)
        f.truncate()
        f.write(open(path, "rb").read())  # finish with valid bytes
    np.testing.assert_array_equal(fnn.Network.load(path).params, _small_net(1).params)
    assert os.listdir(tmp_path) == ["m.fnn"]
