"""The basket: product id -> quantity, kept in the visitor's session."""

from __future__ import annotations

from .models import Product


class Basket:
    KEY = "basket"

    def __init__(self, request):
        self.session = request.session

    @property
    def lines(self) -> dict[str, int]:
        return self.session.get(self.KEY, {})

    def add(self, product: Product, quantity: int = 1) -> None:
        lines = dict(self.lines)
        lines[str(product.pk)] = lines.get(str(product.pk), 0) + quantity
        self.session[self.KEY] = lines

    def clear(self) -> None:
        self.session.pop(self.KEY, None)

    def count(self) -> int:
        return sum(self.lines.values())

    def items(self) -> list[tuple[Product, int]]:
        products = Product.objects.in_bulk([int(pk) for pk in self.lines])
        return [(products[int(pk)], qty) for pk, qty in self.lines.items() if int(pk) in products]
