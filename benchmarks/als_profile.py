"""Profiling helpers for the CG solver of ALS (docs/als.md, "Performance").

    python benchmarks/als_profile.py split [--factors 64]
        Single-thread process CPU seconds of our CG half-sweeps with 1, 3 and
        20 steps (best of 5) on bench_als's synthetic matrix: the cost of one
        step, the rest (gather and initial residual), the Gram matrices.

    python benchmarks/als_profile.py fit {ours,implicit} [--factors 64] [--iterations 5]
        Only a fit (CG, 2 threads), for `perf record` / `perf stat` / valgrind:
        prints the per-iteration wall and CPU seconds and the final loss.

The matrix is bench_als's synthetic training matrix with its confidences,
cached in the system's temporary directory so a profiled run does not spend
its time generating it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from benchmarks.bench_als import confidence, synthetic_split
from django_recs import kernels
from django_recs.kernels import als
from django_recs.kernels._native import native_module

CACHE = Path(tempfile.gettempdir()) / "django_recs_als_profile_C.npz"
REGULARIZATION = 0.01


def training_matrix() -> sp.csr_matrix:
    if not CACHE.exists():
        sp.save_npz(CACHE, confidence(synthetic_split(False).train, 10.0).tocsr(),
                    compressed=False)
    return sp.load_npz(CACHE).tocsr().astype(np.float32)


def split(C: sp.csr_matrix, factors: int) -> None:
    native = native_module("_als")
    X, Y = kernels.als_fit(C, factors=factors, iterations=2, num_threads=2, random_state=0)
    halves = (("users", als._Rows(C), X, Y), ("items", als._Rows(C.T.tocsr()), Y, X))
    buffer_rows = als._buffer_rows(factors)
    seconds: dict = {}
    with threadpool_limits(1):
        for _ in range(5):
            for steps in (1, 3, 20):
                for name, rows, solved, fixed in halves:
                    A0 = als._regularized_gram(fixed, REGULARIZATION)
                    start = time.process_time()
                    native.least_squares_cg(
                        rows.indptr, rows.indices, rows.data, solved.copy(), fixed, A0,
                        rows.blocks(native, buffer_rows), steps, buffer_rows, 1, None,
                    )
                    seconds.setdefault((name, steps), []).append(time.process_time() - start)
            start = time.process_time()
            als._regularized_gram(X, REGULARIZATION)
            als._regularized_gram(Y, REGULARIZATION)
            seconds.setdefault("gram", []).append(time.process_time() - start)
    best = {key: min(values) for key, values in seconds.items()}
    for name, *_ in halves:
        step = (best[(name, 20)] - best[(name, 3)]) / 17
        print(f"{name}: per CG step {step:.4f} s, gather + initial residual "
              f"{best[(name, 1)] - step:.4f} s, 3 steps in all {best[(name, 3)]:.4f} s")
    total = best[("users", 3)] + best[("items", 3)] + best["gram"]
    print(f"Gram matrices {best['gram']:.4f} s; iteration at 3 steps {total:.4f} s")


def fit(C: sp.csr_matrix, which: str, factors: int, iterations: int) -> None:
    wall, cpu, last = [], [], [time.process_time()]

    def clock(iteration, seconds, loss):
        now = time.process_time()
        wall.append(seconds)
        cpu.append(now - last[0])
        last[0] = now

    if which == "ours":
        X, Y = kernels.als_fit(C, factors=factors, regularization=REGULARIZATION,
                               iterations=iterations, solver="cg", num_threads=2,
                               random_state=0, callback=clock)
    else:
        from implicit.cpu.als import AlternatingLeastSquares

        warnings.filterwarnings("ignore", module="implicit")
        model = AlternatingLeastSquares(
            factors=factors, regularization=REGULARIZATION, alpha=1.0, iterations=iterations,
            use_cg=True, num_threads=2, random_state=0,
        )
        with threadpool_limits(1, "blas"):
            last[0] = time.process_time()
            model.fit(C, show_progress=False, callback=clock)
        X, Y = model.user_factors, model.item_factors
    print(f"{which}: s/iter median {statistics.median(wall):.3f}, "
          f"CPU s/iter median {statistics.median(cpu):.3f}, "
          f"loss {kernels.als_loss(C, X, Y, REGULARIZATION):.10g}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("split", "fit"))
    parser.add_argument("which", nargs="?", choices=("ours", "implicit"), default="ours")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args(argv)
    C = training_matrix()
    if args.mode == "split":
        split(C, args.factors)
    else:
        fit(C, args.which, args.factors, args.iterations)


if __name__ == "__main__":
    main()
