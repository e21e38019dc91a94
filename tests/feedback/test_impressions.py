"""Impressions: every list a tag shows is one row, written in bulk, never failing the page."""

from __future__ import annotations

import datetime
import logging
import os
import re
import time

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.template import Context, Template
from django.test import RequestFactory, override_settings

import django_recs
from django_recs.feedback import flush_impressions
from django_recs.feedback.buffer import ImpressionBuffer, buffer
from django_recs.feedback.clicks import CLICK_PARAMETER
from django_recs.feedback.tokens import read_token
from django_recs.items import item_content_type
from django_recs.models import Impression
from tests.feedback.conftest import FEEDBACK
from tests.serving.serving_data import (
    active_run,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


@pytest.fixture
def products():
    category = Category.objects.create(name="mugs")
    items = [Product.objects.create(name=f"p{i}", category=category) for i in range(8)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8), (items[3], 0.7)])
    store_popular([(item, 10.0 - i) for i, item in enumerate(items)])
    item_content_type(Product)
    return items


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="x")


def request_for(user=None, session_key=None, agent=BROWSER):
    request = RequestFactory().get("/", HTTP_USER_AGENT=agent)
    request.user = user or AnonymousUser()
    request.session = SessionStore(session_key=session_key)
    return request


def render(source: str, request=None, **context) -> str:
    return Template("{% load recs %}" + source).render(Context({"request": request, **context}))


LINKS = "{% for p in items %}<a href='{{ p|recs_click_url:\"/p/\" }}'>{{ p.name }}</a>{% endfor %}"


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_similar_items_tag_logs_one_row_with_its_list(products, customer):
    run = active_run("similar")
    request = request_for(customer, session_key="s" * 32)
    render("{% similar_items product 3 placement='product-also-bought' as items %}" + LINKS,
           request, product=products[0])
    assert Impression.objects.count() == 0  # buffered: no query on the page
    assert flush_impressions() == 1
    row = Impression.objects.get()
    assert row.placement == "product-also-bought"
    assert row.item_keys == [str(products[i].pk) for i in (1, 2, 3)]
    assert row.sources == "similar*3"
    assert row.item_sources == ["similar", "similar", "similar"]
    assert (row.algorithm, row.run_id) == ("similar", run.pk)
    assert (row.user_id, row.session_key) == (customer.pk, "")  # the account is the visitor
    assert row.item_type_id == item_content_type(Product).pk
    assert row.source_key == str(products[0].pk)
    assert row.id.version == 7


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_tags_default_placements(products, customer):
    store_recommendations(customer, [(products[4], 2.0, None)])
    request = request_for(customer)
    render("{% similar_items product 3 as a %}{% recommended_for request.user 3 as b %}"
           "{% show_similar_items product 2 %}{% show_recommended_for request.user 2 %}",
           request, product=products[0])
    flush_impressions()
    assert sorted(Impression.objects.values_list("placement", "algorithm")) == [
        ("recommended_for", "personal"), ("recommended_for", "personal"),
        ("similar_items", "similar"), ("similar_items", "similar")]


@override_settings(DJANGO_RECS=FEEDBACK)
def test_each_link_carries_the_token_of_its_item_and_position(products, customer):
    request = request_for(customer)
    out = render("{% similar_items product 3 placement='x' as items %}"
                 "{% for p in items %}{{ p|recs_click_url:'/p/?a=1#top' }} {% endfor %}",
                 request, product=products[0])
    flush_impressions()
    impression = Impression.objects.get()
    urls = out.split()
    assert len(urls) == 3
    for position, url in enumerate(urls):
        assert url.startswith(f"/p/?a=1&amp;{CLICK_PARAMETER}=") and url.endswith("#top")
        token = url.split(f"{CLICK_PARAMETER}=")[1].removesuffix("#top")
        read = read_token(token, max_age=datetime.timedelta(days=1))
        assert (read.impression_id, read.position) == (impression.id, position)
        assert read.item_key == impression.item_keys[position]
        assert read.visitor  # bound to the customer


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_default_item_list_template_links_with_tokens(products, monkeypatch):
    monkeypatch.setattr(Product, "get_absolute_url", lambda self: f"/products/{self.pk}/",
                        raising=False)
    out = render("{% show_similar_items product 3 %}", request_for(), product=products[0])
    assert re.findall(r'href="(/products/\d+/)\?recs_click=[\w-]+"', out) == [
        f"/products/{products[i].pk}/" for i in (1, 2, 3)]


@override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSIONS": False})
def test_with_impressions_off_nothing_is_logged_and_links_are_plain(products):
    out = render("{% similar_items product 3 placement='x' as items %}" + LINKS,
                 request_for(), product=products[0])
    assert flush_impressions() == 0 and not Impression.objects.exists()
    assert CLICK_PARAMETER not in out and out.count("href='/p/'") == 3


@override_settings(DJANGO_RECS=FEEDBACK)
def test_an_empty_list_is_no_impression(products):
    render("{% similar_items product 3 queryset=none as items %}" + LINKS,
           request_for(), product=products[0], none=Product.objects.none())
    assert flush_impressions() == 0


@override_settings(DJANGO_RECS=FEEDBACK)
def test_lists_shown_to_bots_are_not_logged(products):
    bot = request_for(agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
    out = render("{% similar_items product 3 as items %}" + LINKS, bot, product=products[0])
    assert flush_impressions() == 0
    assert out.count("<a") == 3 and CLICK_PARAMETER not in out


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_functions_log_only_when_given_a_placement(products, customer):
    django_recs.similar_to(products[0], 3)
    django_recs.recommended_for(customer, 3)
    assert flush_impressions() == 0
    request = request_for(customer, session_key="t" * 32)
    items = django_recs.recommended_for(customer, 3, placement="home", request=request)
    assert items.recs_impression.placement == "home"
    assert [item.recs_position for item in items] == [0, 1, 2]
    flush_impressions()
    row = Impression.objects.get()
    assert (row.placement, row.user_id) == ("home", customer.pk)
    assert row.run_id is None  # no personal run: the list came from the fallbacks


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_queryset_that_loads_more_than_rows_is_logged_with_its_items(products):
    with_category = Product.objects.select_related("category")
    items = django_recs.similar_to(products[0], 2, queryset=with_category, placement="x")
    assert [item.recs_position for item in items] == [0, 1]
    flush_impressions()
    assert Impression.objects.get().item_keys == [str(products[1].pk), str(products[2].pk)]


@pytest.mark.parametrize("placement", ["", "   ", "x" * 65, 7])
@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_bad_placement_is_a_value_error(products, placement):
    with pytest.raises(ValueError, match="placement"):
        django_recs.similar_to(products[0], 3, placement=placement)


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_failed_write_is_logged_and_the_rows_kept_for_the_next(products, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the database is away")

    monkeypatch.setattr("django_recs.storage.bulk_insert", broken)
    out = render("{% similar_items product 3 as items %}" + LINKS, request_for(),
                 product=products[0])
    assert out.count(CLICK_PARAMETER) == 3  # the page renders, with its links
    with caplog.at_level(logging.ERROR, logger="django_recs.feedback"):
        assert flush_impressions() == 0
    assert "could not be written" in caplog.text
    assert len(buffer) == 1
    monkeypatch.undo()
    assert flush_impressions() == 1 and Impression.objects.count() == 1


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_logging_error_never_breaks_the_page(products, monkeypatch, caplog):
    def broken(row):
        raise RuntimeError("no memory")

    monkeypatch.setattr(buffer, "add", broken)
    with caplog.at_level(logging.ERROR, logger="django_recs.feedback"):
        out = render("{% similar_items product 3 as items %}" + LINKS, request_for(),
                     product=products[0])
    assert out.count("<a") == 3 and CLICK_PARAMETER not in out
    assert "could not be logged" in caplog.text


def test_the_buffer_keeps_at_most_max_rows_dropping_the_oldest():
    small = ImpressionBuffer(max_rows=3)
    with override_settings(DJANGO_RECS=FEEDBACK):
        for i in range(5):
            small.add((i,))
    assert small.take() == [(2,), (3,), (4,)]
    assert small.dropped == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_an_empty_buffer():
    own = ImpressionBuffer()
    with override_settings(DJANGO_RECS=FEEDBACK):
        own.add(("parent",))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports what it holds, and leaves at once
        os.write(write, str(len(own)).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"0"
    assert own.take() == [("parent",)]


@override_settings(DJANGO_RECS=FEEDBACK, ROOT_URLCONF="tests.feedback.shop_urls")
def test_with_flush_seconds_0_a_request_writes_its_impressions_when_it_ends(products, client):
    response = client.get(f"/products/{products[0].pk}/", HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200
    assert len(buffer) == 0
    assert Impression.objects.filter(placement="product-also-bought").count() == 1


def impression_row(placement: str) -> tuple:
    from django_recs.feedback.ids import new_impression_id

    return (new_impression_id(), placement, None, "s" * 32, item_content_type(Product).pk, "",
            "1,2", "popular,popular", "popular", None)


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_the_buffer_on_its_own():
    own = ImpressionBuffer(flush_rows=3)
    with override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSION_FLUSH_SECONDS": 0.05}):
        for i in range(5):
            own.add(impression_row(f"threaded-{i}"))
        for _ in range(400):  # waits for the thread, whatever the machine's speed
            if Impression.objects.filter(placement__startswith="threaded-").count() == 5:
                break
            time.sleep(0.05)
    assert Impression.objects.filter(placement__startswith="threaded-").count() == 5
    assert len(own) == 0 and own.written == 5


@override_settings(DJANGO_RECS=FEEDBACK)
def test_an_anonymous_visitors_list_is_logged_under_the_session(products):
    items = django_recs.similar_to(products[0], 3, placement="x",
                                   request=request_for(session_key="a" * 32))
    assert len(items) == 3
    flush_impressions()
    assert Impression.objects.values_list("user_id", "session_key").get() == (None, "a" * 32)


def test_sources_are_stored_with_repeats_collapsed():
    from django_recs.feedback.impressions import source_runs

    stored = source_runs(["personal", "personal", "popular", "personal"])
    assert stored == "personal*2,popular*1,personal*1"
    assert Impression(sources=stored).item_sources == ["personal", "personal", "popular",
                                                       "personal"]
    assert source_runs([]) == "" and Impression(sources="").item_sources == []


def test_the_flush_at_exit_waits_for_the_write_in_flight(monkeypatch):
    """The writer thread takes its rows out of the buffer while it writes them: an exit then
    must wait for that write, or the rows are lost with the process."""
    import threading

    own = ImpressionBuffer()
    started, release, written = threading.Event(), threading.Event(), []

    def slow_write(model, columns, using):
        started.set()
        release.wait(30)
        written.append(len(columns["id"]))
        return len(columns["id"])

    monkeypatch.setattr("django_recs.storage.bulk_insert", slow_write)
    with override_settings(DJANGO_RECS=FEEDBACK):
        own.add(impression_row("a"))
        own.add(impression_row("b"))
    writer = threading.Thread(target=own.flush)
    writer.start()
    assert started.wait(30)
    assert len(own) == 0  # taken: in flight
    seen_at_exit = []
    exiting = threading.Thread(target=lambda: (own._flush_at_exit(),
                                               seen_at_exit.append(list(written))))
    exiting.start()
    exiting.join(0.5)
    assert exiting.is_alive()  # waiting for the write in flight
    release.set()
    exiting.join(30)
    writer.join(30)
    assert seen_at_exit == [[2]]


@override_settings(DJANGO_RECS=FEEDBACK)
def test_recs_click_token_gives_the_token_alone_for_a_data_attribute(products):
    out = render("{% similar_items product 2 as items %}"
                 "{% for p in items %}[{{ p|recs_click_token }}]{% endfor %}"
                 "[{{ product|recs_click_token }}][{{ product|recs_click_url:'/x/' }}]",
                 request_for(), product=products[0])
    tokens = re.findall(r"\[([^\]]*)\]", out)
    assert len(tokens) == 4 and all(len(t) > 40 for t in tokens[:2])
    assert tokens[2:] == ["", "/x/"]  # the page's product is in no logged list
