"""Loading the compiled kernels, with the numpy reference as a fallback.

A build without a C compiler (or a source tree that was never built) still
imports: each kernel wrapper asks :func:`native_module` for its compiled
module and uses the pure numpy reference when it is missing, with one
warning per module. ``manage.py check`` reports the same as django_recs.W001.
"""

from __future__ import annotations

import importlib
import warnings
from functools import cache
from types import ModuleType

#: Every compiled module the package ships, by name inside django_recs.kernels.
COMPILED_MODULES = (
    "_build", "_similarity", "_als", "_topn", "_vote", "_lists", "_neighbours", "_reasons",
)


class NativeKernelsMissing(RuntimeWarning):
    """The compiled kernels are not importable; the slow numpy reference runs."""


@cache
def native_module(name: str) -> ModuleType | None:
    """The compiled module ``django_recs.kernels.<name>``, or None with a warning."""
    try:
        return importlib.import_module(f"django_recs.kernels.{name}")
    except ImportError as error:
        warnings.warn(
            f"django_recs: compiled kernel module {name} is not available ({error}); "
            "using the pure numpy reference, which is much slower. "
            "Reinstall django-recs with a C compiler present to build it.",
            NativeKernelsMissing,
            stacklevel=3,
        )
        return None


def missing_modules() -> list[str]:
    """Names of compiled modules that cannot be imported (no warning)."""
    missing = []
    for name in COMPILED_MODULES:
        try:
            importlib.import_module(f"django_recs.kernels.{name}")
        except ImportError:
            missing.append(name)
    return missing
