"""The settings and code of docs/ease.md, docs/similarity.md and docs/tuning.md, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from celery.schedules import crontab
from django.core import checks

import django_recs
from django_recs import tasks
from django_recs.evaluation import TimedInteractions
from django_recs.models import Run
from tests.pipeline.pipeline_fixtures import RECS
from tests.pipeline.test_tuning import GroupShop

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(name: str, containing: str) -> list[str]:
    text = (DOCS / name).read_text()
    return [body for body in re.findall(r"```python\n(.*?)```", text, flags=re.S)
            if containing in body]


def settings_of(name: str) -> dict:
    [block] = python_blocks(name, "DJANGO_RECS = {")
    namespace: dict = {}
    exec(block, namespace)
    return namespace["DJANGO_RECS"]


@pytest.mark.parametrize("name", ["ease.md", "similarity.md", "tuning.md"])
def test_the_documented_settings_pass_the_checks_and_run(db, settings, name):
    documented = settings_of(name)
    settings.DJANGO_RECS = {**RECS, **documented}
    problems = [e for e in checks.run_checks() if e.id.startswith("django_recs.E")]
    assert not problems, problems
    GroupShop()
    runs = django_recs.recompute(sync=True, tune=name == "tuning.md")
    assert {run.algorithm for run in runs} == set(documented["ALGORITHMS"])
    assert all(run.status == "succeeded" for run in runs), [run.error for run in runs]
    if name == "tuning.md":
        tuned = {run.algorithm: run.params["tune"] for run in runs if "tune" in run.params}
        assert set(tuned) == {"personal", "similar"}
        # the configured setting first, then the space (l2=200.0 is in it; beta=0.5 is drawn)
        assert tuned["personal"]["trials"] == 5 and tuned["similar"]["trials"] == 13


def test_the_documented_schedule_tunes_weekly_and_recomputes_nightly(db, settings):
    settings.DJANGO_RECS = {**RECS, **settings_of("tuning.md")}
    [block] = python_blocks("tuning.md", "CELERY_BEAT_SCHEDULE")
    namespace = {"crontab": crontab}
    exec(block, namespace)
    schedule = namespace["CELERY_BEAT_SCHEDULE"]
    GroupShop()
    for entry in schedule.values():
        assert entry["task"] == tasks.recompute.name
        outcomes = tasks.recompute.apply(kwargs=entry.get("kwargs", {})).get()
        assert all(outcome["status"] == "succeeded" for outcome in outcomes), outcomes
    tuned = Run.objects.filter(algorithm="personal", params__has_key="tune")
    assert tuned.exists()


def test_the_documented_script_tunes_on_the_training_part(settings):
    [block] = python_blocks("tuning.md", "from django_recs.evaluation import")
    rng = np.random.default_rng(0)
    start = np.datetime64("2011-07-01T00:00:00").astype(np.int64)
    rows, cols, times = [], [], []
    for user in range(90):
        group = user % 3
        for slot, item in enumerate(rng.choice(6, size=5, replace=False)):
            rows.append(user)
            cols.append(group * 6 + item)
            times.append(start + int((slot * 30 + rng.uniform(0, 20)) * 86_400))
    data = TimedInteractions(rows=np.array(rows), cols=np.array(cols), weights=np.ones(len(rows)),
                             timestamps=np.array(times), shape=(90, 18))
    namespace = {"data": data}
    exec(block, namespace)
    result = namespace["result"]
    assert set(result.params) == {"l2"} and result.metrics["ndcg"] > 0
    assert len(result.trials) == 4  # the default l2=200.0 is in the grid: tried once, first
    assert result.trials[0].params == {"l2": 200.0} and result.trials[0].configured
    assert result.metrics["ndcg"] >= result.configured_metrics["ndcg"]


def test_the_readme_s_quality_settings_pass_the_checks_and_run(db, settings):
    text = (DOCS.parent / "README.md").read_text()
    section = text[text.index("## How good are the recommendations?"):]
    section = section[:section.index("\n## ", 10)]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict = {}
    exec(block, namespace)
    documented = namespace["DJANGO_RECS"]
    settings.DJANGO_RECS = {**RECS, **documented}
    assert not [e for e in checks.run_checks() if e.id.startswith("django_recs.E")]
    GroupShop()
    runs = django_recs.recompute(sync=True, tune=True)
    assert {run.algorithm: run.status for run in runs} == dict.fromkeys(
        documented["ALGORITHMS"], "succeeded")
    [ease] = [run for run in runs if run.algorithm == "ease"]
    assert ease.params["tune"]["trials"] == 4
