"""Compiled Cython extensions (built from csrc/ by setup.py)."""


def missing_extension_error(exc):
    """The actionable ImportError for an unbuilt (or unimportable) ``fastnn._ext._kernels``."""
    return ImportError(
        "fastnn's Cython extension is not built: run `pip install .` (needs a C compiler) "
        "or, in a source checkout, `python setup.py build_ext --inplace`; or use backend='numba'. "
        f"(import of fastnn._ext._kernels failed: {exc})"
    )
