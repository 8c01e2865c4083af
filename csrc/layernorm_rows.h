/* The row loops of layernorm.pyx, built per instruction set (isa.h's scheme): portable
 * (baseline x86-64), AVX2+FMA and AVX-512F, for float32 and float64 rows.
 *
 * The loops are plain C; each reduction carries `omp simd reduction`, which lets the compiler
 * split the sum over vector lanes (strict IEEE order keeps a scalar reduction scalar: one add
 * latency per element, which made the double-accumulated sweeps compute-bound).  The sums stay
 * in double whatever the row's type, so a float32 row of any width keeps its precision; only
 * the lanes' order of summation changes.  Without OpenMP the pragmas are ignored and the same
 * loops run scalar.
 *
 * Forward, per row: mean, then the variance from the centred squares (a second pass over a row
 * that is in L1: no cancellation, unlike sum-of-squares minus the squared mean), then
 * y = (x - mean) * rstd * gamma + beta.  Backward, per row, with xhat = (x - mean) * rstd and
 * gg = g * gamma: one pass sums gg and gg * xhat and adds g * xhat and g into the caller's
 * dgamma / dbeta partial rows, a second writes dx = rstd * (gg - mean(gg) - xhat * mean(gg xhat)).
 * gamma / beta may be NULL (no scale / offset); dx may be NULL (only dgamma / dbeta wanted).
 * Row r of g starts at g + r * gstride: gstride = width for one gradient row per row, 0 for one
 * row shared by every row (the tape's seed of ones for a non-scalar target is such a broadcast,
 * and reading one row instead of a materialised (rows, width) array of ones saves its memory
 * traffic).
 */
#ifndef ENGINE_LAYERNORM_ROWS_H
#define ENGINE_LAYERNORM_ROWS_H

#include <math.h>
#include <stddef.h>
#include "isa.h"

#define ENGINE_LN_DEFINE_ROWS(T, TN, SUFFIX, ATTR)                                                \
ATTR static void engine_ln_fwd_##TN##_##SUFFIX(const T *x, const T *gamma, const T *beta, double eps, \
                                               T *y, T *mean, T *rstd, ptrdiff_t r0, ptrdiff_t r1,   \
                                               ptrdiff_t width) {                                   \
    for (ptrdiff_t r = r0; r < r1; r++) {                                                        \
        const T *xr = x + r * width;                                                             \
        T *yr = y + r * width;                                                                   \
        double s = 0.0, ss = 0.0, mu;                                                            \
        _Pragma("omp simd reduction(+:s)")                                                       \
        for (ptrdiff_t j = 0; j < width; j++) s += (double)xr[j];                                \
        mu = s / (double)width;                                                                  \
        _Pragma("omp simd reduction(+:ss)")                                                      \
        for (ptrdiff_t j = 0; j < width; j++) { double d = (double)xr[j] - mu; ss += d * d; }    \
        double inv = 1.0 / sqrt(ss / (double)width + eps);                                       \
        T fm = (T)mu, fi = (T)inv;                                                               \
        mean[r] = fm;                                                                            \
        rstd[r] = fi;                                                                            \
        if (gamma != NULL && beta != NULL) {                                                     \
            for (ptrdiff_t j = 0; j < width; j++) yr[j] = (xr[j] - fm) * fi * gamma[j] + beta[j]; \
        } else if (gamma != NULL) {                                                              \
            for (ptrdiff_t j = 0; j < width; j++) yr[j] = (xr[j] - fm) * fi * gamma[j];          \
        } else if (beta != NULL) {                                                               \
            for (ptrdiff_t j = 0; j < width; j++) yr[j] = (xr[j] - fm) * fi + beta[j];           \
        } else {                                                                                 \
            for (ptrdiff_t j = 0; j < width; j++) yr[j] = (xr[j] - fm) * fi;                     \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
ATTR static void engine_ln_bwd_##TN##_##SUFFIX(const T *x, const T *gamma, const T *mean,          \
                                               const T *rstd, const T *g, ptrdiff_t gstride, T *dx,  \
                                               T *dgamma_part, T *dbeta_part, ptrdiff_t r0,       \
                                               ptrdiff_t r1, ptrdiff_t width) {                    \
    for (ptrdiff_t r = r0; r < r1; r++) {                                                        \
        const T *xr = x + r * width, *gr = g + r * gstride;                                      \
        T fm = mean[r], fi = rstd[r];                                                            \
        double a = 0.0, b = 0.0;                                                                 \
        if (gamma != NULL) {                                                                     \
            _Pragma("omp simd reduction(+:a,b)")                                                 \
            for (ptrdiff_t j = 0; j < width; j++) {                                              \
                T xhat = (xr[j] - fm) * fi, gg = gr[j] * gamma[j];                               \
                a += (double)gg;                                                                 \
                b += (double)gg * (double)xhat;                                                  \
                dgamma_part[j] += gr[j] * xhat;                                                  \
                dbeta_part[j] += gr[j];                                                          \
            }                                                                                    \
        } else {                                                                                 \
            _Pragma("omp simd reduction(+:a,b)")                                                 \
            for (ptrdiff_t j = 0; j < width; j++) {                                              \
                T xhat = (xr[j] - fm) * fi, gg = gr[j];                                          \
                a += (double)gg;                                                                 \
                b += (double)gg * (double)xhat;                                                  \
                dgamma_part[j] += gg * xhat;                                                     \
                dbeta_part[j] += gg;                                                             \
            }                                                                                    \
        }                                                                                        \
        if (dx == NULL) continue;                                                                \
        T ma = (T)(a / (double)width), mb = (T)(b / (double)width);                              \
        T *dr = dx + r * width;                                                                  \
        if (gamma != NULL) {                                                                     \
            for (ptrdiff_t j = 0; j < width; j++) {                                              \
                T xhat = (xr[j] - fm) * fi;                                                      \
                dr[j] = fi * (gr[j] * gamma[j] - ma - xhat * mb);                                \
            }                                                                                    \
        } else {                                                                                 \
            for (ptrdiff_t j = 0; j < width; j++) {                                              \
                T xhat = (xr[j] - fm) * fi;                                                      \
                dr[j] = fi * (gr[j] - ma - xhat * mb);                                           \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
}

typedef struct {
    void (*fwd_f32)(const float *, const float *, const float *, double, float *, float *, float *,
                    ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*fwd_f64)(const double *, const double *, const double *, double, double *, double *, double *,
                    ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*bwd_f32)(const float *, const float *, const float *, const float *, const float *, ptrdiff_t,
                    float *, float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*bwd_f64)(const double *, const double *, const double *, const double *, const double *, ptrdiff_t,
                    double *, double *, double *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
} engine_ln_isa_table;

#define ENGINE_LN_INSTANCE(SUFFIX, ATTR)                                                           \
    ENGINE_LN_DEFINE_ROWS(float, f32, SUFFIX, ATTR)                                               \
    ENGINE_LN_DEFINE_ROWS(double, f64, SUFFIX, ATTR)                                              \
    static const engine_ln_isa_table engine_ln_table_##SUFFIX = {                                 \
        engine_ln_fwd_f32_##SUFFIX, engine_ln_fwd_f64_##SUFFIX,                                   \
        engine_ln_bwd_f32_##SUFFIX, engine_ln_bwd_f64_##SUFFIX};

ENGINE_LN_INSTANCE(portable, )
#if ENGINE_X86_SIMD
ENGINE_LN_INSTANCE(avx2, ENGINE_TARGET_AVX2)
ENGINE_LN_INSTANCE(avx512, ENGINE_TARGET_AVX512)
ENGINE_ISA_TABLES(engine_ln_isa_table, engine_ln_isa, &engine_ln_table_portable, &engine_ln_table_avx2,
                  &engine_ln_table_avx512)
#else
ENGINE_ISA_TABLES(engine_ln_isa_table, engine_ln_isa, &engine_ln_table_portable, &engine_ln_table_portable,
                  &engine_ln_table_portable)
#endif
#undef ENGINE_LN_INSTANCE

/* The row loops of the current level (the table is looked up once per call). */
static inline void engine_ln_forward_rows_f32(const float *x, const float *gamma, const float *beta, double eps,
                                              float *y, float *mean, float *rstd, ptrdiff_t r0, ptrdiff_t r1,
                                              ptrdiff_t width) {
    engine_ln_isa()->fwd_f32(x, gamma, beta, eps, y, mean, rstd, r0, r1, width);
}
static inline void engine_ln_forward_rows_f64(const double *x, const double *gamma, const double *beta,
                                              double eps, double *y, double *mean, double *rstd, ptrdiff_t r0,
                                              ptrdiff_t r1, ptrdiff_t width) {
    engine_ln_isa()->fwd_f64(x, gamma, beta, eps, y, mean, rstd, r0, r1, width);
}
static inline void engine_ln_backward_rows_f32(const float *x, const float *gamma, const float *mean,
                                               const float *rstd, const float *g, ptrdiff_t gstride, float *dx,
                                               float *dgamma_part, float *dbeta_part, ptrdiff_t r0, ptrdiff_t r1,
                                               ptrdiff_t width) {
    engine_ln_isa()->bwd_f32(x, gamma, mean, rstd, g, gstride, dx, dgamma_part, dbeta_part, r0, r1, width);
}
static inline void engine_ln_backward_rows_f64(const double *x, const double *gamma, const double *mean,
                                               const double *rstd, const double *g, ptrdiff_t gstride,
                                               double *dx, double *dgamma_part, double *dbeta_part, ptrdiff_t r0,
                                               ptrdiff_t r1, ptrdiff_t width) {
    engine_ln_isa()->bwd_f64(x, gamma, mean, rstd, g, gstride, dx, dgamma_part, dbeta_part, r0, r1, width);
}

#endif
