"""SQL expressions of the serving layer.

- :func:`active_run_id`: the id of an algorithm's active run, as a subquery,
  so a swap of runs is seen by the very next query without any cache.
- :class:`ListPosition`: an item row's position in a list already chosen,
  which orders the queryset a list is returned as.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Expression, F, Subquery


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


class ListPosition(Expression):
    """``CASE pk WHEN <pk 0> THEN 0 WHEN <pk 1> THEN 1 ... END``: the row's place in a list.

    ``entries`` are the list's entries, best first; each is a tuple whose
    first element is the item's primary key (the rest, the explanation, is
    read back by :class:`~django_recs.querysets.ExplainedModelIterable`).
    One parameter per item, so a chained queryset of the list compiles in
    microseconds, whatever produced the list.
    """

    #: One field for every instance: building a Field costs more than the rest.
    _position = models.IntegerField()

    def __init__(self, entries):
        super().__init__(output_field=self._position)
        self.entries = tuple(entries)
        self.pk = F("pk")

    def get_source_expressions(self):
        return [self.pk]

    def set_source_expressions(self, exprs):
        (self.pk,) = exprs

    def as_sql(self, compiler, connection):
        if not self.entries:
            return "NULL", ()
        pk_sql, pk_params = compiler.compile(self.pk)
        field = self.pk.output_field
        whens, params = [], list(pk_params)
        for position, entry in enumerate(self.entries):
            whens.append(f"WHEN %s THEN {position}")
            params.append(field.get_db_prep_value(entry[0], connection))
        return f"CASE {pk_sql} {' '.join(whens)} END", tuple(params)
