"""SQL expressions of the serving layer.

- :func:`active_run_id`: the id of an algorithm's active run, as a subquery,
  so a swap of runs is seen by the very next query without any cache.
- :class:`BestCandidates`: the best candidates of a list's sources, as an
  uncorrelated ``IN`` subquery that reads each source once.
- :class:`ListOrder` / :class:`ListReason`: an item row's order key and
  reason, as correlated subqueries (index lookups) of the enclosing query.
"""

from __future__ import annotations

import math

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


def decode_order_key(key: float) -> tuple[int, float]:
    """(source index, score) of a list's order key.

    A list is ordered by one number per item, ``2 * index + 1/2 -
    atan(score) / pi`` (:func:`django_recs.fallbacks.order_key_sql`), which
    lies in ``[2 index, 2 index + 1]``: sources never interleave and, within
    one, a higher score sorts first. One number instead of a (source, score)
    pair keeps the SQL small; the source and score are recovered here.
    """
    index = int(key // 2)
    score = math.tan(math.pi * (2 * index + 0.5 - key))
    # 12 significant digits: what survives the round trip (stored scores
    # come from float32 kernels, good to about 7).
    return index, float(f"{score:.12g}")


class ListExpression(Expression):
    """Base of the expressions below: SQL built by :mod:`django_recs.fallbacks`.

    ``sources`` are :class:`~django_recs.fallbacks.Source` objects and
    ``scope`` a :class:`~django_recs.fallbacks.ListScope`; the SQL is written
    when the query is compiled, for the connection that runs it.
    """

    def __init__(self, sources, scope, output_field):
        super().__init__(output_field=output_field)
        self.sources = list(sources)
        self.scope = scope

    def _sql(self, connection):
        from .fallbacks import Sql

        return Sql(connection, self.scope.model)


class BestCandidates(ListExpression):
    """The ``limit`` best candidates of the sources' pools: an uncorrelated ``IN`` subquery.

    The SQL is::

        SELECT candidate FROM (
            SELECT candidate FROM (
                SELECT candidate, recs_key FROM (<pool 1>) p1 UNION ALL ...
            ) c GROUP BY candidate ORDER BY MIN(recs_key), candidate LIMIT <limit>
        ) best

    An item proposed by several sources keeps its best (earliest) one. With
    a category cap, candidates past ``cap`` in their category (in this
    order) are dropped first. The pools never refer to the enclosing query,
    so nesting and relabelling are safe; the outer SELECT lets MySQL accept
    the LIMIT inside ``IN``.
    """

    def __init__(self, sources, scope, limit: int, *, pool_limit: int, cap=None, output_field=None):
        super().__init__(sources, scope, output_field or models.BigIntegerField())
        self.limit = int(limit)
        self.pool_limit = int(pool_limit)
        self.cap = cap

    def as_sql(self, compiler, connection):
        from .diversity import cap_per_category_sql
        from .fallbacks import join

        db = self._sql(connection)
        pools = [
            pool
            for index, source in enumerate(self.sources)
            for pool in source.pools(db, self.scope, index, self.pool_limit)
        ]
        union, params = join(
            [(f"SELECT candidate, recs_key FROM ({sql}) recs_pool{i}", p)
             for i, (sql, p) in enumerate(pools)],
            " UNION ALL ",
        )
        best = f"SELECT candidate, MIN(recs_key) AS recs_key FROM ({union}) recs_union GROUP BY candidate"
        if self.cap:
            best = cap_per_category_sql(best, self.scope.category_table(db), self.cap)
        sql = (
            f"(SELECT candidate FROM (SELECT candidate FROM ({best}) recs_ranked"
            f" ORDER BY recs_key, candidate LIMIT {self.limit}) recs_top)"
        )
        return sql, tuple(params)


class _PerItem(ListExpression):
    """An expression of the enclosing query's item row (its primary key)."""

    def __init__(self, sources, scope, output_field):
        super().__init__(sources, scope, output_field)
        self.pk = F("pk")

    def get_source_expressions(self):
        return [self.pk]

    def set_source_expressions(self, exprs):
        (self.pk,) = exprs

    def as_sql(self, compiler, connection):
        pk_sql, pk_params = compiler.compile(self.pk)
        if pk_params:  # pragma: no cover - a column has none
            raise ValueError("the item's primary key compiled with parameters")
        return self.item_sql(self._sql(connection), pk_sql)


class ListOrder(_PerItem):
    """The :func:`order_key` of the item row: the first source proposing it decides."""

    def __init__(self, sources, scope):
        super().__init__(sources, scope, models.FloatField())

    def item_sql(self, db, pk_sql):
        from .fallbacks import join, order_key_sql

        keys = []
        for index, source in enumerate(self.sources):
            sql, params = source.score(db, self.scope, pk_sql)
            keys.append((order_key_sql(index, sql), params))
        sql, params = join(keys, ", ")
        return (f"COALESCE({sql})" if len(keys) > 1 else sql), tuple(params)


class ListReason(_PerItem):
    """The reason (``part`` 0: content type id, 1: key) of the first explained source."""

    def __init__(self, sources, scope, part: int):
        field = models.IntegerField() if part == 0 else models.CharField()
        super().__init__(sources, scope, field)
        self.part = part

    def item_sql(self, db, pk_sql):
        from .fallbacks import join

        parts = [s.reason(db, self.scope, pk_sql)[self.part] for s in self.sources if s.explained]
        sql, params = join(parts, ", ")
        return (f"COALESCE({sql})" if len(parts) > 1 else sql), tuple(params)
