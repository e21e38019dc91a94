"""Settings of a prefork worker whose pool process the tests kill: a heartbeat timeout of
ten minutes, so that only Celery's report of the lost process can fail the run in time."""

from tests.celery.worker_settings import *  # noqa: F403
from tests.celery.worker_settings import WORKER_RECS

DJANGO_RECS = {**WORKER_RECS, "RUN_HEARTBEAT_TIMEOUT": 600}
