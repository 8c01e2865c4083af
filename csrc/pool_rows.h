/* The window maxima of one output row of a max pooling, compiled once per instruction set.
 *
 * The compare-and-select over a channel run vectorises, but the module is built for baseline
 * x86-64, where that is 4 floats at a time; AVX2 and AVX-512 copies of the row function are
 * compiled with target attributes, one ISA table each (isa.h's scheme), and pool_isa() returns
 * the one for the process-wide level, so a build made here still runs anywhere.  The choice is
 * per output row, not per channel run: a call per run cost more than the maxima themselves.
 */
#ifndef ENGINE_POOL_ROWS_H
#define ENGINE_POOL_ROWS_H

#include <stddef.h>

/* Pooling geometry: input N x H x W x C, window ph x pw, strides sh, sw, top/left padding pt, pl,
 * output N x Ho x Wo x C. */
typedef struct {
    ptrdiff_t N, H, W, C, ph, pw, Ho, Wo, sh, sw, pt, pl;
} pool_window;

#include "isa.h"

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
/* The per-ISA table of max-pooling rows. */
typedef struct {
    void (*max_row_f)(const float *, float *, const pool_window *, ptrdiff_t);
    void (*max_row_d)(const double *, double *, const pool_window *, ptrdiff_t);
} pool_isa_table;

static const pool_isa_table pool_table_portable = {pool_max_row_f_base, pool_max_row_d_base};
#if ENGINE_X86_SIMD
POOL_MAX_ROW(float, pool_max_row_f_avx2, ENGINE_TARGET_AVX2)
POOL_MAX_ROW(double, pool_max_row_d_avx2, ENGINE_TARGET_AVX2)
POOL_MAX_ROW(float, pool_max_row_f_avx512, ENGINE_TARGET_AVX512)
POOL_MAX_ROW(double, pool_max_row_d_avx512, ENGINE_TARGET_AVX512)
static const pool_isa_table pool_table_avx2 = {pool_max_row_f_avx2, pool_max_row_d_avx2};
static const pool_isa_table pool_table_avx512 = {pool_max_row_f_avx512, pool_max_row_d_avx512};
ENGINE_ISA_TABLES(pool_isa_table, pool_isa, &pool_table_portable, &pool_table_avx2, &pool_table_avx512)
#else
ENGINE_ISA_TABLES(pool_isa_table, pool_isa, &pool_table_portable, &pool_table_portable, &pool_table_portable)
#endif

static inline void pool_max_row_f(const float *x, float *out, const pool_window *w, ptrdiff_t r)
{ pool_isa()->max_row_f(x, out, w, r); }
static inline void pool_max_row_d(const double *x, double *out, const pool_window *w, ptrdiff_t r)
{ pool_isa()->max_row_d(x, out, w, r); }

#undef POOL_MAX_ROW

#endif
