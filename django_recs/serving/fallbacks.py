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

Each source is SQL text, never a query of its own: :meth:`Source.pool` is a
``SELECT`` of its best candidates among the allowed items (see
:class:`ListScope`), best first, with the columns :data:`POOL_COLUMNS`;
:mod:`django_recs.candidates` reads the pools of a list in one statement.

The SQL is written by hand rather than composed from querysets: building and
compiling nested querysets costs more than running the statement. It uses
ANSI SQL (CAST, CASE, UNION ALL, window functions), table and column names
from the models' ``_meta``, and ``%s`` parameters; where PostgreSQL or SQLite
do a step much faster their own way (:meth:`Sql.in_subquery`,
:meth:`HistoryNeighbours._totals`), that way, with the ANSI form for other
databases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.db import models
from django.db.models import F
from django.utils import timezone

from ..casts import is_mysql, key_as_pk_sql, null_text_sql, text_sql
from ..categories import category_text
from ..conf import exclude_seen_events, recs_settings
from ..items import key_field
from ..models import (
    Interaction,
    PopularItem,
    Recommendation,
    RecommendationList,
    Run,
    SimilarItem,
)
from .visitors import Visitor

#: Half-life of the request-time popularity when HALF_LIFE_DAYS is unset.
DEFAULT_POPULARITY_HALF_LIFE_DAYS = 30.0
#: Half-lives after which an interaction keeps the floor weight 2 ** -DECAY_STEPS.
DECAY_STEPS = 8
#: Interactions (the latest) that request-time popularity reads.
RECENT_INTERACTIONS = 10_000
#: How many of a visitor's latest interactions feed the history source.
RECENT_HISTORY = 10
#: What every pool selects: the source's index in the chain, the candidate's
#: primary key, its score from that source, and the item (content type id,
#: stored key) that explains it, or NULLs.
POOL_COLUMNS = ("recs_source", "candidate", "recs_score", "recs_reason_type", "recs_reason_key")

Fragment = tuple[str, list]


# --- names and casts of one connection ----------------------------------------------


def per_connection(connection, key, make):
    """``make()``, computed once per database connection object and ``key``.

    Kept on the connection itself, so it goes with it (a thread's connection
    ends with the thread).
    """
    cache = connection.__dict__.setdefault("_django_recs_cache", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


class Sql:
    """Quoted names and key casts for one connection and one item model."""

    @classmethod
    def of(cls, connection, model: type[models.Model]) -> Sql:
        """The (cached) instance for ``connection`` and ``model``."""
        return per_connection(connection, (cls, model), lambda: cls(connection, model))

    def __init__(self, connection, model: type[models.Model]):
        self.connection = connection
        self.model = model
        self.quote = connection.ops.quote_name
        # The root's key type: a multi-table child's primary key is a link to it.
        pk = key_field(model)
        self.is_uuid = isinstance(pk, models.UUIDField)
        self._pk = pk
        self._int_type = models.IntegerField().cast_db_type(connection)

    def table(self, model: type[models.Model]) -> str:
        return self.quote(model._meta.db_table)

    def column(self, alias: str, model: type[models.Model], name: str) -> str:
        return f"{alias}.{self.quote(model._meta.get_field(name).column)}"

    def key_as_pk(self, key_sql: str) -> str:
        """A stored key as the item model's primary key type."""
        return key_as_pk_sql(self.connection, key_sql, self._pk)

    def pk_as_key(self, pk_sql: str) -> str:
        """A primary key as a stored key (32 hex digits for a UUID)."""
        text = text_sql(self.connection, pk_sql)
        return f"REPLACE({text}, '-', '')" if self.is_uuid else text

    def no_reason(self) -> str:
        """The reason columns of a source without reasons (typed, so UNION ALL accepts them)."""
        return self.reason(f"CAST(NULL AS {self._int_type})", null_text_sql(self.connection))

    @staticmethod
    def reason(type_sql: str, key_sql: str) -> str:
        return f"{type_sql} AS recs_reason_type, {key_sql} AS recs_reason_key"

    def in_subquery(self, value_sql: str, subquery_sql: str) -> str:
        """``value IN (subquery)``, as PostgreSQL plans it best for a few hundred keys.

        PostgreSQL may hash-join a whole result table for ``IN (SELECT ...)``;
        ``= ANY(ARRAY(SELECT ...))`` turns the keys into one array and probes
        the index with it.
        """
        if self.connection.vendor == "postgresql":
            return f"{value_sql} = ANY(ARRAY({subquery_sql}))"
        return f"{value_sql} IN ({subquery_sql})"

    #: Active run ids (algorithm: id or None) already read by the list's
    #: first statement; see :meth:`knowing_runs`.
    runs: dict | None = None

    def knowing_runs(self, runs: dict) -> Sql:
        """A copy writing the runs of ``runs`` (algorithm: id or None) as constants.

        A list's first statement reports the active runs of the rest of its
        chain (see :func:`django_recs.candidates.read_candidates`); its second
        statement then names them, so PostgreSQL prunes the other runs'
        partitions while planning instead of planning them all.
        """
        known = copy.copy(self)
        known.runs = runs
        return known

    def active_run(self, algorithm: str) -> Fragment:
        """The id of ``algorithm``'s active run (NULL when none)."""
        if self.runs is not None and algorithm in self.runs:
            run = self.runs[algorithm]
            return ("NULL", []) if run is None else ("%s", [run])
        rows, params = self.active_runs("recs_run", algorithm)
        return f"(SELECT {self.column('recs_run', Run, 'id')} {rows})", params

    def active_runs(self, alias: str, *algorithms: str) -> Fragment:
        """``FROM ... WHERE`` of the active runs of ``algorithms``, named ``alias``."""
        marks = ", ".join(["%s"] * len(algorithms))
        return (
            f"FROM {self.table(Run)} {alias}"
            f" WHERE {self.column(alias, Run, 'algorithm')} IN ({marks})"
            f" AND {self.column(alias, Run, 'is_active')} = %s",
            [*algorithms, True],
        )


def pool_columns(index: int, candidate: str, score: str, reason: str) -> str:
    """The select list of a pool: :data:`POOL_COLUMNS` named, so UNION ALL lines them up."""
    return (
        f"{int(index)} AS recs_source, {candidate} AS candidate, {score} AS recs_score, {reason}"
    )


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
        events = exclude_seen_events()
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
        table = self.category_table(db)
        return f"(SELECT recs_cat FROM ({table}) recs_c WHERE recs_pk = {pk_sql})", []

    def category_table(self, db: Sql) -> str:
        """``SELECT recs_pk, recs_cat`` of every item."""
        return _category_table_sql(db.connection.alias, self.model, self.category)


@lru_cache(maxsize=64)
def _category_table_sql(alias: str, model, lookup: str) -> str:
    # Compiled once per model and path; the ORM resolves any dotted path.
    from django.db import connections

    query = model._base_manager.order_by().values(
        recs_pk=F("pk"), recs_cat=category_text(lookup)
    ).query
    sql, params = query.get_compiler(connection=connections[alias]).as_sql()
    assert not params
    return sql


# --- sources ------------------------------------------------------------------------------


class Source:
    """One link of the chain; see the module docstring."""

    name = ""
    #: The ALGORITHMS entry whose active run the source reads.
    algorithm: str
    explained = False
    #: Whether it only stands in for the source of its algorithm while that
    #: algorithm has no active run (recent popularity for stored popularity).
    stand_in = False

    def pool(self, db: Sql, scope: ListScope, index: int, limit: int) -> Fragment:
        """``SELECT`` :data:`POOL_COLUMNS` of the ``limit`` best candidates, best first."""
        raise NotImplementedError

    def _where(self, db, scope, base: Fragment, key_sql: str) -> Fragment:
        return join([base, scope.conditions(db, key_sql)], " AND ")


def stored_pool(db, model, alias, where: Fragment, index, limit, *, key, reason,
                order: str = "rank") -> Fragment:
    """The pool of a result table's rows: the first ``limit`` by rank (or ``order``).

    The lookup indexes end with the rank, so the read stops after ``limit``
    rows of the index range.
    """
    sql, params = where
    candidate = db.key_as_pk(db.column(alias, model, key))
    return (
        f"SELECT {pool_columns(index, candidate, db.column(alias, model, 'score'), reason)}"
        f" FROM {db.table(model)} {alias} WHERE {sql}"
        f" ORDER BY {db.column(alias, model, order)} LIMIT {int(limit)}",
        params,
    )


@dataclass(eq=False)
class StoredNeighbours(Source):
    """Neighbours of the item ``key`` stored by the active run of ``algorithm``."""

    key: str
    algorithm: str
    name: str = "similar"

    def _rows(self, db: Sql, scope: ListScope, alias: str) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        base = (
            f"{db.column(alias, SimilarItem, 'run')} = {run_sql}"
            f" AND {db.column(alias, SimilarItem, 'item_type')} = %s"
            f" AND {db.column(alias, SimilarItem, 'item_key')} = %s"
            f" AND {db.column(alias, SimilarItem, 'neighbour_type')} = %s",
            [*run_params, scope.content_type_id, self.key, scope.content_type_id],
        )
        return self._where(db, scope, base, db.column(alias, SimilarItem, "neighbour_key"))

    def pool(self, db, scope, index, limit):
        a = "recs_sim"
        return stored_pool(
            db, SimilarItem, a, self._rows(db, scope, a), index, limit,
            key="neighbour_key", reason=db.no_reason(),
        )


@dataclass(eq=False)
class StoredRecommendations(Source):
    """Recommendations of the user stored by the active run of ``algorithm``."""

    user_id: object
    algorithm: str
    name = "personal"
    explained = True

    def _rows(self, db, scope, alias) -> Fragment:
        run_sql, run_params = db.active_run(self.algorithm)
        base = (
            f"{db.column(alias, Recommendation, 'run')} = {run_sql}"
            f" AND {db.column(alias, Recommendation, 'user')} = %s"
            f" AND {db.column(alias, Recommendation, 'item_type')} = %s",
            [*run_params, self.user_id, scope.content_type_id],
        )
        return self._where(db, scope, base, db.column(alias, Recommendation, "item_key"))

    def pool(self, db, scope, index, limit):
        a = "recs_rec"
        reason = db.reason(
            db.column(a, Recommendation, "reason_type"),
            f"NULLIF({db.column(a, Recommendation, 'reason_key')}, '')",
        )
        rows_sql, rows_params = stored_pool(
            db, Recommendation, a, self._rows(db, scope, a), index, limit,
            key="item_key", reason=reason,
        )
        # A run stores its lists in one of the two tables (RECOMMENDATION_LAYOUT):
        # the other branch costs one probe of an index range that is empty.
        lists_sql, lists_params = self._list_pool(db, scope, index, limit)
        return (
            f"SELECT * FROM ({lists_sql}) recs_lists UNION ALL"
            f" SELECT * FROM ({rows_sql}) recs_rows",
            [*lists_params, *rows_params],
        )

    def _list_pool(self, db, scope, index, limit) -> Fragment:
        """The pool of the user's RecommendationList row, its JSON entries unnested in SQL."""
        a = "recs_list"
        run_sql, run_params = db.active_run(self.algorithm)
        entries, key, score, reason_type, reason_key, position = list_entries(
            db, db.column(a, RecommendationList, "items"))
        base = (
            f"{db.column(a, RecommendationList, 'run')} = {run_sql}"
            f" AND {db.column(a, RecommendationList, 'user')} = %s"
            f" AND {db.column(a, RecommendationList, 'item_type')} = %s",
            [*run_params, self.user_id, scope.content_type_id],
        )
        where, params = self._where(db, scope, base, key)
        rows = f"FROM {db.table(RecommendationList)} {a} {entries} WHERE {where}"
        if "postgresql" not in type(db.connection).__module__:
            # JSON_TABLE extracts every column as it scans anyway; SQLite measured
            # slower with the subquery below.
            columns = pool_columns(index, db.key_as_pk(key), score,
                                   db.reason(reason_type, reason_key))
            return f"SELECT {columns} {rows} ORDER BY {position} LIMIT {int(limit)}", params
        # PostgreSQL: the key alone decides which entries are kept; their score and
        # reason are read from the kept ones only (a stored list is longer than the pool).
        _join, _key, score, reason_type, reason_key, _position = list_entries(
            db, "", value="recs_top.recs_value")
        columns = pool_columns(index, db.key_as_pk("recs_top.recs_key"), score,
                               db.reason(reason_type, reason_key))
        return (
            f"SELECT {columns} FROM (SELECT recs_entry.value AS recs_value, {key} AS recs_key"
            f" {rows} ORDER BY {position} LIMIT {int(limit)}) recs_top",
            params,
        )


def list_entries(db: Sql, items_sql: str, *, value: str = "recs_entry.value"
                 ) -> tuple[str, str, str, str, str, str]:
    """The entries of a stored list's JSON text as rows: the join, then their columns.

    Returns ``(join, key, score, reason type, reason key, position)`` SQL:
    ``json_array_elements`` on PostgreSQL, ``json_each`` on SQLite,
    ``JSON_TABLE`` on MariaDB and MySQL. A missing reason is NULL. On
    PostgreSQL and SQLite the columns are read from the entry's JSON
    ``value`` (``recs_entry.value``, or an entry selected by a subquery).
    """
    integer = db._int_type
    # The backend's own module, not ``vendor``: the SQL is the engine's, whatever the
    # connection is called.
    if "postgresql" in type(db.connection).__module__:
        return (
            f"CROSS JOIN LATERAL json_array_elements(CAST({items_sql} AS json))"
            " WITH ORDINALITY AS recs_entry(value, position)",
            f"({value} ->> 0)",
            f"CAST({value} ->> 1 AS double precision)",
            f"CAST({value} ->> 2 AS {integer})",
            f"({value} ->> 3)",
            "recs_entry.position",
        )
    if not is_mysql(db.connection):  # SQLite
        return (
            f", json_each({items_sql}) recs_entry",
            f"({value} ->> 0)",
            f"({value} ->> 1)",
            f"({value} ->> 2)",
            f"({value} ->> 3)",
            "recs_entry.key",
        )
    return (
        f", JSON_TABLE({items_sql}, '$[*]' COLUMNS(recs_position FOR ORDINALITY,"
        " recs_key VARCHAR(64) PATH '$[0]', recs_score DOUBLE PATH '$[1]',"
        " recs_reason_type INTEGER PATH '$[2]', recs_reason_key VARCHAR(64) PATH '$[3]'))"
        " recs_entry",
        text_sql(db.connection, "recs_entry.recs_key"),
        "recs_entry.recs_score",
        "recs_entry.recs_reason_type",
        text_sql(db.connection, "recs_entry.recs_reason_key"),
        "recs_entry.recs_position",
    )


@dataclass(eq=False)
class HistoryNeighbours(Source):
    """Neighbours of the visitor's recent items, scores summed.

    The reason of a candidate is the recent item it is most similar to. The
    recent items themselves are not proposed (the visitor has just seen them).
    """

    algorithm: str
    name: str = "history"
    explained = True

    def pool(self, db, scope, index, limit):
        a = "recs_hist"
        run_sql, run_params = db.active_run(self.algorithm)
        recent_sql, recent_params = scope.recent_keys(db)
        key = db.column(a, SimilarItem, "neighbour_key")
        base = (
            f"{db.column(a, SimilarItem, 'run')} = {run_sql}"
            f" AND {db.column(a, SimilarItem, 'item_type')} = %s"
            f" AND {db.column(a, SimilarItem, 'item_key')} IN ({recent_sql})"
            f" AND {db.column(a, SimilarItem, 'neighbour_type')} = %s"
            f" AND {key} NOT IN ({recent_sql})",
            [*run_params, scope.content_type_id, *recent_params, scope.content_type_id,
             *recent_params],
        )
        where, params = self._where(db, scope, base, key)
        totals = self._totals(db, a, where)
        return (
            f"SELECT {pool_columns(index, 'recs_pk', 'recs_total', db.reason('%s', 'recs_why'))}"
            f" FROM ({totals}) recs_hist_rows"
            f" ORDER BY recs_total DESC, recs_pk LIMIT {int(limit)}",
            [scope.content_type_id, *params],
        )

    @staticmethod
    def _totals(db: Sql, a: str, where: str) -> str:
        """``SELECT recs_pk, recs_total, recs_why`` of the rows ``where`` selects, per candidate.

        ``recs_total`` sums a candidate's similarities, ``recs_why`` is the
        recent item it is most similar to (any of them on a tie): one
        aggregation over the few hundred rows where the database can pick a
        row's column in it, window functions elsewhere.
        """
        candidate = db.key_as_pk(db.column(a, SimilarItem, "neighbour_key"))
        score = db.column(a, SimilarItem, "score")
        why = db.column(a, SimilarItem, "item_key")
        rank = db.column(a, SimilarItem, "rank")
        rows = f"FROM {db.table(SimilarItem)} {a} WHERE {where}"
        vendor = db.connection.vendor
        if vendor == "postgresql":
            # The key at the position of the highest score: no per-candidate
            # sort, which an ordered ARRAY_AGG costs (PostgreSQL < 16).
            best = f"(ARRAY_AGG({why}))[ARRAY_POSITION(ARRAY_AGG({score}), MAX({score}))]"
            return (
                f"SELECT {candidate} AS recs_pk, SUM({score}) AS recs_total, {best} AS recs_why"
                f" {rows} GROUP BY {candidate}"
            )
        if vendor == "sqlite":
            # With a single MAX() in the SELECT, a bare column comes from its row.
            return (
                f"SELECT {candidate} AS recs_pk, SUM({score}) AS recs_total, {why} AS recs_why,"
                f" MAX({score}) AS recs_best {rows} GROUP BY {candidate}"
            )
        # A candidate's rows partitioned by primary key, best first.
        return (
            f"SELECT recs_pk, recs_total, recs_why FROM (SELECT {candidate} AS recs_pk,"
            f" {why} AS recs_why, SUM({score}) OVER (PARTITION BY {candidate}) AS recs_total,"
            f" ROW_NUMBER() OVER (PARTITION BY {candidate} ORDER BY {score} DESC, {rank})"
            f" AS recs_nth {rows}) recs_ranked WHERE recs_nth = 1"
        )


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


@dataclass(eq=False)
class Popular(Source):
    """Stored popular items of the active popular run.

    With ``within_category_of`` (an item pk) only those of that item's
    category (the ``category`` source).
    """

    algorithm: str
    within_category_of: object = None

    @property
    def name(self):
        return "category" if self.within_category_of is not None else "popular"

    def pool(self, db, scope, index, limit):
        a = "recs_pop"
        key = db.column(a, PopularItem, "item_key")
        run_sql, run_params = db.active_run(self.algorithm)
        base = [(
            f"{db.column(a, PopularItem, 'run')} = {run_sql}"
            f" AND {db.column(a, PopularItem, 'item_type')} = %s",
            [*run_params, scope.content_type_id],
        )]
        order = "rank"
        if self.within_category_of is not None:
            # The run stored each popular item's category and its rank there:
            # one range of the (run, type, category, category rank) index.
            source, params = scope.category_of(db, "%s")
            source_pk = scope.model._meta.pk.get_db_prep_value(self.within_category_of, db.connection)
            base.append((f"{db.column(a, PopularItem, 'category')} = {source}",
                         [*params, source_pk]))
            order = "category_rank"
        where = self._where(db, scope, join(base, " AND "), key)
        return stored_pool(
            db, PopularItem, a, where, index, limit, key="item_key", reason=db.no_reason(),
            order=order,
        )


@dataclass(eq=False)
class RecentPopular(Source):
    """Popularity computed from the latest interactions, while no popular run is active.

    Each of the latest RECENT_INTERACTIONS interactions counts its weight
    times ``2 ** -age/half_life`` (HALF_LIFE_DAYS); candidates are ordered by
    that sum. It shares the name ``popular`` with :class:`Popular`, which it
    stands in for.
    """

    algorithm: str
    name = "popular"
    stand_in = True

    def pool(self, db, scope, index, limit):
        w = "recs_win"
        # The latest interactions, newest first along the primary key. A list
        # reads this pool only while its algorithm has no active run.
        columns = ", ".join(
            db.column("recs_evt", Interaction, name)
            for name in ("item_type", "item_key", "weight", "timestamp")
        )
        window = (
            f"SELECT {columns} FROM {db.table(Interaction)} recs_evt"
            f" ORDER BY {db.column('recs_evt', Interaction, 'id')} DESC"
            f" LIMIT {RECENT_INTERACTIONS}"
        )
        key = db.column(w, Interaction, "item_key")
        base = (f"{db.column(w, Interaction, 'item_type')} = %s", [scope.content_type_id])
        where, params = self._where(db, scope, base, key)
        weight, weight_params = decay_sql(db, w, half_life_days=recs_settings.HALF_LIFE_DAYS)
        return (
            f"SELECT {pool_columns(index, db.key_as_pk(key), f'SUM({weight})', db.no_reason())}"
            f" FROM ({window}) {w} WHERE {where}"
            f" GROUP BY {key} ORDER BY recs_score DESC, candidate LIMIT {int(limit)}",
            [*weight_params, *params],
        )
