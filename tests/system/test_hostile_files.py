"""Hostile and malformed model files: every one is refused with ModelFormatError and nothing else.

Beyond the error type, each load is watched for side effects a malicious file
could cause: no module imported (``sys.modules`` unchanged), no file created
(directory listings unchanged, the pickle marker absent) and no allocation
beyond the file's size (``tracemalloc`` peak). A short, derandomized
hypothesis fuzz run (``test_fuzz_short``) mutates valid model, checkpoint and
IDX files with the mutators of ``scripts/fuzz_loaders.py``.
"""
import gc
import importlib.util
import io
import json
import os
import pickle
import struct
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.errors import DataFormatError, ModelFormatError
from fastnn.io import MAGIC, MAX_HEADER_BYTES

REPO = Path(__file__).resolve().parents[2]
PREFIX = struct.Struct("<8sIQ")
#: Extra bytes (beyond the file's size) a refused load may allocate: JSON parsing, error messages.
ALLOC_SLACK = 256 * 1024


# ---------------------------------------------------------------------------- building blocks

class _Boom:
    """Unpickling this creates ``marker`` (``open(marker, 'w')``): a pickle-based loader would run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _valid_model_bytes(tmp_path, dtype="float32"):
    net = fnn.Network([fnn.Dense(4, 3, "relu"), fnn.Dense(3, 2)], seed=0, dtype=dtype, backend="reference")
    path = tmp_path / "_valid.fnn"
    net.save(path)
    raw = path.read_bytes()
    path.unlink()
    return raw


def _split(raw):
    """(header dict, tensor data bytes) of a valid file."""
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    return json.loads(raw[PREFIX.size:PREFIX.size + hlen]), raw[PREFIX.size + hlen:]


def _pack(header, data=b"", *, hlen=None, version=1, magic=MAGIC):
    """A container around ``header`` (dict, or raw bytes used as is)."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    return PREFIX.pack(magic, version, len(hb) if hlen is None else hlen) + hb + data


def _with(raw, mutate, data=None):
    """Re-pack ``raw`` after ``mutate(header)``; ``data`` replaces the tensor bytes if given."""
    header, tensor_bytes = _split(raw)
    mutate(header)
    return _pack(header, tensor_bytes if data is None else data)


def _set_layer_type(name):
    def mutate(h):
        h["network"]["layers"][0]["type"] = name
    return mutate


def _set_tensor(name, **fields):
    def mutate(h):
        h["tensors"][name].update(fields)
    return mutate


def _npy_bytes(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _dup_key_header(raw):
    """The valid header's text with a second, conflicting 'kind' key."""
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    text = raw[PREFIX.size:PREFIX.size + hlen].decode().rstrip()
    return text[:-1] + ',"kind":"checkpoint"}'


def _dup_tensor_header(raw):
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    text = raw[PREFIX.size:PREFIX.size + hlen].decode().rstrip()
    # repeat the first tensor entry inside the "tensors" object
    key = '"layers.0.W":{"dtype":"float32","shape":[4,3],"offsets":[0,48]}'
    assert key in text
    return text.replace(key, key + "," + key, 1)


def _hostile_corpus(tmp_path, marker):
    """name -> file bytes. Built from a valid 2-layer float32 model (tensors 48+12+24+8 = 92 bytes)."""
    raw = _valid_model_bytes(tmp_path)
    header, data = _split(raw)
    assert len(data) == 92
    boom = pickle.dumps(_Boom(marker), protocol=4)
    # sanity: the payload really is hostile -- unpickling an identical one (other marker) creates a file
    probe = Path(tmp_path) / "probe-created-by-unpickling"
    pickle.loads(pickle.dumps(_Boom(probe), protocol=4)).close()
    assert probe.exists()
    probe.unlink()
    corpus = {
        # --- other serialization formats, some hostile
        "pickle payload (__reduce__ creates a file)": boom,
        "pickle payload behind the fastnn magic": _pack(boom),
        "pickle payload as tensor data (dtype object)": _pack(
            dict(header, tensors=dict(header["tensors"], **{"layers.1.b": {
                "dtype": "object", "shape": [1], "offsets": [84, 84 + len(boom)]}})), data[:84] + boom),
        "object-dtype .npy (pickled object inside)": _npy_bytes(np.array([_Boom(marker)], dtype=object),
                                                               allow_pickle=True),
        "plain float32 .npy": _npy_bytes(np.arange(23, dtype=np.float32)),
        "plain .npz": _npz_bytes(W=np.ones((4, 3), np.float32), b=np.zeros(3, np.float32)),
        "zip with a pickle inside": _zip_bytes({"model.pkl": boom}),
        # --- headers naming Python things
        "layer type os.system": _with(raw, _set_layer_type("os.system")),
        "layer type builtins.eval": _with(raw, _set_layer_type("builtins.eval")),
        "layer type __import__": _with(raw, _set_layer_type("__import__")),
        "layer type fully qualified class": _with(raw, _set_layer_type("fastnn.layers.dense.Dense")),
        "layer type of an importable module": _with(raw, _set_layer_type("antigravity")),
        "layer type base class Layer": _with(raw, _set_layer_type("Layer")),
        "layer type dunder attribute": _with(raw, _set_layer_type("Dense.__init__")),
        "unknown layer type Conv3D": _with(raw, _set_layer_type("Conv3D")),  # Conv2D is registered (issue 11)
        "layer config smuggles a class": _with(raw, lambda h: h["network"]["layers"][0]["config"].update(
            activation={"py/object": "os.system", "__reduce__": ["os.system", ["touch x"]]})),
        "layer config names a callable activation": _with(raw, lambda h: h["network"]["layers"][0]["config"]
                                                         .update(activation="os.system")),
        "unknown top-level key with code": _with(raw, lambda h: h.update(__reduce__="os.system")),
        # --- container structure
        "empty file": b"",
        "magic only": MAGIC,
        "header length with no header": PREFIX.pack(MAGIC, 1, 556),
        "header length over the cap": PREFIX.pack(MAGIC, 1, MAX_HEADER_BYTES + 1) + b"{}",
        "header length 2**64-1": PREFIX.pack(MAGIC, 1, 2 ** 64 - 1) + b"{}",
        "header length zero": PREFIX.pack(MAGIC, 1, 0) + data,
        "unsupported version": _pack(header, data, version=2 ** 32 - 1),
        "non-UTF-8 header": _pack(b'{"kind": "model\xff\xfe"}'),
        "UTF-16 header": _pack(json.dumps(header).encode("utf-16"), data),
        "non-JSON header": _pack(b"kind = 'model'  # TOML, not JSON", data),
        "JSON header is a list": _pack(b"[1, 2, 3]", data),
        "JSON header with NaN": _pack(json.dumps(dict(header, fastnn_version=float("nan"))).encode(), data),
        "JSON header with Infinity weight offset": _pack(
            json.dumps(header).replace("[0,48]", "[0, Infinity]").replace("[0, 48]", "[0, Infinity]").encode(),
            data),
        "JSON nested 100000 deep": _pack(b"[" * 100_000 + b"]" * 100_000),
        "JSON integer with 5000 digits": _pack(('{"kind": ' + "9" * 5000 + "}").encode()),
        "duplicate JSON keys (top level)": _pack(_dup_key_header(raw).encode(), data),
        "duplicate JSON keys (tensor table)": _pack(_dup_tensor_header(raw).encode(), data),
        # --- tensor table
        "overlapping tensor offsets": _with(raw, _set_tensor("layers.0.b", offsets=[40, 52])),
        "hole between tensors": _with(raw, lambda h: (_set_tensor("layers.1.W", offsets=[64, 88])(h),
                                                      _set_tensor("layers.1.b", offsets=[88, 96])(h)),
                                      data + bytes(4)),
        "trailing bytes": raw + b"\x00" * 7,
        "trailing pickle": raw + boom,
        "file too short for its tensors": raw[:-5],
        "file cut inside the header": raw[:PREFIX.size + 40],
        "shape byte size overflows 64 bits": _with(raw, _set_tensor("layers.0.W", shape=[2 ** 33, 2 ** 33])),
        "shape byte size wraps to the real size mod 2**64": _with(
            raw, _set_tensor("layers.0.W", shape=[2 ** 62 + 12])),  # (2**62+12)*4 = 2**64 + 48
        "shape with 2**64 dims and a zero": _with(raw, _set_tensor("layers.0.W", shape=[0, 2 ** 64 + 1])),
        "negative shape": _with(raw, _set_tensor("layers.0.W", shape=[-4, -3])),
        "boolean shape": _with(raw, _set_tensor("layers.0.W", shape=[True, 3])),
        "float offsets": _with(raw, _set_tensor("layers.0.W", offsets=[0.0, 48.0])),
        "negative offsets": _with(raw, _set_tensor("layers.0.W", offsets=[-48, 0])),
        "too many dimensions": _with(raw, _set_tensor("layers.0.W", shape=[1] * 40 + [4, 3])),
        "unknown dtype object": _with(raw, _set_tensor("layers.0.b", dtype="object")),
        "unknown dtype float16": _with(raw, _set_tensor("layers.0.b", dtype="float16")),
        "unknown dtype big-endian >f4": _with(raw, _set_tensor("layers.0.b", dtype=">f4")),
        "unknown dtype numpy type string O": _with(raw, _set_tensor("layers.0.b", dtype="O")),
        "unknown network dtype": _with(raw, lambda h: h["network"].update(dtype="complex128")),
        "missing tensor": _with(raw, lambda h: h["tensors"].pop("layers.1.b"), data[:84]),
        "extra tensor": _with(raw, lambda h: h["tensors"].update(
            {"__class__": {"dtype": "float32", "shape": [1], "offsets": [92, 96]}}), data + bytes(4)),
        # --- forged huge architectures (must fail on size, before allocating anything)
        "huge Dense claimed by a tiny file": _with(raw, lambda h: (
            h["network"]["layers"][0]["config"].update(n_in=10 ** 6, n_out=10 ** 6),
            h["tensors"]["layers.0.W"].update(shape=[10 ** 6, 10 ** 6], offsets=[0, 4 * 10 ** 12]))),
        "huge Dense, consistent offsets, 2**62 inputs": _with(raw, lambda h: (
            h["network"]["layers"][0]["config"].update(n_in=2 ** 62),
            h["tensors"]["layers.0.W"].update(shape=[2 ** 62, 3], offsets=[0, 12 * 2 ** 62]))),
        "huge LayerNorm claimed by a tiny file": _with(raw, lambda h: (
            h["network"]["layers"].insert(1, {"type": "LayerNorm", "config": {"n_units": 10 ** 9}}))),
        # --- files that lie about their values (issue 15): structure valid, values impossible
        "NaN weight": _with(raw, lambda h: None, np.float32(np.nan).tobytes() + data[4:]),
        "Inf bias": _with(raw, lambda h: None, data[:84] + np.float32(-np.inf).tobytes() + data[88:]),
        "alpha the constructor refuses": _with(raw, lambda h: h["network"]["layers"][0]["config"].update(
            activation="leaky_relu", alpha="0.1")),
        "width the constructor refuses": _with(raw, lambda h: h["network"]["layers"][1]["config"].update(
            n_out=-2)),
        "init the constructor refuses": _with(raw, lambda h: h["network"]["layers"][0]["config"].update(
            init="os.system")),
    }
    return corpus


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


#: the stable phrase (fastnn.io docstring) each case must be refused with: the right check caught it
EXPECTED_PHRASE = {
    "JSON header is a list": "invalid header", "JSON header with Infinity weight offset": "non-finite number",
    "JSON header with NaN": "non-finite number", "JSON integer with 5000 digits": "not valid JSON",
    "JSON nested 100000 deep": "not valid JSON", "UTF-16 header": "not valid UTF-8",
    "boolean shape": "invalid header", "duplicate JSON keys (tensor table)": "duplicate key 'layers.0.W'",
    "duplicate JSON keys (top level)": "duplicate key 'kind'", "empty file": "truncated",
    "extra tensor": "unexpected tensor", "file cut inside the header": "truncated",
    "file too short for its tensors": "truncated", "float offsets": "invalid header",
    "header length 2**64-1": "header length", "header length over the cap": "header length",
    "header length with no header": "truncated", "header length zero": "header length",
    "hole between tensors": "gap between tensors", "huge Dense claimed by a tiny file": "tensor too large",
    "huge Dense, consistent offsets, 2**62 inputs": "tensor too large",
    "huge LayerNorm claimed by a tiny file": "invalid layer",
    "layer config names a callable activation": "invalid layer", "layer config smuggles a class": "invalid layer",
    "layer type __import__": "unknown layer type", "layer type base class Layer": "unknown layer type",
    "layer type builtins.eval": "unknown layer type", "layer type dunder attribute": "unknown layer type",
    "layer type fully qualified class": "unknown layer type", "layer type of an importable module":
    "unknown layer type", "layer type os.system": "unknown layer type", "magic only": "truncated",
    "missing tensor": "missing tensor", "negative offsets": "tensor extent", "negative shape": "invalid header",
    "non-JSON header": "not valid JSON", "non-UTF-8 header": "not valid UTF-8",
    "object-dtype .npy (pickled object inside)": "bad magic", "overlapping tensor offsets": "overlapping tensors",
    "pickle payload (__reduce__ creates a file)": "bad magic",
    "pickle payload as tensor data (dtype object)": "unknown dtype 'object'",
    "pickle payload behind the fastnn magic": "not valid UTF-8", "plain .npz": "bad magic",
    "plain float32 .npy": "bad magic", "shape byte size overflows 64 bits": "tensor too large",
    "shape byte size wraps to the real size mod 2**64": "tensor too large",
    "shape with 2**64 dims and a zero": "tensor extent", "too many dimensions": "invalid header",
    "trailing bytes": "trailing bytes", "trailing pickle": "trailing bytes",
    "unknown dtype big-endian >f4": "unknown dtype", "unknown dtype float16": "unknown dtype",
    "unknown dtype numpy type string O": "unknown dtype", "unknown dtype object": "unknown dtype",
    "unknown layer type Conv3D": "unknown layer type", "unknown network dtype": "unknown dtype",
    "unknown top-level key with code": "unexpected key", "unsupported version": "unsupported format version",
    "zip with a pickle inside": "bad magic",
    "NaN weight": "invalid tensor value", "Inf bias": "invalid tensor value",
    "alpha the constructor refuses": "invalid layer", "width the constructor refuses": "invalid layer",
    "init the constructor refuses": "invalid layer",
}


def _listing(*dirs):
    return {str(d): sorted(os.listdir(d)) for d in dirs}


@pytest.fixture(scope="module")
def warm():
    """Load one valid file first, so lazy imports of a successful load are not counted against the corpus."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        raw = _valid_model_bytes(Path(d))
        p = Path(d) / "ok.fnn"
        p.write_bytes(raw)
        fnn.Network.load(p)
        try:
            fnn.Network.load(io.BytesIO(b"not a model"))
        except ModelFormatError:
            pass
    return True


# ---------------------------------------------------------------------------- the corpus

def test_corpus_size(tmp_path):
    corpus = _hostile_corpus(tmp_path, tmp_path / "marker")
    assert len(corpus) >= 16
    assert len(set(corpus.values())) == len(corpus), "two corpus entries are the same bytes"
    assert set(corpus) == set(EXPECTED_PHRASE)


def _load_watched(path_or_file, marker, dirs):
    """Load, and return (exception, new modules, listing changed, peak traced bytes)."""
    gc.collect()
    mods_before = set(sys.modules)
    listing_before = _listing(*dirs)
    tracemalloc.start()
    try:
        try:
            fnn.Network.load(path_or_file)
        except BaseException as exc:  # noqa: BLE001 - the type is what the test checks
            error = exc
        else:
            error = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    new_mods = set(sys.modules) - mods_before
    return error, new_mods, _listing(*dirs) != listing_before, peak


def test_every_hostile_file_is_refused(tmp_path, warm, monkeypatch):
    work = tmp_path / "files"
    work.mkdir()
    marker = tmp_path / "PWNED"
    monkeypatch.chdir(tmp_path)  # a relative-path side effect would land here
    corpus = _hostile_corpus(tmp_path, marker)
    failures = []
    for i, (name, content) in enumerate(sorted(corpus.items())):
        path = work / f"case{i:02d}.fnn"
        path.write_bytes(content)
        for source in ("path", "fileobj"):
            target = path if source == "path" else io.BytesIO(content)
            error, new_mods, created, peak = _load_watched(target, marker, (tmp_path, work))
            what = f"{name} ({source})"
            if type(error) is not ModelFormatError:
                failures.append(f"{what}: raised {type(error).__name__}: {error}"[:400])
                continue
            if EXPECTED_PHRASE[name] not in str(error):
                failures.append(f"{what}: refused for another reason than {EXPECTED_PHRASE[name]!r}: {error}")
            if source == "path" and str(path) not in str(error):
                failures.append(f"{what}: the message does not name the file: {error}")
            if new_mods:
                failures.append(f"{what}: imported {sorted(new_mods)}")
            if created or marker.exists():
                failures.append(f"{what}: created a file")
            if peak > len(content) + ALLOC_SLACK:
                failures.append(f"{what}: traced allocation peak {peak} bytes for a {len(content)}-byte file")
    assert not failures, "\n".join(failures)
    assert not marker.exists()
    assert sorted(os.listdir(work)) == [f"case{i:02d}.fnn" for i in range(len(corpus))]


def test_checkpoint_loader_refuses_the_corpus(tmp_path, warm):
    """load_checkpoint and read_header share the container checks: same refusals, same error type."""
    marker = tmp_path / "PWNED"
    corpus = _hostile_corpus(tmp_path, marker)
    failures = []
    for name, content in sorted(corpus.items()):
        for fn in (fnn.load_checkpoint, fnn.io.read_header):
            try:
                fn(io.BytesIO(content))
            except ModelFormatError:
                continue
            except BaseException as exc:  # noqa: BLE001
                failures.append(f"{fn.__name__}({name}): {type(exc).__name__}: {exc}"[:300])
            else:
                if fn is fnn.load_checkpoint or name not in _HEADER_ONLY_OK:
                    failures.append(f"{fn.__name__}({name}): accepted")
    assert not failures, "\n".join(failures)
    assert not marker.exists()


#: defects only visible when the weights are matched to the architecture: read_header may accept these
_HEADER_ONLY_OK = {"missing tensor", "extra tensor", "huge LayerNorm claimed by a tiny file", "NaN weight",
                   "Inf bias"}


@pytest.mark.parametrize("shape", [[2 ** 31, 2 ** 31], [10 ** 6, 10 ** 6], [2 ** 40, 4], [2 ** 20] * 8])
def test_forged_huge_shapes_allocate_nothing(tmp_path, warm, shape):
    """A consistent header (layer, shape and offsets agree) claiming a huge tensor: refused by size."""
    raw = _valid_model_bytes(tmp_path)
    header, data = _split(raw)
    nbytes = 4
    for d in shape:
        nbytes *= d
    if len(shape) == 2:
        header["network"]["layers"][0]["config"].update(n_in=shape[0], n_out=shape[1])
        header["network"]["layers"][1]["config"].update(n_in=shape[1])
    header["tensors"]["layers.0.W"].update(shape=shape, offsets=[0, nbytes])
    path = tmp_path / "huge.fnn"
    path.write_bytes(_pack(header, data))
    error, new_mods, _, peak = _load_watched(path, tmp_path / "PWNED", (tmp_path,))
    assert type(error) is ModelFormatError, error
    assert "too large" in str(error) or "tensor extent" in str(error) or "invalid layer" in str(error)
    assert not new_mods
    assert peak < 64 * 1024, f"allocated {peak} bytes"


def test_valid_file_still_loads(tmp_path, warm):
    """The corpus is built from this file: it must load (otherwise every refusal above proves nothing)."""
    raw = _valid_model_bytes(tmp_path)
    path = tmp_path / "ok.fnn"
    path.write_bytes(raw)
    net = fnn.Network.load(path)
    assert net.n_params == 23
    header, data = _split(raw)
    again = tmp_path / "repacked.fnn"
    again.write_bytes(_pack(header, data))  # re-packing without mutation keeps it valid
    np.testing.assert_array_equal(fnn.Network.load(again).params, net.params)


# ---------------------------------------------------------------------------- short fuzz run (CI)

def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", REPO / "scripts" / "fuzz_loaders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fuzz_short(warm):
    """~5 s of derandomized hypothesis fuzzing of the model, checkpoint and IDX loaders (and of restores
    into trainers; see the oracle of scripts/fuzz_loaders.py)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fz = _fuzz_module()
    seeds = fz.seed_files()
    findings = []
    count = [0]

    # FASTNN_FUZZ_EXAMPLES raises the count for a longer run (scripts/fuzz_loaders.py for >= 1M)
    @settings(max_examples=int(os.environ.get("FASTNN_FUZZ_EXAMPLES", "2500")), deadline=None, derandomize=True,
              database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(seeds)), st.binary(min_size=1, max_size=64))
    def run(seed_name, choices):
        count[0] += 1
        target, data = fz.mutate(seeds[seed_name], choices)
        problem = fz.check_one(target, data)
        if problem is not None:
            findings.append(f"{seed_name}: {problem}")

    run()
    assert count[0] >= 100
    assert not findings, "\n".join(findings[:20])


def test_fuzz_mutators_produce_variety():
    """The mutators really change files (flips, truncations, splices, header edits) and stay reproducible."""
    fz = _fuzz_module()
    seeds = fz.seed_files()
    rng = np.random.default_rng(0)
    outputs = set()
    for _ in range(300):
        name = sorted(seeds)[rng.integers(len(seeds))]
        choices = rng.bytes(int(rng.integers(1, 48)))
        target, data = fz.mutate(seeds[name], choices)
        assert fz.mutate(seeds[name], choices) == (target, data)  # deterministic
        outputs.add(data)
    assert len(outputs) > 200


# ---------------------------------------------------------------------------- hostile checkpoints

def _checkpoint_parts(tmp_path):
    net = fnn.Network([fnn.Dense(4, 3, "relu"), fnn.Dense(3, 2)], seed=0, backend="reference")
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, seed=0, verbose=0)
    rng = np.random.default_rng(0)
    tr.fit(rng.random((40, 4)).astype(np.float32), np.arange(40) % 2, epochs=1)
    path = tmp_path / "_valid.ckpt"
    fnn.save_checkpoint(path, tr)
    raw = path.read_bytes()
    path.unlink()
    return _split(raw)  # params 92 bytes, then optimizer.state [2, 23] float32 (184 bytes)


def _fresh_trainer():
    net = fnn.Network([fnn.Dense(4, 3, "relu"), fnn.Dense(3, 2)], seed=0, backend="reference")
    return fnn.Trainer(net, optimizer=fnn.Adam(1e-2), batch_size=16, seed=0, verbose=0)


def _ckpt_case(mutate, data_fn=None):
    def build(header, data):
        import copy

        h = copy.deepcopy(header)
        mutate(h)
        return _pack(h, data if data_fn is None else data_fn(data))
    return build


def _tr(h):
    return h["training"]


HOSTILE_CHECKPOINTS = {
    "no training state": _ckpt_case(lambda h: h.pop("training")),
    "negative epoch": _ckpt_case(lambda h: _tr(h)["trainer"].update(epoch=-1)),
    "MT19937 generator": _ckpt_case(lambda h: _tr(h)["trainer"]["rng_state"].update(bit_generator="MT19937")),
    "generator state 2**200": _ckpt_case(lambda h: _tr(h)["trainer"]["rng_state"]["state"].update(state=2 ** 200)),
    "generator state is a list": _ckpt_case(lambda h: _tr(h)["trainer"].update(rng_state=[1, 2])),
    "negative iterations": _ckpt_case(lambda h: _tr(h)["optimizer"].update(iterations=-1)),
    "negative learning rate": _ckpt_case(lambda h: _tr(h)["lr"].update(value=-1.0)),
    "learning rate as a string": _ckpt_case(lambda h: _tr(h)["lr"].update(value="__import__('os')")),
    "learning rate entry without its value": _ckpt_case(lambda h: _tr(h)["lr"].pop("value")),
    "learning rate schedule as a number": _ckpt_case(lambda h: _tr(h)["lr"].update(schedule=3)),
    "layer generator not a state": _ckpt_case(lambda h: _tr(h).update(layer_rngs={"0": 5})),
    "logs with strings": _ckpt_case(lambda h: _tr(h).update(logs={"loss": "x"})),
    "has_state false with a state tensor": _ckpt_case(lambda h: _tr(h)["optimizer"].update(has_state=False)),
    "optimizer state of the wrong dtype": _ckpt_case(
        lambda h: h["tensors"]["optimizer.state"].update(dtype="float64", offsets=[92, 92 + 368]),
        lambda d: d + bytes(184)),
    "optimizer state wider than the network": _ckpt_case(
        lambda h: h["tensors"]["optimizer.state"].update(shape=[1, 46], offsets=[92, 92 + 184])),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CHECKPOINTS))
def test_hostile_checkpoints_are_refused(tmp_path, warm, case):
    header, data = _checkpoint_parts(tmp_path)
    content = HOSTILE_CHECKPOINTS[case](header, data)
    for into in (None, _fresh_trainer()):
        before = None if into is None else into.network.params.copy()
        with pytest.raises(ModelFormatError):
            fnn.load_checkpoint(io.BytesIO(content), into)
        if into is not None:  # "nothing changes if anything fails"
            np.testing.assert_array_equal(into.network.params, before)
            assert into.epoch == 0 and into.optimizer.iterations == 0


@pytest.mark.parametrize("slots", [0, 1, 5])
def test_checkpoint_with_wrong_optimizer_slot_count_is_refused(tmp_path, warm, slots):
    header, data = _checkpoint_parts(tmp_path)
    header["tensors"]["optimizer.state"].update(shape=[slots, 23], offsets=[92, 92 + 92 * slots])
    content = _pack(header, data[:92] + bytes(92 * slots))
    tr = _fresh_trainer()
    with pytest.raises(ModelFormatError):
        fnn.load_checkpoint(io.BytesIO(content), tr)
    assert tr.optimizer.state is None or tr.optimizer.state.shape == (2, 23)


def test_checkpoint_with_absurd_step_count_is_refused(tmp_path, warm):
    header, data = _checkpoint_parts(tmp_path)
    header["training"]["optimizer"]["iterations"] = 2 ** 70
    with pytest.raises(ModelFormatError):
        fnn.load_checkpoint(io.BytesIO(_pack(header, data)), _fresh_trainer())


# ---------------------------------------------------------------------------- IDX finding

def test_idx_zero_dimension_with_huge_others_is_a_format_error():
    from fastnn.data.idx import read_idx

    content = bytes([0, 0, 0x0D, 8]) + struct.pack(">8I", 0, 2, *[2 ** 30] * 6)
    with pytest.raises(DataFormatError):
        read_idx(io.BytesIO(content))
