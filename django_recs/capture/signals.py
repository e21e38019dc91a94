"""Signal sources: model saves recorded as interactions (SOURCES, register_source()).

Receivers are connected by :func:`connect_sources` from ``AppConfig.ready()``,
by :func:`register_source`, and again whenever the DJANGO_RECS setting
changes. :mod:`django_recs.capture.sources` parses and validates the entries;
this module turns a saved row into one recorded interaction.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.core.signals import setting_changed
from django.db import connections, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save, pre_save
from django.dispatch import receiver

from ..conf import recs_settings
from ..items import item_families
from . import sources
from .forgetting import forget_item
from .recording import insert_interaction
from .sources import SAVED_USER_IDS, remember_user_ids, source_values

__all__ = ["connect_sources", "record_from_source", "register_source", "unregister_source"]

logger = logging.getLogger("django_recs.capture")


# Model class -> its sources, as connected by the last connect_sources().
_sources_by_model: dict[type[models.Model], list[Any]] = {}
# Model class -> the user *_id attributes its "user_set" sources watch.
_watched_users: dict[type[models.Model], tuple[str, ...]] = {}
_item_models_connected: list[type[models.Model]] = []


def connect_sources() -> None:
    """(Re)connect the post_save receivers of the sources and the item-deletion receivers.

    Called from ``AppConfig.ready()``, by register_source(), and when the
    DJANGO_RECS setting changes. A broken SOURCES entry is skipped here and
    reported by ``manage.py check``.
    """
    for model in list(_sources_by_model):
        post_save.disconnect(sender=model, dispatch_uid=_uid("source", model))
        m2m_changed.disconnect(sender=model, dispatch_uid=_uid("through", model))
    for model in list(_watched_users):
        post_init.disconnect(sender=model, dispatch_uid=_uid("user_loaded", model))
        pre_save.disconnect(sender=model, dispatch_uid=_uid("user_saving", model))
    _sources_by_model.clear()
    _watched_users.clear()
    for source in sources.active_sources():
        _sources_by_model.setdefault(source.model, []).append(source)
        if source.user_attname:
            watched = _watched_users.get(source.model, ())
            _watched_users[source.model] = tuple(dict.fromkeys((*watched, source.user_attname)))
    for model in _sources_by_model:
        post_save.connect(_on_source_saved, sender=model, dispatch_uid=_uid("source", model))
        # ManyToMany .add() creates through rows with bulk_create: no post_save.
        m2m_changed.connect(_on_through_rows_added, sender=model,
                            dispatch_uid=_uid("through", model))
    for model in _watched_users:
        # "user_set" compares the user with the one of the previous save.
        post_init.connect(_on_watched_row_loaded, sender=model,
                          dispatch_uid=_uid("user_loaded", model))
        pre_save.connect(_on_watched_row_saving, sender=model,
                         dispatch_uid=_uid("user_saving", model))

    for model in _item_models_connected:
        post_delete.disconnect(sender=model, dispatch_uid=_uid("item", model))
    _item_models_connected.clear()
    try:
        senders = _item_deletion_senders()
    except (LookupError, ValueError):
        senders = []  # reported by the checks (E002)
    for model in senders:
        # Per model, not for every sender: a post_delete receiver on all
        # models would stop Django's fast bulk deletes everywhere.
        post_delete.connect(_on_item_deleted, sender=model, dispatch_uid=_uid("item", model))
        _item_models_connected.append(model)


def _item_deletion_senders() -> list[type[models.Model]]:
    """The models whose post_delete means an item is gone, and their proxies.

    Per family (see :class:`~django_recs.items.ItemFamily`), the listed
    models without a listed parent: deleting a Book deletes its Product row
    too, whose post_delete forgets the item once, while a Book deleted with
    ``keep_parents=True`` stays an item, as a Product. Deleting through a
    proxy sends post_delete with the proxy as its sender.
    """
    covering = [model for family in item_families() for model in family.covering]
    proxies = [model for model in apps.get_models()
               if model._meta.proxy and model._meta.concrete_model in covering]
    return [*covering, *proxies]


def _on_item_deleted(sender, instance, using, **kwargs) -> None:
    if instance.pk is not None:
        forget_item(instance, using=using)


def register_source(model, *, event: str, user, item, weight=None, when="created",
                    timestamp=None, session_key=None, select_related=None, value=None) -> None:
    """Record ``event`` whenever ``model`` is saved, as an entry of SOURCES would.

    ``model`` is a model class or "app_label.ModelName"; ``item``, ``weight``,
    ``value`` and ``when`` may also be callables (``item(instance)`` returns an item of
    ITEM_MODELS or None). Call it from an AppConfig.ready(); nothing is
    raised here: the entry is validated by ``manage.py check`` like a
    SOURCES entry, and a broken one records nothing.
    """
    sources.add_registered_source(
        model, event=event, user=user, item=item, weight=weight, when=when,
        timestamp=timestamp, session_key=session_key, select_related=select_related,
        value=value,
    )
    if apps.ready:
        connect_sources()


def unregister_source(model, *, event: str) -> None:
    """Forget register_source() entries of ``model`` and ``event`` (mainly for tests)."""
    sources.remove_registered_source(model, event=event)
    if apps.ready:
        connect_sources()


def _uid(kind: str, model) -> str:
    return f"django_recs.capture.{kind}.{model._meta.label}"


@receiver(setting_changed, dispatch_uid="django_recs.capture.settings")
def _reconnect_on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("DJANGO_RECS", "AUTH_USER_MODEL"):
        recs_settings.reload()
        connect_sources()


def _on_source_saved(sender, instance, created, raw=False, using=None, update_fields=None,
                     **kwargs) -> None:
    if raw:  # fixtures: `manage.py recs_import --from-sources` records them
        return
    for source in _sources_by_model.get(sender, ()):
        record_from_source(source, instance, created, using=using, update_fields=update_fields)
    if sender in _watched_users:
        remember_user_ids(instance, _watched_users[sender], update_fields)


def _on_watched_row_loaded(sender, instance, **kwargs) -> None:
    """The user ids a row is loaded (or built) with: a dict read, no query."""
    remember_user_ids(instance, _watched_users.get(sender, ()))


def _on_watched_row_saving(sender, instance, raw=False, using=None, **kwargs) -> None:
    """Read the stored user ids the instance does not know (loaded deferred): one query."""
    if raw or instance._state.adding or instance.pk is None:
        return
    known = instance.__dict__.get(SAVED_USER_IDS, {})
    missing = [name for name in _watched_users.get(sender, ()) if name not in known]
    if not missing:
        return
    try:
        stored = sender._base_manager.using(using).filter(pk=instance.pk).values(*missing).first()
    except Exception:  # never break the shop's save
        logger.exception("django_recs: could not read the user of %s #%s",
                         sender._meta.label, instance.pk)
        return
    if stored is not None:
        instance.__dict__[SAVED_USER_IDS] = {**known, **stored}


def _on_through_rows_added(sender, instance, action, reverse, model, pk_set, using=None,
                           **kwargs) -> None:
    """Record the through rows a ManyToMany ``.add()`` created, as created rows."""
    if action != "post_add" or not pk_set:
        return
    try:
        declaring = model if reverse else type(instance)
        m2m = next(f for f in declaring._meta.many_to_many if f.remote_field.through is sender)
        own, other = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
        if reverse:
            own, other = other, own
        rows = list(sender._default_manager.using(using).filter(
            **{own: instance.pk, f"{other}__in": pk_set}
        ))
    except Exception:
        logger.exception("django_recs: could not read the %s rows just added",
                         sender._meta.label)
        return
    for row in rows:
        for source in _sources_by_model.get(sender, ()):
            record_from_source(source, row, True, using=using)


def record_from_source(source, instance, created: bool, *, using: str | None = None,
                       update_fields=None):
    """Record the interaction ``source`` derives from a saved ``instance``.

    Never raises: a failure (a weight or item function raising or returning
    a bad value...) is logged with its traceback, and inside a transaction
    the insert runs in a savepoint so the shop's own transaction stays
    usable. Returns the Interaction or None.
    """
    try:
        if not source.should_record(instance, created, update_fields):
            return None
        values = source_values(source, instance)
        if values is None:
            return None
        using = using or router.db_for_write(type(instance))
        if connections[using].in_atomic_block:
            with transaction.atomic(using=using):
                return insert_interaction(using=using, **values)
        return insert_interaction(using=using, **values)
    except Exception:
        logger.exception(
            "django_recs: %s could not record %s #%s", source.label,
            instance._meta.label, instance.pk,
        )
        return None
