"""Receivers that notice an item's features changed, so its content neighbours follow.

Saving an item of a model with ITEM_FEATURES, or changing one of its
many-to-many relations (tags added after the save), sends
:data:`item_features_changed` for that item once the transaction commits;
:mod:`django_recs.dispatch` enqueues ``django_recs.content_neighbours`` from
it, and the task computes (:mod:`django_recs.content.updates`). Nothing is
sent while no configured algorithm uses item features, nor for raw saves
(fixtures).
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import Signal

from ..conf import recs_settings

__all__ = ["connect", "item_features_changed", "enqueue_content_neighbours"]

#: Sent with ``label`` ("app_label.Model") and ``key`` (the item's pk as text)
#: after a transaction that changed an item's features commits.
item_features_changed = Signal()

M2M_ACTIONS = ("post_add", "post_remove", "post_clear")


def _tracked(model) -> bool:
    """True when saves of ``model`` change content neighbours (settings read at call time).

    A model is tracked when a featured model shares its items' content type:
    it is featured, a proxy or a multi-table child of one, or a parent whose
    fields its featured children inherit (saving a Page changes the title
    of the Article it is).
    """
    configured = recs_settings.ITEM_FEATURES
    if not configured or not isinstance(configured, dict):
        return False
    from ..items import item_root

    root = item_root(model)
    featured_roots = set()
    for label in configured:
        try:
            featured_roots.add(item_root(apps.get_model(label)))
        except (LookupError, ValueError, TypeError, AttributeError):
            continue  # reported by django_recs.E041
    if root not in featured_roots:
        return False
    from .config import feature_algorithm_names

    return bool(feature_algorithm_names())


def enqueue_content_neighbours(model, pk, *, using: str | None = None) -> None:
    """Have ``django_recs.content_neighbours`` enqueued for one item once the transaction commits.

    Sends :data:`item_features_changed`, which :mod:`django_recs.dispatch` turns into the task.
    """
    label = model._meta.concrete_model._meta.label
    key = str(pk)
    transaction.on_commit(
        lambda: item_features_changed.send(sender=model, label=label, key=key), using=using
    )


def item_saved(sender, instance, raw=False, using=None, **kwargs) -> None:
    if raw or instance.pk is None or not _tracked(sender):
        return
    enqueue_content_neighbours(sender, instance.pk, using=using)


def relation_changed(sender, instance, action, reverse, model, pk_set, using=None,
                     **kwargs) -> None:
    if action not in M2M_ACTIONS:
        return
    if _tracked(type(instance)):
        enqueue_content_neighbours(type(instance), instance.pk, using=using)
    elif pk_set and _tracked(model):
        # tag.products.add(product): the items are the other side of the relation.
        for pk in sorted(pk_set, key=str):
            enqueue_content_neighbours(model, pk, using=using)


def connect() -> None:
    """Connect the receivers (idempotent; called from the app's ready())."""
    post_save.connect(item_saved, dispatch_uid="django_recs.content.item_saved")
    m2m_changed.connect(relation_changed, dispatch_uid="django_recs.content.relation_changed")
