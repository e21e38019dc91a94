"""Implicit ALS and top-N: our kernels against implicit's CPU model.

Datasets (one table each):

- synthetic: 100,000 users x 50,000 items, 5,000,000 interactions with
  power-law users and items, fixed seed (benchmarks.datasets.synthetic_power_law).
  It has no structure to recover, so its held-out metrics only check that
  both models agree; 10% of the interactions (fixed seed) are held out.
- online-retail: the UCI Online Retail purchases (customers x stock codes,
  quantities summed), from ../shared/data/online-retail (CC BY 4.0, see the
  README there), trained on invoices before 2011-10-01 and evaluated on the
  purchases from that date (items a customer had already bought are not
  counted as held-out hits; only customers with a purchase on both sides).

Both models get the identical float32 confidence matrix
C = 1 + alpha * log(1 + weight) (alpha 10 by default) on the training
interactions: ours through ``kernels.als_fit(C, ...)``, implicit through
``implicit.cpu.als.AlternatingLeastSquares(alpha=1.0, ...).fit(C)`` (implicit
0.7 takes the users x items matrix and uses its values as confidences).
Rows: ours with solver "cg" and "cholesky", implicit with use_cg True and
False, at 64 and 128 factors, 15 iterations, regularization 0.01, 3 CG steps,
2 threads, the same random_state. BLAS is limited to one thread for both
(implicit recommends it and warns otherwise; ours does it itself).

Columns:

- s/iter: the median of the per-iteration wall-clock times of one fit (each
  of the 15 iterations is a repeat), and its ratio to the implicit row with
  the same solver and factors;
- loss: the final training loss of both models' factors through our
  ``kernels.als_loss`` (the unnormalised Hu-Koren-Volinsky loss), and its
  ratio to implicit's;
- P@10, nDCG@10: held-out precision and nDCG at 10 (binary relevance, log2
  discounts, ideal DCG over min(10, held-out items)), averaged over users
  with held-out items, from the top-10 with training items removed;
- top-10 s: wall-clock time to rank every user's top 10 with their training
  items removed, the median of ``--runs`` runs (ours and implicit taking
  turns, so both see the same background load): ours ``kernels.top_n(X, Y, 10,
  exclude=train)``, implicit ``model.recommend(all users, train, N=10,
  filter_already_liked_items=True)``.
- cpu s/iter, top-10 cpu s: the same in process CPU seconds (both threads
  together). On a shared machine wall-clock time depends on what else runs;
  CPU time much less so, so its ratio is the steadier comparison.

    python benchmarks/bench_als.py [--quick] [--runs 3] [--factors 64,128]
                                   [--datasets synthetic,online-retail]
    python benchmarks/bench_als.py --scoring [--runs 5] [--before-topn OLD_topn.so]

``--scoring`` instead times the scoring step of a pipeline run at its 1M
shape: 100,000 users x 20,000 items, 1,000,000 interactions (synthetic
power law), 64 factors trained by ours (15 CG iterations), top 50 of every
user with seen items removed, 2 threads. Rows, taking turns, medians of
``--runs``: ours ``kernels.top_n``; implicit ``model.recommend`` (implicit
fitted on the same matrix, its own factors); the same factors through a
blocked numpy ``U @ V.T`` alone (no selection: the GEMM floor); with
``--before-topn`` a previously built ``_topn`` module given by path (same
call). Then the reasons of those recommendations: ours
``kernels.factor_reasons`` against the numpy reference
(``kernels._reference.reasons``), both checked to agree.

``--quick`` uses a 20,000 x 10,000 synthetic matrix with 400,000
interactions and 5 iterations. Run on a shared machine, timings are noisy;
compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from benchmarks.datasets import online_retail, synthetic_power_law
from django_recs import kernels

FULL_SYNTHETIC = {"n_users": 100_000, "n_items": 50_000, "nnz": 5_000_000}
PIPELINE_1M = {"n_users": 100_000, "n_items": 20_000, "nnz": 1_000_000}
SCORING_N = 50
QUICK_SYNTHETIC = {"n_users": 20_000, "n_items": 10_000, "nnz": 400_000}
THREADS = 2
K = 10


@dataclass
class Split:
    name: str
    train: sp.csr_matrix  # weights, users x items
    held_out: sp.csr_matrix  # relevant items per user (binary)


@dataclass
class Row:
    model: str
    solver: str
    factors: int
    seconds_per_iteration: float
    cpu_per_iteration: float
    loss: float
    precision: float
    ndcg: float
    top_seconds: float
    top_cpu: float


# --- data ----------------------------------------------------------------------------


def synthetic_split(quick: bool) -> Split:
    X = synthetic_power_law(**(QUICK_SYNTHETIC if quick else FULL_SYNTHETIC))
    rng = np.random.default_rng(0)
    coo = X.tocoo()
    test = rng.random(coo.nnz) < 0.1
    train = sp.csr_matrix((coo.data[~test], (coo.row[~test], coo.col[~test])), shape=X.shape)
    held_out = sp.csr_matrix(
        (np.ones(test.sum(), dtype=np.float32), (coo.row[test], coo.col[test])), shape=X.shape
    )
    return Split("synthetic", train, held_out)


def online_retail_split() -> Split:
    train, test = online_retail().temporal_split("2011-10-01")
    test = test.tocsr()
    test.data[:] = 1.0
    # Items bought before the cut-off are removed from the ranking, so they
    # cannot be hits; customers need a history to be ranked at all.
    test = test - test.multiply(train > 0)
    test.eliminate_zeros()
    has_history = np.diff(train.indptr) > 0
    test = sp.diags(has_history.astype(np.float32)) @ test
    test.eliminate_zeros()
    return Split("online-retail", train.tocsr(), test.tocsr())


def confidence(weights: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    C = weights.astype(np.float32, copy=True)
    C.data = (1.0 + alpha * np.log1p(C.data)).astype(np.float32)
    return C


# --- metrics ----------------------------------------------------------------------------


def precision_and_ndcg(recommended: np.ndarray, relevant: sp.csr_matrix, k: int):
    """Mean precision@k and nDCG@k over users with at least one relevant item."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precisions, ndcgs = [], []
    for user in np.flatnonzero(np.diff(relevant.indptr) > 0):
        items = relevant.indices[relevant.indptr[user] : relevant.indptr[user + 1]]
        hits = np.isin(recommended[user, :k], items)
        precisions.append(hits.sum() / k)
        ideal = discounts[: min(k, items.size)].sum()
        ndcgs.append((hits * discounts).sum() / ideal)
    return float(np.mean(precisions)), float(np.mean(ndcgs))


# --- contenders -----------------------------------------------------------------------


class IterationClock:
    """A fit callback recording each sweep's wall-clock and process CPU seconds."""

    def __init__(self):
        self.wall, self.cpu = [], []
        self._cpu = time.process_time()

    def __call__(self, iteration, seconds, loss):
        now = time.process_time()
        self.wall.append(seconds)
        self.cpu.append(now - self._cpu)  # includes the callback's own trivial work
        self._cpu = now

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def fit_ours(C, factors, solver, iterations, regularization):
    clock = IterationClock()
    X, Y = kernels.als_fit(
        C, factors=factors, regularization=regularization, iterations=iterations,
        solver=solver, num_threads=THREADS, random_state=0, callback=clock,
    )
    return X, Y, clock.medians()


def fit_implicit(C, factors, solver, iterations, regularization):
    from implicit.cpu.als import AlternatingLeastSquares

    clock = IterationClock()
    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=1.0, iterations=iterations,
        use_cg=solver == "cg", num_threads=THREADS, random_state=0,
    )
    with threadpool_limits(1, "blas"):
        model.fit(C, show_progress=False, callback=clock)
    return model, clock.medians()


def timed_alternately(functions, runs: int):
    """Run each function ``runs`` times, taking turns, so that all of them see
    the same background load; per function: (median wall seconds, median
    process CPU seconds, last result)."""
    wall = [[] for _ in functions]
    cpu = [[] for _ in functions]
    results = [None] * len(functions)
    for _ in range(runs):
        for index, function in enumerate(functions):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[index] = function()
            wall[index].append(time.perf_counter() - start)
            cpu[index].append(time.process_time() - start_cpu)
    return [
        (statistics.median(w), statistics.median(c), result)
        for w, c, result in zip(wall, cpu, results)
    ]


def run_dataset(split: Split, args) -> list[Row]:
    C = confidence(split.train, args.alpha)
    seen = split.train
    users = np.arange(C.shape[0])
    rows = []
    for factors in args.factors:
        for solver in ("cg", "cholesky"):
            X, Y, ours_per_iteration = fit_ours(
                C, factors, solver, args.iterations, args.regularization
            )
            model, implicit_per_iteration = fit_implicit(
                C, factors, solver, args.iterations, args.regularization
            )

            def ours_top(X=X, Y=Y):
                return kernels.top_n(X, Y, K, exclude=seen, num_threads=THREADS)

            def implicit_top(model=model):
                with threadpool_limits(1, "blas"):
                    return model.recommend(users, seen, N=K, filter_already_liked_items=True)

            ours_timing, implicit_timing = timed_alternately([ours_top, implicit_top], args.runs)
            for name, per_iteration, (U, V), (top_seconds, top_cpu, (recommended, _)) in (
                ("ours", ours_per_iteration, (X, Y), ours_timing),
                ("implicit", implicit_per_iteration, (model.user_factors, model.item_factors),
                 implicit_timing),
            ):
                rows.append(Row(
                    name, solver, factors, *per_iteration,
                    kernels.als_loss(C, U, V, args.regularization),
                    *precision_and_ndcg(recommended, split.held_out, K), top_seconds, top_cpu,
                ))
                print(f"  {name} {solver} f={factors}: {rows[-1]}", flush=True)
    return rows


# --- report -----------------------------------------------------------------------------


def table(split: Split, rows: list[Row], args) -> str:
    baseline = {(r.solver, r.factors): r for r in rows if r.model == "implicit"}
    lines = [
        f"### {split.name}: {split.train.shape[0]:,} users x {split.train.shape[1]:,} items, "
        f"{split.train.nnz:,} training interactions, {split.held_out.nnz:,} held out",
        "",
        f"{args.iterations} iterations, regularization {args.regularization}, "
        f"C = 1 + {args.alpha} log(1 + w), {THREADS} threads, top-10 median of {args.runs}",
        "",
        "| model | solver | factors | s/iter | vs implicit | cpu s/iter | vs implicit "
        "| loss | vs implicit | P@10 | nDCG@10 | top-10 s | vs implicit "
        "| top-10 cpu s | vs implicit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = baseline[(r.solver, r.factors)]
        lines.append(
            f"| {r.model} | {r.solver} | {r.factors} | {r.seconds_per_iteration:.3f} "
            f"| {r.seconds_per_iteration / b.seconds_per_iteration:.2f}x "
            f"| {r.cpu_per_iteration:.3f} | {r.cpu_per_iteration / b.cpu_per_iteration:.2f}x "
            f"| {r.loss:.6g} | {r.loss / b.loss:.4f} | {r.precision:.4f} | {r.ndcg:.4f} "
            f"| {r.top_seconds:.3f} | {r.top_seconds / b.top_seconds:.2f}x "
            f"| {r.top_cpu:.3f} | {r.top_cpu / b.top_cpu:.2f}x |"
        )
    return "\n".join(lines)


# --- scoring at the pipeline's shape -------------------------------------------------


def load_extension(path: str):
    """A compiled ``_topn`` module from another build, imported by file path."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("_topn", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("_topn", loader))
    loader.exec_module(module)
    return module


def numpy_gemm_only(X, Y, block=4096):
    """Every user's scores in blocks of users, thrown away: the sgemm floor."""
    with threadpool_limits(THREADS, "blas"):
        for start in range(0, X.shape[0], block):
            X[start:start + block] @ Y.T


def scoring(args) -> str:
    from django_recs.algorithms.als import confidence as als_confidence
    from django_recs.algorithms.als import normalised_rows
    from django_recs.kernels._reference import reasons as reference_reasons

    weights = synthetic_power_law(**PIPELINE_1M)
    C = als_confidence(weights, args.alpha)
    active = np.flatnonzero(np.diff(weights.indptr) > 0)
    seen = weights[active]
    X, Y = kernels.als_fit(C, factors=64, regularization=args.regularization, iterations=15,
                           num_threads=THREADS, random_state=0)
    X_active = np.ascontiguousarray(X[active])
    model, _ = fit_implicit(C, 64, "cg", 15, args.regularization)
    print(f"pipeline shape {weights.shape}, nnz {weights.nnz:,}, {active.size:,} users scored",
          flush=True)

    def ours():
        return kernels.top_n(X_active, Y, SCORING_N, exclude=seen, num_threads=THREADS)

    def implicit_top():
        with threadpool_limits(1, "blas"):
            return model.recommend(active, seen, N=SCORING_N, filter_already_liked_items=True)

    contenders = [("ours: kernels.top_n", ours), ("implicit: model.recommend", implicit_top),
                  ("numpy U @ V.T only (no selection)", lambda: numpy_gemm_only(X_active, Y))]
    if args.before_topn:
        before = load_extension(args.before_topn)
        pattern = seen.tocsr()

        def before_top():
            items = np.empty((active.size, SCORING_N), dtype=np.int32)
            scores = np.empty((active.size, SCORING_N), dtype=np.float32)
            with threadpool_limits(1, "blas"):
                before.top_n(X_active, Y, SCORING_N, pattern.indptr.astype(np.int64),
                             pattern.indices.astype(np.int32), np.arange(active.size),
                             items, scores, 256, 1024, THREADS)
            return items, scores

        contenders.insert(1, (f"before: {Path(args.before_topn).name}", before_top))
    timings = timed_alternately([function for _, function in contenders], args.runs)
    ours_items = timings[0][2][0]
    if args.before_topn:
        assert (timings[1][2][0] == ours_items).all(), "before and ours differ"
    lines = [
        f"### Scoring at the 1M pipeline shape: {weights.shape[0]:,} users x "
        f"{weights.shape[1]:,} items, {weights.nnz:,} interactions, f=64, n={SCORING_N}, "
        f"{THREADS} threads, median of {args.runs}",
        "",
        "| top-N of every user | wall s | vs ours | cpu s |",
        "|---|---:|---:|---:|",
    ]
    for (name, _), (wall, cpu, _) in zip(contenders, timings):
        lines.append(f"| {name} | {wall:.3f} | {wall / timings[0][0]:.2f}x | {cpu:.3f} |")

    recommended = np.full((weights.shape[0], SCORING_N), -1, dtype=np.int32)
    recommended[active] = ours_items
    unit = normalised_rows(Y)
    history = weights.astype(np.float32)
    reason_timings = timed_alternately([
        lambda: kernels.factor_reasons(history, recommended, unit, num_threads=THREADS),
        lambda: reference_reasons.factor_reasons(history, recommended, unit),
    ], args.runs)
    agree = (reason_timings[0][2] == reason_timings[1][2]).mean()
    lines += [
        "",
        "| reasons of every recommendation | wall s | vs ours | cpu s |",
        "|---|---:|---:|---:|",
    ]
    for name, (wall, cpu, _) in zip(
        ("ours: kernels.factor_reasons", "numpy reference (batched matmul)"), reason_timings
    ):
        lines.append(f"| {name} | {wall:.3f} | {wall / reason_timings[0][0]:.2f}x | {cpu:.3f} |")
    lines += ["", f"reasons equal to the reference's: {agree:.4%}"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--factors", default="64,128")
    parser.add_argument("--datasets", default="synthetic,online-retail")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--scoring", action="store_true",
                        help="time top-N and reasons at the 1M pipeline shape instead")
    parser.add_argument("--before-topn", default=None,
                        help="path of an older compiled _topn module to time alongside")
    args = parser.parse_args(argv)
    args.factors = [int(f) for f in args.factors.split(",")]
    if args.iterations is None:
        args.iterations = 5 if args.quick else 15
    warnings.filterwarnings("ignore", module="implicit")

    print(f"kernels: {kernels.build_info()}", flush=True)
    if args.scoring:
        print()
        print(scoring(args))
        return
    tables = []
    for name in args.datasets.split(","):
        split = synthetic_split(args.quick) if name == "synthetic" else online_retail_split()
        print(f"{name}: {split.train.shape}, train nnz {split.train.nnz}", flush=True)
        tables.append(table(split, run_dataset(split, args), args))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
