"""What an A/B experiment costs a page: a list tag with and without a running experiment.

Per database (SQLite, PostgreSQL), in a child process with its own database
(as benchmarks/bench_feedback.py: 5,000 products x 20 neighbours, 2,000
users x 20 recommendations, a popular run), with IMPRESSIONS on: each list
tag with its 10 click links is rendered for signed-in visitors (their
sessions loaded, as a page has them) at a placement without an experiment,
and at a placement with one running (two variants of the same algorithm, so
the lists are the same and only the routing differs: the per-process copy of
the experiments, the visitor's unit from the session, the hash, and the
experiment's fields on the impression). Alternating blocks of 10 renders;
median wall and thread CPU time of each, the extra, and the queries per
render.

    python benchmarks/bench_experiments.py [--quick] [--backends sqlite,postgres] [--renders 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_feedback import _requests, load_data, settings_with  # noqa: E402
from benchmarks.databases import scratch_database  # noqa: E402
from benchmarks.timing import interleaved_medians  # noqa: E402

PG_DB_NAME = "recs_bench_experiments"
TEMPLATES = {
    "similar_items": (
        "{% load recs %}{% similar_items product 10 placement=placement as items %}"
        "{% for p in items %}<a href='{{ p|recs_click_url:url }}'>{{ p.name }}</a>{% endfor %}"
    ),
    "recommended_for": (
        "{% load recs %}{% recommended_for user 10 placement=placement as items %}"
        "{% for p in items %}<a href='{{ p|recs_click_url:url }}'>{{ p.name }}</a>{% endfor %}"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 renders per case")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--renders", type=int, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.renders = args.renders or (600 if args.quick else 2000)
    if args.child:
        print(json.dumps(run_child(args)))
        return
    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
        if backend not in ("sqlite", "postgres"):
            sys.exit(f"unknown backend {backend!r} (sqlite, postgres)")
        print(f"{backend}: running ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--child", backend, "--renders", str(args.renders)]
        with scratch_database(backend, PG_DB_NAME, env):
            out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE,
                                 text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\nA list tag and its 10 links, median of {args.renders:,} renders each, without and "
          "with a running experiment at its placement (IMPRESSIONS on)")
    print(f"{'':<29}{'wall time (median)':^35}{'thread CPU (median)':^30}")
    print(f"{'database':<12}{'tag':<17}{'plain ms':>9}{'A/B ms':>9}{'extra ms':>10}{'ratio':>7}"
          f"{'plain ms':>10}{'A/B ms':>9}{'extra ms':>10}{'queries':>9}")
    for result in results:
        for tag, row in result["overhead"].items():
            print(f"{result['backend']:<12}{tag:<17}{row['off']:>9.3f}{row['on']:>9.3f}"
                  f"{row['extra']:>10.3f}{row['ratio']:>7.2f}{row['cpu_off']:>10.3f}"
                  f"{row['cpu_on']:>9.3f}{row['cpu_extra']:>10.3f}"
                  f"{row['queries_off']:>5} {row['queries_on']:>3}")


def run_child(args) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    load_data()
    backend = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(connection.vendor,
                                                                    connection.vendor)
    return {"backend": backend, "overhead": measure(args.renders)}


def measure(renders: int, block: int = 10) -> dict:
    from django.db import connection
    from django.template import Context, Template
    from django.test.utils import CaptureQueriesContext, override_settings

    from django_recs.experiments import start
    from django_recs.feedback.buffer import buffer
    from django_recs.items import item_content_type
    from django_recs.models import Experiment, Variant
    from tests.testapp.models import Product

    settings = settings_with(IMPRESSIONS=True)
    item_content_type(Product)
    products = list(Product.objects.order_by("?")[:400])
    requests = _requests(400)
    for request in requests:
        request.session.get("loaded")  # a page's session is loaded by the auth middleware
    with override_settings(DJANGO_RECS=settings):
        for tag, algorithm in (("similar_items", "similar"), ("recommended_for", "personal")):
            test = Experiment.objects.create(name=tag, placements=f"ab-{tag}")
            for name in ("A", "B"):
                Variant.objects.create(experiment=test, name=name, algorithm=algorithm,
                                       is_control=name == "A")
            start(test)
    results = {}
    for tag, source in TEMPLATES.items():
        template = Template(source)
        placements = {False: f"plain-{tag}", True: f"ab-{tag}"}
        contexts = [{"product": products[i], "user": requests[i].user, "request": requests[i],
                     "url": f"/products/{products[i].pk}/"} for i in range(400)]
        queries = {}
        with override_settings(DJANGO_RECS=settings):
            for running in (False, True):  # warm-up: caches, the copy of experiments, units
                for i in range(400):
                    template.render(Context({**contexts[i], "placement": placements[running]}))
                with CaptureQueriesContext(connection) as captured:
                    template.render(Context({**contexts[0], "placement": placements[running]}))
                queries[running] = len(captured.captured_queries)

            def render(running, i, template=template, contexts=contexts, placements=placements):
                template.render(Context({**contexts[i % 400], "placement": placements[running]}))

            measured = interleaved_medians(render, renders, block)
        results[tag] = {**measured, "queries_off": queries[False], "queries_on": queries[True]}
        off, on = measured["off"], measured["on"]
        print(f"  {tag}: plain {off:.3f} ms, A/B {on:.3f} ms", file=sys.stderr, flush=True)
    buffer.flush()
    return results


if __name__ == "__main__":
    main()
