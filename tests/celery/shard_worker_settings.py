"""Settings of the Celery workers that run sharded recomputes (and of their tests).

The test suite's settings plus: every ItemKNN and ALS run split into four
shards, an ItemKNN whose shards can be held, one message at a time per
worker, and a short Redis visibility timeout so the message of a killed
worker's shard is delivered again within seconds.
"""

from tests.settings import *  # noqa: F403
from tests.settings import DJANGO_RECS as _BASE_RECS

SHARD_RECS = {
    **_BASE_RECS,
    "ALGORITHMS": {
        "similar": {"class": "tests.celery.held_shard.HeldShardItemKNN", "k": 5},
        "personal": {"class": "django_recs.algorithms.ALS", "factors": 4, "iterations": 3,
                     "regularization": 0.1, "alpha": 2.0, "similar_items": 3},
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    "RECOMMENDATIONS_PER_USER": 5,
    "SHARDS": 4,
    "NUM_THREADS": 1,
    "RUN_HEARTBEAT_TIMEOUT": 120,
}

DJANGO_RECS = SHARD_RECS

CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 8,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
