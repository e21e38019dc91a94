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


def published_pages():
    from .models import Page

    return Page.objects.filter(published=True)


def published_articles():
    from .models import Article

    return Article.objects.filter(published=True)
