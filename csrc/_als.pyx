# cython: language_level=3
"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): one half-sweep at a time.

A half-sweep solves every row u of a confidence matrix C (rows x columns,
CSR) against fixed column factors Y:

    (Y'Y + Y'(C_u - I)Y + reg I) x_u = Y' C_u p_u,   p_u = 1 where C_u > 0.

``A0 = Y'Y + reg I`` is shared by all rows and computed once per half-sweep
by the caller; each row then only touches its own non-zeros. Two solvers:

- :func:`least_squares_cholesky` adds the row's rank-one terms
  (c - 1) y y' to A0 four at a time, factors the result by Cholesky and
  solves, all in cache-resident C loops: at these sizes (f <= a few hundred)
  per-row BLAS/LAPACK calls cost more in overhead than they compute.
- :func:`least_squares_cg` runs ``cg_steps`` conjugate-gradient steps
  (Takacs, Pilaszy & Tikk 2011) warm-started from the current x_u. Rows are
  processed in blocks: the dense products with A0 are one ``sgemm`` per step
  for the whole block, and the block's rows of Y are gathered once (with
  software prefetch) into a per-thread buffer, so each step's sparse
  product is one pass over contiguous, cache-resident memory.

The C loops below are compiled for AVX-512, AVX2 and baseline x86-64 where
GCC supports function multi-versioning, and the fastest one the CPU has is
picked at load time.

Inputs are trusted (the Python wrapper validates): indptr int64, indices
int32, data float32 (all > 0), factors float32 C-contiguous.
"""

import numpy as np

from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from _blas cimport axpy, dot, gemm_nn, scal

cdef extern from *:
    """
    #include <math.h>
    #include <string.h>

    /* Feature levels (not CPU model names, which virtual machines often hide). */
    #if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__)
    #define RECS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define RECS_CLONES
    #endif
    /* Helpers are forced inline so they are compiled into each clone. */
    #if defined(__GNUC__)
    #define RECS_PREFETCH(address) __builtin_prefetch(address)
    #define RECS_INLINE static inline __attribute__((always_inline))
    #else
    #define RECS_PREFETCH(address) ((void)0)
    #define RECS_INLINE static inline
    #endif
    #if defined(_OPENMP)
    #define RECS_SIMD_SUM _Pragma("omp simd reduction(+:sum)")
    #define RECS_SIMD _Pragma("omp simd")
    #else
    #define RECS_SIMD_SUM
    #define RECS_SIMD
    #endif

    /* Rows requested from memory this far ahead of the one being read. */
    #define RECS_PREFETCH_AHEAD 8

    RECS_INLINE float recs_dot(const float *a, const float *b, int f) {
        float sum = 0.0f;
        RECS_SIMD_SUM
        for (int k = 0; k < f; ++k) sum += a[k] * b[k];
        return sum;
    }

    RECS_INLINE void recs_prefetch_row(const float *row, int f) {
        const char *bytes = (const char *)row;
        for (int offset = 0; offset < f * (int)sizeof(float); offset += 64)
            RECS_PREFETCH(bytes + offset);
    }

    /* For each of the count rows y_q = Y[indices[q]] (copied to G when G is not
     * NULL): w = residual ? c - (c - 1) y.v : (c - 1) y.v, then out += w y. */
    RECS_CLONES
    static void recs_gather_product(const int *indices, const float *confidence,
                                    Py_ssize_t count, const float *Y, int f,
                                    const float *v, float *out, float *G, int residual) {
        for (Py_ssize_t q = 0; q < count; ++q) {
            if (q + RECS_PREFETCH_AHEAD < count)
                recs_prefetch_row(Y + (Py_ssize_t)indices[q + RECS_PREFETCH_AHEAD] * f, f);
            const float *y = Y + (Py_ssize_t)indices[q] * f;
            if (G != NULL) {
                float *copy = G + q * f;
                RECS_SIMD
                for (int k = 0; k < f; ++k) copy[k] = y[k];
            }
            float c = confidence[q], t = recs_dot(y, v, f);
            float w = residual ? c - (c - 1.0f) * t : (c - 1.0f) * t;
            RECS_SIMD
            for (int k = 0; k < f; ++k) out[k] += w * y[k];
        }
    }

    /* recs_gather_product on rows already gathered into G (count x f). */
    RECS_CLONES
    static void recs_product(const float *G, const float *confidence, Py_ssize_t count,
                             int f, const float *v, float *out, int residual) {
        for (Py_ssize_t q = 0; q < count; ++q) {
            const float *y = G + q * f;
            float c = confidence[q], t = recs_dot(y, v, f);
            float w = residual ? c - (c - 1.0f) * t : (c - 1.0f) * t;
            RECS_SIMD
            for (int k = 0; k < f; ++k) out[k] += w * y[k];
        }
    }

    /* The exact solver works on systems padded to n = f rounded up to
     * RECS_LANES (identity in the padding, which leaves x unchanged), so that
     * every row update starts on a whole 16-float segment: the loops then run
     * on full vectors only and never need a remainder. Entries left of the
     * diagonal are scratch (only the upper triangle is meaningful). */
    #define RECS_LANES 16
    /* Non-zeros added to the matrix per pass over it. */
    #define RECS_GROUP 8

    /* Upper triangle of row-major A (n x n) += sum_t w[t] y_t y_t' (rows of G). */
    RECS_INLINE void recs_rank_update(float *A, int n, const float *G, const float *w) {
        for (int r = 0; r < n; ++r) {
            float a[RECS_GROUP];
            for (int t = 0; t < RECS_GROUP; ++t) a[t] = w[t] * G[(Py_ssize_t)t * n + r];
            float *row = A + (Py_ssize_t)r * n;
            RECS_SIMD
            for (int k = r & ~(RECS_LANES - 1); k < n; ++k) {
                float sum = row[k];
                for (int t = 0; t < RECS_GROUP; ++t) sum += a[t] * G[(Py_ssize_t)t * n + k];
                row[k] = sum;
            }
        }
    }

    /* Solve A x = b in place (b becomes x) for symmetric positive definite A
     * (n x n, n a multiple of RECS_LANES), reading its upper triangle and
     * overwriting it with U, A = U'U: a right-looking Cholesky in panels of
     * RECS_LANES rows, whose update of the rows below is a rank-16 update.
     * Returns 0, or j + 1 when the pivot of column j is not positive. */
    RECS_INLINE int recs_cholesky_solve(float *A, float *b, int n) {
        for (int jb = 0; jb < n; jb += RECS_LANES) {
            int je = jb + RECS_LANES;
            for (int j = jb; j < je; ++j) {
                float *uj = A + (Py_ssize_t)j * n;
                float pivot = uj[j];
                if (!(pivot > 0.0f)) return j + 1;
                pivot = sqrtf(pivot);
                float inverse = 1.0f / pivot;
                RECS_SIMD
                for (int k = jb; k < n; ++k) uj[k] *= inverse;
                uj[j] = pivot;
                for (int i = j + 1; i < je; ++i) {
                    float a = uj[i];
                    float *ui = A + (Py_ssize_t)i * n;
                    RECS_SIMD
                    for (int k = jb; k < n; ++k) ui[k] -= a * uj[k];
                }
            }
            const float *panel = A + (Py_ssize_t)jb * n;
            for (int i = je; i < n; ++i) {
                float c[RECS_LANES];
                for (int t = 0; t < RECS_LANES; ++t) c[t] = panel[(Py_ssize_t)t * n + i];
                float *ui = A + (Py_ssize_t)i * n;
                RECS_SIMD
                for (int k = i & ~(RECS_LANES - 1); k < n; ++k) {
                    float sum = ui[k];
                    for (int t = 0; t < RECS_LANES; ++t) sum -= c[t] * panel[(Py_ssize_t)t * n + k];
                    ui[k] = sum;
                }
            }
        }
        for (int j = 0; j < n; ++j) {        /* U' z = b */
            const float *uj = A + (Py_ssize_t)j * n;
            float z = b[j] / uj[j];
            b[j] = z;
            for (int k = j + 1; k < n; ++k) b[k] -= z * uj[k];
        }
        for (int j = n - 1; j >= 0; --j) {   /* U x = z */
            const float *uj = A + (Py_ssize_t)j * n;
            float sum = 0.0f;
            RECS_SIMD_SUM
            for (int k = j + 1; k < n; ++k) sum += uj[k] * b[k];
            b[j] = (b[j] - sum) / uj[j];
        }
        return 0;
    }

    RECS_INLINE int recs_padded(int f) {
        return (f + RECS_LANES - 1) & ~(RECS_LANES - 1);
    }

    /* The exact solve of one row into x (f). A0 is Y'Y + reg I padded to
     * n x n; A (n x n), G (RECS_GROUP x n) and b (n) are scratch, G's
     * padding columns zero. Returns 0, or > 0 when the matrix is not
     * positive definite. */
    RECS_CLONES
    static int recs_exact_row(long long begin, long long end, const int *indices,
                              const float *confidence, const float *Y, int f,
                              const float *A0, float *A, float *G, float *b, float *x) {
        int n = recs_padded(f), pending = 0, info;
        float weights[RECS_GROUP];
        for (int k = 0; k < n; ++k) b[k] = 0.0f;
        if (begin == end) {
            for (int k = 0; k < f; ++k) x[k] = 0.0f;
            return 0;
        }
        memcpy(A, A0, sizeof(float) * (size_t)n * n);
        for (long long p = begin; p < end; ++p) {
            if (p + RECS_PREFETCH_AHEAD < end)
                recs_prefetch_row(Y + (Py_ssize_t)indices[p + RECS_PREFETCH_AHEAD] * f, f);
            const float *y = Y + (Py_ssize_t)indices[p] * f;
            float c = confidence[p];
            RECS_SIMD
            for (int k = 0; k < f; ++k) b[k] += c * y[k];
            if (c != 1.0f) {    /* c == 1 adds nothing beyond Y'Y */
                memcpy(G + (Py_ssize_t)pending * n, y, sizeof(float) * f);
                weights[pending] = c - 1.0f;
                if (++pending == RECS_GROUP) {
                    recs_rank_update(A, n, G, weights);
                    pending = 0;
                }
            }
        }
        if (pending) {
            for (int t = pending; t < RECS_GROUP; ++t) weights[t] = 0.0f;
            recs_rank_update(A, n, G, weights);
        }
        info = recs_cholesky_solve(A, b, n);
        memcpy(x, b, sizeof(float) * f);
        return info;
    }
    """
    void recs_gather_product(const int *indices, const float *confidence, Py_ssize_t count,
                             const float *Y, int f, const float *v, float *out, float *G,
                             int residual) noexcept nogil
    void recs_product(const float *G, const float *confidence, Py_ssize_t count, int f,
                      const float *v, float *out, int residual) noexcept nogil
    enum: RECS_GROUP
    int recs_padded(int f) noexcept nogil
    int recs_exact_row(long long begin, long long end, const int *indices,
                       const float *confidence, const float *Y, int f, const float *A0,
                       float *A, float *G, float *b, float *x) noexcept nogil

# A residual norm below this means the row is solved; matches the usual
# float32 CG stopping rule.
cdef float CONVERGED = 1e-20


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


cdef inline void sparse_product(const int *indices, const float *confidence,
                                long long count, const float *Y, int f, const float *v,
                                float *out, float *G, bint gathered, long long buffer_rows,
                                bint residual) noexcept nogil:
    """out += sum over the row's non-zeros of w_q y_q (see recs_gather_product).

    ``gathered``: the rows are already in G. Otherwise they are read from Y;
    the residual pass of a block that fits stores them in G on the way (the
    caller passes G), and a row too long for G is read in place every pass.
    """
    if gathered:
        recs_product(G, confidence, count, f, v, out, residual)
    else:
        recs_gather_product(indices, confidence, count, Y, f, v, out, G, residual)


cdef void cg_block(long long first, long long last, const long long *indptr,
                   const int *indices, const float *data, float *X, const float *Y,
                   const float *A0, int f, int cg_steps, float *G,
                   long long buffer_rows, float *R, float *P, float *AP,
                   float *rsold) noexcept nogil:
    """cg_steps CG steps for rows first..last-1 of X, in lockstep.

    rsold[u] < 0 marks a finished row (empty, or residual below CONVERGED).
    """
    cdef int nb = <int>(last - first)
    cdef long long base = indptr[first]
    # Blocks longer than the buffer are single rows (plan_blocks): read in place.
    cdef bint fits = indptr[last] - base <= buffer_rows
    cdef int u, step
    cdef long long begin, count
    cdef float *x = NULL
    cdef float *r = NULL
    cdef float *p = NULL
    cdef float *ap = NULL
    cdef float *row_buffer = NULL
    cdef float alpha, rsnew
    cdef bint any_active = False

    # R = -X_block A0, then add Y' C_u p_u minus the sparse part per row.
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
        row_buffer = G + (begin - base) * f if fits else NULL
        sparse_product(indices + begin, data + begin, count, Y, f, x, r, row_buffer,
                       False, buffer_rows, True)
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
            row_buffer = G + (begin - base) * f if fits else NULL
            sparse_product(indices + begin, data + begin, count, Y, f, p, ap, row_buffer,
                           fits, buffer_rows, False)
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
    blocks : int64 array from :func:`plan_blocks` with max_nnz = buffer_rows
    cg_steps : int, >= 1
    buffer_rows : int, rows of Y each thread gathers at once
    num_threads : int, >= 1
    """
    cdef int f = X.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0] - 1
    cdef Py_ssize_t b
    cdef int max_rows = 1
    cdef float *G = NULL
    cdef float *R = NULL
    cdef float *P = NULL
    cdef float *AP = NULL
    cdef float *rsold = NULL
    if n_blocks <= 0 or f == 0:
        return
    max_rows = int(np.max(np.diff(np.asarray(blocks))))
    with nogil, parallel(num_threads=num_threads):
        G = <float *>malloc(sizeof(float) * buffer_rows * f)
        R = <float *>malloc(sizeof(float) * max_rows * f)
        P = <float *>malloc(sizeof(float) * max_rows * f)
        AP = <float *>malloc(sizeof(float) * max_rows * f)
        rsold = <float *>malloc(sizeof(float) * max_rows)
        try:
            for b in prange(n_blocks, schedule="dynamic"):
                cg_block(blocks[b], blocks[b + 1], &indptr[0], &indices[0], &data[0],
                         &X[0, 0], &Y[0, 0], &A0[0, 0], f, cg_steps, G, buffer_rows,
                         R, P, AP, rsold)
        finally:
            free(G)
            free(R)
            free(P)
            free(AP)
            free(rsold)


cdef inline float *aligned(void *memory) noexcept nogil:
    """The first 64-byte boundary in a block malloc'ed 64 bytes larger."""
    return <float *>((<size_t>memory + 63) & ~(<size_t>63))


def padded_gram(const float[:, ::1] A0):
    """A0 (f x f) padded to n x n, n = f rounded up to 16, identity in the padding."""
    cdef int f = A0.shape[0]
    cdef int n = recs_padded(f)
    padded = np.eye(n, dtype=np.float32)
    padded[:f, :f] = A0
    return padded


def least_squares_cholesky(const long long[::1] indptr, const int[::1] indices,
                           const float[::1] data, float[:, ::1] X, const float[:, ::1] Y,
                           const float[:, ::1] A0, int num_threads):
    """One exact half-sweep, overwriting X.

    Parameters are those of :func:`least_squares_cg` (without the CG ones),
    except that A0 is :func:`padded_gram` of Y'Y + reg I. Returns the first
    row whose system was not positive definite (its factors are left at
    zero), or -1 when every row was solved.
    """
    cdef int f = X.shape[1]
    cdef int n = recs_padded(f)
    cdef Py_ssize_t n_rows = X.shape[0]
    cdef Py_ssize_t u
    # Written from any thread (a benign race: some failing row is reported).
    cdef long long[::1] failed = np.full(1, -1, dtype=np.int64)
    cdef long long *failed_row = &failed[0]
    cdef void *scratch = NULL
    cdef float *A = NULL
    cdef float *G = NULL
    cdef float *b = NULL
    if n_rows == 0 or f == 0:
        return -1
    if A0.shape[0] != n:
        raise ValueError("A0 must come from padded_gram")
    with nogil, parallel(num_threads=num_threads):
        scratch = calloc(<size_t>(n * n + RECS_GROUP * n + n) * sizeof(float) + 64, 1)
        try:
            A = aligned(scratch)
            G = A + n * n
            b = G + RECS_GROUP * n
            for u in prange(n_rows, schedule="dynamic", chunksize=16):
                if recs_exact_row(indptr[u], indptr[u + 1], &indices[0], &data[0], &Y[0, 0],
                                  f, &A0[0, 0], A, G, b, &X[u, 0]) != 0:
                    memset(&X[u, 0], 0, sizeof(float) * f)
                    failed_row[0] = u
        finally:
            free(scratch)
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
