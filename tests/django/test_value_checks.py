"""Settings that used to pass ``manage.py check`` and then broke pages or runs (E090-E093)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from django_recs.checks import check_algorithms, check_capture


def recs(**values):
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, **values})


def ids(check) -> list[str]:
    return [message.id for message in check() if message.id.startswith("django_recs.E")]


@pytest.mark.parametrize("value", [0, -1, "1e6", None, float("nan"), float("inf"), 1e13, True])
def test_a_max_weight_that_is_no_usable_limit_is_e080(value):
    with recs(MAX_WEIGHT=value):
        assert ids(check_capture) == ["django_recs.E090"]


@pytest.mark.parametrize("value", [5, 1e6, 1e12])
def test_a_max_weight_in_range_passes(value):
    with recs(MAX_WEIGHT=value):
        assert ids(check_capture) == []


def test_an_event_default_above_max_weight_is_e020():
    with recs(MAX_WEIGHT=10, EVENTS={"view": 1.0, "purchase": 50.0}):
        [error] = [m for m in check_capture() if m.id == "django_recs.E020"]
    assert "'purchase'" in error.msg and "MAX_WEIGHT (10)" in error.msg


# -- settings that passed check and then failed every list or every run ----------------------


@pytest.mark.parametrize("value", ["2", 0, -1, 1.5, True])
def test_max_per_category_that_is_no_positive_integer_is_e082_and_no_page_fails(value, db):
    from django.template import Context, Template

    from tests.testapp.models import Category, Product

    category = Category.objects.create(name="mugs")
    product = Product.objects.create(name="p", category=category)
    with recs(MAX_PER_CATEGORY=value, CATEGORY={"testapp.Product": "category"}):
        assert ids(check_algorithms) == ["django_recs.E092"]
        page = Template("{% load recs %}{% similar_items product 3 as items %}{{ items|length }}"
                        "{% recommended_for None 3 as more %}{{ more|length }}")
        assert page.render(Context({"product": product})) == "00"


@pytest.mark.parametrize("value", [-1, "x", 1.5, None, 10_000])
def test_num_threads_that_no_run_can_use_is_e081(value):
    with recs(NUM_THREADS=value):
        assert ids(check_algorithms) == ["django_recs.E091"]


@pytest.mark.parametrize(("setting", "value"), [
    ("RUN_HEARTBEAT_TIMEOUT", float("inf")), ("HALF_LIFE_DAYS", float("nan")),
    ("PENDING_TIMEOUT", 10**30), ("TASK_SOFT_TIME_LIMIT", float("inf")),
])
def test_numeric_settings_must_be_finite(setting, value):
    with recs(**{setting: value}):
        assert len(ids(check_algorithms)) == 1


def test_exclude_seen_as_a_string_is_e062_and_still_excludes_that_event(db):
    from django_recs.checks import check_exclude_seen
    from tests.pipeline.pipeline_fixtures import RECS, Shop

    with override_settings(DJANGO_RECS={**RECS, "EXCLUDE_SEEN": "purchase"}):
        assert ids(check_exclude_seen) == ["django_recs.E062"]
        shop = Shop()
        import django_recs

        for run in django_recs.recompute("popular", "similar", sync=True):
            assert run.status == "succeeded"
        buyer = shop.users[0]  # bought product 0
        listed = {p.pk for p in django_recs.recommended_for(buyer, 10, algorithm="similar")}
        assert listed and shop.products[0].pk not in listed


@pytest.mark.parametrize("path", ["nope", "category.nope"])
def test_a_category_field_that_does_not_exist_is_e065_and_breaks_no_list_or_run(path, db):
    import django_recs
    from django_recs.checks import check_categories
    from tests.testapp.models import Category, Product

    product = Product.objects.create(name="p", category=Category.objects.create(name="c"))
    with recs(CATEGORY={"testapp.Product": path}):
        assert ids(check_categories) == ["django_recs.E065"]
        assert list(django_recs.similar_to(product, 3)) == []
        [run] = django_recs.recompute("popular", sync=True)
        assert run.status == "succeeded", run.error
