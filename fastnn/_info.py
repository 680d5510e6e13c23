"""show_config(): what fastnn runs on."""
import platform
import sys


def show_config(print_fn=print):
    """Print (and return as a dict) fastnn's version, backends, thread settings and BLAS libraries."""
    import numpy as np
    import threadpoolctl

    from . import __version__
    from ._config import get_num_threads
    from .kernels import BACKENDS, _load, get_backend

    info = {"fastnn": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": np.__version__, "backends": {}, "num_threads": get_num_threads()}
    info["fallbacks"] = {}
    for name in BACKENDS:
        mod = _load(name)
        info["backends"][name] = "available" if not isinstance(mod, Exception) else f"unavailable ({mod})"
        if not isinstance(mod, Exception):
            info["fallbacks"][name] = get_backend(name).fallbacks()
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = f"not yet initialised (configured: {numba.config.THREADING_LAYER})"
    except ImportError:
        pass
    try:
        from ._ext import _kernels

        info["cython_openmp"] = bool(_kernels.OPENMP) if hasattr(_kernels, "OPENMP") else "unknown"
    except ImportError:
        pass
    info["blas"] = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
                    for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    if print_fn is not None:
        lines = [f"fastnn {info['fastnn']} (python {info['python']}, numpy {info['numpy']}, "
                 f"numba {info.get('numba', 'missing')})", f"platform: {info['platform']}", "backends:"]
        for name, state in info["backends"].items():
            fb = info["fallbacks"].get(name)
            by_src = {}
            for op, src in (fb or {}).items():
                by_src.setdefault(src, []).append(op)
            note = "".join(f"; falls back to {src} for {', '.join(ops)}" for src, ops in by_src.items())
            lines.append(f"  {name:<10} {state}{note}")
        lines.append(f"threads: fastnn {info['num_threads']}, numba pool {info.get('numba_threads')}, "
                     f"numba layer {info.get('numba_threading_layer')}, cython OpenMP {info.get('cython_openmp')}")
        lines.append("BLAS:")
        lines += [f"  {b['internal_api']} {b['version']} threads={b['num_threads']} arch={b['architecture']} "
                  f"({b['filepath']})" for b in info["blas"]]
        print_fn("\n".join(lines))
    return info
