"""User-based CF: UserKNN against scipy and plain numpy, time and memory.

The task timed is the whole of ``UserKNN.fit``: the k nearest users of every
user (cosine), then each user's n best items by their neighbours' votes,
seen items excluded (every interaction counts as seen here, as in a shop
where every item is a purchase). Ours also finds the reason of every
recommendation; the references do not (they would only be slower).

Datasets (one table each):

- synthetic: 100,000 users x 20,000 items, 1,000,000 interactions,
  power-law on both sides, fixed seed (benchmarks.datasets.synthetic_power_law
  with its default exponents): the size of issue #24's goal (<= 10 s, peak
  memory <= 2x input plus output).
- online-retail: the UCI Online Retail purchases (customers x stock codes,
  quantities summed), from ../shared/data/online-retail (CC BY 4.0).

Contenders, each timed in a fresh subprocess so its peak RSS is its own:

- ours, 1 and 2 threads: ``UserKNN(k).fit(matrix, n_recommendations=n)``;
- scipy: per block of 2,048 users the sparse product ``X[block] @ X.T``
  (float64), cosine, the top k per row, then ``neighbours @ X``, seen
  dropped, the top n per row (django_recs.algorithms.ranking's vectorised
  selections); one thread (scipy's sparse products are single-threaded);
- numpy: the naive dense path, per block of 512 users: the dense rows of
  ``X[block] @ X.T``, cosine, ``np.argpartition`` for the top k, the votes
  as a dense block of n_items, ``np.argpartition`` for the top n.
  implicit has no user-based recommender to compare with.

Times are the median of ``--runs`` runs (3 by default), wall-clock seconds;
"peak RSS MB" is the process's high-water mark, "extra MB" the peak minus
the RSS just before the call (what the call needed, output included), and
"mem/(in+out)" is (input + extra) / (input + output): input = the weights
and seen CSR arrays, output = the lists, scores and reasons (12 n bytes per
user) plus ours' neighbour rows (8 k bytes per user). The goal is <= 2.

The agreement line compares ours (1 thread) with scipy: users whose lists
are identical, and the largest relative score difference.

    python benchmarks/bench_userknn.py [--quick] [--k 50] [--n 50] [--runs 3]
                                       [--datasets synthetic,online-retail]
                                       [--contenders ours,scipy,numpy]

``--quick`` uses a 20,000 x 5,000 synthetic matrix with 200,000
interactions. On a shared machine timings are noisy; compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import scipy.sparse as sp

from benchmarks.bench_similarity import _csr_bytes, _current_rss, _peak_rss, _reset_peak_rss

FULL_SYNTHETIC = {"n_users": 100_000, "n_items": 20_000, "nnz": 1_000_000}
QUICK_SYNTHETIC = {"n_users": 20_000, "n_items": 5_000, "nnz": 200_000}

# (label, contender, threads)
CONTENDERS = [
    ("ours (UserKNN)", "ours", 1),
    ("ours (UserKNN)", "ours", 2),
    ("scipy X @ X.T, blocked", "scipy", 1),
    ("naive numpy, dense blocks", "numpy", 1),
]

SCIPY_BLOCK = 2048
NUMPY_BLOCK = 512


# --- the references ---------------------------------------------------------------------


def _cosine_block(X64: sp.csr_matrix, XT: sp.csr_matrix, norms: np.ndarray, start: int,
                  stop: int) -> sp.csr_matrix:
    """Cosine of users [start, stop) with every user, self-pairs and zeros dropped (float32)."""
    product = (X64[start:stop] @ XT).tocsr()
    product.sort_indices()
    rows = np.repeat(np.arange(start, stop), np.diff(product.indptr))
    product.data = (product.data / (norms[rows] * norms[product.indices])).astype(np.float32)
    product.data[product.indices == rows] = 0.0
    product = product.astype(np.float32)
    product.eliminate_zeros()
    return product


def scipy_reference(X: sp.csr_matrix, seen: sp.csr_matrix, k: int, n: int):
    from django_recs.algorithms.ranking import drop_entries, sparse_top_n

    n_users = X.shape[0]
    X64 = X.astype(np.float64)
    XT = X64.T.tocsr()
    norms = np.sqrt(np.asarray(X64.multiply(X64).sum(axis=1)).ravel())
    recommended = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.zeros((n_users, n), dtype=np.float32)
    for start in range(0, n_users, SCIPY_BLOCK):
        stop = min(start + SCIPY_BLOCK, n_users)
        top, values = sparse_top_n(_cosine_block(X64, XT, norms, start, stop), k)
        keep = top >= 0
        neighbours = sp.csr_matrix(
            (values[keep].astype(np.float64), (np.nonzero(keep)[0], top[keep])),
            shape=(stop - start, n_users))
        votes = drop_entries((neighbours @ X64).tocsr(), seen[start:stop])
        votes.sort_indices()
        votes.data = votes.data.astype(np.float32)
        recommended[start:stop], scores[start:stop] = sparse_top_n(votes.astype(np.float32), n)
    return recommended, scores


def _dense_top(values: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the ``count`` largest positive values, best first (argpartition, then a sort)."""
    count = min(count, values.shape[1])
    part = np.argpartition(-values, count - 1, axis=1)[:, :count]
    chosen = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-chosen, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    part[chosen <= 0] = -1
    return part.astype(np.int32), np.where(chosen > 0, chosen, 0).astype(np.float32)


def numpy_reference(X: sp.csr_matrix, seen: sp.csr_matrix, k: int, n: int):
    n_users = X.shape[0]
    X64 = X.astype(np.float64)
    XT = X64.T.tocsr()
    norms = np.sqrt(np.asarray(X64.multiply(X64).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    recommended = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.zeros((n_users, n), dtype=np.float32)
    for start in range(0, n_users, NUMPY_BLOCK):
        stop = min(start + NUMPY_BLOCK, n_users)
        similarity = (X64[start:stop] @ XT).toarray()
        similarity /= norms[start:stop, None] * norms[None, :]
        similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top, values = _dense_top(similarity, k)
        del similarity
        keep = top >= 0
        neighbours = sp.csr_matrix((values[keep], (np.nonzero(keep)[0], top[keep])),
                                   shape=(stop - start, n_users))
        votes = (neighbours @ X64).toarray()
        votes[seen[start:stop].toarray() != 0] = 0.0
        recommended[start:stop], scores[start:stop] = _dense_top(votes.astype(np.float32), n)
    return recommended, scores


# --- child: one contender, one run -------------------------------------------------------


def run_child(contender: str, weights_path: str, seen_path: str, k: int, n: int, threads: int,
              save: str | None) -> dict:
    X = sp.load_npz(weights_path).tocsr()
    seen = sp.load_npz(seen_path).tocsr()
    input_bytes = _csr_bytes(X) + _csr_bytes(seen)
    if contender == "ours":
        from django_recs.algorithms import UserKNN
        from django_recs.kernels._native import native_module
        from django_recs.matrix import InteractionMatrix

        native_module("_similarity")
        native_module("_vote")  # loaded before measuring, as imports above
        matrix = InteractionMatrix.from_csr(X, seen)  # float32 weights, float32 seen pattern
        X = seen = None  # only the matrix's copies stay

        def call():
            result = UserKNN(k=k).fit(matrix, n_recommendations=n, num_threads=threads)
            return result.recommended, result.recommended_scores, result

    elif contender == "scipy":
        def call():
            return (*scipy_reference(X, seen, k, n), None)

    elif contender == "numpy":
        def call():
            return (*numpy_reference(X, seen, k, n), None)

    else:
        raise SystemExit(f"unknown contender {contender}")

    _reset_peak_rss()
    rss_before = _current_rss()
    start = time.perf_counter()
    recommended, scores, result = call()
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    output_bytes = recommended.nbytes + scores.nbytes
    if result is not None:  # ours also returns the reasons and the neighbour rows
        output_bytes += result.reasons.nbytes + _csr_bytes(result.user_neighbours)
    if save:
        np.savez(save, recommended=recommended, scores=scores)
    measured = {"seconds": seconds, "peak": peak, "extra": max(peak - rss_before, 0),
                "input_bytes": input_bytes, "output_bytes": output_bytes}
    if result is not None and save:
        measured.update(phases(matrix, result, k, n, threads))
    return measured


def phases(matrix, result, k: int, n: int, threads: int) -> dict:
    """The two phases timed apart (after the measured call) and their work terms."""
    from django_recs import kernels

    weights = matrix.weights
    started = time.perf_counter()
    neighbours = kernels.user_similarity(weights, k, num_threads=threads)
    middle = time.perf_counter()
    kernels.neighbour_vote(weights, neighbours, n, seen=matrix.seen, num_threads=threads)
    ended = time.perf_counter()
    history = np.diff(weights.indptr)
    return {"neighbour_seconds": middle - started, "vote_seconds": ended - middle,
            "votes": float(history[result.user_neighbours.indices].sum())}


# --- parent: datasets, subprocesses, tables ------------------------------------------------


def prepare_datasets(names: list[str], quick: bool, workdir: Path) -> dict[str, tuple[Path, Path]]:
    from benchmarks.datasets import online_retail, synthetic_power_law

    paths = {}
    for name in names:
        if name == "synthetic":
            X = synthetic_power_law(**(QUICK_SYNTHETIC if quick else FULL_SYNTHETIC))
        elif name == "online-retail":
            X = online_retail().matrix()
        else:
            raise SystemExit(f"unknown dataset {name}")
        X = X.tocsr()
        X.sum_duplicates()
        seen = X.copy()
        seen.data[:] = 1.0
        paths[name] = (workdir / f"{name}.npz", workdir / f"{name}-seen.npz")
        sp.save_npz(paths[name][0], X, compressed=False)
        sp.save_npz(paths[name][1], seen, compressed=False)
    return paths


def run_contender(contender, paths, k, n, threads, runs, save=None) -> dict:
    measurements = []
    for run in range(runs):
        command = [sys.executable, __file__, "--child", contender, "--matrix", str(paths[0]),
                   "--seen", str(paths[1]), "--k", str(k), "--n", str(n),
                   "--threads", str(threads)]
        if save and run == 0:
            command += ["--save", str(save)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        measurements.append(json.loads(output.strip().splitlines()[-1]))
    summary = dict(measurements[0])
    for key in ("seconds", "peak", "extra"):
        summary[key] = statistics.median(m[key] for m in measurements)
    summary["all_seconds"] = [m["seconds"] for m in measurements]
    return summary


def co_occurrences(X: sp.csr_matrix) -> float:
    """The neighbour phase's work (docs/userknn.md): the sum over items of their buyers squared."""
    buyers = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    return float((buyers**2).sum())


def formula_bytes(X: sp.csr_matrix, k: int, n: int, threads: int) -> dict:
    """Input, output and peak of UserKNN.fit by the formulas of docs/userknn.md (bytes).

    U users, I items, P stored pairs, S seen pairs (= P here), T threads.
    """
    users, items = X.shape
    pairs = seen_pairs = X.nnz
    k = min(k, users - 1)
    n = min(n, items)
    held = 8 * pairs + 8 * seen_pairs + 8 * users  # the matrix: weights and seen CSR
    output = 12 * n * users + 8 * k * users  # lists, scores, reasons; neighbour rows
    extra = (8 * pairs + 4 * items  # X transposed (items x users)
             + 80 * users + pairs  # per-user arrays of the kernels and the blocks
             + 16 * k * min(users, 1 << 13)  # one block's neighbour rows, twice
             + threads * (12 * users + 20 * items + 2 * 2**20))  # per-thread buffers
    return {"input": held, "output": output, "peak": held + output + extra}


def agreement(ours: Path, reference: Path) -> str:
    a, b = np.load(ours), np.load(reference)
    same = (a["recommended"] == b["recommended"]).all(axis=1)
    listed = (a["recommended"] >= 0) & (b["recommended"] >= 0)
    rel = np.abs(a["scores"][listed] - b["scores"][listed]) / np.maximum(b["scores"][listed], 1e-30)
    return (f"agreement with scipy: {int(same.sum()):,}/{same.size:,} users' lists identical; "
            f"max relative score difference {rel.max() if rel.size else 0.0:.1e}")


def print_table(name: str, X: sp.csr_matrix, k: int, n: int,
                rows: list[tuple[str, int, dict]]) -> None:
    def mb(value):
        return value / 2**20

    scipy_time = next((r["seconds"] for label, _t, r in rows if label.startswith("scipy")), None)
    numpy_time = next((r["seconds"] for label, _t, r in rows if label.startswith("naive")), None)
    print(f"\n## {name}: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} interactions, "
          f"k={k}, n={n}\n")
    print(f"| {'contender':<26} | {'threads':>7} | {'seconds':>8} | {'peak RSS MB':>11} "
          f"| {'extra MB':>8} | {'mem/(in+out)':>12} | {'vs scipy':>8} | {'vs numpy':>8} |")
    print(f"|{'-' * 28}|{'-' * 8}:|{'-' * 9}:|{'-' * 12}:|{'-' * 9}:|{'-' * 13}:|"
          f"{'-' * 9}:|{'-' * 9}:|")
    for label, threads, r in rows:
        ratio = (r["input_bytes"] + r["extra"]) / (r["input_bytes"] + r["output_bytes"])
        versus = [f"{r['seconds'] / t:7.2f}x" if t else "      -" for t in (scipy_time, numpy_time)]
        print(f"| {label:<26} | {threads:>7} | {r['seconds']:8.2f} | {mb(r['peak']):11.1f} "
              f"| {mb(r['extra']):8.1f} | {ratio:12.2f} | {versus[0]} | {versus[1]} |")
    ours = next(r for label, _t, r in rows if label.startswith("ours"))
    print(f"\ninput {mb(ours['input_bytes']):.1f} MB (weights and seen CSR), output "
          f"{mb(ours['output_bytes']):.1f} MB (lists, scores, reasons, neighbour rows); "
          "each run's seconds: " + "; ".join(
              f"{label} {t}t " + ", ".join(f"{s:.2f}" for s in r["all_seconds"])
              for label, t, r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic matrix")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", default="synthetic,online-retail")
    parser.add_argument("--contenders", default="ours,scipy,numpy")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--matrix", help=argparse.SUPPRESS)
    parser.add_argument("--seen", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_child(args.child, args.matrix, args.seen, args.k, args.n,
                                   args.threads, args.save)))
        return

    wanted = set(args.contenders.split(","))
    print(f"UserKNN benchmark (cosine, k={args.k}, n={args.n}, median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs{', quick' if args.quick else ''})")
    with tempfile.TemporaryDirectory(prefix="bench_userknn_") as tmp:
        workdir = Path(tmp)
        datasets = prepare_datasets(args.datasets.split(","), args.quick, workdir)
        for name, paths in datasets.items():
            X = sp.load_npz(paths[0]).tocsr()
            rows = []
            for label, contender, threads in CONTENDERS:
                if contender not in wanted:
                    continue
                save = None
                if (contender, threads) in {("ours", 1), ("scipy", 1)}:
                    save = workdir / f"{name}-{contender}.npz"
                result = run_contender(contender, paths, args.k, args.n, threads, args.runs, save)
                rows.append((label, threads, result))
            print_table(name, X, args.k, args.n, rows)
            work = co_occurrences(X)
            print(f"co-occurrences (sum over items of buyers^2): {work:.3g}")
            for label, threads, r in rows:
                if "neighbour_seconds" not in r:
                    continue
                formula = formula_bytes(X, args.k, args.n, threads)
                print(f"{label}, {threads} thread(s), phases apart: neighbours "
                      f"{r['neighbour_seconds']:.2f} s = {1e9 * r['neighbour_seconds'] / work:.2f} ns "
                      f"per co-occurrence, votes and reasons {r['vote_seconds']:.2f} s = "
                      f"{1e9 * r['vote_seconds'] / max(r['votes'], 1):.2f} ns per vote "
                      f"({r['votes']:.3g} votes)")
                print(f"  formula: peak {formula['peak'] / 2**20:.1f} MB = input "
                      f"{formula['input'] / 2**20:.1f} + output {formula['output'] / 2**20:.1f} + "
                      f"{(formula['peak'] - formula['input'] - formula['output']) / 2**20:.1f}; "
                      f"measured: input + extra = "
                      f"{(r['input_bytes'] + r['extra']) / 2**20:.1f} MB")
            if {"ours", "scipy"} <= wanted:
                print(agreement(workdir / f"{name}-ours.npz", workdir / f"{name}-scipy.npz"))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
