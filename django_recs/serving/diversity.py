"""Diversity: at most a few items of one category in one list.

Candidates are taken in ranking order and those past the cap in their
category are dropped, so the list fills from further down the ranking
instead of showing six variants of one thing. Items without a category are
never capped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def cap_per_category(ranked: Iterable[T], cap: int, key: Callable[[T], object]) -> list[T]:
    """The items of ``ranked`` that are among the first ``cap`` of their category.

    Parameters
    ----------
    ranked : iterable
        Items, best first.
    cap : int
        Items kept per category, >= 1.
    key : callable
        An item's category; None means "no category" (never capped).

    Returns
    -------
    list
        The kept items, in their original order.
    """
    check_cap(cap)
    kept, counts = [], {}
    for item in ranked:
        category = key(item)
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
            if counts[category] > cap:
                continue
        kept.append(item)
    return kept


def check_cap(cap) -> int:
    """``cap`` when it is a positive integer; ValueError otherwise."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"MAX_PER_CATEGORY must be a positive integer or None, got {cap!r}")
    return cap
