"""docs/api.md's snippets, run: the URLs, the settings and serializer, the markup, the JSON shown."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import Client, override_settings

from django_recs.checks import check_api
from tests.api.conftest import API, LOGGED
from tests.testapp.models import Product

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "api.md").read_text()


def blocks(language: str, first_line: str | None = None) -> list[str]:
    found = re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)
    return [b for b in found if first_line is None or b.startswith(first_line)]


@pytest.fixture
def shop_api(monkeypatch):
    """The doc's shop/api.py, importable as shop.api."""
    [source] = blocks("python", "# shop/api.py")
    module = types.ModuleType("shop.api")
    exec(source, module.__dict__)  # noqa: S102 - the documented module, as written
    package = types.ModuleType("shop")
    package.api = module
    monkeypatch.setitem(sys.modules, "shop", package)
    monkeypatch.setitem(sys.modules, "shop.api", module)
    monkeypatch.setattr(Product, "get_absolute_url", lambda self: f"/products/{self.pk}/",
                        raising=False)
    return module


def documented_settings() -> dict:
    [source] = blocks("python", "# settings.py")
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - the documented settings, as written
    settings = namespace["DJANGO_RECS"]
    # The doc's shop is shop.Product; the test shop's is testapp.Product.
    return {**LOGGED, **{k: v for k, v in settings.items() if k != "ITEM_MODELS"}}


@pytest.mark.django_db
def test_the_documented_urls_settings_and_serializer_serve_lists(shop, shop_api):
    for source in blocks("python", "# urls.py"):
        namespace: dict = {}
        exec(source, namespace)  # noqa: S102 - the documented urls.py, as written
        assert namespace["urlpatterns"][-1].pattern.describe().endswith("recs/'")
    settings = documented_settings()
    with override_settings(DJANGO_RECS=settings, ROOT_URLCONF="tests.api.urls"):
        assert check_api() == []
        response = Client(HTTP_USER_AGENT="Mozilla/5.0 Chrome/124.0").get(
            f"/recs/similar/testapp.product/{shop[0].pk}/",
            {"n": 2, "placement": "product-also-bought"})
    body = response.json()
    assert body["items"][0]["item"] == {"pk": shop[1].pk, "name": "p1", "price": "1.00",
                                        "url": f"/products/{shop[1].pk}/"}
    # The response has the documented shape, key for key.
    [example] = [json.loads(b) for b in blocks("json") if '"items"' in b]
    assert body.keys() == example.keys()
    assert body["items"][0].keys() == example["items"][0].keys()
    assert body["placement"] == example["placement"] and body["impression"]
    assert all(entry["token"] for entry in body["items"])


@pytest.mark.django_db
def test_the_documented_error_is_what_a_bad_n_gets():
    [example] = [json.loads(b) for b in blocks("json") if '"status": 400' in b]
    with override_settings(DJANGO_RECS=API, ROOT_URLCONF="tests.api.urls"):
        assert Client().get("/recs/popular/", {"n": "500"}).json() == example


def test_the_documented_markup_names_what_recs_js_reads():
    [markup] = blocks("django")
    html = Template(markup).render(Context({"product": Product(pk=12)}))
    script = (ROOT / "django_recs" / "static" / "django_recs" / "recs.js").read_text()
    assert 'src="/static/django_recs/recs.js" data-recs-api="/recs/"' in html
    assert 'data-item="shop.product:12"' in html and 'data-exclude="12"' in html
    for attribute in set(re.findall(r"(data-recs(?:-[a-z]+)*)[=\s>]", html)):
        stem = attribute if not attribute.startswith("data-recs-attr-") else "data-recs-attr-"
        assert f'"{stem}' in script or f"'{stem}" in script or f'"{stem[5:]}' in script \
            or f"{stem}]" in script, attribute
    for kind in re.findall(r'data-recs="(\w+)"', html):
        assert f'"{kind}"' in script
