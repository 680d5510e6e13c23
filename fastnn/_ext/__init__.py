"""Compiled Cython extensions (built from csrc/ by setup.py)."""
from pathlib import Path


def missing_extension_error(exc):
    """The actionable ImportError for an unbuilt (or unimportable) ``fastnn._ext._kernels``.

    The commonest cause in a source checkout: ``pip install .`` built the extension into
    site-packages, but Python imports the unbuilt ``fastnn/`` of the current directory first.
    """
    package = Path(__file__).resolve().parent.parent
    checkout = (package.parent / "setup.py").is_file() and (package.parent / "csrc").is_dir()
    where = (f" Python imported fastnn from the source tree {package} (the current directory comes first on "
             f"sys.path), which has no built extension: run from another directory, or build it in place "
             f"with `pip install -e .`." if checkout else "")
    return ImportError(
        "fastnn's Cython extension is not built: run `pip install .` (needs a C compiler) "
        "or, in a source checkout, `pip install -e .` or `python setup.py build_ext --inplace`; "
        f"or use backend='numba'.{where} (import of fastnn._ext._kernels failed: {exc})"
    )
