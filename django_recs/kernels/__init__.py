"""Numeric kernels: numpy and scipy in, numpy and scipy out. No Django here.

Each public function validates its input, resolves its thread count and
calls the compiled Cython module built from ``csrc/``; when that module is
missing it falls back to the pure numpy reference in ``_reference`` with a
warning (and ``manage.py check`` reports django_recs.W001).
"""

from __future__ import annotations

from ._native import COMPILED_MODULES, missing_modules, native_module
from ._threads import limit_blas_threads, resolve_num_threads
from .als import als_fit, als_fold_in, als_loss
from .ease import ease_weights, gram_matrix
from .lists import encode_lists, interleave_rows
from .neighbours import neighbour_top_n
from .norms import row_norms
from .reasons import factor_reasons
from .similarity import item_similarity, user_similarity
from .topn import history_top_n, top_n
from .vote import neighbour_vote

__all__ = [
    "als_fit",
    "als_fold_in",
    "als_loss",
    "build_info",
    "ease_weights",
    "encode_lists",
    "factor_reasons",
    "interleave_rows",
    "gram_matrix",
    "history_top_n",
    "item_similarity",
    "neighbour_top_n",
    "row_norms",
    "resolve_num_threads",
    "limit_blas_threads",
    "top_n",
    "user_similarity",
    "neighbour_vote",
]


def build_info() -> dict:
    """How the kernels were built and what they can use here.

    Returns ``{"native": bool, "openmp": bool, "max_threads": int,
    "missing": [module names]}``: native is True when every compiled module
    imports; openmp when they were compiled with OpenMP; max_threads is what
    ``num_threads=0`` resolves to in this process.
    """
    missing = missing_modules()
    build = native_module("_build") if "_build" not in missing else None
    return {
        "native": not missing,
        "openmp": bool(build and build.openmp_enabled()),
        "max_threads": resolve_num_threads(0) if build and build.openmp_enabled() else 1,
        "missing": missing,
        "modules": list(COMPILED_MODULES),
    }


