"""The Celery app of the test suite, configured from tests.settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("DJANGO_RECS_TEST_KILL_STAGE"):
    # A kill-point test's worker: its runs wait at that stage (tests/celery/kill_points.py).
    from tests.celery import kill_points  # noqa: F401
