"""Diversity: at most a few items of one category in one list.

Candidates are numbered within their category in ranking order (a SQL
window, ``ROW_NUMBER() OVER (PARTITION BY category ORDER BY ...)``) and those
past the cap are dropped, so the list fills from further down the ranking
instead of showing six variants of one thing. Items without a category are
never capped: each is its own partition.
"""

from __future__ import annotations


def cap_per_category_sql(ranked_sql: str, category_table_sql: str, cap: int) -> str:
    """SQL keeping at most ``cap`` rows per category of ``ranked_sql``.

    Parameters
    ----------
    ranked_sql : str
        ``SELECT candidate, recs_key``: candidate item pks with their order key
        (lower first).
    category_table_sql : str
        ``SELECT recs_pk, recs_cat`` of every item (see
        :meth:`django_recs.fallbacks.ListScope.category_table`).
    cap : int
        Items kept per category, >= 1.

    Returns
    -------
    str
        ``SELECT candidate, recs_key`` of the kept rows (unordered).
    """
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"MAX_PER_CATEGORY must be a positive integer or None, got {cap!r}")
    return (
        "SELECT candidate, recs_key FROM (SELECT recs_best.candidate, recs_best.recs_key,"
        " ROW_NUMBER() OVER (PARTITION BY recs_cat.recs_cat, CASE WHEN recs_cat.recs_cat"
        " IS NULL THEN recs_best.candidate END ORDER BY recs_best.recs_key,"
        f" recs_best.candidate) AS recs_in_category FROM ({ranked_sql}) recs_best"
        f" LEFT JOIN ({category_table_sql}) recs_cat ON recs_cat.recs_pk = recs_best.candidate)"
        f" recs_numbered WHERE recs_in_category <= {cap}"
    )
