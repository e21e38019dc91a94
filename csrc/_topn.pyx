# cython: language_level=3
"""Top-n items per user from factor matrices, without the dense score matrix.

Users are taken in blocks and items in tiles; each (block x tile) of scores
is one ``sgemm`` into a per-thread buffer that fits in L2 cache, and the
tile's excluded items are set to -inf. Selection then costs little more
than reading the tile once:

- every user keeps a threshold (its n-th best score so far, -inf at first)
  and a candidate buffer of ``2n + RUN`` slots;
- a run of RUN scores is compared with the threshold in one vectorised
  pass; only a run holding a better score is looked at again, and its
  scores are appended without branches (always written, the count moves
  only when the score beats the threshold);
- a full buffer is cut back to its n best by quickselect, which raises the
  threshold. Once it is warm almost every run is rejected by the first pass.

Items are offered in increasing index order, so a later item with a score
equal to the threshold ranks below the n-th best (ties by lower index) and a
strict ``>`` test is exact.

Order: descending score, ties by lower item index. Users with fewer than n
eligible items are padded with index -1 and score -inf.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _blas cimport axpy, gemm_nt
from _heap cimport replace_root, sift_down, worse


cdef extern from "scan_shim.h" nogil:
    int recs_any_above16(const float *x, float limit)

# Scores compared with a user's threshold at once (one vectorised pass).
cdef enum:
    RUN = 16  # recs_any_above16's length
    # history_top_n's heap pre-check length
    HEAP_RUN = 64


cdef inline void sort_heap(float *scores, int *items, int size) noexcept nogil:
    """Turn a worst-at-root heap into a best-first sorted array, in place."""
    cdef int end
    cdef float score
    cdef int item
    for end in range(size - 1, 0, -1):
        score = scores[end]
        item = items[end]
        scores[end] = scores[0]
        items[end] = items[0]
        replace_root(scores, items, end, score, item)


cdef inline void sort_best_first(float *scores, int *items, int size) noexcept nogil:
    """Sort (score, item) pairs best first (ties by lower item), in place."""
    cdef int k
    for k in range(size // 2 - 1, -1, -1):
        sift_down(scores, items, size, k)
    sort_heap(scores, items, size)


cdef float nth_largest(float *values, int count, int n) noexcept nogil:
    """The n-th largest of values[0:count] (1 <= n <= count); reorders values.

    Quickselect with a branch-free partition: the candidates' order is
    random, so a branch per comparison would be mispredicted half the time.
    """
    cdef int low = 0, high = count - 1, target = n - 1, middle, store, k
    cdef float pivot, value
    while low < high:
        middle = low + (high - low) // 2
        pivot = values[middle]
        values[middle] = values[high]
        values[high] = pivot
        store = low
        for k in range(low, high):  # values above the pivot to the front
            value = values[k]
            values[k] = values[store]
            values[store] = value
            store += value > pivot
        values[high] = values[store]
        values[store] = pivot
        # [low, store) > pivot, then the pivot; ties with it lie after it.
        if store == target:
            return pivot
        if store < target:
            low = store + 1
        else:
            high = store - 1
    return values[target]


cdef float keep_best(float *scores, int *items, int count, int n,
                     float *scratch) noexcept nogil:
    """Cut count (> n) candidates held in increasing item order to their n best,
    still in item order; returns the n-th best score (the new threshold).

    The n best are those above the n-th best score s plus, among those equal
    to s, the first ones (lowest items) up to n.
    """
    cdef int k, kept = 0, greater = 0, ties
    cdef bint keep, tie
    cdef float score, nth
    for k in range(count):
        scratch[k] = scores[k]
    nth = nth_largest(scratch, count, n)
    for k in range(count):
        greater += scores[k] > nth
    ties = n - greater
    for k in range(count):  # a stable, branch-free filter
        score = scores[k]
        tie = score == nth
        keep = (score > nth) | (tie & (ties > 0))
        ties -= keep & tie
        scores[kept] = score
        items[kept] = items[k]
        kept += keep
    return nth


cdef inline int append_above(const float *row_scores, int length, int first_item,
                             float *scores, int *items, int count, float limit) noexcept nogil:
    """Append the entries of row_scores[0:length] above limit; returns the new count.

    Branch-free: every score is written, the count moves only for those above.
    """
    cdef int k
    cdef float score
    for k in range(length):
        score = row_scores[k]
        scores[count] = score
        items[count] = first_item + k
        count += score > limit
    return count


cdef inline int offer_row(const float *row_scores, int size, int first_item,
                          float *scores, int *items, int count, int capacity, int n,
                          float *threshold, float *scratch) noexcept nogil:
    """Append row_scores' entries above *threshold to the candidates; returns the new count."""
    cdef int run = 0, length
    cdef int full = size - size % RUN
    cdef float limit = threshold[0]
    while run < full:
        if recs_any_above16(row_scores + run, limit):
            if count + RUN > capacity:  # then count > n (capacity >= n + RUN)
                limit = keep_best(scores, items, count, n, scratch)
                count = n
            count = append_above(row_scores + run, RUN, first_item + run, scores, items,
                                 count, limit)
        run += RUN
    length = size - full
    if length:
        if count + length > capacity:
            limit = keep_best(scores, items, count, n, scratch)
            count = n
        count = append_above(row_scores + full, length, first_item + full, scores, items,
                             count, limit)
    threshold[0] = limit
    return count


cdef void top_n_block(const float *U, int n_block, const float *V, int n_items, int f, int n,
                      const long long *exclude_indptr, const int *exclude_indices,
                      const long long *exclude_rows, float *tile, int tile_items,
                      long long *cursor, float *candidate_scores, int *candidate_items,
                      int *counts, float *thresholds, int capacity, float *scratch,
                      float *out_scores, int *out_items) noexcept nogil:
    """Top n of users U[0:n_block] into out rows 0..n_block-1 (row stride n)."""
    cdef int u, k, start, size, count
    cdef long long row, end
    cdef Py_ssize_t slots
    cdef float *row_scores = NULL

    for u in range(n_block):
        counts[u] = 0
        thresholds[u] = -INFINITY
        row = exclude_rows[u]
        cursor[u] = exclude_indptr[row] if row >= 0 else 0

    start = 0
    while start < n_items:
        size = min(tile_items, n_items - start)
        gemm_nt(n_block, size, f, 1.0, U, f, V + <Py_ssize_t>start * f, f, 0.0, tile, size)
        for u in range(n_block):
            row_scores = tile + <Py_ssize_t>u * size
            row = exclude_rows[u]
            if row >= 0:
                end = exclude_indptr[row + 1]
                while cursor[u] < end and exclude_indices[cursor[u]] < start + size:
                    row_scores[exclude_indices[cursor[u]] - start] = -INFINITY
                    cursor[u] += 1
            slots = <Py_ssize_t>u * capacity
            counts[u] = offer_row(row_scores, size, start, candidate_scores + slots,
                                  candidate_items + slots, counts[u], capacity, n,
                                  &thresholds[u], scratch)
        start += size

    for u in range(n_block):
        slots = <Py_ssize_t>u * capacity
        count = counts[u]
        if count > n:
            keep_best(candidate_scores + slots, candidate_items + slots, count, n, scratch)
            count = n
        sort_best_first(candidate_scores + slots, candidate_items + slots, count)
        for k in range(count):
            out_scores[<Py_ssize_t>u * n + k] = candidate_scores[slots + k]
            out_items[<Py_ssize_t>u * n + k] = candidate_items[slots + k]
        for k in range(count, n):
            out_scores[<Py_ssize_t>u * n + k] = -INFINITY
            out_items[<Py_ssize_t>u * n + k] = -1


def top_n(const float[:, ::1] U, const float[:, ::1] V, int n,
          const long long[::1] exclude_indptr, const int[::1] exclude_indices,
          const long long[::1] exclude_rows, int[:, ::1] out_items, float[:, ::1] out_scores,
          int block_users, int tile_items, int num_threads):
    """Write the n best items of every row of U into out_items / out_scores.

    Parameters
    ----------
    U : float32 array, shape (m, f), the users to rank for
    V : float32 array, shape (n_items, f)
    n : int, >= 1
    exclude_indptr, exclude_indices : int64 / int32 arrays, a CSR pattern with
        sorted indices (at least one row; may be empty)
    exclude_rows : int64 array, shape (m,): the exclude row of each user, -1 for none
    out_items : int32 array, shape (m, n)
    out_scores : float32 array, shape (m, n)
    block_users, tile_items : int, the score tile's shape
    num_threads : int, >= 1

    Each thread holds a tile of block_users x tile_items floats and
    block_users x (2n + RUN) candidate pairs.
    """
    cdef int m = U.shape[0]
    cdef int f = U.shape[1]
    cdef int n_items = V.shape[0]
    cdef int n_blocks = (m + block_users - 1) // block_users
    cdef int capacity = 2 * n + RUN
    cdef int b, first, count
    cdef float *tile = NULL
    cdef long long *cursor = NULL
    cdef float *candidate_scores = NULL
    cdef int *candidate_items = NULL
    cdef int *counts = NULL
    cdef float *thresholds = NULL
    cdef float *scratch = NULL
    cdef int tile_width = min(tile_items, max(n_items, 1))
    cdef const int *excluded = &exclude_indices[0] if exclude_indices.shape[0] else NULL
    if m == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        tile = <float *>malloc(sizeof(float) * block_users * tile_width)
        cursor = <long long *>malloc(sizeof(long long) * block_users)
        candidate_scores = <float *>malloc(sizeof(float) * block_users * capacity)
        candidate_items = <int *>malloc(sizeof(int) * block_users * capacity)
        counts = <int *>malloc(sizeof(int) * block_users)
        thresholds = <float *>malloc(sizeof(float) * block_users)
        scratch = <float *>malloc(sizeof(float) * capacity)
        try:
            for b in prange(n_blocks, schedule="dynamic"):
                first = b * block_users
                count = min(block_users, m - first)
                top_n_block(&U[first, 0], count, &V[0, 0], n_items, f, n,
                            &exclude_indptr[0], excluded, &exclude_rows[first], tile,
                            tile_width, cursor, candidate_scores, candidate_items, counts,
                            thresholds, capacity, scratch, &out_scores[first, 0], &out_items[first, 0])
        finally:
            free(tile)
            free(cursor)
            free(candidate_scores)
            free(candidate_items)
            free(counts)
            free(thresholds)
            free(scratch)


cdef inline void select_run(const float *tile, int start, int count, int tile_offset,
                            float *scores, int *items, int n) noexcept nogil:
    """Offer tile[start:start+count] (item = tile_offset + position) to the heap."""
    cdef int k, hits = 0
    cdef float worst = scores[0]
    for k in range(start, start + count):
        hits += tile[k] > worst
    if hits == 0:
        return
    for k in range(start, start + count):
        if tile[k] > worst:
            replace_root(scores, items, n, tile[k], tile_offset + k)
            worst = scores[0]


# ---------------------------------------------------------------------------
# Top-n of the rows of a sparse history times a dense weight matrix.


cdef void history_top_n_row(const long long *indptr, const int *indices, const float *data,
                            long long u, const float *W, int width, int n,
                            const long long *exclude_indptr, const int *exclude_indices,
                            float *row, float *out_scores, int *out_items) noexcept nogil:
    """Top n positive entries of history row u times W into out (length n)."""
    cdef long long p
    cdef int k, run
    for k in range(n):
        out_scores[k] = 0.0
        out_items[k] = -1
    if indptr[u] == indptr[u + 1]:
        return
    memset(row, 0, sizeof(float) * width)
    for p in range(indptr[u], indptr[u + 1]):
        axpy(width, data[p], W + <Py_ssize_t>indices[p] * width, row)
    for p in range(exclude_indptr[u], exclude_indptr[u + 1]):
        row[exclude_indices[p]] = -INFINITY
    run = 0
    while run < width:
        select_run(row, run, min(HEAP_RUN, width - run), 0, out_scores, out_items, n)
        run += HEAP_RUN
    sort_heap(out_scores, out_items, n)


def history_top_n(const long long[::1] indptr, const int[::1] indices, const float[::1] data,
                  const float[:, ::1] W, int n,
                  const long long[::1] exclude_indptr, const int[::1] exclude_indices,
                  int[:, ::1] out_items, float[:, ::1] out_scores, int num_threads):
    """Write the n largest positive entries of every row of H W into out_items / out_scores.

    Parameters
    ----------
    indptr, indices, data : int64 / int32 / float32 arrays, the CSR matrix H
        (m rows, W.shape[0] columns)
    W : float32 array, shape (H columns, width), C-contiguous
    n : int, >= 1
    exclude_indptr, exclude_indices : int64 / int32 arrays, a CSR pattern of
        m rows and width columns: entries never selected
    out_items : int32 array, shape (m, n), -1 where fewer than n entries are positive
    out_scores : float32 array, shape (m, n), 0 there
    num_threads : int, >= 1

    A row of scores is one accumulation of ``saxpy`` over the row's entries
    (the order of scipy's sparse times dense product), held in a per-thread
    buffer of ``width`` floats; the dense product is never stored.
    """
    cdef long long m = indptr.shape[0] - 1
    cdef int width = W.shape[1]
    cdef long long u
    cdef float *row = NULL
    cdef const int *history_indices = &indices[0] if indices.shape[0] else NULL
    cdef const float *history_data = &data[0] if data.shape[0] else NULL
    cdef const int *excluded = &exclude_indices[0] if exclude_indices.shape[0] else NULL
    if m <= 0 or width == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        row = <float *>malloc(sizeof(float) * width)
        try:
            for u in prange(m, schedule="dynamic", chunksize=16):
                history_top_n_row(&indptr[0], history_indices, history_data, u, &W[0, 0],
                                  width, n, &exclude_indptr[0], excluded, row,
                                  &out_scores[u, 0], &out_items[u, 0])
        finally:
            free(row)
