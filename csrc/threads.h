/* Thread-team size for the kernels, in C so the modules build unchanged when
 * OpenMP is unavailable (prange loops then run serially on one thread).
 *
 * engine_thread_cap limits every team this module starts (0 = no limit).  engine sets it to 1
 * in a process made by fork() (engine/_fork.py): GNU OpenMP's worker threads do not survive a
 * fork, and a child asking for a team of several waits for them forever.  The cap is a static
 * of each module that includes this header, so engine/_fork.py sets it in every module; it is
 * read on every team, so a cap set from another Python thread takes effect on the next kernel. */
#ifndef ENGINE_THREADS_H
#define ENGINE_THREADS_H

static int engine_thread_cap = 0;

static inline void engine_set_thread_cap(int n) { engine_thread_cap = n > 0 ? n : 0; }
static inline int engine_get_thread_cap(void) { return engine_thread_cap; }

#ifdef _OPENMP
#include <omp.h>
static inline int engine_openmp_enabled(void) { return 1; }
static inline int engine_max_threads(void)
{
    int n = omp_get_max_threads();
    return engine_thread_cap > 0 && n > engine_thread_cap ? engine_thread_cap : n;
}
static inline int engine_thread_num(void) { return omp_get_thread_num(); }
static inline void engine_set_max_threads(int n) { omp_set_num_threads(n); }
#else
static inline int engine_openmp_enabled(void) { return 0; }
static inline int engine_max_threads(void) { return 1; }
static inline int engine_thread_num(void) { return 0; }
static inline void engine_set_max_threads(int n) { (void)n; }
#endif

#endif
