"""Forgetting: a user's history and recommendations, an item and every result naming it.

:func:`forget_user` answers an erasure request ("forget me"): it deletes the
user's interactions and recommendations and leaves a tombstone
(:class:`~django_recs.models.ForgottenUser`) that every way in respects, so
the erasure stays erased — a later backfill, import or signal records
nothing of that user, and a run that loaded their history before the
erasure drops what it computed for them when it is swapped in. It also
sends :data:`user_forgotten`, on which the feedback deletes the user's
impressions, clicks and conversions and the pipeline (connected by
:mod:`django_recs.dispatch`) removes the user from the files runs keep in
the storage. :func:`unforget_user` lifts the tombstone, for a shop that
must record the user again.

Deleting an item of ITEM_MODELS calls :func:`forget_item` (its post_delete
receiver is connected by :func:`django_recs.capture.signals.connect_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models, router, transaction
from django.dispatch import Signal
from django.utils import timezone

from ..items import integer_pk, item_content_type, key_for_pk

__all__ = [
    "forget_item",
    "forget_user",
    "forget_user_details",
    "forgotten_user_ids",
    "is_forgotten",
    "unforget_user",
    "user_forgotten",
]

#: Sent once by :func:`forget_user_details` inside its transaction, with
#: ``user_id`` and ``using``, after the tombstone is written and the rows
#: deleted: each receiver erases what its layer keeps about the user (the
#: feedback: impressions, clicks and conversions; the pipeline: the files of
#: runs) and may return ``{model label: rows deleted}``.
user_forgotten = Signal()


def forget_user(user, *, using: str | None = None) -> int:
    """Erase ``user``: their interactions, stored recommendations and feedback; rows deleted.

    ``user`` is a user instance or primary key (a user already deleted can
    still be forgotten by id). The layers above delete their own rows through
    :data:`user_forgotten`, in the same transaction. From then on nothing of the user is recorded
    (record() returns None; the sources, record_many(), recs_import and the
    backfill skip their rows) until :func:`unforget_user`; the files of runs
    in the storage are rewritten without them.
    """
    return sum(forget_user_details(user, using=using).values())


def forget_user_details(user, *, using: str | None = None) -> dict[str, int]:
    """As :func:`forget_user`, with the rows deleted per model label."""
    from ..models import ForgottenUser, Interaction, Recommendation, RecommendationList

    user_id = user_id_of(user)
    using = using or router.db_for_write(Interaction)
    deleted = {}
    with transaction.atomic(using=using):
        # The tombstone first: a run swapping in meanwhile purges what it sees of it.
        tombstone, created = ForgottenUser.objects.using(using).get_or_create(user_id=user_id)
        if not created:
            ForgottenUser.objects.using(using).filter(pk=tombstone.pk).update(
                forgotten_at=timezone.now())
        for model in (Interaction, Recommendation, RecommendationList):
            count, _ = model.objects.using(using).filter(user_id=user_id).delete()
            deleted[model._meta.label] = count
        for _receiver, counts in user_forgotten.send(sender=Interaction, user_id=user_id,
                                                     using=using):
            for label, count in (counts or {}).items():
                deleted[label] = deleted.get(label, 0) + count
    return deleted


def unforget_user(user, *, using: str | None = None) -> bool:
    """Lift the erasure of ``user``: they are recorded again from now on.

    Returns True when the user was forgotten. Nothing deleted comes back.
    """
    from ..models import ForgottenUser

    using = using or router.db_for_write(ForgottenUser)
    count, _ = ForgottenUser.objects.using(using).filter(user_id=user_id_of(user)).delete()
    return bool(count)


def is_forgotten(user_id, *, using: str | None = None) -> bool:
    """Whether ``user_id`` is forgotten (one indexed query)."""
    from ..models import ForgottenUser

    if user_id is None:
        return False
    using = using or router.db_for_read(ForgottenUser)
    return ForgottenUser.objects.using(using).filter(user_id=user_id).exists()


def forgotten_user_ids(user_ids: Iterable | None = None, *, using: str | None = None) -> set:
    """The forgotten users' ids: all of them, or those among ``user_ids``."""
    from ..models import ForgottenUser

    using = using or router.db_for_read(ForgottenUser)
    rows = ForgottenUser.objects.using(using)
    if user_ids is None:
        return set(rows.values_list("user_id", flat=True))
    wanted, found = list(dict.fromkeys(user_ids)), set()
    for start in range(0, len(wanted), 1000):
        found.update(rows.filter(user_id__in=wanted[start:start + 1000])
                     .values_list("user_id", flat=True))
    return found


def user_id_of(user):
    """The primary key ``user`` is or has; ValueError for what no user row can have."""
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    user_id = user.pk if isinstance(user, models.Model) else user
    if user_id is None:
        raise ValueError("forget_user() needs a saved user or a user id")
    user_model = get_user_model()
    if isinstance(user_model._meta.pk, models.UUIDField):
        try:
            return user_model._meta.pk.to_python(user_id)
        except ValidationError as error:
            raise ValueError(f"{user_id!r} is not a UUID") from error
    return integer_pk(user_model, user_id)


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
        deleted += _forget_item_in_lists(type_id, key, using)
    return deleted


def _forget_item_in_lists(type_id: int, key: str, using: str) -> int:
    """Rewrite the stored lists that name the item: its entries dropped, its reasons cleared.

    Returns the entries dropped. The lists holding it are found by their text
    (the item's entry opens with ``["key",``, a reason closes with
    ``,type,"key"]``), then parsed and written back one by one.
    """
    import json

    from django.db.models import Q

    from ..models import RecommendationList

    quoted = json.dumps(key)
    naming = RecommendationList.objects.using(using).filter(
        Q(item_type_id=type_id, items__contains=f"[{quoted},")
        | Q(items__contains=f",{int(type_id)},{quoted}]")
    )
    dropped = 0
    for row in naming.select_for_update():
        entries = json.loads(row.items)
        kept = []
        for entry in entries:
            if row.item_type_id == type_id and str(entry[0]) == key:
                dropped += 1
                continue
            if len(entry) > 3 and entry[2] == type_id and str(entry[3]) == key:
                entry = entry[:2]
            kept.append(entry)
        if kept:
            RecommendationList.objects.using(using).filter(pk=row.pk).update(
                items=json.dumps(kept, separators=(",", ":")), length=len(kept))
        else:
            RecommendationList.objects.using(using).filter(pk=row.pk).delete()
    return dropped
