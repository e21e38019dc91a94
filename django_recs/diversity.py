"""Diversity: at most a few items of one category in one list.

Candidates are numbered within their category in ranking order (a SQL
window, ``ROW_NUMBER() OVER (PARTITION BY category ORDER BY ...)``) and those
past the cap are dropped, so the list fills from further down the ranking
instead of showing six variants of one thing. Items without a category are
never capped: each is its own partition.
"""

from __future__ import annotations

from django.db.models import Case, F, QuerySet, When, Window
from django.db.models.functions import RowNumber


def cap_per_category(candidates: QuerySet, lookup: str, cap: int, order_by: list) -> QuerySet:
    """``candidates`` keeping at most ``cap`` items per value of ``lookup``.

    Parameters
    ----------
    candidates : QuerySet
        Items carrying the annotations ``order_by`` refers to.
    lookup : str
        ORM path of the category (``"category"``, ``"brand__category"``).
    cap : int
        Items kept per category, >= 1.
    order_by : list
        The list's ranking; the first ``cap`` items of each category in this
        order are kept.
    """
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"MAX_PER_CATEGORY must be a positive integer or None, got {cap!r}")
    uncategorised_alone = Case(When(**{f"{lookup}__isnull": True}, then=F("pk")), default=None)
    return candidates.annotate(
        recs_category_rank=Window(
            RowNumber(), partition_by=[F(lookup), uncategorised_alone], order_by=order_by
        )
    ).filter(recs_category_rank__lte=cap)
