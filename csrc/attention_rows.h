/* The per-row loops of attention.pyx's score tiles, built per instruction set (isa.h's scheme):
 * float32 for portable (baseline x86-64), AVX2+FMA and AVX-512F through an ISA table, float64
 * once (libm's exp, the precise reference of the gradient checks).
 *
 * Plain C loops: the exponentials are fast_math.h's engine_expf (straight-line code that
 * vectorises), and each reduction carries `omp simd reduction` so the compiler may split it over
 * vector lanes (strict IEEE order keeps a written-out reduction scalar).  Without OpenMP the
 * pragmas are ignored and the loops run scalar with the same results up to summation order.
 *
 *   row_max(row, n, init)        max(init, row[0..n))
 *   exp_sum(row, shift, n)       row[c] = exp(row[c] - shift) in place; returns their sum
 *   probs(row, shift, inv, n)    row[c] = exp(row[c] - shift) * inv (the backward's recomputed
 *                                probabilities from the forward's row maximum and 1 / sum)
 *   dscores(p, dp, delta, n)     dp[c] = p[c] * (dp[c] - delta) (softmax backward, in place)
 */
#ifndef ENGINE_ATTENTION_ROWS_H
#define ENGINE_ATTENTION_ROWS_H

#include <math.h>
#include <stddef.h>
#include "fast_math.h"

#define ENGINE_ATTN_DEFINE_ROWS(T, TN, EXP, SUFFIX, ATTR)                                         \
ATTR static T engine_attn_row_max_##TN##_##SUFFIX(const T *row, ptrdiff_t n, T init) {            \
    T m = init;                                                                                   \
    _Pragma("omp simd reduction(max:m)")                                                          \
    for (ptrdiff_t c = 0; c < n; c++) m = row[c] > m ? row[c] : m;                                \
    return m;                                                                                     \
}                                                                                                 \
ATTR static T engine_attn_exp_sum_##TN##_##SUFFIX(T *row, T shift, ptrdiff_t n) {                 \
    T s = 0;                                                                                      \
    _Pragma("omp simd reduction(+:s)")                                                            \
    for (ptrdiff_t c = 0; c < n; c++) { T e = EXP(row[c] - shift); row[c] = e; s += e; }          \
    return s;                                                                                     \
}                                                                                                 \
ATTR static void engine_attn_probs_##TN##_##SUFFIX(T *row, T shift, T inv, ptrdiff_t n) {         \
    for (ptrdiff_t c = 0; c < n; c++) row[c] = EXP(row[c] - shift) * inv;                         \
}                                                                                                 \
ATTR static void engine_attn_dscores_##TN##_##SUFFIX(const T *p, T *dp, T delta, ptrdiff_t n) {   \
    for (ptrdiff_t c = 0; c < n; c++) dp[c] = p[c] * (dp[c] - delta);                             \
}

typedef struct {
    float (*row_max)(const float *row, ptrdiff_t n, float init);
    float (*exp_sum)(float *row, float shift, ptrdiff_t n);
    void (*probs)(float *row, float shift, float inv, ptrdiff_t n);
    void (*dscores)(const float *p, float *dp, float delta, ptrdiff_t n);
} engine_attn_isa_table;

#define ENGINE_ATTN_INSTANCE(SUFFIX, ATTR)                                                        \
    ENGINE_ATTN_DEFINE_ROWS(float, f32, engine_expf, SUFFIX, ATTR)                               \
    static const engine_attn_isa_table engine_attn_table_##SUFFIX = {                            \
        engine_attn_row_max_f32_##SUFFIX, engine_attn_exp_sum_f32_##SUFFIX,                      \
        engine_attn_probs_f32_##SUFFIX, engine_attn_dscores_f32_##SUFFIX};

ENGINE_ATTN_INSTANCE(portable, )
#if ENGINE_X86_SIMD
ENGINE_ATTN_INSTANCE(avx2, ENGINE_TARGET_AVX2)
ENGINE_ATTN_INSTANCE(avx512, ENGINE_TARGET_AVX512)
ENGINE_ISA_TABLES(engine_attn_isa_table, engine_attn_isa, &engine_attn_table_portable, &engine_attn_table_avx2,
                  &engine_attn_table_avx512)
#else
ENGINE_ISA_TABLES(engine_attn_isa_table, engine_attn_isa, &engine_attn_table_portable,
                  &engine_attn_table_portable, &engine_attn_table_portable)
#endif
#undef ENGINE_ATTN_INSTANCE

ENGINE_ATTN_DEFINE_ROWS(double, f64, exp, once, )

/* The current level's float32 loops (the table read per call: one load and an indirect call). */
static inline float engine_attn_row_max_f32(const float *row, ptrdiff_t n, float init) {
    return engine_attn_isa()->row_max(row, n, init);
}
static inline float engine_attn_exp_sum_f32(float *row, float shift, ptrdiff_t n) {
    return engine_attn_isa()->exp_sum(row, shift, n);
}
static inline void engine_attn_probs_f32(float *row, float shift, float inv, ptrdiff_t n) {
    engine_attn_isa()->probs(row, shift, inv, n);
}
static inline void engine_attn_dscores_f32(const float *p, float *dp, float delta, ptrdiff_t n) {
    engine_attn_isa()->dscores(p, dp, delta, n);
}
#define engine_attn_row_max_f64 engine_attn_row_max_f64_once
#define engine_attn_exp_sum_f64 engine_attn_exp_sum_f64_once
#define engine_attn_probs_f64 engine_attn_probs_f64_once
#define engine_attn_dscores_f64 engine_attn_dscores_f64_once

#endif
