"""Settings of bench_scaleout.py and of the Celery workers it starts.

The test suite's settings, with DJANGO_RECS taken from the JSON in
``DJANGO_RECS_BENCH`` (the benchmark sets SHARDS per configuration), the
storage folder shared by the workers in ``DJANGO_RECS_MEDIA_ROOT``, and one
message at a time per worker.
"""

import json
import os

from tests.settings import *  # noqa: F403

DJANGO_RECS = json.loads(os.environ.get("DJANGO_RECS_BENCH") or "{}")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
