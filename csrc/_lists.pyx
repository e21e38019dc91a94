# cython: language_level=3
"""Stored lists as JSON text: each user's recommendations, best first, in one buffer.

The Python wrapper (django_recs.kernels.lists) validates the input and
encodes each item's fragments once (``,["key",`` and ``,type,"key"]``); this
module trusts what it gets. Two passes over the users, in parallel: the
byte length of each user's list, then (at offsets from their cumulative
sum) the bytes: ``[`` + for each kept entry its item fragment without the
leading comma for the first, its score with 7 significant digits
(``1.234567e-01``, a leading ``-`` when negative), its reason fragment
(``]`` when it has none) + ``]``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cython.parallel cimport prange
from libc.math cimport fabs, floor, isfinite, log10, rint
from libc.string cimport memcpy

import numpy as np


cdef inline int score_length(double value) noexcept nogil:
    return 13 if value < 0 and isfinite(value) and fabs(value) >= 1e-99 else 12


cdef double POW10[241]  # 10 ** (i - 120)
cdef int _i
for _i in range(241):
    POW10[_i] = 10.0 ** (_i - 120)


cdef inline int write_score(double value, unsigned char* out) noexcept nogil:
    """``value`` as ``[-]d.dddddde[+-]dd``; the bytes written."""
    cdef double magnitude
    cdef int exponent, at = 0
    cdef unsigned int mantissa, low
    if not isfinite(value):
        value = 0.0
    magnitude = fabs(value)
    if magnitude < 1e-99:
        mantissa = 0
        exponent = 0
    else:
        exponent = <int>floor(log10(magnitude))
        if exponent > 99:
            mantissa = 9999999
            exponent = 99
        else:
            mantissa = <unsigned int>rint(magnitude / POW10[exponent - 6 + 120])
            if mantissa >= 10000000:
                mantissa = mantissa // 10
                exponent = exponent + 1
                if exponent > 99:
                    mantissa = 9999999
                    exponent = 99
        if value < 0:
            out[0] = 45  # "-"
            at = 1
    out[at] = 48 + mantissa // 1000000
    out[at + 1] = 46  # "."
    low = mantissa % 1000000
    out[at + 7] = 48 + low % 10
    low = low // 10
    out[at + 6] = 48 + low % 10
    low = low // 10
    out[at + 5] = 48 + low % 10
    low = low // 10
    out[at + 4] = 48 + low % 10
    low = low // 10
    out[at + 3] = 48 + low % 10
    out[at + 2] = 48 + low // 10
    out[at + 8] = 101  # "e"
    out[at + 9] = 45 if exponent < 0 else 43
    if exponent < 0:
        exponent = -exponent
    out[at + 10] = 48 + exponent // 10
    out[at + 11] = 48 + exponent % 10
    return at + 12


def encode_lists(
    const long long[:, ::1] recommended,
    const double[:, ::1] scores,
    const long long[:, ::1] reasons,
    const unsigned char[::1] keep,
    const unsigned char[::1] item_bytes,
    const long long[::1] item_offsets,
    const unsigned char[::1] reason_bytes,
    const long long[::1] reason_offsets,
    int num_threads,
):
    """The lists of the users (rows) as one buffer; ``(buffer, offsets, lengths)``.

    recommended, reasons: (n_users, n) int64, -1 = none; scores (n_users, n)
    float64; keep (n_items,) uint8, 1 for items whose entries are written;
    item_* and reason_* the fragments of each item (CSR-like bytes and
    n_items + 1 offsets; the reason fragment of index n_items is ``]``).
    offsets: (n_users + 1,) int64 into buffer; lengths: (n_users,) int64
    entries written per user (a user with none gets ``[]``).
    """
    cdef Py_ssize_t n_users = recommended.shape[0], width = recommended.shape[1]
    cdef Py_ssize_t n_items = keep.shape[0]
    cdef Py_ssize_t u, k
    cdef long long item, why, size, count, at
    offsets_array = np.zeros(n_users + 1, dtype=np.int64)
    lengths_array = np.zeros(n_users, dtype=np.int64)
    cdef long long[::1] offsets = offsets_array
    cdef long long[::1] lengths = lengths_array
    with nogil:
        for u in prange(n_users, schedule="static", num_threads=num_threads):
            size = 2
            count = 0
            for k in range(width):
                item = recommended[u, k]
                if item < 0 or item >= n_items or not keep[item]:
                    continue
                why = reasons[u, k]
                if why < 0 or why >= n_items:
                    why = n_items
                size = size + (item_offsets[item + 1] - item_offsets[item])
                size = size + score_length(scores[u, k])
                size = size + (reason_offsets[why + 1] - reason_offsets[why])
                count = count + 1
            if count:
                size = size - 1  # the first entry's comma
            offsets[u + 1] = size
            lengths[u] = count
    np.cumsum(offsets_array, out=offsets_array)
    buffer_array = np.empty(int(offsets_array[n_users]), dtype=np.uint8)
    cdef unsigned char[::1] buffer = buffer_array
    cdef unsigned char* base
    if n_users == 0 or buffer.shape[0] == 0:
        return buffer_array, offsets_array, lengths_array
    base = &buffer[0]
    with nogil:
        for u in prange(n_users, schedule="static", num_threads=num_threads):
            at = offsets[u]
            base[at] = 91  # "["
            at = at + 1
            count = 0
            for k in range(width):
                item = recommended[u, k]
                if item < 0 or item >= n_items or not keep[item]:
                    continue
                why = reasons[u, k]
                if why < 0 or why >= n_items:
                    why = n_items
                size = item_offsets[item + 1] - item_offsets[item]
                if count == 0:  # no comma before the first entry
                    memcpy(base + at, &item_bytes[item_offsets[item] + 1], size - 1)
                    at = at + size - 1
                else:
                    memcpy(base + at, &item_bytes[item_offsets[item]], size)
                    at = at + size
                at = at + write_score(scores[u, k], base + at)
                size = reason_offsets[why + 1] - reason_offsets[why]
                memcpy(base + at, &reason_bytes[reason_offsets[why]], size)
                at = at + size
                count = count + 1
            base[at] = 93  # "]"
    return buffer_array, offsets_array, lengths_array


def interleave_rows(
    const unsigned char[:, ::1] heads,
    const unsigned char[::1] data,
    const long long[::1] starts,
    const long long[::1] ends,
):
    """Row i's head (``heads[i]``) then its text (``data[starts[i]:ends[i]]``), for every row.

    One bytes object; the wrapper checked that every text lies within data.
    """
    cdef Py_ssize_t n = heads.shape[0], width = heads.shape[1], i
    cdef long long total = n * width, size
    for i in range(n):
        total = total + (ends[i] - starts[i])
    result = PyBytes_FromStringAndSize(NULL, total)
    cdef char* out = PyBytes_AS_STRING(result)
    cdef const unsigned char* text = &data[0] if data.shape[0] else NULL
    with nogil:
        for i in range(n):
            if width:
                memcpy(out, &heads[i, 0], width)
                out = out + width
            size = ends[i] - starts[i]
            if size:
                memcpy(out, text + starts[i], size)
                out = out + size
    return result
