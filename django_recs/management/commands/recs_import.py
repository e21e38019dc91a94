"""manage.py recs_import FILE.csv | --from-sources: bulk capture with a progress bar."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from django_recs.capture.importing import InvalidRows, backfill_sources, import_csv

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class ProgressBar:
    """A one-line progress bar on a stream, redrawn at most every REDRAW_SECONDS."""

    def __init__(self, stream, label: str):
        self.stream, self.label = stream, label
        self.started = time.perf_counter()
        self.last_drawn = 0.0
        self.drawn = False
        self.done, self.total = 0, None

    def __call__(self, done: int, total: int | None, *, force: bool = False) -> None:
        self.done, self.total = done, total
        now = time.perf_counter()
        if now - self.last_drawn < REDRAW_SECONDS and not force:
            return
        self.last_drawn = now
        rate = done / max(now - self.started, 1e-9)
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%} "
        else:
            bar = ""
        self.stream.write(f"\r{self.label} {bar}{done:,} rows  {rate:,.0f} rows/s", ending="")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        """Draw the bar full (a file's line count is only an estimate of its rows)."""
        self(self.done, self.done if self.total else None, force=True)
        self.close()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("")
            self.drawn = False


class Command(BaseCommand):
    help = (
        "Load interactions in bulk: from a CSV file of user,item,event,weight,timestamp rows, "
        "or (--from-sources) from the existing rows of every SOURCES model, each recorded once. "
        "Every row is validated first; a bad row writes nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", metavar="FILE.csv",
                            help='CSV file ("-" for standard input); see docs/capture.md.')
        parser.add_argument("--from-sources", action="store_true",
                            help="Record the existing rows of the SOURCES models (idempotent).")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="Write the valid rows and report the bad ones.")
        parser.add_argument("--database", default=None, help="Database alias to write to.")
        parser.add_argument("--chunk-size", type=int, default=50_000,
                            help="Rows validated and written per chunk (default 50000).")

    def handle(self, *args, file, from_sources, skip_invalid, database, chunk_size, **options):
        if bool(file) == bool(from_sources):
            raise CommandError("Give either a CSV file or --from-sources (not both).")
        if chunk_size < 1:
            raise CommandError("--chunk-size must be a positive integer.")
        bar = ProgressBar(self.stderr, "recs_import") if options["verbosity"] >= 1 else None
        try:
            if from_sources:
                result = backfill_sources(skip_invalid=skip_invalid, using=database,
                                          chunk_size=min(chunk_size, 5_000), progress=bar)
            else:
                result = import_csv(file, skip_invalid=skip_invalid, using=database,
                                    chunk_size=chunk_size, progress=bar)
        except InvalidRows as error:
            if bar:
                bar.close()
            raise CommandError(str(error)) from error
        except (OSError, ValueError) as error:
            if bar:
                bar.close()
            raise CommandError(str(error)) from error
        if bar:
            bar.finish()
        self._report(result, from_sources)

    def _report(self, result, from_sources: bool) -> None:
        parts = [f"Recorded {result.written:,} interactions from {result.rows_read:,} rows"]
        if from_sources:
            parts.append(f"{result.already_recorded:,} already recorded")
            parts.append(f"{result.not_recorded:,} not recorded (no user or item, or `when` false)")
        if result.forgotten:
            parts.append(f"{result.forgotten:,} rows of forgotten users not recorded")
        if result.bad_rows:
            parts.append(f"{result.bad_rows:,} invalid rows skipped")
        self.stdout.write(self.style.SUCCESS("; ".join(parts) + "."))
        for error in result.errors[:20]:
            self.stderr.write(f"  skipped {error}")
        if result.bad_rows > 20:
            self.stderr.write(f"  ... and {result.bad_rows - 20:,} more")
