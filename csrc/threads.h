/* Thread teams for every kernel module: how many threads a loop gets, under the process-wide
 * cap of runtime_api.h.  In C so the modules build unchanged without OpenMP (prange loops then
 * run serially on one thread).
 *
 * The cap: engine sets 1 in a process made by fork() (engine/_fork.py).  GNU OpenMP's worker
 * threads do not survive a fork, and a child asking for a team of several waits for them
 * forever.  It lives in the runtime module's state, so one call sets it for every module. */
#ifndef ENGINE_THREADS_H
#define ENGINE_THREADS_H

#include <stddef.h>
#include "runtime_api.h"

#ifdef _OPENMP
#include <omp.h>
static inline int engine_openmp_enabled(void) { return 1; }
static inline int engine_max_threads(void)
{
    int n = omp_get_max_threads(), cap = engine_rt->thread_cap;
    return cap > 0 && n > cap ? cap : n;
}
static inline int engine_thread_num(void) { return omp_get_thread_num(); }
static inline void engine_set_max_threads(int n) { omp_set_num_threads(n); }
#else
static inline int engine_openmp_enabled(void) { return 0; }
static inline int engine_max_threads(void) { return 1; }
static inline int engine_thread_num(void) { return 0; }
static inline void engine_set_max_threads(int n) { (void)n; }
#endif

/* Threads worth starting for `work` units split into at most `max_parts` pieces: one below
 * `minimum` (waking a team costs microseconds, and small Keras models call kernels on tiny
 * arrays every step), and each extra thread must get at least half a minimum's worth. */
static inline int engine_team_size(ptrdiff_t work, ptrdiff_t minimum, ptrdiff_t max_parts)
{
    int nt;
    ptrdiff_t by_work;
    if (work < minimum || max_parts < 2) return 1;
    nt = engine_max_threads();
    by_work = minimum >= 2 ? work / (minimum / 2) : work;
    if (by_work < nt) nt = (int)by_work;
    if (max_parts < nt) nt = (int)max_parts;
    return nt > 1 ? nt : 1;
}

/* Length of each of `parts` spans over [0, n), rounded up to a multiple of `align` (so two
 * threads never write one cache line when align covers 64 bytes). */
static inline ptrdiff_t engine_span_len(ptrdiff_t n, int parts, ptrdiff_t align)
{
    ptrdiff_t c = (n + parts - 1) / parts;
    return ((c + align - 1) / align) * align;
}

/* The parallel driver of the span kernels: fn(job, lo, hi) over [0, n) on nt threads, one
 * contiguous span each (boundaries on multiples of align); nt <= 1 calls fn(job, 0, n) on the
 * calling thread, without a team.  A kernel passes its arguments in `job` and picks its span
 * function per dtype; the span loop and its schedule are written here only. */
typedef void (*engine_span_fn)(const void *job, ptrdiff_t lo, ptrdiff_t hi);

static void engine_run_spans(engine_span_fn fn, const void *job, ptrdiff_t n, int nt, ptrdiff_t align)
{
    ptrdiff_t span;
    int t;
    if (nt <= 1) {
        fn(job, 0, n);
        return;
    }
    span = engine_span_len(n, nt, align);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static, 1)
#endif
    for (t = 0; t < nt; t++) {
        ptrdiff_t lo = t * span, hi = lo + span < n ? lo + span : n;
        if (lo < hi) fn(job, lo, hi);
    }
}

#endif
