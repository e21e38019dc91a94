# cython: language_level=3
"""User-based collaborative filtering: each user's n best items from the votes of its neighbours.

The Python wrapper (django_recs.kernels.vote) validates the input and
converts the index arrays (int64 row pointers, int32 indices); this module
trusts what it gets.

How a user u is computed (one user per iteration of a parallel loop):

1. Vote: for every neighbour v of u (similarity s) and every item j of v,
   add s * x_vj to a dense per-thread accumulator of n_items doubles, noting
   j on a list of touched items the first time.
2. Exclude: u's seen items that were touched are marked excluded.
3. Select: the touched items are scored (float32, rounded once from the
   double sum), the accumulator is reset through the list, and a bounded
   heap keeps the best n: descending score, ties to the lower item index.
4. Reasons: for each recommended item j, the item i != j of u's history
   with the largest sum of s over the neighbours v that have both i and j
   (ties to the lower index). A second pass over the neighbours' rows finds,
   per neighbour, which history items and which recommendations it has
   (two per-thread lookup arrays, item -> history position and item -> rank),
   and adds s to an (n x history length) block of sums. Long histories are
   done in slices of recommendations so the block stays within its buffer.

Every sum is accumulated in the order of u's neighbours (best first), so the
result does not depend on the thread count.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _heap cimport replace_root, sift_down, sift_up, worse

ctypedef fused floating:
    float
    double

# Accumulator states below zero (every real vote is >= 0).
cdef double UNTOUCHED = -1.0
cdef double EXCLUDED = -2.0


cdef Py_ssize_t _vote(
    Py_ssize_t local,
    const long long* x_indptr, const int* x_indices, const floating* x_data,
    const long long* nb_indptr, const int* nb_indices, const float* nb_data,
    double* accumulator, int* touched,
) noexcept nogil:
    """Sum the neighbours' weighted items into the accumulator; returns the touched count."""
    cdef Py_ssize_t n_touched = 0
    cdef long long p, q
    cdef int v, j
    cdef double similarity, value, vote
    for p in range(nb_indptr[local], nb_indptr[local + 1]):
        v = nb_indices[p]
        similarity = nb_data[p]
        for q in range(x_indptr[v], x_indptr[v + 1]):
            j = x_indices[q]
            vote = similarity * x_data[q]
            value = accumulator[j]
            if value < 0:
                touched[n_touched] = j
                n_touched += 1
                accumulator[j] = vote
            else:
                accumulator[j] = value + vote
    return n_touched


cdef Py_ssize_t _select(
    Py_ssize_t n_touched, const int* touched, double* accumulator, Py_ssize_t n,
    float* heap_scores, int* heap_items,
) noexcept nogil:
    """Keep the best n positive, non-excluded touched items; reset the accumulator."""
    cdef Py_ssize_t t, size = 0
    cdef int j
    cdef double value
    cdef float score
    for t in range(n_touched):
        j = touched[t]
        value = accumulator[j]
        accumulator[j] = UNTOUCHED
        if value <= 0:  # excluded, or no positive vote
            continue
        score = <float> value
        if not score > 0:
            continue
        if size < n:
            heap_scores[size] = score
            heap_items[size] = j
            sift_up(heap_scores, heap_items, size)
            size += 1
        elif worse(heap_scores[0], heap_items[0], score, j):
            replace_root(heap_scores, heap_items, size, score, j)
    return size


cdef void _write_sorted(float* heap_scores, int* heap_items, Py_ssize_t size,
                        int* out_items, float* out_scores) noexcept nogil:
    """Heap-sort into the output: the worst entry goes last, the best first."""
    cdef Py_ssize_t end
    for end in range(size - 1, -1, -1):
        out_scores[end] = heap_scores[0]
        out_items[end] = heap_items[0]
        heap_scores[0] = heap_scores[end]
        heap_items[0] = heap_items[end]
        sift_down(heap_scores, heap_items, end, 0)


cdef void _reasons(
    Py_ssize_t user, Py_ssize_t local, Py_ssize_t size,
    const long long* x_indptr, const int* x_indices,
    const long long* nb_indptr, const int* nb_indices, const float* nb_data,
    const int* out_items, int* out_reasons,
    int* history_position, int* rank_of, int* positions, int* slots,
    double* sums, Py_ssize_t capacity,
) noexcept nogil:
    """For each of the ``size`` recommendations, the history item most shared with its voters."""
    cdef long long first = x_indptr[user]
    cdef Py_ssize_t h = x_indptr[user + 1] - first
    cdef Py_ssize_t per_slice, slice_start, slice_end, r, a, b, p, n_positions, n_slots
    cdef long long nb, q, base
    cdef int j, position, rank
    cdef double similarity, best
    cdef Py_ssize_t best_position
    if h == 0:
        return
    for p in range(h):
        history_position[x_indices[first + p]] = <int> p
    for r in range(size):
        rank_of[out_items[r]] = <int> r
    per_slice = capacity // h
    if per_slice < 1:
        per_slice = 1
    slice_start = 0
    while slice_start < size:
        slice_end = slice_start + per_slice
        if slice_end > size:
            slice_end = size
        memset(sums, 0, (slice_end - slice_start) * h * sizeof(double))
        for nb in range(nb_indptr[local], nb_indptr[local + 1]):
            similarity = nb_data[nb]
            n_positions = 0
            n_slots = 0
            for q in range(x_indptr[nb_indices[nb]], x_indptr[nb_indices[nb] + 1]):
                j = x_indices[q]
                position = history_position[j]
                if position >= 0:
                    positions[n_positions] = position
                    n_positions += 1
                rank = rank_of[j]
                if rank >= slice_start and rank < slice_end:
                    slots[n_slots] = rank
                    n_slots += 1
            for a in range(n_slots):
                r = slots[a]
                j = out_items[r]
                base = (r - slice_start) * h
                for b in range(n_positions):
                    p = positions[b]
                    if x_indices[first + p] != j:  # an item is not its own reason
                        sums[base + p] += similarity
        for r in range(slice_start, slice_end):
            base = (r - slice_start) * h
            best = 0.0
            best_position = -1
            for p in range(h):
                if sums[base + p] > best:  # strictly: ties keep the lower item
                    best = sums[base + p]
                    best_position = p
            if best_position >= 0:
                out_reasons[r] = x_indices[first + best_position]
        slice_start = slice_end
    for p in range(h):
        history_position[x_indices[first + p]] = -1
    for r in range(size):
        rank_of[out_items[r]] = -1


def neighbour_vote(
    const long long[::1] x_indptr, const int[::1] x_indices, const floating[::1] x_data,
    const long long[::1] nb_indptr, const int[::1] nb_indices, const float[::1] nb_data,
    const long long[::1] seen_indptr, const int[::1] seen_indices,
    Py_ssize_t user_start, Py_ssize_t n_items,
    int[:, ::1] out_items, float[:, ::1] out_scores, int[:, ::1] out_reasons,
    bint with_reasons, Py_ssize_t reason_capacity, Py_ssize_t max_history, int num_threads,
):
    """The n best items of the users [user_start, user_start + m) from their neighbours' votes.

    Parameters
    ----------
    x_indptr, x_indices, x_data : X's CSR arrays, shapes (n_users + 1,), (nnz,), (nnz,)
        The users x items weights (int64, int32, float32 or float64);
        indices sorted within each row, no explicit zeros, no duplicates.
    nb_indptr, nb_indices, nb_data : the neighbours' CSR arrays, shapes
        (m + 1,), (nnz_nb,), (nnz_nb,): row r holds the neighbours (user
        indexes) of user user_start + r and their similarities (float32 >= 0),
        in the order their votes are summed.
    seen_indptr, seen_indices : CSR pattern of the seen items, shape
        (n_users + 1,), (nnz_seen,); row u's items are never recommended to u.
    user_start : the user of the first neighbour row.
    n_items : int, columns of X.
    out_items : int32 array, shape (m, n), filled with -1 on entry
    out_scores : float32 array, shape (m, n)
    out_reasons : int32 array, shape (m, n), filled with -1 on entry
    with_reasons : bool, compute out_reasons.
    reason_capacity : doubles per thread for the reason sums; at least
        ``max_history``.
    max_history : the longest row of X among the users (its history).
    num_threads : int >= 1
    """
    cdef Py_ssize_t m = out_items.shape[0]
    cdef Py_ssize_t n = out_items.shape[1]
    cdef Py_ssize_t local, user, n_touched, size, t = 0
    cdef long long s
    cdef int failed = 0
    cdef int* failed_flag = &failed
    # Assigned per thread inside the parallel block (initialised here only
    # because OpenMP copies them in as firstprivate).
    cdef double* accumulator = NULL
    cdef int* touched = NULL
    cdef float* heap_scores = NULL
    cdef int* heap_items = NULL
    cdef int* history_position = NULL
    cdef int* rank_of = NULL
    cdef int* positions = NULL
    cdef int* slots = NULL
    cdef double* sums = NULL
    # Pointers into the shared read-only arrays (empty views have no data).
    cdef const long long* x_indptr_ptr = &x_indptr[0]
    cdef const int* x_indices_ptr = &x_indices[0] if x_indices.shape[0] else NULL
    cdef const floating* x_data_ptr = &x_data[0] if x_data.shape[0] else NULL
    cdef const long long* nb_indptr_ptr = &nb_indptr[0]
    cdef const int* nb_indices_ptr = &nb_indices[0] if nb_indices.shape[0] else NULL
    cdef const float* nb_data_ptr = &nb_data[0] if nb_data.shape[0] else NULL
    cdef const long long* seen_indptr_ptr = &seen_indptr[0]
    cdef const int* seen_indices_ptr = &seen_indices[0] if seen_indices.shape[0] else NULL
    if m == 0 or n == 0:
        return
    cdef int* out_items_ptr = &out_items[0, 0]
    cdef float* out_scores_ptr = &out_scores[0, 0]
    cdef int* out_reasons_ptr = &out_reasons[0, 0]

    with nogil, parallel(num_threads=num_threads):
        accumulator = <double*> malloc(n_items * sizeof(double))
        touched = <int*> malloc(n_items * sizeof(int))
        heap_scores = <float*> malloc((n + 1) * sizeof(float))
        heap_items = <int*> malloc((n + 1) * sizeof(int))
        if with_reasons:
            history_position = <int*> malloc(n_items * sizeof(int))
            rank_of = <int*> malloc(n_items * sizeof(int))
            positions = <int*> malloc((max_history + 1) * sizeof(int))
            slots = <int*> malloc((n + 1) * sizeof(int))
            sums = <double*> malloc((reason_capacity + 1) * sizeof(double))
        try:
            if (accumulator == NULL or touched == NULL or heap_scores == NULL
                    or heap_items == NULL
                    or (with_reasons and (history_position == NULL or rank_of == NULL
                                          or positions == NULL or slots == NULL
                                          or sums == NULL))):
                failed_flag[0] = 1
            else:
                for t in range(n_items):
                    accumulator[t] = UNTOUCHED
                    if with_reasons:
                        history_position[t] = -1
                        rank_of[t] = -1
            for local in prange(m, schedule="dynamic", chunksize=16):
                if failed_flag[0]:
                    continue
                user = user_start + local
                n_touched = _vote(local, x_indptr_ptr, x_indices_ptr, x_data_ptr,
                                  nb_indptr_ptr, nb_indices_ptr, nb_data_ptr,
                                  accumulator, touched)
                for s in range(seen_indptr_ptr[user], seen_indptr_ptr[user + 1]):
                    if accumulator[seen_indices_ptr[s]] >= 0:
                        accumulator[seen_indices_ptr[s]] = EXCLUDED
                size = _select(n_touched, touched, accumulator, n, heap_scores, heap_items)
                if size == 0:
                    continue
                _write_sorted(heap_scores, heap_items, size,
                              out_items_ptr + local * n, out_scores_ptr + local * n)
                if with_reasons:
                    _reasons(user, local, size, x_indptr_ptr, x_indices_ptr,
                             nb_indptr_ptr, nb_indices_ptr, nb_data_ptr,
                             out_items_ptr + local * n, out_reasons_ptr + local * n,
                             history_position, rank_of, positions, slots,
                             sums, reason_capacity)
        finally:
            free(accumulator)
            free(touched)
            free(heap_scores)
            free(heap_items)
            free(history_position)
            free(rank_of)
            free(positions)
            free(slots)
            free(sums)
    if failed:
        raise MemoryError("neighbour_vote: out of memory for the per-thread buffers")
