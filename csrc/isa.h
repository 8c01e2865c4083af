/* One scheme for choosing SIMD code, for every kernel family (after BLIS's context):
 *
 *   - a family declares a struct of function pointers (its ISA table), and one instance per
 *     level it has code for: portable C, AVX2+FMA, AVX-512F, each variant compiled with a
 *     per-function __attribute__((target(...))) (ENGINE_TARGET_AVX2 / _AVX512 below), so the
 *     build stays baseline x86-64 (no -march) and runs on any x86-64;
 *   - ENGINE_ISA_TABLES(type, name, portable, avx2, avx512) defines `name()`, which returns
 *     the table for the process-wide level (runtime_api.h: detected once at import, capped by
 *     engine.config.set_simd_path / ENGINE_SIMD).  For a level the family has no code for it
 *     names the next lower table, so each family's tables are fixed at compile time and a call
 *     costs one indexed load and an indirect call.
 *
 * Off x86 (or a compiler without target attributes) ENGINE_X86_SIMD is 0: families compile only
 * their portable table and name it for every level.
 */
#ifndef ENGINE_ISA_H
#define ENGINE_ISA_H

#include "runtime_api.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define ENGINE_X86_SIMD 1
#define ENGINE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ENGINE_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define ENGINE_X86_SIMD 0
#define ENGINE_TARGET_AVX2
#define ENGINE_TARGET_AVX512
#endif

#define ENGINE_ISA_TABLES(type, name, portable, avx2, avx512)                                   \
    static const type *const name##_by_level[ENGINE_ISA_LEVELS] = {(portable), (avx2), (avx512)}; \
    static inline const type *name(void) { return name##_by_level[engine_isa_level()]; }

#endif
