"""Forgetting: a user's history and recommendations, an item and every result naming it.

Deleting an item of ITEM_MODELS calls :func:`forget_item` (its post_delete
receiver is connected by :func:`django_recs.capture.signals.connect_sources`).
"""

from __future__ import annotations

from django.db import models, router, transaction
from django.dispatch import Signal

from ..items import item_content_type, key_for_pk

__all__ = ["forget_item", "forget_user", "forget_user_details", "user_forgotten"]

#: Sent by :func:`forget_user_details` inside its transaction, with ``user_id``
#: and ``using``: each receiver deletes what its layer keeps about the user and
#: returns ``{model label: rows deleted}`` (the feedback's impressions, clicks
#: and conversions).
user_forgotten = Signal()


def forget_user(user, *, using: str | None = None) -> int:
    """Delete ``user``'s interactions, stored recommendations and feedback; rows deleted.

    ``user`` is a user instance or primary key (a user already deleted can
    still be forgotten by id). The layers above delete their own rows through
    :data:`user_forgotten`, in the same transaction.
    """
    return sum(forget_user_details(user, using=using).values())


def forget_user_details(user, *, using: str | None = None) -> dict[str, int]:
    """As :func:`forget_user`, with the rows deleted per model label."""
    from ..models import Interaction, Recommendation

    user_id = user.pk if isinstance(user, models.Model) else user
    if user_id is None:
        raise ValueError("forget_user() needs a saved user or a user id")
    using = using or router.db_for_write(Interaction)
    deleted = {}
    with transaction.atomic(using=using):
        for model in (Interaction, Recommendation):
            count, _ = model.objects.using(using).filter(user_id=user_id).delete()
            deleted[model._meta.label] = count
        for _receiver, counts in user_forgotten.send(sender=Interaction, user_id=user_id,
                                                     using=using):
            for label, count in (counts or {}).items():
                deleted[label] = deleted.get(label, 0) + count
    return deleted


def forget_item(item, *, using: str | None = None) -> int:
    """Delete an item's interactions and every stored result that names it; rows deleted."""
    from ..models import Interaction, PopularItem, Recommendation, SimilarItem

    type_id = item_content_type(type(item)).pk
    key = key_for_pk(type(item), item.pk)
    using = using or router.db_for_write(Interaction)
    deleted = 0
    with transaction.atomic(using=using):
        for model, lookups in (
            (Interaction, [("item_type_id", "item_key")]),
            (SimilarItem, [("item_type_id", "item_key"), ("neighbour_type_id", "neighbour_key")]),
            (Recommendation, [("item_type_id", "item_key")]),
            (PopularItem, [("item_type_id", "item_key")]),
        ):
            for type_field, key_field in lookups:
                count, _ = model.objects.using(using).filter(
                    **{type_field: type_id, key_field: key}
                ).delete()
                deleted += count
        # A recommendation explained by the deleted item stays, without the reason.
        Recommendation.objects.using(using).filter(reason_type_id=type_id, reason_key=key).update(
            reason_type=None, reason_key=""
        )
    return deleted
