"""Recovery of planted neighbours: which algorithms find the item groups a synthetic shop was made of.

The data: ``--groups`` groups of ``--items-per-group`` items; every user
belongs to one group and buys ``--basket`` distinct items of it, plus
``--noise`` items drawn from the whole catalogue with power-law popularity
(best-sellers everybody buys, which pull naive similarities towards them).
Fixed seed. For each algorithm:

- neighbour recovery@10: the share of each item's 10 stored similar items
  that belong to its own group (1 = every group found; a random neighbour
  scores about 1/groups), averaged over items with neighbours;
- list recovery@10: the share of each user's 10 recommended items that belong
  to the user's group, averaged over users with a list.

    python benchmarks/eval_planted.py [--groups 50] [--items-per-group 40] [--users 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_recs.algorithms import ALS, EASE, ItemKNN, RP3beta
from django_recs.matrix import InteractionMatrix

ALGORITHMS = [
    ("ItemKNN cosine", ItemKNN, {"k": 10}),
    ("ItemKNN conditional", ItemKNN, {"k": 10, "metric": "conditional"}),
    ("RP3beta", RP3beta, {"k": 10}),
    ("EASE", EASE, {"k": 10}),
    ("ALS (factor cosine)", ALS, {"factors": 64, "similar_items": 10}),
    ("iALS (factor cosine)", ALS, {"factors": 64, "similar_items": 10, "regularization": 0.3,
                                   "regularization_exponent": 1.0, "alpha": 5.0}),
]


def planted(groups: int, per_group: int, users: int, basket: int, noise: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_items = groups * per_group
    item_group = np.repeat(np.arange(groups), per_group)
    user_group = rng.integers(groups, size=users)
    popularity = np.arange(1, n_items + 1, dtype=float) ** -1.0
    popularity = rng.permutation(popularity / popularity.sum())
    rows, cols = [], []
    for user, group in enumerate(user_group):
        own = group * per_group + rng.choice(per_group, size=basket, replace=False)
        extra = rng.choice(n_items, size=noise, replace=False, p=popularity)
        items = np.unique(np.concatenate([own, extra]))
        rows.append(np.full(len(items), user))
        cols.append(items)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    weights = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                            shape=(users, n_items))
    return InteractionMatrix.from_csr(weights, weights), item_group, user_group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--items-per-group", type=int, default=40)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--basket", type=int, default=6)
    parser.add_argument("--noise", type=int, default=3)
    args = parser.parse_args(argv)
    matrix, item_group, user_group = planted(args.groups, args.items_per_group, args.users,
                                             args.basket, args.noise)
    print(f"{args.users:,} users x {matrix.n_items:,} items in {args.groups} groups, "
          f"{matrix.nnz:,} interactions ({args.basket} of the user's group + {args.noise} "
          "popularity-drawn each); chance level = "
          f"{1 / args.groups:.3f}")
    header = ("algorithm", "neighbour recovery@10", "list recovery@10", "fit s")
    rows = []
    for label, cls, params in ALGORITHMS:
        started = time.perf_counter()
        fit = cls(**params).fit(matrix, n_recommendations=10)
        seconds = time.perf_counter() - started
        similar = fit.similar.tocsr()
        lengths = np.diff(similar.indptr)
        same = item_group[similar.indices] == np.repeat(item_group, lengths)
        per_item = np.add.reduceat(same, similar.indptr[:-1][lengths > 0]) / lengths[lengths > 0]
        listed = fit.recommended >= 0
        in_group = (item_group[np.maximum(fit.recommended, 0)] == user_group[:, None]) & listed
        has = listed.any(axis=1)
        per_user = in_group.sum(axis=1)[has] / listed.sum(axis=1)[has]
        rows.append((label, f"{per_item.mean():.3f}", f"{per_user.mean():.3f}", f"{seconds:.1f}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                    enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in
                        enumerate(zip(row, widths))))
    print(f"\n{platform.machine()}, {os.cpu_count()} cores (shared: times indicative).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
