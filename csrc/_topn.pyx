# cython: language_level=3
"""Top-n items per user from factor matrices, without the dense score matrix.

Users are taken in blocks and items in tiles; each (block x tile) of scores
is one ``sgemm`` into a per-thread buffer that fits in L2 cache, and the
tile's excluded items are set to -inf. Selection then costs little more
than reading the tile once:

- every user keeps a threshold (its n-th best (score, item) so far, -inf at
  first) and a candidate buffer of ``2n + RUN`` slots;
- a run of RUN scores is compared with the threshold in one vectorised
  pass; only a run holding a score at least as high is looked at again, and
  its entries are appended without branches (always written, the count
  moves only for an entry ranking above the threshold);
- a full buffer is cut back to its n best by quickselect, which raises the
  threshold. Once it is warm almost every run is rejected by the first pass.

The rows of V may come in any order (``item_ids`` names their items); the
wrapper sorts them by decreasing norm and gives each tile a bound on
``score / |x|``. Before each tile a user whose n-th best beats that bound
times its norm leaves the block for good (no later item can enter its list),
and the block's remaining users are gathered so the next ``sgemm`` skips it.
Ties are decided on (score, item) everywhere, so the order changes nothing
in the result.

Order: descending score, ties by lower item index. Users with fewer than n
eligible items are padded with index -1 and score -inf.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from _blas cimport axpy, gemm_nt
from _heap cimport replace_root, sift_down, worse


cdef extern from "scan_shim.h" nogil:
    int recs_any_at_least16(const float *x, float limit)

# Scores compared with a user's threshold at once (one vectorised pass).
cdef enum:
    RUN = 16  # recs_any_at_least16's length
    # history_top_n's heap pre-check length
    HEAP_RUN = 64
    # New candidates since the last cut that make a cut worth it before the
    # early-stop test of a tile
    CUT_BEFORE_TEST = 8


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


cdef int kth_smallest(int *values, int count, int k) noexcept nogil:
    """The k-th smallest of values[0:count] (1 <= k <= count, distinct); reorders values."""
    cdef int low = 0, high = count - 1, target = k - 1, middle, store, i
    cdef int pivot, value
    while low < high:
        middle = low + (high - low) // 2
        pivot = values[middle]
        values[middle] = values[high]
        values[high] = pivot
        store = low
        for i in range(low, high):
            value = values[i]
            values[i] = values[store]
            values[store] = value
            store += value < pivot
        values[high] = values[store]
        values[store] = pivot
        if store == target:
            return pivot
        if store < target:
            low = store + 1
        else:
            high = store - 1
    return values[target]


cdef float keep_best(float *scores, int *items, int count, int n, float *scratch,
                     int *tied, int *worst_item) noexcept nogil:
    """Cut count (> n) candidates to their n best (any order in, any order out).

    Returns the n-th best score s and sets *worst_item to the n-th best's item:
    the n best are those above s plus, among those equal to s, the lowest
    items up to n (ties by lower item).
    """
    cdef int k, kept = 0, greater = 0, ties, equal = 0, last
    cdef float score, nth
    for k in range(count):
        scratch[k] = scores[k]
    nth = nth_largest(scratch, count, n)
    for k in range(count):
        greater += scores[k] > nth
        tied[equal] = items[k]
        equal += scores[k] == nth
    ties = n - greater  # >= 1: the n-th best itself scores nth
    if equal == ties:
        last = tied[0]
        for k in range(1, equal):
            last = max(last, tied[k])
    else:
        last = kth_smallest(tied, equal, ties)
    for k in range(count):  # branch-free filter
        score = scores[k]
        scores[kept] = score
        items[kept] = items[k]
        kept += (score > nth) | ((score == nth) & (items[k] <= last))
    worst_item[0] = last
    return nth


cdef inline int append_better(const float *row_scores, const int *row_items, int length,
                              float *scores, int *items, int count, float limit,
                              int limit_item) noexcept nogil:
    """Append the entries ranking above (limit, limit_item); returns the new count.

    Branch-free: every entry is written, the count moves only for the better ones.
    """
    cdef int k, item
    cdef float score
    for k in range(length):
        score = row_scores[k]
        item = row_items[k]
        scores[count] = score
        items[count] = item
        count += (score > limit) | ((score == limit) & (item < limit_item))
    return count


cdef inline int offer_row(const float *row_scores, const int *row_items, int size,
                          float *scores, int *items, int count, int capacity, int n,
                          float *threshold, int *threshold_item, float *scratch,
                          int *tied) noexcept nogil:
    """Append the entries of a row of scores that beat the user's n-th best so far.

    Returns the new count; a full buffer is first cut back to its n best,
    which raises the threshold (score, item).
    """
    cdef int run = 0, length
    cdef int full = size - size % RUN
    cdef float limit = threshold[0]
    cdef int limit_item = threshold_item[0]
    while run < full:
        if recs_any_at_least16(row_scores + run, limit):
            if count + RUN > capacity:  # then count > n (capacity >= n + RUN)
                limit = keep_best(scores, items, count, n, scratch, tied, &limit_item)
                count = n
            count = append_better(row_scores + run, row_items + run, RUN, scores, items,
                                  count, limit, limit_item)
        run += RUN
    length = size - full
    if length:
        if count + length > capacity:
            limit = keep_best(scores, items, count, n, scratch, tied, &limit_item)
            count = n
        count = append_better(row_scores + full, row_items + full, length, scores, items,
                              count, limit, limit_item)
    threshold[0] = limit
    threshold_item[0] = limit_item
    return count


cdef struct Candidates:
    # Per user of a block: capacity (score, item) slots, the count held and
    # the n-th best (score, item) at the last cut.
    float *scores
    int *items
    int *counts
    float *thresholds
    int *threshold_items
    int capacity
    # Scratch of one cut: capacity floats and ints.
    float *scratch
    int *tied


cdef void top_n_block(const float *U, int n_block, const float *V, const int *item_ids,
                      int n_items, int f, int n, const double *user_norms,
                      const double *tile_bounds, const long long *exclude_indptr,
                      const int *exclude_indices, const long long *exclude_rows, float *tile,
                      int tile_items, float *gathered, int *active, long long *cursor,
                      Candidates *c, float *out_scores, int *out_items) noexcept nogil:
    """Top n of users U[0:n_block] into out rows 0..n_block-1 (row stride n).

    Items are taken in the order of V's rows (item_ids[r] is row r's item),
    tile t's rows having norms <= tile_bounds[t] / (the rounding margin);
    user u leaves the block for good once its n-th best score beats
    user_norms[u] * tile_bounds[t], the most any later item can score.
    """
    cdef int u, a, k, t = 0, start, size, count, n_active = n_block, kept
    cdef long long row, end
    cdef Py_ssize_t slots
    cdef float *row_scores = NULL
    cdef const float *A = U
    cdef double bound

    for u in range(n_block):
        c.counts[u] = 0
        c.thresholds[u] = -INFINITY
        c.threshold_items[u] = -1
        active[u] = u
        row = exclude_rows[u]
        cursor[u] = exclude_indptr[row] if row >= 0 else 0

    start = 0
    while start < n_items:
        size = min(tile_items, n_items - start)
        if t > 0:
            kept = 0
            for a in range(n_active):
                u = active[a]
                slots = <Py_ssize_t>u * c.capacity
                # (plus an absolute margin for float32 products that underflow)
                bound = user_norms[u] * tile_bounds[t] + 1e-30
                # The threshold of the last cut is a lower bound of the n-th
                # best (-inf before the first); when it fails the test, a
                # cut of the candidates added since gives the exact one.
                if c.thresholds[u] > bound:
                    continue
                if c.counts[u] >= n + CUT_BEFORE_TEST:
                    c.thresholds[u] = keep_best(c.scores + slots, c.items + slots, c.counts[u],
                                                n, c.scratch, c.tied, &c.threshold_items[u])
                    c.counts[u] = n
                    if c.thresholds[u] > bound:
                        continue
                active[kept] = u
                kept += 1
            if kept == 0:
                break
            if kept < n_active:
                n_active = kept
                for a in range(n_active):
                    memcpy(gathered + <Py_ssize_t>a * f, U + <Py_ssize_t>active[a] * f,
                           sizeof(float) * f)
                A = gathered
        gemm_nt(n_active, size, f, 1.0, A, f, V + <Py_ssize_t>start * f, f, 0.0, tile, size)
        for a in range(n_active):
            u = active[a]
            row_scores = tile + <Py_ssize_t>a * size
            row = exclude_rows[u]
            if row >= 0:
                end = exclude_indptr[row + 1]
                while cursor[u] < end and exclude_indices[cursor[u]] < start + size:
                    row_scores[exclude_indices[cursor[u]] - start] = -INFINITY
                    cursor[u] += 1
            slots = <Py_ssize_t>u * c.capacity
            c.counts[u] = offer_row(row_scores, item_ids + start, size, c.scores + slots,
                                    c.items + slots, c.counts[u], c.capacity, n,
                                    &c.thresholds[u], &c.threshold_items[u], c.scratch,
                                    c.tied)
        start += size
        t += 1

    for u in range(n_block):
        slots = <Py_ssize_t>u * c.capacity
        count = c.counts[u]
        if count > n:
            keep_best(c.scores + slots, c.items + slots, count, n, c.scratch, c.tied,
                      &c.threshold_items[u])
            count = n
        sort_best_first(c.scores + slots, c.items + slots, count)
        for k in range(count):
            out_scores[<Py_ssize_t>u * n + k] = c.scores[slots + k]
            out_items[<Py_ssize_t>u * n + k] = c.items[slots + k]
        for k in range(count, n):
            out_scores[<Py_ssize_t>u * n + k] = -INFINITY
            out_items[<Py_ssize_t>u * n + k] = -1


def top_n(const float[:, ::1] U, const float[:, ::1] V, const int[::1] item_ids, int n,
          const double[::1] user_norms, const double[::1] tile_bounds,
          const long long[::1] exclude_indptr, const int[::1] exclude_indices,
          const long long[::1] exclude_rows, int[:, ::1] out_items, float[:, ::1] out_scores,
          int block_users, int tile_items, int num_threads):
    """Write the n best items of every row of U into out_items / out_scores.

    Parameters
    ----------
    U : float32 array, shape (m, f), the users to rank for
    V : float32 array, shape (n_items, f), the item vectors in the order they
        are scored (largest norm first lets users stop early)
    item_ids : int32 array, shape (n_items,): the item of each row of V (the
        index returned and compared on ties), all distinct
    n : int, >= 1
    user_norms : float64 array, shape (m,): the norms of U's rows
    tile_bounds : float64 array, one per tile of tile_items rows of V: at
        least the largest norm in the tile times the rounding margin of a
        float32 dot product, so that no computed score of a user u in tile t
        exceeds user_norms[u] * tile_bounds[t]; non-increasing. inf: no early stop.
    exclude_indptr, exclude_indices : int64 / int32 arrays, a CSR pattern over
        the rows of V, with sorted indices (at least one row; may be empty)
    exclude_rows : int64 array, shape (m,): the exclude row of each user, -1 for none
    out_items : int32 array, shape (m, n)
    out_scores : float32 array, shape (m, n)
    block_users, tile_items : int, the score tile's shape
    num_threads : int, >= 1

    Each thread holds a tile of block_users x tile_items floats,
    block_users x (2n + RUN) candidate pairs and block_users x f floats.
    """
    cdef int m = U.shape[0]
    cdef int f = U.shape[1]
    cdef int n_items = V.shape[0]
    cdef int n_blocks = (m + block_users - 1) // block_users
    cdef int capacity = 2 * n + RUN
    cdef int b, first, count
    cdef float *tile = NULL
    cdef float *gathered = NULL
    cdef int *active = NULL
    cdef long long *cursor = NULL
    cdef Candidates *c = NULL  # assigned inside the parallel block: one per thread
    cdef int tile_width = min(tile_items, max(n_items, 1))
    cdef const int *excluded = &exclude_indices[0] if exclude_indices.shape[0] else NULL
    cdef const int *ids = &item_ids[0] if item_ids.shape[0] else NULL
    cdef const double *bounds = &tile_bounds[0] if tile_bounds.shape[0] else NULL
    if m == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        tile = <float *>malloc(sizeof(float) * block_users * tile_width)
        gathered = <float *>malloc(sizeof(float) * block_users * f)
        active = <int *>malloc(sizeof(int) * block_users)
        cursor = <long long *>malloc(sizeof(long long) * block_users)
        c = <Candidates *>malloc(sizeof(Candidates))
        c.capacity = capacity
        c.scores = <float *>malloc(sizeof(float) * block_users * capacity)
        c.items = <int *>malloc(sizeof(int) * block_users * capacity)
        c.counts = <int *>malloc(sizeof(int) * block_users)
        c.thresholds = <float *>malloc(sizeof(float) * block_users)
        c.threshold_items = <int *>malloc(sizeof(int) * block_users)
        c.scratch = <float *>malloc(sizeof(float) * capacity)
        c.tied = <int *>malloc(sizeof(int) * capacity)
        try:
            for b in prange(n_blocks, schedule="dynamic"):
                first = b * block_users
                count = min(block_users, m - first)
                top_n_block(&U[first, 0], count, &V[0, 0], ids, n_items, f, n,
                            &user_norms[first], bounds, &exclude_indptr[0], excluded,
                            &exclude_rows[first], tile, tile_width, gathered, active, cursor,
                            c, &out_scores[first, 0], &out_items[first, 0])
        finally:
            free(tile)
            free(gathered)
            free(active)
            free(cursor)
            free(c.scores)
            free(c.items)
            free(c.counts)
            free(c.thresholds)
            free(c.threshold_items)
            free(c.scratch)
            free(c.tied)
            free(c)


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
