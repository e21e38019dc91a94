# A bounded heap of the best (score, item) pairs, worst entry at the root,
# in two parallel arrays. The similarity and top-n kernels keep one per row.
#
# Order: higher score first, ties by lower item index. Fused over the item
# index type: the similarity kernel keeps 64-bit item ids, top-n 32-bit ones.

ctypedef fused heap_item:
    int
    long long


cdef inline bint worse(float score_a, heap_item item_a,
                       float score_b, heap_item item_b) noexcept nogil:
    """Entry a ranks below entry b: lower score, or equal score and higher index."""
    return score_a < score_b or (score_a == score_b and item_a > item_b)


cdef inline void sift_down(float* scores, heap_item* items, Py_ssize_t size,
                           Py_ssize_t position) noexcept nogil:
    """Restore the heap below ``position`` (whose entry may rank too high there)."""
    cdef float score = scores[position]
    cdef heap_item item = items[position]
    cdef Py_ssize_t child
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and worse(scores[child + 1], items[child + 1],
                                      scores[child], items[child]):
            child += 1
        if not worse(scores[child], items[child], score, item):
            break
        scores[position] = scores[child]
        items[position] = items[child]
        position = child
    scores[position] = score
    items[position] = item


cdef inline void sift_up(float* scores, heap_item* items, Py_ssize_t position) noexcept nogil:
    """Restore the heap above ``position`` (a new entry appended there)."""
    cdef float score = scores[position]
    cdef heap_item item = items[position]
    cdef Py_ssize_t parent
    while position > 0:
        parent = (position - 1) // 2
        if not worse(score, item, scores[parent], items[parent]):
            break
        scores[position] = scores[parent]
        items[position] = items[parent]
        position = parent
    scores[position] = score
    items[position] = item


cdef inline void replace_root(float* scores, heap_item* items, Py_ssize_t size,
                              float score, heap_item item) noexcept nogil:
    """Put (score, item) in place of the worst entry and restore the heap."""
    scores[0] = score
    items[0] = item
    sift_down(scores, items, size, 0)
