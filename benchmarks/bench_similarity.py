"""Item-item similarity: our kernel against scipy and implicit, time and memory.

Datasets (one table each):

- synthetic: 100,000 users x 50,000 items, 5,000,000 interactions, power-law
  on both sides, fixed seed (benchmarks.datasets.synthetic_power_law with its
  default exponents, 0.5 for users and 0.8 for items). Its product X.T @ X
  has about 3e8 non-zeros, for which the scipy reference peaks at about
  4.5 GiB: that fits a 24 GiB machine, so the exponents are left at their
  defaults.
- online-retail: the UCI Online Retail purchases (customers x stock codes,
  quantities summed), from ../shared/data/online-retail (CC BY 4.0, see the
  README there).

Contenders, each timed in a fresh subprocess so its peak RSS is its own:

- ours, 1 and 2 threads: ``kernels.item_similarity(X, k)`` (cosine);
- scipy: the reference oracle, X.T @ X in float64 then a top-k per row;
- implicit: ``implicit.nearest_neighbours.CosineRecommender(K=k).fit(X)`` on
  the same users x items CSR matrix (implicit 0.7's fit takes user_items),
  on 1 thread and on all cores.

Each subprocess loads the matrix from an .npz file, imports its libraries,
reads its resident set size (RSS), runs the contender once and reads the peak
RSS (the process's VmHWM on Linux, reset just before the call; elsewhere
``resource.getrusage(...).ru_maxrss``, which on Linux would also count the
peak of the parent the child was forked from). "extra MB" is peak minus the RSS
just before the call: the memory the call itself needed, output included.
"mem/(in+out)" is (input + extra) / (input + output), where input and output
are the bytes of the CSR arrays: the goal for ours is at most 1.5. Times are
the median of ``--runs`` runs (3 by default), wall-clock seconds.

The agreement line compares ours (1 thread) with the reference: rows whose
neighbour lists are identical and the largest relative score difference.

    python benchmarks/bench_similarity.py [--quick] [--k 50] [--runs 3]
                                          [--datasets synthetic,online-retail]

``--quick`` uses a 20,000 x 10,000 synthetic matrix with 400,000
interactions. Run on a shared machine, timings are noisy; compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import scipy.sparse as sp

FULL_SYNTHETIC = {"n_users": 100_000, "n_items": 50_000, "nnz": 5_000_000}
QUICK_SYNTHETIC = {"n_users": 20_000, "n_items": 10_000, "nnz": 400_000}

# (label, contender, threads)
CONTENDERS = [
    ("ours", "ours", 1),
    ("ours", "ours", 2),
    ("scipy reference", "scipy", 1),
    ("implicit CosineRecommender", "implicit", 1),
    ("implicit CosineRecommender", "implicit", 0),
]


# --- child: one contender, one run -------------------------------------------------


def _status_bytes(field: str) -> int | None:
    """A memory line of /proc/self/status (Linux), in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _current_rss() -> int:
    rss = _status_bytes("VmRSS")
    return rss if rss is not None else _peak_rss()


def _reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux >= 4.0); silently no-op elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    """Peak RSS of this process.

    ru_maxrss of a freshly started child also counts the peak of the parent
    it was forked from (Linux keeps it across exec), so the per-process
    high-water mark VmHWM is used where /proc has it.
    """
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _csr_bytes(matrix: sp.csr_matrix) -> int:
    return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


def run_child(contender: str, matrix_path: str, k: int, threads: int, save: str | None) -> dict:
    X = sp.load_npz(matrix_path).tocsr()
    if contender == "ours":
        from django_recs.kernels import item_similarity
        from django_recs.kernels._native import native_module

        native_module("_similarity")  # load the extension before measuring, as imports above

        def call():
            return item_similarity(X, k, metric="cosine", num_threads=threads)

    elif contender == "scipy":
        from django_recs.kernels._reference import similarity as reference

        def call():
            return reference.item_similarity(X, k, metric="cosine")

    elif contender == "implicit":
        from implicit.nearest_neighbours import CosineRecommender

        def call():
            model = CosineRecommender(K=k, num_threads=threads)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "expects CSR input": its own conversion
                model.fit(X, show_progress=False)
            return model.similarity

    else:
        raise SystemExit(f"unknown contender {contender}")

    _reset_peak_rss()
    rss_before = _current_rss()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    result = result.tocsr()
    if save:
        sp.save_npz(save, result, compressed=False)
    return {
        "seconds": seconds,
        "peak": peak,
        "extra": max(peak - rss_before, 0),
        "input_bytes": _csr_bytes(X),
        "output_bytes": _csr_bytes(result),
        "shape": list(result.shape),
    }


# --- parent: datasets, subprocesses, tables ------------------------------------------


def prepare_datasets(names: list[str], quick: bool, workdir: Path) -> dict[str, Path]:
    from benchmarks.datasets import online_retail, synthetic_power_law

    paths = {}
    for name in names:
        path = workdir / f"{name}.npz"
        if name == "synthetic":
            size = QUICK_SYNTHETIC if quick else FULL_SYNTHETIC
            matrix = synthetic_power_law(**size)
        elif name == "online-retail":
            matrix = online_retail().matrix()
        else:
            raise SystemExit(f"unknown dataset {name}")
        sp.save_npz(path, matrix.tocsr(), compressed=False)
        paths[name] = path
    return paths


def run_contender(contender, path, k, threads, runs, save=None) -> dict:
    measurements = []
    for run in range(runs):
        command = [
            sys.executable,
            __file__,
            "--child",
            contender,
            "--matrix",
            str(path),
            "--k",
            str(k),
            "--threads",
            str(threads),
        ]
        if save and run == 0:
            command += ["--save", str(save)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        measurements.append(json.loads(output.strip().splitlines()[-1]))
    summary = dict(measurements[0])
    summary["seconds"] = statistics.median(m["seconds"] for m in measurements)
    summary["peak"] = statistics.median(m["peak"] for m in measurements)
    summary["extra"] = statistics.median(m["extra"] for m in measurements)
    return summary


def agreement(ours_path: Path, reference_path: Path) -> str:
    ours, expected = sp.load_npz(ours_path).tocsr(), sp.load_npz(reference_path).tocsr()
    same_rows = 0
    for row in range(ours.shape[0]):
        a = ours.indices[ours.indptr[row] : ours.indptr[row + 1]]
        b = expected.indices[expected.indptr[row] : expected.indptr[row + 1]]
        same_rows += np.array_equal(a, b)
    lengths_equal = np.array_equal(ours.indptr, expected.indptr)
    ours.sort_indices()
    expected.sort_indices()
    if lengths_equal and np.array_equal(ours.indices, expected.indices):
        rel = np.abs(ours.data - expected.data) / np.maximum(expected.data, 1e-30)
        detail = f"max relative score difference {rel.max() if rel.size else 0.0:.1e}"
    else:
        detail = "neighbour sets differ in some rows (near-ties at the k-th place)"
    return f"agreement with the reference: {same_rows}/{ours.shape[0]} rows identical; {detail}"


def print_table(name: str, shape, nnz: int, k: int, rows: list[tuple[str, int, dict]]) -> None:
    def mb(value):
        return value / 2**20

    implicit_all = next(r for label, t, r in rows if label.startswith("implicit") and t == 0)
    scipy_time = next(r for label, t, r in rows if label.startswith("scipy"))["seconds"]
    print(f"\n## {name}: {shape[0]:,} users x {shape[1]:,} items, {nnz:,} non-zeros, k={k}\n")
    print(
        f"| {'contender':<28} | {'threads':>7} | {'seconds':>8} | {'peak RSS MB':>11} "
        f"| {'extra MB':>8} | {'mem/(in+out)':>12} | {'vs implicit':>11} | {'vs scipy':>8} |"
    )
    print(
        f"|{'-' * 30}|{'-' * 9}:|{'-' * 9}:|{'-' * 12}:|{'-' * 9}:|{'-' * 13}:|{'-' * 12}:|{'-' * 9}:|"
    )
    for label, threads, r in rows:
        ratio = (r["input_bytes"] + r["extra"]) / (r["input_bytes"] + r["output_bytes"])
        thread_label = "all" if threads == 0 else str(threads)
        print(
            f"| {label:<28} | {thread_label:>7} | {r['seconds']:8.2f} | {mb(r['peak']):11.1f} "
            f"| {mb(r['extra']):8.1f} | {ratio:12.2f} | "
            f"{r['seconds'] / implicit_all['seconds']:10.2f}x | {r['seconds'] / scipy_time:7.2f}x |"
        )
    first = rows[0][2]
    print(
        f"\ninput {mb(first['input_bytes']):.1f} MB, our output {mb(first['output_bytes']):.1f} MB; "
        "'vs implicit' is against implicit on all cores."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic matrix")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", default="synthetic,online-retail")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--matrix", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_child(args.child, args.matrix, args.k, args.threads, args.save)))
        return

    print(
        f"item_similarity benchmark (cosine, k={args.k}, median of {args.runs} runs, "
        f"{os.cpu_count()} CPUs{', quick' if args.quick else ''})"
    )
    with tempfile.TemporaryDirectory(prefix="bench_similarity_") as tmp:
        workdir = Path(tmp)
        paths = prepare_datasets(args.datasets.split(","), args.quick, workdir)
        for name, path in paths.items():
            X = sp.load_npz(path)
            rows = []
            for label, contender, threads in CONTENDERS:
                save = None
                if (contender, threads) in {("ours", 1), ("scipy", 1)}:
                    save = workdir / f"{name}-{contender}-result.npz"
                result = run_contender(contender, path, args.k, threads, args.runs, save)
                rows.append((label, threads, result))
            print_table(name, X.shape, X.nnz, args.k, rows)
            print(
                agreement(workdir / f"{name}-ours-result.npz", workdir / f"{name}-scipy-result.npz")
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
