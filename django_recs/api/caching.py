"""Caching headers: public lists are cacheable and revalidated by ETag, personal lists are not.

A **public** list (similar items, popular items, asked without a
``placement``) is the same for every visitor: ``Cache-Control: public,
max-age=API_MAX_AGE`` and a strong ETag. The ETag is a digest of the list's
active runs (each algorithm of its chain, as the list's own statement read
them, at no extra query), the request's list parameters and the body: a
swap of runs changes it, and so does any change of what the body says (an
item sold out and gone from ITEM_QUERYSETS, a renamed product) — a cache
revalidating with ``If-None-Match`` never keeps a stale list. A match is
answered ``304 Not Modified`` without a body.

A **personal** list (``recommended/``, and any list asked with a
``placement``: it is logged as shown to this visitor, its click tokens are
bound to the visitor, and an experiment may give them their variant's list)
is ``Cache-Control: private, no-store`` with ``Vary: Cookie``.
"""

from __future__ import annotations

import hashlib

from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

from ..conf import DEFAULTS, recs_settings

__all__ = ["api_max_age", "etag_of", "make_private", "make_public", "not_modified",
           "not_modified_response"]

#: The longest API_MAX_AGE accepted (a year, as HTTP caches read it).
MAX_AGE_CEILING = 31_536_000


def api_max_age() -> int:
    """API_MAX_AGE in seconds, or its default while it is not an integer 0..a year (E121)."""
    value = recs_settings.API_MAX_AGE
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_AGE_CEILING:
        return value
    return DEFAULTS["API_MAX_AGE"]


def etag_of(parameters: tuple, runs: dict, body: bytes) -> str:
    """The strong ETag (quoted) of a public list: its runs, its parameters and its body."""
    digest = hashlib.sha256()
    digest.update(repr((parameters, sorted((str(k), v) for k, v in runs.items()))).encode())
    digest.update(b"\0")
    digest.update(body)
    return f'"{digest.hexdigest()[:32]}"'


def not_modified(request, etag: str) -> bool:
    """Whether ``request``'s If-None-Match names ``etag`` (or ``*``), weakly compared."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == wanted for tag in parse_etags(header))


def make_public(response: HttpResponse, etag: str) -> HttpResponse:
    """``response`` cacheable by any cache for API_MAX_AGE seconds, with its ETag."""
    max_age = api_max_age()
    response["ETag"] = etag
    response["Cache-Control"] = (f"public, max-age={max_age}" if max_age
                                 else "public, no-cache")
    return response


def not_modified_response(etag: str) -> HttpResponse:
    """``304 Not Modified`` with the headers a cache refreshes from it."""
    return make_public(HttpResponseNotModified(), etag)


def make_private(response: HttpResponse) -> HttpResponse:
    """``response`` for this visitor only: no cache keeps it, and it varies on the cookie."""
    response["Cache-Control"] = "private, no-store"
    patch_vary_headers(response, ("Cookie",))
    return response
