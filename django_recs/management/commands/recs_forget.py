"""manage.py recs_forget --user ID [--lift]: erase a user, or lift an erasure."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from django_recs.capture import forget_user_details, unforget_user
from django_recs.capture.forgetting import user_id_of


class Command(BaseCommand):
    help = ("Delete a user's interactions, recommendations and feedback (privacy requests); "
            "nothing of the user is recorded again until --lift.")

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="ID",
                            help="Primary key of the user (an already deleted user's id works).")
        parser.add_argument("--lift", action="store_true",
                            help="Lift the erasure: the user is recorded again from now on.")
        parser.add_argument("--database", default=None, help="Database alias.")

    def handle(self, *args, user, lift, database, **options):
        try:
            user_id = user_id_of(user)
        except (ValueError, TypeError) as error:
            raise CommandError(f"--user {user!r} is not a valid user id: {error}") from error
        if lift:
            lifted = unforget_user(user_id, using=database)
            self.stdout.write(self.style.SUCCESS(
                f"User {user_id} is recorded again from now on." if lifted
                else f"User {user_id} was not forgotten; nothing to lift."))
            return
        deleted = forget_user_details(user_id, using=database)
        total = sum(deleted.values())
        details = ", ".join(f"{count:,} {label}" for label, count in deleted.items())
        self.stdout.write(self.style.SUCCESS(
            f"Deleted {total:,} rows stored for user {user_id} ({details}); nothing of the "
            "user is recorded again until recs_forget --lift."
        ))
