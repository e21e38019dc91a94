"""Candidate sources of a list, in the order of the cold-start chain, as SQL.

A list is filled from the first source that has candidates and topped up
from the next ones:

=============  =================================================================
``personal``   stored recommendations of the user (active run of ``algorithm``)
``history``    built at request time: stored neighbours of the visitor's recent
               items (account and session), scores summed over those items
``similar``    stored neighbours of an item (active run of ``algorithm``)
``content``    stored content neighbours of the item (``history_content``: of
               the visitor's recent items), from the CONTENT_FALLBACK algorithm
               (ContentKNN or Hybrid): a new item has them from its first save
``category``   stored popular items of the item's category (CATEGORY setting)
``popular``    stored popular items (active ``popular`` run, time-decayed by
               that run); while no popular run is active, popularity computed
               from the latest RECENT_INTERACTIONS interactions, time-decayed
               with HALF_LIFE_DAYS (30 days when unset)
=============  =================================================================

Each source is SQL text, never a query of its own:

- :meth:`Source.pools`: ``SELECT candidate, recs_key`` of its best
  candidates among the allowed items (see :class:`ListScope`), ``recs_key``
  being the :func:`~django_recs.expressions.order_key` of the source's score;
- :meth:`Source.score`: a scalar subquery giving the item whose primary key
  is the given SQL its score from this source (NULL when it does not
  propose it);
- :meth:`Source.reason`: the same for the item that explains it, if any.

The SQL is written by hand rather than composed from querysets: building and
compiling some fifty nested querysets cost more than running the query. It
uses only ANSI SQL (CAST, COALESCE, CASE, UNION ALL, window functions),
table and column names from the models' ``_meta``, and ``%s`` parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.db import models
from django.db.models import F
from django.utils import timezone

from .conf import recs_settings
from .models import Interaction, PopularItem, Recommendation, Run, SimilarItem
from .visitors import Visitor

#: Half-life of the request-time popularity when HALF_LIFE_DAYS is unset.
DEFAULT_POPULARITY_HALF_LIFE_DAYS = 30.0
#: Half-lives after which an interaction keeps the floor weight 2 ** -DECAY_STEPS.
DECAY_STEPS = 8
#: Interactions (the latest) that request-time popularity reads.
RECENT_INTERACTIONS = 10_000
#: How many of a visitor's latest interactions feed the history source.
RECENT_HISTORY = 10

Fragment = tuple[str, list]
#: The LIMIT of a guarded pool bounded by storage (its rows are at most k).
UNLIMITED = 1_000_000


# --- names and casts of one connection ----------------------------------------------


class Sql:
    """Quoted names and key casts for one connection and one item model."""

    def __init__(self, connection, model: type[models.Model]):
        self.connection = connection
        self.model = model
        self.quote = connection.ops.quote_name
        pk = model._meta.pk
        self.is_uuid = isinstance(pk, models.UUIDField)
        self._pk_type = pk.cast_db_type(connection)
        self._text_type = models.CharField(max_length=64).cast_db_type(connection)

    def table(self, model: type[models.Model]) -> str:
        return self.quote(model._meta.db_table)

    def column(self, alias: str, model: type[models.Model], name: str) -> str:
        return f"{alias}.{self.quote(model._meta.get_field(name).column)}"

    def key_as_pk(self, key_sql: str) -> str:
        """A stored key as the item model's primary key type."""
        return f"CAST({key_sql} AS {self._pk_type})"

    def pk_as_key(self, pk_sql: str) -> str:
        """A primary key as a stored key (32 hex digits for a UUID)."""
        text = f"CAST({pk_sql} AS {self._text_type})"
        return f"REPLACE({text}, '-', '')" if self.is_uuid else text

    def active_run(self, algorithm: str) -> Fragment:
        """The id of ``algorithm``'s active run (NULL when none)."""
        run = "recs_run"
        return (
            f"(SELECT {self.column(run, Run, 'id')} FROM {self.table(Run)} {run}"
            f" WHERE {self.column(run, Run, 'algorithm')} = %s"
            f" AND {self.column(run, Run, 'is_active')} = %s)",
            [algorithm, True],
        )

    def no_active_run(self, algorithm: str) -> Fragment:
        run = "recs_norun"
        return (
            f"NOT EXISTS (SELECT 1 FROM {self.table(Run)} {run}"
            f" WHERE {self.column(run, Run, 'algorithm')} = %s"
            f" AND {self.column(run, Run, 'is_active')} = %s)",
            [algorithm, True],
        )


def order_key_sql(index: int, score_sql: str) -> str:
    """SQL of :func:`django_recs.expressions.order_key`."""
    return f"({2 * index + 0.5!r} - ATAN({score_sql}) / {math.pi!r})"


def join(fragments, separator: str) -> Fragment:
    fragments = [f for f in fragments if f is not None and f[0]]
    return separator.join(sql for sql, _ in fragments), [p for _, ps in fragments for p in ps]


# --- what a list may contain ------------------------------------------------------------


@dataclass(frozen=True)
class ListScope:
    """The items a list may contain, and for whom.

    ``allowed`` is the caller's ``queryset=`` (None: every item), so the best
    ``n`` are chosen among allowed items, not cut down afterwards.
    ``excluded_keys`` (the source item) and the visitor's EXCLUDE_SEEN items
    are compared as stored keys.
    """

    model: type[models.Model]
    content_type_id: int
    visitor: Visitor = field(default_factory=Visitor)
    allowed: models.QuerySet | None = None
    excluded_keys: tuple[str, ...] = ()
    category: str | None = None  # ORM lookup of the CATEGORY setting

    def conditions(self, db: Sql, key_sql: str) -> Fragment:
        """``AND``-able conditions on a key column for the allowed items."""
        parts: list[Fragment] = []
        if self.excluded_keys:
            marks = ", ".join(["%s"] * len(self.excluded_keys))
            parts.append((f"{key_sql} NOT IN ({marks})", list(self.excluded_keys)))
        seen = self.seen_keys(db)
        if seen is not None:
            parts.append((f"{key_sql} NOT IN ({seen[0]})", seen[1]))
        if self.allowed is not None:
            sql, params = (
                self.allowed.order_by()
                .values("pk")
                .query.get_compiler(connection=db.connection)
                .as_sql()
            )
            parts.append((f"{db.key_as_pk(key_sql)} IN ({sql})", list(params)))
        return join(parts, " AND ")

    # The visitor's interactions --------------------------------------------------

    def _visitor_rows(self, db: Sql, alias: str) -> Fragment:
        v = self.visitor
        who = []
        if v.user_id is not None:
            who.append((f"{db.column(alias, Interaction, 'user')} = %s", [v.user_id]))
        if v.session_key is not None:
            who.append(
                (
                    f"({db.column(alias, Interaction, 'session_key')} = %s"
                    f" AND {db.column(alias, Interaction, 'user')} IS NULL)",
                    [v.session_key],
                )
            )
        sql, params = join(who, " OR ")
        # "+ 0": the visitor's index must drive this, never the item-type index.
        return (
            f"{db.column(alias, Interaction, 'item_type')} + 0 = %s AND ({sql})",
            [self.content_type_id, *params],
        )

    def seen_keys(self, db: Sql) -> Fragment | None:
        """``SELECT item_key`` of the visitor's EXCLUDE_SEEN interactions, or None."""
        events = list(recs_settings.EXCLUDE_SEEN or ())
        if not self.visitor.is_known or not events:
            return None
        alias = "recs_seen"
        visitor_sql, params = self._visitor_rows(db, alias)
        marks = ", ".join(["%s"] * len(events))
        return (
            f"SELECT {db.column(alias, Interaction, 'item_key')}"
            f" FROM {db.table(Interaction)} {alias}"
            f" WHERE {visitor_sql} AND {db.column(alias, Interaction, 'event')} IN ({marks})",
            [*params, *events],
        )

    def recent_keys(self, db: Sql) -> Fragment | None:
        """``SELECT item_key`` of the visitor's RECENT_HISTORY latest interactions, or None."""
        if not self.visitor.is_known:
            return None
        alias = "recs_recent"
        visitor_sql, params = self._visitor_rows(db, alias)
        latest = (
            f"SELECT {db.column(alias, Interaction, 'item_key')} AS recs_item"
            f" FROM {db.table(Interaction)} {alias} WHERE {visitor_sql}"
            f" ORDER BY {db.column(alias, Interaction, 'timestamp')} DESC,"
            f" {db.column(alias, Interaction, 'id')} DESC LIMIT {RECENT_HISTORY}"
        )
        # The extra SELECT lets MySQL accept a LIMIT inside IN.
        return f"SELECT recs_item FROM ({latest}) recs_latest", params

    # Categories ------------------------------------------------------------------

    def category_of(self, db: Sql, pk_sql: str) -> Fragment:
        """The category of the item whose primary key is ``pk_sql``."""
        table = _category_table_sql(db.connection.alias, self.model, self.category)
        return f"(SELECT recs_cat FROM ({table}) recs_c WHERE recs_pk = {pk_sql})", []

    def category_table(self, db: Sql) -> str:
        """``SELECT recs_pk, recs_cat`` of every item."""
        return _category_table_sql(db.connection.alias, self.model, self.category)


@lru_cache(maxsize=64)
def _category_table_sql(alias: str, model, lookup: str) -> str:
    # Compiled once per model and path; the ORM resolves any dotted path.
    from django.db import connections

    query = model._base_manager.order_by().values(recs_pk=F("pk"), recs_cat=F(lookup)).query
    sql, params = query.get_compiler(connection=connections[alias]).as_sql()
    assert not params
    return sql


# --- sources ------------------------------------------------------------------------------


class Source:
    """One link of the chain; see the module docstring."""

    name = ""
    explained = False
    #: Whether counting its candidates is a cheap index read (see :func:`fewer_than`).
    cheap_to_count = False
    #: (first source, n): the pools are read only while the first source
    #: has fewer than n candidates (see :func:`fewer_than`).
    short_of: tuple[Source, int] | None = None

    def pools(self, db: Sql, scope: ListScope, index: int, limit: int) -> list[Fragment]:
        raise NotImplementedError

    def score(self, db: Sql, scope: ListScope, pk_sql: str) -> Fragment:
        raise NotImplementedError

    def reason(self, db: Sql, scope: ListScope, pk_sql: str) -> tuple[Fragment, Fragment]:
        raise NotImplementedError

    def count_rows(self, db: Sql, scope: ListScope) -> Fragment:
        """``SELECT 1`` per candidate of the first pool (for :func:`fewer_than`)."""
        raise NotImplementedError

    def _where(self, db, scope, base: Fragment, key_sql: str) -> Fragment:
        return join([base, scope.conditions(db, key_sql)], " AND ")

    def _limit(self, db, scope, limit: int | None, only_if: Fragment | None = None) -> Fragment:
        """The LIMIT clause of a pool; 0 when the first source already has n candidates.

        The guard goes in the LIMIT, not the WHERE: every database evaluates
        a LIMIT once, before reading a row, whereas a constant WHERE term may
        be checked row by row over a whole index.
        """
        guards = [only_if]
        if self.short_of is not None:
            guards.append(fewer_than(self.short_of[0], db, scope, self.short_of[1]))
        guard, params = join(guards, " AND ")
        if not guard:
            return (f" LIMIT {int(limit)}" if limit is not None else ""), []
        count = int(limit) if limit is not None else UNLIMITED
        return f" LIMIT CASE WHEN {guard} THEN {count} ELSE 0 END", params


def fewer_than(source: Source, db: Sql, scope: ListScope, n: int) -> Fragment:
    """SQL true while ``source`` has fewer than ``n`` candidates (a one-time check).

    Later sources are read only while it holds, so an item with enough
    neighbours (a user with enough stored recommendations) costs no
    popularity lookups at all.
    """
    sql, params = source.count_rows(db, scope)
    return f"(SELECT COUNT(*) FROM ({sql} LIMIT {int(n)}) recs_first) < {int(n)}", params


@dataclass(eq=False)  # hashed by identity, as query expressions need
class StoredNeighbours(Source):
    """Neighbours of the item ``key`` stored by the active run of ``algorithm``."""

    key: str
    algorithm: str
    name: str = "similar"

    cheap_to_count = True

    def _rows(self, db: Sql, scope: ListScope, alias: str) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        return (
            f"{db.column(alias, SimilarItem, 'run')} = {run_sql}"
            f" AND {db.column(alias, SimilarItem, 'item_type')} = %s"
            f" AND {db.column(alias, SimilarItem, 'item_key')} = %s"
            f" AND {db.column(alias, SimilarItem, 'neighbour_type')} = %s",
            [*run_params, scope.content_type_id, self.key, scope.content_type_id],
        )

    def pools(self, db, scope, index, limit):
        a = "recs_sim"
        key = db.column(a, SimilarItem, "neighbour_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        limit_sql, limit_params = self._limit(db, scope, None)
        return [
            (
                f"SELECT {db.key_as_pk(key)} AS candidate,"
                f" {order_key_sql(index, db.column(a, SimilarItem, 'score'))} AS recs_key"
                f" FROM {db.table(SimilarItem)} {a} WHERE {where}{limit_sql}",
                [*params, *limit_params],
            )
        ]

    def count_rows(self, db, scope):
        a = "recs_sim"
        key = db.column(a, SimilarItem, "neighbour_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        return f"SELECT 1 FROM {db.table(SimilarItem)} {a} WHERE {where}", params

    def score(self, db, scope, pk_sql):
        a = "recs_sim_s"
        rows, params = self._rows(db, scope, a)
        return (
            f"(SELECT MAX({db.column(a, SimilarItem, 'score')}) FROM {db.table(SimilarItem)} {a}"
            f" WHERE {rows} AND {db.column(a, SimilarItem, 'neighbour_key')} = {db.pk_as_key(pk_sql)})",
            params,
        )


@dataclass(eq=False)  # hashed by identity, as query expressions need
class StoredRecommendations(Source):
    """Recommendations of the user stored by the active run of ``algorithm``."""

    user_id: object
    algorithm: str
    name = "personal"
    explained = True

    cheap_to_count = True

    def _rows(self, db, scope, alias) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        return (
            f"{db.column(alias, Recommendation, 'run')} = {run_sql}"
            f" AND {db.column(alias, Recommendation, 'user')} = %s"
            f" AND {db.column(alias, Recommendation, 'item_type')} = %s",
            [*run_params, self.user_id, scope.content_type_id],
        )

    def pools(self, db, scope, index, limit):
        a = "recs_rec"
        key = db.column(a, Recommendation, "item_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        limit_sql, limit_params = self._limit(db, scope, None)
        return [
            (
                f"SELECT {db.key_as_pk(key)} AS candidate,"
                f" {order_key_sql(index, db.column(a, Recommendation, 'score'))} AS recs_key"
                f" FROM {db.table(Recommendation)} {a} WHERE {where}{limit_sql}",
                [*params, *limit_params],
            )
        ]

    def count_rows(self, db, scope):
        a = "recs_rec"
        key = db.column(a, Recommendation, "item_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        return f"SELECT 1 FROM {db.table(Recommendation)} {a} WHERE {where}", params

    def _lookup(self, db, scope, pk_sql, column: str) -> Fragment:
        # A row per (user, item) is expected; with duplicates, the best-ranked one.
        a = "recs_rec_s"
        rows, params = self._rows(db, scope, a)
        return (
            f"(SELECT {db.column(a, Recommendation, column)} FROM {db.table(Recommendation)} {a}"
            f" WHERE {rows} AND {db.column(a, Recommendation, 'item_key')} = {db.pk_as_key(pk_sql)}"
            f" ORDER BY {db.column(a, Recommendation, 'rank')} LIMIT 1)",
            params,
        )

    def score(self, db, scope, pk_sql):
        return self._lookup(db, scope, pk_sql, "score")

    def reason(self, db, scope, pk_sql):
        key_sql, key_params = self._lookup(db, scope, pk_sql, "reason_key")
        return self._lookup(db, scope, pk_sql, "reason_type"), (f"NULLIF({key_sql}, '')", key_params)


@dataclass(eq=False)  # hashed by identity, as query expressions need
class HistoryNeighbours(Source):
    """Neighbours of the visitor's recent items, scores summed.

    The reason of a candidate is the recent item it is most similar to. The
    recent items themselves are not proposed (the visitor has just seen them).
    """

    algorithm: str
    name: str = "history"
    explained = True

    def _rows(self, db, scope, alias) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        recent_sql, recent_params = scope.recent_keys(db)
        key = db.column(alias, SimilarItem, "neighbour_key")
        return (
            f"{db.column(alias, SimilarItem, 'run')} = {run_sql}"
            f" AND {db.column(alias, SimilarItem, 'item_type')} = %s"
            f" AND {db.column(alias, SimilarItem, 'item_key')} IN ({recent_sql})"
            f" AND {db.column(alias, SimilarItem, 'neighbour_type')} = %s"
            f" AND {key} NOT IN ({recent_sql})",
            [*run_params, scope.content_type_id, *recent_params, scope.content_type_id,
             *recent_params],
        )

    def pools(self, db, scope, index, limit):
        a = "recs_hist"
        key = db.column(a, SimilarItem, "neighbour_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        total = f"SUM({db.column(a, SimilarItem, 'score')})"
        limit_sql, limit_params = self._limit(db, scope, limit)
        return [
            (
                f"SELECT {db.key_as_pk(key)} AS candidate, {order_key_sql(index, total)} AS recs_key"
                f" FROM {db.table(SimilarItem)} {a} WHERE {where} GROUP BY {key}"
                f" ORDER BY recs_key, candidate{limit_sql}",
                [*params, *limit_params],
            )
        ]

    def count_rows(self, db, scope):
        a = "recs_hist"
        key = db.column(a, SimilarItem, "neighbour_key")
        where, params = self._where(db, scope, self._rows(db, scope, a), key)
        return f"SELECT 1 FROM {db.table(SimilarItem)} {a} WHERE {where} GROUP BY {key}", params

    def _mine(self, db, scope, pk_sql, alias) -> Fragment:
        rows, params = self._rows(db, scope, alias)
        return (
            f"{db.table(SimilarItem)} {alias} WHERE {rows}"
            f" AND {db.column(alias, SimilarItem, 'neighbour_key')} = {db.pk_as_key(pk_sql)}",
            params,
        )

    def score(self, db, scope, pk_sql):
        a = "recs_hist_s"
        mine, params = self._mine(db, scope, pk_sql, a)
        return f"(SELECT SUM({db.column(a, SimilarItem, 'score')}) FROM {mine})", params

    def reason(self, db, scope, pk_sql):
        a = "recs_hist_r"
        mine, params = self._mine(db, scope, pk_sql, a)
        key = (
            f"(SELECT {db.column(a, SimilarItem, 'item_key')} FROM {mine}"
            f" ORDER BY {db.column(a, SimilarItem, 'score')} DESC,"
            f" {db.column(a, SimilarItem, 'rank')} LIMIT 1)",
            params,
        )
        return ("%s", [scope.content_type_id]), key


def decay_sql(db: Sql, alias: str, now=None, half_life_days: float | None = None) -> Fragment:
    """An interaction's weight times ``2 ** -age/half_life``, in half-life steps.

    Portable SQL has no exponential of a date difference, so the age is
    bucketed by whole half-lives and each bucket weighted at its midpoint
    (``2 ** -(i + 0.5)`` for ages in ``[i, i + 1)`` half-lives); older than
    DECAY_STEPS half-lives keeps a floor weight, so all-time counts still
    break ties.
    """
    now = now or timezone.now()
    half_life = timedelta(days=half_life_days or DEFAULT_POPULARITY_HALF_LIFE_DAYS)
    column = db.column(alias, Interaction, "timestamp")
    field = Interaction._meta.get_field("timestamp")
    whens, params = [], []
    for i in range(DECAY_STEPS):
        whens.append(f"WHEN {column} >= %s THEN {2.0 ** -(i + 0.5)!r}")
        params.append(field.get_db_prep_value(now - half_life * (i + 1), db.connection))
    factor = f"CASE {' '.join(whens)} ELSE {2.0 ** -DECAY_STEPS!r} END"
    return f"{db.column(alias, Interaction, 'weight')} * {factor}", params


@dataclass(eq=False)  # hashed by identity, as query expressions need
class Popular(Source):
    """Stored popular items, or, while no popular run is active, popularity from interactions.

    With ``within_category_of`` (an item pk) only stored popular items of
    that item's category (the ``category`` source).
    """

    algorithm: str
    within_category_of: object = None

    @property
    def name(self):
        return "category" if self.within_category_of is not None else "popular"

    def _stored_rows(self, db, scope, alias) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        return (
            f"{db.column(alias, PopularItem, 'run')} = {run_sql}"
            f" AND {db.column(alias, PopularItem, 'item_type')} = %s",
            [*run_params, scope.content_type_id],
        )

    def _source_pk(self, db, scope):
        return scope.model._meta.pk.get_db_prep_value(self.within_category_of, db.connection)

    def _same_category(self, db, scope, pk_sql) -> Fragment:
        mine, params = scope.category_of(db, pk_sql)
        source, source_params = scope.category_of(db, "%s")
        return f"{mine} = {source}", [*params, *source_params, self._source_pk(db, scope)]

    def _category_keys(self, db, scope) -> Fragment:
        """``SELECT`` the keys of the items in the source item's category."""
        source, params = scope.category_of(db, "%s")
        return (
            f"SELECT {db.pk_as_key('recs_k.recs_pk')} FROM ({scope.category_table(db)}) recs_k"
            f" WHERE recs_k.recs_cat = {source}",
            [*params, self._source_pk(db, scope)],
        )

    def pools(self, db, scope, index, limit):
        a = "recs_pop"
        key = db.column(a, PopularItem, "item_key")
        base = [self._stored_rows(db, scope, a)]
        if self.within_category_of is not None:
            # From the category's items to their popularity (an index probe
            # each), rather than through all popular items.
            keys_sql, keys_params = self._category_keys(db, scope)
            base.append((f"{key} IN ({keys_sql})", keys_params))
        where, params = self._where(db, scope, join(base, " AND "), key)
        score = db.column(a, PopularItem, "score")
        limit_sql, limit_params = self._limit(db, scope, limit)
        pools = [
            (
                f"SELECT {db.key_as_pk(key)} AS candidate, {order_key_sql(index, score)} AS recs_key"
                f" FROM {db.table(PopularItem)} {a} WHERE {where}"
                f" ORDER BY {db.column(a, PopularItem, 'rank')}{limit_sql}",
                [*params, *limit_params],
            )
        ]
        if self.within_category_of is None:
            pools.append(self._computed_pool(db, scope, index, limit))
        return pools

    def _computed_pool(self, db, scope, index, limit) -> Fragment:
        # The latest interactions propose candidates; their score (below) is
        # the decayed sum over all their interactions. Once a popular run
        # exists the window is empty: its LIMIT becomes 0, which every
        # database evaluates once, before reading a row.
        a, w = "recs_evt", "recs_win"
        no_run, no_run_params = db.no_active_run(self.algorithm)
        window = (
            f"SELECT recs_id FROM (SELECT {db.column(w, Interaction, 'id')} AS recs_id"
            f" FROM {db.table(Interaction)} {w} ORDER BY {db.column(w, Interaction, 'id')} DESC"
            f" LIMIT CASE WHEN {no_run} THEN {RECENT_INTERACTIONS} ELSE 0 END) recs_window"
        )
        key = db.column(a, Interaction, "item_key")
        # The window selects the rows, read by primary key ("+ 0": not by item type).
        base = (
            f"{db.column(a, Interaction, 'id')} IN ({window})"
            f" AND {db.column(a, Interaction, 'item_type')} + 0 = %s",
            [*no_run_params, scope.content_type_id],
        )
        where, params = self._where(db, scope, base, key)
        weight, weight_params = decay_sql(db, a, half_life_days=recs_settings.HALF_LIFE_DAYS)
        # The whole pool, not only its window, is skipped once a popular run exists.
        limit_sql, limit_params = self._limit(db, scope, limit, db.no_active_run(self.algorithm))
        return (
            f"SELECT {db.key_as_pk(key)} AS candidate,"
            f" {order_key_sql(index, f'SUM({weight})')} AS recs_key"
            f" FROM {db.table(Interaction)} {a} WHERE {where} GROUP BY {key}"
            f" ORDER BY recs_key, candidate{limit_sql}",
            [*weight_params, *params, *limit_params],
        )

    def score(self, db, scope, pk_sql):
        a = "recs_pop_s"
        rows, params = self._stored_rows(db, scope, a)
        stored = (
            f"(SELECT MAX({db.column(a, PopularItem, 'score')}) FROM {db.table(PopularItem)} {a}"
            f" WHERE {rows} AND {db.column(a, PopularItem, 'item_key')} = {db.pk_as_key(pk_sql)})"
        )
        if self.within_category_of is not None:
            same, same_params = self._same_category(db, scope, pk_sql)
            return f"CASE WHEN {same} THEN {stored} END", [*same_params, *params]
        e = "recs_evt_s"
        no_run, no_run_params = db.no_active_run(self.algorithm)
        weight, weight_params = decay_sql(db, e, half_life_days=recs_settings.HALF_LIFE_DAYS)
        computed = (
            f"(SELECT SUM({weight}) FROM {db.table(Interaction)} {e} WHERE {no_run}"
            f" AND {db.column(e, Interaction, 'item_type')} = %s"
            f" AND {db.column(e, Interaction, 'item_key')} = {db.pk_as_key(pk_sql)})"
        )
        return (
            f"COALESCE({stored}, {computed})",
            [*params, *weight_params, *no_run_params, scope.content_type_id],
        )

    def count_rows(self, db, scope):  # pragma: no cover - popular is never first
        raise NotImplementedError("the popular source is never the first of a chain")


def category_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup of ``model``'s category from the CATEGORY setting, or None.

    CATEGORY maps ``"app_label.Model"`` to a dotted attribute path
    (``"category"``, ``"brand.category"``).
    """
    wanted = {model._meta.label_lower, model._meta.concrete_model._meta.label_lower}
    for label, path in (recs_settings.CATEGORY or {}).items():
        if label.lower() in wanted and path:
            return path.replace(".", "__")
    return None
