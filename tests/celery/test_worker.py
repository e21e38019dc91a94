"""A real Celery worker on the local Redis broker, sharing the test database.

Staff clicks "Recompute now" in the admin, the worker runs the task, the run
succeeds and the new rows are served; and a worker killed (SIGKILL) mid-run
leaves the old results served while the next run, after the heartbeat
timeout, succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import django_recs
from django_recs.models import Run, SimilarItem
from tests import celery_app
from tests.celery.held_algorithm import HOLD_FILE_VARIABLE
from tests.celery.worker_settings import WORKER_RECS
from tests.pipeline.pipeline_fixtures import Shop

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def database_environment() -> dict[str, str]:
    """How the worker reaches the database this test is using."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"DJANGO_RECS_SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    schemes = {"postgresql": ("postgres", "5432"), "mysql": ("mysql", "3306")}
    if connection.vendor in schemes:
        scheme, default_port = schemes[connection.vendor]
        user = quote(db.get("USER") or "")
        password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or default_port
        return {"DATABASE_URL": f"{scheme}://{user}{password}@{host}:{port}/{db['NAME']}"}
    pytest.skip(f"no worker setup for {connection.vendor}")


class WorkerProcess:
    """A ``celery worker`` started in its own process group, killed or stopped as a whole."""

    process: subprocess.Popen | None = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class Worker(WorkerProcess):
    """``celery -A tests.celery_app worker`` with the worker test settings."""

    def __init__(self, queue: str, log: Path, hold_file: Path):
        self.queue, self.log, self.hold_file = queue, log, hold_file

    def start(self, timeout: float = 60) -> Worker:
        from django.conf import settings

        env = {
            **os.environ,
            **database_environment(),
            "DJANGO_SETTINGS_MODULE": "tests.celery.worker_settings",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "REDIS_URL": settings.REDIS_URL,
            HOLD_FILE_VARIABLE: str(self.hold_file),
        }
        self.log.write_text("")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "solo",
             "-Q", self.queue, "-l", "info", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{self.queue}@%h"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.2)
        return self


@pytest.fixture
def broker(settings):
    """The test process sends real messages to a queue of its own."""
    settings.DJANGO_RECS = WORKER_RECS
    queue = f"django-recs-test-{uuid.uuid4().hex[:8]}"
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, queue
    yield queue
    conf.task_always_eager, conf.task_default_queue = saved
    forget_queue(settings.REDIS_URL, queue)


def forget_queue(redis_url: str, queue: str) -> None:
    """Drop the test queue and the unacknowledged message of a killed worker from Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(queue)
    for tag, payload in client.hgetall("unacked").items():
        if queue.encode() in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture
def worker(broker, tmp_path, transactional_db):
    worker = Worker(broker, tmp_path / "worker.log", tmp_path / "hold")
    yield worker
    worker.stop()


def wait_for(condition, timeout=60, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def admin_client(shop) -> Client:
    user = get_user_model().objects.create_user("manager", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="run_recompute"),
                              Permission.objects.get(codename="view_run"))
    client = Client()
    client.force_login(user)
    return client


def click_recompute(client, algorithm) -> Run:
    response = client.post(reverse("admin:django_recs_run_recompute"), {"algorithm": algorithm})
    assert response.status_code == 302
    run_id = int(response["Location"].rstrip("/").split("/")[-2])
    return Run.objects.get(pk=run_id)


def finished(run_id):
    run = Run.objects.get(pk=run_id)
    return run if run.status in ("succeeded", "failed") else None


def test_recompute_now_in_the_admin_runs_on_the_worker_and_is_served(worker):
    shop = Shop()
    client = admin_client(shop)
    worker.start()
    run = click_recompute(client, "similar")
    assert run.status in ("pending", "running")
    done = wait_for(lambda: finished(run.pk), message=f"run {run.pk} (log: {worker.log})")
    assert done.status == "succeeded", done.error
    assert done.task_id and done.is_active and done.rows_written > 0
    p = shop.products
    similar = list(django_recs.similar_to(p[0], 2))
    assert {item.pk for item in similar} == {p[1].pk, p[2].pk}
    assert all(item.recs_score > 0 for item in similar)
    recommended = list(django_recs.recommended_for(shop.users[7], 2, algorithm="similar"))
    assert {item.pk for item in recommended} == {p[1].pk, p[2].pk}
    # The run's page shows it finished.
    page = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "succeeded" in page and "<th>compute</th>" in page


def test_a_killed_worker_leaves_old_results_served_and_the_next_run_succeeds(worker):
    shop = Shop()
    [old] = django_recs.recompute("similar", sync=True)
    assert old.status == "succeeded"
    served_before = sorted(SimilarItem.objects.active("similar").values_list(
        "item_key", "neighbour_key", "rank"))
    worker.hold_file.write_text("hold")
    worker.start()
    [run] = django_recs.recompute("similar")
    wait_for(lambda: Run.objects.filter(pk=run.pk, status="running", stage="compute").exists(),
             message="the run to reach compute")
    worker.kill()
    # The old results are still what is served.
    assert Run.objects.get(algorithm="similar", is_active=True).pk == old.pk
    assert sorted(SimilarItem.objects.active("similar").values_list(
        "item_key", "neighbour_key", "rank")) == served_before
    assert {i.pk for i in django_recs.similar_to(shop.products[0], 2)} == {
        shop.products[1].pk, shop.products[2].pk}
    # Until the heartbeat times out, a trigger joins the (dead) run...
    dead = Run.objects.get(pk=run.pk)
    assert dead.status == "running"
    timeout = WORKER_RECS["RUN_HEARTBEAT_TIMEOUT"]
    if (timezone.now() - dead.heartbeat_at).total_seconds() < timeout - 1:
        assert django_recs.recompute("similar")[0].pk == run.pk
    # ...after it, the next trigger fails it and starts afresh.
    worker.hold_file.unlink()
    worker.start()
    wait_for(lambda: (timezone.now() - Run.objects.get(pk=run.pk).heartbeat_at).total_seconds()
             > timeout, timeout=timeout + 10, message="the heartbeat timeout")
    [fresh] = django_recs.recompute("similar")
    assert fresh.pk != run.pk
    dead.refresh_from_db()
    assert dead.status == "failed" and "heartbeat" in dead.error
    done = wait_for(lambda: finished(fresh.pk), message=f"run {fresh.pk} (log: {worker.log})")
    assert done.status == "succeeded", done.error
    assert Run.objects.get(algorithm="similar", is_active=True).pk == fresh.pk
    # Old rows are deleted right after the swap (the run is already served meanwhile).
    wait_for(lambda: not SimilarItem.objects.filter(run=old).exists(), message="the cleanup")
    assert not SimilarItem.objects.filter(run_id=run.pk).exists()
