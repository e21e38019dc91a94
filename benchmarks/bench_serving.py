"""Render time of the recommendation template tags, SQLite, PostgreSQL and MariaDB.

Stores 50,000 products x 50 neighbours, 100,000 users x 20 recommendations
(with reasons) twice -- one run in the rows layout (a Recommendation row per
recommendation) and one in the lists layout (a RecommendationList row per
user holding the same entries as JSON) --, a popular run, ten interactions per user (so the "already
bought" exclusion has rows to read) and five views in each of 20,000
anonymous sessions, each run's rows in a partition of its own on PostgreSQL
as a pipeline run leaves them; then renders each tag for 10
items many times and prints median and p99 render time and the number of
queries per render. ``--quick`` uses 5,000 products and 10,000 users.

Databases of its own: build/bench_serving.sqlite3, the PostgreSQL
database ``recs_bench_serving`` (created when missing; DATABASE_URL's host and
user are used, its database name is ignored) and the MariaDB/MySQL database
``recs_bench_serving`` on BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306);
BENCH_SERVING_DB names another database on both servers. Data is reloaded only when the
stored size differs from the requested one. PostgreSQL is measured twice:
with Django's default client-side binding, and with
the OPTIONS docs/serving.md recommends (the lists' statements prepared and
planned once per connection).

    python benchmarks/bench_serving.py [--quick] [--backend sqlite|postgres|mysql|all]
                                       [--renders 500] [--explain]

The last table puts the two layouts' medians of the stored list side by side.
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
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_SERVING_DB", "recs_bench_serving")
SQLITE_PATH = ROOT / "build" / "bench_serving.sqlite3"
FULL = {"items": 50_000, "neighbours": 50, "users": 100_000, "recs": 20, "events": 10}
QUICK = {"items": 5_000, "neighbours": 50, "users": 10_000, "recs": 20, "events": 10}
CATEGORIES = 200
SESSION_KEY = "benchsession0000000000000000000000000000"[:40]
INTERACTION_COLUMNS = ["user_id", "session_key", "item_type_id", "item_key", "event", "weight",
                       "timestamp", "source_key"]

ROWS_TAG = "recommended_for (stored, with reasons)"
LISTS_TAG = "recommended_for (stored lists, with reasons)"
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
    LISTS_TAG: (
        '{% load recs %}{% recommended_for user 10 algorithm="personal_lists" as items %}'
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
    elif backend == "mysql":
        url = urlparse(os.environ.get("BENCH_MYSQL_URL") or "mysql://root@127.0.0.1:3306/x")
        env["DATABASE_URL"] = urlunparse(url._replace(path=f"/{DB_NAME}"))
    else:
        url = urlparse(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/x")
        if not url.scheme.startswith("postgres"):
            url = urlparse("postgres://postgres@127.0.0.1:5432/x")
        env["DATABASE_URL"] = urlunparse(url._replace(path=f"/{DB_NAME}"))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 items, 10,000 users")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "mysql", "all"],
                        default="all")
    parser.add_argument("--renders", type=int, default=None, help="timed renders per tag")
    parser.add_argument("--explain", action="store_true", help="print the plans of the queries")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepared", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)

    backends = ["sqlite", "postgres", "mysql"] if args.backend == "all" else [args.backend]
    runs = [(b, False) for b in backends] + [("postgres", True)] * ("postgres" in backends)
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
    print(f"{'backend':<19} {'tag':<50} {'median ms':>9} {'p99 ms':>8} {'sql ms':>7} "
          f"{'queries':>7}")
    for row in rows:
        print(
            f"{row['backend']:<19} {row['tag']:<50} {row['median_ms']:>9.3f} "
            f"{row['p99_ms']:>8.3f} {row['sql_ms']:>7.3f} {row['queries']:>7}"
        )
    print("\nA user's stored list, 10 items with reasons: medians by layout "
          "(render ms, statement ms)")
    print(f"{'backend':<19} {'rows render':>11} {'lists render':>12} {'ratio':>6} "
          f"{'rows sql':>9} {'lists sql':>9} {'ratio':>6}")
    by = {(row["backend"], row["tag"]): row for row in rows}
    for backend in dict.fromkeys(row["backend"] for row in rows):
        old, new = by[(backend, ROWS_TAG)], by[(backend, LISTS_TAG)]
        print(f"{backend:<19} {old['median_ms']:>11.3f} {new['median_ms']:>12.3f} "
              f"{new['median_ms'] / old['median_ms']:>5.2f}x {old['sql_ms']:>9.3f} "
              f"{new['sql_ms']:>9.3f} {new['sql_ms'] / old['sql_ms']:>5.2f}x")


# --- child: load data, time renders ---------------------------------------------------


def run_child(args) -> None:
    import django

    if os.environ.get("DATABASE_URL", "").startswith("mysql"):
        _create_mysql_database(os.environ["DATABASE_URL"])
    elif os.environ.get("DATABASE_URL"):
        _create_pg_database(os.environ["DATABASE_URL"])
    else:
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from django_recs.conf import DEFAULTS as recs_defaults

    if args.prepared:
        # As docs/serving.md recommends: Django's switch for prepared
        # statements (the lists' statements are prepared after 5 runs on a
        # connection), and their plans kept (see the docs for why).
        connection.settings_dict.setdefault("OPTIONS", {}).update(
            prepare_threshold=5, options="-c plan_cache_mode=force_generic_plan"
        )

    call_command("migrate", verbosity=0)
    size = QUICK if args.quick else FULL
    backend = connection.vendor
    if backend == "mysql" and connection.mysql_is_mariadb:
        backend = "mariadb"
    loaded = load_data(size)
    if not loaded and backend == "postgresql":
        # A migration may have rebuilt the tables since the data was loaded
        # (the result tables' partitions have no statistics until analysed).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"[{backend}] data {'loaded' if loaded else 'reused'}", flush=True)

    settings = {
        "ITEM_MODELS": ["testapp.Product", "testapp.Gadget"],
        "CATEGORY": {"testapp.Product": "category"},
        "NUM_THREADS": 1,
        "ALGORITHMS": {**recs_defaults["ALGORITHMS"],
                       "personal_lists": recs_defaults["ALGORITHMS"]["personal"]},
    }
    with override_settings(DJANGO_RECS=settings, DEBUG=False):
        rows = time_tags(size, args.renders or (200 if args.quick else 500), args.explain)
    for row in rows:
        row["backend"] = backend + (" prepared" if args.prepared else "")
    print(json.dumps(rows))


def _create_pg_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def _create_mysql_database(url: str) -> None:
    import MySQLdb

    parsed = urlparse(url)
    conn = MySQLdb.connect(host=parsed.hostname, port=parsed.port or 3306,
                           user=parsed.username or "root", passwd=parsed.password or "")
    try:
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{DB_NAME}` "
                              "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def _timestamp(text: str) -> str:
    """A UTC timestamp as the database takes it in bulk (MySQL has no offset in literals)."""
    from django.db import connection

    return text.removesuffix("+00") if connection.vendor == "mysql" else text


def load_data(size: dict) -> bool:
    """Fill the benchmark database unless it already holds data of ``size``."""
    import numpy as np
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from django_recs.categories import ranks_within
    from django_recs.items import item_content_type
    from django_recs.models import (
        PopularItem,
        Recommendation,
        Run,
        SimilarItem,
    )
    from django_recs.storage.partitions import (
        create_run_partition,
        drop_run_partition,
        is_partitioned,
    )
    from tests.testapp.models import Category, Product

    # "v4": each run's rows in a partition of its own, as a pipeline run
    # leaves them; many anonymous sessions.
    # "v5": the personal lists stored twice, in the rows and in the lists layout.
    marker = f"bench_serving v5 {json.dumps(size, sort_keys=True)}"
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
        "django_recs_recommendationlist",
        "django_recs_interaction", "django_recs_run", "testapp_product", "testapp_category",
        "auth_user",
    ]
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
                (u, "!", False, f"user{u}", "", "", "", False, True,
                 _timestamp("2024-01-01 00:00:00+00"))
                for u in range(1, n_users + 1)
            ),
        )
        ct = item_content_type(Product).pk
        runs = {
            name: Run.objects.create(
                algorithm=name, status="succeeded", is_active=True, triggered_by=marker
            ).pk
            for name in ("similar", "personal", "popular", "personal_lists")
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
        # The same lists in the lists layout, as kernels.encode_lists writes them.
        _bulk(
            "django_recs_recommendationlist",
            ["run_id", "user_id", "item_type_id", "items", "length"],
            (
                (runs["personal_lists"], u + 1, ct, "[" + ",".join(
                    f'["{recs[u, r]}",{float(rec_scores[u, r]):.7g},{ct},"{reasons[u, r]}"]'
                    for r in range(n_recs)) + "]", n_recs)
                for u in range(n_users)
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
                 _timestamp(f"2024-06-{1 + e:02d} 12:00:00+00"), "")
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
            ((None, key, ct, str(int(i)), "view", 1.0,
              _timestamp(f"2024-06-{1 + e:02d} 12:00:00+00"), "")
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


def _bulk(table: str, columns: list[str], rows) -> None:
    """Insert ``rows`` quickly: COPY on PostgreSQL, executemany in batches elsewhere."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                buffer = io.StringIO()
                for n, row in enumerate(rows, 1):
                    buffer.write("\t".join(r"\N" if v is None else str(v) for v in row))
                    buffer.write("\n")
                    if n % 100_000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
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
        if explain:
            for number, query in enumerate(captured.captured_queries, 1):
                if query["sql"] is None:  # prepared: no text to explain
                    continue
                _explain(query["sql"], f"{label}, query {number}")
        queries[label] = len(captured.captured_queries)
    # The tags take turns, each render in another order, so a slow spell of a
    # shared machine is spread over all of them instead of landing on one.
    # The statements' own time (execute and fetch, in the database driver) is
    # summed per render apart.
    times = {label: [] for label in templates}
    sql_times = {label: [] for label in templates}
    statement_seconds = [0.0]

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statement_seconds[0] += time.perf_counter() - start

    labels = list(templates)
    with connection.execute_wrapper(timed):
        for i in range(renders):
            for label in labels[i % len(labels):] + labels[:i % len(labels)]:
                ctx = context(i)
                statement_seconds[0] = 0.0
                start = time.perf_counter()
                templates[label].render(ctx)
                times[label].append((time.perf_counter() - start) * 1000)
                sql_times[label].append(statement_seconds[0] * 1000)
    rows = []
    for label, measured in times.items():
        measured.sort()
        rows.append({
            "tag": label,
            "median_ms": statistics.median(measured),
            "p99_ms": measured[min(len(measured) - 1, int(len(measured) * 0.99))],
            "sql_ms": statistics.median(sql_times[label]),
            "queries": queries[label],
        })
        print(f"  {label}: median {rows[-1]['median_ms']:.3f} ms", flush=True)
    return rows


def _explain(sql: str, label: str) -> None:
    from django.db import connection

    if connection.vendor == "mysql":
        prefix = "ANALYZE FORMAT=JSON " if connection.mysql_is_mariadb else "EXPLAIN ANALYZE "
    else:
        prefix = {"postgresql": "EXPLAIN (ANALYZE, BUFFERS) ",
                  "sqlite": "EXPLAIN QUERY PLAN "}[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        plan = "\n".join(" | ".join(str(v) for v in row) for row in cursor.fetchall())
    print(f"--- plan: {label}\n{plan}\n", flush=True)


if __name__ == "__main__":
    main()
