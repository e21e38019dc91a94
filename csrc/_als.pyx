# cython: language_level=3
"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): one half-sweep at a time.

A half-sweep solves every row u of a confidence matrix C (rows x columns,
CSR) against fixed column factors Y:

    (Y'Y + Y'(C_u - I)Y + reg I) x_u = Y' C_u p_u,   p_u = 1 where C_u > 0.

``A0 = Y'Y + reg I`` is shared by all rows and computed once per half-sweep
by the caller; each row then only touches its own non-zeros. Two solvers:

- :func:`least_squares_cholesky` builds the row's system with two BLAS
  ``ssyrk`` calls on the gathered, confidence-scaled rows of Y and solves it
  with LAPACK ``sposv``.
- :func:`least_squares_cg` runs ``cg_steps`` conjugate-gradient steps
  (Takacs, Pilaszy & Tikk 2011) warm-started from the current x_u. Rows are
  processed in blocks: the dense products with A0 are one ``sgemm`` per step
  for the whole block, and the block's rows of Y are gathered once into a
  per-thread buffer so the sparse products are ``sgemv`` calls on contiguous
  memory that stays in cache across the steps.

Inputs are trusted (the Python wrapper validates): indptr int64, indices
int32, data float32 (all > 0), factors float32 C-contiguous.
"""

import numpy as np

from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from _blas cimport axpy, dot, gemm_nn, gemv_columns, gemv_rows, posv, scal, syrk_gram

# A residual norm below this means the row is solved; matches the usual
# float32 CG stopping rule.
cdef float CONVERGED = 1e-20

cdef enum Product:
    RESIDUAL = 0    # w_i = c_i - (c_i - 1) y_i.v   (right-hand side minus the sparse part)
    CURVATURE = 1   # w_i = (c_i - 1) y_i.v          (the sparse part of A v)


def plan_blocks(const long long[::1] indptr, int max_rows, long long max_nnz):
    """Split rows into consecutive blocks for the CG solver.

    Each block has at most ``max_rows`` rows and at most ``max_nnz``
    non-zeros, except a single row longer than ``max_nnz``, which is a block
    of its own (processed in chunks).

    Returns
    -------
    ndarray of int64, shape (n_blocks + 1,): block b is rows
    ``starts[b]:starts[b + 1]``.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t start = 0, end
    starts = [0]
    while start < n_rows:
        end = start + 1
        while (end < n_rows and end - start < max_rows
               and indptr[end + 1] - indptr[start] <= max_nnz):
            end += 1
        starts.append(end)
        start = end
    return np.asarray(starts, dtype=np.int64)


cdef inline void gather_rows(const int *indices, Py_ssize_t count, const float *Y, int f,
                             float *out) noexcept nogil:
    """out[q] = Y[indices[q]] for q < count (rows of length f)."""
    cdef Py_ssize_t q
    for q in range(count):
        memcpy(out + q * f, Y + <Py_ssize_t>indices[q] * f, sizeof(float) * f)


cdef inline void apply_gathered(const float *G, const float *confidence, int count, int f,
                                const float *v, float *out, float *w,
                                Product product) noexcept nogil:
    """out += G^T w with w_i from G v (see Product); G is count x f."""
    cdef int q
    cdef float c
    gemv_rows(count, f, 1.0, G, v, 0.0, w)
    if product == RESIDUAL:
        for q in range(count):
            c = confidence[q]
            w[q] = c - (c - 1.0) * w[q]
    else:
        for q in range(count):
            w[q] = (confidence[q] - 1.0) * w[q]
    gemv_columns(count, f, 1.0, G, w, 1.0, out)


cdef inline void apply_chunked(const int *indices, const float *confidence, long long count,
                               const float *Y, int f, const float *v, float *out,
                               float *G, float *w, long long chunk,
                               Product product) noexcept nogil:
    """apply_gathered for a row too long for the buffer: gather and apply chunk by chunk."""
    cdef long long start = 0, size
    while start < count:
        size = min(chunk, count - start)
        gather_rows(indices + start, size, Y, f, G)
        apply_gathered(G, confidence + start, <int>size, f, v, out, w, product)
        start += size


cdef void cg_block(long long first, long long last, const long long *indptr,
                   const int *indices, const float *data, float *X, const float *Y,
                   const float *A0, int f, int cg_steps, float *G, float *w,
                   long long buffer_rows, float *R, float *P, float *AP,
                   float *rsold) noexcept nogil:
    """cg_steps CG steps for rows first..last-1 of X, in lockstep.

    rsold[u] < 0 marks a finished row (empty, or residual below CONVERGED).
    """
    cdef int nb = <int>(last - first)
    cdef long long base = indptr[first]
    cdef bint gathered = indptr[last] - base <= buffer_rows
    cdef int u, step
    cdef long long begin, count
    cdef float *x = NULL
    cdef float *r = NULL
    cdef float *p = NULL
    cdef float *ap = NULL
    cdef float alpha, rsnew
    cdef bint any_active = False

    if gathered:
        gather_rows(indices + base, indptr[last] - base, Y, f, G)

    # R = -X_block A0, then add the sparse part and Y' C_u p_u per row.
    gemm_nn(nb, f, f, -1.0, X + first * f, A0, 0.0, R, f)
    for u in range(nb):
        begin = indptr[first + u]
        count = indptr[first + u + 1] - begin
        x = X + (first + u) * f
        r = R + u * f
        if count == 0:
            # No interactions: the exact solution is 0.
            memset(x, 0, sizeof(float) * f)
            rsold[u] = -1.0
            continue
        if gathered:
            apply_gathered(G + (begin - base) * f, data + begin, <int>count, f, x, r, w,
                           RESIDUAL)
        else:
            apply_chunked(indices + begin, data + begin, count, Y, f, x, r, G, w,
                          buffer_rows, RESIDUAL)
        memcpy(P + u * f, r, sizeof(float) * f)
        rsold[u] = dot(f, r, r)
        if rsold[u] < CONVERGED:
            rsold[u] = -1.0
        else:
            any_active = True

    for step in range(cg_steps):
        if not any_active:
            break
        any_active = False
        gemm_nn(nb, f, f, 1.0, P, A0, 0.0, AP, f)
        for u in range(nb):
            if rsold[u] < 0:
                continue
            begin = indptr[first + u]
            count = indptr[first + u + 1] - begin
            x = X + (first + u) * f
            r = R + u * f
            p = P + u * f
            ap = AP + u * f
            if gathered:
                apply_gathered(G + (begin - base) * f, data + begin, <int>count, f, p, ap, w,
                               CURVATURE)
            else:
                apply_chunked(indices + begin, data + begin, count, Y, f, p, ap, G, w,
                              buffer_rows, CURVATURE)
            alpha = rsold[u] / dot(f, p, ap)
            axpy(f, alpha, p, x)
            axpy(f, -alpha, ap, r)
            rsnew = dot(f, r, r)
            if rsnew < CONVERGED:
                rsold[u] = -1.0
                continue
            # p = r + (rsnew / rsold) p
            scal(f, rsnew / rsold[u], p)
            axpy(f, 1.0, r, p)
            rsold[u] = rsnew
            any_active = True


def least_squares_cg(const long long[::1] indptr, const int[::1] indices,
                     const float[::1] data, float[:, ::1] X, const float[:, ::1] Y,
                     const float[:, ::1] A0, const long long[::1] blocks, int cg_steps,
                     long long buffer_rows, int num_threads):
    """One conjugate-gradient half-sweep, updating X in place.

    Parameters
    ----------
    indptr : int64 array, shape (n_rows + 1,)
    indices : int32 array, shape (nnz,)
    data : float32 array, shape (nnz,), confidences > 0
    X : float32 array, shape (n_rows, f), warm start; overwritten
    Y : float32 array, shape (n_columns, f)
    A0 : float32 array, shape (f, f), Y'Y + reg I
    blocks : int64 array from :func:`plan_blocks` (same ``buffer_rows``)
    cg_steps : int, >= 1
    buffer_rows : int, rows of Y gathered per thread at once
    num_threads : int, >= 1
    """
    cdef int f = X.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0] - 1
    cdef Py_ssize_t b
    cdef int max_rows = 1
    cdef float *G = NULL
    cdef float *w = NULL
    cdef float *R = NULL
    cdef float *P = NULL
    cdef float *AP = NULL
    cdef float *rsold = NULL
    if n_blocks <= 0 or f == 0:
        return
    max_rows = int(np.max(np.diff(np.asarray(blocks))))
    with nogil, parallel(num_threads=num_threads):
        G = <float *>malloc(sizeof(float) * buffer_rows * f)
        w = <float *>malloc(sizeof(float) * buffer_rows)
        R = <float *>malloc(sizeof(float) * max_rows * f)
        P = <float *>malloc(sizeof(float) * max_rows * f)
        AP = <float *>malloc(sizeof(float) * max_rows * f)
        rsold = <float *>malloc(sizeof(float) * max_rows)
        try:
            for b in prange(n_blocks, schedule="dynamic"):
                cg_block(blocks[b], blocks[b + 1], &indptr[0], &indices[0], &data[0],
                         &X[0, 0], &Y[0, 0], &A0[0, 0], f, cg_steps, G, w, buffer_rows,
                         R, P, AP, rsold)
        finally:
            free(G)
            free(w)
            free(R)
            free(P)
            free(AP)
            free(rsold)


cdef int cholesky_row(long long begin, long long end, const int *indices, const float *data,
                      float *x, const float *Y, const float *A0, int f, float *A,
                      float *G, long long buffer_rows) noexcept nogil:
    """Exact solve of one row into x; returns LAPACK's info (0 = solved).

    The row's rows of Y are gathered scaled by sqrt(|c - 1|): those with
    c > 1 from the front of G (added by ssyrk), those with c < 1 from the back
    (subtracted); c == 1 adds nothing to the matrix.
    """
    cdef long long p
    cdef long long front, back
    cdef int k
    cdef float c, scale
    cdef const float *y
    cdef float *row = NULL

    memcpy(A, A0, sizeof(float) * f * f)
    memset(x, 0, sizeof(float) * f)
    if begin == end:
        return 0
    front = 0
    back = buffer_rows
    p = begin
    while p < end:
        c = data[p]
        y = Y + <Py_ssize_t>indices[p] * f
        for k in range(f):
            x[k] += c * y[k]
        if c != 1.0:
            if c > 1.0:
                row = G + front * f
                front += 1
                scale = sqrt(c - 1.0)
            else:
                back -= 1
                row = G + back * f
                scale = sqrt(1.0 - c)
            for k in range(f):
                row[k] = scale * y[k]
        p += 1
        if front == back or p == end:
            if front > 0:
                syrk_gram(f, <int>front, 1.0, G, 1.0, A)
            if back < buffer_rows:
                syrk_gram(f, <int>(buffer_rows - back), -1.0, G + back * f, 1.0, A)
            front = 0
            back = buffer_rows
    return posv(f, A, x)


def least_squares_cholesky(const long long[::1] indptr, const int[::1] indices,
                           const float[::1] data, float[:, ::1] X, const float[:, ::1] Y,
                           const float[:, ::1] A0, long long buffer_rows, int num_threads):
    """One exact half-sweep, overwriting X.

    Parameters are those of :func:`least_squares_cg` (without blocks and
    cg_steps). Returns the first row whose system was not positive definite
    (its factors are left at zero), or -1 when every row was solved.
    """
    cdef int f = X.shape[1]
    cdef Py_ssize_t n_rows = X.shape[0]
    cdef Py_ssize_t u
    # Written from any thread (a benign race: some failing row is reported).
    cdef long long[::1] failed = np.full(1, -1, dtype=np.int64)
    cdef long long *failed_row = &failed[0]
    cdef float *A = NULL
    cdef float *G = NULL
    if n_rows == 0 or f == 0:
        return -1
    with nogil, parallel(num_threads=num_threads):
        A = <float *>malloc(sizeof(float) * f * f)
        G = <float *>malloc(sizeof(float) * buffer_rows * f)
        try:
            for u in prange(n_rows, schedule="dynamic", chunksize=16):
                if cholesky_row(indptr[u], indptr[u + 1], &indices[0], &data[0], &X[u, 0],
                                &Y[0, 0], &A0[0, 0], f, A, G, buffer_rows) != 0:
                    memset(&X[u, 0], 0, sizeof(float) * f)
                    failed_row[0] = u
        finally:
            free(A)
            free(G)
    return failed[0]


def nonzero_loss(const long long[::1] indptr, const int[::1] indices, const float[::1] data,
                 const float[:, ::1] X, const float[:, ::1] Y, int num_threads):
    """sum over the non-zeros of c (1 - s)^2 - s^2 with s = x_u . y_i, in float64.

    Added to trace(X'X Y'Y) (every pair at confidence 1, preference 0) this
    gives the data term of the loss without forming X Y'.
    """
    cdef Py_ssize_t n_rows = X.shape[0]
    cdef int f = X.shape[1]
    cdef Py_ssize_t u
    cdef long long p
    cdef double s, c, total = 0.0
    if n_rows == 0 or f == 0 or indices.shape[0] == 0:
        return 0.0
    for u in prange(n_rows, nogil=True, schedule="dynamic", chunksize=64,
                    num_threads=num_threads):
        for p in range(indptr[u], indptr[u + 1]):
            s = dot(f, &X[u, 0], &Y[indices[p], 0])
            c = data[p]
            total += c * (1.0 - s) * (1.0 - s) - s * s
    return total
