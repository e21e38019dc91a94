"""manage.py recs_rollup: count new impressions, clicks and conversions into the daily roll-ups."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError

from django_recs.feedback.rollup import SETTLE, roll_up


class Command(BaseCommand):
    help = ("Roll up the impressions, clicks and conversions since the last roll-up into "
            "daily numbers, and delete raw rows older than IMPRESSION_RETENTION_DAYS.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--settle", type=float, default=SETTLE.total_seconds(), metavar="SECONDS",
            help="Only rows at least this old are rolled up (default %(default)s: the web "
                 "processes' buffered impressions are written by then). 0 reads everything "
                 "now, for a shop where nothing else is writing.")
        parser.add_argument("--keep-expired", action="store_true",
                            help="Do not delete raw rows older than the retention.")
        parser.add_argument("--database", default=None, help="Database alias.")

    def handle(self, *args, settle, keep_expired, database, **options):
        if settle < 0:
            raise CommandError(f"--settle must be >= 0 seconds, got {settle}")
        result = roll_up(settle=datetime.timedelta(seconds=settle), using=database,
                         retention=not keep_expired)
        self.stdout.write(self.style.SUCCESS(
            f"Rolled up {result.impressions:,} impressions, {result.clicks:,} clicks and "
            f"{result.conversions:,} conversions."
        ))
        missing = result.clicks_without_impression + result.conversions_without_impression
        if missing:
            self.stdout.write(self.style.WARNING(
                f"{result.clicks_without_impression:,} clicks and "
                f"{result.conversions_without_impression:,} conversions name an impression "
                "that was never written (lost with a process, or shown with IMPRESSIONS off): "
                "not counted."
            ))
        if any(result.deleted.values()):
            details = ", ".join(f"{count:,} {label}" for label, count in result.deleted.items())
            self.stdout.write(f"Deleted expired rows: {details}.")
