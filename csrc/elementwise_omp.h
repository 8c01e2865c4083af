/* Thread-team size for the elementwise kernels: the shared one of threads.h (which honours the
 * after-fork cap), under the names this module's loops use.
 *
 * Kept in C so the module builds unchanged when OpenMP is unavailable (the
 * prange loops then run serially and every team has one thread).
 */
#ifndef ENGINE_ELEMENTWISE_OMP_H
#define ENGINE_ELEMENTWISE_OMP_H

#include "threads.h"

static inline int engine_ew_max_threads(void) { return engine_max_threads(); }
static inline int engine_ew_thread_num(void) { return engine_thread_num(); }

#endif
