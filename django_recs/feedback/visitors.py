"""Who sees a list and who clicks: the visitor of a request, its binding, and bots.

A click link carries a short keyed hash of the visitor the list was shown to
(:func:`binding`): a click counts only from that visitor, so a link copied
into another browser (a shared URL, a page served from a shared cache) does
not count there. The hash names the account for a signed-in visitor and the
session otherwise; it is keyed with the SECRET_KEY, so it reveals neither.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

from django.conf import settings

from ..models import checked_session_key
from ..serving.visitors import Visitor
from .keys import derived_key, secret_keys

__all__ = ["BINDING_LENGTH", "binding", "bindings", "is_automated", "request_session_key",
           "visitor_of"]

#: Bytes of a visitor's binding in a click token: 48 bits, so another visitor's
#: binding matches by chance once in 2^48.
BINDING_LENGTH = 6

# Crawlers, link previewers and HTTP libraries that say who they are. Headless
# browsers are not listed: they also run shops' own end-to-end tests.
_AUTOMATED_AGENT = re.compile(
    r"bot\b|bot/|bot;|crawl|spider|slurp|facebookexternalhit|ia_archiver|embedly|"
    r"validator|python-requests|python-urllib|aiohttp|httpx|curl/|wget/|"
    r"go-http-client|java/|libwww|httpclient|okhttp|scrapy|headless-shell|lighthouse",
    re.IGNORECASE,
)
_PREFETCH_HEADERS = ("HTTP_SEC_PURPOSE", "HTTP_PURPOSE", "HTTP_X_PURPOSE", "HTTP_X_MOZ")


def visitor_of(request=None, user=None, session_key: str | None = None) -> Visitor:
    """The visitor of ``request`` (its user and session), unless ``user``/``session_key`` say.

    Never raises: a request without a user or a session gives an unknown visitor.
    """
    if request is not None:
        if user is None:
            user = getattr(request, "user", None)
        if session_key is None:
            session_key = request_session_key(request)
    return Visitor.of(user, session_key)


def request_session_key(request) -> str | None:
    """The session key of ``request``'s cookie, or None when it is one no session can have.

    The cookie is whatever the browser sent: over 40 characters or with a NUL
    it names no session, and serving would refuse it (ValueError) as a key.
    """
    key = getattr(getattr(request, "session", None), "session_key", None)
    try:
        return checked_session_key(key) or None
    except ValueError:
        return None


def binding(visitor: Visitor) -> bytes:
    """The visitor's binding: BINDING_LENGTH bytes for a known visitor, b"" for an unknown one."""
    if visitor.user_id is not None:
        return _keyed_hash(f"user:{visitor.user_id}", settings.SECRET_KEY)
    if visitor.session_key:
        return _keyed_hash(f"session:{visitor.session_key}", settings.SECRET_KEY)
    return b""


def bindings(visitor: Visitor) -> set[bytes]:
    """Every binding a click of ``visitor`` may carry: its account's and its session's.

    The previous secret keys (SECRET_KEY_FALLBACKS) count too, so a key
    rotation does not void the links of pages already shown.
    """
    names = []
    if visitor.user_id is not None:
        names.append(f"user:{visitor.user_id}")
    if visitor.session_key:
        names.append(f"session:{visitor.session_key}")
    return {_keyed_hash(name, secret) for name in names for secret in secret_keys()}


@functools.lru_cache(maxsize=4096)  # a page's lists, and a visitor's next pages, hash once
def _keyed_hash(name: str, secret) -> bytes:
    return hmac.new(derived_key("visitor", secret), name.encode(),
                    hashlib.sha256).digest()[:BINDING_LENGTH]


def is_automated(request) -> bool:
    """Whether ``request`` comes from a well-known bot, an HTTP library, or a prefetch.

    No User-Agent at all counts as automated: every browser sends one. A
    link the browser prefetches (``Sec-Purpose: prefetch``) is no click.
    """
    meta = getattr(request, "META", {})
    if _automated_agent(meta.get("HTTP_USER_AGENT", "")):
        return True
    return any("prefetch" in meta.get(header, "").lower() for header in _PREFETCH_HEADERS)


@functools.lru_cache(maxsize=1024)  # a site sees few distinct agents; each page asks per list
def _automated_agent(agent: str) -> bool:
    return not agent or _AUTOMATED_AGENT.search(agent) is not None
