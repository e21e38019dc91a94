"""The JSON endpoints through a real server: median latency, 304s, the template tags, throughput.

Per database (SQLite, PostgreSQL; 5,000 products x 20 stored neighbours,
2,000 users x 20 recommendations, a popular run, IMPRESSIONS on with the
writer thread), the shop is served by gunicorn (sync worker, CONN_MAX_AGE)
on loopback and measured from this process with plain HTTP requests (a new
connection per request, as gunicorn's sync worker closes it):

1. **Latency**, one worker: the median of REQUESTS requests per case, the
   cases interleaved in blocks of 20 so a slow spell of the shared machine
   lands on all — similar (public), the same with a matching If-None-Match
   (304), similar with a placement (logged, click tokens), popular,
   recommended for a signed-in visitor (logged); beside them the template
   tags rendering the same lists as HTML through the same server.
2. **Throughput**, WORKERS workers: CLIENTS client processes request public
   similar lists of random products for SECONDS seconds; requests per
   second answered.

    python benchmarks/bench_api.py [--quick] [--backends sqlite,postgres]
                                   [--requests 1000] [--seconds 10] [--workers 2] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
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

PG_DB_NAME = "recs_bench_api"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
N_ITEMS = 5_000
BLOCK = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 requests per case, 5 s")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        print(json.dumps(set_up_database()))
        return
    args.requests = args.requests or (300 if args.quick else 1000)
    args.seconds = args.seconds or (5.0 if args.quick else 10.0)
    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="benchmarks.api_settings",
                   PYTHONPATH=str(ROOT))
        if backend not in ("sqlite", "postgres"):
            sys.exit(f"unknown backend {backend!r} (sqlite, postgres)")
        print(f"{backend}: loading ...", file=sys.stderr, flush=True)
        with scratch_database(backend, PG_DB_NAME, env):
            setup = subprocess.run([sys.executable, __file__, "--setup"], env=env, cwd=ROOT,
                                   check=True, stdout=subprocess.PIPE, text=True).stdout
            session = json.loads(setup.strip().splitlines()[-1])["session"]
            print(f"{backend}: latency ...", file=sys.stderr, flush=True)
            with serving(env, workers=1) as port:
                latency = measure_latency(port, session, args.requests)
            print(f"{backend}: throughput ...", file=sys.stderr, flush=True)
            with serving(env, workers=args.workers) as port:
                throughput = measure_throughput(port, args.seconds, args.clients)
        results.append({"backend": {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend],
                        "latency": latency, "throughput": throughput})
    print_tables(results, args)


def print_tables(results: list[dict], args) -> None:
    print(f"\nLatency through gunicorn (1 sync worker), median of {args.requests:,} requests "
          "per case from loopback")
    print(f"{'database':<12}{'case':<44}{'median ms':>10}{'p90 ms':>9}{'vs tag':>8}")
    for result in results:
        rows = result["latency"]
        for case, row in rows.items():
            tag = rows.get(row.get("tag")) if row.get("tag") else None
            ratio = f"{row['median'] / tag['median']:.2f}" if tag else ""
            print(f"{result['backend']:<12}{case:<44}{row['median']:>10.2f}{row['p90']:>9.2f}"
                  f"{ratio:>8}")
    print(f"\nThroughput: public similar lists of random products, {args.workers} gunicorn "
          f"workers, {args.clients} client processes, {args.seconds:g} s")
    print(f"{'database':<12}{'requests':>10}{'requests/s':>12}{'errors':>8}")
    for result in results:
        row = result["throughput"]
        print(f"{result['backend']:<12}{row['requests']:>10,}{row['rate']:>12,.0f}"
              f"{row['errors']:>8}")


# --- the database ------------------------------------------------------------------------


def set_up_database() -> dict:
    """Migrate, load bench_feedback's shop, and sign user 1 in: the session key."""
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from benchmarks.bench_feedback import load_data

    call_command("migrate", verbosity=0)
    load_data()
    user = User.objects.get(pk=1)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"session": session.session_key}


# --- the server ----------------------------------------------------------------------------


class serving:
    """gunicorn serving the shop on a free port while the ``with`` block runs."""

    def __init__(self, env: dict, *, workers: int):
        self.env, self.workers = env, workers

    def __enter__(self) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", "sync",
             "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
             "django.core.wsgi:get_wsgi_application()"],
            env=self.env, cwd=ROOT,
        )
        for _ in range(200):
            try:
                if _get(self.port, "/recs/openapi.json")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.process.kill()
            raise RuntimeError("gunicorn did not start")
        return self.port

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"User-Agent": BROWSER, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- measurements ----------------------------------------------------------------------------


def measure_latency(port: int, session: str, requests: int) -> dict:
    rng = random.Random(7)
    products = [rng.randint(1, N_ITEMS) for _ in range(200)]
    etags = {pk: _get(port, f"/recs/similar/testapp.product/{pk}/?n=10")[1]["ETag"]
             for pk in products}
    cookie = {"Cookie": f"sessionid={session}"}
    cases = {
        "similar/ (public, 200)": (lambda pk: (f"/recs/similar/testapp.product/{pk}/?n=10", {}),
                                   200, "tag: similar_items (HTML)"),
        "similar/ with If-None-Match (304)": (
            lambda pk: (f"/recs/similar/testapp.product/{pk}/?n=10", {"If-None-Match": etags[pk]}),
            304, "tag: similar_items (HTML)"),
        "similar/ with placement (logged)": (
            lambda pk: (f"/recs/similar/testapp.product/{pk}/?n=10&placement=bench", {}),
            200, "tag: similar_items (HTML)"),
        "tag: similar_items (HTML)": (lambda pk: (f"/tag/similar/{pk}/", {}), 200, None),
        "popular/ (public)": (lambda pk: ("/recs/popular/?n=10", {}), 200, None),
        "recommended/ signed in, placement": (
            lambda pk: ("/recs/recommended/?n=10&placement=bench", cookie), 200,
            "tag: recommended_for (HTML)"),
        "tag: recommended_for (HTML)": (lambda pk: ("/tag/recommended/", cookie), 200, None),
    }
    times: dict[str, list[float]] = {case: [] for case in cases}
    for case, (request, expected, _) in cases.items():  # warm up, and check the answers
        status = _get(port, *request(products[0]))[0]
        assert status == expected, (case, status)
    done = 0
    while done < requests:
        for case, (request, _, _) in cases.items():
            for i in range(BLOCK):
                path, headers = request(products[(done + i) % len(products)])
                start = time.perf_counter()
                _get(port, path, headers)
                times[case].append((time.perf_counter() - start) * 1000)
        done += BLOCK
    return {case: {"median": statistics.median(values),
                   "p90": statistics.quantiles(values, n=10)[-1], "tag": cases[case][2]}
            for case, values in times.items()}


def _client(port: int, seconds: float, seed: int, out) -> None:
    rng = random.Random(seed)
    count = errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            status = _get(port, f"/recs/similar/testapp.product/{rng.randint(1, N_ITEMS)}/?n=10")[0]
        except OSError:
            status = 0
        count += 1
        errors += status != 200
    out.put((count, errors))


def measure_throughput(port: int, seconds: float, clients: int) -> dict:
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_client, args=(port, seconds, i, out))
               for i in range(clients)]
    for worker in workers:
        worker.start()
    counts = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    requests = sum(c for c, _ in counts)
    return {"requests": requests, "rate": requests / seconds,
            "errors": sum(e for _, e in counts)}


if __name__ == "__main__":
    main()
