/* The window maxima of one output row of a max pooling, compiled once per instruction set.
 *
 * The compare-and-select over a channel run vectorises, but the module is built for baseline
 * x86-64, where that is 4 floats at a time; gcc's target_clones adds AVX2 and AVX-512 copies of
 * the row function and picks one when the module loads (an ifunc), so a build made here still
 * runs anywhere.  The clone is per output row, not per channel run: a call per run cost more
 * than the maxima themselves.
 */
#ifndef ENGINE_POOL_ROWS_H
#define ENGINE_POOL_ROWS_H

#include <stddef.h>

/* Pooling geometry: input N x H x W x C, window ph x pw, strides sh, sw, top/left padding pt, pl,
 * output N x Ho x Wo x C. */
typedef struct {
    ptrdiff_t N, H, W, C, ph, pw, Ho, Wo, sh, sw, pt, pl;
} pool_window;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define POOL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define POOL_CLONES
#endif

/* out[n, i, j, :] = the maximum over the real cells of each window of output row r = n * Ho + i.
 * NaN is sticky, as in numpy: a NaN cell wins, and once the maximum is NaN it stays. */
#define POOL_MAX_ROW(T, NAME)                                                                   \
POOL_CLONES static void NAME(const T *x, T *out, const pool_window *w, ptrdiff_t r)             \
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

POOL_MAX_ROW(float, pool_max_row_f)
POOL_MAX_ROW(double, pool_max_row_d)

#undef POOL_MAX_ROW

#endif
