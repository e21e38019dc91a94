"""Logging a list as it is shown: one Impression row per list, buffered.

:func:`log_list` is called with a list that serving has just read. It makes
the impression's id (time-ordered, see :mod:`.ids`), adds the row to the
process's buffer (:mod:`.buffer`) and marks each item with the impression
and its position, so the page can sign each item's click link
(:meth:`ShownList.token`, the ``recs_click_url`` filter). It costs a few
microseconds, never a query, and never raises: a failure is logged and the
page renders without click links.
"""

from __future__ import annotations

import logging
import uuid

from django.db import models

from ..conf import recs_settings
from ..items import item_content_type, key_for_pk
from ..serving.visitors import Visitor
from .buffer import buffer
from .ids import new_impression_id
from .tokens import TokenSigner
from .visitors import binding, is_automated

__all__ = ["PLACEMENT_MAX_LENGTH", "ShownList", "checked_placement", "log_list", "source_runs"]

logger = logging.getLogger("django_recs.feedback")

PLACEMENT_MAX_LENGTH = 64


class ShownList:
    """An impression as its page renders it: what each item's click link needs."""

    __slots__ = ("id", "placement", "item_keys", "_signer")

    def __init__(self, impression_id: uuid.UUID, placement: str, item_type_id: int,
                 item_keys: list[str], visitor: bytes):
        self.id = impression_id
        self.placement = placement
        self.item_keys = item_keys
        # visitor: the binding of the visitor it is shown to (b"": nobody known)
        self._signer = TokenSigner(impression_id, item_type_id, visitor)

    def token(self, position: int) -> str:
        """The signed click token of the item at ``position`` (0 = first)."""
        return self._signer.token(position, self.item_keys[position])


def checked_placement(placement) -> str:
    """``placement`` as stored; ValueError unless it is a non-empty string of at most 64 characters."""
    if not isinstance(placement, str) or not placement.strip():
        raise ValueError(f"placement must be a non-empty string, got {placement!r}")
    if len(placement) > PLACEMENT_MAX_LENGTH:
        raise ValueError(f"placement {placement!r} is {len(placement)} characters long; at most "
                         f"{PLACEMENT_MAX_LENGTH} are stored")
    return placement


def log_list(
    items: models.QuerySet,
    *,
    placement: str,
    algorithm: str,
    visitor: Visitor,
    source: models.Model | None = None,
    request=None,
    route=None,
) -> ShownList | None:
    """Log ``items`` (a list returned by serving) as shown at ``placement``, when IMPRESSIONS is on.

    ``algorithm`` is the list's ALGORITHMS entry (its active run, as the list
    was read, is stored with it); ``source`` the item a list of similar
    items is about. Each item gets ``recs_impression`` (the returned
    :class:`ShownList`) and ``recs_position``; the queryset gets
    ``recs_impression``.

    ``route`` (a :class:`django_recs.experiments.Route`) puts the list in its
    experiment: the row records the experiment, variant and visitor unit, and
    an empty list is logged too (a hold-out's visitor must be counted).

    Returns None, and logs nothing, when IMPRESSIONS is off, the list is
    empty (outside an experiment), or ``request`` is a well-known bot's. Never raises: an error is
    logged and None returned.
    """
    if not recs_settings.IMPRESSIONS:
        return None
    try:
        if request is not None and is_automated(request):
            return None
        shown_items = items._result_cache
        if shown_items is None:  # a queryset= that loads more than rows: read it now
            shown_items = list(items)
        in_experiment = route is not None and route.experiment_id is not None
        if not shown_items and not in_experiment:
            return None
        model = items.model
        impression_id = new_impression_id()
        item_type_id = item_content_type(model).pk
        keys = _keys(model, shown_items)
        shown = ShownList(impression_id, placement, item_type_id, keys, binding(visitor))
        runs = getattr(items, "recs_runs", None) or {}
        buffer.add((
            impression_id,
            placement,
            visitor.user_id,
            # The visitor is the account, or the session of an anonymous one.
            "" if visitor.user_id is not None else visitor.session_key or "",
            item_type_id,
            "" if source is None else key_for_pk(type(source), source.pk),
            ",".join(keys),
            source_runs([item.__dict__.get("recs_source") or "" for item in shown_items]),
            "none" if in_experiment and route.algorithm == "none" else algorithm,
            runs.get(algorithm),
            route.experiment_id if in_experiment else None,
            route.variant if in_experiment else "",
            route.unit if in_experiment else "",
        ))
        for position, item in enumerate(shown_items):
            attributes = item.__dict__  # plain attributes of the instance, set at C speed
            attributes["recs_impression"] = shown
            attributes["recs_position"] = position
        items.recs_impression = shown
        return shown
    except Exception:
        logger.exception("django_recs: the list at placement %r could not be logged", placement)
        return None


def source_runs(sources: list[str]) -> str:
    """Each item's source, repeats collapsed: ``"personal*8,popular*2"`` (``"similar*6"``)."""
    runs = []
    for name in sources:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ",".join(f"{name}*{count}" for name, count in runs)


def _keys(model: type[models.Model], items: list) -> list[str]:
    """The stored keys of ``items`` (integer primary keys without a check per item)."""
    pks = [item.pk for item in items]
    if all(type(pk) is int for pk in pks):
        return list(map(str, pks))
    return [key_for_pk(model, pk) for pk in pks]
