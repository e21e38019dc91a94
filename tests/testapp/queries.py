"""ITEM_QUERYSETS callables of the test shop, and broken ones for the system checks."""

from .models import Gadget, Poster


def visible_posters():
    return Poster.objects.browsable()


def poster_manager():
    return Poster.objects


def gadgets():
    return Gadget.objects.all()


def first_posters():
    return Poster.objects.browsable()[:5]


def broken():
    raise RuntimeError("no catalogue today")


NOT_CALLABLE = "posters"
