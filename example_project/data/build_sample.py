"""Build online_retail_sample.csv.gz, the example shop's data, from the full data set.

Keeps the purchases (no cancellations, a known customer, a positive
quantity) of the PRODUCTS stock codes bought by the most customers, by the
CUSTOMERS most active customers among them: a catalog and an order history
that fit in a small file and load in seconds. See README.md for the source
and its licence.

    python example_project/data/build_sample.py [path/to/online_retail.csv.gz]
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = HERE.parents[2] / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
OUT = HERE / "online_retail_sample.csv.gz"
PRODUCTS = 500
CUSTOMERS = 800
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"]


def main(path: Path = FULL) -> None:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = [
            row for row in csv.DictReader(handle)
            if row["CustomerID"] and int(row["Quantity"]) > 0
            and not row["InvoiceNo"].startswith("C") and float(row["UnitPrice"]) > 0
            and row["StockCode"][:1].isdigit()  # not POST, M, DOT, BANK CHARGES ...
        ]
    buyers = defaultdict(set)
    for row in rows:
        buyers[row["StockCode"]].add(row["CustomerID"])
    products = {code for code, _ in Counter({c: len(b) for c, b in buyers.items()}).most_common(PRODUCTS)}
    rows = [row for row in rows if row["StockCode"] in products]
    activity = Counter(row["CustomerID"] for row in rows)
    customers = {customer for customer, _ in activity.most_common(CUSTOMERS)}
    rows = [row for row in rows if row["CustomerID"] in customers]
    with gzip.open(OUT, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows({key: row[key] for key in COLUMNS} for row in rows)
    print(f"{OUT.name}: {len(rows):,} lines, {len(products)} products, {len(customers)} customers, "
          f"{OUT.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else FULL)
