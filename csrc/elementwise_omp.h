/* Thread-team size for the elementwise kernels.
 *
 * Kept in C so the module builds unchanged when OpenMP is unavailable (the
 * prange loops then run serially and every team has one thread).
 */
#ifndef ENGINE_ELEMENTWISE_OMP_H
#define ENGINE_ELEMENTWISE_OMP_H

#ifdef _OPENMP
#include <omp.h>
static inline int engine_ew_max_threads(void) { return omp_get_max_threads(); }
static inline int engine_ew_thread_num(void) { return omp_get_thread_num(); }
#else
static inline int engine_ew_max_threads(void) { return 1; }
static inline int engine_ew_thread_num(void) { return 0; }
#endif

#endif
