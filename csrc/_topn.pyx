# cython: language_level=3
"""Top-n items per user from factor matrices, without the dense score matrix.

Users are taken in blocks and items in tiles; each (block x tile) of scores
is one ``sgemm`` into a per-thread buffer that fits in cache, the tile's
excluded items are set to -inf, and every user keeps a bounded heap of its n
best (score, item) pairs. A vectorisable pre-check skips runs of scores that
cannot enter the heap, which is almost all of them once the heap is warm.

Order: descending score, ties by lower item index. Users with fewer than n
eligible items are padded with index -1 and score -inf (the heap starts
filled with those sentinels).
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _blas cimport axpy, gemm_nt
from _heap cimport replace_root

# Scores checked at once by the vectorised "anything better than the worst?"
# test before looking at them one by one.
cdef enum:
    RUN = 64


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


cdef void top_n_block(const float *U, int n_block, const float *V, int n_items, int f, int n,
                      const long long *exclude_indptr, const int *exclude_indices,
                      const long long *exclude_rows, float *tile, int tile_items,
                      long long *cursor, float *out_scores, int *out_items) noexcept nogil:
    """Top n of users U[0:n_block] into out rows 0..n_block-1 (row stride n)."""
    cdef int u, k, start, size, run
    cdef long long row, end
    cdef Py_ssize_t heap
    cdef float *row_scores = NULL

    for u in range(n_block):
        heap = <Py_ssize_t>u * n
        for k in range(n):
            out_scores[heap + k] = -INFINITY
            out_items[heap + k] = -1
        row = exclude_rows[u]
        cursor[u] = exclude_indptr[row] if row >= 0 else 0

    start = 0
    while start < n_items:
        size = min(tile_items, n_items - start)
        gemm_nt(n_block, size, f, 1.0, U, f, V + <Py_ssize_t>start * f, f, 0.0, tile, size)
        for u in range(n_block):
            row_scores = tile + u * size
            row = exclude_rows[u]
            if row >= 0:
                end = exclude_indptr[row + 1]
                while cursor[u] < end and exclude_indices[cursor[u]] < start + size:
                    row_scores[exclude_indices[cursor[u]] - start] = -INFINITY
                    cursor[u] += 1
            run = 0
            while run < size:
                select_run(row_scores, run, min(RUN, size - run), start,
                           out_scores + <Py_ssize_t>u * n, out_items + <Py_ssize_t>u * n, n)
                run += RUN
        start += size

    for u in range(n_block):
        sort_heap(out_scores + <Py_ssize_t>u * n, out_items + <Py_ssize_t>u * n, n)


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
    """
    cdef int m = U.shape[0]
    cdef int f = U.shape[1]
    cdef int n_items = V.shape[0]
    cdef int n_blocks = (m + block_users - 1) // block_users
    cdef int b, first, count
    cdef float *tile = NULL
    cdef long long *cursor = NULL
    cdef int tile_width = min(tile_items, max(n_items, 1))
    cdef const int *excluded = &exclude_indices[0] if exclude_indices.shape[0] else NULL
    if m == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        tile = <float *>malloc(sizeof(float) * block_users * tile_width)
        cursor = <long long *>malloc(sizeof(long long) * block_users)
        try:
            for b in prange(n_blocks, schedule="dynamic"):
                first = b * block_users
                count = min(block_users, m - first)
                top_n_block(&U[first, 0], count, &V[0, 0], n_items, f, n,
                            &exclude_indptr[0], excluded, &exclude_rows[first], tile,
                            tile_width, cursor, &out_scores[first, 0], &out_items[first, 0])
        finally:
            free(tile)
            free(cursor)


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
        select_run(row, run, min(RUN, width - run), 0, out_scores, out_items, n)
        run += RUN
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
