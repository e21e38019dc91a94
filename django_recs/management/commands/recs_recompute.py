"""manage.py recs_recompute [ALGORITHM ...] [--sync] [--tune]: recompute stored recommendations."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from django_recs.dispatch import recompute

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Recompute the named algorithms (all configured ones when none is named): "
        "enqueue the Celery task, or run here with --sync, showing progress and a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("algorithms", nargs="*", metavar="ALGORITHM",
                            help="Names from DJANGO_RECS['ALGORITHMS'].")
        parser.add_argument("--sync", action="store_true",
                            help="Run in this process instead of enqueueing the Celery task.")
        parser.add_argument("--tune", action="store_true",
                            help="First search the parameters of algorithms with a TUNE entry "
                                 "on the recent history, then fit with the best.")

    def handle(self, *args, algorithms, sync, tune=False, **options):
        self._last_drawn = None
        show_bar = sync and options["verbosity"] >= 1
        try:
            with _unsent_runs_reported_here():
                runs = recompute(*algorithms, sync=sync, triggered_by="command", tune=tune,
                                 on_progress=self._draw if show_bar else None)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if self._last_drawn is not None:
            self.stdout.write("")
        self._summary(runs)
        self._tuned(runs)
        for run in runs:
            if run.waiting_for_worker:
                waited = (timezone.now() - run.created_at).total_seconds()
                self.stderr.write(
                    f"{run.algorithm}: run #{run.pk} has waited {waited:.0f} s for a Celery "
                    "worker; is one running? (--sync computes here instead)"
                )
        if any(run.status == "failed" for run in runs):
            for run in runs:
                if run.status == "failed":
                    self.stderr.write(f"{run.algorithm}: {run.error.splitlines()[0]}")
            sys.exit(1)

    def _draw(self, algorithm: str, stage: str, fraction: float) -> None:
        percent = int(fraction * 100)
        state = (algorithm, stage, percent)
        if state == self._last_drawn:
            return
        if self._last_drawn is not None and self._last_drawn[0] != algorithm:
            self.stdout.write("")
        self._last_drawn = state
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stdout.write(f"\r{algorithm:<12} [{bar}] {stage:<8} {percent:3d}%", ending="")
        self.stdout.flush()

    def _tuned(self, runs) -> None:
        """One line per tuned run: the parameters chosen and their validation score."""
        for run in runs:
            record = (run.params or {}).get("tune")
            if not isinstance(record, dict) or run.status != "succeeded":
                continue
            if "error" in record:
                self.stdout.write(f"{run.algorithm}: tuning failed ({record['error']}); "
                                  "fitted with the configured parameters")
                continue
            chosen = ", ".join(f"{key}={value}" for key, value in record["params"].items())
            metric = record.get("metric", "ndcg@10")
            value = record.get("validation_metrics", {}).get(metric.partition("@")[0])
            origin = (f"re-used from run #{record['reused_from']}" if "reused_from" in record
                      else f"{record.get('trials', 0)} settings tried")
            score = "-" if value is None else f"{value:.4f}"
            self.stdout.write(f"{run.algorithm}: {chosen} (validation {metric} {score}; "
                              f"{origin})")

    def _summary(self, runs) -> None:
        header = ("algorithm", "run", "status", "seconds", "rows read", "rows written")
        rows = []
        for run in runs:
            duration = run.duration.total_seconds() if run.duration else None
            rows.append((run.algorithm, str(run.pk), run.status,
                         "-" if duration is None else f"{duration:.2f}",
                         str(run.rows_read), str(run.rows_written)))
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
        for line in (header, *rows):
            self.stdout.write("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))


@contextmanager
def _unsent_runs_reported_here():
    """Leave out the log line of a run whose task could not be sent: the command says it."""

    def keep(record: logging.LogRecord) -> bool:
        return not hasattr(record, "recs_unsent_run")

    logger = logging.getLogger("django_recs.dispatch")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
