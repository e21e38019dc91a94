"""manage.py check: the feedback settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_recs.checks import check_feedback
from tests.feedback.conftest import FEEDBACK
from tests.feedback.test_clicks import MIDDLEWARE

ON = {**FEEDBACK, "IMPRESSIONS": True}


def ids(**settings) -> list[str]:
    with override_settings(DJANGO_RECS={**ON, **settings}, MIDDLEWARE=MIDDLEWARE):
        return [message.id for message in check_feedback()]


def test_a_good_configuration_passes():
    assert ids() == []


@pytest.mark.parametrize("settings, expected", [
    ({"IMPRESSIONS": "yes"}, "django_recs.E080"),
    ({"CLICK_EVENT": 3}, "django_recs.E081"),
    ({"CLICK_EVENT": "clik"}, "django_recs.E081"),
    ({"CONVERSION_EVENTS": "purchase"}, "django_recs.E082"),
    ({"CONVERSION_EVENTS": ["purchased"]}, "django_recs.E082"),
    ({"CONVERSION_EVENTS": ["click"]}, "django_recs.E082"),
    ({"ATTRIBUTION_WINDOW_DAYS": 0}, "django_recs.E083"),
    ({"ATTRIBUTION_WINDOW_DAYS": "7"}, "django_recs.E083"),
    ({"IMPRESSION_RETENTION_DAYS": 10}, "django_recs.E084"),
    ({"IMPRESSION_RETENTION_DAYS": None}, "django_recs.E084"),
    ({"IMPRESSION_FLUSH_SECONDS": -1}, "django_recs.E085"),
    ({"IMPRESSION_FLUSH_SECONDS": float("nan")}, "django_recs.E085"),
])
def test_each_bad_value_is_reported(settings, expected):
    assert ids(**settings) == [expected]


def test_unknown_click_event_hints_at_the_close_one():
    with override_settings(DJANGO_RECS={**ON, "CLICK_EVENT": "clik"}, MIDDLEWARE=MIDDLEWARE):
        (error,) = check_feedback()
    assert "Did you mean 'click'?" in error.hint


def test_events_are_only_checked_while_impressions_are_on():
    assert ids(IMPRESSIONS=False, CLICK_EVENT="nothing", CONVERSION_EVENTS=["none"]) == []


def test_without_the_middleware_a_warning():
    with override_settings(DJANGO_RECS=ON):
        assert [m.id for m in check_feedback()] == ["django_recs.W003"]


def test_the_defaults_need_nothing():
    with override_settings(DJANGO_RECS={"ITEM_MODELS": ["testapp.Product"]}):
        assert check_feedback() == []
