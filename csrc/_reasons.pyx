# cython: language_level=3
"""The history item behind each recommendation of a factor model.

For user u and recommended item j the reason is the history item i
maximising ``w(u, i) * (unit[i] . unit[j])`` (unit: item factors scaled to
unit length), the first one in the history on ties, -1 when no contribution
is positive or j is padding (-1).

Per user, the recommended vectors (n x f) and up to CHUNK history vectors
(CHUNK x f) are gathered into per-thread buffers and multiplied with one
``sgemm``; a running best per recommendation carries over from one chunk of
a long history to the next. Users are spread over OpenMP threads.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _blas cimport gemm_nt

# History items multiplied at once: bounds the buffers whatever the history length.
cdef enum:
    CHUNK = 256


cdef void user_reasons(const long long *indptr, const int *indices, const float *data,
                       long long u, const int *recommended, int n, const float *unit, int f,
                       float *history_vectors, float *target_vectors, float *products,
                       int *positions, float *best_values, int *reasons) noexcept nogil:
    """Reasons of user u's n recommendations (row ``recommended``) into ``reasons``."""
    cdef int k, j, i, targets = 0, rows
    cdef long long first = indptr[u], last = indptr[u + 1], start
    cdef float value, best
    cdef int chosen
    cdef const float *row_products
    for k in range(n):
        reasons[k] = -1
        if recommended[k] >= 0:
            positions[targets] = k
            memcpy(target_vectors + <Py_ssize_t>targets * f,
                   unit + <Py_ssize_t>recommended[k] * f, sizeof(float) * f)
            best_values[targets] = 0.0  # only a positive contribution is a reason
            targets += 1
    if targets == 0 or first == last:
        return
    start = first
    while start < last:
        rows = <int>min(<long long>CHUNK, last - start)
        for i in range(rows):
            memcpy(history_vectors + <Py_ssize_t>i * f,
                   unit + <Py_ssize_t>indices[start + i] * f, sizeof(float) * f)
        # products (targets x rows) = target_vectors . history_vectors^T
        gemm_nt(targets, rows, f, 1.0, target_vectors, f, history_vectors, f, 0.0,
                products, rows)
        for j in range(targets):
            row_products = products + <Py_ssize_t>j * rows
            best = best_values[j]
            chosen = -1
            for i in range(rows):
                value = data[start + i] * row_products[i]
                if value > best:  # strict: the first in the history wins ties
                    best = value
                    chosen = i
            if chosen >= 0:
                best_values[j] = best
                reasons[positions[j]] = indices[start + chosen]
        start += rows


def factor_reasons(const long long[::1] indptr, const int[::1] indices, const float[::1] data,
                   const int[:, ::1] recommended, const float[:, ::1] unit,
                   int[:, ::1] out, int num_threads):
    """Write the reason of every recommendation into ``out``.

    Parameters
    ----------
    indptr, indices, data : int64 / int32 / float32 arrays, the users' history
        (CSR, m rows, columns = rows of ``unit``)
    recommended : int32 array, shape (m, n): item rows of ``unit``, -1 padding
    unit : float32 array, shape (n_items, f), C-contiguous
    out : int32 array, shape (m, n)
    num_threads : int, >= 1
    """
    cdef long long m = recommended.shape[0]
    cdef int n = recommended.shape[1]
    cdef int f = unit.shape[1]
    cdef long long u
    cdef float *history_vectors = NULL
    cdef float *target_vectors = NULL
    cdef float *products = NULL
    cdef float *best_values = NULL
    cdef int *positions = NULL
    cdef const int *history_indices = &indices[0] if indices.shape[0] else NULL
    cdef const float *history_data = &data[0] if data.shape[0] else NULL
    if m <= 0 or n == 0 or f == 0 or indices.shape[0] == 0:
        out[:, :] = -1
        return
    with nogil, parallel(num_threads=num_threads):
        history_vectors = <float *>malloc(sizeof(float) * CHUNK * f)
        target_vectors = <float *>malloc(sizeof(float) * n * f)
        products = <float *>malloc(sizeof(float) * CHUNK * n)
        best_values = <float *>malloc(sizeof(float) * n)
        positions = <int *>malloc(sizeof(int) * n)
        try:
            for u in prange(m, schedule="dynamic", chunksize=64):
                user_reasons(&indptr[0], history_indices, history_data, u, &recommended[u, 0],
                             n, &unit[0, 0], f, history_vectors, target_vectors, products,
                             positions, best_values, &out[u, 0])
        finally:
            free(history_vectors)
            free(target_vectors)
            free(products)
            free(best_values)
            free(positions)
