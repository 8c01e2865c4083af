/* Run-time CPU feature detection shared by the kernel modules.
 *
 * Kernels are compiled for baseline x86-64; SIMD variants are compiled per
 * function with __attribute__((target(...))) and chosen here at run time, so a
 * build made on this machine still runs on one without AVX2.
 */
#ifndef ENGINE_CPU_FEATURES_H
#define ENGINE_CPU_FEATURES_H

static inline int engine_cpu_has_avx2_fma(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static inline int engine_cpu_has_avx512f(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

#endif
