/* The update rules of optimizer_step.pyx over a span [lo, hi) of a variable, built per
 * instruction set (isa.h's scheme): portable (baseline x86-64), AVX2 and AVX-512F, for float32
 * and float64 variables.
 *
 * The rules are Keras 3's, written as its separate operations, each rounded in the variable's
 * type with the scalars rounded to it first (so float32 results match Keras's within rounding,
 * and every level gives the same bits: IEEE multiply, add, divide and square root are exact
 * roundings however wide the vector).  That is why every level here is compiled without
 * contraction (ENGINE_OPT_TARGET_* below, not isa.h's ENGINE_TARGET_*): gcc turns a * b + c into
 * one fused multiply-add when the target has one (AVX-512F always does), which rounds once
 * instead of twice.
 *
 * The loops are plain C with the optional state buffers tested outside them, so each branch
 * is a straight loop the compiler vectorises (a divide and a square root per element bound the
 * adaptive rules: AVX2 ran RMSprop's step at twice the speed of the baseline's SSE2 here).
 * g may be w itself (the kernels' callers allow that exact alias), so nothing is `restrict`:
 * the compiler checks for overlap at run time and takes the vector loop when there is none.
 */
#ifndef ENGINE_OPTIMIZER_SPANS_H
#define ENGINE_OPTIMIZER_SPANS_H

#include <math.h>
#include <stddef.h>
#include "isa.h"

enum { ENGINE_OPT_SGD, ENGINE_OPT_MOMENTUM, ENGINE_OPT_RMSPROP, ENGINE_OPT_ADAM, ENGINE_OPT_ADAGRAD };

/* One variable's step: its gradient and state buffers (NULL where the rule does not use one)
 * and the rule's scalars. */
typedef struct {
    int kind;
    void *g;
    void *s1;       /* momentum / velocity / m / accumulator */
    void *s2;       /* RMSprop's momentum buffer / Adam's v */
    void *s3;       /* RMSprop's average gradient / Adam's vhat */
    double lr;      /* lr, or Adam's alpha */
    double a;       /* momentum / rho / beta_1 */
    double b;       /* RMSprop's momentum / beta_2 */
    double eps;
    int flag;       /* nesterov / centered */
} engine_opt_step;

/* gcc: a function attribute (its default, -ffp-contract=fast, fuses across statements); clang:
 * a pragma at the top of each body (its default, on, fuses within one expression, and
 * `rho * v + (1 - rho) * g * g` is one). */
#if defined(__clang__)
#define ENGINE_OPT_NO_CONTRACT
#define ENGINE_OPT_BODY_NO_CONTRACT _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define ENGINE_OPT_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define ENGINE_OPT_BODY_NO_CONTRACT
#else
#define ENGINE_OPT_NO_CONTRACT
#define ENGINE_OPT_BODY_NO_CONTRACT
#endif
#if ENGINE_X86_SIMD
#define ENGINE_OPT_TARGET_AVX2 __attribute__((target("avx2"))) ENGINE_OPT_NO_CONTRACT
#define ENGINE_OPT_TARGET_AVX512 __attribute__((target("avx512f,avx2"))) ENGINE_OPT_NO_CONTRACT
#else
#define ENGINE_OPT_TARGET_AVX2 ENGINE_OPT_NO_CONTRACT
#define ENGINE_OPT_TARGET_AVX512 ENGINE_OPT_NO_CONTRACT
#endif

#define ENGINE_OPT_DEFINE_SPAN(T, TN, SQRT, SUFFIX, ATTR)                                          \
ATTR static void engine_opt_span_##TN##_##SUFFIX(const engine_opt_step *st, T *w, ptrdiff_t lo,    \
                                                 ptrdiff_t hi) {                                   \
    ENGINE_OPT_BODY_NO_CONTRACT                                                                    \
    const T *g = (const T *)st->g;                                                                 \
    ptrdiff_t i;                                                                                   \
    if (st->kind == ENGINE_OPT_SGD) {                                                              \
        T lr = (T)st->lr;                                                                          \
        for (i = lo; i < hi; i++) w[i] = w[i] - g[i] * lr;                                         \
    } else if (st->kind == ENGINE_OPT_MOMENTUM) {                                                  \
        T *m = (T *)st->s1;                                                                        \
        T lr = (T)st->lr, mu = (T)st->a;                                                           \
        if (st->flag) {                                                                            \
            for (i = lo; i < hi; i++) {                                                            \
                T mi = -g[i] * lr + m[i] * mu;                                                     \
                m[i] = mi;                                                                         \
                w[i] = w[i] + (-g[i] * lr + mi * mu);                                              \
            }                                                                                      \
        } else {                                                                                   \
            for (i = lo; i < hi; i++) {                                                            \
                T mi = -g[i] * lr + m[i] * mu;                                                     \
                m[i] = mi;                                                                         \
                w[i] = w[i] + mi;                                                                  \
            }                                                                                      \
        }                                                                                          \
    } else if (st->kind == ENGINE_OPT_RMSPROP) {                                                   \
        T *vel = (T *)st->s1, *mom = (T *)st->s2, *avg = (T *)st->s3;                              \
        T lr = (T)st->lr, rho = (T)st->a, one_m_rho = (T)(1.0 - st->a);                            \
        T mu = (T)st->b, eps = (T)st->eps;                                                         \
        if (avg == NULL && mom == NULL) {                                                          \
            for (i = lo; i < hi; i++) {                                                            \
                T gi = g[i], vi = rho * vel[i] + one_m_rho * (gi * gi);                            \
                vel[i] = vi;                                                                       \
                w[i] = w[i] - lr * gi / SQRT(vi + eps);                                            \
            }                                                                                      \
        } else if (avg == NULL) {                                                                  \
            for (i = lo; i < hi; i++) {                                                            \
                T gi = g[i], vi = rho * vel[i] + one_m_rho * (gi * gi);                            \
                vel[i] = vi;                                                                       \
                T inc = mu * mom[i] + lr * gi / SQRT(vi + eps);                                    \
                mom[i] = inc;                                                                      \
                w[i] = w[i] - inc;                                                                 \
            }                                                                                      \
        } else {                                                                                   \
            for (i = lo; i < hi; i++) {                                                            \
                T gi = g[i], vi = rho * vel[i] + one_m_rho * (gi * gi);                            \
                vel[i] = vi;                                                                       \
                T ai = rho * avg[i] + one_m_rho * gi;                                              \
                avg[i] = ai;                                                                       \
                T inc = lr * gi / SQRT(vi - ai * ai + eps);                                        \
                if (mom != NULL) {                                                                 \
                    inc = mu * mom[i] + inc;                                                       \
                    mom[i] = inc;                                                                  \
                }                                                                                  \
                w[i] = w[i] - inc;                                                                 \
            }                                                                                      \
        }                                                                                          \
    } else if (st->kind == ENGINE_OPT_ADAM) {                                                      \
        T *m = (T *)st->s1, *v = (T *)st->s2, *vhat = (T *)st->s3;                                 \
        T alpha = (T)st->lr, eps = (T)st->eps;                                                     \
        T one_m_b1 = (T)(1.0 - st->a), one_m_b2 = (T)(1.0 - st->b);                                \
        if (vhat == NULL) {                                                                        \
            for (i = lo; i < hi; i++) {                                                            \
                T gi = g[i];                                                                       \
                T mi = m[i] + (gi - m[i]) * one_m_b1;                                              \
                T vi = v[i] + (gi * gi - v[i]) * one_m_b2;                                         \
                m[i] = mi;                                                                         \
                v[i] = vi;                                                                         \
                w[i] = w[i] - (mi * alpha) / (SQRT(vi) + eps);                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (i = lo; i < hi; i++) {                                                            \
                T gi = g[i];                                                                       \
                T mi = m[i] + (gi - m[i]) * one_m_b1;                                              \
                T vi = v[i] + (gi * gi - v[i]) * one_m_b2;                                         \
                m[i] = mi;                                                                         \
                v[i] = vi;                                                                         \
                if (!(vhat[i] >= vi)) vhat[i] = vi;                                                \
                vi = vhat[i];                                                                      \
                w[i] = w[i] - (mi * alpha) / (SQRT(vi) + eps);                                     \
            }                                                                                      \
        }                                                                                          \
    } else {                                                                                       \
        T *acc = (T *)st->s1;                                                                      \
        T lr = (T)st->lr, eps = (T)st->eps;                                                        \
        for (i = lo; i < hi; i++) {                                                                \
            T gi = g[i], ai = acc[i] + gi * gi;                                                    \
            acc[i] = ai;                                                                           \
            w[i] = w[i] - (lr * gi) / SQRT(ai + eps);                                              \
        }                                                                                          \
    }                                                                                              \
}

typedef struct {
    void (*span_f32)(const engine_opt_step *, float *, ptrdiff_t, ptrdiff_t);
    void (*span_f64)(const engine_opt_step *, double *, ptrdiff_t, ptrdiff_t);
} engine_opt_isa_table;

#define ENGINE_OPT_INSTANCE(SUFFIX, ATTR)                                                          \
    ENGINE_OPT_DEFINE_SPAN(float, f32, sqrtf, SUFFIX, ATTR)                                       \
    ENGINE_OPT_DEFINE_SPAN(double, f64, sqrt, SUFFIX, ATTR)                                       \
    static const engine_opt_isa_table engine_opt_table_##SUFFIX = {                               \
        engine_opt_span_f32_##SUFFIX, engine_opt_span_f64_##SUFFIX};

ENGINE_OPT_INSTANCE(portable, ENGINE_OPT_NO_CONTRACT)
#if ENGINE_X86_SIMD
ENGINE_OPT_INSTANCE(avx2, ENGINE_OPT_TARGET_AVX2)
ENGINE_OPT_INSTANCE(avx512, ENGINE_OPT_TARGET_AVX512)
ENGINE_ISA_TABLES(engine_opt_isa_table, engine_opt_isa, &engine_opt_table_portable, &engine_opt_table_avx2,
                  &engine_opt_table_avx512)
#else
ENGINE_ISA_TABLES(engine_opt_isa_table, engine_opt_isa, &engine_opt_table_portable, &engine_opt_table_portable,
                  &engine_opt_table_portable)
#endif
#undef ENGINE_OPT_INSTANCE

/* The span of `st` on w[lo:hi) at the process's SIMD level. */
static inline void engine_opt_span_f32(const engine_opt_step *st, float *w, ptrdiff_t lo, ptrdiff_t hi)
{
    engine_opt_isa()->span_f32(st, w, lo, hi);
}
static inline void engine_opt_span_f64(const engine_opt_step *st, double *w, ptrdiff_t lo, ptrdiff_t hi)
{
    engine_opt_isa()->span_f64(st, w, lo, hi);
}

#endif
