"""Reading a list: one statement for its candidates, with their item rows.

A statement reads the pools of some of a list's sources (see
:mod:`django_recs.fallbacks`) at once and joins each candidate to its item
row and, for explained sources, to the row of the item that explains it::

    SELECT c.recs_source, c.candidate, c.recs_score, c.recs_reason_type,
           c.recs_reason_key, item.*, reason.*
    FROM (SELECT * FROM (<pool 1> UNION ALL <pool 2> ...) LIMIT <all pools>) c
    JOIN item ON item.pk = c.candidate
    LEFT JOIN item reason ON reason.pk = <the reason key, when of this model>
    UNION ALL SELECT -1, NULL, run.id, NULL, run.algorithm, NULL ... FROM run WHERE ...

(``FROM (<pool>) c`` for a single pool). The last branch, when asked for,
reports the active runs of some algorithms.

Python then picks the list (:func:`pick`): by source, then descending score;
an item proposed by several sources counts for the first; at most ``cap``
items per category. Each pool is at most ``n`` rows (``5 n`` under a
category cap), so a statement reads a few dozen rows at most, and instances
are built for the ``n`` picked ones only (:func:`load_items`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, models

from ..items import item_root, items_by_key
from ..models import Run
from .fallbacks import ListScope, Source, Sql, join, per_connection

#: Rows (at most) a list of ``n`` may read from a pool when a category cap may
#: drop candidates: each source then offers this many times ``n``.
DIVERSITY_POOL_FACTOR = 5


@dataclass
class Candidate:
    """One row of a pool: an item proposed by a source, with its score and reason."""

    source: int
    pk: object
    score: float
    reason_type: int | None = None
    reason_key: str | None = None
    category: object = None
    item_row: tuple | None = None
    reason_row: tuple | None = None
    reason: models.Model | None = None


def read_candidates(
    using: str,
    scope: ListScope,
    sources: list[tuple[int, Source]],
    pool_limit: int,
    *,
    with_items: bool,
    with_categories: bool = False,
    report_runs: tuple[str, ...] = (),
    runs: dict | None = None,
) -> tuple[list[Candidate], dict]:
    """The candidates of ``sources`` ((index in the chain, source) pairs), in one statement.

    ``with_items`` loads each candidate's item row too (the caller then
    needs no query of its own); reasons of the list's model always come with
    the rows, reasons of other models with one query per model.

    ``report_runs`` (algorithms) adds their active runs to the statement, as
    rows of their own: the second value returned maps each to its run's id,
    or None. ``runs``, such a mapping, writes those runs as constants.
    """
    connection = connections[using]
    model = scope.model
    db = Sql.of(connection, model)
    if runs is not None:
        db = db.knowing_runs(runs)
    reader = ItemColumns.of(model, connection)
    explained = any(source.explained for _, source in sources)

    pools = [source.pool(db, scope, index, pool_limit) for index, source in sources]
    if len(pools) == 1:  # its own LIMIT bounds it
        (pools_sql, pool_params), = pools
    else:
        # The constant LIMIT around the pools (never reached) tells the planner
        # how few rows come out, so each one is joined by primary key.
        union_sql, pool_params = join(
            [(f"SELECT * FROM ({sql}) recs_pool{i}", p) for i, (sql, p) in enumerate(pools)],
            " UNION ALL ",
        )
        pools_sql = f"SELECT * FROM ({union_sql}) recs_union LIMIT {len(pools) * int(pool_limit)}"
    select = ["c.recs_source, c.candidate, c.recs_score, c.recs_reason_type, c.recs_reason_key"]
    if with_categories:
        category, _ = scope.category_of(db, "c.candidate")
        select.append(category)
    joins = [
        f"INNER JOIN {db.table(model)} recs_item"
        f" ON recs_item.{db.quote(model._meta.pk.column)} = c.candidate"
    ]
    if with_items:
        select.append(reader.select_list("recs_item"))
        joins += reader.parent_joins("recs_item", "INNER")
    join_params: list = []
    if explained:
        select.append(reader.select_list("recs_why"))
        joins.append(
            f"LEFT JOIN {db.table(model)} recs_why ON recs_why.{db.quote(model._meta.pk.column)}"
            f" = CASE WHEN c.recs_reason_type = %s THEN {db.key_as_pk('c.recs_reason_key')} END"
        )
        joins += reader.parent_joins("recs_why", "LEFT")
        join_params.append(scope.content_type_id)
    sql = f"SELECT {', '.join(select)} FROM ({pools_sql}) c {' '.join(joins)}"
    params = [*pool_params, *join_params]
    if report_runs:
        # Rows of their own (source -1): the run's id as the score, the
        # algorithm as the reason key, NULL for every other column.
        state_sql, state_params = db.active_runs("recs_state", *report_runs)
        others = with_categories + len(reader.attnames) * (with_items + explained)
        sql += (
            f" UNION ALL SELECT -1, NULL, {db.column('recs_state', Run, 'id')}, NULL,"
            f" {db.column('recs_state', Run, 'algorithm')}{', NULL' * others} {state_sql}"
        )
        params += state_params
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    width = len(reader.attnames)
    start = 6 if with_categories else 5
    candidates = []
    reported = dict.fromkeys(report_runs)
    for row in rows:
        if row[0] == -1:
            reported[row[4]] = int(row[2])
            continue
        at = start
        found = Candidate(
            source=row[0],
            pk=reader.convert_pk(row[1], connection),
            score=row[2],
            reason_type=row[3],
            reason_key=row[4],
            category=row[5] if with_categories else None,
        )
        # Instances are built for the picked candidates only (see load_items).
        if with_items:
            found.item_row = row[at:at + width]
            at += width
        if explained and row[at + reader.pk_index] is not None:
            found.reason_row = row[at:at + width]
        candidates.append(found)
    return candidates, reported


def statement_cursor(connection):
    """The cursor a list's statement runs on: a prepared one where the connection allows it.

    Django leaves prepared statements off on PostgreSQL (connection poolers
    in transaction mode lose them) and turns them on with
    ``OPTIONS["prepare_threshold"]``. Its default cursor binds parameters
    on the client, which never prepares, so where the threshold is set the
    statement runs on a cursor binding them on the server: after that many
    runs on one connection, PostgreSQL keeps the statement parsed and
    planned. The ORM's own queries keep their cursor.
    """
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        if getattr(raw, "prepare_threshold", None) is not None:
            from django.db.backends.postgresql.base import ServerBindingCursor

            # Django's cursor() wraps whatever the psycopg connection's
            # factory makes (debug logging, time zone); a connection belongs
            # to one thread, so swapping the factory for this call is safe.
            factory, raw.cursor_factory = raw.cursor_factory, ServerBindingCursor
            try:
                return connection.cursor()
            finally:
                raw.cursor_factory = factory
    return connection.cursor()


def pick(candidates: list[Candidate], n: int, cap: int | None = None) -> list[Candidate]:
    """The ``n`` best candidates: by source, descending score, then primary key.

    An item proposed by several sources counts for the first; with ``cap``,
    at most that many items of one category (items without a category are
    never capped), the list filling from further down instead.
    """
    from .diversity import cap_per_category

    best = sorted(candidates, key=lambda c: (c.source, -c.score, c.pk))
    seen: set = set()
    unique = []
    for candidate in best:
        if candidate.pk not in seen:
            seen.add(candidate.pk)
            unique.append(candidate)
    if cap:
        unique = cap_per_category(unique, cap, key=lambda c: c.category)
    return unique[:n]


def load_items(chosen: list[Candidate], scope: ListScope, using: str,
               model: type[models.Model] | None = None) -> list:
    """The chosen candidates' items (None where the statement read no row), reasons set.

    Items are instances of ``model`` (the list queryset's, a proxy of
    ``scope.model`` maybe), reasons of ``scope.model``.
    """
    connection = connections[using]
    reader = ItemColumns.of(scope.model, connection)
    items = []
    reasons: dict = {}  # one instance per reason: a visitor's few recent items explain many
    for c in chosen:
        if c.reason is None and c.reason_row is not None:
            key = c.reason_row[reader.pk_index]
            if key not in reasons:
                reasons[key] = reader.build(using, c.reason_row, connection)
            c.reason = reasons[key]
        items.append(None if c.item_row is None
                     else reader.build(using, c.item_row, connection, model=model))
    if any(c.reason_key and c.reason is None for c in chosen):
        attach_foreign_reasons(chosen, scope, using)
    return items


def attach_foreign_reasons(candidates: list[Candidate], scope: ListScope, using: str) -> None:
    """Load the reasons the statement did not read: one query per model they are of.

    Those are items of another model than the list's, and, for a list of a
    multi-table child, items of its family that are not in its table (a
    Product explaining a Book): see :func:`django_recs.items.items_by_key`.
    A reason of the list's own model that was not read is deleted.
    """
    own_type = scope.content_type_id
    family_of_child = item_root(scope.model) is not scope.model
    wanted: dict[int, set[str]] = {}
    for c in candidates:
        if c.reason is None and c.reason_key and c.reason_type and (
                c.reason_type != own_type or family_of_child):
            wanted.setdefault(c.reason_type, set()).add(c.reason_key)
    found: dict[tuple[int, str], models.Model] = {}
    for type_id, keys in wanted.items():
        # The statement looked for the list's own family in the list model's table.
        looked_in = scope.model if type_id == own_type else None
        for key, reason in items_by_key(type_id, keys, using=using, manager="_base_manager",
                                        known_not=looked_in).items():
            found[(type_id, key)] = reason
    for c in candidates:
        if c.reason is None and c.reason_key:
            c.reason = found.get((c.reason_type, c.reason_key))


# --- item rows ------------------------------------------------------------------------------


class ItemColumns:
    """An item model's columns in a hand-written SELECT, and instances built from them.

    A multi-table child's columns are in its own table and its parents':
    each parent is joined by its primary key to the link column of its
    child (:meth:`parent_joins`), so the statement selects exactly the
    columns the ORM would. Values go through the same converters as in a
    queryset (the database backend's, then the field's), so instances equal
    those the ORM loads.
    """

    @classmethod
    def of(cls, model: type[models.Model], connection) -> ItemColumns:
        """The (cached) columns of ``model`` for ``connection``."""
        return per_connection(connection, (cls, model), lambda: cls(model, connection))

    def __init__(self, model: type[models.Model], connection):
        self.model = model
        quote = connection.ops.quote_name
        fields = model._meta.concrete_fields
        self._suffixes, self._links = _parent_tables(model, quote)
        self.attnames = [f.attname for f in fields]
        self._columns = [
            (self._suffixes[f.model._meta.concrete_model], quote(f.column)) for f in fields
        ]
        self.pk_index = list(fields).index(model._meta.pk)
        self._converters = []
        for i, field in enumerate(fields):
            col = field.get_col(model._meta.db_table)
            funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if funcs:
                self._converters.append((i, funcs, col))
        self._pk_converters = next(
            ((funcs, col) for i, funcs, col in self._converters if i == self.pk_index), None
        )

    def select_list(self, alias: str) -> str:
        """The columns of the row of ``alias`` (and of its parents' rows), in field order."""
        return ", ".join(f"{alias}{suffix}.{column}" for suffix, column in self._columns)

    def parent_joins(self, alias: str, kind: str) -> list[str]:
        """``{kind} JOIN`` of each parent's row to the row of ``alias`` (none for a plain model).

        ``INNER`` for the items, ``LEFT`` for the reasons, whose row may be missing.
        """
        return [
            f"{kind} JOIN {table} {alias}{suffix} ON {alias}{suffix}.{pk_column}"
            f" = {alias}{child_suffix}.{link_column}"
            for table, suffix, pk_column, child_suffix, link_column in self._links
        ]

    def convert_pk(self, value, connection):
        if self._pk_converters is not None and value is not None:
            funcs, col = self._pk_converters
            for func in funcs:
                value = func(value, col, connection)
        return value

    def build(self, using: str, values, connection,
              model: type[models.Model] | None = None) -> models.Model:
        """An instance of ``model`` (default: the columns' model, or a proxy of it)."""
        values = list(values)
        for i, funcs, col in self._converters:
            value = values[i]
            for func in funcs:
                value = func(value, col, connection)
            values[i] = value
        return (model or self.model).from_db(using, self.attnames, values)


def _parent_tables(model: type[models.Model], quote) -> tuple[dict, list[tuple]]:
    """Alias suffixes of ``model``'s table ("") and its parents' ("_p1" ...), and their joins.

    Each join is (quoted table, suffix, quoted primary key column, the
    child's suffix, the child's quoted link column), parents after their
    children, so every join names an alias already joined.
    """
    suffixes = {model: ""}
    links = []
    pending = [model]
    while pending:
        child = pending.pop(0)
        for parent, link in child._meta.parents.items():
            parent = parent._meta.concrete_model
            if parent in suffixes or link is None:
                continue
            suffixes[parent] = f"_p{len(suffixes)}"
            links.append((quote(parent._meta.db_table), suffixes[parent],
                          quote(link.target_field.column), suffixes[child], quote(link.column)))
            pending.append(parent)
    return suffixes, links
