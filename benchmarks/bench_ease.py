"""EASE: time and memory of the dense solve at 5k, 10k and 20k items, against numpy's inverse.

For each catalogue size n (every item in the model: ``max_items`` = n):

- gram s: ``X.T @ X`` into a dense float32 array (column strips of the sparse product);
- ours f32 / ours f64 s: ``kernels.ease_weights`` (LAPACK potrf + potri in
  place, then B = -P / diag P with a zero diagonal) in float32 and float64;
- numpy inv s: the textbook reference, ``np.linalg.inv(G + l2 I)`` in
  float64 and the same scaling (skipped above ``--naive-max`` items: it
  needs three n x n float64 arrays);
- fit s: the whole ``EASE(max_items=n).fit`` (float32), 50 recommendations
  and reasons per user and the k = 50 similar items per item;
- peak MB: the largest memory traced (tracemalloc) during the float32 solve
  with the Gram matrix, and during the float64 one; formula MB: 4 n^2 and
  8 n^2 bytes (one n x n array: Gram, factor, inverse and B share it);
- cube fit s: the float32 solve time predicted by t = c n^3, c fitted at
  the smallest size;
- f32 err: max |B32 - B64| / max |B64|;
- numpy/ours f32: how many times longer numpy's inverse takes than ours in float32.

Data: ``benchmarks.datasets.synthetic_power_law`` with 100,000 users, n
items and 20 n interactions (fixed seed). Times are medians of ``--runs``.

``--stages`` prints instead the stages of a float32 fit side by side with
the numpy paths they replace: the weights (Gram and solve), the similar
items (compiled selection / ``dense_top_n``) and the personal lists with
reasons (``kernels.history_top_n`` / ``recommend_dense_numpy``: dense
blocks of scores, ``np.partition``), and the share of list positions (of
the users with a list) on which the two agree.

    python benchmarks/bench_ease.py [--sizes 5000,10000,20000] [--runs 1] [--naive-max 10000]
    python benchmarks/bench_ease.py --stages [--sizes 5000,10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.datasets import synthetic_power_law
from django_recs.algorithms import EASE
from django_recs.algorithms import ease as ease_module
from django_recs.kernels._reference.ease import ease_weights as reference_weights
from django_recs.kernels.ease import ease_weights, gram_matrix
from django_recs.matrix import InteractionMatrix

L2 = 200.0


def timed(function, runs: int):
    times, result = [], None
    for _ in range(runs):
        result = None
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def traced_peak_mb(function) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def measure(n: int, runs: int, naive_max: int, threads: int) -> dict[str, float]:
    """Every column of one catalogue size (seconds, MB, relative error)."""
    X = synthetic_power_law(100_000, n, 20 * n, seed=7)
    print(f"{n} items: {X.nnz:,} interactions", file=sys.stderr, flush=True)
    gram_s, gram = timed(lambda: gram_matrix(X, dtype=np.float32), runs)
    f32_s, B32 = timed(lambda: ease_weights(gram.copy(order="F"), L2, num_threads=threads), runs)
    gram = None  # at most one float32 and two float64 n x n arrays alive at once
    gram64 = gram_matrix(X, dtype=np.float64)
    f64_s, B64 = timed(lambda: ease_weights(gram64.copy(order="F"), L2, num_threads=threads),
                       runs)
    error = float(np.abs(B32 - B64).max() / np.abs(B64).max())
    B32 = None
    naive_s = float("nan")
    if n <= naive_max:
        naive_s, naive = timed(lambda: reference_weights(gram64, L2), runs)
        assert np.allclose(naive, B64, atol=1e-9 * np.abs(B64).max())
        naive = None
    B64 = gram64 = None
    peak32 = traced_peak_mb(lambda: ease_weights(gram_matrix(X, dtype=np.float32), L2,
                                                 num_threads=threads))
    peak64 = traced_peak_mb(lambda: ease_weights(gram_matrix(X, dtype=np.float64), L2,
                                                 num_threads=threads))
    matrix = InteractionMatrix.from_csr(X, X)
    fit_s, _ = timed(lambda: EASE(l2=L2, max_items=n).fit(
        matrix, n_recommendations=50, num_threads=threads), runs)
    return {"gram": gram_s, "f32": f32_s, "f64": f64_s, "naive": naive_s, "fit": fit_s,
            "peak32": peak32, "peak64": peak64, "error": error}


def measure_stages(n: int, runs: int, threads: int) -> dict[str, float]:
    """The stages of one float32 fit, compiled and numpy (seconds), and their agreement."""
    X = synthetic_power_law(100_000, n, 20 * n, seed=7)
    print(f"{n} items: {X.nnz:,} interactions", file=sys.stderr, flush=True)
    matrix = InteractionMatrix.from_csr(X, X)
    model = EASE(l2=L2, max_items=n)
    weights_s, (kept, B) = timed(lambda: model.weights(matrix, num_threads=threads), runs)
    similar_s, _ = timed(lambda: model.similar_items(matrix, kept, B, num_threads=threads), runs)
    compiled = ease_module.kernels.history_top_n
    ease_module.kernels.history_top_n = (
        lambda history, weights, k, num_threads=0: ease_module.dense_top_n(weights, k))
    try:
        similar_numpy_s, _ = timed(
            lambda: model.similar_items(matrix, kept, B, num_threads=threads), runs)
    finally:
        ease_module.kernels.history_top_n = compiled
    lists_s, lists = timed(lambda: ease_module.recommend_dense(
        matrix, kept, B, 50, num_threads=threads), runs)
    numpy_s, reference = timed(lambda: ease_module.recommend_dense_numpy(
        matrix, kept, B, 50, num_threads=threads), runs)
    listed = reference[0][:, 0] >= 0  # agreement over the users with a list only
    return {"weights": weights_s, "similar": similar_s, "similar_numpy": similar_numpy_s,
            "lists": lists_s, "lists_numpy": numpy_s,
            "same": float((lists[0][listed] == reference[0][listed]).mean()),
            "same_reasons": float((lists[2][listed] == reference[2][listed]).mean()),
            "users": int(listed.sum())}


def print_table(header, rows) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def main_stages(sizes: list[int], runs: int, threads: int) -> int:
    header = ("items", "users with a list", "weights s", "similar s", "similar numpy s",
              "lists s", "lists numpy s", "numpy / ours", "same items", "same reasons",
              "fit s (ours)", "fit s (numpy paths)")
    rows = []
    for n in sizes:
        m = measure_stages(n, runs, threads)
        rows.append((f"{n:,}", f"{m['users']:,}", f"{m['weights']:.2f}", f"{m['similar']:.2f}",
                     f"{m['similar_numpy']:.2f}", f"{m['lists']:.2f}",
                     f"{m['lists_numpy']:.2f}", f"{m['lists_numpy'] / m['lists']:.1f}x",
                     f"{m['same']:.4f}", f"{m['same_reasons']:.4f}",
                     f"{m['weights'] + m['similar'] + m['lists']:.2f}",
                     f"{m['weights'] + m['similar_numpy'] + m['lists_numpy']:.2f}"))
    print_table(header, rows)
    print(f"\nl2={L2}; 100,000 users, 20 interactions per item on average, 50 recommendations "
          f"per user; medians of {runs} run(s); {platform.machine()}, {os.cpu_count()} cores, "
          f"threads={threads or 'all'} (a shared machine: times are indicative).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--naive-max", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--stages", action="store_true",
                        help="The stages of a fit, compiled against the numpy paths.")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.stages:
        return main_stages(sizes, args.runs, args.threads)
    header = ("items", "gram s", "ours f32 s", "ours f64 s", "numpy inv s", "numpy/ours f32",
              "fit s", "peak MB f32", "formula f32", "peak MB f64", "formula f64",
              "cube fit s", "f32 err")
    rows, constant = [], None
    for n in sizes:
        measured = measure(n, args.runs, args.naive_max, args.threads)
        if constant is None:
            constant = measured["f32"] / n**3
        rows.append((f"{n:,}", f"{measured['gram']:.2f}", f"{measured['f32']:.2f}",
                     f"{measured['f64']:.2f}",
                     "-" if np.isnan(measured["naive"]) else f"{measured['naive']:.2f}",
                     "-" if np.isnan(measured["naive"])
                     else f"{measured['naive'] / measured['f32']:.1f}x",
                     f"{measured['fit']:.2f}", f"{measured['peak32']:,.0f}",
                     f"{4 * n * n / 1e6:,.0f}", f"{measured['peak64']:,.0f}",
                     f"{8 * n * n / 1e6:,.0f}", f"{constant * n**3:.2f}",
                     f"{measured['error']:.1e}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    print(f"\nl2={L2}; 100,000 users, 20 interactions per item on average; medians of "
          f"{args.runs} run(s); {platform.machine()}, {os.cpu_count()} cores, "
          f"threads={args.threads or 'all'} (a shared machine: times are indicative).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
