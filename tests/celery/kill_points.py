"""A worker whose runs stop at one stage while a file exists: the kill-point test's handle.

Imported by tests/celery_app.py when the worker's environment names a stage
(``DJANGO_RECS_TEST_KILL_STAGE``). The first task the worker runs wraps
``RunTracker.stage``: on entering that stage (its name and heartbeat already
written) the run waits while the file ``DJANGO_RECS_TEST_KILL_HOLD`` exists,
so the test can SIGKILL the worker exactly there.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from celery.signals import task_prerun

STAGE_VARIABLE = "DJANGO_RECS_TEST_KILL_STAGE"
HOLD_VARIABLE = "DJANGO_RECS_TEST_KILL_HOLD"
MAX_HOLD_SECONDS = 120


@task_prerun.connect(weak=False)
def _hold_runs_at_the_stage(**kwargs) -> None:
    from django_recs.pipeline.tracking import RunTracker

    if getattr(RunTracker.stage, "holds", False):
        return
    original = RunTracker.stage
    wanted, hold = os.environ[STAGE_VARIABLE], os.environ.get(HOLD_VARIABLE, "")

    @contextmanager
    def stage(self, name):
        with original(self, name):
            deadline = time.monotonic() + MAX_HOLD_SECONDS
            while name == wanted and hold and os.path.exists(hold) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            yield

    stage.holds = True
    RunTracker.stage = stage
