"""What logging impressions costs a page, and how many impressions per second the database takes.

Two measurements per database (SQLite, PostgreSQL), each in a child process
with its own database (PostgreSQL ``recs_bench_feedback`` on DATABASE_URL's
server, created and dropped here; SQLite a temporary file), holding 5,000
products x 20 stored neighbours, 2,000 users x 20 recommendations and a
popular run:

1. **Per-list overhead.** A template with one list tag and its 10 item links
   (``{{ p|recs_click_url:url }}``) is rendered with IMPRESSIONS off and on,
   in alternating blocks of 50 renders so a slow spell of the shared machine
   lands on both; with impressions on, each process's writer thread writes
   the buffer every second as in production. Median render time of each, the
   difference (what a logged list adds: the row buffered, the visitor's
   binding, ten signed links) and their ratio. Beside it, the cost on the
   page of the designs not chosen: an INSERT per list (autocommit), and a
   Redis RPUSH per list for a task to drain (when Redis answers at REDIS_URL).
2. **Sustained ingestion.** PRODUCERS processes buffer impressions (the rows
   log_list() makes, each with a new id) as fast as their writers keep up (a
   producer waits while its buffer holds more than 20,000 rows), for SECONDS
   seconds; each process's writer thread writes its buffer with COPY
   (PostgreSQL) or batched INSERTs (SQLite). Impressions written per second,
   counted in the database; the number lost (buffered but never written)
   must be 0.

    python benchmarks/bench_feedback.py [--quick] [--backends sqlite,postgres]
                                        [--renders 2000] [--seconds 30] [--producers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    scratch_database,
)
from benchmarks.timing import interleaved_medians  # noqa: E402

PG_DB_NAME = "recs_bench_feedback"
SIZE = {"items": 5_000, "neighbours": 20, "users": 2_000, "recs": 20}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
TEMPLATES = {
    "similar_items": (
        "{% load recs %}{% similar_items product 10 placement='product-also-bought' as items %}"
        "{% for p in items %}<a href='{{ p|recs_click_url:url }}'>{{ p.name }}</a>{% endfor %}"
    ),
    "recommended_for": (
        "{% load recs %}{% recommended_for user 10 placement='home-for-you' as items %}"
        "{% for p in items %}<a href='{{ p|recs_click_url:url }}'>{{ p.name }}</a>{% endfor %}"
    ),
}
#: A producer of the ingestion benchmark waits while its buffer holds more rows.
BACKLOG = 20_000


# --- parent: a child per backend, then the tables ---------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer renders, 10 s of ingestion")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--renders", type=int, default=None, help="timed renders per case")
    parser.add_argument("--seconds", type=float, default=None, help="ingestion duration")
    parser.add_argument("--producers", type=int, default=2, help="ingesting processes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--producer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.renders = args.renders or (600 if args.quick else 2000)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)
    if args.producer is not None:
        return run_producer(args)
    if args.child:
        print(json.dumps(run_child(args)))
        return

    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
        if backend not in ("sqlite", "postgres"):
            sys.exit(f"unknown backend {backend!r} (sqlite, postgres)")
        print(f"{backend}: running ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--child", backend, "--renders", str(args.renders),
                   "--seconds", str(args.seconds), "--producers", str(args.producers)]
        with scratch_database(backend, PG_DB_NAME, env):
            out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE,
                                 text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print_tables(results, args)


def print_tables(results: list[dict], args) -> None:
    print(f"\nPer-list overhead: a list tag and its 10 links, median of {args.renders:,} renders "
          "each, IMPRESSIONS off and on")
    print(f"{'':<29}{'wall time (median)':^35}{'thread CPU (median)':^30}")
    print(f"{'database':<12}{'tag':<17}{'off ms':>9}{'on ms':>9}{'extra ms':>10}{'ratio':>7}"
          f"{'off ms':>10}{'on ms':>9}{'extra ms':>10}{'queries':>9}")
    for result in results:
        for tag, row in result["overhead"].items():
            print(f"{result['backend']:<12}{tag:<17}{row['off']:>9.3f}{row['on']:>9.3f}"
                  f"{row['extra']:>10.3f}{row['ratio']:>7.2f}{row['cpu_off']:>10.3f}"
                  f"{row['cpu_on']:>9.3f}{row['cpu_extra']:>10.3f}"
                  f"{row['queries_off']:>5} {row['queries_on']:>3}")
    print("\nWhat each way of writing an impression costs the page, median per list "
          "(without its links)")
    print(f"{'database':<12}{'way':<46}{'ms per list':>12}")
    for result in results:
        for way, value in result["alternatives"].items():
            shown = "-" if value is None else f"{value:.4f}"
            print(f"{result['backend']:<12}{way:<46}{shown:>12}")
    print(f"\nSustained ingestion: {args.producers} processes buffering impressions for "
          f"{args.seconds:g} s, each written by its writer thread")
    print(f"{'database':<12}{'written':>11}{'seconds':>9}{'impressions/s':>15}{'lost':>7}"
          f"{'flushes':>9}{'rows/flush':>12}")
    for result in results:
        row = result["ingestion"]
        print(f"{result['backend']:<12}{row['written']:>11,}{row['seconds']:>9.1f}"
              f"{row['rate']:>15,.0f}{row['lost']:>7,}{row['flushes']:>9,}"
              f"{row['rows_per_flush']:>12,.0f}")


# --- child: one database ------------------------------------------------------------------------


def run_child(args) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    load_data()
    backend = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(connection.vendor,
                                                                    connection.vendor)
    overhead = measure_overhead(args.renders)
    alternatives = measure_alternatives()
    connection.close()
    ingestion = measure_ingestion(args)
    return {"backend": backend, "overhead": overhead, "alternatives": alternatives,
            "ingestion": ingestion}


def settings_with(**changes) -> dict:
    return {"ITEM_MODELS": ["testapp.Product"], "NUM_THREADS": 1,
            "EVENTS": {"view": 1.0, "purchase": 5.0, "click": 0.5},
            "IMPRESSION_FLUSH_SECONDS": 1.0, **changes}


def load_data() -> None:
    """Products, users, neighbours, recommendations and popular items (bulk_insert)."""
    import numpy as np
    from django.contrib.auth.models import User

    from django_recs.items import item_content_type
    from django_recs.models import PopularItem, Recommendation, Run, SimilarItem
    from django_recs.storage import bulk_insert
    from tests.testapp.models import Product

    rng = np.random.default_rng(5)
    n_items, n_users = SIZE["items"], SIZE["users"]
    ids = np.arange(1, n_items + 1)
    bulk_insert(Product, {"id": ids, "name": [f"Product {i}" for i in ids],
                          "in_stock": np.ones(n_items, bool), "price": ["9.99"] * n_items})
    users = np.arange(1, n_users + 1)
    bulk_insert(User, {"id": users, "password": ["!"] * n_users,
                       "username": [f"user{u}" for u in users], "is_superuser": np.zeros(n_users, bool),
                       "is_staff": np.zeros(n_users, bool), "is_active": np.ones(n_users, bool),
                       "first_name": [""] * n_users, "last_name": [""] * n_users,
                       "email": [""] * n_users})
    ct = item_content_type(Product).pk
    runs = {name: Run.objects.create(algorithm=name, status="succeeded", is_active=True).pk
            for name in ("similar", "personal", "popular")}
    k = SIZE["neighbours"]
    neighbours = (ids[:, None] + rng.integers(1, n_items - 1, size=(n_items, k))) % n_items + 1
    bulk_insert(SimilarItem, {
        "run_id": np.full(n_items * k, runs["similar"]), "item_type_id": np.full(n_items * k, ct),
        "item_key": np.repeat(ids, k).astype(str), "neighbour_type_id": np.full(n_items * k, ct),
        "neighbour_key": neighbours.ravel().astype(str),
        "score": np.tile(np.linspace(1, 0.1, k), n_items), "rank": np.tile(np.arange(k), n_items)})
    r = SIZE["recs"]
    bulk_insert(Recommendation, {
        "run_id": np.full(n_users * r, runs["personal"]), "user_id": np.repeat(users, r),
        "item_type_id": np.full(n_users * r, ct),
        "item_key": rng.integers(1, n_items + 1, n_users * r).astype(str),
        "score": np.tile(np.linspace(1, 0.1, r), n_users), "rank": np.tile(np.arange(r), n_users)})
    bulk_insert(PopularItem, {
        "run_id": np.full(n_items, runs["popular"]), "item_type_id": np.full(n_items, ct),
        "item_key": rng.permutation(ids).astype(str), "score": np.linspace(n_items, 1, n_items),
        "rank": np.arange(n_items)})
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("testapp_product", "auth_user"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT MAX(id) FROM {table}))")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _requests(n: int):
    """Logged-in visitors' requests (user and session), as a page has them."""
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.test.client import RequestFactory

    requests = []
    for user in User.objects.order_by("pk")[:n]:
        request = RequestFactory().get("/", HTTP_USER_AGENT=BROWSER)
        request.user = user
        request.session = SessionStore(session_key=f"benchsession{user.pk:028d}")
        requests.append(request)
    return requests


def measure_overhead(renders: int, block: int = 10) -> dict:
    """Median render time of each tag with IMPRESSIONS off and on.

    Blocks of ``block`` renders alternate between off and on (which goes
    first alternates too), over the same visitors and items, so a slow spell
    of a shared machine lands on both. Wall time is what a visitor waits;
    the thread's CPU time is what the page's own work costs, whatever else
    the machine runs.
    """
    from django.db import connection
    from django.template import Context, Template
    from django.test.utils import CaptureQueriesContext, override_settings

    from django_recs.feedback.buffer import buffer
    from django_recs.items import item_content_type
    from tests.testapp.models import Product

    item_content_type(Product)
    products = list(Product.objects.order_by("?")[:400])
    requests = _requests(400)
    contexts = [{"product": products[i], "user": requests[i].user, "request": requests[i],
                 "url": f"/products/{products[i].pk}/"} for i in range(400)]
    results = {}
    for tag, source in TEMPLATES.items():
        template = Template(source)
        queries = {}
        for enabled in (False, True):  # warm-up: caches, content types, the writer thread
            with override_settings(DJANGO_RECS=settings_with(IMPRESSIONS=enabled)):
                for i in range(100):
                    template.render(Context(contexts[i % 400]))
                with CaptureQueriesContext(connection) as captured:
                    output = template.render(Context(contexts[0]))
                queries[enabled] = len(captured.captured_queries)
        if output.count("recs_click=") != 10:
            raise SystemExit(f"{tag}: the logged list rendered no click links")

        def render(enabled, i, template=template):
            template.render(Context(contexts[i % 400]))

        def impressions(enabled):
            return override_settings(DJANGO_RECS=settings_with(IMPRESSIONS=enabled))

        measured = interleaved_medians(render, renders, block, setting=impressions)
        results[tag] = {**measured, "queries_off": queries[False], "queries_on": queries[True]}
        off, on = measured["off"], measured["on"]
        print(f"  {tag}: off {off:.3f} ms, on {on:.3f} ms", file=sys.stderr, flush=True)
    buffer.flush()
    return results


def measure_alternatives(lists: int = 2000) -> dict:
    """Per list, without its links: the chosen buffer, an INSERT, a Redis RPUSH."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test.utils import override_settings

    from django_recs.feedback.buffer import COLUMNS, buffer
    from django_recs.feedback.ids import id_time
    from django_recs.feedback.impressions import log_list
    from django_recs.feedback.visitors import visitor_of
    from django_recs.models import Impression
    from tests.testapp.models import Product

    items = list(Product.objects.order_by("pk")[:10])
    queryset = Product.objects.filter(pk__in=[p.pk for p in items])
    queryset._result_cache = items
    queryset.recs_runs = {"similar": 1}
    user = User.objects.order_by("pk").first()
    visitor = visitor_of(None, user, "s" * 32)
    with override_settings(DJANGO_RECS=settings_with(IMPRESSIONS=True)):
        logged = []
        for _ in range(lists):
            began = time.perf_counter_ns()
            log_list(queryset, placement="bench", algorithm="similar", visitor=visitor)
            logged.append((time.perf_counter_ns() - began) / 1e6)
        rows = buffer.take()
        inserted = []
        for row in rows[:lists // 4]:
            began = time.perf_counter_ns()
            Impression.objects.create(shown_at=id_time(row[0]), **dict(zip(COLUMNS, row)))
            inserted.append((time.perf_counter_ns() - began) / 1e6)
    return {
        "the process's buffer (chosen): log_list()": statistics.median(logged),
        "an INSERT per list (autocommit)": statistics.median(inserted),
        "a Redis RPUSH per list, drained by a task": _redis_rpush(rows[:lists // 4],
                                                                  settings.REDIS_URL),
    }


def _redis_rpush(rows, url: str) -> float | None:
    """Median time to serialise a row and RPUSH it to Redis (None without a Redis server)."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
    except Exception:
        return None
    key = f"recs_bench_feedback:{os.getpid()}"
    times = []
    try:
        for row in rows:
            began = time.perf_counter_ns()
            client.rpush(key, json.dumps([str(v) if v is not None else None for v in row]))
            times.append((time.perf_counter_ns() - began) / 1e6)
    finally:
        client.delete(key)
    return statistics.median(times)


def measure_ingestion(args) -> dict:
    """Start the producer processes; impressions they had written per second, and any lost."""
    from django.db import connection

    from django_recs.models import Impression

    before = Impression.objects.count()
    connection.close()
    env = dict(os.environ)
    producers = [
        subprocess.Popen([sys.executable, __file__, "--producer", str(i), "--seconds",
                          str(args.seconds)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for i in range(args.producers)
    ]
    reports = []
    for producer in producers:
        out, _ = producer.communicate()
        if producer.returncode:
            raise SystemExit(f"a producer failed (exit {producer.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    written = Impression.objects.count() - before
    logged = sum(r["logged"] for r in reports)
    seconds = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    flushes = sum(r["flushes"] for r in reports)
    return {"written": written, "seconds": seconds, "rate": written / seconds,
            "lost": logged - written, "flushes": flushes,
            "rows_per_flush": written / max(flushes, 1)}


def run_producer(args) -> None:
    """Buffer impressions as fast as this process's writer thread keeps up, for ``args.seconds``.

    The rows are what log_list() buffers for lists of 10 items shown to
    signed-in and anonymous visitors, each with an id of its own: the page's
    side is measured by the renders, this measures the writer and the database.
    """
    import random

    import django

    django.setup()
    from django.test.utils import override_settings

    from django_recs.feedback.buffer import buffer
    from django_recs.feedback.ids import new_impression_id
    from django_recs.items import item_content_type
    from tests.testapp.models import Product

    rng = random.Random(args.producer)
    item_type_id = item_content_type(Product).pk
    templates = []
    for i in range(500):
        items = ",".join(str(rng.randint(1, SIZE["items"])) for _ in range(10))
        anonymous = i % 2 == 0  # half the visitors signed in, half anonymous
        templates.append((
            "home-for-you" if i % 3 else "product-also-bought",
            None if anonymous else rng.randint(1, SIZE["users"]),
            f"session{args.producer}{i:032d}" if anonymous else "",
            item_type_id, "" if i % 3 else str(rng.randint(1, SIZE["items"])), items,
            "personal*8,popular*2" if i % 5 else "popular*10", "personal", 1, None, "", "",
        ))
    flushes = 0
    original_flush = buffer.flush

    def counted_flush():
        nonlocal flushes
        written = original_flush()
        flushes += bool(written)
        return written

    buffer.flush = counted_flush
    logged = 0
    with override_settings(DJANGO_RECS=settings_with(IMPRESSIONS=True)):
        start = time.time()
        deadline = start + args.seconds
        while time.time() < deadline:
            for template in templates:
                buffer.add((new_impression_id(), *template))
            logged += len(templates)
            while len(buffer) > BACKLOG:  # the writer is behind: wait (a page never would)
                time.sleep(0.005)
        buffer.flush()  # what is left, as at a clean exit (after the write in flight)
        while len(buffer):
            buffer.flush()
        end = time.time()
    print(json.dumps({"logged": logged, "start": start, "end": end, "flushes": flushes}))


if __name__ == "__main__":
    main()
