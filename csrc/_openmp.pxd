# Shared OpenMP shim: cimport these instead of `openmp` so a build without
# OpenMP still compiles (see openmp_shim.h).
cdef extern from "openmp_shim.h" nogil:
    int RECS_OPENMP_ENABLED
    int omp_get_max_threads()
    int omp_get_thread_num()
    int omp_get_num_procs()
