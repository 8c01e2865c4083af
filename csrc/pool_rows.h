/* The window maxima of one output row of a max pooling, compiled once per instruction set.
 *
 * The compare-and-select over a channel run vectorises, but the module is built for baseline
 * x86-64, where that is 4 floats at a time; AVX2 and AVX-512 copies of the row function are
 * compiled with target attributes and pool_simd() picks one at run time, capped by
 * pool.set_simd_path (engine.config.set_simd_path("portable") reaches here as it reaches the
 * GEMM), so a build made here still runs anywhere.  The choice is per output row, not per
 * channel run: a call per run cost more than the maxima themselves.
 */
#ifndef ENGINE_POOL_ROWS_H
#define ENGINE_POOL_ROWS_H

#include <stddef.h>

/* Pooling geometry: input N x H x W x C, window ph x pw, strides sh, sw, top/left padding pt, pl,
 * output N x Ho x Wo x C. */
typedef struct {
    ptrdiff_t N, H, W, C, ph, pw, Ho, Wo, sh, sw, pt, pl;
} pool_window;

#include "cpu_features.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define POOL_HAVE_SIMD 1
#define POOL_ATTR_AVX2 __attribute__((target("avx2,fma")))
#define POOL_ATTR_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define POOL_HAVE_SIMD 0
#endif

/* out[n, i, j, :] = the maximum over the real cells of each window of output row r = n * Ho + i.
 * NaN is sticky, as in numpy: a NaN cell wins, and once the maximum is NaN it stays. */
#define POOL_MAX_ROW(T, NAME, ATTR)                                                             \
ATTR static void NAME(const T *x, T *out, const pool_window *w, ptrdiff_t r)                    \
{                                                                                                \
    const ptrdiff_t n = r / w->Ho, i = r % w->Ho, C = w->C;                                      \
    ptrdiff_t j, a, b, c;                                                                        \
    for (j = 0; j < w->Wo; j++) {                                                                \
        T *restrict o = out + (r * w->Wo + j) * C;                                               \
        int first = 1;                                                                           \
        for (a = 0; a < w->ph; a++) {                                                            \
            const ptrdiff_t hi = i * w->sh + a - w->pt;                                          \
            if (hi < 0 || hi >= w->H) continue;                                                  \
            for (b = 0; b < w->pw; b++) {                                                        \
                const ptrdiff_t wi = j * w->sw + b - w->pl;                                      \
                const T *restrict src;                                                           \
                if (wi < 0 || wi >= w->W) continue;                                              \
                src = x + ((n * w->H + hi) * w->W + wi) * C;                                     \
                if (first) {            /* padding never wins: the first real cell seeds it */  \
                    for (c = 0; c < C; c++) o[c] = src[c];                                       \
                    first = 0;                                                                   \
                } else {                                                                         \
                    for (c = 0; c < C; c++) {                                                    \
                        const T v = src[c], m = o[c];                                            \
                        o[c] = ((v > m) | (v != v)) & (m == m) ? v : m;                          \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}

POOL_MAX_ROW(float, pool_max_row_f_base, )
POOL_MAX_ROW(double, pool_max_row_d_base, )
#if POOL_HAVE_SIMD
POOL_MAX_ROW(float, pool_max_row_f_avx2, POOL_ATTR_AVX2)
POOL_MAX_ROW(double, pool_max_row_d_avx2, POOL_ATTR_AVX2)
POOL_MAX_ROW(float, pool_max_row_f_avx512, POOL_ATTR_AVX512)
POOL_MAX_ROW(double, pool_max_row_d_avx512, POOL_ATTR_AVX512)
#endif

/* 0 portable, 1 AVX2+FMA, 2 AVX-512F: the best the CPU has, capped by pool_set_simd_cap (the
 * levels of the GEMM's engine_gemm_set_simd).  Detected once; a benign race writes one value. */
static int pool_simd_level = -1;
static int pool_simd_cap = 2;

static inline int pool_simd(void)
{
    if (pool_simd_level < 0) {
        int level = 0;
        if (POOL_HAVE_SIMD && engine_cpu_has_avx2_fma()) level = engine_cpu_has_avx512f() ? 2 : 1;
        pool_simd_level = level < pool_simd_cap ? level : pool_simd_cap;
    }
    return pool_simd_level;
}

static void pool_set_simd_cap(int cap)
{
    pool_simd_cap = cap;
    pool_simd_level = -1;
}

#if POOL_HAVE_SIMD
#define POOL_PICK(t) (pool_simd() == 2 ? pool_max_row_##t##_avx512 \
                      : pool_simd() == 1 ? pool_max_row_##t##_avx2 : pool_max_row_##t##_base)
#else
#define POOL_PICK(t) pool_max_row_##t##_base
#endif

static inline void pool_max_row_f(const float *x, float *out, const pool_window *w, ptrdiff_t r)
{ POOL_PICK(f)(x, out, w, r); }
static inline void pool_max_row_d(const double *x, double *out, const pool_window *w, ptrdiff_t r)
{ POOL_PICK(d)(x, out, w, r); }

#undef POOL_MAX_ROW

#endif
