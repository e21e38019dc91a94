"""A running run's stage, progress, timings and heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from django.db import DatabaseError, connections
from django.utils import timezone

from ..models import Run

logger = logging.getLogger("django_recs.pipeline")

__all__ = ["STAGES", "ProgressListener", "RunTracker"]

#: The stages of a run, in order (Run.stage and the keys of Run.timings; the
#: timings also hold "cleanup", the deletion of older rows after the swap).
STAGES = ("load", "matrix", "compute", "write", "swap")

#: Rough share of a run's time per stage, to turn stage progress into Run.progress.
STAGE_WEIGHTS = {"load": 0.1, "matrix": 0.05, "compute": 0.55, "write": 0.25, "swap": 0.05}

#: Seconds between progress writes from the run itself, and heartbeats from its watcher thread.
PROGRESS_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 2.0

ProgressListener = Callable[[str, float], None]


def beat_until(stop: threading.Event, beat: Callable[[], None], *, run_id: int, using: str,
               interval: float) -> None:
    """Call ``beat`` every ``interval`` seconds until ``stop`` is set (in a thread).

    A beat that fails (SQLite's file locked by the run's own long write, a
    dropped connection) is logged and the next one tried on a new
    connection: one failure must not end the heartbeat, or a long run would
    look dead to the sweep. Nothing here may kill the run.
    """
    try:
        while not stop.wait(interval):
            try:
                beat()
            except DatabaseError as error:
                logger.warning("django_recs: heartbeat of run %s failed (%s); trying again in "
                               "%g s", run_id, error, interval)
                connections[using].close()
    except Exception:
        logger.exception("django_recs: heartbeat of run %s stopped", run_id)
    finally:
        connections[using].close()


class RunTracker:
    """Stage, progress, timings and heartbeat of a running run.

    The run writes its stage when one starts and its progress at most every
    PROGRESS_INTERVAL seconds. While it runs, a watcher thread also writes
    the heartbeat (and the latest progress) every HEARTBEAT_INTERVAL seconds,
    so a long kernel call without progress callbacks still shows the run
    alive. Inside an outer transaction (tests, ``sync=True`` in a request)
    the thread could not see the run, so only the run's own writes happen.
    """

    def __init__(self, run: Run, *, using: str, on_progress: ProgressListener | None = None):
        self.run = run
        self.using = using
        self.on_progress = on_progress
        self.current_stage = STAGES[0]
        self.fraction = 0.0
        self.timings: dict[str, float] = {}
        self.rows_read = 0
        self.rows_written = 0
        self._stage_started = time.perf_counter()
        self._last_write = 0.0
        self._stop = threading.Event()

    @contextmanager
    def watching(self):
        connection = connections[self.using]
        thread = None
        if not connection.in_atomic_block:
            thread = threading.Thread(target=self._beat, name=f"recs-run-{self.run.pk}",
                                      daemon=True)
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if thread is not None:
                thread.join()

    def _beat(self) -> None:
        def beat() -> None:
            Run.objects.using(self.using).filter(
                pk=self.run.pk, status=Run.Status.RUNNING
            ).update(heartbeat_at=timezone.now(), progress=self.overall)

        beat_until(self._stop, beat, run_id=self.run.pk, using=self.using,
                   interval=HEARTBEAT_INTERVAL)

    @contextmanager
    def stage(self, name: str):
        self.current_stage = name
        self.fraction = 0.0
        self._stage_started = time.perf_counter()
        self._write(stage=name, progress=self.overall, timings=self.timings_so_far())
        if self.on_progress is not None:
            self.on_progress(name, 0.0)
        yield
        self.timings[name] = round(time.perf_counter() - self._stage_started, 4)
        if self.on_progress is not None:
            self.on_progress(name, 1.0)

    def timings_so_far(self) -> dict[str, float]:
        timings = dict(self.timings)
        if self.current_stage not in timings:
            timings[self.current_stage] = round(time.perf_counter() - self._stage_started, 4)
        return timings

    def progress(self, fraction: float) -> None:
        """Progress callback of the current stage (fraction in [0, 1])."""
        self.note_progress(fraction)
        if time.monotonic() - self._last_write >= PROGRESS_INTERVAL:
            self._write(progress=self.overall)

    @property
    def overall(self) -> float:
        """Fraction of the whole run done: stages weighted by their usual share of time."""
        index = STAGES.index(self.current_stage) if self.current_stage in STAGES else 0
        done = sum(STAGE_WEIGHTS[stage] for stage in STAGES[:index])
        share = STAGE_WEIGHTS.get(self.current_stage, 0.0)
        return round(min(1.0, done + share * min(1.0, max(0.0, self.fraction))), 4)

    def note_progress(self, fraction: float) -> None:
        """Progress without a database write (the heartbeat thread writes it)."""
        self.fraction = float(fraction)
        if self.on_progress is not None:
            self.on_progress(self.current_stage, self.fraction)

    def _write(self, **fields) -> None:
        self._last_write = time.monotonic()
        Run.objects.using(self.using).filter(pk=self.run.pk, status=Run.Status.RUNNING).update(
            heartbeat_at=timezone.now(), **fields
        )

