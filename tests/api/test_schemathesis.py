"""schemathesis against a live server: every operation of openapi.json, generated inputs.

For each operation schemathesis generates requests from the document (valid
ones and, with negative data, invalid ones) and sends them to the live test
server; every response must be no server error, documented (its status, its
content type, its headers) and valid against the document's schema, and
invalid input must be refused. The shop has stored neighbours and popular
items, and impressions on, so lists, tokens and errors all occur.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.slow
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, assume, settings  # noqa: E402

from tests.api.conftest import LOGGED, URLS  # noqa: E402
from tests.serving.serving_data import store_neighbours, store_popular  # noqa: E402
from tests.testapp.models import Gadget, Product  # noqa: E402


def served_document() -> dict:
    """The document the live server serves at /recs/openapi.json (checked below)."""
    with override_settings(DJANGO_RECS=LOGGED, ROOT_URLCONF=URLS):
        return Client().get("/recs/openapi.json").json()


# The schema is read at collection, from the test client; the test below checks that
# the live server serves the same document.
schema = schemathesis.openapi.from_dict(served_document())


@pytest.fixture
def live_shop(transactional_db, live_server, settings):
    """The live server's URL, serving the shop with the API, impressions on."""
    settings.ROOT_URLCONF = URLS
    settings.DJANGO_RECS = LOGGED
    # Products 1..8 (the document's example is pk 1), with neighbours and popular items.
    products = [Product.objects.create(pk=i, name=f"p{i}") for i in range(1, 9)]
    store_neighbours(products[0], [(products[1], 0.9), (products[2], 0.8)])
    store_popular([(p, float(10 - i)) for i, p in enumerate(products[3:])])
    Gadget.objects.create(name="g")
    return live_server.url


def test_the_live_server_serves_the_tested_document(live_shop):
    with urllib.request.urlopen(f"{live_shop}/recs/openapi.json") as response:
        assert json.load(response) == schema.raw_schema


@schema.parametrize()
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_documented(case, live_shop):
    # A URL longer than a web server reads (64 KiB for the test server's
    # request line, 8 KiB in nginx) is answered 414 by the server, never
    # reaching the app: such requests test the server, not the document.
    assume(len(urllib.parse.urlencode(case.query or {}, doseq=True)) < 8_000)
    case.call_and_validate(base_url=f"{live_shop}/recs")
