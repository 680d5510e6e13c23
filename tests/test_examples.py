"""The example scripts (examples/*.py) run and reach the targets their docstrings state.

Most run in-process (``runpy`` + ``main(argv)``: no interpreter start-up or
re-import per script); one runs as a real subprocess, end to end, with a
plot. Epoch counts are cut where the full count is not needed to reach the
target (measured over seeds 0-5); the metric is parsed from the printed
report and compared with the target here, not taken from the script's word.
"""
import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

#: example -> extra arguments that keep the test short and still reach the target
FAST_ARGS = {
    "xor": ["--epochs", "500"],
    "spiral": ["--epochs", "400"],
    "sine": ["--epochs", "300"],
    "checkerboard": ["--epochs", "1000"],
    "rgb_colors": ["--epochs", "400"],
    "circles_moons": [],
    "regression_weights": [],
    "sine_forecast": ["--epochs", "15"],  # issue 12
}

_TARGET = re.compile(r"^target: (?P<metric>.+?) (?P<op>>=|<=) (?P<goal>[0-9.eE+-]+) -> target (?P<status>reached|NOT reached)$",
                     re.M)


def _targets(text):
    """[(metric, op, goal, value, status)] from an example's report; value parsed from its own line."""
    found = []
    for m in _TARGET.finditer(text):
        metric = m["metric"]
        values = re.findall(rf"^{re.escape(metric)}:\s+([0-9.eE+-]+)$", text, re.M)
        assert len(values) == 1, f"no single line with the value of {metric!r}:\n{text}"
        found.append((metric, m["op"], float(m["goal"]), float(values[0]), m["status"]))
    assert found, f"no target line in the output:\n{text}"
    return found


def _check_reached(text):
    for metric, op, goal, value, status in _targets(text):
        ok = value >= goal if op == ">=" else value <= goal
        assert ok, f"{metric} = {value} misses the target {op} {goal}:\n{text}"
        assert status == "reached", text


@pytest.fixture(scope="module")
def load_example():
    """Load examples/<name>.py without running it (``_common`` importable), return its namespace."""
    sys.path.insert(0, str(EXAMPLES))
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
        return cache[name]
    yield load
    sys.path.remove(str(EXAMPLES))


def _run_in_process(namespace, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = namespace["main"](argv)
    return status, out.getvalue()


def test_every_example_is_covered():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"_common", "_guide", "train_mnist", "mnist_augmented",
                                                       "train_mnist_cnn",  # tests/apps/test_mnist_cnn_example.py
                                                       "train_mnist_rnn", "char_lm"}  # own tests below (issue 12)
    scripts -= set(GUIDE_EXAMPLES)  # guide_*.py: their --quick runs below (issue 16)
    assert scripts == set(FAST_ARGS)


@pytest.mark.parametrize("name", sorted(FAST_ARGS))
def test_example_reaches_its_target(name, load_example):
    ns = load_example(name)
    doc = ns["__doc__"]
    assert re.search(r"^Targets?:", doc, re.M), f"{name}.py must state its target in the module docstring"
    t0 = time.perf_counter()
    status, text = _run_in_process(ns, ["--seed", "0", *FAST_ARGS[name]])
    took = time.perf_counter() - t0
    _check_reached(text)
    assert status == 0, text
    # the stated goal is the one the docstring states
    for metric, op, goal, _, _ in _targets(text):
        assert re.search(rf"{op}\s*{goal:g}\b", doc), f"docstring of {name}.py does not state {op} {goal:g}"
    assert took < 15, f"{name} took {took:.1f} s"


def test_missed_target_is_reported_and_exits_1(load_example):
    status, text = _run_in_process(load_example("sine"), ["--epochs", "1", "--lr", "0.0001"])
    assert status == 1
    assert "-> target NOT reached" in text
    assert "time: " in text and "for 1 epochs" in text


def test_regression_recovers_true_weights(load_example):
    status, text = _run_in_process(load_example("regression_weights"), [])
    assert status == 0
    rows = {m["name"]: (float(m["true"]), float(m["learned"]))
            for m in re.finditer(r"^(?P<name>performance|years|projects|bias \(base\))\s+(?P<true>\S+)\s+"
                                 r"(?P<learned>\S+)", text, re.M)}
    assert rows.keys() == {"performance", "years", "projects", "bias (base)"}
    assert [t for t, _ in rows.values()] == [2.5, 0.8, 1.5, 3.0]
    assert max(abs(t - v) for t, v in rows.values()) <= 0.05


def test_bad_arguments_are_rejected(load_example):
    ns = load_example("xor")
    for argv in (["--epochs", "0"], ["--lr", "-1"], ["--lr", "nan"], ["--batch-size", "x"]):
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
            ns["main"](argv)
        assert exc.value.code == 2


def test_example_as_subprocess_with_plot(tmp_path):
    """One real run: the script on its own, from another working directory, default settings, a PNG."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "xor.png"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "xor.py"), "--plot", str(png)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_reached(proc.stdout)
    assert "for 1000 epochs" in proc.stdout  # the guide's default
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_augmented_on_digits_reaches_its_target(load_example):
    status, text = _run_in_process(load_example("mnist_augmented"), ["--dataset", "digits", "--threads", "1"])
    _check_reached(text)
    assert status == 0
    assert "RandomRotation(10)" in text and "RandomShift" not in text   # no shifts on 8x8 images
    assert "for 20 epochs" in text
    assert re.search(r"augmentation cost: [0-9.]+ s per epoch", text)


def test_mnist_augmented_short_run_on_mnist(mnist_dir, load_example):
    status, text = _run_in_process(load_example("mnist_augmented"),
                                   ["--data", str(mnist_dir), "--limit", "6000", "--epochs", "1", "--threads", "1"])
    assert "MNIST: 5,500 training" in text
    assert "RandomShift(2), RandomRotation(10), GaussianNoise(0.05" in text
    ratio = re.search(r"augmentation cost: ([0-9.]+) s per epoch for 5,500 images = ([0-9.]+)% of", text)
    assert ratio, text
    (_, _, _, value, _), = _targets(text)
    assert value > 0.8  # one epoch on 5,500 images: far from the 3-epoch target, but learning


def test_circles_moons_plots_one_file_per_problem(tmp_path, load_example):
    pytest.importorskip("matplotlib")
    status, text = _run_in_process(load_example("circles_moons"), ["--plot", str(tmp_path / "cm.png")])
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm-circles.png", "cm-moons.png"]


# --------------------------------------------------------------------------- train_mnist_rnn.py (issue 12)
def test_mnist_rnn_example_one_epoch_reports_its_path_and_target(load_example):
    status, text = _run_in_process(load_example("train_mnist_rnn"),
                                   ["--dataset", "digits", "--model", "lstm", "--epochs", "1", "--threads", "1"])
    assert "8 steps x 8 features" in text and "per-layer path" in text and "for 1 epochs" in text
    assert [t[2] for t in _targets(text)] == [0.95]
    assert status == (0 if "-> target reached" in text else 1)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_mnist_rnn_example_on_digits_reaches_its_target(load_example, model):
    status, text = _run_in_process(load_example("train_mnist_rnn"),
                                   ["--dataset", "digits", "--model", model, "--threads", "1"])
    _check_reached(text)
    assert status == 0, text


def test_char_lm_example_smoke(load_example):
    status, text = _run_in_process(load_example("char_lm"), ["--models", "lstm", "--limit", "3000", "--epochs", "1",
                                                             "--sample", "20", "--threads", "1"])
    assert re.search(r"^unigram bits/char:\s+[0-9.]+$", text, re.M)
    assert "--- lstm continues" in text
    assert [t[2] for t in _targets(text)] == [0.75]
    assert status == (0 if "-> target reached" in text else 1)


@pytest.mark.slow
def test_char_lm_example_reaches_its_target(load_example):
    status, text = _run_in_process(load_example("char_lm"), ["--models", "lstm", "--sample", "0"])
    _check_reached(text)
    assert status == 0, text


# --------------------------------------------------------------------------- guide_*.py (issue 16)
#: every guide example; each prints the same blocks through examples/_guide.py
GUIDE_EXAMPLES = tuple(sorted(p.stem for p in EXAMPLES.glob("guide_*.py")))
SEEDS = REPO.parent / "shared" / "seeds"  # the guides the examples quote (not part of the repository)
_HEADER = re.compile(r"^== .+\ndata: .+\nbudget: .+, seeds \[[0-9, ]+\] \(--quick\)\nmeasured on: .+, load average ",
                     re.M)
_CLAIMS = re.compile(r"^The guide says \((?P<source>.+)\):\n(?P<quotes>(?:    .+\n)+)Verdicts:\n"
                     r"(?P<verdicts>(?:  - .+\n)+)(?P<agree>\d+) of (?P<n>\d+) claims agree with the measurement\.$",
                     re.M)
_VERDICT = re.compile(r"^  - (?P<claim>.+): (?P<word>AGREES|DISAGREES|CANNOT TELL) -- (?P<evidence>.+)$")
_RESULT = re.compile(r"^== result: .+\n(?:.+: .+\n)+time: [0-9.]+ s\n(?:target: .+\n?)+\Z", re.M)


@pytest.fixture(scope="module")
def guides_text():
    """The seed guides as one string, or None where ../shared/seeds is not checked out."""
    if not SEEDS.is_dir():
        return None
    return "".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))


def test_there_are_eight_guide_examples():
    assert len(GUIDE_EXAMPLES) == 8, GUIDE_EXAMPLES


@pytest.mark.parametrize("name", GUIDE_EXAMPLES)
def test_guide_example_quick_run_quotes_the_guide_and_checks_its_targets(name, load_example, guides_text):
    ns = load_example(name)
    doc = ns["__doc__"]
    assert re.search(r"^Targets?:", doc, re.M), f"{name}.py must state its target in the module docstring"
    status, text = _run_in_process(ns, ["--quick"])
    _check_reached(text)
    assert status == 0, text
    for metric, op, goal, _, _ in _targets(text):
        assert re.search(rf"{op}\s*{goal:g}\b", doc), f"docstring of {name}.py does not state {op} {goal:g}"
    # the same blocks in every guide example: header, claims with verdicts, result
    assert _HEADER.search(text), text
    assert _RESULT.search(text), text
    block = _CLAIMS.search(text)
    assert block, text
    verdicts = [_VERDICT.match(line) for line in block["verdicts"].splitlines()]
    assert all(verdicts) and len(verdicts) >= 2, block["verdicts"]
    assert int(block["n"]) == len(verdicts)
    assert int(block["agree"]) == sum(v["word"] == "AGREES" for v in verdicts)
    if guides_text is not None:
        for line in block["quotes"].splitlines():
            quote = line[4:]
            # the seed files store non-ASCII characters (∞, ⚡, ✅, →) UTF-8-encoded but decoded as Mac Roman
            assert quote in guides_text or quote.encode("utf-8").decode("mac_roman") in guides_text, \
                f"{name}: not a verbatim quote of the guides: {quote!r}"


def test_guide_example_writes_its_tables_and_figures_into_out(tmp_path, load_example):
    status, text = _run_in_process(load_example("guide_batch_sizes"), ["--quick", "--out", str(tmp_path / "out")])
    assert status == 0, text
    header, *rows = (tmp_path / "out" / "batch_sizes.csv").read_text().splitlines()
    assert header.startswith("batch_size,") and [r.split(",")[0] for r in rows] == ["8", "32", "128", "256", "512"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "--out: matplotlib is not installed" in text
    else:
        assert (tmp_path / "out" / "batch_sizes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_guide_example_rejects_bad_options(load_example):
    ns = load_example("guide_optimizers")
    for argv in (["--seeds", "0"], ["--epochs", "-1"], ["--jobs", "x"], ["--limit", "many"]):
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()) as err:
            ns["main"](argv)
        assert exc.value.code == 2 and "error: argument" in err.getvalue()


def test_guide_example_missed_target_exits_1(load_example):
    status, text = _run_in_process(load_example("guide_activations"), ["--quick", "--epochs", "1"])
    assert status == 1 and "-> target NOT reached" in text
