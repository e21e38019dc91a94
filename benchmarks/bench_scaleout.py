"""Seconds of one ItemKNN recompute on 1 and 2 Celery worker processes, and the speed-up.

Stores 2,000,000 interactions (200,000 users x 40,000 products, power-law
popularity on both sides, fixed seed; the data of bench_pipeline.py at
twice its size), then times the same ItemKNN run (k=50, 50 recommendations
per user) through real ``celery worker`` processes (``-P solo``, one task at
a time, NUM_THREADS=1 so each worker uses one core):

- 1 worker, SHARDS=1: the whole run in one task, as without sharding;
- 1 worker, SHARDS=N: the sharded run, every shard on the same worker;
- 2 workers, SHARDS=N: the shards spread over both.

The seconds are the run's own (started_at to finished_at: load, matrix,
snapshot, shards, swap; not the queue wait nor the cleanup after the swap,
which is waited for before the next run), the best of ``--repeats`` runs.
Each configuration's rows are checked against the first's. On a 2-core
machine 2x is the ceiling. ``--quick`` uses 200,000 interactions (20,000
users x 4,000 products).

Its own database: ``recs_bench_scaleout`` on DATABASE_URL's server (default
postgres://postgres@127.0.0.1:5432); Redis from REDIS_URL (default
redis://127.0.0.1:6379/15); the workers share a temporary storage folder.

    python benchmarks/bench_scaleout.py [--quick] [--shards 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_pipeline  # noqa: I001  (needs ROOT on sys.path)
from benchmarks.databases import create_postgres_database

PG_DB_NAME = "recs_bench_scaleout"
FULL = {"users": 200_000, "items": 40_000, "interactions": 2_000_000}
QUICK = {"users": 20_000, "items": 4_000, "interactions": 200_000}
ALGORITHM = {"class": "django_recs.algorithms.ItemKNN", "k": 50, "metric": "cosine"}
RUN_TIMEOUT = 3600


def recs_settings(shards: int) -> dict:
    return {"ITEM_MODELS": ["testapp.Product"], "ALGORITHMS": {"similar": ALGORITHM},
            "EXCLUDE_SEEN": ["purchase"], "NUM_THREADS": 1, "RECOMMENDATIONS_PER_USER": 50,
            "SHARDS": shards, "KEEP_RUNS": 2, "RUN_HEARTBEAT_TIMEOUT": 600}


def setup(media: Path) -> None:
    url = create_postgres_database(PG_DB_NAME)
    os.environ.update({
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "benchmarks.scaleout_settings",
        "DJANGO_RECS_BENCH": json.dumps(recs_settings(1)),
        "DJANGO_RECS_MEDIA_ROOT": str(media),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class Workers:
    """``count`` celery worker processes on one queue, with SHARDS = ``shards``."""

    def __init__(self, count: int, shards: int, queue: str, logs: Path):
        self.count, self.shards, self.queue, self.logs = count, shards, queue, logs
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def __enter__(self) -> Workers:
        env = {**os.environ, "DJANGO_RECS_BENCH": json.dumps(recs_settings(self.shards))}
        for number in range(self.count):
            log = self.logs / f"worker-{self.shards}-{number}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "solo",
                 "--concurrency=1", "-Q", self.queue, "-l", "warning", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "-n", f"bench{number}-{self.queue}@%h"],
                cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.processes.append((process, log))
        self._wait_until_consuming()
        return self

    def _wait_until_consuming(self, timeout: float = 60) -> None:
        from celery import current_app

        deadline = time.monotonic() + timeout
        names = {f"bench{n}-{self.queue}@" for n in range(self.count)}
        while time.monotonic() < deadline:
            for process, log in self.processes:
                if process.poll() is not None:
                    sys.exit(f"a worker stopped:\n{log.read_text()}")
            replies = current_app.control.ping(timeout=0.5) or []
            seen = {name for reply in replies for name in reply}
            if all(any(host.startswith(prefix) for host in seen) for prefix in names):
                return
        sys.exit("the workers did not start in time")

    def __exit__(self, *exc) -> None:
        for process, _log in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _log in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def timed_runs(workers: int, shards: int, queue: str, logs: Path, repeats: int) -> list:
    """``repeats`` finished runs of ``similar`` computed by ``workers`` processes."""
    import django_recs
    from django_recs.models import Run

    Run.objects.filter(status__in=["pending", "running"]).update(
        status="failed", error="interrupted benchmark")
    runs = []
    with Workers(workers, shards, queue, logs):
        for _ in range(repeats):
            [run] = django_recs.recompute("similar", triggered_by="bench_scaleout")
            deadline = time.monotonic() + RUN_TIMEOUT
            # Until the cleanup after the swap is done too: it would slow the next run.
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.status == "failed" or "cleanup" in run.timings:
                    break
                time.sleep(0.25)
            if run.status != "succeeded":
                sys.exit(f"run {run.pk} ({workers} workers, SHARDS={shards}) {run.status}:\n"
                         f"{run.error}")
            runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 interactions")
    parser.add_argument("--shards", type=int, default=4, help="shards of the sharded runs")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (best)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="recs-bench-scaleout-"))
    setup(work / "media")

    from celery import current_app

    from django_recs import kernels

    queue = f"recs-bench-scaleout-{uuid.uuid4().hex[:8]}"
    current_app.conf.task_default_queue = queue
    started = time.perf_counter()
    fresh = bench_pipeline.load_data(size)
    print(f"data {'loaded' if fresh else 'reused'} ({time.perf_counter() - started:.1f} s): "
          f"{size['interactions']:,} interactions, {size['users']:,} users x "
          f"{size['items']:,} products", flush=True)

    configurations = [(1, 1), (1, args.shards), (2, args.shards)]
    results = []
    for workers, shards in configurations:
        timed = [((run.finished_at - run.started_at).total_seconds(), run)
                 for run in timed_runs(workers, shards, queue, work, max(1, args.repeats))]
        seconds, run = min(timed, key=lambda pair: pair[0])
        results.append((workers, shards, seconds, run))
        print(f"{workers} worker(s), SHARDS={shards}: "
              f"{', '.join(f'{s:.1f}' for s, _ in timed)} s", flush=True)

    reference = results[0][3].metrics
    for *_, run in results[1:]:
        for name in ("rows_similar", "rows_recommendations", "neighbour_pairs",
                     "users_with_recommendations"):
            if run.metrics.get(name) != reference.get(name):
                sys.exit(f"run {run.pk}: {name} = {run.metrics.get(name)}, "
                         f"expected {reference.get(name)}")

    info = kernels.build_info()
    print(f"\nbench_scaleout on PostgreSQL ({PG_DB_NAME}), best of {max(1, args.repeats)}: "
          f"ItemKNN k=50, "
          f"{size['interactions']:,} interactions, {size['users']:,} users x "
          f"{size['items']:,} items, 50 recommendations per user; NUM_THREADS=1 per worker; "
          f"kernels native={info['native']} openmp={info['openmp']}; "
          f"{os.cpu_count()} cores")
    print(f"{'workers':>8}{'shards':>8}{'seconds':>10}{'speed-up':>10}{'compute s':>11}"
          f"{'shard cpu s':>13}{'rows written':>14}")
    base = results[0][2]
    for workers, shards, seconds, run in results:
        shard_cpu = sum(run.timings.get(f"shards_{part}", 0.0)
                        for part in ("load", "compute", "write"))
        print(f"{workers:>8}{shards:>8}{seconds:>10.2f}{base / seconds:>9.2f}x"
              f"{run.timings.get('compute', 0.0):>11.2f}"
              f"{(f'{shard_cpu:.2f}' if shards > 1 else '-'):>13}{run.rows_written:>14,}")
    print("rows identical in every configuration (counts of similar items, recommendations, "
          "neighbour pairs, users with a list)")
    current_app.connection_for_write().default_channel.client.delete(queue)


if __name__ == "__main__":
    main()
