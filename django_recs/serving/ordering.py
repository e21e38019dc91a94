"""The order of a list returned as a queryset: :class:`ListPosition`.

An item row's position in a list already chosen, which orders the queryset
a list is returned as.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Expression, F


class ListPosition(Expression):
    """``CASE pk WHEN <pk 0> THEN 0 WHEN <pk 1> THEN 1 ... END``: the row's place in a list.

    ``entries`` are the list's entries, best first; each is a tuple whose
    first element is the item's primary key (the rest, the explanation, is
    read back by :class:`~django_recs.serving.lists.ExplainedModelIterable`).
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
