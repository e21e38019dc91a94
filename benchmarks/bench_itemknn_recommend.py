"""ItemKNN's recommendation step: the compiled kernel against the scipy path it replaced.

The step timed is, for every user, the n best items of ``weights @ similar``
(item neighbours from ``kernels.item_similarity``, cosine, k per item) with
the seen items excluded, and the reason of each (the history item that
contributed most). Every interaction counts as seen, as in a shop where every
item is a purchase.

Dataset: synthetic, 100,000 users x 20,000 items, 1,000,000 interactions,
power-law on both sides, fixed seed (benchmarks.datasets.synthetic_power_law
with its default exponents); ``--quick``: 20,000 x 5,000, 200,000.

Contenders, in one process, timed interleaved (one run of each in turn,
``--runs`` rounds, median wall-clock seconds):

- previous scipy path: ``recommend_from_neighbours`` as it was before the
  kernel (per chunk of users ``history @ similar``, seen dropped,
  ``ranking.sparse_top_n``, ``ranking.strongest_history_item``; the chunks
  on a pool of ``--threads`` Python threads);
- reference: ``kernels._reference.neighbours`` (the same scipy path, one
  thread; the fallback without the compiled module);
- kernel: ``kernels.neighbour_top_n`` on 1 and ``--threads`` threads;
- recommend_from_neighbours: what ItemKNN runs now (the kernel on chunks of
  users, for progress), ``--threads`` threads.

"x faster" is the previous path's median wall time over the row's; "CPU s"
is the process's CPU time during the call (all its threads), and "x less
CPU" the previous path's over the row's: on a machine shared with other
jobs the threads of a call wait for cores, which inflates wall times and
hides what a second thread gains, while CPU time stays close to the work
done. The agreement
line compares the kernel with the reference (whose ties are broken by the
lower column, like the kernel's; the previous path broke them in scipy's
storage order).

    python benchmarks/bench_itemknn_recommend.py [--quick] [--k 50] [--n 50]
                                                 [--runs 5] [--threads 2]

Run on a shared machine, timings are noisy; compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

FULL = {"n_users": 100_000, "n_items": 20_000, "nnz": 1_000_000}
QUICK = {"n_users": 20_000, "n_items": 5_000, "nnz": 200_000}


def previous_scipy_path(matrix, similar, n, threads):
    """``recommend_from_neighbours`` before the kernel (the scipy path), verbatim in substance."""
    from django_recs.algorithms.ranking import (
        CHUNK_ENTRIES,
        csr_values_at,
        drop_entries,
        sparse_top_n,
        strongest_history_item,
        user_chunks,
    )

    weights = matrix.weights
    n_users = weights.shape[0]
    recommended = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.zeros((n_users, n), dtype=np.float32)
    reasons = np.full((n_users, n), -1, dtype=np.int32)
    neighbours_per_item = np.diff(similar.indptr)
    history_lengths = np.diff(weights.indptr)
    expanded = np.concatenate(([0], np.cumsum(neighbours_per_item[weights.indices])))
    cost = expanded[weights.indptr[1:]] - expanded[weights.indptr[:-1]] + history_lengths * n
    similar = similar.copy()
    similar.sort_indices()

    def affinity(items, targets):
        return csr_values_at(similar, items, targets)

    def recommend_chunk(rows):
        history = weights[rows]
        chunk_scores = drop_entries(history @ similar, matrix.seen[rows])
        top, top_scores = sparse_top_n(chunk_scores, n)
        recommended[rows] = top
        scores[rows] = top_scores
        reasons[rows] = strongest_history_item(history, top, affinity)
        return rows

    chunks = list(user_chunks(cost, budget=CHUNK_ENTRIES // 2))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(recommend_chunk, chunks))
    return recommended, scores, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic matrix")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from benchmarks.datasets import synthetic_power_law
    from django_recs import kernels
    from django_recs.algorithms.itemknn import recommend_from_neighbours
    from django_recs.kernels._reference import neighbours as reference
    from django_recs.matrix import InteractionMatrix

    size = QUICK if args.quick else FULL
    X = synthetic_power_law(**size).tocsr()
    seen = X.copy()
    seen.data[:] = 1.0
    matrix = InteractionMatrix(
        weights=X, seen=seen, user_ids=np.arange(X.shape[0]), item_ids=np.arange(X.shape[1])
    )
    similar = kernels.item_similarity(X, args.k, metric="cosine").tocsr()
    n, threads = args.n, args.threads

    contenders = [
        ("previous scipy path", threads, lambda: previous_scipy_path(matrix, similar, n, threads)),
        ("reference (scipy)", 1, lambda: reference.neighbour_top_n(X, similar, n, seen)),
        ("kernel neighbour_top_n", 1,
         lambda: kernels.neighbour_top_n(X, similar, n, exclude=seen, num_threads=1)),
        ("kernel neighbour_top_n", threads,
         lambda: kernels.neighbour_top_n(X, similar, n, exclude=seen, num_threads=threads)),
        ("recommend_from_neighbours", threads,
         lambda: recommend_from_neighbours(matrix, similar, n, num_threads=threads)),
    ]
    times: dict[int, list[float]] = {index: [] for index in range(len(contenders))}
    cpu_times: dict[int, list[float]] = {index: [] for index in range(len(contenders))}
    results = {}
    for _ in range(args.runs):
        for index, (_label, _threads, call) in enumerate(contenders):
            cpu_start, start = time.process_time(), time.perf_counter()
            results[index] = call()
            times[index].append(time.perf_counter() - start)
            cpu_times[index].append(time.process_time() - cpu_start)

    print(
        f"ItemKNN recommendation step ({X.shape[0]:,} users x {X.shape[1]:,} items, "
        f"{X.nnz:,} interactions, k={args.k}, n={n}, {similar.nnz:,} neighbour pairs; "
        f"median of {args.runs} runs, {os.cpu_count()} CPUs{', quick' if args.quick else ''})\n"
    )
    previous = statistics.median(times[0])
    previous_cpu = statistics.median(cpu_times[0])
    print(f"| {'contender':<27} | {'threads':>7} | {'seconds':>8} | {'x faster':>8} "
          f"| {'CPU s':>7} | {'x less CPU':>10} |")
    print(f"|{'-' * 29}|{'-' * 8}:|{'-' * 9}:|{'-' * 9}:|{'-' * 8}:|{'-' * 11}:|")
    for index, (label, contender_threads, _call) in enumerate(contenders):
        median = statistics.median(times[index])
        cpu = statistics.median(cpu_times[index])
        print(f"| {label:<27} | {contender_threads:>7} | {median:8.3f} | "
              f"{previous / median:7.1f}x | {cpu:7.3f} | {previous_cpu / cpu:9.1f}x |")

    kernel, expected = results[3], results[1]
    identical = np.all([np.array_equal(a, b) for a, b in zip(kernel, expected, strict=True)])
    same_users = (kernel[0] == expected[0]).all(axis=1).mean()
    same_sets = np.mean([set(a) == set(b) for a, b in zip(kernel[0], results[0][0], strict=True)])
    print(
        f"\nagreement: kernel and reference {'identical' if identical else 'DIFFER'} "
        f"(lists, scores, reasons; {same_users:.2%} of users' lists equal); "
        f"same item sets as the previous path for {same_sets:.2%} of users"
    )


if __name__ == "__main__":
    main()
