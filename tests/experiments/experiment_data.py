"""Experiments made as the admin makes them."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from django_recs.experiments import start
from django_recs.models import Experiment, Variant

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


def experiment(placement="product-also-bought", arms=(("A", "similar", 1, True),
                                                       ("B", "similar-bm25", 1, False)),
               *, running=True, **fields) -> Experiment:
    made = Experiment.objects.create(name=f"test {placement}", placements=placement, **fields)
    for name, algorithm, weight, control in arms:
        Variant.objects.create(experiment=made, name=name, algorithm=algorithm, weight=weight,
                               is_control=control)
    if running:
        start(made)
    return made


def request_for(user=None, session=None, agent=BROWSER):
    request = RequestFactory().get("/", HTTP_USER_AGENT=agent)
    request.user = user or AnonymousUser()
    request.session = session if session is not None else SessionStore()
    return request
