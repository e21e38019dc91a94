"""Build the Cython kernels in csrc/ into django_recs.kernels._<name>.

Everything else about the package lives in pyproject.toml. This file only
lists the extension modules and probes the compiler for OpenMP: when a small
OpenMP program compiles *and runs*, the kernels are built with -fopenmp;
otherwise they are built single-threaded with a warning, and
DJANGO_RECS_REQUIRE_OPENMP=1 turns that warning into an error (CI sets it).

DJANGO_RECS_BUILD_ONLY=similarity,als builds only the named modules (useful
while working on one kernel).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n);
    return n > 0 ? 0 : 1;
}
"""


def _compiler() -> str:
    return os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"


def openmp_works() -> bool:
    """Compile and run a tiny OpenMP program with the compiler Python uses."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        binary = Path(tmp) / "probe"
        source.write_text(OPENMP_PROBE)
        try:
            subprocess.run(
                [_compiler(), "-fopenmp", str(source), "-o", str(binary)],
                check=True,
                capture_output=True,
            )
            subprocess.run([str(binary)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return False
    return True


def extensions() -> list[Extension]:
    use_openmp = openmp_works()
    if not use_openmp:
        message = (
            "django-recs: the C compiler has no working OpenMP; the kernels are "
            "built single-threaded."
        )
        if os.environ.get("DJANGO_RECS_REQUIRE_OPENMP") == "1":
            sys.exit(message + " DJANGO_RECS_REQUIRE_OPENMP=1 makes this an error.")
        warnings.warn(message, stacklevel=1)

    only = {
        name.strip().lstrip("_")
        for name in os.environ.get("DJANGO_RECS_BUILD_ONLY", "").split(",")
        if name.strip()
    }
    compile_args = ["-O3", "-ffp-contract=fast"]
    link_args: list[str] = []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if use_openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")

    modules = []
    for pyx in sorted(CSRC.glob("_*.pyx")):
        if only and pyx.stem.lstrip("_") not in only:
            continue
        modules.append(
            Extension(
                f"django_recs.kernels.{pyx.stem}",
                sources=[str(pyx.relative_to(HERE))],
                include_dirs=[numpy.get_include(), "csrc"],
                define_macros=macros,
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return cythonize(
        modules,
        language_level=3,
        build_dir="build/cython",
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions())
