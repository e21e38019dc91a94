"""ContentKNN at catalogue scale: seconds for the feature matrix and for the similarity, peak memory.

A synthetic catalogue of 50,000 items, each with a 200-word description
drawn from a 20,000-word vocabulary with Zipfian frequencies
(P(word of rank r) proportional to 1/r, fixed seed), a category (one of 200)
and a brand (one of 2,000). Two steps are timed:

- features: :func:`django_recs.content.build_item_features` — tokenising,
  TF-IDF of the descriptions, one-hot categories and brands, the features x
  items CSR (scikit-learn's ``TfidfVectorizer.fit_transform`` on the same
  texts is timed beside it when installed);
- similarity: :func:`django_recs.kernels.item_similarity` (cosine, k = 50)
  on that matrix, features in the place of users — what ContentKNN.fit runs.

Each is run for several ``max_df`` values: with Zipfian text a handful of
words occur in nearly every description, and each such word makes every
pair of items a candidate, so the similarity's cost is dominated by words
that carry almost no information. ``max_df=0.1`` drops the words of more
than 10 % of the items.

Memory is the peak resident set size during the step minus the resident
size just before it (Linux VmHWM, reset before each step): what the step
itself needed, its output included.

    python benchmarks/bench_content.py [--quick] [--max-df 1.0 0.5 0.1] [--threads 1 0]

``--quick``: 5,000 items. Run on a shared machine, timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_recs import kernels
from django_recs.content import FeatureBlock, build_item_features

SEED = 20240617
FULL = {"items": 50_000, "words": 200, "vocabulary": 20_000, "categories": 200, "brands": 2_000}
QUICK = {**FULL, "items": 5_000}


def synthetic_catalogue(items: int, words: int, vocabulary: int, categories: int, brands: int):
    """Descriptions, categories and brands of ``items`` items (fixed seed)."""
    rng = np.random.default_rng(SEED)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 11, size=vocabulary * 2)
    candidates = {"".join(rng.choice(letters, size=n)) for n in lengths}
    vocabulary_words = np.array(sorted(candidates)[:vocabulary])
    rng.shuffle(vocabulary_words)  # rank order unrelated to spelling
    probabilities = 1.0 / np.arange(1, vocabulary + 1)
    probabilities /= probabilities.sum()
    drawn = rng.choice(vocabulary, size=(items, words), p=probabilities)
    texts = [" ".join(vocabulary_words[row]) for row in drawn]
    return {
        "descriptions": texts,
        "categories": [f"c{c}" for c in rng.integers(0, categories, size=items)],
        "brands": [f"b{b}" for b in rng.integers(0, brands, size=items)],
    }


# -- memory ------------------------------------------------------------------------------


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak() -> int:
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


def measured(function):
    """(result, seconds, extra bytes at peak) of calling ``function()``."""
    before = _status_bytes("VmRSS") or _peak()
    _reset_peak()
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    return result, seconds, max(0, _peak() - before)


# -- the steps ---------------------------------------------------------------------------


def feature_blocks(catalogue, max_df: float) -> list[FeatureBlock]:
    n = len(catalogue["descriptions"])
    columns = np.arange(n)
    return [
        FeatureBlock("bench.Item", "text", "description", 1.0, columns,
                     catalogue["descriptions"], max_df=max_df),
        FeatureBlock("bench.Item", "categorical", "category", 1.0, columns,
                     catalogue["categories"]),
        FeatureBlock("bench.Item", "categorical", "brand", 0.5, columns, catalogue["brands"]),
    ]


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 items instead of 50,000.")
    parser.add_argument("--max-df", type=float, nargs="+", default=[1.0, 0.5, 0.1])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                        help="Kernel thread counts to time (0 = all cores).")
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL

    started = time.perf_counter()
    catalogue = synthetic_catalogue(**size)
    print(
        f"{size['items']:,} items x {size['words']} words from a {size['vocabulary']:,}-word "
        f"Zipfian vocabulary, {size['categories']} categories, {size['brands']:,} brands "
        f"(generated in {time.perf_counter() - started:.1f} s); k = {args.k}; "
        f"kernels native: {kernels.build_info()['native']}"
    )
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        TfidfVectorizer = None

    header = (f"{'max_df':>6}  {'words':>7}  {'nnz':>11}  {'features s':>10}  {'MiB':>6}  "
              f"{'sklearn tf-idf s':>16}  " + "  ".join(
                  f"{f'similarity s ({t or os.cpu_count()} thr)':>22}" for t in args.threads)
              + f"  {'MiB':>6}  {'pairs':>11}")
    print(header)
    print("-" * len(header))
    for max_df in args.max_df:
        features, feature_seconds, feature_bytes = measured(
            lambda max_df=max_df: build_item_features(feature_blocks(catalogue, max_df),
                                                      size["items"]))
        sklearn_seconds = "-"
        if TfidfVectorizer is not None:
            _, seconds, _ = measured(
                lambda max_df=max_df: TfidfVectorizer(max_df=max_df).fit_transform(
                    catalogue["descriptions"]))
            sklearn_seconds = f"{seconds:.1f}"
        words = int(features.n_features) - int(np.unique(catalogue["categories"]).size) - int(
            np.unique(catalogue["brands"]).size)
        similarity_columns = []
        similarity_bytes = 0
        pairs = 0
        for threads in args.threads:
            similar, seconds, used = measured(
                lambda threads=threads, matrix=features.matrix: kernels.item_similarity(
                    matrix, args.k, metric="cosine", num_threads=threads))
            similarity_columns.append(f"{seconds:>22.1f}")
            similarity_bytes = max(similarity_bytes, used)
            pairs = similar.nnz
            del similar
        print(f"{max_df:>6g}  {words:>7,}  {features.matrix.nnz:>11,}  {feature_seconds:>10.1f}  "
              f"{mib(feature_bytes):>6}  {sklearn_seconds:>16}  " + "  ".join(similarity_columns)
              + f"  {mib(similarity_bytes):>6}  {pairs:>11,}", flush=True)
        del features
    print(
        f"Measured on {platform.machine()} with {os.cpu_count()} cores, a shared machine: "
        "timings are indicative only. MiB: peak resident memory of the step above the "
        "resident size before it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
