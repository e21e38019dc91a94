/* OpenMP when the build has it, a serial stand-in otherwise, so the kernels
 * compile either way (setup.py decides with a compile-and-run probe). */
#ifndef DJANGO_RECS_OPENMP_SHIM_H
#define DJANGO_RECS_OPENMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define RECS_OPENMP_ENABLED 1
#else
#define RECS_OPENMP_ENABLED 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_procs(void) { return 1; }
#endif
#endif
