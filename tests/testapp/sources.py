"""Weights and predicates the test shop names in SOURCES as dotted paths."""


def review_weight(review) -> float:
    """Stars above the middle count double: 1..5 stars -> 0.5, 1, 1.5, 3, 4.5."""
    return {1: 0.5, 2: 1.0, 3: 1.5, 4: 3.0, 5: 4.5}[review.stars]


def is_positive_review(review, created) -> bool:
    return review.stars >= 4


def is_paid_line(line, created) -> bool:
    return line.order.paid


def negative_weight(instance) -> float:
    return -1.0


def broken_weight(instance) -> float:
    raise RuntimeError("the weight function failed")


NOT_CALLABLE = 3


def parent_product(line):
    """The product of the variant a line names; None (skip) when the variant is gone."""
    return None if line.variant is None else line.variant.product


def line_order(line):
    """Not an item: a source whose item function is wrong."""
    return line.order


def draft_product(line):
    """An unsaved product."""
    from .models import Product

    return Product(name="draft")


def line_value(line) -> float:
    """An order line's worth: its product's price times its quantity."""
    return float(line.product.price) * line.quantity
