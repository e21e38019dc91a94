"""Loading the Online Retail sample (data/online_retail_sample.csv.gz) into the shop.

Products come from the stock codes (name, price, a kind read from the name),
customers become demo accounts (``customer<CustomerID>``, password ``demo``)
and invoices become orders. Rows are inserted in bulk, which sends no
signals: the purchases reach django_recs through the backfill
(``manage.py recs_import --from-sources``), as they would in a shop that
installs django_recs after years of orders.
"""

from __future__ import annotations

import csv
import datetime
import gzip
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from .models import Order, OrderLine, Product

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "online_retail_sample.csv.gz"
DEMO_PASSWORD = "demo"

#: A product's kind is the first of these words in its name ("LUNCH BAG RED" -> "Bag").
KINDS = [
    "BAG", "MUG", "CUP", "CANDLE", "HOLDER", "LANTERN", "LIGHT", "CARD", "SIGN", "BOX", "TIN",
    "CUSHION", "CLOCK", "FRAME", "BOTTLE", "BUNTING", "GARLAND", "DECORATION", "ORNAMENT",
    "STICKER", "NAPKIN", "PLATE", "BOWL", "TEA", "CAKE", "BAKING", "PEN", "NOTEBOOK", "WRAP",
    "JAR", "DOORSTOP", "PURSE", "UMBRELLA", "APRON", "BELL", "HEART", "STAR",
]


def kind_of(description: str) -> str | None:
    words = description.upper().replace(",", " ").split()
    for kind in KINDS:
        if kind in words or f"{kind}S" in words:
            return kind.title()
    return None


def load_sample(path: Path = SAMPLE) -> dict[str, int]:
    """Create products, customers and orders from the sample; returns counts."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    User = get_user_model()
    with transaction.atomic():
        names, prices = {}, {}
        for row in rows:
            names.setdefault(row["StockCode"], row["Description"].strip())
            prices[row["StockCode"]] = row["UnitPrice"]
        Product.objects.bulk_create(
            Product(
                stock_code=code,
                name=names[code].title(),
                description=(
                    f"{names[code].capitalize()}. From the catalogue of a UK online gift "
                    f"retailer, 2010–2011 (stock code {code})."
                ),
                price=Decimal(prices[code]).quantize(Decimal("0.01")),
                category=kind_of(names[code]),
            )
            for code in sorted(names)
        )
        products = dict(Product.objects.values_list("stock_code", "pk"))
        password = make_password(DEMO_PASSWORD)
        customer_ids = sorted({row["CustomerID"] for row in rows}, key=lambda c: int(float(c)))
        User.objects.bulk_create(
            User(username=f"customer{int(float(c))}", password=password) for c in customer_ids
        )
        users = dict(User.objects.filter(username__startswith="customer").values_list("username", "pk"))
        invoices: dict[str, tuple[int, datetime.datetime]] = {}
        for row in rows:
            when = datetime.datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
            invoices.setdefault(
                row["InvoiceNo"],
                (users[f"customer{int(float(row['CustomerID']))}"], when.replace(tzinfo=datetime.timezone.utc)),
            )
        Order.objects.bulk_create(
            Order(invoice=invoice, customer_id=user, created=created)
            for invoice, (user, created) in invoices.items()
        )
        orders = dict(Order.objects.values_list("invoice", "pk"))
        OrderLine.objects.bulk_create(
            (
                OrderLine(
                    order_id=orders[row["InvoiceNo"]],
                    product_id=products[row["StockCode"]],
                    quantity=int(row["Quantity"]),
                    price=Decimal(row["UnitPrice"]).quantize(Decimal("0.01")),
                )
                for row in rows
            ),
            batch_size=5000,
        )
    return {"products": len(products), "customers": len(users), "orders": len(orders),
            "lines": len(rows)}
