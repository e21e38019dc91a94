"""Content-based and hybrid similarity on the Online Retail purchases, overall and on cold items.

    python benchmarks/eval_content.py                 # temporal split 2011-10-01, k = 10
    python benchmarks/eval_content.py --quick         # a quarter of the customers
    python benchmarks/eval_content.py --markdown

The evaluation of ``benchmarks/eval_online_retail.py`` (same split, metrics
and baselines; one entry per invoice line) with the item descriptions as the
text feature of ContentKNN and Hybrid. Two tables: every held-out purchase,
then the cold-item view — only held-out purchases of items with fewer than
``--cold`` (5) training interactions, where collaborative filtering has
little to go on.

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
from benchmarks.eval_online_retail import retail_interactions
from django_recs.algorithms import ALS, ContentKNN, Hybrid, ItemKNN
from django_recs.content import FeatureBlock, ItemFeatures, build_item_features
from django_recs.evaluation.cold_items import cold_item_split
from django_recs.evaluation.report import format_table
from django_recs.evaluation.splits import split_from_spec
from django_recs.evaluation.suite import Candidate, run_evaluation

ALS_PARAMS = {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 10.0}


def description_features() -> ItemFeatures:
    """One text block: the description of each stock code (TF-IDF, weight 1)."""
    data = online_retail()
    texts = [data.descriptions.get(code, "") for code in data.stock_codes]
    block = FeatureBlock("retail.StockItem", "text", "description", 1.0,
                         np.arange(len(texts)), texts)
    return build_item_features([block], len(texts))


def candidates(features: ItemFeatures) -> list[Candidate]:
    def with_features(algorithm):
        algorithm.use_item_features(features)

    return [
        Candidate("ItemKNN", ItemKNN, {"k": 50, "metric": "cosine"}),
        Candidate("ALS", ALS, ALS_PARAMS),
        Candidate("ContentKNN", ContentKNN, {"k": 50}, prepare=with_features),
        Candidate("Hybrid", Hybrid, {"k": 50}, prepare=with_features),
        Candidate("Hybrid shrink=200", Hybrid, {"k": 50, "shrink": 200.0},
                  prepare=with_features),
        Candidate("Hybrid ALS", Hybrid, {"k": 50, "collaborative": "als",
                                         "collaborative_params": ALS_PARAMS},
                  prepare=with_features),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A quarter of the customers.")
    parser.add_argument("--split", default="temporal:2011-10-01")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--cold", type=int, default=5,
                        help="Cold items have fewer training interactions than this (5).")
    parser.add_argument("--markdown", action="store_true", help="Print Markdown tables.")
    parser.add_argument("--threads", type=int, default=0, help="Kernel threads (0 = all cores).")
    parser.add_argument("--only", nargs="+", help="Evaluate only these candidate labels.")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data = retail_interactions(args.quick)
    features = description_features()
    prepared = time.perf_counter() - started
    chosen = candidates(features)
    if args.only:
        chosen = [c for c in chosen if c.label in args.only]
    split = split_from_spec(data, args.split)
    cold = cold_item_split(split, args.cold)

    def progress(label):
        print(f"fitting {label} ...", file=sys.stderr, flush=True)

    outcomes = []
    for view in (split, cold):
        outcomes.append(run_evaluation(data, chosen, split=view, k=args.k, compute_auc=False,
                                       num_threads=args.threads, on_start=progress))
    summary = outcomes[0].summary
    print(
        f"Online Retail{' (quick)' if args.quick else ''}: {summary['interactions']:,} purchase "
        f"lines, {summary['users']:,} customers x {summary['items']:,} stock codes; "
        f"{features.n_features:,} description words, "
        f"{int((~features.items_with_features).sum())} items without a description "
        f"(data and features in {prepared:.1f} s)"
    )
    for outcome, title in zip(outcomes, ("All held-out purchases",
                                         f"Cold items: fewer than {args.cold} training interactions")):
        s = outcome.summary
        print()
        print(f"{title} — {s['split']}: {s['users_evaluated']:,} customers evaluated, "
              f"{outcome.split.test.nnz:,} held-out customer-item pairs")
        print(format_table(outcome.compared(), markdown=args.markdown))
    print()
    for candidate in chosen:
        params = ", ".join(f"{k}={v}" for k, v in candidate.params.items())
        print(f"  {candidate.label}: {candidate.class_path}({params})")
    print(
        f"Measured on {platform.machine()} with {os.cpu_count()} cores (a shared machine: "
        "fit times are indicative only)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
