# Single-precision BLAS and LAPACK for row-major (C-contiguous) arrays.
#
# scipy ships the Fortran (column-major) routines as cython_blas and
# cython_lapack; a row-major m x n matrix is the column-major n x m matrix
# of its transpose, so each helper below swaps operands accordingly. All of
# them are nogil and take raw pointers: the kernels call them per row from
# OpenMP threads (with BLAS capped to one thread by the Python wrapper).

cimport scipy.linalg.cython_blas as blas
cimport scipy.linalg.cython_lapack as lapack


cdef inline float dot(int n, const float *x, const float *y) noexcept nogil:
    """x . y for two contiguous vectors of length n."""
    cdef int one = 1
    return blas.sdot(&n, <float *>x, &one, <float *>y, &one)


cdef inline void axpy(int n, float alpha, const float *x, float *y) noexcept nogil:
    """y += alpha * x."""
    cdef int one = 1
    blas.saxpy(&n, &alpha, <float *>x, &one, y, &one)


cdef inline void scal(int n, float alpha, float *x) noexcept nogil:
    """x *= alpha."""
    cdef int one = 1
    blas.sscal(&n, &alpha, x, &one)


cdef inline void gemv_rows(int m, int n, float alpha, const float *a, const float *x,
                           float beta, float *y) noexcept nogil:
    """y (m) = alpha * A x + beta * y for row-major A (m x n)."""
    cdef int one = 1
    cdef char trans = b"T"
    blas.sgemv(&trans, &n, &m, &alpha, <float *>a, &n, <float *>x, &one, &beta, y, &one)


cdef inline void gemv_columns(int m, int n, float alpha, const float *a, const float *x,
                              float beta, float *y) noexcept nogil:
    """y (n) = alpha * A^T x + beta * y for row-major A (m x n)."""
    cdef int one = 1
    cdef char trans = b"N"
    blas.sgemv(&trans, &n, &m, &alpha, <float *>a, &n, <float *>x, &one, &beta, y, &one)


cdef inline void gemm_nn(int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc) noexcept nogil:
    """C (m x n) = alpha * A B + beta * C; A (m x k), B (k x n) row-major.

    lda, ldb, ldc are the row strides (>= k, n, n).
    """
    cdef char no = b"N"
    blas.sgemm(&no, &no, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)


cdef inline void gemm_nt(int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc) noexcept nogil:
    """C (m x n) = alpha * A B^T + beta * C; A (m x k), B (n x k) row-major.

    lda, ldb, ldc are the row strides (>= k, k, n).
    """
    cdef char no = b"N"
    cdef char yes = b"T"
    blas.sgemm(&yes, &no, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)


cdef inline void syrk_gram(int n, int k, float alpha, const float *a, float beta,
                           float *c) noexcept nogil:
    """C (n x n) = alpha * A^T A + beta * C for row-major A (k x n).

    Only the triangle :func:`posv` reads is written (the lower triangle of
    the row-major C, the upper one of its column-major view).
    """
    cdef char uplo = b"U"
    cdef char no = b"N"
    blas.ssyrk(&uplo, &no, &n, &k, &alpha, <float *>a, &n, &beta, c, &n)


cdef inline int posv(int n, float *a, float *b) noexcept nogil:
    """Solve A x = b in place (b becomes x) by Cholesky; A (n x n) symmetric.

    Reads the triangle :func:`syrk_gram` writes. Returns LAPACK's info:
    0 on success, > 0 when A is not positive definite.
    """
    cdef char uplo = b"U"
    cdef int one = 1
    cdef int info = 0
    lapack.sposv(&uplo, &n, &one, a, &n, b, &n, &info)
    return info
