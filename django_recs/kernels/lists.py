"""Stored lists as JSON text, many users at once (the "lists" result layout).

A user's list is ``[["key",score,reason_type,"reason_key"],...]`` best
first (``["key",score]`` where the reason is unknown); scores are written
with 7 significant digits. The compiled kernel (``csrc/_lists.pyx``) writes
every user's list into one buffer in parallel; each item's fragments are
encoded once by the caller.
"""

from __future__ import annotations

import numpy as np

from ._native import native_module
from ._reference import lists as reference
from ._threads import resolve_num_threads

__all__ = ["encode_lists", "interleave_rows"]


def encode_lists(
    recommended,
    scores,
    item_fragments: list[bytes],
    reason_fragments: list[bytes],
    *,
    reasons=None,
    keep=None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's entries as the text of one JSON list, in one buffer.

    Parameters
    ----------
    recommended : int array, shape (n_users, n)
        Item indices best first, -1 = padding.
    scores : float array, shape (n_users, n)
    item_fragments : list of n_items bytes
        Item i's entry opening, with its leading comma: ``b',["12",'``.
    reason_fragments : list of n_items + 1 bytes
        Item i's entry closing as a reason: ``b',7,"12"]'``; the last one
        closes an entry without a reason (``b']'``).
    reasons : int array, shape (n_users, n), optional
        The reason item of each entry, -1 = unknown.
    keep : bool array, shape (n_items,), optional
        Only entries of these items are written (others are skipped).

    Returns
    -------
    (buffer uint8, offsets int64 (n_users + 1,), lengths int64 (n_users,)):
    user u's text is ``buffer[offsets[u]:offsets[u + 1]]`` (``[]`` without
    entries), holding ``lengths[u]`` entries.
    """
    recommended = np.ascontiguousarray(recommended, dtype=np.int64)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be 2-D (users x n), got shape {recommended.shape}")
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    if scores.shape != recommended.shape:
        raise ValueError(f"scores has shape {scores.shape}; recommended {recommended.shape}")
    if reasons is None:
        reasons = np.full(recommended.shape, -1, dtype=np.int64)
    reasons = np.ascontiguousarray(reasons, dtype=np.int64)
    if reasons.shape != recommended.shape:
        raise ValueError(f"reasons has shape {reasons.shape}; recommended {recommended.shape}")
    n_items = len(item_fragments)
    if len(reason_fragments) != n_items + 1:
        raise ValueError(f"reason_fragments needs {n_items + 1} entries (one per item and the "
                         f"closing of an entry without a reason), got {len(reason_fragments)}")
    keep = (np.ones(n_items, dtype=np.uint8) if keep is None
            else np.ascontiguousarray(keep, dtype=np.uint8))
    if keep.shape != (n_items,):
        raise ValueError(f"keep must have one flag per item ({n_items}), got shape {keep.shape}")
    if any(not fragment.startswith(b",") for fragment in item_fragments):
        raise ValueError("every item fragment starts with the comma that separates entries")
    threads = resolve_num_threads(num_threads)
    native = native_module("_lists")
    if native is None:
        return reference.encode_lists(recommended, scores, reasons, keep, item_fragments,
                                      reason_fragments, threads)
    item_bytes, item_offsets = _packed(item_fragments)
    reason_bytes, reason_offsets = _packed(reason_fragments)
    return native.encode_lists(recommended, scores, reasons, keep, item_bytes, item_offsets,
                               reason_bytes, reason_offsets, threads)


def interleave_rows(heads, data, starts, ends) -> bytes:
    """Each row's fixed-width head followed by its text, all rows in one bytes object.

    Parameters
    ----------
    heads : uint8 array, shape (n_rows, width)
        Each row's leading bytes (a binary COPY tuple's field count and
        fixed-width fields, say).
    data : bytes-like
        The texts back to back.
    starts, ends : int arrays, shape (n_rows,)
        Row i's text is ``data[starts[i]:ends[i]]``.
    """
    heads = np.ascontiguousarray(heads, dtype=np.uint8)
    if heads.ndim != 2:
        raise ValueError(f"heads must be 2-D (rows x bytes), got shape {heads.shape}")
    buffer = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, dtype=np.uint8)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.shape != (heads.shape[0],) or ends.shape != starts.shape:
        raise ValueError(f"starts and ends need one entry per row ({heads.shape[0]}), got "
                         f"shapes {starts.shape} and {ends.shape}")
    if len(starts) and ((ends < starts).any() or starts.min() < 0 or ends.max() > len(buffer)):
        raise ValueError("every text must lie within data (0 <= start <= end <= len(data))")
    native = native_module("_lists")
    if native is None:
        return reference.interleave_rows(heads, buffer, starts, ends)
    return native.interleave_rows(heads, buffer, starts, ends)


def _packed(fragments: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(fragments) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(f) for f in fragments])
    data = np.frombuffer(b"".join(fragments) or b"\0", dtype=np.uint8)
    return np.ascontiguousarray(data), offsets
