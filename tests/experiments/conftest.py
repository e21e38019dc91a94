"""Experiment tests: feedback settings with two item-similarity algorithms, a clean cache."""

from __future__ import annotations

import pytest

from django_recs.experiments import invalidate
from django_recs.experiments.units import _accounts
from django_recs.feedback.buffer import buffer
from tests.feedback.conftest import FEEDBACK

EXPERIMENTS = {
    **FEEDBACK,
    "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 50},
        "similar-bm25": {"class": "django_recs.algorithms.ItemKNN", "k": 20},
        "personal": {"class": "django_recs.algorithms.ALS", "factors": 8},
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    "EXPERIMENT_REFRESH_SECONDS": 3600,
}


@pytest.fixture(autouse=True)
def clean_state():
    """No test sees another's buffered impressions, cached experiments or account units."""
    buffer.take()
    invalidate()
    _accounts.clear()
    yield
    buffer.take()
    invalidate()
    _accounts.clear()
