"""The import graph of ``fastnn`` is acyclic and follows the declared layer order (DESIGN rule 10)."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn

PACKAGE_DIR = Path(fastnn.__file__).resolve().parent

#: Low to high: a module may import from its own layer or a lower one, never from a higher one.
#: A "unit" is the first name below ``fastnn`` (``fastnn.io.model_file`` -> ``io``); ``""`` is the
#: root package ``fastnn/__init__.py``. A unit named here that does not exist yet (``engine``) is fine.
LAYERS = [
    # leaves; ``_ext`` is the compiled extension (its ``__init__`` imports nothing from fastnn)
    {"errors", "_config", "_validation", "_fileio", "_ext"},
    {"kernels"},
    # user objects; ``data`` (loaders, preprocessing, augmentation) uses only leaves and kernels;
    # ``losses_extra`` is the re-export shim of ``losses``
    {"activations", "losses", "losses_extra", "optimizers", "schedules", "layers", "data"},
    {"network"},
    {"engine"},
    {"trainer"},
    # the toolkit (DESIGN rule 7); ``checkpoint`` is the re-export shim of ``io.checkpoint`` and
    # ``callbacks.checkpoint``; ``_info`` is ``show_config`` (reads kernels and the extension);
    # ``experiments`` (issue 16: sweeps) trains through Trainer and draws through ``plotting``
    {"callbacks", "metrics", "diagnostics", "io", "checkpoint", "plotting", "lr_finder", "profiler", "_info",
     "experiments"},
    # the public facade: ``fastnn/__init__.py`` re-exports the core, never integrations or apps
    {""},
    # optional-dependency adapters and their public modules, thin re-exports: ``sklearn``
    # (``from fastnn.sklearn import MLPClassifier``) and ``distributed`` (``fastnn.distributed.RayTrainer``)
    {"integrations", "sklearn", "distributed"},
    # programs; ``python -m fastnn`` (``__main__``) is the command line's second entry point
    {"apps", "__main__"},
]

#: Edges against the layer order that today's code has for a reason: (importer prefix, imported prefix, why).
#: Each is a lazy (function-level) import or sits in a file another stage of issue 9 is rewriting.
ALLOWED_BACK_EDGES = [
    ("fastnn.network", "fastnn.io",
     "Network.save/Network.load are lazy convenience wrappers of fastnn.io (network.py: engine stage)"),
    ("fastnn.trainer", "fastnn.callbacks",
     "Trainer drives CallbackList and adds ProgressBar/EpochLogger (moves to the engine's context object)"),
    ("fastnn.trainer", "fastnn.checkpoint",
     "Trainer.fit(resume_from=...) loads a checkpoint lazily through the fastnn.checkpoint shim"),
    ("fastnn.trainer", "fastnn.plotting", "History.plot() draws lazily with fastnn.plotting"),
    ("fastnn.trainer", "fastnn.metrics", "Trainer.evaluate(metrics=...) resolves metric names lazily"),
    ("fastnn.trainer", "fastnn.profiler", "Trainer.fit(profile=True) calls fastnn.profile lazily after training"),
    ("fastnn", "fastnn.integrations.onnx",
     "fastnn.export_onnx (issue 13) is a function-level wrapper: the ONNX adapter loads at the first call, "
     "never with import fastnn (test_import_fastnn_loads_no_adapter)"),
]

#: ``from fastnn import __version__`` inside the package: a constant of the root, read lazily; not an edge.
_ROOT_CONSTANTS = {"__version__"}


def module_name(path, root=PACKAGE_DIR):
    """Dotted module name of a ``.py`` file below the package directory ``root``."""
    rel = Path(path).resolve().relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module, is_package, level, target):
    """Absolute name of a (possibly relative) import ``target`` made in ``module``."""
    if level == 0:
        return target
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(source, module, is_package, known):
    """Every fastnn module that ``source`` imports, at module level or inside functions."""
    edges = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            names = [a.name for a in node.names]
            if base == "fastnn" and set(names) <= _ROOT_CONSTANTS:
                continue
            for name in names:
                sub = f"{base}.{name}"
                edges.add(sub if sub in known else base)
    out = set()
    for target in edges:
        # ``import fastnn.kernels.codes`` names a module; a name such as ``numpy.linalg`` is outside
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            out.add(target)
    return out


def build_graph(root=PACKAGE_DIR):
    """``{module: set of imported fastnn modules}`` for every ``.py`` file below ``root``."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    known = set(files)
    return {m: imports_of(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", known)
            for m, p in files.items()}


def unit_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _allowed(src, dst, allowlist):
    def under(name, prefix):  # the root "fastnn" names only itself, not every module below it
        return name == prefix or (prefix != "fastnn" and name.startswith(prefix + "."))
    return any(under(src, a) and under(dst, b) for a, b, _ in allowlist)


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(graph, layers=LAYERS, allowlist=ALLOWED_BACK_EDGES):
    """Problems of ``graph``: undeclared units, back-edges against ``layers``, cycles (allowlisted edges dropped)."""
    rank = {unit: i for i, units in enumerate(layers) for unit in units}
    problems = []
    kept = {}
    for src in sorted(graph):
        if unit_of(src) not in rank:
            problems.append(f"{src}: unit {unit_of(src)!r} has no declared layer")
        kept[src] = set()
        for dst in sorted(graph[src]):
            if _allowed(src, dst, allowlist):
                continue
            kept[src].add(dst)
            su, du = unit_of(src), unit_of(dst)
            if su in rank and du in rank and rank[du] > rank[su]:
                problems.append(f"back-edge {src} -> {dst} ({su or 'fastnn'} is layer {rank[su]}, "
                                f"{du or 'fastnn'} is layer {rank[du]})")
    for comp in find_cycles(kept):
        problems.append("import cycle among " + ", ".join(comp))
    return problems


# ---------------------------------------------------------------------------- the checker itself
SYNTHETIC_LAYERS = [{"errors"}, {"kernels"}, {"network"}, {"io"}]


def test_checker_finds_a_cycle_and_a_back_edge():
    graph = {"fastnn.io.a": {"fastnn.io.b"}, "fastnn.io.b": {"fastnn.io.a"},   # cycle within one unit
             "fastnn.kernels": {"fastnn.network"},                             # back-edge
             "fastnn.network": {"fastnn.errors"}, "fastnn.errors": set()}
    problems = check(graph, SYNTHETIC_LAYERS, allowlist=[])
    assert any(p.startswith("import cycle among fastnn.io.a, fastnn.io.b") for p in problems), problems
    assert any(p.startswith("back-edge fastnn.kernels -> fastnn.network") for p in problems), problems
    assert len(problems) == 2


def test_checker_allowlist_and_undeclared_units():
    graph = {"fastnn.kernels": {"fastnn.network"}, "fastnn.network": {"fastnn.kernels"},
             "fastnn.engine.plan": set()}
    problems = check(graph, SYNTHETIC_LAYERS, allowlist=[("fastnn.kernels", "fastnn.network", "test")])
    assert problems == ["fastnn.engine.plan: unit 'engine' has no declared layer"]
    assert check({"fastnn.network": set()}, SYNTHETIC_LAYERS + [{"engine"}], allowlist=[]) == []


def test_imports_resolved_at_every_level(tmp_path):
    pkg = tmp_path / "fastnn"
    (pkg / "io").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "network.py").write_text("def save():\n    from .io import model_file\n")
    (pkg / "io" / "__init__.py").write_text("from .model_file import save\n")
    (pkg / "io" / "model_file.py").write_text("import os\nfrom ..errors import E\nfrom .. import __version__\n"
                                             "def load():\n    import fastnn.network\n")
    graph = build_graph(pkg)
    assert graph["fastnn.network"] == {"fastnn.io.model_file"}
    assert graph["fastnn.io"] == {"fastnn.io.model_file"}
    assert graph["fastnn.io.model_file"] == {"fastnn.errors", "fastnn.network"}
    assert check(graph, [{"", "errors"}, {"network"}, {"io"}], allowlist=[]) == [
        "back-edge fastnn.network -> fastnn.io.model_file (network is layer 1, io is layer 2)",
        "import cycle among fastnn.io.model_file, fastnn.network"]


# ---------------------------------------------------------------------------- the real package
def test_fastnn_import_graph_is_layered_and_acyclic():
    graph = build_graph()
    assert "fastnn.network" in graph and len(graph) > 30
    problems = check(graph)
    assert not problems, "\n".join(problems)


def test_every_allowlist_entry_is_still_needed():
    graph = build_graph()
    for src, dst, why in ALLOWED_BACK_EDGES:
        assert why
        used = any(_allowed(s, d, [(src, dst, why)]) for s, targets in graph.items() for d in targets)
        assert used, f"allowlist entry {src} -> {dst} is no longer needed: remove it"


#: who may import programs and adapters: themselves, their public shims, the programs above them
IMPORTERS_ALLOWED = {"apps": {"apps", "__main__"},
                     "integrations": {"integrations", "sklearn", "distributed", "apps", "__main__"},
                     "distributed": {"apps", "__main__"},
                     "sklearn": {"apps", "__main__"}}


@pytest.mark.parametrize("unit", sorted(IMPORTERS_ALLOWED))
def test_core_never_imports_programs_or_adapters(unit):
    graph = build_graph()
    offenders = [(s, d) for s, targets in graph.items() for d in targets
                 if unit_of(d) == unit and unit_of(s) not in IMPORTERS_ALLOWED[unit]
                 and not _allowed(s, d, ALLOWED_BACK_EDGES)]
    assert not offenders


def test_import_fastnn_loads_no_adapter():
    code = ("import sys, fastnn; bad = sorted(m for m in sys.modules if m.startswith(('fastnn.integrations', "
            "'fastnn.sklearn', 'fastnn.distributed', 'fastnn.apps', 'onnx', 'ray'))); print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_graph_covers_every_file():
    n_files = sum(1 for _dirpath, _dirs, files in os.walk(PACKAGE_DIR) for f in files if f.endswith(".py"))
    assert len(build_graph()) == n_files
