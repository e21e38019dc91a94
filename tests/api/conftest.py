"""API tests: products with stored neighbours, recommendations and popular items."""

from __future__ import annotations

import pytest

from django_recs.feedback.buffer import buffer
from tests.serving.serving_data import store_neighbours, store_popular, store_recommendations
from tests.testapp.models import Product

EVENTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "click": 0.5}
API = {"ITEM_MODELS": ["testapp.Product", "testapp.Gadget"], "EVENTS": EVENTS, "NUM_THREADS": 1}
#: Impressions on, written by the request's own thread at its end.
LOGGED = {**API, "IMPRESSIONS": True, "IMPRESSION_FLUSH_SECONDS": 0}
URLS = "tests.api.urls"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


@pytest.fixture(autouse=True)
def empty_buffer():
    """No test sees another's buffered impressions."""
    buffer.take()
    yield
    buffer.take()


@pytest.fixture
def shop():
    """8 products: p1..p3 neighbours of p0, p4..p7 the popular ones (p7 first)."""
    items = [Product.objects.create(name=f"p{i}") for i in range(8)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8), (items[3], 0.7)])
    store_popular([(items[7], 70.0), (items[6], 60.0), (items[5], 50.0), (items[4], 40.0)])
    return items


__all__ = ["API", "BROWSER", "LOGGED", "URLS", "shop", "store_recommendations"]
