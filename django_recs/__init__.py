"""django_recs: personalised recommendations for Django shops.

The public functions below are imported lazily, so ``import django_recs``
never touches the app registry (it is safe in settings and celery.py).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"

# Public name -> module that defines it.
_PUBLIC = {
    "record": "django_recs.capture",
    "record_many": "django_recs.capture",
    "record_view": "django_recs.capture",
    "register_source": "django_recs.capture",
    "forget_user": "django_recs.capture",
    "unforget_user": "django_recs.capture",
    # Serving's lists, logged as impressions when given placement=.
    "similar_to": "django_recs.feedback",
    "recommended_for": "django_recs.feedback",
    "recompute": "django_recs.dispatch",
}

__all__ = [
    "forget_user",
    "recommended_for",
    "recompute",
    "record",
    "record_many",
    "record_view",
    "register_source",
    "similar_to",
    "unforget_user",
]

if TYPE_CHECKING:  # pragma: no cover
    from .capture import (
        forget_user,
        record,
        record_many,
        record_view,
        register_source,
        unforget_user,
    )
    from .dispatch import recompute
    from .feedback import recommended_for, similar_to


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'django_recs' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
