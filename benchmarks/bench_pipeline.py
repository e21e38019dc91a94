"""Seconds per stage of a recompute run on each database and result layout, against a naive ORM path.

Stores 1,000,000 interactions (100,000 users x 20,000 products, power-law
popularity on both sides, fixed seed; 1 in 5 a purchase), then runs ItemKNN
(k=50) and ALS (64 factors) through the pipeline — once, then ``--repeats``
(2) measured runs, so each measured run also deletes the previous run's
rows — and prints the seconds
of each stage (load, matrix, compute, write, swap, cleanup) with the rows
per second loaded and written (medians of ``--repeats`` measured runs, each
after a previous run), and the CPU seconds of the process and of its database
server's process or thread. The naive path does the same reading with
``values_list`` and the same writing with ``bulk_create``; its write speed is
measured on a sample of the rows (it would take minutes on all of them).
``--quick`` uses 100,000 interactions (10,000 users x 2,000 products),
``--large`` 10,000,000 (1,000,000 users x 100,000 products).

Each algorithm runs in both RECOMMENDATION_LAYOUTs ("rows": one row per
recommendation; "lists": one RecommendationList row per user), and the table
shows each run's rows written, the size of the result tables after it
(indexes included, where the database tells) and the child's peak memory.

Each backend runs in a child process with its own database, created when
missing and reloaded only when it holds another size: ``recs_bench_pipeline``
on the PostgreSQL and the MySQL/MariaDB server (see benchmarks/databases.py),
build/bench_pipeline.sqlite3 for SQLite. A server that cannot be reached is
left out of the table with its error.

    python benchmarks/bench_pipeline.py [--quick] [--algorithms similar,personal]
                                        [--backends sqlite,postgres,mysql] [--no-naive]
                                        [--layouts rows,lists] [--large]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    BACKENDS,
    create_database,
    display_name,
    unavailable,
)

DB_NAME = os.environ.get("BENCH_PIPELINE_DB", "recs_bench_pipeline")
SQLITE_PATH = ROOT / "build" / "bench_pipeline.sqlite3"
FULL = {"users": 100_000, "items": 20_000, "interactions": 1_000_000}
QUICK = {"users": 10_000, "items": 2_000, "interactions": 100_000}
LARGE = {"users": 1_000_000, "items": 100_000, "interactions": 10_000_000}
NAIVE_WRITE_SAMPLE = {"full": 300_000, "quick": 100_000}
SEED = 20240601

ALGORITHMS = {
    "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 50, "metric": "cosine"},
    "personal": {"class": "django_recs.algorithms.ALS", "factors": 64, "iterations": 15,
                 "regularization": 0.01, "alpha": 10.0},
}


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# -- data ------------------------------------------------------------------------------


def load_data(size: dict) -> bool:
    """Fill the database with the synthetic shop unless it already holds this size."""
    import numpy as np
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from benchmarks.datasets import synthetic_power_law
    from django_recs.items import item_content_type
    from django_recs.models import Interaction
    from django_recs.storage import bulk_insert
    from tests.testapp.models import Product

    if (Interaction.objects.count() == size["interactions"]
            and Product.objects.count() == size["items"]
            and User.objects.count() == size["users"]):
        return False
    from django_recs.models import PopularItem, Recommendation, RecommendationList, Run, SimilarItem
    from django_recs.storage.partitions import drop_run_partition, is_partitioned

    # The runs' partitions go with their runs (deleting the parents' rows would leave them).
    for model in (SimilarItem, Recommendation, RecommendationList, PopularItem):
        if is_partitioned(model, connection.alias):
            for run_id in Run.objects.values_list("pk", flat=True):
                drop_run_partition(model, run_id, using=connection.alias)
    matrix = synthetic_power_law(size["users"], size["items"], size["interactions"], seed=SEED)
    coo = matrix.tocoo()
    rng = np.random.default_rng(SEED)
    n = coo.nnz
    with transaction.atomic():
        with connection.cursor() as cursor:
            for table in ("django_recs_similaritem", "django_recs_recommendation",
                          "django_recs_recommendationlist", "django_recs_popularitem",
                          "django_recs_interaction",
                          "django_recs_runshard", "django_recs_run",
                          "testapp_product", "auth_user"):
                cursor.execute(f"DELETE FROM {table}")
        user_ids = np.arange(1, size["users"] + 1)
        bulk_insert(User, {
            "id": user_ids, "password": np.full(len(user_ids), "!"),
            "username": np.char.add("user", user_ids.astype(str)),
            "is_superuser": np.zeros(len(user_ids), bool), "is_staff": np.zeros(len(user_ids), bool),
            "is_active": np.ones(len(user_ids), bool),
            "first_name": np.full(len(user_ids), ""), "last_name": np.full(len(user_ids), ""),
            "email": np.full(len(user_ids), ""),
            "date_joined": np.full(len(user_ids), np.datetime64("2024-01-01T00:00:00")),
        })
        item_ids = np.arange(1, size["items"] + 1)
        bulk_insert(Product, {"id": item_ids, "name": np.char.add("Product ", item_ids.astype(str)),
                              "in_stock": np.ones(len(item_ids), bool),
                              "price": np.full(len(item_ids), 9.99)})
        purchase = rng.random(n) < 0.2
        days_ago = rng.integers(0, 365 * 24 * 3600, n).astype("timedelta64[s]")
        bulk_insert(Interaction, {
            "user_id": coo.row.astype(np.int64) + 1,
            "session_key": np.full(n, ""),
            "item_type_id": np.full(n, item_content_type(Product).pk),
            "item_key": (coo.col.astype(np.int64) + 1).astype(str),
            "event": np.where(purchase, "purchase", "view"),
            "weight": np.where(purchase, 5.0, coo.data.astype(np.float64)),
            "timestamp": np.datetime64("2025-01-01T00:00:00") - days_ago,
        }, batch_size=100_000)
        if connection.vendor == "postgresql":  # elsewhere the next id follows the largest
            with connection.cursor() as cursor:
                for table in ("auth_user", "testapp_product"):
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
    with connection.cursor() as cursor:
        cursor.execute({"postgresql": "VACUUM ANALYZE django_recs_interaction",
                        "mysql": "ANALYZE TABLE django_recs_interaction"}.get(
                            connection.vendor, "ANALYZE"))
        if connection.vendor == "mysql":
            cursor.fetchall()
    return True


# -- the pipeline -------------------------------------------------------------------------


def result_bytes(connection) -> int | None:
    """Bytes of the result tables with their indexes (and partitions); None where unknown."""
    tables = ("django_recs_similaritem", "django_recs_recommendation",
              "django_recs_popularitem")
    like = " OR ".join(["{name} LIKE %s"] * len(tables))
    patterns = [f"{table}%" for table in tables]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " WHERE c.relkind IN ('r', 'p') AND (" + like.format(name="c.relname") + ")",
                patterns)
        elif connection.vendor == "mysql":  # InnoDB's statistics: approximate, may lag
            cursor.execute(
                "SELECT coalesce(sum(data_length + index_length), 0)"
                " FROM information_schema.tables WHERE table_schema = DATABASE()"
                " AND (" + like.format(name="table_name") + ")", patterns)
        else:
            try:  # SQLite's dbstat table, where the library was built with it
                cursor.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE "
                               + like.format(name="name"), patterns)
            except Exception:
                return None
        return int(cursor.fetchone()[0])


def peak_memory_mb() -> float:
    """The peak resident memory of this process (a child per backend), in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bytes(connection, run_id: int) -> int | None:
    """Bytes of the run's own partitions (rows, TOAST and indexes) on PostgreSQL, else None."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " WHERE c.relkind = 'r' AND c.relname ~ %s",
            [rf"^django_recs_[a-z]+_run{int(run_id)}$"])
        return int(cursor.fetchone()[0])


def run_pipeline(name: str, repeats: int = 2):
    """Synchronous runs of ``name``: one to have a previous run, then ``repeats`` measured.

    Each measured run also deletes the previous run's rows (cleanup). Returns
    the last run, its ``timings`` and ``seconds`` the medians of the measured
    runs, with ``cpu_s`` (this process) and ``db_cpu_s`` (the database server's
    process or thread of this connection, where it can be read) as medians too.
    """
    import statistics

    from django.db import connection

    from benchmarks.databases import server_cpu_seconds
    from django_recs.dispatch import recompute
    from django_recs.models import Run

    # A run left in flight by an interrupted benchmark would be joined, not rerun.
    Run.objects.filter(algorithm=name, status__in=["pending", "running"]).update(
        status="failed", error="interrupted benchmark")
    measured = []
    for attempt in range(repeats + 1):
        cpu, db_cpu = time.process_time(), server_cpu_seconds(connection)
        [run] = recompute(name, sync=True, triggered_by="bench_pipeline")
        if run.status != "succeeded":
            sys.exit(f"{name}: run failed in {run.stage}:\n{run.error}")
        db_after = server_cpu_seconds(connection)
        run.cpu_s = time.process_time() - cpu
        run.db_cpu_s = None if db_cpu is None or db_after is None else db_after - db_cpu
        if attempt:
            measured.append(run)
    run = measured[-1]
    run.timings = {stage: statistics.median(r.timings.get(stage, 0.0) for r in measured)
                   for stage in run.timings}
    run.seconds = statistics.median(r.duration.total_seconds() for r in measured)
    run.all_seconds = [r.duration.total_seconds() for r in measured]
    run.cpu_s = statistics.median(r.cpu_s for r in measured)
    db = [r.db_cpu_s for r in measured if r.db_cpu_s is not None]
    run.db_cpu_s = statistics.median(db) if db else None
    return run


# -- the naive path ---------------------------------------------------------------------------


def naive_load() -> tuple[float, int]:
    """Seconds and rows to read the interactions with values_list into numpy arrays."""
    import numpy as np

    from django_recs.models import Interaction

    started = time.perf_counter()
    rows = list(Interaction.objects.filter(user__isnull=False)
                .values_list("user_id", "item_type_id", "item_key", "weight", "event"))
    users = np.array([r[0] for r in rows], dtype=np.int64)
    items = np.array([int(r[2]) for r in rows], dtype=np.int64)
    weights = np.array([r[3] for r in rows], dtype=np.float64)
    seen = np.array([r[4] == "purchase" for r in rows], dtype=bool)
    assert len(users) == len(items) == len(weights) == len(seen)
    return time.perf_counter() - started, len(rows)


def naive_write(run_id: int, sample: int) -> tuple[float, int]:
    """Seconds and rows to write ``sample`` of the run's rows again with bulk_create."""
    from django.db import transaction

    from django_recs.models import Recommendation, Run, SimilarItem

    source = Run.objects.get(pk=run_id)
    scratch = Run.objects.create(algorithm="bench-naive", status="failed")
    similar = list(SimilarItem.objects.filter(run=source).values(
        "item_type_id", "item_key", "neighbour_type_id", "neighbour_key", "score", "rank"
    )[:sample])
    recs = list(Recommendation.objects.filter(run=source).values(
        "user_id", "item_type_id", "item_key", "score", "rank", "reason_type_id", "reason_key"
    )[: max(0, sample - len(similar))])
    started = time.perf_counter()
    with transaction.atomic():
        SimilarItem.objects.bulk_create(
            [SimilarItem(run=scratch, **row) for row in similar], batch_size=5_000)
        Recommendation.objects.bulk_create(
            [Recommendation(run=scratch, **row) for row in recs], batch_size=5_000)
    seconds = time.perf_counter() - started
    SimilarItem.objects.filter(run=scratch).delete()
    Recommendation.objects.filter(run=scratch).delete()
    scratch.delete()
    return seconds, len(similar) + len(recs)


# -- parent: one child per backend, then the table -----------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 interactions")
    parser.add_argument("--algorithms", default="similar,personal",
                        help="comma-separated: similar (ItemKNN k=50), personal (ALS f=64)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--no-naive", action="store_true", help="skip the naive ORM path")
    parser.add_argument("--large", action="store_true",
                        help="10,000,000 interactions (1,000,000 users x 100,000 products)")
    parser.add_argument("--layouts", default="rows,lists",
                        help="comma-separated RECOMMENDATION_LAYOUTs to compare")
    parser.add_argument("--repeats", type=int, default=2,
                        help="measured runs per algorithm and layout (medians are printed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = QUICK if args.quick else LARGE if args.large else FULL
    if args.child:
        print(json.dumps(run_child(args, size)))
        return

    results = []
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            sys.exit(f"--backends: {backend!r} is not one of {', '.join(BACKENDS)}")
        if reason := unavailable(backend):
            print(f"{backend}: left out, the server cannot be reached ({reason})", file=sys.stderr)
            continue
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
        if backend == "sqlite":
            SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
            env.pop("DATABASE_URL", None)
            env["DJANGO_RECS_SQLITE_PATH"] = str(SQLITE_PATH)
        else:
            env["DATABASE_URL"] = create_database(backend, DB_NAME)
        print(f"{backend}:", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--child", backend, "--algorithms", args.algorithms,
                   "--layouts", args.layouts, "--repeats", str(max(1, args.repeats))]
        command += ["--quick"] * args.quick + ["--large"] * args.large
        command += ["--no-naive"] * args.no_naive
        out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print_table(results, size)


def print_table(results: list[dict], size: dict) -> None:
    print(f"\nbench_pipeline: {size['interactions']:,} interactions, "
          f"{size['users']:,} users x {size['items']:,} items, 50 recommendations per user")
    stages = ["load", "matrix", "compute", "write", "swap", "cleanup"]
    print(f"{'database':<16}{'path':<30}" + "".join(f"{s:>9}" for s in stages)
          + f"{'total s':>9}{'rows read':>11}{'read/s':>11}{'rows written':>14}{'written/s':>11}"
          + f"{'run MB':>8}{'tables MB':>11}{'peak MB':>9}{'cpu s':>8}{'db cpu s':>9}")
    for result in results:
        for run in result["runs"]:
            t = run["timings"]
            tables = "-" if run["result_bytes"] is None else f"{run['result_bytes'] / 2**20:,.0f}"
            own = "-" if run["run_bytes"] is None else f"{run['run_bytes'] / 2**20:,.0f}"
            db_cpu = "-" if run["db_cpu_s"] is None else f"{run['db_cpu_s']:.2f}"
            print(f"{result['backend']:<16}{run['label']:<30}"
                  + "".join(f"{t.get(s, 0):>9.2f}" for s in stages)
                  + f"{run['seconds']:>9.2f}{run['rows_read']:>11,}"
                  + f"{run['rows_read'] / t['load']:>11,.0f}{run['rows_written']:>14,}"
                  + f"{run['rows_written'] / max(t['write'], 1e-9):>11,.0f}"
                  + f"{own:>8}{tables:>11}{run['peak_mb']:>9,.0f}{run['cpu_s']:>8.2f}{db_cpu:>9}")
        naive = result["naive"]
        if naive:
            print(f"{result['backend']:<16}{'naive ORM':<30}{naive['load_seconds']:>9.2f}"
                  + " " * 9 * 2 + f"{naive['write_seconds']:>9.2f}" + " " * 9 * 3
                  + f"{naive['load_rows']:>11,}{naive['load_rows'] / naive['load_seconds']:>11,.0f}"
                  + f"{naive['write_rows']:>14,}"
                  + f"{naive['write_rows'] / naive['write_seconds']:>11,.0f}")
    print()
    for result in results:
        naive, runs = result["naive"], result["runs"]
        if naive and runs:
            run = runs[0]
            fast_read = run["rows_read"] / run["timings"]["load"]
            fast_write = run["rows_written"] / run["timings"]["write"]
            print(f"{result['backend']}: speed-up over naive: read "
                  f"x{fast_read / (naive['load_rows'] / naive['load_seconds']):.1f}, write "
                  f"x{fast_write / (naive['write_rows'] / naive['write_seconds']):.1f} "
                  f"(naive write timed on a {naive['write_rows']:,}-row sample of "
                  f"{run['algorithm']}'s rows)")
    print_goals(results, size)
    if results:
        print(f"kernels: {results[0]['kernels']}")


#: The end-to-end goal of a run on PostgreSQL, by size (seconds).
GOALS = {FULL["interactions"]: 6.0, LARGE["interactions"]: 90.0}


def print_goals(results: list[dict], size: dict) -> None:
    """Each PostgreSQL run against the goal for its size, and the lists layout against rows."""
    goal = GOALS.get(size["interactions"])
    for result in results:
        by_label = {(run["algorithm"], run["label"].rsplit(", ", 1)[1].rstrip(")")): run
                    for run in result["runs"]}
        for (algorithm, layout), run in by_label.items():
            rows = by_label.get((algorithm, "rows"))
            versus = (f", {rows['seconds'] / run['seconds']:.2f}x faster than the rows layout"
                      if layout == "lists" and rows else "")
            if goal is not None and result["backend"].startswith("PostgreSQL"):
                verdict = "met" if run["seconds"] <= goal else "NOT met"
                print(f"goal: {run['label']} on {result['backend']} in <= {goal:.0f} s: "
                      f"{verdict} ({run['seconds']:.2f} s{versus})")
            elif versus:
                print(f"{run['label']} on {result['backend']}: {run['seconds']:.2f} s{versus}")


# -- child: one backend -------------------------------------------------------------------------


def run_child(args, size: dict) -> dict:
    setup_django()

    from django.db import connection
    from django.test.utils import override_settings

    from django_recs import kernels

    backend = display_name(connection)
    started = time.perf_counter()
    fresh = load_data(size)
    print(f"[{backend}] data {'loaded' if fresh else 'reused'} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    recs = {"ITEM_MODELS": ["testapp.Product"], "ALGORITHMS": ALGORITHMS,
            "EXCLUDE_SEEN": ["purchase"], "NUM_THREADS": 0, "RECOMMENDATIONS_PER_USER": 50}
    names = [name.strip() for name in args.algorithms.split(",") if name.strip()]
    layouts = [layout.strip() for layout in args.layouts.split(",") if layout.strip()]
    runs = []
    naive = None
    for name in names:
        for layout in layouts:
            with override_settings(DJANGO_RECS={**recs, "RECOMMENDATION_LAYOUT": layout},
                                   DEBUG=False):
                run = run_pipeline(name, max(1, args.repeats))
                stored, own = result_bytes(connection), run_bytes(connection, run.pk)
            print(f"[{backend}] {name} ({layout}): runs took "
                  f"{', '.join(f'{s:.1f}' for s in run.all_seconds)} s", file=sys.stderr, flush=True)
            algorithm_class = ALGORITHMS[run.algorithm]["class"].rsplit(".", 1)[1]
            runs.append({
                "algorithm": run.algorithm, "pk": run.pk,
                "label": f"{run.algorithm} ({algorithm_class}, {layout})",
                "timings": run.timings, "seconds": run.seconds,
                "rows_read": run.rows_read, "rows_written": run.rows_written,
                "result_bytes": stored, "run_bytes": own, "peak_mb": peak_memory_mb(),
                "cpu_s": run.cpu_s, "db_cpu_s": run.db_cpu_s,
            })
    with override_settings(DJANGO_RECS=recs, DEBUG=False):
        if not args.no_naive and runs:
            load_seconds, load_rows = naive_load()
            sample = NAIVE_WRITE_SAMPLE["quick" if args.quick else "full"]
            write_seconds, write_rows = naive_write(runs[0]["pk"], sample)
            naive = {"load_seconds": load_seconds, "load_rows": load_rows,
                     "write_seconds": write_seconds, "write_rows": write_rows}
    info = kernels.build_info()
    return {"backend": backend, "runs": runs, "naive": naive,
            "kernels": f"native={info['native']} openmp={info['openmp']} "
                       f"threads={info['max_threads']}"}


if __name__ == "__main__":
    main()
