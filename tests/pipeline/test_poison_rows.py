"""Rows a run cannot use are skipped and counted on the run, never a failed run.

Capture refuses them, but a table can hold them anyway (a shop's own bulk
insert, an older version of the app): one weight of 1e39 — finite in the
database's double precision, infinite in the kernels' float32 — must not
fail every following run until someone deletes it by hand.
"""

from __future__ import annotations

import math

import pytest

import django_recs
from django_recs.models import Interaction, PopularItem
from tests.pipeline import pipeline_fixtures
from tests.pipeline.pipeline_fixtures import interact

shop = pipeline_fixtures.shop  # fixture


@pytest.mark.parametrize("weight", [1e39, 3e38, 1e308])
def test_a_huge_weight_is_skipped_and_counted_by_every_algorithm(shop, weight):
    poisoned = shop.products[6]
    Interaction.objects.bulk_create([interact(shop.users[0], poisoned, "view", weight)])
    runs = django_recs.recompute("popular", "similar", "personal", sync=True)
    for run in runs:
        assert run.status == "succeeded", run.error
        assert run.metrics["ignored_weight_above_max"] == 1
        assert run.metrics["ignored_interactions"] == 1
        assert run.rows_read == shop.n_interactions + 1
    scores = list(PopularItem.objects.active("popular").values_list("item_key", "score"))
    assert all(math.isfinite(score) for _, score in scores)
    assert str(poisoned.pk) not in dict(scores)
    first = django_recs.recommended_for(None, 1)[0]
    assert first.pk != poisoned.pk and math.isfinite(first.recs_score)


def test_a_weight_at_max_weight_is_used(shop, settings):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, "MAX_WEIGHT": 1e6}
    heavy = shop.products[6]
    Interaction.objects.bulk_create([interact(shop.users[0], heavy, "view", 1e6)])
    [popular] = django_recs.recompute("popular", sync=True)
    assert popular.status == "succeeded"
    assert "ignored_weight_above_max" not in popular.metrics
    assert django_recs.recommended_for(None, 1)[0].pk == heavy.pk
