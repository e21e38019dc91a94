"""Concurrent capture on every database: every event kept."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections, connection

import django_recs
from django_recs.models import Interaction
from tests.testapp.models import Gadget, Product

THREADS = 8
EVENTS_PER_THREAD = 50


# Not on SQLite: it has one writer at a time, and a deferred transaction that
# must wait to write fails at once with "database is locked" (its busy timeout
# does not apply), so concurrent writers there are a matter of luck.
@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_eight_threads_recording_at_once_keep_every_event():
    users = [User.objects.create(username=f"shopper{i}") for i in range(THREADS)]
    product = Product.objects.create(name="Teapot")
    gadget = Gadget.objects.create(name="Kettle")
    start = threading.Barrier(THREADS)
    errors = []

    def shopper(user):
        try:
            start.wait()
            for i in range(EVENTS_PER_THREAD):
                item = product if i % 2 else gadget
                django_recs.record(user, item, "view" if i % 3 else "cart")
                if i % 10 == 0:  # anonymous traffic and bulk writes interleave too
                    django_recs.record(None, item, session_key=f"anon-{user.pk}-{i}")
                    django_recs.record_many([(user, product, "purchase")])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=shopper, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    per_thread = EVENTS_PER_THREAD + 2 * (EVENTS_PER_THREAD // 10)
    assert Interaction.objects.count() == THREADS * per_thread
    for user in users:
        assert Interaction.objects.filter(user=user).count() == (
            EVENTS_PER_THREAD + EVENTS_PER_THREAD // 10
        )
    assert Interaction.objects.filter(user=None).count() == THREADS * (EVENTS_PER_THREAD // 10)
