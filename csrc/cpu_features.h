/* Run-time CPU feature detection shared by the kernel modules.
 *
 * Kernels are compiled for baseline x86-64; SIMD variants are compiled per
 * function with __attribute__((target(...))) (isa.h) and chosen at run time from
 * what this detects (once, when the runtime module loads: runtime_api.h), so a
 * build made on this machine still runs on one without AVX2.
 */
#ifndef ENGINE_CPU_FEATURES_H
#define ENGINE_CPU_FEATURES_H

#if defined(__linux__)
#include <unistd.h>
#endif

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

/* Bytes of one core's L2 cache, or 0 when the system does not say (glibc reads it from CPUID;
 * a virtual machine reports what its host CPU model has). */
static inline long engine_cpu_l2_bytes(void) {
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE)
    long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? v : 0;
#else
    return 0;
#endif
}

#endif
