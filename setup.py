"""Build the Cython extensions in csrc/ into fastnn._ext.*.

Compiler directives are set once here. OpenMP is used when the compiler
accepts -fopenmp (gcc/clang with libomp); otherwise the kernels build serial.
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
}


def _has_openmp():
    """True if the C compiler can compile and link a tiny OpenMP program."""
    if os.environ.get("FASTNN_NO_OPENMP"):
        return False
    if sys.platform == "win32":
        return True
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp_probe.c"
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            objs = cc.compile([str(src)], output_dir=tmp, extra_postargs=["-fopenmp"])
            cc.link_executable(objs, str(Path(tmp) / "omp_probe"), extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        omp = _has_openmp()
        for ext in self.extensions:
            if omp:
                flag = "/openmp" if sys.platform == "win32" else "-fopenmp"
                ext.extra_compile_args.append(flag)
                if sys.platform != "win32":
                    ext.extra_link_args.append(flag)
            if sys.platform != "win32":
                ext.extra_compile_args += ["-O3"]
        print(f"fastnn: building Cython extensions with OpenMP={'yes' if omp else 'no'}")
        super().build_extensions()


extensions = [
    Extension(
        f"fastnn._ext.{path.stem}",
        [str(path)],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(Path("csrc").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES),
    cmdclass={"build_ext": BuildExt},
)
