"""The JSON endpoints: lists in order, items serialised, errors as JSON, caching headers."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from django_recs.models import Click, Impression, Run
from tests.api.conftest import API, BROWSER, LOGGED, URLS
from tests.serving.serving_data import store_neighbours, store_recommendations
from tests.testapp.models import Gadget, NotAnItem, Product

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


def in_stock():
    """An ITEM_QUERYSETS entry: the products a shop shows."""
    return Product.objects.filter(in_stock=True)


def product_json(product):
    """An API_SERIALIZER: what a storefront needs of a product."""
    return {"id": product.pk, "title": product.name.upper(), "price": product.price}


NOT_CALLABLE = "a text"


def names(response) -> list[str]:
    return [entry["item"]["name"] for entry in response.json()["items"]]


def browser(user=None) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER)
    if user is not None:
        client.force_login(user)
    return client


# --- similar/ -------------------------------------------------------------------------


@override_settings(DJANGO_RECS=API)
def test_similar_lists_the_neighbours_in_order_with_scores(shop):
    response = Client().get(f"/recs/similar/testapp.product/{shop[0].pk}/", {"n": 5})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["model"] == "testapp.product"
    assert (body["placement"], body["impression"]) == (None, None)
    # Three neighbours, then the popular items fill the list.
    assert names(response) == ["p1", "p2", "p3", "p7", "p6"]
    first = body["items"][0]
    assert first["item"] == {"pk": shop[1].pk, "name": "p1"}
    assert first["score"] == pytest.approx(0.9)
    assert (first["source"], first["reason"], first["token"]) == ("similar", None, None)
    assert [entry["source"] for entry in body["items"]][3:] == ["popular", "popular"]


@override_settings(DJANGO_RECS=API)
def test_the_model_name_is_spelled_in_any_case_and_n_defaults_to_ten(shop):
    response = Client().get(f"/recs/similar/testapp.Product/{shop[0].pk}/")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 7  # every other product: fewer than 10 exist


@override_settings(DJANGO_RECS={**API, "ITEM_QUERYSETS": {
    "testapp.Product": "tests.api.test_endpoints.in_stock"}})
def test_the_default_queryset_of_the_model_applies(shop):
    Product.objects.filter(pk__in=[shop[2].pk, shop[7].pk]).update(in_stock=False)
    response = Client().get(f"/recs/similar/testapp.product/{shop[0].pk}/", {"n": 4})
    assert names(response) == ["p1", "p3", "p6", "p5"]


@override_settings(DJANGO_RECS={**API, "ITEM_QUERYSETS": {
    "testapp.Product": "tests.api.test_endpoints.in_stock"}})
def test_a_sold_out_item_still_has_its_similar_items(shop):
    Product.objects.filter(pk=shop[0].pk).update(in_stock=False)
    response = Client().get(f"/recs/similar/testapp.product/{shop[0].pk}/", {"n": 2})
    assert names(response) == ["p1", "p2"]


@override_settings(DJANGO_RECS=API)
def test_exclude_leaves_items_out_repeated_or_comma_separated(shop):
    url = f"/recs/similar/testapp.product/{shop[0].pk}/"
    repeated = Client().get(f"{url}?n=3&exclude={shop[1].pk}&exclude={shop[7].pk}")
    comma = Client().get(f"{url}?n=3&exclude={shop[1].pk},{shop[7].pk}")
    assert names(repeated) == names(comma) == ["p2", "p3", "p6"]


@override_settings(DJANGO_RECS=API)
def test_uuid_keyed_items_are_found_by_either_spelling():
    gadgets = [Gadget.objects.create(name=f"g{i}") for i in range(3)]
    store_neighbours(gadgets[0], [(gadgets[2], 0.5), (gadgets[1], 0.4)])
    for spelling in (str(gadgets[0].pk), gadgets[0].pk.hex):
        response = Client().get(f"/recs/similar/testapp.gadget/{spelling}/", {"n": 2})
        assert names(response) == ["g2", "g1"]
        assert response.json()["items"][0]["item"]["pk"] == str(gadgets[2].pk)
    excluded = Client().get(f"/recs/similar/testapp.gadget/{gadgets[0].pk}/",
                            {"n": 1, "exclude": str(gadgets[2].pk)})
    assert names(excluded) == ["g1"]


# --- errors -----------------------------------------------------------------------------


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("model", ["testapp.notanitem", "nope.product", "testapp", "product",
                                   ".product", "testapp.", "auth.user", "testapp.product.x"])
def test_a_model_that_is_no_item_model_is_404(shop, model):
    NotAnItem.objects.create(pk=shop[0].pk, name="x")
    body = problem(Client().get(f"/recs/similar/{model}/{shop[0].pk}/"), 404)
    assert "testapp.product, testapp.gadget" in body["detail"]


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("pk", ["999999", "abc", "1.5", "-1", "99999999999999999999999", " ",
                                "%00", "1e3"])
def test_an_unknown_item_is_404(shop, pk):
    body = problem(Client().get(f"/recs/similar/testapp.product/{pk}/"), 404)
    assert body["parameter"] == "pk"


@override_settings(DJANGO_RECS=API)
def test_a_malformed_uuid_is_404():
    problem(Client().get("/recs/similar/testapp.gadget/not-a-uuid/"), 404)
    problem(Client().get(f"/recs/similar/testapp.gadget/{uuid.uuid4()}/"), 404)


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("n", ["0", "101", "-1", "abc", "1.5", "", " 3", "１", "10" * 10])
@pytest.mark.parametrize("endpoint", ["similar", "recommended", "popular"])
def test_a_bad_n_is_400_naming_it(shop, endpoint, n):
    url = {"similar": f"/recs/similar/testapp.product/{shop[0].pk}/"}.get(
        endpoint, f"/recs/{endpoint}/")
    body = problem(Client().get(url, {"n": n}), 400)
    assert body["parameter"] == "n"
    assert "from 1 to 100" in body["detail"]


@override_settings(DJANGO_RECS={**API, "API_MAX_N": 5})
def test_api_max_n_bounds_n(shop):
    url = f"/recs/similar/testapp.product/{shop[0].pk}/"
    assert len(Client().get(url, {"n": 5}).json()["items"]) == 5
    assert "from 1 to 5" in problem(Client().get(url, {"n": 6}), 400)["detail"]


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("exclude", ["abc", "1.5", "1,x", "-1", " 1", "999999999999999999999",
                                     ",".join(["1"] * 201), ["1"] * 201])
def test_a_bad_exclude_is_400_naming_it(shop, exclude):
    body = problem(Client().get("/recs/popular/", {"exclude": exclude}), 400)
    assert body["parameter"] == "exclude"


@override_settings(DJANGO_RECS=API)
def test_a_key_no_item_of_the_model_has_excludes_nothing(shop):
    wrong_kind = Client().get("/recs/popular/", {"n": 2, "exclude": [
        "0" * 32, "99999999999999999999", str(uuid.uuid4()), ""]})
    assert names(wrong_kind) == ["p7", "p6"]


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("placement", ["", "   ", "x" * 65, "a\x00b", "tab\there"])
def test_a_bad_placement_is_400(shop, placement):
    body = problem(Client().get("/recs/popular/", {"placement": placement}), 400)
    assert body["parameter"] == "placement"


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_are_405_with_allow(shop, method):
    client = Client(enforce_csrf_checks=True)
    for url in (f"/recs/similar/testapp.product/{shop[0].pk}/", "/recs/recommended/",
                "/recs/popular/", "/recs/openapi.json"):
        response = getattr(client, method)(url)
        problem(response, 405)
        assert response["Allow"] == "GET, HEAD"


@override_settings(DJANGO_RECS=API)
def test_head_answers_like_get_without_a_body(shop):
    response = Client().head("/recs/popular/")
    assert response.status_code == 200
    assert response.content == b""
    assert response["ETag"] == Client().get("/recs/popular/")["ETag"]


# --- caching ----------------------------------------------------------------------------


@override_settings(DJANGO_RECS=API)
@pytest.mark.parametrize("endpoint", ["similar", "popular"])
def test_public_lists_are_cacheable_with_an_etag_and_304_on_a_match(shop, endpoint):
    url = f"/recs/similar/testapp.product/{shop[0].pk}/" if endpoint == "similar" \
        else "/recs/popular/"
    first = Client().get(url, {"n": 3})
    assert first["Cache-Control"] == "public, max-age=300"
    assert "Cookie" not in first.get("Vary", "")
    etag = first["ETag"]
    again = Client().get(url, {"n": 3}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert (again["ETag"], again["Cache-Control"]) == (etag, "public, max-age=300")
    # Several tags, weak or not: a match is a match; another list is not.
    assert Client().get(url, {"n": 3}, HTTP_IF_NONE_MATCH=f'"x", W/{etag}').status_code == 304
    other = Client().get(url, {"n": 2}, HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200 and other["ETag"] != etag


@override_settings(DJANGO_RECS=API)
def test_a_swap_of_runs_changes_the_etag(shop):
    url = f"/recs/similar/testapp.product/{shop[0].pk}/"
    etag = Client().get(url, {"n": 3})["ETag"]
    old = Run.objects.get(algorithm="similar", is_active=True)
    new = Run.objects.create(algorithm="similar", status="succeeded", is_active=False)
    store_neighbours(shop[0], [(shop[1], 0.9), (shop[2], 0.8), (shop[3], 0.7)], run=new)
    Run.objects.filter(pk=old.pk).update(is_active=False)
    Run.objects.filter(pk=new.pk).update(is_active=True)
    # The same items with the same scores, from another run: the ETag moves on.
    response = Client().get(url, {"n": 3}, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert names(response) == ["p1", "p2", "p3"]
    assert response["ETag"] != etag


@override_settings(DJANGO_RECS=API)
def test_a_changed_item_changes_the_etag(shop):
    url = f"/recs/similar/testapp.product/{shop[0].pk}/"
    etag = Client().get(url, {"n": 3})["ETag"]
    Product.objects.filter(pk=shop[1].pk).update(name="renamed")
    response = Client().get(url, {"n": 3}, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and names(response)[0] == "renamed"


@override_settings(DJANGO_RECS={**API, "API_MAX_AGE": 0})
def test_max_age_zero_makes_caches_revalidate(shop):
    assert Client().get("/recs/popular/")["Cache-Control"] == "public, no-cache"


@override_settings(DJANGO_RECS=API)
def test_recommended_is_private_and_varies_on_the_cookie(shop):
    response = Client().get("/recs/recommended/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert "Cookie" in response["Vary"]
    assert "ETag" not in response


# --- recommended/ and popular/ ------------------------------------------------------------


@override_settings(DJANGO_RECS=API)
def test_recommended_serves_the_visitors_list_with_reasons(shop):
    customer = User.objects.create_user("customer", password="x")
    store_recommendations(customer, [(shop[3], 0.9, shop[0]), (shop[2], 0.5, None)])
    response = browser(customer).get("/recs/recommended/", {"n": 3})
    assert names(response) == ["p3", "p2", "p7"]
    first = response.json()["items"][0]
    assert first["reason"] == {"pk": shop[0].pk, "name": "p0"}
    assert first["source"] == "personal"
    # An anonymous visitor gets the popular items.
    assert names(Client().get("/recs/recommended/", {"n": 2})) == ["p7", "p6"]


@override_settings(DJANGO_RECS=API)
def test_popular_is_the_same_for_everyone(shop):
    customer = User.objects.create_user("customer", password="x")
    store_recommendations(customer, [(shop[3], 0.9, None)])
    anonymous = Client().get("/recs/popular/", {"n": 3})
    signed_in = browser(customer).get("/recs/popular/", {"n": 3})
    assert names(anonymous) == names(signed_in) == ["p7", "p6", "p5"]
    assert anonymous["ETag"] == signed_in["ETag"]


@override_settings(DJANGO_RECS=API)
def test_the_model_parameter_picks_the_item_model(shop):
    gadgets = [Gadget.objects.create(name=f"g{i}") for i in range(2)]
    from tests.serving.serving_data import store_popular

    store_popular([(gadgets[1], 3.0), (gadgets[0], 2.0)])
    response = Client().get("/recs/popular/", {"model": "testapp.gadget"})
    assert names(response) == ["g1", "g0"]
    assert response.json()["model"] == "testapp.gadget"
    problem(Client().get("/recs/popular/", {"model": "testapp.notanitem"}), 404)
    problem(Client().get("/recs/recommended/", {"model": "nope"}), 404)


# --- placement: impressions and clicks ------------------------------------------------------


@override_settings(DJANGO_RECS=LOGGED)
def test_a_placement_logs_the_list_and_its_tokens_record_clicks(shop):
    customer = User.objects.create_user("customer", password="x")
    client = browser(customer)
    response = client.get(f"/recs/similar/testapp.product/{shop[0].pk}/",
                          {"n": 3, "placement": "product-also-bought"})
    body = response.json()
    assert response["Cache-Control"] == "private, no-store"
    assert "Cookie" in response["Vary"] and "ETag" not in response
    impression = Impression.objects.get()
    assert str(impression.id) == body["impression"]
    assert (impression.placement, impression.user_id) == ("product-also-bought", customer.pk)
    assert impression.items == ",".join(str(p.pk) for p in shop[1:4])
    tokens = [entry["token"] for entry in body["items"]]
    assert all(tokens) and len(set(tokens)) == 3
    assert client.post("/recs/click/", {"token": tokens[1]}).status_code == 204
    click = Click.objects.get()
    assert (click.impression_id, click.position, click.item_key) == (
        impression.id, 1, str(shop[2].pk))


@override_settings(DJANGO_RECS=LOGGED)
def test_recommended_and_popular_with_a_placement_are_logged(shop):
    client = browser()
    client.get("/recs/recommended/", {"n": 2, "placement": "home"})
    client.get("/recs/popular/", {"n": 2, "placement": "footer"})
    assert sorted(Impression.objects.values_list("placement", flat=True)) == ["footer", "home"]


@override_settings(DJANGO_RECS=LOGGED)
def test_without_a_placement_nothing_is_logged(shop):
    response = browser().get("/recs/popular/", {"n": 2})
    assert [entry["token"] for entry in response.json()["items"]] == [None, None]
    assert not Impression.objects.exists()


@override_settings(DJANGO_RECS=API)
def test_with_impressions_off_a_placement_logs_nothing(shop):
    response = browser().get("/recs/popular/", {"n": 2, "placement": "footer"})
    assert response.json()["impression"] is None
    assert not Impression.objects.exists()


# --- serialisation ----------------------------------------------------------------------


@override_settings(DJANGO_RECS={**API, "API_SERIALIZER": "tests.api.test_endpoints.product_json"})
def test_api_serializer_names_the_items_json(shop):
    item = Client().get("/recs/popular/", {"n": 1}).json()["items"][0]["item"]
    assert item == {"id": shop[7].pk, "title": "P7", "price": "1.00"}


@override_settings(DJANGO_RECS=API)
def test_the_default_serializer_adds_the_url_when_the_model_has_one(shop, monkeypatch):
    monkeypatch.setattr(Product, "get_absolute_url", lambda self: f"/products/{self.pk}/",
                        raising=False)
    item = Client().get("/recs/popular/", {"n": 1}).json()["items"][0]["item"]
    assert item == {"pk": shop[7].pk, "name": "p7", "url": f"/products/{shop[7].pk}/"}


# --- the OpenAPI document -------------------------------------------------------------------


@override_settings(DJANGO_RECS=API)
def test_the_openapi_document_describes_the_mounted_endpoints():
    response = Client().get("/recs/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/recs"}]
    assert set(document["paths"]) == {"/similar/{model}/{pk}/", "/recommended/", "/popular/",
                                      "/openapi.json"}
    n = next(p for p in document["paths"]["/popular/"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 100


# --- system checks ----------------------------------------------------------------------------


def check_ids(**settings) -> list[str]:
    from django_recs.checks import check_api

    with override_settings(DJANGO_RECS={**API, **settings}):
        return [error.id for error in check_api()]


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, []),
    ({"API_SERIALIZER": "tests.api.test_endpoints.product_json"}, []),
    ({"API_SERIALIZER": "tests.api.test_endpoints.nope"}, ["django_recs.E120"]),
    ({"API_SERIALIZER": "tests.api.test_endpoints.NOT_CALLABLE"}, ["django_recs.E120"]),
    ({"API_SERIALIZER": 3}, ["django_recs.E120"]),
    ({"API_MAX_AGE": -1}, ["django_recs.E121"]),
    ({"API_MAX_AGE": 1.5}, ["django_recs.E121"]),
    ({"API_MAX_AGE": True}, ["django_recs.E121"]),
    ({"API_MAX_N": 0}, ["django_recs.E122"]),
    ({"API_MAX_N": "10"}, ["django_recs.E122"]),
    ({"API_MAX_N": 10_001}, ["django_recs.E122"]),
])
def test_checks_report_bad_api_settings(settings, expected):
    assert check_ids(**settings) == expected


@override_settings(DJANGO_RECS={**API, "API_SERIALIZER": "nope.nothing", "API_MAX_AGE": -5,
                                "API_MAX_N": 0})
def test_bad_api_settings_fall_back_to_the_defaults_at_request_time(shop):
    response = Client().get("/recs/popular/", {"n": 100})
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    assert response.json()["items"][0]["item"] == {"pk": shop[7].pk, "name": "p7"}
