"""Settings of the worker that sweeps dead runs in the hardening tests: beat inside it.

The worker test settings, with the documented sweep schedule made fast: every
second, sent to the sweeper's own queue (DJANGO_RECS_TEST_SWEEP_QUEUE).
"""

import os

from tests.celery.worker_settings import *  # noqa: F403

SWEEP_SECONDS = 1.0

CELERY_BEAT_SCHEDULE = {
    "sweep-recommendation-runs": {
        "task": "django_recs.sweep_runs",
        "schedule": SWEEP_SECONDS,
        "options": {"queue": os.environ.get("DJANGO_RECS_TEST_SWEEP_QUEUE", "celery")},
    },
}
