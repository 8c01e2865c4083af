/* FMA throughput probe for bench/gemm.py: the GFLOP/s a core reaches doing
 * nothing but independent register-to-register FMAs, i.e. the ceiling any GEMM
 * on this machine can be judged against.  12 independent accumulators cover
 * 2 FMA ports x 4-5 cycles latency. */
#ifndef ENGINE_GEMM_PEAK_H
#define ENGINE_GEMM_PEAK_H

#include <time.h>
#include "gemm.h"

static double engine_peak_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if ENGINE_GEMM_X86
#define ENGINE_PEAK_LOOP(NAME, TARGET, VL)                                             \
TARGET static double NAME(long iters)                                                 \
{                                                                                     \
    typedef float V __attribute__((vector_size(VL * 4)));                             \
    V acc[12], x = (V){0} + 1.0000001f, y = (V){0} + 1e-7f;                           \
    float sink = 0.0f;                                                                \
    long r;                                                                           \
    int i;                                                                            \
    double t0;                                                                        \
    for (i = 0; i < 12; i++) acc[i] = (V){0} + (float)i;                              \
    t0 = engine_peak_now();                                                             \
    for (r = 0; r < iters; r++) {                                                     \
        _Pragma("GCC unroll 12")                                                      \
        for (i = 0; i < 12; i++) acc[i] = acc[i] * x + y;                             \
    }                                                                                 \
    t0 = engine_peak_now() - t0;                                                        \
    for (i = 0; i < 12; i++) sink += acc[i][0];                                       \
    if (sink == 1234.5f) fprintf(stderr, " ");  /* keep the loop alive */              \
    return (double)iters * 12.0 * VL * 2.0 / t0 / 1e9;                                \
}
ENGINE_PEAK_LOOP(engine_peak_avx2, __attribute__((target("avx2,fma"))), 8)
ENGINE_PEAK_LOOP(engine_peak_avx512, __attribute__((target("avx512f"))), 16)
#endif

/* Sum over nthreads threads running the loop at once (simd: 1 AVX2, 2 AVX-512).
 * Returns 0 when the CPU lacks the instruction set. */
static double engine_fma_peak_gflops(int nthreads, int simd, long iters)
{
    double total = 0.0;
#if ENGINE_GEMM_X86
    if (simd == 2 && !engine_cpu_has_avx512f()) return 0.0;
    if (simd == 1 && !engine_cpu_has_avx2_fma()) return 0.0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) reduction(+:total)
#else
    (void)nthreads;   /* serial build: one thread */
#endif
    {
        total += simd == 2 ? engine_peak_avx512(iters) : engine_peak_avx2(iters);
    }
#else
    (void)nthreads; (void)simd; (void)iters;
#endif
    return total;
}

#endif
