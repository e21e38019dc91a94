"""Triggering runs: the nightly task without arguments, a broker that is down, a run
that no worker takes, and a project whose Celery app is not wired in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import django_recs
from django_recs import pipeline, tasks
from django_recs.models import Run
from tests import celery_app
from tests.pipeline.pipeline_fixtures import RECS, Shop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recs(settings):
    settings.DJANGO_RECS = RECS
    return settings


# -- the task without arguments (the README's beat schedule) --------------------------------


def test_the_recompute_task_without_arguments_runs_every_algorithm_popular_first(db, recs):
    Shop()
    outcomes = tasks.recompute.delay().get()
    assert [outcome["algorithm"] for outcome in outcomes] == [
        "popular", "similar", "personal", "broken"]
    runs = list(Run.objects.order_by("pk"))
    assert [run.algorithm for run in runs] == ["popular", "similar", "personal", "broken"]
    assert {run.triggered_by for run in runs} == {"celery"}
    assert [outcome["status"] for outcome in outcomes] == [
        "succeeded", "succeeded", "succeeded", "failed"]
    assert "boom in fit" in outcomes[-1]["error"]
    assert all(pipeline.active_run(name) for name in ("popular", "similar", "personal"))


def test_in_a_worker_a_failed_algorithm_fails_the_task_after_the_others_ran(db, recs):
    Shop()
    with pytest.raises(tasks.RunsFailed, match=r"broken run #\d+ failed: ZeroDivisionError"):
        tasks.recompute()  # called as a worker does: not eager
    assert Run.objects.filter(status="succeeded").count() == 3


def test_the_task_without_arguments_leaves_a_run_in_flight_alone(db, recs):
    Shop()
    in_flight, _ = pipeline.start_run("similar", triggered_by="admin:someone")
    outcomes = {outcome["algorithm"]: outcome for outcome in tasks.recompute.delay().get()}
    assert outcomes["similar"] == {"algorithm": "similar", "run": in_flight.pk,
                                   "status": "pending", "error": ""}
    assert Run.objects.filter(algorithm="similar").count() == 1


# -- a broker that is down ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(recs):
    """Celery sends for real (not eagerly) to a Redis URL where nothing listens."""
    port = _closed_port()
    app = Celery("broker-down", broker=f"redis://:s3cret@127.0.0.1:{port}/0", fixups=[])
    app.conf.task_always_eager = False
    app.conf.broker_connection_retry_on_startup = False
    app.set_current()
    yield port
    celery_app.set_current()
    app.close()


def _cause_is_named(error: str, port: int) -> None:
    assert f"redis://:**@127.0.0.1:{port}/0" in error
    assert "s3cret" not in error
    assert "refused" in error.lower() or "111" in error


def test_a_send_to_a_broker_that_is_down_fails_the_run_at_once(transactional_db, broker_down):
    [run] = django_recs.recompute("similar")
    assert run.status == "failed"
    _cause_is_named(run.error, broker_down)
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == "failed" and stored.error == run.error and stored.task_id == ""
    assert stored.finished_at is not None
    # Nothing blocks the next trigger once the broker is back.
    celery_app.set_current()
    [again] = django_recs.recompute("similar")
    assert again.pk != run.pk and Run.objects.get(pk=again.pk).status != "failed"


def test_recompute_now_with_the_broker_down_shows_the_cause_not_a_500(transactional_db,
                                                                       broker_down):
    user = get_user_model().objects.create_user("manager", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="django_recs", codename__in=["run_recompute", "view_run"]))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.post(reverse("admin:django_recs_run_recompute"), {"algorithm": "similar"},
                           follow=True)
    assert response.status_code == 200
    run = Run.objects.get()
    assert run.status == "failed"
    [message] = list(response.context["messages"])
    assert message.level_tag == "error"
    _cause_is_named(str(message), broker_down)


def test_recs_recompute_with_the_broker_down_exits_1_with_one_line(transactional_db, broker_down,
                                                                   capfd):
    with pytest.raises(SystemExit) as exited:
        call_command("recs_recompute", "similar")
    assert exited.value.code == 1
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("similar: The task could not be sent to the Celery broker")
    _cause_is_named(err[0], broker_down)
    assert "Traceback" not in err[0]


# -- a run that no worker takes ---------------------------------------------------------------


def _pending(age: timedelta, **fields) -> Run:
    created = timezone.now() - age
    return Run.objects.create(algorithm="similar", status="pending", created_at=created,
                              heartbeat_at=created, **fields)


def test_a_pending_run_is_reported_waiting_for_a_worker_after_pending_timeout(db, recs):
    recs.DJANGO_RECS = {**RECS, "PENDING_TIMEOUT": 60}
    assert not _pending(timedelta(seconds=30)).waiting_for_worker
    Run.objects.all().delete()
    waiting = _pending(timedelta(seconds=90))
    assert waiting.waiting_for_worker
    Run.objects.filter(pk=waiting.pk).update(status="running")
    waiting.refresh_from_db()
    assert not waiting.waiting_for_worker


def test_recs_recompute_says_when_the_run_in_flight_waits_for_a_worker(db, recs, capsys):
    waiting = _pending(timedelta(minutes=3), task_id="abc")
    call_command("recs_recompute", "similar")
    err = capsys.readouterr().err
    assert f"similar: run #{waiting.pk} has waited 18" in err and "worker" in err


def test_a_pending_run_no_worker_took_is_failed_as_such_not_as_a_killed_worker(db, recs):
    # A pending run waits QUEUE_TIMEOUT (a busy worker takes it later), not the heartbeat's.
    recs.DJANGO_RECS = {**RECS, "QUEUE_TIMEOUT": 60, "RUN_HEARTBEAT_TIMEOUT": 1}
    never_taken = _pending(timedelta(minutes=5), task_id="abc")
    fresh, created = pipeline.start_run("similar")
    assert created and fresh.pk != never_taken.pk
    never_taken.refresh_from_db()
    assert never_taken.status == "failed"
    assert never_taken.error.startswith("No worker started this run within 60 s")
    assert "task abc" in never_taken.error and "killed" not in never_taken.error


# -- a project whose Celery app is not imported -------------------------------------------------


def _project(tmp_path: Path, *, wired: bool) -> Path:
    """A minimal project package; ``wired``: its __init__ imports its Celery app."""
    package = tmp_path / "wiring"
    package.mkdir()
    (package / "settings.py").write_text(textwrap.dedent("""
        SECRET_KEY = "x"
        INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes",
                          "django.contrib.sessions", "django.contrib.messages",
                          "django.contrib.admin", "django_recs"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        DJANGO_RECS = {"ITEM_MODELS": ["auth.Group"]}
        CELERY_BROKER_URL = "redis://127.0.0.1:6379/9"
        SILENCED_SYSTEM_CHECKS = ["admin.E403", "admin.E408", "admin.E409", "admin.E410"]
    """))
    (package / "celery.py").write_text(textwrap.dedent("""
        import os
        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wiring.settings")
        app = Celery("wiring")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """))
    (package / "__init__.py").write_text(
        "from .celery import app as celery_app\n" if wired else "")
    return tmp_path


def _check(project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wiring.settings",
           "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run([sys.executable, "-m", "django", "check"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_warns_when_the_project_does_not_import_its_celery_app(tmp_path):
    result = _check(_project(tmp_path, wired=False))
    assert "django_recs.W002" in result.stderr, result.stderr
    assert "amqp://guest:**@localhost:5672//" in result.stderr
    assert "from .celery import app as celery_app" in result.stderr


def test_check_is_silent_about_celery_when_the_app_is_imported(tmp_path):
    result = _check(_project(tmp_path, wired=True))
    assert result.returncode == 0, result.stderr
    assert "W002" not in result.stderr + result.stdout


def test_a_send_through_the_unconfigured_app_is_logged(tmp_path):
    project = _project(tmp_path, wired=False)
    settings = project / "wiring" / "settings.py"
    settings.write_text(settings.read_text().replace('":memory:"', f'"{tmp_path}/db.sqlite3"'))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wiring.settings",
           "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)]),
           # Celery's default app reads only this variable: a port where nothing listens.
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{_closed_port()}/0"}
    run = subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], cwd=project,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    code = "import django_recs; print(django_recs.recompute('popular')[0].status)"
    run = subprocess.run([sys.executable, "-m", "django", "shell", "-c", code], cwd=project,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines()[-1] == "failed", run.stderr
    assert "Celery's current app in this process is its unconfigured default" in run.stderr
    assert "from .celery import app as celery_app" in run.stderr


def test_the_run_page_says_a_pending_run_waits_for_a_worker(db, recs, admin_client):
    waiting = _pending(timedelta(minutes=2))
    page = admin_client.get(reverse("admin:django_recs_run_change", args=[waiting.pk]))
    text = page.content.decode()
    assert "has been waiting 1" in text and "for a Celery worker: is one running?" in text
    assert "data-recs-refresh" in text  # and it keeps following the run


def test_the_per_algorithm_beat_schedule_of_docs_pipeline_runs_each_entry(db, recs):
    """docs/pipeline.md's settings snippet, executed; each of its entries applied as beat would."""
    text = (ROOT / "docs" / "pipeline.md").read_text()
    [snippet] = [block for block in text.split("```python\n")[1:]
                 if block.startswith("# settings.py")]
    namespace: dict = {}
    exec(snippet.split("```")[0], namespace)  # noqa: S102 - the documented settings, as written
    schedule = namespace["CELERY_BEAT_SCHEDULE"]
    Shop()
    [sweep] = [entry for entry in schedule.values() if entry["task"] == tasks.sweep_runs.name]
    assert sweep["schedule"] <= 30 and tasks.sweep_runs.apply().get() == []
    for entry in schedule.values():
        if entry is sweep:
            continue
        assert entry["task"] == tasks.recompute.name
        result = tasks.recompute.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        run = Run.objects.get(pk=result.get()["run"])
        assert run.status == "succeeded" and run.triggered_by == "beat"
    assert {run.algorithm for run in Run.objects.all()} == {"similar", "personal", "popular"}
