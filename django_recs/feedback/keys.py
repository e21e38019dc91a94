"""Keys of the feedback's message authentication codes, derived from SECRET_KEY."""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings

__all__ = ["derived_key", "secret_keys"]


@functools.lru_cache(maxsize=16)
def derived_key(purpose: str, secret: str | bytes) -> bytes:
    """A key of its own for ``purpose``, derived from ``secret`` (as Django's salted_hmac does).

    Cached: deriving costs a hash, and a page signs a link per item.
    """
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    return hashlib.sha256(f"django_recs.feedback.{purpose}".encode() + raw).digest()


def secret_keys() -> list:
    """SECRET_KEY, then SECRET_KEY_FALLBACKS: what a MAC made before a key rotation used."""
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
