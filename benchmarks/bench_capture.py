"""Events per second of capture: record() one by one against the bulk paths.

The events are the Online Retail purchases (../shared/data/online-retail,
CC BY 4.0, Daqing Chen, UCI Machine Learning Repository) repeated until there
are 1,000,000 of them: customer -> user, stock code -> product, quantity ->
weight, invoice date -> timestamp. For SQLite and PostgreSQL each path starts
from an empty interaction table:

- ``record()``: one call (one INSERT, one commit) per event, as a shop's
  request would; timed on a sample (it would take many minutes on all events);
- ``record_many()``: the Python bulk path (validation, existence checks, COPY);
- ``recs_import``: the command on a CSV file of the events (parsing included);
- ``bulk_insert``: the storage writer alone, numpy columns (the floor).

Each backend runs in a child process with its own database: ``recs_bench_capture``
on the PostgreSQL and the MySQL/MariaDB server (see benchmarks/databases.py;
created and dropped here), SQLite a temporary file. A server that cannot be
reached is left out of the table with its error. The backend ``mysql-insert``
(not run by default) is MySQL/MariaDB with ``local_infile`` off: the
multi-row INSERTs the bulk paths fall back to.

    python benchmarks/bench_capture.py [--quick] [--backends sqlite,postgres,mysql,mysql-insert]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.databases import (  # noqa: E402
    BACKENDS,
    create_database,
    display_name,
    drop_database,
    server_cpu_seconds,
    unavailable,
)

DB_NAME = "recs_bench_capture"
SIZES = {"full": {"events": 1_000_000, "one_by_one": 5_000},
         "quick": {"events": 100_000, "one_by_one": 2_000}}


# -- parent: one child per backend, then the table -------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events instead of 1,000,000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    if args.child:
        print(json.dumps(run_child(args.child, SIZES[size])))
        return

    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
        sqlite_file = None
        server = backend.removesuffix("-insert")
        if server not in BACKENDS or backend == "sqlite-insert" or backend == "postgres-insert":
            sys.exit(f"--backends: {backend!r} is not one of {', '.join(BACKENDS)}, mysql-insert")
        if reason := unavailable(server):
            print(f"{backend}: left out, the server cannot be reached ({reason})", file=sys.stderr)
            continue
        if server != "sqlite":
            env["DATABASE_URL"] = create_database(server, DB_NAME, fresh=True)
        else:
            sqlite_file = str(Path(tempfile.gettempdir()) / f"recs_bench_capture_{os.getpid()}.sqlite3")
            env.pop("DATABASE_URL", None)
            env["DJANGO_RECS_SQLITE_PATH"] = sqlite_file
        print(f"{backend}: running ({SIZES[size]['events']:,} events)...", file=sys.stderr)
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", backend] + (["--quick"] if args.quick else []),
                env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
            ).stdout
        finally:
            if server != "sqlite":
                drop_database(server, DB_NAME)
            elif sqlite_file:
                Path(sqlite_file).unlink(missing_ok=True)
        results.append(json.loads(out.strip().splitlines()[-1]))
    print_table(results)


def print_table(results: list[dict]) -> None:
    print()
    print(f"{'database':<22}{'path':<22}{'events':>11}{'seconds':>10}{'events/s':>12}"
          f"{'x record()':>12}{'client CPU s':>14}{'server CPU s':>14}")
    print("-" * 117)
    for result in results:
        one = result["paths"]["record() one by one"]["rate"]
        for path, row in result["paths"].items():
            server = "-" if row["server_cpu"] is None else f"{row['server_cpu']:.2f}"
            print(f"{result['backend']:<22}{path:<22}{row['events']:>11,}{row['seconds']:>10.2f}"
                  f"{row['rate']:>12,.0f}{row['rate'] / one:>11.1f}x"
                  f"{row['client_cpu']:>14.2f}{server:>14}")
    print()
    print("Online Retail purchases repeated; each path starts from an empty interaction table.")
    print("CPU seconds: this process, and its server's process (PostgreSQL) or thread (MariaDB);")
    print("SQLite runs in-process.")


# -- child: one backend ------------------------------------------------------------------------


def run_child(backend: str, size: dict) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if backend == "mysql-insert":  # before the first connection: the driver's flag too
        connection.settings_dict["OPTIONS"]["local_infile"] = 0
    label = display_name(connection) + " INSERTs" * (backend == "mysql-insert")
    call_command("migrate", verbosity=0)
    shop = load_shop()
    events = repeated_events(shop, size["events"])
    paths = {}
    paths["record() one by one"] = bench_record(shop, events, size["one_by_one"])
    paths["record_many()"] = bench_record_many(events)
    paths["recs_import FILE.csv"] = bench_import(events)
    paths["storage.bulk_insert"] = bench_bulk_insert(events)
    return {"backend": label, "paths": paths}


def load_shop() -> dict:
    """Users for the customers, products for the stock codes (bulk_insert), pks back."""
    import numpy as np
    from django.contrib.auth.models import User

    from benchmarks.datasets import online_retail
    from django_recs.storage import bulk_insert
    from tests.testapp.models import Product

    retail = online_retail()
    names = [f"customer{c}" for c in retail.customers.tolist()]
    bulk_insert(User, {"username": names, "password": ["!"] * len(names)})
    codes = retail.stock_codes.tolist()
    bulk_insert(Product, {"name": codes, "in_stock": np.ones(len(codes), dtype=bool),
                          "price": [1] * len(codes)})
    user_pk = dict(User.objects.values_list("username", "pk"))
    product_pk = dict(Product.objects.values_list("name", "pk"))
    return {
        "retail": retail,
        "user_pks": np.array([user_pk[name] for name in names], dtype=np.int64),
        "product_pks": np.array([product_pk[code] for code in codes], dtype=np.int64),
    }


def repeated_events(shop: dict, n: int) -> dict:
    """The purchases cycled to n events, as columns (pks, weights, aware datetimes)."""
    import datetime

    import numpy as np

    retail = shop["retail"]
    index = np.arange(n) % len(retail.user)
    utc = datetime.timezone.utc
    times = retail.timestamp[index].astype("datetime64[us]")
    return {
        "user": shop["user_pks"][retail.user[index]],
        "item": shop["product_pks"][retail.item[index]],
        "weight": retail.quantity[index].astype(np.float64),
        "timestamp64": times,
        "timestamp": [t.replace(tzinfo=utc) for t in times.tolist()],
    }


def empty_interactions() -> None:
    from django.db import connection

    from django_recs.models import Interaction

    with connection.cursor() as cursor:
        if connection.vendor in ("postgresql", "mysql"):
            cursor.execute(f"TRUNCATE {connection.ops.quote_name(Interaction._meta.db_table)}")
        else:
            cursor.execute(f"DELETE FROM {Interaction._meta.db_table}")


def timed(n: int, action) -> dict:
    from django.db import connection

    from django_recs.models import Interaction

    empty_interactions()
    server_before, client_before = server_cpu_seconds(connection), time.process_time()
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    client = time.process_time() - client_before
    server_after = server_cpu_seconds(connection)
    server = None if server_before is None or server_after is None else server_after - server_before
    stored = Interaction.objects.count()
    if stored != n:
        raise AssertionError(f"expected {n} interactions, found {stored}")
    return {"events": n, "seconds": seconds, "rate": n / seconds, "client_cpu": client,
            "server_cpu": server}


def bench_record(shop, events, n: int) -> dict:
    from django.contrib.auth.models import User

    import django_recs
    from tests.testapp.models import Product

    users = User.objects.in_bulk()
    products = Product.objects.in_bulk()
    calls = [(users[int(u)], products[int(i)], float(w), t) for u, i, w, t in zip(
        events["user"][:n], events["item"][:n], events["weight"][:n], events["timestamp"][:n])]

    def one_by_one():
        for user, product, weight, timestamp in calls:
            django_recs.record(user, product, "purchase", weight=weight, timestamp=timestamp)

    return timed(n, one_by_one)


def bench_record_many(events) -> dict:
    import django_recs
    from tests.testapp.models import Product

    n = len(events["user"])
    rows = list(zip(events["user"].tolist(),
                    [(Product, pk) for pk in events["item"].tolist()],
                    ["purchase"] * n, events["weight"].tolist(), events["timestamp"]))
    return timed(n, lambda: django_recs.record_many(rows))


def bench_import(events) -> dict:
    import csv

    from django.core.management import call_command

    n = len(events["user"])
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "event", "weight", "timestamp"])
        times = [str(t)[:19].replace("T", " ") for t in events["timestamp64"].tolist()]
        writer.writerows(zip(events["user"].tolist(),
                             [f"testapp.product:{pk}" for pk in events["item"].tolist()],
                             ["purchase"] * n, events["weight"].tolist(), times))
        path = handle.name
    try:
        return timed(n, lambda: call_command("recs_import", path, verbosity=0))
    finally:
        os.unlink(path)


def bench_bulk_insert(events) -> dict:
    import numpy as np
    from django.contrib.contenttypes.models import ContentType

    from django_recs.models import Interaction
    from django_recs.storage import bulk_insert
    from tests.testapp.models import Product

    n = len(events["user"])
    product_type = ContentType.objects.get_for_model(Product).pk
    columns = {
        "user_id": events["user"], "item_type_id": np.full(n, product_type),
        "item_key": events["item"].astype(str), "event": ["purchase"] * n,
        "weight": events["weight"], "timestamp": events["timestamp64"],
    }
    return timed(n, lambda: bulk_insert(Interaction, columns, batch_size=50_000))


if __name__ == "__main__":
    main()
