#!/usr/bin/env python
"""Crash-safety test of fastnn's atomic saves: SIGKILL a process that keeps saving, then load.

Usage::

    python scripts/crash_test.py --trials 200 [--spawn] [--size small|medium|large] [--dir DIR]

A child process saves version after version of one network to **one path**,
alternating ``fastnn.save_checkpoint(path, trainer)`` (even versions: weights,
Adam state, epoch and step counters all encode the version) and
``Network.save(path)`` (odd versions). After a random delay the parent
SIGKILLs it -- wherever it is: serializing, writing, fsync'ing, renaming --
and then checks that the path loads (``Network.load``; for checkpoints also
``load_checkpoint``, into a fresh trainer too) as exactly the last version
the child reported saved, or the one it was saving. A missing, truncated,
mixed or unloadable file is a failure. Temp files a killed save leaves next to
the path are counted; loading must ignore them. At the end, one more save
shows whether fastnn cleans them up.

The child is forked from this process (fast: the trials run at the speed of
the saves) or, with ``--spawn``, started as a fresh interpreter (realistic,
about a second per trial for the imports). A SIGKILL of the process leaves
the kernel's page cache intact: this tests atomicity against process death,
not against power loss (which ``fsync`` of the file and directory addresses).

Exit status 0 when every trial passed.
"""
import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

SIZES = {"small": (16, 32, 4), "medium": (128, 256, 10), "large": (784, 512, 10)}
FILE_NAME = "run.ckpt"


# ---------------------------------------------------------------------------- versions

def make_trainer(size="medium"):
    import numpy as np

    import fastnn as fnn

    n_in, hidden, n_out = SIZES[size]
    # every kind of file content: weights, BatchNorm buffers, a dropout RNG, Adam moments, counters
    net = fnn.Network([fnn.Dense(n_in, hidden, "relu"), fnn.BatchNorm(), fnn.Dropout(0.1), fnn.Dense(hidden, n_out)],
                      seed=0, backend="reference")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=32, seed=0, verbose=0)
    trainer.optimizer.build(net.n_params, net.dtype)
    base = np.random.default_rng(123).standard_normal(net.n_params).astype(net.dtype)
    return trainer, base


DROPOUT = 2  # index of the Dropout layer of make_trainer's network


def expected_key(version):
    """The dropout mask key a file of ``version`` must restore."""
    import numpy as np

    import fastnn as fnn

    layer = fnn.Dropout(0.1)
    layer.rng = np.random.default_rng(version)
    return layer.key


def expected_params(base, version):
    import numpy as np

    return base + np.asarray(version, base.dtype)


def set_version(trainer, base, version):
    """Make every saved quantity encode ``version``."""
    import numpy as np

    trainer.network.params[...] = expected_params(base, version)
    trainer.network.buffers[...] = version
    trainer.network.layers[DROPOUT].rng = np.random.default_rng(version)
    trainer.optimizer.state[...] = version
    trainer.optimizer.iterations = version
    trainer.epoch = version


def save_version(trainer, base, path, version):
    import fastnn as fnn

    set_version(trainer, base, version)
    if version % 2 == 0:
        fnn.save_checkpoint(path, trainer, metadata={"version": str(version)})
    else:
        trainer.network.save(path)


def check_file(path, base, allowed, size):
    """Load ``path``; return (version found, None) or (None, problem)."""
    import numpy as np

    import fastnn as fnn
    from fastnn.io import read_header

    try:
        net = fnn.Network.load(path)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the bug this test looks for
        return None, f"Network.load failed: {type(exc).__name__}: {exc}"
    found = [v for v in allowed if np.array_equal(net.params, expected_params(base, v))]
    if not found:
        return None, (f"weights match none of the versions {sorted(allowed)} "
                      f"(params[0] - base[0] = {float(net.params[0] - base[0])})")
    version = found[0]
    if not np.all(net.buffers == version):
        return None, f"version {version}: the BatchNorm buffers belong to another version (mixed file)"
    kind = read_header(path)["kind"]
    if kind != ("checkpoint" if version % 2 == 0 else "model"):
        return None, f"version {version} is a {kind} file, expected the other kind"
    if kind == "checkpoint":
        info = fnn.load_checkpoint(path)
        if info["epoch"] != version or info["iterations"] != version \
                or not np.all(info["optimizer_state"] == version) \
                or info["metadata"].get("version") != str(version) \
                or info["network"].layers[DROPOUT].key != expected_key(version):
            return None, f"checkpoint {version}: training state does not match its weights (mixed file)"
        fresh, _ = make_trainer(size)
        fnn.load_checkpoint(path, fresh)
        if fresh.epoch != version or not np.array_equal(fresh.network.params, net.params) \
                or not np.array_equal(fresh.network.buffers, net.buffers) \
                or fresh.network.layers[DROPOUT].key != expected_key(version):
            return None, f"checkpoint {version}: restoring into a trainer gave other values"
    return version, None


def temp_files(directory):
    return sorted(n for n in os.listdir(directory) if n != FILE_NAME)


# ---------------------------------------------------------------------------- the child

def child_loop(path, first_version, size, out_fd):
    """Save versions first_version, first_version+1, ... forever, reporting each one done on ``out_fd``."""
    trainer, base = make_trainer(size)
    os.write(out_fd, b"ready\n")
    v = first_version
    while True:
        save_version(trainer, base, path, v)
        os.write(out_fd, b"%d\n" % v)
        v += 1


def _read_all(fd, proc=None):
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def _wait_ready(fd, timeout):
    buf = b""
    end = time.monotonic() + timeout
    while b"ready\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("the child did not start in time")
        b = os.read(fd, 65536)
        if not b:
            raise RuntimeError(f"the child exited before starting: {buf!r}")
        buf += b
    return buf.split(b"ready\n", 1)[1]


def run_trial(path, first_version, size, delay, spawn):
    """Start a saving child, SIGKILL it after ``delay`` s of saving; return the versions it reported."""
    r, w = os.pipe()
    if spawn:
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(path), str(first_version), size,
                                 str(w)], pass_fds=(w,))
        os.close(w)
        pid = proc.pid
    else:
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(r)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                child_loop(path, first_version, size, w)
            finally:
                os._exit(1)
        os.close(w)
    try:
        rest = _wait_ready(r, 120)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    finally:
        if spawn:
            proc.wait()
        else:
            os.waitpid(pid, 0)
    rest += _read_all(r)
    os.close(r)
    return [int(x) for x in rest.split()]


# ---------------------------------------------------------------------------- driver

def run_trials(n_trials, directory=None, size="medium", seed=0, spawn=False, max_delay=None, log=print):
    """Run the trials; return a summary dict (``failures`` lists what went wrong)."""
    import fastnn as fnn

    directory = Path(directory or tempfile.mkdtemp(prefix="fastnn-crash-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    rng = random.Random(seed)
    trainer, base = make_trainer(size)
    t = time.perf_counter()
    for v in (0, 1):
        save_version(trainer, base, path, v)
    save_s = (time.perf_counter() - t) / 2
    on_disk = 1
    if max_delay is None:
        max_delay = max(0.002, 6 * save_s)
    summary = {"trials": 0, "failures": [], "save_seconds": save_s, "max_delay": max_delay,
               "killed_before_first_save": 0, "loaded_in_flight_version": 0, "loaded_last_reported": 0,
               "trials_leaving_temp_files": 0, "max_temp_files": 0, "versions_saved": 0, "spawn": spawn,
               "size": size, "file_bytes": path.stat().st_size}
    for trial in range(n_trials):
        delay = rng.uniform(0, max_delay)
        first = on_disk + 1
        temps_before = set(temp_files(directory))
        reported = run_trial(path, first, size, delay, spawn)
        allowed = {reported[-1], reported[-1] + 1} if reported else {on_disk, first}
        version, problem = check_file(path, base, allowed, size)
        summary["trials"] += 1
        new_temps = set(temp_files(directory)) - temps_before
        summary["trials_leaving_temp_files"] += bool(new_temps)
        summary["max_temp_files"] = max(summary["max_temp_files"], len(temp_files(directory)))
        if problem is not None:
            summary["failures"].append(f"trial {trial} (delay {delay * 1000:.1f} ms, reported "
                                       f"{reported[-3:]}): {problem}")
            log(f"FAIL {summary['failures'][-1]}")
            fnn_path_ok = False
        else:
            fnn_path_ok = True
            summary["killed_before_first_save"] += not reported
            if reported and version == reported[-1] + 1:
                summary["loaded_in_flight_version"] += 1
            elif reported:
                summary["loaded_last_reported"] += 1
            summary["versions_saved"] += len(reported)
        if fnn_path_ok:
            on_disk = version
        else:  # start again from a known state
            save_version(trainer, base, path, on_disk + 1000)
            on_disk += 1000
        if (trial + 1) % 50 == 0:
            log(f"{trial + 1} trials, {len(summary['failures'])} failures, "
                f"{len(temp_files(directory))} temp files next to the path")
    leftovers_before = temp_files(directory)
    save_version(trainer, base, path, on_disk + 1)  # one clean save: does it remove stale temp files?
    leftovers_after = temp_files(directory)
    summary["temp_files_at_end"] = len(leftovers_before)
    summary["temp_files_after_one_more_save"] = len(leftovers_after)
    summary["example_temp_file"] = leftovers_before[0] if leftovers_before else None
    _, problem = check_file(path, base, {on_disk + 1}, size)
    if problem:
        summary["failures"].append(f"final save: {problem}")
    summary["directory"] = str(directory)
    return summary


def main(argv=None):
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, path, first, size, fd = sys.argv
        child_loop(path, int(first), size, int(fd))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--size", choices=sorted(SIZES), default="medium")
    ap.add_argument("--spawn", action="store_true", help="fresh interpreter per trial instead of fork")
    ap.add_argument("--dir", default=None, help="directory for the checkpoint (default: a new temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay", type=float, default=None,
                    help="longest delay (s) before the kill; default: 6 x one save")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    summary = run_trials(args.trials, args.dir, args.size, args.seed, args.spawn, args.max_delay)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=1))
    ok = not summary["failures"]
    print(f"{'PASS' if ok else 'FAIL'}: {summary['trials']} SIGKILL trials, {len(summary['failures'])} broken "
          f"loads; {summary['trials_leaving_temp_files']} kills left a temp file; "
          f"{summary['temp_files_after_one_more_save']} temp files remain after the next save")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
