"""Datasets shared by the benchmarks (and by tests that want real data).

- :func:`synthetic_power_law`: a users x items implicit-feedback matrix with
  power-law popularity on both sides (a few heavy users and best-sellers, a
  long tail of both), built from a fixed seed.
- :func:`online_retail`: the UCI Online Retail purchases in ../shared/data
  (customers x stock codes, weight = quantity, time = invoice date).
"""

from __future__ import annotations

import csv
import gzip
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """../shared/data beside the repository (DJANGO_RECS_SHARED_DATA overrides)."""
    override = os.environ.get("DJANGO_RECS_SHARED_DATA")
    return Path(override) if override else ROOT.parent / "shared" / "data"


def synthetic_power_law(
    n_users: int = 100_000,
    n_items: int = 50_000,
    nnz: int = 5_000_000,
    *,
    user_exponent: float = 0.5,
    item_exponent: float = 0.8,
    seed: int = 42,
    dtype=np.float32,
) -> sp.csr_matrix:
    """A random implicit-feedback matrix with power-law users and items.

    Row and column i are drawn with probability proportional to
    (i + 1) ** -exponent (then shuffled; one exponent per side), so activity and popularity are
    heavy-tailed as in a real shop. Values are purchase-like counts 1..5.
    Exactly ``nnz`` distinct (user, item) pairs.
    """
    rng = np.random.default_rng(seed)
    if nnz > n_users * n_items:
        raise ValueError("nnz exceeds n_users * n_items")

    def weights(n: int, exponent: float) -> np.ndarray:
        w = (np.arange(1, n + 1, dtype=np.float64)) ** -exponent
        rng.shuffle(w)
        return w / w.sum()

    user_p, item_p = weights(n_users, user_exponent), weights(n_items, item_exponent)
    keys = np.empty(0, dtype=np.int64)
    while keys.size < nnz:
        draw = int((nnz - keys.size) * 1.3) + 1000
        users = rng.choice(n_users, size=draw, p=user_p)
        items = rng.choice(n_items, size=draw, p=item_p)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
    keys = rng.permutation(keys)[:nnz]
    rows, cols = np.divmod(keys, n_items)
    values = rng.integers(1, 6, size=nnz).astype(dtype)
    return sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items), dtype=dtype)


@dataclass(frozen=True)
class OnlineRetail:
    """The purchases of the Online Retail data set, one entry per invoice line.

    Only lines with a customer and a positive quantity (no cancellations).
    ``customers`` and ``stock_codes`` map row and column indexes to the
    original identifiers.
    """

    user: np.ndarray  # int32 row index per line
    item: np.ndarray  # int32 column index per line
    quantity: np.ndarray  # float32
    timestamp: np.ndarray  # datetime64[s]
    customers: np.ndarray  # CustomerID per row index
    stock_codes: np.ndarray  # StockCode per column index
    descriptions: dict  # StockCode -> description
    prices: dict  # StockCode -> last unit price

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customers), len(self.stock_codes)

    def matrix(self, mask: np.ndarray | None = None, dtype=np.float32) -> sp.csr_matrix:
        """Customers x stock codes, quantities summed (optionally of masked lines)."""
        m = slice(None) if mask is None else mask
        return sp.csr_matrix(
            (self.quantity[m].astype(dtype), (self.user[m], self.item[m])),
            shape=self.shape,
            dtype=dtype,
        )

    def temporal_split(self, cutoff: str = "2011-10-01") -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(train, test): lines before the cut-off, and lines on or after it."""
        before = self.timestamp < np.datetime64(cutoff)
        return self.matrix(before), self.matrix(~before)


@cache
def online_retail(path: str | None = None) -> OnlineRetail:
    """Load the Online Retail purchases (about 400,000 lines, a second or two)."""
    file = Path(path) if path else shared_data_dir() / "online-retail" / "online_retail.csv.gz"
    customers, codes, quantities, times = [], [], [], []
    descriptions: dict[str, str] = {}
    prices: dict[str, float] = {}
    with gzip.open(file, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            code = row["StockCode"]
            if row["Description"]:
                descriptions.setdefault(code, row["Description"].strip())
            quantity = int(row["Quantity"])
            if not row["CustomerID"] or quantity <= 0 or row["InvoiceNo"].startswith("C"):
                continue
            prices[code] = float(row["UnitPrice"])
            customers.append(int(float(row["CustomerID"])))
            codes.append(code)
            quantities.append(quantity)
            times.append(datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S"))
    customer_ids, user = np.unique(np.array(customers), return_inverse=True)
    stock_codes, item = np.unique(np.array(codes), return_inverse=True)
    return OnlineRetail(
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        quantity=np.array(quantities, dtype=np.float32),
        timestamp=np.array(times, dtype="datetime64[s]"),
        customers=customer_ids,
        stock_codes=stock_codes,
        descriptions=descriptions,
        prices=prices,
    )
