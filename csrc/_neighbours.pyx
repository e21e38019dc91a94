# cython: language_level=3
"""Item-based collaborative filtering: each user's n best items of
``history @ neighbours``, seen items excluded, with the reason of each.

The Python wrapper (django_recs.kernels.neighbours) validates the input and
converts the index arrays (int64 row pointers, int32 indices, float32
values); this module trusts what it gets.

How a user u is computed (one user per iteration of a parallel loop), with
a per-thread array of one 16-byte slot per item (total, strongest
contribution, reason: one cache line per update, not three):

1. Scatter: for every history entry (i, w) of u, in storage order, and every
   neighbour (j, s) of item i: ``total[j] += w * s`` in float32 (the order
   and precision of scipy's sparse product, so the scores are the same
   bits), and the contribution ``w * s`` (exact in double) replaces
   ``strongest[j]`` / ``reason[j]`` when it is strictly larger: the first
   history item reaching the maximum wins, and a maximum <= 0 is no reason.
   The first touch of j (reason still UNTOUCHED) puts it on a list of
   touched items.
2. Exclude: u's excluded items get a total of 0.
3. Select: the touched items whose total is not 0 (scipy's product drops
   exact zeros; excluded items were set to 0) become one 64-bit key each, the
   score's bits made order-preserving above the inverted item index, so a
   single integer comparison ranks them: descending score, ties to the
   lower item index. A quickselect moves the n largest keys to the front
   and an insertion sort orders them (cheaper than a heap of (score, item)
   pairs, whose two-part comparisons branch at every level).
4. Reset: only the touched entries are cleared, so a user costs its history
   times the neighbours, never the number of items.

The first touch is counted without a branch (the touched list is written
at every update and advances only on a first touch): a user's ~500 updates
hit random items, so a "first touch?" branch would mispredict often.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef extern from *:
    """
    #define RECS_PREFETCH(address) __builtin_prefetch((address), 0, 3)
    """
    void RECS_PREFETCH(const void* address) nogil

# Neighbour rows of history entries this far ahead are prefetched: each row
# is a short run at a random place in the neighbour arrays.
cdef enum:
    PREFETCH_AHEAD = 2

# The reason of an item no history entry of the user has reached yet
# (-1: reached, but no contribution was positive).
cdef enum:
    UNTOUCHED = -2


cdef struct Slot:
    double strongest
    float total
    int reason


cdef inline uint64_t rank_key(float score, int item) noexcept nogil:
    """A key that sorts like (score descending, item ascending), largest first."""
    cdef uint32_t bits
    memcpy(&bits, &score, sizeof(float))
    if bits & 0x80000000u:
        bits = ~bits  # negative: larger magnitude ranks lower
    else:
        bits = bits | 0x80000000u
    return (<uint64_t>bits << 32) | <uint64_t>(0xFFFFFFFFu - <uint32_t>item)


cdef inline int key_item(uint64_t key) noexcept nogil:
    return <int>(0xFFFFFFFFu - <uint32_t>(key & 0xFFFFFFFFu))


cdef inline void swap(uint64_t* keys, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef uint64_t kept = keys[a]
    keys[a] = keys[b]
    keys[b] = kept


cdef void select_largest(uint64_t* keys, Py_ssize_t count, Py_ssize_t n) noexcept nogil:
    """Reorder distinct keys so that keys[0:n] are the n largest (in any order); n < count."""
    cdef Py_ssize_t low = 0, high = count - 1, middle, i, store
    cdef uint64_t pivot, key
    while low < high:
        # Median of three as the pivot, parked at ``high`` during the partition.
        middle = low + (high - low) // 2
        if keys[middle] > keys[low]:
            swap(keys, middle, low)
        if keys[high] > keys[low]:
            swap(keys, high, low)
        if keys[middle] > keys[high]:
            swap(keys, middle, high)
        pivot = keys[high]
        store = low
        for i in range(low, high):
            # Branch-free: keys[store:i] are <= pivot, so the swap is harmless
            # when keys[i] stays on the right (the branch would be a coin toss).
            key = keys[i]
            keys[i] = keys[store]
            keys[store] = key
            store += key > pivot
        swap(keys, store, high)
        # keys[low:store] > pivot == keys[store] > keys[store + 1:high + 1]
        if store == n or store == n - 1:
            return
        if store < n:
            low = store + 1
        else:
            high = store - 1


cdef void sort_descending(uint64_t* keys, Py_ssize_t count) noexcept nogil:
    """Insertion sort, largest first (count is the list length n: small)."""
    cdef Py_ssize_t i, j
    cdef uint64_t key
    for i in range(1, count):
        key = keys[i]
        j = i - 1
        while j >= 0 and keys[j] < key:
            keys[j + 1] = keys[j]
            j -= 1
        keys[j + 1] = key


cdef inline void prefetch_row(const long long* s_indptr, const int* s_indices,
                              const float* s_data, int i) noexcept nogil:
    """Start loading the first cache lines of item i's neighbour row."""
    cdef long long first = s_indptr[i]
    if first < s_indptr[i + 1]:
        RECS_PREFETCH(&s_indices[first])
        RECS_PREFETCH(&s_data[first])


cdef void recommend_user(
    long long u,
    const long long* h_indptr, const int* h_indices, const float* h_data,
    const long long* s_indptr, const int* s_indices, const float* s_data,
    const long long* x_indptr, const int* x_indices, int n,
    Slot* slots, int* touched, uint64_t* keys, float* out_scores, int* out_items, int* out_reasons,
) noexcept nogil:
    """The n best items of user u and their reasons into the out rows (length n)."""
    cdef long long p, q
    cdef int i, j, k
    cdef Py_ssize_t count = 0, eligible = 0, selected
    cdef float w, s
    cdef double contribution
    cdef bint larger
    cdef Slot* slot
    cdef long long start = h_indptr[u], end = h_indptr[u + 1]
    for p in range(start, min(start + PREFETCH_AHEAD, end)):
        prefetch_row(s_indptr, s_indices, s_data, h_indices[p])
    for p in range(start, end):
        if p + PREFETCH_AHEAD < end:
            prefetch_row(s_indptr, s_indices, s_data, h_indices[p + PREFETCH_AHEAD])
        i = h_indices[p]
        w = h_data[p]
        for q in range(s_indptr[i], s_indptr[i + 1]):
            j = s_indices[q]
            s = s_data[q]
            slot = &slots[j]
            touched[count] = j
            count += slot.reason == UNTOUCHED  # the list advances on the first touch only
            slot.total = slot.total + w * s
            contribution = <double>w * <double>s
            larger = contribution > slot.strongest
            slot.strongest = contribution if larger else slot.strongest
            slot.reason = i if larger else max(slot.reason, -1)
    for p in range(x_indptr[u], x_indptr[u + 1]):
        slots[x_indices[p]].total = 0
    for k in range(count):
        j = touched[k]
        keys[eligible] = rank_key(slots[j].total, j)
        eligible += slots[j].total != 0
    selected = min(eligible, n)
    if eligible > n:
        select_largest(keys, eligible, n)
    sort_descending(keys, selected)
    for k in range(selected):
        j = key_item(keys[k])
        out_items[k] = j
        out_scores[k] = slots[j].total
        out_reasons[k] = slots[j].reason  # -1 when no contribution was > 0
    for k in range(selected, n):
        out_items[k] = -1
        out_scores[k] = 0
        out_reasons[k] = -1
    for k in range(count):
        clear(&slots[touched[k]])


cdef inline void clear(Slot* slot) noexcept nogil:
    slot.strongest = 0
    slot.total = 0
    slot.reason = UNTOUCHED


cdef inline void clear_all(Slot* slots, int width) noexcept nogil:
    cdef int k
    for k in range(width):
        clear(&slots[k])


def neighbour_top_n(const long long[::1] h_indptr, const int[::1] h_indices,
                    const float[::1] h_data,
                    const long long[::1] s_indptr, const int[::1] s_indices,
                    const float[::1] s_data, int width, int n,
                    const long long[::1] x_indptr, const int[::1] x_indices,
                    int[:, ::1] out_items, float[:, ::1] out_scores, int[:, ::1] out_reasons,
                    int num_threads):
    """Write every user's n best items, scores and reasons into the out arrays.

    Parameters
    ----------
    h_indptr, h_indices, h_data : int64 / int32 / float32 arrays, the
        history CSR (m rows, one column per neighbour row)
    s_indptr, s_indices, s_data : int64 / int32 / float32 arrays, the
        neighbours CSR (``width`` columns)
    width : int, the number of items that can be recommended
    n : int, >= 1
    x_indptr, x_indices : int64 / int32 arrays, a CSR pattern of m rows and
        ``width`` columns: items never selected
    out_items, out_reasons : int32 arrays, shape (m, n)
    out_scores : float32 array, shape (m, n)
    num_threads : int, >= 1
    """
    cdef long long m = h_indptr.shape[0] - 1
    cdef long long u
    cdef Slot* slots = NULL
    cdef int* touched = NULL
    cdef uint64_t* keys = NULL
    cdef const int* history_indices = &h_indices[0] if h_indices.shape[0] else NULL
    cdef const float* history_data = &h_data[0] if h_data.shape[0] else NULL
    cdef const int* neighbour_indices = &s_indices[0] if s_indices.shape[0] else NULL
    cdef const float* neighbour_data = &s_data[0] if s_data.shape[0] else NULL
    cdef const int* excluded = &x_indices[0] if x_indices.shape[0] else NULL
    if m <= 0 or width <= 0 or n <= 0:
        return
    with nogil, parallel(num_threads=num_threads):
        slots = <Slot*>malloc(sizeof(Slot) * width)
        # One more than items: the scatter writes at the end of the list
        # before it knows whether the item is new (then it does not advance).
        touched = <int*>malloc(sizeof(int) * (width + 1))
        keys = <uint64_t*>malloc(sizeof(uint64_t) * width)
        try:
            clear_all(slots, width)
            for u in prange(m, schedule="dynamic", chunksize=16):
                recommend_user(u, &h_indptr[0], history_indices, history_data,
                               &s_indptr[0], neighbour_indices, neighbour_data,
                               &x_indptr[0], excluded, n,
                               slots, touched, keys,
                               &out_scores[u, 0], &out_items[u, 0], &out_reasons[u, 0])
        finally:
            free(slots)
            free(touched)
            free(keys)
