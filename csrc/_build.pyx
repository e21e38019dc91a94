# cython: language_level=3
"""What the compiled kernels were built with, and one small real kernel
(parallel row norms of a CSR matrix) that proves the build end to end."""

from cython.parallel cimport prange
from libc.math cimport sqrt

from _openmp cimport RECS_OPENMP_ENABLED, omp_get_max_threads

ctypedef fused floating:
    float
    double

ctypedef fused index_t:
    int
    long long


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(RECS_OPENMP_ENABLED)


def openmp_max_threads():
    """Threads an OpenMP parallel region would use now (1 without OpenMP)."""
    return omp_get_max_threads()


def csr_row_norms(const index_t[::1] indptr, const floating[::1] data,
                  floating[::1] out, int num_threads):
    """Euclidean norm of each row of a CSR matrix, written into ``out``.

    Parameters
    ----------
    indptr : int32 or int64 array, shape (n_rows + 1,)
    data : float32 or float64 array, shape (nnz,)
    out : array of data's dtype, shape (n_rows,)
    num_threads : int, >= 1
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t row
    cdef index_t p
    cdef double total
    for row in prange(n_rows, nogil=True, schedule="static", num_threads=num_threads):
        total = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            total = total + <double>data[p] * data[p]
        out[row] = <floating>sqrt(total)
