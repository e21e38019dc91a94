"""SQL expressions the serving layer builds its single query from.

- :func:`active_run_id`: the id of an algorithm's active run, as a subquery,
  so a swap of runs is seen by the very next query without any cache.
- :func:`pk_as_key`: an item's primary key in the stored key format, so a
  lookup into a result table compares key columns to text and can use their
  indexes (the reverse of :func:`django_recs.items.key_as_pk`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Subquery, Value
from django.db.models.functions import Cast, Replace


def active_run_id(algorithm: str) -> Subquery:
    """``SELECT id FROM run WHERE algorithm = ... AND is_active LIMIT 1``.

    At most one run per algorithm is active (a database constraint), so the
    subquery yields one id or NULL; NULL matches no result row.
    """
    from .models import Run

    return Subquery(
        Run.objects.filter(algorithm=algorithm, is_active=True).order_by().values("pk")[:1],
        output_field=models.BigIntegerField(),
    )


def active_run_exists(algorithm: str):
    """An ``EXISTS`` over the active run of ``algorithm`` (a one-time check in SQL)."""
    from django.db.models import Exists

    from .models import Run

    return Exists(Run.objects.filter(algorithm=algorithm, is_active=True).order_by())


def pk_as_key(model: type[models.Model], expression):
    """An SQL expression turning ``model``'s primary key into the stored key text.

    Integer keys become their decimal text. UUID keys become 32 hex digits:
    PostgreSQL's text form of a uuid has dashes, which are removed; SQLite and
    MySQL already store the hex form.
    """
    as_text = Cast(expression, output_field=models.CharField(max_length=64))
    if isinstance(model._meta.pk, models.UUIDField):
        return Replace(as_text, Value("-"), Value(""))
    return as_text
