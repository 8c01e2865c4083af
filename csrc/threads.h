/* Thread-team size for the kernels, in C so the modules build unchanged when
 * OpenMP is unavailable (prange loops then run serially on one thread). */
#ifndef ENGINE_THREADS_H
#define ENGINE_THREADS_H

#ifdef _OPENMP
#include <omp.h>
static inline int engine_openmp_enabled(void) { return 1; }
static inline int engine_max_threads(void) { return omp_get_max_threads(); }
static inline int engine_thread_num(void) { return omp_get_thread_num(); }
static inline void engine_set_max_threads(int n) { omp_set_num_threads(n); }
#else
static inline int engine_openmp_enabled(void) { return 0; }
static inline int engine_max_threads(void) { return 1; }
static inline int engine_thread_num(void) { return 0; }
static inline void engine_set_max_threads(int n) { (void)n; }
#endif

#endif
