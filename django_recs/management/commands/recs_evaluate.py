"""manage.py recs_evaluate [ALGORITHM ...]: offline evaluation of the configured algorithms.

Splits the interactions (``--split``), fits each algorithm on the training
part, prints every metric beside the Random and Popular baselines, writes an
HTML report (``--report``) and stores the numbers on a Run per algorithm so
the admin shows them. ``--grid`` searches parameters (best by nDCG@k).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from django_recs.conf import exclude_seen_events, recs_settings
from django_recs.evaluation.grid import parse_grid
from django_recs.evaluation.report import format_table, write_report
from django_recs.evaluation.suite import Candidate, run_evaluation
from django_recs.registry import algorithm_class, algorithm_names, algorithm_params

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Evaluate algorithms offline: split the interactions, fit each configured algorithm "
        "on the training part, compare the metrics with the Random and Popular baselines, "
        "and store them on a Run (shown in the admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "algorithms", nargs="*", metavar="ALGORITHM",
            help="Names from DJANGO_RECS['ALGORITHMS'] (default: all personal ones).",
        )
        parser.add_argument("--k", type=int, default=10, help="Length of the judged lists (10).")
        parser.add_argument(
            "--split", default="temporal:0.8",
            help="temporal:DATE, temporal:FRACTION, last:K or random:FRACTION (temporal:0.8).",
        )
        parser.add_argument("--report", metavar="FILE.html", help="Write an HTML report here.")
        parser.add_argument(
            "--grid", nargs="+", metavar="NAME=V1,V2",
            help="Search these parameter values (e.g. factors=32,64 regularization=0.01,0.1).",
        )
        parser.add_argument(
            "--from-csv", metavar="FILE.csv",
            help="Read user,item,event,weight,timestamp rows from a file instead of the database "
                 "(nothing is stored).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of random splits and samples.")
        parser.add_argument("--no-baselines", action="store_true", help="Skip Random and Popular.")
        parser.add_argument("--no-auc", action="store_true", help="Skip AUC (the slowest metric).")
        parser.add_argument("--no-store", action="store_true", help="Do not save Runs.")
        parser.add_argument("--markdown", action="store_true", help="Print a Markdown table.")
        parser.add_argument(
            "--cold-items", type=int, default=0, metavar="N",
            help="Also print the cold-item view: held-out items with fewer than N training "
                 "interactions (e.g. 5; 0 = off).",
        )

    def handle(self, *args, **options):
        self._bar_open = False
        quiet = options["verbosity"] < 1
        try:
            candidates = self._candidates(options["algorithms"], options["grid"])
            grid = parse_grid(options["grid"]) if options["grid"] else None
            data = self._load(options["from_csv"])
            candidates = self._with_item_features(candidates, data, options["from_csv"])
            outcome = run_evaluation(
                data,
                candidates,
                split=options["split"],
                k=options["k"],
                grid=grid,
                baselines=not options["no_baselines"],
                seed=options["seed"],
                half_life_days=recs_settings.HALF_LIFE_DAYS,
                num_threads=recs_settings.NUM_THREADS,
                compute_auc=not options["no_auc"],
                on_start=None if quiet else self._starting,
                on_grid_step=None if quiet else self._grid_step,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self._close_bar()
        summary = outcome.summary
        if not quiet:
            self.stderr.write(
                f"{summary['split']}: {summary['users_evaluated']:,} users evaluated "
                f"({summary['users_dropped_nothing_to_test']:,} with nothing to test and "
                f"{summary['users_dropped_no_history']:,} without history dropped)"
            )
        self.stdout.write(format_table(outcome.compared(), markdown=options["markdown"]))
        if options["cold_items"]:
            self._cold_items(outcome, data, candidates, options)
        for label, result in outcome.grids.items():
            best = ", ".join(f"{key}={result.best.params[key]}" for key in grid)
            self.stdout.write(f"{label}: best of {len(result.evaluations)} by nDCG: {best}")
        if options["report"]:
            path = write_report(
                options["report"], outcome.compared(), summary=summary,
                grid=outcome.grid_evaluations() or None,
            )
            self.stdout.write(f"Report written to {path}")
        if not (options["no_store"] or options["from_csv"]):
            self._store(outcome, candidates, len(data))

    # --- pieces -------------------------------------------------------------

    def _candidates(self, names: list[str], grid_specs: list[str] | None) -> list[Candidate]:
        explicit = bool(names)
        names = names or algorithm_names()
        candidates = []
        for name in names:
            cls = algorithm_class(name)  # AlgorithmConfigError is a ValueError
            if not explicit and not getattr(cls, "personal", True):
                continue  # Popular-like: already the Popular baseline
            params = algorithm_params(name)
            candidates.append(Candidate(label=name, algorithm_class=cls, params=params))
        if grid_specs and not explicit:
            wanted = set(parse_grid(grid_specs))
            candidates = [c for c in candidates if wanted <= set(c.algorithm_class.defaults)]
            if not candidates:
                raise ValueError(
                    f"grid: no configured algorithm accepts {', '.join(sorted(wanted))}; "
                    "name the algorithm to search"
                )
        return candidates

    def _with_item_features(self, candidates, data, csv_path):
        """Hand ContentKNN and Hybrid the features of the evaluated items (from ITEM_FEATURES)."""
        content = [c for c in candidates if getattr(c.algorithm_class, "uses_item_features", False)]
        if not content:
            return candidates
        if csv_path:
            self.stderr.write(
                f"skipping {', '.join(c.label for c in content)}: item features come from the "
                "database, not from --from-csv"
            )
            return [c for c in candidates if c not in content]
        from dataclasses import replace

        from django_recs.content.loading import catalog_from_item_ids, load_item_features

        features = load_item_features(catalog_from_item_ids(data.item_ids))
        return [
            replace(c, prepare=lambda algorithm: algorithm.use_item_features(features))
            if c in content else c
            for c in candidates
        ]

    def _cold_items(self, outcome, data, candidates, options) -> None:
        """The same algorithms on the held-out purchases of rarely bought items only."""
        from django_recs.evaluation.cold_items import cold_item_split

        cold = cold_item_split(outcome.split, options["cold_items"])
        if cold.n_users == 0:
            self.stdout.write(f"{cold.name}: no held-out interaction of such items.")
            return
        cold_outcome = run_evaluation(
            data, candidates, split=cold, k=options["k"],
            baselines=not options["no_baselines"], seed=options["seed"],
            half_life_days=recs_settings.HALF_LIFE_DAYS,
            num_threads=recs_settings.NUM_THREADS, compute_auc=not options["no_auc"],
        )
        self.stdout.write(f"\n{cold.name}: {cold.n_users:,} users evaluated")
        self.stdout.write(format_table(cold_outcome.compared(), markdown=options["markdown"]))

    def _load(self, csv_path: str | None):
        if csv_path:
            from django_recs.evaluation.csv_source import read_interactions_csv

            return read_interactions_csv(
                csv_path,
                events=dict(recs_settings.EVENTS),
                exclude_seen=exclude_seen_events(),
            )
        from django_recs.evaluation.database import load_timed_interactions

        return load_timed_interactions()

    def _store(self, outcome, candidates, rows_read: int) -> None:
        from django_recs.evaluation.database import store_evaluation

        classes = {c.label: c.class_path for c in candidates}
        for evaluation in outcome.evaluations:
            extra = {"data": outcome.summary}
            grid = outcome.grids.get(evaluation.label)
            if grid:
                extra["grid"] = [
                    {"params": e.params, "ndcg": e.metrics["ndcg"]} for e in grid.ranked()
                ]
            run = store_evaluation(
                evaluation.label,
                evaluation,
                algorithm_class=classes[evaluation.label],
                baselines=outcome.baselines,
                extra_metrics=extra,
                rows_read=rows_read,
            )
            self.stdout.write(f"Stored {evaluation.label} as run #{run.pk}")

    def _starting(self, label: str) -> None:
        self._close_bar()
        self.stderr.write(f"fitting {label} ...")

    def _grid_step(self, label: str, done: int, total: int, evaluation) -> None:
        filled = int(BAR_WIDTH * done / max(total, 1))
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        last = ""
        if evaluation is not None:
            last = f"  last nDCG {evaluation.metrics['ndcg']:.4f}"
        self.stderr.write(f"\r{label:<12} [{bar}] {done}/{total}{last}", ending="")
        self.stderr.flush()
        self._bar_open = True
        if done == total:
            self._close_bar()

    def _close_bar(self) -> None:
        if self._bar_open:
            self.stderr.write("")
            self._bar_open = False
        sys.stderr.flush()
