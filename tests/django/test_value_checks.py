"""Settings that used to pass ``manage.py check`` and then broke pages or runs (E080-E089)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from django_recs.checks import check_capture


def recs(**values):
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, **values})


def ids(check) -> list[str]:
    return [message.id for message in check() if message.id.startswith("django_recs.E")]


@pytest.mark.parametrize("value", [0, -1, "1e6", None, float("nan"), float("inf"), 1e13, True])
def test_a_max_weight_that_is_no_usable_limit_is_e080(value):
    with recs(MAX_WEIGHT=value):
        assert ids(check_capture) == ["django_recs.E080"]


@pytest.mark.parametrize("value", [5, 1e6, 1e12])
def test_a_max_weight_in_range_passes(value):
    with recs(MAX_WEIGHT=value):
        assert ids(check_capture) == []


def test_an_event_default_above_max_weight_is_e020():
    with recs(MAX_WEIGHT=10, EVENTS={"view": 1.0, "purchase": 50.0}):
        [error] = [m for m in check_capture() if m.id == "django_recs.E020"]
    assert "'purchase'" in error.msg and "MAX_WEIGHT (10)" in error.msg
