# cython: language_level=3
"""Sparse item-item similarity with the top k neighbours of every item.

The Python wrapper (django_recs.kernels.similarity) validates the input,
computes the per-item normalisation factors and decides the output layout;
this module trusts what it gets.

How a row is computed: item i's users are read from a column slice of X
transposed; every item j bought by one of those users adds x_ui * x_uj (or 1
on the binarised matrix) to a dense per-thread accumulator, and j goes on a
list of touched items the first time. The touched items are then scored,
the accumulator is reset through that list, and a bounded heap of k entries
keeps the best neighbours (a partial selection: most candidates are rejected
by one comparison with the heap's worst entry). The heap is finally sorted
in place into the output: descending score, ties to the lower item index.

With a minimum overlap, pairs sharing fewer users are skipped before
scoring: binarised sums are the shared-user count already, weighted sums
keep a per-thread count beside the accumulator (only then).

Memory: X is transposed one group of columns at a time (about 1/8 of its
non-zeros each), so the transposed copy costs a fraction of the input;
per-thread buffers are O(n_items + k). Scores are accumulated in double and
rounded to float32 once, so every thread count gives identical results.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.math cimport nextafterf
from libc.string cimport memmove

from _heap cimport replace_root, sift_down, sift_up, worse

import numpy as np

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define RECS_PREFETCH(address) __builtin_prefetch(address)
    #else
    #define RECS_PREFETCH(address) ((void)0)
    #endif
    """
    void RECS_PREFETCH(const void* address) noexcept nogil

# Users ahead of the current one whose rows are prefetched: a user's row is
# a short run at a random place in X (too far apart for the hardware
# prefetcher), and waiting for it dominates the accumulation otherwise.
cdef enum:
    PREFETCH_DISTANCE = 4

ctypedef fused floating:
    float
    double

ctypedef fused index_t:
    int
    long long

ctypedef fused out_index_t:
    int
    long long

# An accumulator entry below zero means "not touched yet in this row"
# (every real contribution is >= 0).
cdef double UNTOUCHED = -1.0


def column_statistics(const index_t[::1] indices, const floating[::1] data,
                      Py_ssize_t n_items):
    """Per-column count of non-zeros and sum of squares of a CSR matrix.

    Parameters
    ----------
    indices : int32 or int64 array, shape (nnz,)
    data : float32 or float64 array, shape (nnz,)
    n_items : int, number of columns

    Returns
    -------
    counts : int64 array, shape (n_items,)
    squared_norms : float64 array, shape (n_items,)
    """
    counts_array = np.zeros(n_items, dtype=np.int64)
    squares_array = np.zeros(n_items, dtype=np.float64)
    cdef long long[::1] counts = counts_array
    cdef double[::1] squares = squares_array
    cdef Py_ssize_t p, j
    cdef double value
    with nogil:
        for p in range(indices.shape[0]):
            j = indices[p]
            value = data[p]
            counts[j] += 1
            squares[j] += value * value
    return counts_array, squares_array


cdef int _transpose_group(
    const index_t[::1] indptr, const index_t[::1] indices, const floating[::1] data,
    Py_ssize_t start, Py_ssize_t stop,
    long long[::1] group_indptr, index_t[::1] users, floating[::1] weights,
    long long[::1] cost,
) noexcept nogil:
    """Fill the users (and weights) of items [start, stop), ascending by user.

    ``group_indptr`` holds the slice's row starts on entry and is left as
    they were. ``cost[j - start]`` becomes the accumulation work of item j:
    the total length of its users' rows. Returns -1 when out of memory.
    """
    cdef Py_ssize_t n_users = indptr.shape[0] - 1
    cdef Py_ssize_t n_group = stop - start
    cdef Py_ssize_t u, p, lo, hi, mid, row_end, local
    cdef long long row_length
    cdef long long* cursor = <long long*> malloc((n_group + 1) * sizeof(long long))
    if cursor == NULL:
        return -1
    for local in range(n_group + 1):
        cursor[local] = group_indptr[local]
    for u in range(n_users):
        # Row indices are sorted: binary search for the first column >= start.
        lo = indptr[u]
        row_end = indptr[u + 1]
        hi = row_end
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < start:
                lo = mid + 1
            else:
                hi = mid
        row_length = row_end - indptr[u]
        p = lo
        while p < row_end and indices[p] < stop:
            local = indices[p] - start
            users[cursor[local]] = <index_t> u
            weights[cursor[local]] = data[p]
            cursor[local] += 1
            cost[local] += row_length
            p += 1
    free(cursor)
    return 0


cdef Py_ssize_t _accumulate(
    Py_ssize_t local,
    const long long* group_indptr, const index_t* users, const floating* weights,
    const index_t* indptr, const index_t* indices, const floating* data,
    bint binary, double* accumulator, index_t* touched, int* overlap,
) noexcept nogil:
    """Co-occurrence of one item with every other: returns the touched count.

    ``overlap`` (weighted sums only; NULL when not needed) counts the users
    each touched item shares with this one, for the minimum overlap: the
    binarised sums are that count already.
    """
    cdef Py_ssize_t n_touched = 0
    cdef long long p, q, row_end
    cdef index_t u, j
    cdef double weight, value
    cdef long long first = group_indptr[local], last = group_indptr[local + 1]
    cdef index_t ahead
    for p in range(first, last):
        # Two stages: the row pointers of a user far ahead, then the row
        # itself of a user nearer (its pointers are in cache by then).
        if p + 4 * PREFETCH_DISTANCE < last:
            RECS_PREFETCH(&indptr[users[p + 4 * PREFETCH_DISTANCE]])
        if p + PREFETCH_DISTANCE < last:
            ahead = users[p + PREFETCH_DISTANCE]
            RECS_PREFETCH(&indices[indptr[ahead]])
            if not binary:
                RECS_PREFETCH(&data[indptr[ahead]])
        u = users[p]
        row_end = indptr[u + 1]
        if binary:
            for q in range(indptr[u], row_end):
                j = indices[q]
                value = accumulator[j]
                if value < 0:
                    touched[n_touched] = j
                    n_touched += 1
                    accumulator[j] = 1.0
                else:
                    accumulator[j] = value + 1.0
        elif overlap == NULL:
            weight = weights[p]
            for q in range(indptr[u], row_end):
                j = indices[q]
                value = accumulator[j]
                if value < 0:
                    touched[n_touched] = j
                    n_touched += 1
                    accumulator[j] = weight * data[q]
                else:
                    accumulator[j] = value + weight * data[q]
        else:
            weight = weights[p]
            for q in range(indptr[u], row_end):
                j = indices[q]
                value = accumulator[j]
                if value < 0:
                    touched[n_touched] = j
                    n_touched += 1
                    accumulator[j] = weight * data[q]
                    overlap[j] = 1
                else:
                    accumulator[j] = value + weight * data[q]
                    overlap[j] += 1
    return n_touched


cdef inline double _reject_bound(float worst) noexcept nogil:
    """A bound b such that common < b * denominator implies a float32 score
    strictly below ``worst``: the midpoint between worst and the float below
    it (scores under it round down), less a margin for the rounding of the
    product."""
    cdef double below = nextafterf(worst, 0.0)
    return (0.5 * (<double> worst + below)) * (1.0 - 1e-12)


cdef Py_ssize_t _select(
    Py_ssize_t item, Py_ssize_t n_touched, index_t* touched, double* accumulator,
    const double* row_factor, const double* column_factor, bint jaccard, double shrink,
    Py_ssize_t k, bint count_only, float* heap_scores, long long* heap_items,
    double min_overlap, const int* overlap,
) noexcept nogil:
    """Score the touched items, reset the accumulator, keep the best k in a heap.

    Items sharing fewer than ``min_overlap`` users with this one are no
    neighbours: their count is ``overlap[j]`` when given, else the
    (binarised) accumulated value itself.

    Returns the heap size (or, when ``count_only``, the number of neighbours
    with a positive score, capped at k).
    """
    cdef Py_ssize_t t, size = 0
    cdef long long j
    cdef double common, denominator
    cdef double own = row_factor[item]
    cdef double reject_below = 0.0
    cdef float score
    for t in range(n_touched):
        j = touched[t]
        common = accumulator[j]
        accumulator[j] = UNTOUCHED
        if j == item:
            continue
        if min_overlap > 1 and (overlap[j] if overlap != NULL else common) < min_overlap:
            continue
        if jaccard:
            denominator = own + column_factor[j] - common + shrink
        else:
            denominator = own * column_factor[j] + shrink
        # Most candidates lose to the heap's worst entry: tell them apart
        # with a multiplication instead of a division.
        if common < reject_below * denominator:
            continue
        score = <float> (common / denominator)
        if not score > 0:
            continue
        if count_only:
            size += 1
        elif size < k:
            heap_scores[size] = score
            heap_items[size] = j
            sift_up(heap_scores, heap_items, size)
            size += 1
            if size == k:
                reject_below = _reject_bound(heap_scores[0])
        elif worse(heap_scores[0], heap_items[0], score, j):
            replace_root(heap_scores, heap_items, size, score, j)
            reject_below = _reject_bound(heap_scores[0])
    return size if size < k else k


cdef void _write_sorted(float* heap_scores, long long* heap_items, Py_ssize_t size,
                        out_index_t* out_indices, float* out_data) noexcept nogil:
    """Heap-sort into the output: the worst entry goes last, the best first."""
    cdef Py_ssize_t end
    for end in range(size - 1, -1, -1):
        out_data[end] = heap_scores[0]
        out_indices[end] = <out_index_t> heap_items[0]
        heap_scores[0] = heap_scores[end]
        heap_items[0] = heap_items[end]
        sift_down(heap_scores, heap_items, end, 0)


cdef int _score_group(
    const index_t[::1] indptr, const index_t[::1] indices, const floating[::1] data,
    const long long[::1] group_indptr, const index_t[::1] users,
    const floating[::1] weights, const long long[::1] order, Py_ssize_t start,
    const double[::1] row_factor, const double[::1] column_factor,
    bint jaccard, bint binary, double shrink, Py_ssize_t k, bint count_only,
    const long long[::1] row_start, out_index_t[::1] out_indices, float[::1] out_data,
    long long[::1] row_length, int num_threads, double min_overlap,
) except -1:
    """Score every item of one group in parallel, heaviest items first."""
    cdef Py_ssize_t n_items = row_factor.shape[0]
    cdef Py_ssize_t n_group = order.shape[0]
    cdef Py_ssize_t position, local, item, n_touched, size, t = 0
    cdef int failed = 0
    cdef int* failed_flag = &failed
    # Assigned per thread inside the parallel block (initialised here only
    # because OpenMP copies them in as firstprivate).
    cdef double* accumulator = NULL
    cdef index_t* touched = NULL
    cdef float* heap_scores = NULL
    cdef long long* heap_items = NULL
    cdef int* overlap = NULL
    # Weighted sums need a count of their own for the minimum overlap.
    cdef bint count_overlap = min_overlap > 1 and not binary
    cdef long long base
    # Pointers into the shared read-only arrays (empty views have no data).
    cdef const long long* group_indptr_ptr = &group_indptr[0]
    cdef const index_t* users_ptr = &users[0] if users.shape[0] else NULL
    cdef const floating* weights_ptr = &weights[0] if weights.shape[0] else NULL
    cdef const index_t* indptr_ptr = &indptr[0]
    cdef const index_t* indices_ptr = &indices[0] if indices.shape[0] else NULL
    cdef const floating* data_ptr = &data[0] if data.shape[0] else NULL
    cdef out_index_t* out_indices_ptr = &out_indices[0] if out_indices.shape[0] else NULL
    cdef float* out_data_ptr = &out_data[0] if out_data.shape[0] else NULL
    cdef const double* row_factor_ptr = &row_factor[0]
    cdef const double* column_factor_ptr = &column_factor[0]
    cdef const long long* order_ptr = &order[0] if n_group else NULL
    cdef const long long* row_start_ptr = &row_start[0]
    cdef long long* row_length_ptr = &row_length[0]

    with nogil, parallel(num_threads=num_threads):
        accumulator = <double*> malloc(n_items * sizeof(double))
        touched = <index_t*> malloc(n_items * sizeof(index_t))
        heap_scores = <float*> malloc((k + 1) * sizeof(float))
        heap_items = <long long*> malloc((k + 1) * sizeof(long long))
        overlap = <int*> malloc(n_items * sizeof(int)) if count_overlap else NULL
        try:
            if (accumulator == NULL or touched == NULL or heap_scores == NULL
                    or heap_items == NULL or (count_overlap and overlap == NULL)):
                failed_flag[0] = 1
            else:
                for t in range(n_items):
                    accumulator[t] = UNTOUCHED
            # Heaviest first under dynamic scheduling: popularity is
            # power-law, so one best-seller can cost as much as thousands
            # of tail items; starting it last would leave a thread idle.
            for position in prange(n_group, schedule="dynamic"):
                if failed_flag[0]:
                    continue
                local = order_ptr[position]
                item = start + local
                n_touched = _accumulate(
                    local, group_indptr_ptr, users_ptr, weights_ptr,
                    indptr_ptr, indices_ptr, data_ptr, binary, accumulator, touched,
                    overlap,
                )
                size = _select(
                    item, n_touched, touched, accumulator, row_factor_ptr,
                    column_factor_ptr, jaccard, shrink, k, count_only,
                    heap_scores, heap_items, min_overlap, overlap,
                )
                row_length_ptr[item] = size
                if not count_only and size > 0:
                    base = row_start_ptr[item]
                    _write_sorted(heap_scores, heap_items, size,
                                  out_indices_ptr + base, out_data_ptr + base)
        finally:
            free(accumulator)
            free(touched)
            free(heap_scores)
            free(heap_items)
            free(overlap)
    if failed:
        raise MemoryError("item_similarity: out of memory for the per-thread buffers")
    return 0


def top_k_similarity(
    const index_t[::1] indptr, const index_t[::1] indices, const floating[::1] data,
    const long long[::1] column_counts,
    const double[::1] row_factor, const double[::1] column_factor,
    bint jaccard, bint binary, double shrink, Py_ssize_t k, bint count_only,
    const long long[::1] row_start, out_index_t[::1] out_indices, float[::1] out_data,
    long long[::1] row_length, long long group_nnz, int num_threads,
    Py_ssize_t item_start=0, Py_ssize_t item_stop=-1, long long min_overlap=1,
):
    """Top-k neighbours of the items [item_start, item_stop) of the user x item CSR matrix X.

    Parameters
    ----------
    indptr, indices, data : X's CSR arrays (n_users + 1,), (nnz,), (nnz,);
        indices sorted within each row, no explicit zeros, no duplicates.
    column_counts : int64 array, shape (n_items,), non-zeros per column.
    row_factor, column_factor : float64 arrays, shape (n_items,)
        The score of (i, j) with co-occurrence c is
        c / (row_factor[i] * column_factor[j] + shrink), or with ``jaccard``
        c / (row_factor[i] + column_factor[j] - c + shrink).
    jaccard : bool, use the Jaccard denominator.
    binary : bool, count co-occurrences (1 per shared user) instead of
        summing x_ui * x_uj.
    shrink : float >= 0
    k : int >= 1, neighbours kept per item.
    count_only : bool, only fill ``row_length`` (a first pass that sizes
        the output exactly).
    row_start : int64 array, shape (n_items,), where item i's entries go in
        ``out_indices`` / ``out_data`` (room for ``row_length[i]`` entries).
    out_indices : int32 or int64 array; out_data : float32 array.
    row_length : int64 array, shape (n_items,), set to each row's length.
    group_nnz : int >= 1, non-zeros of X transposed at a time (memory bound).
    num_threads : int >= 1
    item_start, item_stop : the items whose rows are computed (default: all,
        item_stop = -1 meaning n_items); ``row_start`` and ``row_length`` are
        still indexed by item, entries outside the range are left untouched.
        Each row is computed on its own, so a range gives exactly the rows
        of the full result.
    min_overlap : int >= 1, default 1
        Pairs sharing fewer users than this are no neighbours.
    """
    cdef Py_ssize_t n_items = column_counts.shape[0]
    cdef Py_ssize_t start, stop, local
    cdef long long group_size
    cdef int status
    index_dtype = np.int32 if index_t is int else np.int64
    data_dtype = np.float32 if floating is float else np.float64
    cdef long long[::1] group_indptr
    cdef long long[::1] cost
    cdef index_t[::1] users
    cdef floating[::1] weights
    cdef long long[::1] order

    if item_stop < 0:
        item_stop = n_items
    if not 0 <= item_start <= item_stop <= n_items:
        raise ValueError(f"item range [{item_start}, {item_stop}) outside [0, {n_items}]")
    start = item_start
    while start < item_stop:
        # Contiguous items up to ~group_nnz non-zeros (at least one item).
        stop = start
        group_size = 0
        while stop < item_stop and (stop == start or
                                  group_size + column_counts[stop] <= group_nnz):
            group_size += column_counts[stop]
            stop += 1
        group_indptr_array = np.zeros(stop - start + 1, dtype=np.int64)
        np.cumsum(column_counts[start:stop], out=group_indptr_array[1:])
        group_indptr = group_indptr_array
        users = np.empty(group_size, dtype=index_dtype)
        weights = np.empty(group_size, dtype=data_dtype)
        cost_array = np.zeros(stop - start, dtype=np.int64)
        cost = cost_array
        with nogil:
            status = _transpose_group(indptr, indices, data, start, stop,
                                      group_indptr, users, weights, cost)
        if status != 0:
            raise MemoryError("item_similarity: out of memory transposing X")
        order = np.argsort(-cost_array, kind="stable").astype(np.int64, copy=False)
        _score_group(indptr, indices, data, group_indptr, users, weights, order, start,
                     row_factor, column_factor, jaccard, binary, shrink, k, count_only,
                     row_start, out_indices, out_data, row_length, num_threads,
                     <double> min_overlap)
        start = stop


def compact_rows(const long long[::1] row_start, const long long[::1] row_length,
                 const long long[::1] indptr, out_index_t[::1] out_indices,
                 float[::1] out_data):
    """Move each row from its fixed slot ``row_start[i]`` to ``indptr[i]``.

    Rows only move towards the front (``indptr[i] <= row_start[i]``), so
    copying them in order never overwrites a row that has yet to move.
    """
    cdef Py_ssize_t n_items = row_start.shape[0]
    cdef Py_ssize_t item
    cdef long long source, target, length
    if out_data.shape[0] == 0:
        return
    with nogil:
        for item in range(n_items):
            source = row_start[item]
            target = indptr[item]
            length = row_length[item]
            if length == 0 or source == target:
                continue
            memmove(&out_indices[target], &out_indices[source],
                    length * sizeof(out_index_t))
            memmove(&out_data[target], &out_data[source], length * sizeof(float))
