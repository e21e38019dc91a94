"""Render time of the recommendation template tags, SQLite, PostgreSQL and MySQL/MariaDB.

Stores 50,000 products x 50 neighbours, 100,000 users x 20 recommendations
(with reasons), a popular run, ten interactions per user (so the "already
bought" exclusion has rows to read) and five views in each of 20,000
anonymous sessions, each run's rows in a partition of its own on PostgreSQL
as a pipeline run leaves them; then renders each tag for 10
items many times and prints median and p99 render time and the number of
queries per render. ``--quick`` uses 5,000 products and 10,000 users.

Databases of its own: build/bench_serving.sqlite3 and ``recs_bench_serving``
on the PostgreSQL and the MySQL/MariaDB server (created when missing; see
benchmarks/databases.py for which servers). Data is reloaded only when the
stored size differs from the requested one. A server that cannot be reached
is left out with its error. PostgreSQL is measured twice:
with Django's default client-side binding, and with
the OPTIONS docs/serving.md recommends (the lists' statements prepared and
planned once per connection).

    python benchmarks/bench_serving.py [--quick] [--backend sqlite|postgres|mysql|all]
                                       [--renders 500] [--explain]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import BACKENDS, create_database, unavailable  # noqa: E402

DB_NAME = "recs_bench_serving"
SQLITE_PATH = ROOT / "build" / "bench_serving.sqlite3"
FULL = {"items": 50_000, "neighbours": 50, "users": 100_000, "recs": 20, "events": 10}
QUICK = {"items": 5_000, "neighbours": 50, "users": 10_000, "recs": 20, "events": 10}
CATEGORIES = 200
SESSION_KEY = "benchsession0000000000000000000000000000"[:40]
INTERACTION_COLUMNS = ["user_id", "session_key", "item_type_id", "item_key", "event", "weight",
                       "timestamp", "source_key"]

TAGS = {
    "similar_items (stored neighbours)": (
        "{% load recs %}{% similar_items product 10 as items %}"
        "{% for p in items %}{{ p.name }} {{ p.recs_score }}{% endfor %}"
    ),
    "similar_items (no neighbours: category, popular)": (
        "{% load recs %}{% similar_items lonely 10 as items %}"
        "{% for p in items %}{{ p.name }} {{ p.recs_score }}{% endfor %}"
    ),
    "recommended_for (stored, with reasons)": (
        "{% load recs %}{% recommended_for user 10 as items %}"
        "{% for p in items %}{{ p.name }} {{ p.recs_reason }}{% endfor %}"
    ),
    "recommended_for (anonymous, session history)": (
        "{% load recs %}{% recommended_for anonymous 10 as items %}"
        "{% for p in items %}{{ p.name }} {{ p.recs_reason }}{% endfor %}"
    ),
}


# --- parent: run one child process per backend, print the table ----------------------


def _child_env(backend: str) -> dict:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    if backend == "sqlite":
        env.pop("DATABASE_URL", None)
        env["DJANGO_RECS_SQLITE_PATH"] = str(SQLITE_PATH)
    else:
        env["DATABASE_URL"] = create_database(backend, DB_NAME)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 items, 10,000 users")
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--renders", type=int, default=None, help="timed renders per tag")
    parser.add_argument("--explain", action="store_true", help="print the plans (PostgreSQL, MariaDB)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepared", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)

    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    for backend in list(backends):
        if reason := unavailable(backend):
            print(f"{backend}: left out, the server cannot be reached ({reason})", file=sys.stderr)
            backends.remove(backend)
    runs = [(b, prepared) for b in backends for prepared in (False, True)[:1 + (b == "postgres")]]
    rows = []
    for backend, prepared in runs:
        command = [sys.executable, __file__, "--child", "--backend", backend]
        command += ["--quick"] * args.quick + ["--explain"] * args.explain
        command += ["--prepared"] * prepared
        if args.renders:
            command += ["--renders", str(args.renders)]
        done = subprocess.run(command, env=_child_env(backend), stdout=subprocess.PIPE, text=True)
        if done.returncode:
            sys.exit(f"{backend}: the benchmark failed (exit {done.returncode})")
        *log, last = done.stdout.strip().splitlines()
        print("\n".join(log))
        rows += json.loads(last)

    size = QUICK if args.quick else FULL
    print(
        f"\nbench_serving: {size['items']:,} items x {size['neighbours']} neighbours, "
        f"{size['users']:,} users x {size['recs']} recommendations; 10 items per tag"
    )
    print(f"{'backend':<22} {'tag':<50} {'median ms':>9} {'p99 ms':>8} {'queries':>7}")
    for row in rows:
        print(
            f"{row['backend']:<22} {row['tag']:<50} {row['median_ms']:>9.3f} "
            f"{row['p99_ms']:>8.3f} {row['queries']:>7}"
        )


# --- child: load data, time renders ---------------------------------------------------


def run_child(args) -> None:
    import django

    if not os.environ.get("DATABASE_URL"):
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from benchmarks.databases import display_name

    if args.prepared:
        # As docs/serving.md recommends: Django's switch for prepared
        # statements (the lists' statements are prepared after 5 runs on a
        # connection), and their plans kept (see the docs for why).
        connection.settings_dict.setdefault("OPTIONS", {}).update(
            prepare_threshold=5, options="-c plan_cache_mode=force_generic_plan"
        )

    call_command("migrate", verbosity=0)
    size = QUICK if args.quick else FULL
    backend = display_name(connection)
    loaded = load_data(size)
    if not loaded and connection.vendor == "postgresql":
        # A migration may have rebuilt the tables since the data was loaded
        # (the result tables' partitions have no statistics until analysed).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"[{backend}] data {'loaded' if loaded else 'reused'}", flush=True)

    settings = {
        "ITEM_MODELS": ["testapp.Product", "testapp.Gadget"],
        "CATEGORY": {"testapp.Product": "category"},
        "NUM_THREADS": 1,
    }
    with override_settings(DJANGO_RECS=settings, DEBUG=False):
        rows = time_tags(size, args.renders or (200 if args.quick else 500), args.explain)
    for row in rows:
        row["backend"] = backend + (" prepared" if args.prepared else "")
    print(json.dumps(rows))


def load_data(size: dict) -> bool:
    """Fill the benchmark database unless it already holds data of ``size``."""
    import numpy as np
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from django_recs.categories import ranks_within
    from django_recs.items import item_content_type
    from django_recs.models import PopularItem, Recommendation, Run, SimilarItem
    from django_recs.storage.partitions import (
        create_run_partition,
        drop_run_partition,
        is_partitioned,
    )
    from tests.testapp.models import Category, Product

    # "v4": each run's rows in a partition of its own, as a pipeline run
    # leaves them; many anonymous sessions.
    marker = f"bench_serving v4 {json.dumps(size, sort_keys=True)}"
    if Run.objects.filter(algorithm="similar", is_active=True, triggered_by=marker).exists():
        return False
    result_models = (SimilarItem, Recommendation, PopularItem)
    partitioned = is_partitioned(SimilarItem, connection.alias)
    for run_id in Run.objects.values_list("pk", flat=True) if partitioned else ():
        for model in result_models:
            drop_run_partition(model, run_id, using=connection.alias)

    rng = np.random.default_rng(7)
    n_items, k, n_users, n_recs = size["items"], size["neighbours"], size["users"], size["recs"]
    tables = [
        "django_recs_similaritem", "django_recs_recommendation", "django_recs_popularitem",
        "django_recs_interaction", "django_recs_run", "testapp_product", "testapp_category",
        "auth_user",
    ]
    # MySQL/MariaDB read a datetime as it is written (UTC, as Django stores it), no offset.
    utc = "" if connection.vendor == "mysql" else "+00"
    with transaction.atomic():
        for table in tables:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table}")
        Category.objects.bulk_create(Category(id=i + 1, name=f"Category {i + 1}") for i in range(CATEGORIES))
        item_ids = np.arange(1, n_items + 1)
        _bulk(
            "testapp_product",
            ["id", "name", "category_id", "in_stock", "price"],
            (
                (int(i), f"Product {i}", int(i % CATEGORIES) + 1, bool(i % 10), "9.99")
                for i in item_ids
            ),
        )
        _bulk(
            "auth_user",
            ["id", "password", "is_superuser", "username", "first_name", "last_name", "email",
             "is_staff", "is_active", "date_joined"],
            (
                (u, "!", False, f"user{u}", "", "", "", False, True, f"2024-01-01 00:00:00{utc}")
                for u in range(1, n_users + 1)
            ),
        )
        ct = item_content_type(Product).pk
        runs = {
            name: Run.objects.create(
                algorithm=name, status="succeeded", is_active=True, triggered_by=marker
            ).pk
            for name in ("similar", "personal", "popular")
        }
        for model, name in zip(result_models, ("similar", "personal", "popular")):
            if partitioned:
                create_run_partition(model, runs[name], using=connection.alias)

        # Neighbours: distinct, never the item itself; item 1 has none (the
        # "no neighbours" case).
        gaps = rng.integers(1, max(2, n_items // (k + 10)), size=(n_items, k))
        neighbours = (item_ids[:, None] - 1 + np.cumsum(gaps, axis=1)) % n_items + 1
        scores = np.sort(rng.random((n_items, k)), axis=1)[:, ::-1]
        _bulk(
            "django_recs_similaritem",
            ["run_id", "item_type_id", "item_key", "neighbour_type_id", "neighbour_key", "score", "rank"],
            (
                (runs["similar"], ct, str(i), ct, str(neighbours[i - 1, r]), float(scores[i - 1, r]), r)
                for i in item_ids[1:]
                for r in range(k)
            ),
        )
        recs = rng.integers(1, n_items + 1, size=(n_users, n_recs))
        reasons = rng.integers(1, n_items + 1, size=(n_users, n_recs))
        rec_scores = np.sort(rng.random((n_users, n_recs)), axis=1)[:, ::-1]
        _bulk(
            "django_recs_recommendation",
            ["run_id", "user_id", "item_type_id", "item_key", "score", "rank", "reason_type_id",
             "reason_key"],
            (
                (runs["personal"], u + 1, ct, str(recs[u, r]), float(rec_scores[u, r]), r, ct,
                 str(reasons[u, r]))
                for u in range(n_users)
                for r in range(n_recs)
            ),
        )
        popularity = rng.permutation(item_ids)
        # As a popular run with CATEGORY stores them: the category, and the rank within it.
        categories = (popularity % CATEGORIES + 1).astype(str).astype(object)
        category_ranks = ranks_within(categories)
        _bulk(
            "django_recs_popularitem",
            ["run_id", "item_type_id", "item_key", "score", "rank", "category", "category_rank"],
            ((runs["popular"], ct, str(i), float(n_items - r), r, categories[r],
              int(category_ranks[r])) for r, i in enumerate(popularity)),
        )
        events = rng.integers(1, n_items + 1, size=(n_users, size["events"]))
        _bulk(
            "django_recs_interaction",
            INTERACTION_COLUMNS,
            (
                (u + 1, "", ct, str(events[u, e]), "purchase" if e % 3 == 0 else "view", 1.0,
                 f"2024-06-{1 + e:02d} 12:00:00{utc}", "")
                for u in range(n_users)
                for e in range(size["events"])
            ),
        )
        # Anonymous visitors: the measured session, and others as a shop has
        # them (so the database's statistics see many sessions of a few views).
        sessions = [(SESSION_KEY, 20)] + [(f"visitor{v:033d}", 5) for v in range(n_users // 5)]
        _bulk(
            "django_recs_interaction",
            INTERACTION_COLUMNS,
            ((None, key, ct, str(int(i)), "view", 1.0, f"2024-06-{1 + e:02d} 12:00:00{utc}", "")
             for key, views in sessions
             for e, i in enumerate(rng.integers(2, n_items + 1, size=views))),
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("testapp_product", "auth_user", "testapp_category"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )
            cursor.execute("ANALYZE")
    elif connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE TABLE {', '.join(tables)}")
            cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    # Drop the ContentType cache's misses and loaded users' stale state.
    User.objects.none()
    return True


def _copy_text(rows, vendor: str):
    """``rows`` in COPY's text format (which LOAD DATA reads too), 100,000 a piece."""
    def text(v):
        if v is None:
            return r"\N"
        if isinstance(v, bool) and vendor == "mysql":
            return "1" if v else "0"
        return str(v)

    buffer = io.StringIO()
    for n, row in enumerate(rows, 1):
        buffer.write("\t".join(text(v) for v in row))
        buffer.write("\n")
        if n % 100_000 == 0:
            yield buffer.getvalue()
            buffer = io.StringIO()
    yield buffer.getvalue()


def _bulk(table: str, columns: list[str], rows) -> None:
    """Insert ``rows`` quickly: COPY on PostgreSQL, LOAD DATA on MySQL/MariaDB, else executemany."""
    from django.db import connection

    from django_recs.storage.mysql_bulk import load_data, load_data_allowed

    if load_data_allowed(connection):
        quote = connection.ops.quote_name
        load_data(connection, quote(table), ", ".join(map(quote, columns)),
                  _copy_text(rows, "mysql"))
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for text in _copy_text(rows, "postgresql"):
                    copy.write(text)
            return
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == 50_000:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def time_tags(size: dict, renders: int, explain: bool) -> list[dict]:
    import numpy as np
    from django.contrib.auth.models import AnonymousUser, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.template import Context, Template
    from django.test.client import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from django_recs.items import item_content_type
    from tests.testapp.models import Product

    rng = np.random.default_rng(11)
    item_content_type(Product)  # warm the ContentType cache, as in a running process
    products = list(Product.objects.filter(pk__in=[int(i) for i in rng.integers(2, size["items"] + 1, 300)]))
    users = list(User.objects.filter(pk__in=[int(u) for u in rng.integers(1, size["users"] + 1, 300)]))
    lonely = Product.objects.get(pk=1)

    request = RequestFactory().get("/")
    request.session = SessionStore(session_key=SESSION_KEY)

    def context(i):
        return Context({
            "product": products[i % len(products)],
            "lonely": lonely,
            "user": users[i % len(users)],
            "anonymous": AnonymousUser(),
            "request": request,
        })

    templates = {label: Template(source) for label, source in TAGS.items()}
    queries = {}
    for label, template in templates.items():
        for i in range(20):  # warm-up (and, prepared, past the threshold)
            template.render(context(i))
        with CaptureQueriesContext(connection) as captured:
            output = template.render(context(0))
        if "Product" not in output:
            raise SystemExit(f"{label}: rendered no items")
        if explain and connection.vendor in ("postgresql", "mysql"):
            for number, query in enumerate(captured.captured_queries, 1):
                _explain(query["sql"], f"{label}, query {number}")
        queries[label] = len(captured.captured_queries)
    # The tags take turns, so a slow spell of a shared machine is spread
    # over all of them instead of landing on one.
    times = {label: [] for label in templates}
    for i in range(renders):
        for label, template in templates.items():
            ctx = context(i)
            start = time.perf_counter()
            template.render(ctx)
            times[label].append((time.perf_counter() - start) * 1000)
    rows = []
    for label, measured in times.items():
        measured.sort()
        rows.append({
            "tag": label,
            "median_ms": statistics.median(measured),
            "p99_ms": measured[min(len(measured) - 1, int(len(measured) * 0.99))],
            "queries": queries[label],
        })
        print(f"  {label}: median {rows[-1]['median_ms']:.3f} ms", flush=True)
    return rows


def _explain(sql: str, label: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        else:  # MariaDB's ANALYZE: the plan with the rows and time it took
            cursor.execute("ANALYZE " + sql)
            names = [column[0] for column in cursor.description]
            plan = "\n".join(" | ".join(f"{n}={v}" for n, v in zip(names, row) if v is not None)
                              for row in cursor.fetchall())
    print(f"--- plan: {label}\n{plan}\n", flush=True)


if __name__ == "__main__":
    main()
