"""Pure numpy/Python reference of the stored-list encoder (csrc/_lists.pyx)."""

from __future__ import annotations

import numpy as np

#: Bytes of a score with its sign: ``-1.234567e-05``.
SCORE_WIDTH = 13


def encode_scores(scores) -> list[bytes]:
    """Scores as JSON numbers of 7 significant digits (``1.234567e-01``), flat, in order.

    A leading ``-`` when negative; non-finite scores and magnitudes below
    1e-99 as 0; exponents clipped to two digits (at most 9.999999e+99).
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = np.where(np.isfinite(values), values, 0.0)
    magnitude = np.abs(values)
    zero = magnitude < 1e-99
    exponent = np.floor(np.log10(np.where(zero, 1.0, magnitude))).astype(np.int64)
    mantissa = np.rint(magnitude / np.power(10.0, (exponent - 6).astype(np.float64))).astype(np.int64)
    carried = mantissa >= 10_000_000
    mantissa = np.where(carried, mantissa // 10, mantissa)
    exponent = exponent + carried
    too_big = exponent > 99
    mantissa = np.where(zero, 0, np.where(too_big, 9_999_999, mantissa))
    exponent = np.where(zero, 0, np.minimum(exponent, 99))
    out = []
    for value, m, e, z in zip(values.tolist(), mantissa.tolist(), exponent.tolist(),
                              zero.tolist(), strict=True):
        digits = f"{m:07d}"
        sign = "-" if value < 0 and not z else ""
        out.append(f"{sign}{digits[0]}.{digits[1:]}e{'-' if e < 0 else '+'}{abs(e):02d}".encode())
    return out


def encode_lists(recommended, scores, reasons, keep, item_fragments, reason_fragments,
                 num_threads=0):
    """Same contract as the compiled kernel: ``(buffer, offsets, lengths)``."""
    recommended = np.asarray(recommended, dtype=np.int64)
    n_users, width = recommended.shape
    n_items = len(keep)
    score_text = encode_scores(scores)
    texts, lengths = [], []
    for u in range(n_users):
        parts = []
        for k in range(width):
            item = int(recommended[u, k])
            if item < 0 or item >= n_items or not keep[item]:
                continue
            why = int(reasons[u, k])
            if why < 0 or why >= n_items:
                why = n_items
            fragment = item_fragments[item]
            parts.append((fragment if parts else fragment[1:]) + score_text[u * width + k]
                         + reason_fragments[why])
        texts.append(b"[" + b"".join(parts) + b"]")
        lengths.append(len(parts))
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in texts])
    buffer = np.frombuffer(b"".join(texts), dtype=np.uint8).copy()
    return buffer, offsets, np.asarray(lengths, dtype=np.int64)


def interleave_rows(heads, data, starts, ends) -> bytes:
    """Row i's head, then its text ``data[starts[i]:ends[i]]``, for every row."""
    view = memoryview(data)
    parts = []
    for head, start, end in zip(heads, starts.tolist(), ends.tolist(), strict=True):
        parts.append(head.tobytes())
        parts.append(view[start:end])
    return b"".join(parts)
