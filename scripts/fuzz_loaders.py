#!/usr/bin/env python
"""Fuzz fastnn's file loaders: model/checkpoint files (fastnn.io) and IDX files (fastnn.data.idx).

Usage::

    python scripts/fuzz_loaders.py --seconds 120 [--target model|idx|both] [--engine auto|atheris|hypothesis|random]
    # once per release, >= 1M executions per target, counted in scripts/fuzz_runs.log:
    python scripts/fuzz_loaders.py --engine random --target model --executions 1000000 --seconds 1e9 \
        --record scripts/fuzz_runs.log

The only exceptions allowed to escape a loader are ``ModelFormatError`` (model
and checkpoint files) and ``DataFormatError`` (IDX files). A load that succeeds
must hold only finite weights, buffers and optimizer moments and no negative
variance; restoring into a trainer (one per checkpoint seed) that is refused
must leave the trainer exactly as it was. Anything else --
an IndexError, a MemoryError, an OverflowError from numpy, a struct.error,
a KeyError -- is a *finding*. Inputs that take longer than ``--slow`` seconds
are findings too. Each distinct finding (exception type + innermost fastnn
frame) is saved under ``--findings`` with a traceback, and counted.

Engines
-------
- ``atheris`` (coverage-guided libFuzzer, used when ``pip install atheris``
  worked): the input's first byte picks a mode -- *raw* (the rest of the
  input is the file; libFuzzer mutates it, starting from valid seed files) or
  *structured* (the rest drives :func:`mutate` on a seed file).
- ``hypothesis`` (fallback): random byte strings drive :func:`mutate`.

:func:`mutate` applies 1-4 mutations to a valid seed file: bit/byte flips,
interesting byte values, truncation, appended/inserted/deleted/duplicated
ranges, splices of two seeds, forged length/dimension fields, and (model
files) edits of the parsed JSON header re-packed with a correct length, so
that the deeper checks (tensor table, layer configs, training state) are
reached, not only the JSON parser. IDX seeds are sometimes re-gzipped after
mutation to exercise the compressed path. ``tests/system/test_hostile_files.py``
runs a few seconds of this under hypothesis in CI.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

_PREFIX = struct.Struct("<8sIQ")
_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x22, 0x5B, 0x7B, 0x2C)
_INTERESTING_U32 = (0, 1, 2, 3, 7, 255, 256, 2 ** 16, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1)
_INTERESTING_U64 = (0, 1, 19, 20, 64, 2 ** 20, 2 ** 20 + 1, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64 - 1)
_INTERESTING_FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, -1e-30, 1e38, -3.4e38, 0.0, 1e300)
# JSON values a header edit may put anywhere
_INTERESTING_JSON = (
    None, True, False, 0, -1, 1, 2, 3, 7, 2 ** 31, 2 ** 32 + 1, 2 ** 62, 2 ** 63, 2 ** 64 + 5, -(2 ** 63),
    10 ** 30, 0.5, -0.0, 1e308, 1e-320, "", "float32", "float64", "int64", "object", "O", "<f2", "Dense",
    "Dropout", "BatchNorm", "LayerNorm", "os.system", "builtins.eval", "__import__", "checkpoint", "model",
    "relu", "softmax", "PCG64", "MT19937", "layers.0.W", "optimizer.state", "Adam", "SGD", "\x00", "\udcff",
    [], [0], [-1], [0, 0], [1, 2 ** 62], [2 ** 33, 2 ** 33], [0, 2 ** 64], [1] * 9, [[1]], {}, {"a": 1},
    {"dtype": "float32", "shape": [1], "offsets": [0, 4]},
)


# ---------------------------------------------------------------------------- seeds

def seed_networks():
    """name -> (layers factory, input_shape or None, dtype): small networks that together hold every
    registered layer type (``tests/system/test_parameter_rules.py`` checks that they do: a new layer
    type gets a seed network here, and with it the fuzzers, the hostile-value tests and the rule checks)."""
    import fastnn as fnn

    return {
        "model-f32": (lambda: [fnn.Dense(4, 3, "relu"), fnn.Dense(3, 2)], None, "float32"),
        "model-f64-BatchNorm": (lambda: [fnn.Dense(3, 4, "tanh"), fnn.BatchNorm(4), fnn.Dense(4, 2, "sigmoid")],
                                None, "float64"),
        "model-f64-LayerNorm": (lambda: [fnn.Dense(3, 4, "tanh"), fnn.LayerNorm(4), fnn.Dense(4, 2, "sigmoid")],
                                None, "float64"),
        "model-f64-dropout": (lambda: [fnn.Dense(3, 4, "tanh"), fnn.Dropout(0.5), fnn.Dense(4, 2, "sigmoid")],
                              None, "float64"),
        "model-f32-flatten": (lambda: [fnn.Flatten(), fnn.Dense(6, 3, "leaky_relu", alpha=0.2, l1=0.01, l2=0.01),
                                       fnn.Dense(3, 2, "elu", init="he_uniform")], (2, 3), "float32"),
        "model-f32-conv": (lambda: [fnn.Conv2D(3, 3, padding="same", activation="relu"), fnn.BatchNorm(),
                                    fnn.MaxPool2D(2), fnn.AveragePooling2D(2, strides=1),
                                    fnn.Conv2D(4, 1, use_bias=False), fnn.GlobalAveragePooling2D(), fnn.Dense(2)],
                           (6, 6, 2), "float32"),
        "model-f64-convbn": (lambda: [fnn.Conv2D(3, 3, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu"),
                                      fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(2)], (6, 6, 1), "float64"),
        "model-f32-recurrent": (lambda: [fnn.Masking(), fnn.LSTM(4, return_sequences=True),
                                         fnn.SimpleRNN(3, return_sequences=True),
                                         fnn.GRU(3, return_sequences=True, reset_after=False),
                                         fnn.Bidirectional(fnn.GRU(2, return_sequences=True)),
                                         fnn.TimeDistributed(fnn.Dense(3, "tanh")), fnn.GlobalAveragePooling1D(),
                                         fnn.Dense(2)], (5, 3), "float32"),
        "model-f64-transformer": (lambda: [fnn.Embedding(7, 4, mask_zero=True), fnn.PositionalEncoding(),
                                           fnn.MultiHeadAttention(2, causal=True),
                                           fnn.TransformerBlock(2, 8, dropout=0.1), fnn.GlobalAveragePooling1D(),
                                           fnn.Dense(2)], (6,), "float64"),
    }


def checkpoint_seeds():
    """name -> (layers factory, optimizer factory) of the extra checkpoint seeds: BatchNorm buffers, a
    dropout RNG, every optimizer's state, a schedule and a callback state."""
    import fastnn as fnn

    layers = lambda: [fnn.Dense(3, 4, "relu"), fnn.BatchNorm(), fnn.Dropout(0.25), fnn.Dense(2)]  # noqa: E731
    return {
        "checkpoint-sgd-bn-dropout": (layers, lambda: fnn.SGD(fnn.CosineDecay(0.05, total_steps=20), momentum=0.9)),
        "checkpoint-rmsprop-bn-dropout": (layers, lambda: fnn.RMSprop(1e-2)),
        "checkpoint-adagrad-bn-dropout": (layers, lambda: fnn.Adagrad(0.05)),
    }


def _checkpoint_trainer(name, directory):
    """A fresh trainer of the checkpoint seed ``name`` (the into-trainer oracle restores into it)."""
    import fastnn as fnn

    layers, opt = checkpoint_seeds()[name]
    net = fnn.Network(layers(), input_shape=(3,), seed=2, dtype="float64", backend="reference")
    cb = fnn.ModelCheckpoint(str(Path(directory) / "unused.fnn"), monitor="loss")
    return fnn.Trainer(net, optimizer=opt(), batch_size=16, seed=0, verbose=0, callbacks=[cb])


def build_seed_network(name, seed=1):
    """A fresh network of the seed ``name`` (see :func:`seed_networks`)."""
    import fastnn as fnn

    make, input_shape, dtype = seed_networks()[name]
    return fnn.Network(make(), input_shape=input_shape, seed=seed, dtype=dtype, backend="reference")


def seed_files():
    """name -> (target, bytes): valid files the mutators start from."""
    import numpy as np

    import fastnn as fnn
    from fastnn.data.idx import write_idx

    seeds = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for name in seed_networks():
            build_seed_network(name).save(d / "a.fnn")
            seeds[name] = ("model", (d / "a.fnn").read_bytes())
        net = build_seed_network("model-f32", seed=0)
        rng = np.random.default_rng(0)
        X = rng.random((40, 4)).astype(np.float32)
        y = rng.integers(0, 2, 40)
        tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, seed=0, verbose=0,
                         callbacks=[fnn.ModelCheckpoint(str(d / "unused.fnn"), monitor="loss")])
        tr.fit(X, y, epochs=1)
        fnn.save_checkpoint(d / "c.ckpt", tr, metadata={"k": "v"}, logs={"loss": 0.5})
        seeds["checkpoint-adam"] = ("model", (d / "c.ckpt").read_bytes())
        for name, (layers, opt) in checkpoint_seeds().items():
            tr = _checkpoint_trainer(name, d)
            tr.fit(X[:, :3], y, epochs=1)
            fnn.save_checkpoint(d / "c.ckpt", tr, logs={"loss": 0.5})
            seeds[name] = ("model", (d / "c.ckpt").read_bytes())
        for name, arr in {"idx-u8-3d": rng.integers(0, 256, (3, 4, 5)).astype(np.uint8),
                          "idx-u8-labels": rng.integers(0, 10, 17).astype(np.uint8),
                          "idx-f32-2d": rng.random((3, 2)).astype(np.float32),
                          "idx-i16-1d": np.arange(-3, 4, dtype=np.int16)}.items():
            write_idx(d / "x.idx", arr)
            seeds[name] = ("idx", (d / "x.idx").read_bytes())
        write_idx(d / "x.idx.gz", rng.integers(0, 256, (2, 3, 3)).astype(np.uint8))
        seeds["idx-u8-gz"] = ("idx", (d / "x.idx.gz").read_bytes())
    return seeds


# ---------------------------------------------------------------------------- mutation

class Choices:
    """Deterministic decisions drawn from a byte string (zeros once it runs out)."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def byte(self):
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        return 0

    def below(self, n):
        """An integer in [0, n)."""
        if n <= 1:
            return 0
        k = (max(n - 1, 1).bit_length() + 7) // 8
        v = 0
        for _ in range(k):
            v = (v << 8) | self.byte()
        return v % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def take(self, n):
        return bytes(self.byte() for _ in range(n))


def _json_paths(node, path=()):
    """Every (path, value) in a JSON tree."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, path + (i,))


def _set_path(root, path, value):
    if not path:
        return value
    node = root
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return root


def _mutate_header(data, c):
    """Edit the JSON header of a fastnn container and re-pack it with a correct length."""
    if len(data) < _PREFIX.size:
        return data
    magic, version, hlen = _PREFIX.unpack(data[:_PREFIX.size])
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + hlen])
    except ValueError:
        return data
    paths = list(_json_paths(header))
    path, value = paths[c.below(len(paths))]
    op = c.below(6)
    if op == 0 or not path:
        new = c.pick(_INTERESTING_JSON)
        new = json.loads(json.dumps(new)) if not isinstance(new, str) or new.isprintable() else new
    elif op == 1 and isinstance(value, int) and not isinstance(value, bool):
        new = value + c.pick((-1, 1, -value, value, 2 ** 32, 2 ** 63 - value, 8, -8))
    elif op == 2 and isinstance(value, list):
        new = value[:c.below(len(value) + 1)] + ([c.pick(_INTERESTING_JSON)] if c.below(2) else [])
    elif op == 3 and isinstance(value, dict) and value:
        new = dict(value)
        new.pop(c.pick(sorted(new)))
        if c.below(2):
            new[c.pick(("extra", "__class__", "dtype", "shape", "offsets", "type", "config"))] = \
                c.pick(_INTERESTING_JSON)
    elif op == 4:
        # copy another node of the same file here (e.g. one tensor's entry over another's)
        new = json.loads(json.dumps(paths[c.below(len(paths))][1]))
    else:
        new = c.pick(_INTERESTING_JSON)
    try:
        header = _set_path(header, path, new)
        hb = json.dumps(header, ensure_ascii=c.below(2) == 0).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError, RecursionError):
        return data
    if c.below(2):
        hb += b" " * c.below(64)
    return _PREFIX.pack(magic, version, len(hb)) + hb + data[_PREFIX.size + hlen:]


def _mutate_idx_fields(data, c):
    """Forge the IDX type byte, ndim byte or one dimension."""
    if len(data) < 4 or data[:2] == b"\x1f\x8b":
        return data
    b = bytearray(data)
    op = c.below(3)
    if op == 0:
        b[2] = c.pick((0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF))
    elif op == 1:
        b[3] = c.pick((0, 1, 2, 3, 4, 8, 9, 255))
    else:
        ndim = min(b[3], (len(b) - 4) // 4)
        if ndim:
            i = 4 + 4 * c.below(ndim)
            b[i:i + 4] = struct.pack(">I", c.pick(_INTERESTING_U32))
    return bytes(b)


def _one_mutation(data, c, target, other):
    n = len(data)
    # positions biased to the front, where the prefix and header live
    pos = c.below(min(n, 96)) if c.below(2) and n else c.below(n + 1)
    op = c.below(13)
    if op == 12 and target == "model" and n >= _PREFIX.size:  # a lying value: NaN/Inf/negative in the tensor data
        _, _, hlen = _PREFIX.unpack(data[:_PREFIX.size])
        start = _PREFIX.size + hlen
        if start < n:
            fmt = c.pick(("<f", "<d"))
            size = struct.calcsize(fmt)
            at = start + size * c.below(max(1, (n - start) // size))
            v = c.pick(_INTERESTING_FLOATS)
            value = struct.pack(fmt, v if fmt == "<d" or abs(v) < 3e38 or v != v else float("inf"))
            return data[:at] + value[:max(0, n - at)] + data[at + size:]
        return data
    if op == 0 and n:  # bit flip
        b = bytearray(data)
        b[min(pos, n - 1)] ^= 1 << c.below(8)
        return bytes(b)
    if op == 1 and n:  # interesting byte
        b = bytearray(data)
        b[min(pos, n - 1)] = c.pick(_INTERESTING_BYTES)
        return bytes(b)
    if op == 2:  # truncate
        return data[:pos]
    if op == 3:  # append
        return data + c.take(c.below(16)) * (1 + c.below(3))
    if op == 4:  # insert
        return data[:pos] + c.take(1 + c.below(8)) + data[pos:]
    if op == 5:  # delete a range
        return data[:pos] + data[pos + 1 + c.below(32):]
    if op == 6:  # duplicate a range
        end = min(n, pos + 1 + c.below(64))
        return data[:end] + data[pos:end] + data[end:]
    if op == 7:  # splice with another seed
        cut = c.below(len(other) + 1)
        return data[:pos] + other[cut:]
    if op == 8 and target == "model" and n >= _PREFIX.size:  # forge the header length / version
        magic, version, hlen = _PREFIX.unpack(data[:_PREFIX.size])
        if c.below(3):
            hlen = c.pick(_INTERESTING_U64 + (hlen - 1, hlen + 1, hlen + 8))
        else:
            version = c.pick(_INTERESTING_U32)
        return _PREFIX.pack(magic, version, max(0, min(hlen, 2 ** 64 - 1))) + data[_PREFIX.size:]
    if op in (9, 10):
        return _mutate_header(data, c) if target == "model" else _mutate_idx_fields(data, c)
    if op == 11 and target == "idx":  # (re)compress
        if data[:2] == b"\x1f\x8b":
            try:
                return gzip.decompress(data)
            except Exception:  # noqa: BLE001 - zlib.error, EOFError, BadGzipFile...: keep the bytes
                return data
        return gzip.compress(data, mtime=0)
    return data


def mutate(seed, choices):
    """(target, mutated bytes) from a seed ``(target, bytes)`` and a decision byte string."""
    target, data = seed
    c = Choices(choices)
    other = data[::-1] if c.below(4) == 0 else data
    for _ in range(1 + c.below(4)):
        data = _one_mutation(data, c, target, other)
        if len(data) > 1 << 20:
            data = data[:1 << 20]
    return target, data


# ---------------------------------------------------------------------------- the oracle

def _loaders():
    from fastnn.io.checkpoint import load_checkpoint
    from fastnn.data.idx import read_idx
    from fastnn.errors import DataFormatError, ModelFormatError
    from fastnn.io import load_network, read_header

    return {
        "model": ((load_network, read_header, load_checkpoint, _into_trainer), ModelFormatError),
        "idx": ((read_idx,), DataFormatError),
    }


_LOADERS = None
_TRAINERS = {}


class Finding(Exception):
    """A loader accepted what it must refuse, or changed state while refusing."""


def _check_loaded(result, fn_name):
    """What a successful load promises: finite weights, buffers and optimizer state; no negative variance."""
    import numpy as np

    from fastnn.network import Network

    net = result.get("network") if isinstance(result, dict) else result
    net = net if isinstance(net, Network) else None
    arrays = [] if net is None else [("weights", net.params), ("buffers", net.buffers)]
    if isinstance(result, dict) and result.get("optimizer_state") is not None:
        arrays.append(("optimizer state", result["optimizer_state"]))
    for what, arr in arrays:
        if arr.size and not np.isfinite(arr).all():
            raise Finding(f"{fn_name} accepted non-finite {what}")
    for layer in getattr(net, "layers", ()):
        var = getattr(layer, "buffers", {}).get("running_var") if isinstance(getattr(layer, "buffers", None),
                                                                           dict) else None
        if var is not None and var.size and var.min() < 0:
            raise Finding(f"{fn_name} accepted a negative variance")


def _trainer_state(tr):
    import numpy as np

    opt = tr.optimizer
    return (tr.network.params.tobytes(), tr.network.buffers.tobytes(), tr.epoch, opt.iterations, repr(opt.lr),
            None if opt.state is None else np.asarray(opt.state).tobytes(), repr(tr.rng.bit_generator.state),
            repr([getattr(l, "rng", None) and l.rng.bit_generator.state for l in tr.network.layers]),
            repr([cb.state_dict() for cb in tr.callbacks]))


def _into_trainer(src):
    """load_checkpoint(src, trainer) into a trainer of every checkpoint seed's architecture: a refusal
    (ModelFormatError, or ValueError for a file that does not fit the trainer) must change nothing."""
    import warnings

    from fastnn.io.checkpoint import load_checkpoint

    if not _TRAINERS:
        tmp = tempfile.mkdtemp(prefix="fastnn-fuzz-tr-")
        _TRAINERS.update({name: _checkpoint_trainer(name, tmp) for name in checkpoint_seeds()})
        for tr in _TRAINERS.values():
            tr.optimizer.build(tr.network.n_params, tr.network.dtype)
    result = None
    for name, tr in _TRAINERS.items():
        if hasattr(src, "seek"):
            src.seek(0)
        before = _trainer_state(tr)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = load_checkpoint(src, tr)
        except ValueError as exc:  # ModelFormatError is one; arch/optimizer mismatch is a plain ValueError
            if _trainer_state(tr) != before:
                raise Finding(f"_into_trainer({name}): refused ({type(exc).__name__}) after changing state")
            last = exc
            continue
        _check_loaded(result, f"_into_trainer({name})")
        return result
    raise last


def _where(exc):
    """Innermost traceback frame inside fastnn (or the innermost one), as 'file:line in func'."""
    frames = traceback.extract_tb(exc.__traceback__)
    inner = [f for f in frames if "/fastnn/" in f.filename.replace("\\", "/")] or frames
    f = inner[-1] if inner else None
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}" if f else "?"


def check_one(target, data, via_file=None):
    """Run every loader of ``target`` on ``data``; None if all is well, else a description.

    ``via_file``: a path to write ``data`` to and load from (exercises the real-file
    code paths); default: an in-memory file object.
    """
    global _LOADERS
    if _LOADERS is None:
        _LOADERS = _loaders()
    fns, allowed = _LOADERS[target]
    for fn in fns:
        if via_file is not None:
            Path(via_file).write_bytes(data)
            src = via_file
        else:
            src = io.BytesIO(data)
        try:
            _check_loaded(fn(src), fn.__name__)
        except Finding as exc:
            return f"{fn.__name__}: Finding at {_where(exc)}: {exc}"
        except allowed:
            pass
        except ValueError as exc:
            if fn is not _into_trainer or type(exc) is not ValueError:  # a file for another network
                return f"{fn.__name__}: {type(exc).__name__} at {_where(exc)}: {str(exc)[:200]}"
        except RecursionError as exc:
            return f"{fn.__name__}: RecursionError at {_where(exc)}"
        except Exception as exc:  # noqa: BLE001 - anything else is what we are looking for
            return f"{fn.__name__}: {type(exc).__name__} at {_where(exc)}: {str(exc)[:200]}"
    return None


# ---------------------------------------------------------------------------- driver

class Stats:
    def __init__(self, findings_dir, slow):
        self.execs = 0
        self.findings = {}  # signature -> (count, example file)
        self.findings_dir = Path(findings_dir)
        self.slow = slow
        self.slowest = 0.0
        self.t0 = time.monotonic()

    def record(self, target, data, via_file=None):
        t = time.perf_counter()
        problem = check_one(target, data, via_file)
        dt = time.perf_counter() - t
        self.execs += 1
        self.slowest = max(self.slowest, dt)
        if problem is None and dt > self.slow:
            problem = f"slow input: {dt:.2f} s ({target}, {len(data)} bytes)"
        if problem is not None:
            # "loader: Type at file:line in func: message" -> "loader: Type at file:line in func"
            sig = "slow input" if problem.startswith("slow") else ": ".join(problem.split(": ", 2)[:2])
            count, example = self.findings.get(sig, (0, None))
            if example is None:
                self.findings_dir.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha1(data).hexdigest()[:12]
                example = self.findings_dir / f"{target}-{digest}.bin"
                example.write_bytes(data)
                example.with_suffix(".txt").write_text(problem + "\n")
                print(f"[finding] {problem}  -> {example}", flush=True)
            self.findings[sig] = (count + 1, example)

    def summary(self, engine, target):
        elapsed = time.monotonic() - self.t0
        lines = [f"engine={engine} target={target} executions={self.execs} seconds={elapsed:.1f} "
                 f"exec/s={self.execs / max(elapsed, 1e-9):.0f} slowest={self.slowest * 1000:.1f}ms "
                 f"distinct_findings={len(self.findings)} "
                 f"total_findings={sum(c for c, _ in self.findings.values())}"]
        for sig, (count, example) in sorted(self.findings.items()):
            lines.append(f"  {count:6d} x {sig}  (example: {example})")
        return "\n".join(lines)


def _targets(target):
    return ("model", "idx") if target == "both" else (target,)


def run_hypothesis(seconds, target, stats, seed_data):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    names = sorted(n for n, (t, _) in seed_data.items() if t in _targets(target))
    tmp = Path(tempfile.mkdtemp(prefix="fastnn-fuzz-"))
    deadline = time.monotonic() + seconds

    @settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(names), st.binary(min_size=1, max_size=64), st.integers(0, 31))
    def one(name, choices, file_roll):
        if time.monotonic() > deadline:
            return
        t, data = mutate(seed_data[name], choices)
        stats.record(t, data, tmp / "f.bin" if file_roll == 0 else None)

    while time.monotonic() < deadline:
        one()


def run_random(seconds, target, stats, seed_data, executions=None, seed=0):
    """Plain seeded random decisions into :func:`mutate`: no shrinking or database, so about twice the
    executions per second of the hypothesis engine (the way to reach 1M executions per target)."""
    import numpy as np

    names = sorted(n for n, (t, _) in seed_data.items() if t in _targets(target))
    tmp = Path(tempfile.mkdtemp(prefix="fastnn-fuzz-"))
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (executions is None or stats.execs < executions):
        name = names[int(rng.integers(len(names)))]
        t, data = mutate(seed_data[name], rng.bytes(int(rng.integers(1, 65))))
        stats.record(t, data, tmp / "f.bin" if rng.integers(32) == 0 else None)


def run_atheris(seconds, target, stats, corpus_dir):
    import atheris

    seed_data = seed_files()
    names = sorted(n for n, (t, _) in seed_data.items() if t in _targets(target))
    tmp = Path(tempfile.mkdtemp(prefix="fastnn-fuzz-"))
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):  # raw-mode seeds: mode byte (< 128: raw), target byte, the file
        t, data = seed_data[name]
        (corpus_dir / f"seed-{name}").write_bytes(bytes([i, 0 if t == "model" else 1]) + data)
    deadline = time.monotonic() + seconds

    def test_one_input(buf):
        if time.monotonic() > deadline:
            print(stats.summary("atheris", target), flush=True)
            os._exit(1 if stats.findings else 0)
        if len(buf) < 2:
            return
        if buf[0] < 128:  # raw: libFuzzer mutates whole files
            t = _targets(target)[buf[1] % len(_targets(target))]
            data = buf[2:]
        else:  # structured: the rest drives the mutators on a seed
            t, data = mutate(seed_data[names[buf[1] % len(names)]], buf[2:])
        stats.record(t, data, tmp / "f.bin" if buf[0] % 32 == 0 else None)

    atheris.Setup([sys.argv[0], str(corpus_dir), f"-max_total_time={int(seconds) + 5}", "-timeout=20",
                   "-rss_limit_mb=4096", "-print_final_stats=1",
                   f"-artifact_prefix={stats.findings_dir}/"], test_one_input)
    stats.findings_dir.mkdir(parents=True, exist_ok=True)
    atheris.Fuzz()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--target", choices=("model", "idx", "both"), default="both")
    ap.add_argument("--engine", choices=("auto", "atheris", "hypothesis", "random"), default="auto")
    ap.add_argument("--executions", type=int, default=None,
                    help="stop after this many executions (random engine; e.g. 1000000 per target per release)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random engine")
    ap.add_argument("--record", default=None,
                    help="append the summary line (date, commit, target, executions, findings) to this file, "
                         "e.g. scripts/fuzz_runs.log")
    ap.add_argument("--findings", default=os.path.join(tempfile.gettempdir(), "fastnn-fuzz-findings"))
    ap.add_argument("--corpus", default=None, help="atheris corpus directory (default: a temp dir)")
    ap.add_argument("--slow", type=float, default=2.0, help="seconds above which an input is a finding")
    args = ap.parse_args(argv)
    commit = _commit()
    engine = args.engine
    if engine in ("auto", "atheris"):
        try:
            import atheris  # noqa: F401
        except ImportError:
            if engine == "atheris":
                raise
            engine = "hypothesis"
        else:
            engine = "atheris"
    stats = Stats(args.findings, args.slow)
    if engine == "atheris":
        import atheris

        # coverage instrumentation for the loaders only (not the Numba kernels)
        with atheris.instrument_imports(include=["fastnn.io", "fastnn._fileio", "fastnn.data.idx",
                                                 "fastnn.layers", "fastnn.network", "json"]):
            import fastnn.io.checkpoint  # noqa: F401
            import fastnn.data.idx  # noqa: F401
            import fastnn.io  # noqa: F401
        run_atheris(args.seconds, args.target, stats, args.corpus or tempfile.mkdtemp(prefix="fastnn-corpus-"))
    else:
        import signal

        def stop(signum, frame):  # SIGTERM/SIGINT end the run with its summary (and record), not silently
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)
        try:
            if engine == "random":
                run_random(args.seconds, args.target, stats, seed_files(), args.executions, args.seed)
            else:
                run_hypothesis(args.seconds, args.target, stats, seed_files())
        except KeyboardInterrupt:
            print("interrupted: the counts below are those run so far", flush=True)
    summary = stats.summary(engine, args.target)
    print(summary, flush=True)
    if args.record:
        _record(args.record, summary, commit)
    return 1 if stats.findings else 0


def _commit():
    """The checked-out commit (with '+dirty' for uncommitted changes), read when the run starts."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--", "fastnn", "scripts"],
                               capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"
    return head + ("+dirty" if dirty else "")


def _record(path, summary, commit):
    import datetime

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{stamp} commit={commit} {summary.splitlines()[0]}\n")


if __name__ == "__main__":
    sys.exit(main())
