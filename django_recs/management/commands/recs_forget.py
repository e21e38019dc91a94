"""manage.py recs_forget --user ID: delete everything stored for a user."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from django_recs.capture import forget_user_details


class Command(BaseCommand):
    help = "Delete a user's interactions, recommendations and feedback (privacy requests)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="ID",
                            help="Primary key of the user (an already deleted user's id works).")
        parser.add_argument("--database", default=None, help="Database alias.")

    def handle(self, *args, user, database, **options):
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        try:
            user_id = user_model._meta.pk.to_python(user)
        except Exception as error:
            raise CommandError(f"--user {user!r} is not a valid user id: {error}") from error
        deleted = forget_user_details(user_id, using=database)
        total = sum(deleted.values())
        details = ", ".join(f"{count:,} {label}" for label, count in deleted.items())
        self.stdout.write(self.style.SUCCESS(
            f"Deleted {total:,} rows stored for user {user_id} ({details})."
        ))
