"""Settings of the Celery worker the integration tests start (and of the tests themselves).

The test suite's settings plus an algorithm that can be held in ``fit`` (to
kill its worker mid-run) and a short heartbeat timeout.
"""

from tests.settings import *  # noqa: F403
from tests.settings import DJANGO_RECS as _BASE_RECS

WORKER_RECS = {
    **_BASE_RECS,
    "ALGORITHMS": {
        "similar": {"class": "tests.celery.held_algorithm.HeldItemKNN", "k": 5},
        "personal": {"class": "django_recs.algorithms.ALS", "factors": 4, "iterations": 3,
                     "regularization": 0.1, "alpha": 2.0},
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    "RECOMMENDATIONS_PER_USER": 5,
    "RUN_HEARTBEAT_TIMEOUT": 4,
}

DJANGO_RECS = WORKER_RECS
