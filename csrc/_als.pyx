# cython: language_level=3
"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): one half-sweep at a time.

A half-sweep solves every row u of a confidence matrix C (rows x columns,
CSR) against fixed column factors Y:

    (Y'Y + Y'(C_u - I)Y + reg I) x_u = Y' C_u p_u,   p_u = 1 where C_u > 0.

``A0 = Y'Y + reg I`` is shared by all rows and computed once per half-sweep
by the caller; each row then only touches its own non-zeros. Two solvers:

- :func:`least_squares_cholesky` adds the row's rank-one terms
  (c - 1) y y' to A0 eight at a time, factors the result by Cholesky and
  solves, all in cache-resident C loops: at these sizes (f up to a few
  hundred) per-row BLAS/LAPACK calls cost more in overhead than they compute.
- :func:`least_squares_cg` runs ``cg_steps`` conjugate-gradient steps
  (Takacs, Pilaszy & Tikk 2011) warm-started from the current x_u. Rows are
  processed in blocks: the dense products with A0 are one ``sgemm`` per step
  for the whole block, and the block's rows of Y are gathered once (with
  software prefetch) into a per-thread buffer by the pass that computes the
  initial residual, so each step's sparse product is one pass over
  contiguous, cache-resident memory, with the row's vector and sums held in
  registers (docs/als.md, "Performance", has the measurements).

The C loops below work on vectors zero-padded to a multiple of 16 floats
(systems padded with identity), so they run on whole SIMD registers without
remainders; they are compiled for AVX-512, AVX2 and baseline x86-64 where
GCC supports function multi-versioning, and the best one the CPU has is
picked at load time.

Inputs are trusted (the Python wrapper validates): indptr int64, indices
int32, data float32 (all > 0), factors float32 C-contiguous.
"""

import numpy as np

from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

from _blas cimport dot, gemm_nn

cdef extern from *:
    """
    #include <math.h>
    #include <string.h>

    /* Function multi-versioning: the hot loops are compiled for AVX-512, AVX2
     * and baseline x86-64 and the best the CPU supports is picked at load time.
     * Feature levels, not CPU model names (virtual machines often hide those). */
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

    /* Rows requested from memory this far ahead of the one being read. */
    #define RECS_PREFETCH_AHEAD 8
    /* Vectors are padded with zeros to a multiple of this many floats (one
     * AVX-512 register), so every loop below runs on whole segments and never
     * needs a remainder; padding a system with identity leaves x unchanged. */
    #define RECS_LANES 16
    /* Non-zeros added to the exact solver's matrix per pass over it. */
    #define RECS_GROUP 8

    /* One segment of RECS_LANES floats. GCC and clang map it to one AVX-512
     * register, two AVX2 or four SSE registers; other compilers get loops. */
    #if defined(__GNUC__)
    #pragma GCC diagnostic ignored "-Wpsabi"
    typedef float recs_vec __attribute__((vector_size(RECS_LANES * sizeof(float))));
    typedef float recs_half __attribute__((vector_size(RECS_LANES * sizeof(float) / 2)));
    typedef float recs_quarter __attribute__((vector_size(RECS_LANES * sizeof(float) / 4)));
    RECS_INLINE recs_vec recs_zero(void) { recs_vec v = {0.0f}; return v; }
    RECS_INLINE recs_vec recs_load(const float *p) { recs_vec v; memcpy(&v, p, sizeof v); return v; }
    RECS_INLINE void recs_store(float *p, recs_vec v) { memcpy(p, &v, sizeof v); }
    /* acc + s * v */
    RECS_INLINE recs_vec recs_madd(recs_vec acc, float s, recs_vec v) { return acc + s * v; }
    /* acc + a * b */
    RECS_INLINE recs_vec recs_fma(recs_vec acc, recs_vec a, recs_vec b) { return acc + a * b; }
    RECS_INLINE float recs_sum(recs_vec v) {
        recs_half low, high;
        recs_quarter a, b;
        memcpy(&low, &v, sizeof low);
        memcpy(&high, (const char *)&v + sizeof low, sizeof high);
        low += high;
        memcpy(&a, &low, sizeof a);
        memcpy(&b, (const char *)&low + sizeof a, sizeof b);
        a += b;
        return (a[0] + a[2]) + (a[1] + a[3]);
    }
    #else
    typedef struct { float lane[RECS_LANES]; } recs_vec;
    RECS_INLINE recs_vec recs_zero(void) { recs_vec v = {{0.0f}}; return v; }
    RECS_INLINE recs_vec recs_load(const float *p) { recs_vec v; memcpy(&v, p, sizeof v); return v; }
    RECS_INLINE void recs_store(float *p, recs_vec v) { memcpy(p, &v, sizeof v); }
    RECS_INLINE recs_vec recs_madd(recs_vec acc, float s, recs_vec v) {
        for (int l = 0; l < RECS_LANES; ++l) acc.lane[l] += s * v.lane[l];
        return acc;
    }
    RECS_INLINE recs_vec recs_fma(recs_vec acc, recs_vec a, recs_vec b) {
        for (int l = 0; l < RECS_LANES; ++l) acc.lane[l] += a.lane[l] * b.lane[l];
        return acc;
    }
    RECS_INLINE float recs_sum(recs_vec v) {
        float sum = 0.0f;
        for (int l = 0; l < RECS_LANES; ++l) sum += v.lane[l];
        return sum;
    }
    #endif

    RECS_INLINE int recs_padded(int f) {
        return (f + RECS_LANES - 1) & ~(RECS_LANES - 1);
    }

    /* a . b over whole segments [start, n) (a fixed summation order, so results
     * do not depend on the thread count). */
    RECS_INLINE float recs_dot(const float *a, const float *b, int start, int n) {
        recs_vec sum = recs_zero();
        for (int k = start; k < n; k += RECS_LANES) sum = recs_fma(sum, recs_load(a + k), recs_load(b + k));
        return recs_sum(sum);
    }

    /* y[start:n] += s * x[start:n], whole segments. */
    RECS_INLINE void recs_axpy(float s, const float *x, float *y, int start, int n) {
        for (int k = start; k < n; k += RECS_LANES) recs_store(y + k, recs_madd(recs_load(y + k), s, recs_load(x + k)));
    }

    RECS_INLINE void recs_prefetch_row(const float *row, int f) {
        const char *bytes = (const char *)row;
        for (int offset = 0; offset < f * (int)sizeof(float); offset += 64)
            RECS_PREFETCH(bytes + offset);
    }

    /* The sparse product of one CG row, out += sum_q w_q y_q with
     * w_q = residual ? c_q - (c_q - 1) y_q.v : (c_q - 1) y_q.v, for
     * SEGMENTS = n / RECS_LANES known at compile time: v and out then live in
     * registers for the whole pass (no load-add-store chain through memory
     * per row), and two rows are interleaved so that one row's dot product
     * (a chain of dependent FMAs ending in a horizontal sum) overlaps the
     * other's. With ``Y`` non-NULL the rows are first gathered from Y (rows
     * indices[q], length f) into G, prefetched RECS_PREFETCH_AHEAD rows
     * ahead: the pass that gathers is also the first product, so its
     * arithmetic overlaps the waits for memory. Summation order is fixed. */
    #define RECS_MAX_SEGMENTS 8
    /* Loops over segments are unrolled completely, so that the arrays of
     * segments they index become registers instead of stack slots. */
    #if defined(__GNUC__) && !defined(__clang__)
    #define RECS_UNROLL _Pragma("GCC unroll 8")
    #elif defined(__clang__)
    #define RECS_UNROLL _Pragma("unroll")
    #else
    #define RECS_UNROLL
    #endif
    RECS_INLINE const float *recs_fetch_row(const int *indices, Py_ssize_t q, Py_ssize_t count,
                                            const float *Y, int f, int n, float *G) {
        float *row = G + q * n;
        const float *y = Y + (Py_ssize_t)indices[q] * f;
        if (q + RECS_PREFETCH_AHEAD < count)
            recs_prefetch_row(Y + (Py_ssize_t)indices[q + RECS_PREFETCH_AHEAD] * f, f);
        if (f == n) {   /* whole segments: vector copies the compiler unrolls */
            for (int k = 0; k < n; k += RECS_LANES) recs_store(row + k, recs_load(y + k));
        } else {
            memcpy(row, y, sizeof(float) * f);
        }
        return row;
    }

    RECS_INLINE void recs_product_fixed(const int segments, const int gather, float *G,
                                        const float *confidence, Py_ssize_t count,
                                        const int *indices, const float *Y, int f,
                                        const float *v, float *out, int residual) {
        const int n = segments * RECS_LANES;
        recs_vec x[RECS_MAX_SEGMENTS], acc[RECS_MAX_SEGMENTS];
        RECS_UNROLL
        for (int s = 0; s < segments; ++s) {
            x[s] = recs_load(v + s * RECS_LANES);
            acc[s] = recs_load(out + s * RECS_LANES);
        }
        Py_ssize_t q = 0;
        for (; q + 2 <= count; q += 2) {
            const float *a, *b;
            if (gather) {
                a = recs_fetch_row(indices, q, count, Y, f, n, G);
                b = recs_fetch_row(indices, q + 1, count, Y, f, n, G);
            } else {
                a = G + q * n;
                b = a + n;
            }
            recs_vec da = recs_zero(), db = recs_zero();
            RECS_UNROLL
            for (int s = 0; s < segments; ++s) {
                da = recs_fma(da, recs_load(a + s * RECS_LANES), x[s]);
                db = recs_fma(db, recs_load(b + s * RECS_LANES), x[s]);
            }
            float ca = confidence[q], cb = confidence[q + 1];
            float ta = recs_sum(da), tb = recs_sum(db);
            float wa = residual ? ca - (ca - 1.0f) * ta : (ca - 1.0f) * ta;
            float wb = residual ? cb - (cb - 1.0f) * tb : (cb - 1.0f) * tb;
            RECS_UNROLL
            for (int s = 0; s < segments; ++s) {
                acc[s] = recs_madd(acc[s], wa, recs_load(a + s * RECS_LANES));
                acc[s] = recs_madd(acc[s], wb, recs_load(b + s * RECS_LANES));
            }
        }
        if (q < count) {
            const float *a = gather ? recs_fetch_row(indices, q, count, Y, f, n, G) : G + q * n;
            recs_vec da = recs_zero();
            RECS_UNROLL
            for (int s = 0; s < segments; ++s) da = recs_fma(da, recs_load(a + s * RECS_LANES), x[s]);
            float ca = confidence[q], ta = recs_sum(da);
            float wa = residual ? ca - (ca - 1.0f) * ta : (ca - 1.0f) * ta;
            RECS_UNROLL
            for (int s = 0; s < segments; ++s) acc[s] = recs_madd(acc[s], wa, recs_load(a + s * RECS_LANES));
        }
        RECS_UNROLL
        for (int s = 0; s < segments; ++s) recs_store(out + s * RECS_LANES, acc[s]);
    }

    /* Any n: v and out stay in memory. */
    RECS_INLINE void recs_product_any(float *G, const float *confidence, Py_ssize_t count,
                                      const int *indices, const float *Y, int f, int n,
                                      const float *v, float *out, int residual) {
        for (Py_ssize_t q = 0; q < count; ++q) {
            const float *y = Y ? recs_fetch_row(indices, q, count, Y, f, n, G) : G + q * n;
            float c = confidence[q], t = recs_dot(y, v, 0, n);
            float w = residual ? c - (c - 1.0f) * t : (c - 1.0f) * t;
            recs_axpy(w, y, out, 0, n);
        }
    }

    /* out (n, padded) += sum over the count rows of G (count x n, padded, its
     * padding columns zero) of w_q y_q, see recs_product_fixed; with Y
     * non-NULL the rows are gathered into G first (Y[indices[q]], length f). */
    RECS_CLONES
    static void recs_product(float *G, const float *confidence, Py_ssize_t count,
                             const int *indices, const float *Y, int f, int n,
                             const float *v, float *out, int residual) {
        /* The segment count and whether to gather are compile-time constants
         * of each case, so each gets its own fully unrolled loop. */
        #define RECS_CASE(k) case k: \
            if (Y) recs_product_fixed(k, 1, G, confidence, count, indices, Y, f, v, out, residual); \
            else recs_product_fixed(k, 0, G, confidence, count, indices, Y, f, v, out, residual); \
            return;
        switch (n / RECS_LANES) {
        RECS_CASE(1) RECS_CASE(2) RECS_CASE(3) RECS_CASE(4)
        RECS_CASE(5) RECS_CASE(6) RECS_CASE(7) RECS_CASE(8)
        default: recs_product_any(G, confidence, count, indices, Y, f, n, v, out, residual);
        }
        #undef RECS_CASE
    }

    /* The CG update of one row after its product ap = A p (vectors padded to
     * n, padding zero; x has length f): x += alpha p, r -= alpha ap with
     * alpha = rsold / p.ap; returns r.r. */
    RECS_CLONES
    static float recs_cg_update(float *x, int f, int n, float rsold, const float *p,
                                const float *ap, float *r) {
        float alpha = rsold / recs_dot(p, ap, 0, n);
        for (int k = 0; k < f; ++k) x[k] += alpha * p[k];
        recs_axpy(-alpha, ap, r, 0, n);
        return recs_dot(r, r, 0, n);
    }

    /* p = r + beta p over n (padded). */
    RECS_INLINE void recs_next_direction(float *p, const float *r, float beta, int n) {
        for (int k = 0; k < n; k += RECS_LANES)
            recs_store(p + k, recs_madd(recs_load(r + k), beta, recs_load(p + k)));
    }

    RECS_INLINE float recs_norm2(const float *r, int n) { return recs_dot(r, r, 0, n); }

    /* The exact solver works on systems padded to n (identity in the padding)
     * and keeps only the upper triangle of its row-major matrix: every row
     * update then starts on the segment holding the diagonal, and the entries
     * left of the diagonal in that segment are scratch. */

    /* Upper triangle of A (n x n) += sum_t w[t] y_t y_t' for the RECS_GROUP
     * padded rows y_t of G. */
    RECS_INLINE void recs_rank_update(float *A, int n, const float *G, const float *w) {
        for (int r = 0; r < n; ++r) {
            float a[RECS_GROUP];
            for (int t = 0; t < RECS_GROUP; ++t) a[t] = w[t] * G[(Py_ssize_t)t * n + r];
            float *row = A + (Py_ssize_t)r * n;
            for (int k = r & ~(RECS_LANES - 1); k < n; k += RECS_LANES) {
                recs_vec sum = recs_load(row + k);
                for (int t = 0; t < RECS_GROUP; ++t) sum = recs_madd(sum, a[t], recs_load(G + (Py_ssize_t)t * n + k));
                recs_store(row + k, sum);
            }
        }
    }

    /* Solve A x = b for symmetric positive definite A (n x n, upper triangle):
     * A is overwritten with U (A = U'U), b with x, and z (n) is scratch. A
     * right-looking Cholesky in panels of RECS_LANES rows, whose update of the
     * rows below is one rank-16 pass. Returns 0, or j + 1 when the pivot of
     * column j is not positive. */
    RECS_INLINE int recs_cholesky_solve(float *A, float *b, float *z, int n) {
        for (int jb = 0; jb < n; jb += RECS_LANES) {
            int je = jb + RECS_LANES;
            for (int j = jb; j < je; ++j) {
                float *uj = A + (Py_ssize_t)j * n;
                float pivot = uj[j];
                if (!(pivot > 0.0f)) return j + 1;
                pivot = sqrtf(pivot);
                for (int k = jb; k < n; k += RECS_LANES)
                    recs_store(uj + k, recs_madd(recs_zero(), 1.0f / pivot, recs_load(uj + k)));
                uj[j] = pivot;
                for (int i = j + 1; i < je; ++i) recs_axpy(-uj[i], uj, A + (Py_ssize_t)i * n, jb, n);
            }
            const float *panel = A + (Py_ssize_t)jb * n;
            for (int i = je; i < n; ++i) {
                float c[RECS_LANES];
                for (int t = 0; t < RECS_LANES; ++t) c[t] = -panel[(Py_ssize_t)t * n + i];
                float *ui = A + (Py_ssize_t)i * n;
                for (int k = i & ~(RECS_LANES - 1); k < n; k += RECS_LANES) {
                    recs_vec sum = recs_load(ui + k);
                    for (int t = 0; t < RECS_LANES; ++t)
                        sum = recs_madd(sum, c[t], recs_load(panel + (Py_ssize_t)t * n + k));
                    recs_store(ui + k, sum);
                }
            }
        }
        /* U'z = b: entries of b before j are consumed already, so the
         * whole-segment update may overwrite them with scratch. */
        for (int j = 0; j < n; ++j) {
            const float *uj = A + (Py_ssize_t)j * n;
            z[j] = b[j] / uj[j];
            recs_axpy(-z[j], uj, b, j & ~(RECS_LANES - 1), n);
        }
        /* U x = z, last row first, into b: entries up to j are still 0, so a
         * dot over the whole segment is exact. */
        memset(b, 0, sizeof(float) * n);
        for (int j = n - 1; j >= 0; --j) {
            const float *uj = A + (Py_ssize_t)j * n;
            b[j] = (z[j] - recs_dot(uj, b, j & ~(RECS_LANES - 1), n)) / uj[j];
        }
        return 0;
    }

    /* The exact solve of one row into x (f). A0 is Y'Y + reg I padded to n x n;
     * A (n x n), G (RECS_GROUP x n), b and z (n) are scratch, G's padding
     * columns zero. Returns 0, or > 0 when the matrix is not positive definite. */
    RECS_CLONES
    static int recs_exact_row(long long begin, long long end, const int *indices,
                              const float *confidence, const float *Y, int f, const float *A0,
                              float *A, float *G, float *b, float *z, float *x, float extra) {
        int n = recs_padded(f), pending = 0, info;
        float weights[RECS_GROUP];
        if (begin == end) {
            memset(x, 0, sizeof(float) * f);
            return 0;
        }
        memset(b, 0, sizeof(float) * n);
        memcpy(A, A0, sizeof(float) * (size_t)n * n);
        if (extra != 0.0f)    /* this row's own regularisation, beyond A0's */
            for (int d = 0; d < f; ++d) A[(size_t)d * n + d] += extra;
        for (long long p = begin; p < end; ++p) {
            if (p + RECS_PREFETCH_AHEAD < end)
                recs_prefetch_row(Y + (Py_ssize_t)indices[p + RECS_PREFETCH_AHEAD] * f, f);
            float *row = G + (Py_ssize_t)pending * n;
            float c = confidence[p];
            memcpy(row, Y + (Py_ssize_t)indices[p] * f, sizeof(float) * f);
            recs_axpy(c, row, b, 0, n);
            if (c != 1.0f) {    /* c == 1 adds nothing beyond Y'Y */
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
        info = recs_cholesky_solve(A, b, z, n);
        memcpy(x, b, sizeof(float) * f);
        return info;
    }
    """
    void recs_product(float *G, const float *confidence, Py_ssize_t count, const int *indices,
                      const float *Y, int f, int n, const float *v, float *out,
                      int residual) noexcept nogil
    float recs_cg_update(float *x, int f, int n, float rsold, const float *p, const float *ap,
                         float *r) noexcept nogil
    void recs_next_direction(float *p, const float *r, float beta, int n) noexcept nogil
    float recs_norm2(const float *r, int n) noexcept nogil
    enum: RECS_GROUP
    int recs_padded(int f) noexcept nogil
    int recs_exact_row(long long begin, long long end, const int *indices,
                       const float *confidence, const float *Y, int f, const float *A0,
                       float *A, float *G, float *b, float *z, float *x,
                       float extra) noexcept nogil

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


cdef inline float *aligned(void *memory) noexcept nogil:
    """The first 64-byte boundary in a block malloc'ed 64 bytes larger."""
    return <float *>((<size_t>memory + 63) & ~(<size_t>63))


cdef inline void sparse_product(const int *indices, const float *confidence, long long count,
                                const float *Y, int f, int n, const float *v, float *out,
                                float *G, bint gathered, long long buffer_rows,
                                bint residual) noexcept nogil:
    """out += sum over the row's non-zeros q of w_q y_q (see recs_product).

    v and out have padded length n. ``gathered``: the rows are in G already;
    otherwise they are gathered into G as they are used, chunk by chunk when
    the row is longer than the buffer.
    """
    cdef long long start = 0, size
    if gathered:
        recs_product(G, confidence, count, NULL, NULL, f, n, v, out, residual)
        return
    while start < count:
        size = min(buffer_rows, count - start)
        recs_product(G, confidence + start, size, indices + start, Y, f, n, v, out, residual)
        start += size


cdef void cg_block(long long first, long long last, const long long *indptr,
                   const int *indices, const float *data, float *X, const float *Y,
                   const float *A0, int f, int n, int cg_steps, float *G,
                   long long buffer_rows, float *R, float *P, float *AP, float *v,
                   float *rsold, const float *row_reg) noexcept nogil:
    """cg_steps CG steps for rows first..last-1 of X, in lockstep.

    R, P, AP (rows x n) and v (n) are scratch whose padding columns are zero;
    rsold[u] < 0 marks a finished row (empty, or residual below CONVERGED).
    ``row_reg`` (NULL: none) adds row u's own ``row_reg[u] * I`` to A0.
    """
    cdef int nb = <int>(last - first)
    cdef long long base = indptr[first]
    # Blocks longer than the buffer are single rows (plan_blocks), gathered in chunks.
    cdef bint fits = indptr[last] - base <= buffer_rows
    cdef int u, step, k
    cdef long long begin, count
    cdef float *x = NULL
    cdef float *r = NULL
    cdef float *p = NULL
    cdef float *ap = NULL
    cdef float rsnew, reg
    cdef bint any_active = False

    # R = -X_block A0, then add Y' C_u p_u minus the sparse part per row; the
    # pass that computes it also gathers the block's rows of Y into G.
    gemm_nn(nb, f, f, -1.0, X + first * f, f, A0, f, 0.0, R, n)
    for u in range(nb):
        begin = indptr[first + u]
        count = indptr[first + u + 1] - begin
        x = X + (first + u) * f
        r = R + u * n
        if count == 0:
            # No interactions: the exact solution is 0.
            memset(x, 0, sizeof(float) * f)
            rsold[u] = -1.0
            continue
        memcpy(v, x, sizeof(float) * f)
        if row_reg != NULL:
            reg = row_reg[first + u]
            for k in range(f):
                r[k] -= reg * x[k]
        if fits:
            recs_product(G + (begin - base) * n, data + begin, count, indices + begin, Y, f, n,
                         v, r, True)
        else:
            sparse_product(indices + begin, data + begin, count, Y, f, n, v, r, G, False,
                           buffer_rows, True)
        memcpy(P + u * n, r, sizeof(float) * n)
        rsold[u] = recs_norm2(r, n)
        if rsold[u] < CONVERGED:
            rsold[u] = -1.0
        else:
            any_active = True

    for step in range(cg_steps):
        if not any_active:
            break
        any_active = False
        gemm_nn(nb, f, f, 1.0, P, n, A0, f, 0.0, AP, n)
        for u in range(nb):
            if rsold[u] < 0:
                continue
            begin = indptr[first + u]
            count = indptr[first + u + 1] - begin
            x = X + (first + u) * f
            r = R + u * n
            p = P + u * n
            ap = AP + u * n
            sparse_product(indices + begin, data + begin, count, Y, f, n, p, ap,
                           G + (begin - base) * n if fits else G, fits, buffer_rows, False)
            if row_reg != NULL:
                reg = row_reg[first + u]
                for k in range(f):
                    ap[k] += reg * p[k]
            rsnew = recs_cg_update(x, f, n, rsold[u], p, ap, r)
            if rsnew < CONVERGED:
                rsold[u] = -1.0
                continue
            recs_next_direction(p, r, rsnew / rsold[u], n)
            rsold[u] = rsnew
            any_active = True


def least_squares_cg(const long long[::1] indptr, const int[::1] indices,
                     const float[::1] data, float[:, ::1] X, const float[:, ::1] Y,
                     const float[:, ::1] A0, const long long[::1] blocks, int cg_steps,
                     long long buffer_rows, int num_threads,
                     const float[::1] row_regularization=None):
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
    row_regularization : float32 array, shape (n_rows,), optional
        Each row's own regularisation, added to A0's diagonal for that row
        (A0 then usually holds Y'Y alone).
    """
    cdef int f = X.shape[1]
    cdef int n = recs_padded(f)
    cdef const float *row_reg = NULL
    if row_regularization is not None:
        if row_regularization.shape[0] != X.shape[0]:
            raise ValueError("row_regularization must have one value per row of X")
        if X.shape[0]:
            row_reg = &row_regularization[0]
    cdef Py_ssize_t n_blocks = blocks.shape[0] - 1
    cdef Py_ssize_t b
    cdef long long max_rows = 1
    cdef void *scratch = NULL
    cdef float *G = NULL
    cdef float *R = NULL
    cdef float *P = NULL
    cdef float *AP = NULL
    cdef float *v = NULL
    cdef float *rsold = NULL
    if n_blocks <= 0 or f == 0:
        return
    max_rows = int(np.max(np.diff(np.asarray(blocks))))
    with nogil, parallel(num_threads=num_threads):
        # Zeroed, so every padding column starts (and stays) zero.
        scratch = calloc((buffer_rows + 3 * max_rows + 1) * n + max_rows + 16, sizeof(float))
        try:
            G = aligned(scratch)
            R = G + buffer_rows * n
            P = R + max_rows * n
            AP = P + max_rows * n
            v = AP + max_rows * n
            rsold = v + n
            for b in prange(n_blocks, schedule="dynamic"):
                cg_block(blocks[b], blocks[b + 1], &indptr[0], &indices[0], &data[0],
                         &X[0, 0], &Y[0, 0], &A0[0, 0], f, n, cg_steps, G, buffer_rows,
                         R, P, AP, v, rsold, row_reg)
        finally:
            free(scratch)


def padded_gram(const float[:, ::1] A0):
    """A0 (f x f) padded to n x n, n = f rounded up to 16, identity in the padding."""
    cdef int f = A0.shape[0]
    cdef int n = recs_padded(f)
    padded = np.eye(n, dtype=np.float32)
    padded[:f, :f] = A0
    return padded


def least_squares_cholesky(const long long[::1] indptr, const int[::1] indices,
                           const float[::1] data, float[:, ::1] X, const float[:, ::1] Y,
                           const float[:, ::1] A0, int num_threads,
                           const float[::1] row_regularization=None):
    """One exact half-sweep, overwriting X.

    Parameters are those of :func:`least_squares_cg` (without the CG ones),
    except that A0 is :func:`padded_gram` of Y'Y + reg I (``row_regularization``
    adds each row's own term to it). Returns the first
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
    cdef const float *row_reg = NULL
    if row_regularization is not None:
        if row_regularization.shape[0] != n_rows:
            raise ValueError("row_regularization must have one value per row of X")
        row_reg = &row_regularization[0]
    with nogil, parallel(num_threads=num_threads):
        scratch = calloc(<size_t>(n * n + RECS_GROUP * n + 2 * n) * sizeof(float) + 64, 1)
        try:
            A = aligned(scratch)
            G = A + n * n
            b = G + RECS_GROUP * n
            for u in prange(n_rows, schedule="dynamic", chunksize=16):
                if recs_exact_row(indptr[u], indptr[u + 1], &indices[0], &data[0], &Y[0, 0],
                                  f, &A0[0, 0], A, G, b, b + n, &X[u, 0],
                                  row_reg[u] if row_reg != NULL else 0.0) != 0:
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
