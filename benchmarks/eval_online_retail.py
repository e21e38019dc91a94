"""Offline evaluation on the Online Retail purchases, without a database.

    python benchmarks/eval_online_retail.py                      # full table, temporal split 2011-10-01
    python benchmarks/eval_online_retail.py --quick              # a quarter of the customers
    python benchmarks/eval_online_retail.py --report retail.html --markdown

The same evaluation as ``manage.py recs_evaluate`` (django_recs.evaluation's
split, metrics and baselines), on the UCI Online Retail data in ../shared/data:
customers x stock codes, one entry per invoice line, time = invoice date.
Every purchase makes its item "seen". ``--weights lines`` (the default) counts
each invoice line once, as a shop recording one "purchase" event per order
line does; ``--weights quantity`` weighs a line by its quantity (a few bulk
orders of thousands of units then dominate the similarities).
Algorithms: Random and Popular (baselines), ItemKNN with the cosine and the
conditional-probability metric, ALS with today's defaults and as iALS
(frequency-scaled regularisation), EASE, RP3beta, and UserKNN with the
cosine and the asymmetric cosine, each with the parameters printed under
the table. ``--tune`` adds a "tuned" row per algorithm: the parameters
``django_recs.evaluation.tune`` picks on the training part alone (its last
tenth in time is the validation split; the held-out test part is never
seen), searched over ``TUNE_SPACES``; the candidate's own parameters are
always tried first and kept unless beaten on validation. ``--ratio`` adds
each row's nDCG as a multiple of Popular's. ``--cold N`` adds the cold-item
view: the same fits measured only on held-out purchases of items with fewer
than N training interactions (``evaluation.cold_items.cold_item_split``).

Data: Daqing Chen, "Online Retail", UCI Machine Learning Repository, 2015,
https://doi.org/10.24432/C5BW33, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.datasets import online_retail
from django_recs.algorithms import ALS, EASE, ItemKNN, RP3beta, UserKNN
from django_recs.evaluation import TimedInteractions, split_from_spec, tune
from django_recs.evaluation.cold_items import cold_item_split
from django_recs.evaluation.report import format_table, write_report
from django_recs.evaluation.suite import Candidate, run_evaluation

CANDIDATES = [
    Candidate("ItemKNN cosine", ItemKNN, {"k": 50, "metric": "cosine"}),
    Candidate("ItemKNN conditional", ItemKNN, {"k": 50, "metric": "conditional"}),
    Candidate(
        "ALS", ALS, {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 10.0}
    ),
    Candidate("iALS", ALS, {"factors": 128, "iterations": 15, "regularization": 0.3,
                            "regularization_exponent": 1.0, "alpha": 5.0}),
    Candidate("EASE", EASE, {"l2": 200.0}),
    Candidate("RP3beta", RP3beta, {"alpha": 1.0, "beta": 0.5, "k": 100}),
    Candidate("UserKNN cosine", UserKNN, {"k": 50, "metric": "cosine"}),
    Candidate("UserKNN asymmetric", UserKNN, {"k": 50, "metric": "asymmetric", "alpha": 0.4}),
]

#: What ``--tune`` searches per candidate (each includes the candidate's own values).
TUNE_SPACES = {
    "ItemKNN cosine": {"k": [20, 50, 100, 200], "shrink": [0.0, 10.0, 50.0]},
    "ItemKNN conditional": {"k": [20, 50, 100, 200], "alpha": [0.2, 0.5, 0.8]},
    "ALS": {"factors": [64, 128], "regularization": [0.01, 0.1, 1.0], "alpha": [5.0, 10.0, 20.0]},
    "iALS": {"regularization": [0.1, 0.3, 1.0], "alpha": [2.0, 5.0, 10.0],
             "regularization_exponent": [0.5, 1.0]},
    "EASE": {"l2": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]},
    "RP3beta": {"alpha": [0.6, 0.8, 1.0], "beta": [0.3, 0.4, 0.5, 0.6], "k": [50, 100, 200]},
    "UserKNN cosine": {"k": [25, 50, 100], "shrink": [0.0, 10.0]},
    "UserKNN asymmetric": {"k": [25, 50, 100], "alpha": [0.3, 0.4, 0.5, 0.6]},
}


def tuned_candidates(data: TimedInteractions, split: str, threads: int,
                     only: set[str] | None) -> list[Candidate]:
    """Each candidate again, with the parameters tune() picks on the training part only."""
    train = split_from_spec(data, split).train
    tuned = []
    for candidate in CANDIDATES:
        if candidate.label not in TUNE_SPACES or (only and candidate.label not in only):
            continue
        print(f"tuning {candidate.label} ...", file=sys.stderr, flush=True)
        result = tune(train, candidate.algorithm_class, TUNE_SPACES[candidate.label],
                      params=candidate.params, num_threads=threads)
        print(f"  {result.searched} validation nDCG@10 {result.metrics['ndcg']:.4f} "
              f"(configured {result.configured_metrics['ndcg']:.4f}; "
              f"{len(result.trials)} settings, {result.seconds:.0f} s)", file=sys.stderr)
        tuned.append(Candidate(f"{candidate.label} tuned", candidate.algorithm_class,
                               result.params))
    return tuned


def retail_interactions(quick: bool, weights: str = "lines") -> TimedInteractions:
    data = online_retail()
    keep = np.ones(len(data.user), dtype=bool)
    if quick:
        keep = data.user % 4 == 0  # a quarter of the customers, all their lines
    line_weights = data.quantity if weights == "quantity" else np.ones_like(data.quantity)
    return TimedInteractions(
        rows=data.user[keep],
        cols=data.item[keep],
        weights=line_weights[keep],
        timestamps=data.timestamp[keep],
        shape=data.shape,
        user_ids=data.customers,
        item_ids=data.stock_codes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A quarter of the customers.")
    parser.add_argument("--split", default="temporal:2011-10-01")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--weights", choices=("lines", "quantity"), default="lines",
                        help="Weight of an invoice line: 1 (default) or its quantity.")
    parser.add_argument("--report", help="Write the HTML report here.")
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
    parser.add_argument("--no-auc", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="Kernel threads (0 = all cores).")
    parser.add_argument("--tune", action="store_true",
                        help="Add a tuned row per algorithm (see TUNE_SPACES).")
    parser.add_argument("--only", action="append",
                        help="Only this candidate (repeatable), e.g. --only EASE.")
    parser.add_argument("--ratio", action="store_true",
                        help="Print each row's nDCG@k as a multiple of Popular's.")
    parser.add_argument("--cold", type=int, default=0, metavar="N",
                        help="Also evaluate on held-out items with fewer than N training "
                             "interactions (the cold-item view).")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data = retail_interactions(args.quick, args.weights)
    loaded = time.perf_counter() - started
    only = set(args.only) if args.only else None
    candidates = [c for c in CANDIDATES if not only or c.label in only]
    if args.tune:
        candidates += tuned_candidates(data, args.split, args.threads, only)
    outcome = run_evaluation(
        data,
        candidates,
        split=args.split,
        k=args.k,
        num_threads=args.threads,
        compute_auc=not args.no_auc,
        on_start=lambda label: print(f"fitting {label} ...", file=sys.stderr, flush=True),
    )
    summary = outcome.summary
    print(
        f"Online Retail{' (quick)' if args.quick else ''}: {summary['interactions']:,} purchase lines, "
        f"{summary['users']:,} customers x {summary['items']:,} stock codes, "
        f"weight per line: {'quantity' if args.weights == 'quantity' else '1'} "
        f"(loaded in {loaded:.1f} s)"
    )
    print(
        f"{summary['split']}: {summary['train_entries']:,} training lines, "
        f"{summary['test_pairs']:,} held-out new customer-item pairs, "
        f"{summary['users_evaluated']:,} customers evaluated "
        f"({summary['users_dropped_nothing_to_test']:,} with nothing new to test and "
        f"{summary['users_dropped_no_history']:,} without history dropped)"
    )
    print()
    print(format_table(outcome.compared(), markdown=args.markdown))
    if args.ratio:
        evaluations = outcome.compared()
        popular = next(e for e in evaluations if e.label == "Popular").metrics["ndcg"]
        print()
        for evaluation in evaluations:
            print(f"  {evaluation.label:<28} nDCG@{args.k} / Popular = "
                  f"{evaluation.metrics['ndcg'] / popular:.2f}x")
    if args.cold:
        cold = cold_item_split(split_from_spec(data, args.split), args.cold)
        cold_outcome = run_evaluation(
            data, candidates, split=cold, k=args.k, num_threads=args.threads,
            compute_auc=False,
            on_start=lambda label: print(f"fitting {label} (cold view) ...", file=sys.stderr,
                                         flush=True),
        )
        print()
        print(f"Cold items: fewer than {args.cold} training interactions — "
              f"{cold_outcome.summary['split']}: {cold_outcome.summary['users_evaluated']:,} "
              f"customers evaluated, {cold.test.nnz:,} held-out customer-item pairs")
        print(format_table(cold_outcome.compared(), markdown=args.markdown))
    print()
    for candidate in candidates:
        params = ", ".join(f"{k}={v}" for k, v in candidate.params.items())
        print(f"  {candidate.label}: {candidate.class_path}({params})")
    print("  Popular: django_recs.algorithms.Popular(measure='users'); Random: seed 0")
    print(
        f"Measured on {platform.machine()} with {os.cpu_count()} cores (a shared machine: "
        "fit times are indicative only)."
    )
    if args.report:
        path = write_report(args.report, outcome.compared(), summary=summary,
                            title="django-recs on Online Retail")
        print(f"Report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
