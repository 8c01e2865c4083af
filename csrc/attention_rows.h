/* The per-row loops of attention.pyx's score tiles, built per instruction set (isa.h's scheme):
 * float32 for portable (baseline x86-64), AVX2+FMA and AVX-512F through an ISA table, float64
 * once (libm's exp, the precise reference of the gradient checks).
 *
 * Plain C loops: the exponentials are fast_math.h's engine_expf (straight-line code that
 * vectorises), and each reduction carries `omp simd reduction` so the compiler may split it over
 * vector lanes (strict IEEE order keeps a written-out reduction scalar); exp_sum keeps 16 partial
 * sums itself, reduced as a tree.  Without OpenMP the
 * pragmas are ignored and the loops run scalar with the same results up to summation order.
 *
 *   row_max(row, n, init)        max(init, row[0..n))
 *   exp_sum(row, shift, n)       row[c] = exp(row[c] - shift) in place; returns their sum
 *   probs(row, shift, inv, n)    row[c] = exp(row[c] - shift) * inv (the backward's recomputed
 *                                probabilities from the forward's row maximum and 1 / sum)
 *   dscores(p, dp, delta, n)     dp[c] = p[c] * (dp[c] - delta) (softmax backward, in place)
 *   dot(x, y, n)                 sum_c x[c] y[c] in double (the backward's row term
 *                                delta = dout . out; summed over vector lanes, not in one chain)
 */
#ifndef ENGINE_ATTENTION_ROWS_H
#define ENGINE_ATTENTION_ROWS_H

#include <math.h>
#include <stddef.h>
#include <string.h>
#include "fast_math.h"

#define ENGINE_ATTN_DEFINE_ROWS(T, TN, EXP, SUFFIX, ATTR)                                         \
ATTR static T engine_attn_row_max_##TN##_##SUFFIX(const T *row, ptrdiff_t n, T init) {            \
    T m = init;                                                                                   \
    _Pragma("omp simd reduction(max:m)")                                                          \
    for (ptrdiff_t c = 0; c < n; c++) m = row[c] > m ? row[c] : m;                                \
    return m;                                                                                     \
}                                                                                                 \
ATTR static T engine_attn_exp_sum_##TN##_##SUFFIX(T *row, T shift, ptrdiff_t n) {                 \
    /* 16 partial sums, reduced as a tree at the end: a reduction clause summed the lanes     \
       through the stack one dependent add at a time, a quarter of the row's time when the    \
       row is 128 values.  The callers pad their rows to a multiple of 16 (attention.pyx's      \
       _ROW_PAD), so the tail loop is for other callers. */                                     \
    T acc[16] = {0};                                                                              \
    ptrdiff_t c = 0;                                                                              \
    int l;                                                                                        \
    for (; c + 16 <= n; c += 16) {                                                                \
        _Pragma("omp simd")                                                                       \
        for (l = 0; l < 16; l++) { T e = EXP(row[c + l] - shift); row[c + l] = e; acc[l] += e; }  \
    }                                                                                             \
    for (; c < n; c++) { T e = EXP(row[c] - shift); row[c] = e; acc[0] += e; }                    \
    for (l = 8; l > 0; l /= 2) {                                                                  \
        int k;                                                                                    \
        for (k = 0; k < l; k++) acc[k] += acc[k + l];                                             \
    }                                                                                             \
    return acc[0];                                                                                \
}                                                                                                 \
ATTR static void engine_attn_probs_##TN##_##SUFFIX(T *row, T shift, T inv, ptrdiff_t n) {         \
    for (ptrdiff_t c = 0; c < n; c++) row[c] = EXP(row[c] - shift) * inv;                         \
}                                                                                                 \
ATTR static void engine_attn_dscores_##TN##_##SUFFIX(const T *p, T *dp, T delta, ptrdiff_t n) {   \
    for (ptrdiff_t c = 0; c < n; c++) dp[c] = p[c] * (dp[c] - delta);                             \
}                                                                                                 \
ATTR static double engine_attn_dot_##TN##_##SUFFIX(const T *x, const T *y, ptrdiff_t n) {          \
    double s = 0;                                                                                 \
    _Pragma("omp simd reduction(+:s)")                                                            \
    for (ptrdiff_t c = 0; c < n; c++) s += (double)x[c] * (double)y[c];                           \
    return s;                                                                                     \
}

/* Small-depth products of a tile, written directly (the GEMM's packing and blocking cost more
 * than the arithmetic when one side is 8-64 wide), in GCC vector extensions of W floats, so one
 * text serves every level (4 lanes portable, 8 AVX2, 16 AVX-512F; the target attribute makes
 * `acc += a * b` a fused multiply-add where the level has one).  nn returns 1 when done, 0 when
 * the shape is not theirs (the caller then runs the GEMM); nt is the caller's to choose (depth
 * up to ENGINE_ATTN_NT_DMAX, float32):
 *
 *   nt: C[m, n] = sum_d A[m lda + d] Bt[d ldbt + n] for m < M, n < N, d < D (scores:
 *       q k^T, dout v^T), with Bt the keys or values transposed once per (batch, head) pair by
 *       engine_attn_pack_t (no alpha: the caller scales the queries it copies, and with one
 *       register for alpha the 12 accumulators spilled an operand).  Columns are done 2W at a time up to NP = N rounded up to 2W: Bt
 *       must be readable (zero) and C writable up to NP columns, which the caller guarantees
 *       (the tiles have _BK = 128 columns in longer rows, Bt rows are padded past a multiple
 *       of 32).
 *   nn: C[m, 0:D] += alpha * sum_k A[m sam + k sak] B[k ldb + 0:D] for m < M, k < K: the tile
 *       times values or keys (sam = tile row stride, sak = 1) or the tile transposed times
 *       queries or output gradients (sam = 1, sak = row stride).  Needs D a multiple of W; C's
 *       columns are done 2W at a time (B's two vectors stay in registers: with 4 vectors per
 *       row the compiler read them from memory for every row, 10 loads per 8 multiply-adds).
 */
enum { ENGINE_ATTN_NT_DMAX = 64, ENGINE_ATTN_PAD = 32 };
/* Rows of C per register block: 6 rows of 2 vectors are 12 accumulators, with the 2 vectors of
 * the other operand and a broadcast 15 of the 16 AVX2 / SSE registers (8 multiply-adds per 6
 * loads at 4 rows, 12 per 8 at 6). */
#define ENGINE_ATTN_MR 6

/* Bt (D x ldbt) = the first N rows of B (row stride ldb, D columns) transposed, zero from
 * column N to ldbt. */
static void engine_attn_pack_t(const float *B, ptrdiff_t ldb, ptrdiff_t N, ptrdiff_t D, float *bt,
                               ptrdiff_t ldbt) {
    for (ptrdiff_t n = 0; n < N; n++)
        for (ptrdiff_t d = 0; d < D; d++) bt[d * ldbt + n] = B[n * ldb + d];
    for (ptrdiff_t d = 0; d < D; d++)
        for (ptrdiff_t n = N; n < ldbt; n++) bt[d * ldbt + n] = 0.0f;
}

#define ENGINE_ATTN_DEFINE_MM(SUFFIX, ATTR, W)                                                    \
typedef float engine_attn_v_##SUFFIX __attribute__((vector_size(4 * (W))));                       \
ATTR __attribute__((always_inline)) static inline engine_attn_v_##SUFFIX                          \
engine_attn_load_##SUFFIX(const float *p) {                                                       \
    engine_attn_v_##SUFFIX v;                                                                     \
    memcpy(&v, p, sizeof v);                                                                      \
    return v;                                                                                     \
}                                                                                                 \
ATTR __attribute__((always_inline)) static inline void                                            \
engine_attn_nt_rows_##SUFFIX(int R, ptrdiff_t m0, ptrdiff_t NP, ptrdiff_t D,                      \
                             const float *A, ptrdiff_t lda, const float *bt, ptrdiff_t ldbt, float *C, \
                             ptrdiff_t ldc) {                                                     \
    for (ptrdiff_t n0 = 0; n0 < NP; n0 += 2 * (W)) {                                              \
        engine_attn_v_##SUFFIX acc[ENGINE_ATTN_MR][2];                                             \
        for (int r = 0; r < R; r++) { acc[r][0] = (engine_attn_v_##SUFFIX){0}; acc[r][1] = acc[r][0]; } \
        for (ptrdiff_t d = 0; d < D; d++) {                                                       \
            engine_attn_v_##SUFFIX b0 = engine_attn_load_##SUFFIX(bt + d * ldbt + n0);            \
            engine_attn_v_##SUFFIX b1 = engine_attn_load_##SUFFIX(bt + d * ldbt + n0 + (W));      \
            for (int r = 0; r < R; r++) {                                                         \
                float a = A[(m0 + r) * lda + d];                                                  \
                acc[r][0] += a * b0;                                                              \
                acc[r][1] += a * b1;                                                              \
            }                                                                                     \
        }                                                                                         \
        for (int r = 0; r < R; r++) {                                                             \
            engine_attn_v_##SUFFIX c0 = acc[r][0], c1 = acc[r][1];                                \
            memcpy(C + (m0 + r) * ldc + n0, &c0, sizeof c0);                                      \
            memcpy(C + (m0 + r) * ldc + n0 + (W), &c1, sizeof c1);                                \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
ATTR static void engine_attn_nt_##SUFFIX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t D,                    \
                                         const float *A, ptrdiff_t lda, const float *bt, ptrdiff_t ldbt, \
                                         float *C, ptrdiff_t ldc) {                               \
    ptrdiff_t NP = (N + 2 * (W) - 1) / (2 * (W)) * (2 * (W)), m0 = 0;                             \
    for (; m0 + ENGINE_ATTN_MR <= M; m0 += ENGINE_ATTN_MR)                                        \
        engine_attn_nt_rows_##SUFFIX(ENGINE_ATTN_MR, m0, NP, D, A, lda, bt, ldbt, C, ldc);  \
    switch (M - m0) {                                                                             \
    case 5: engine_attn_nt_rows_##SUFFIX(5, m0, NP, D, A, lda, bt, ldbt, C, ldc); break;           \
    case 4: engine_attn_nt_rows_##SUFFIX(4, m0, NP, D, A, lda, bt, ldbt, C, ldc); break;           \
    case 3: engine_attn_nt_rows_##SUFFIX(3, m0, NP, D, A, lda, bt, ldbt, C, ldc); break;           \
    case 2: engine_attn_nt_rows_##SUFFIX(2, m0, NP, D, A, lda, bt, ldbt, C, ldc); break;           \
    case 1: engine_attn_nt_rows_##SUFFIX(1, m0, NP, D, A, lda, bt, ldbt, C, ldc); break;           \
    default: break;                                                                               \
    }                                                                                             \
}                                                                                                 \
ATTR __attribute__((always_inline)) static inline void                                            \
engine_attn_nn_rows_##SUFFIX(int R, int NV, ptrdiff_t m0, ptrdiff_t K, float alpha, const float *A, \
                             ptrdiff_t sam, ptrdiff_t sak, const float *B, ptrdiff_t ldb, float *C, \
                             ptrdiff_t ldc) {                                                     \
    engine_attn_v_##SUFFIX acc[ENGINE_ATTN_MR][2];                                                 \
    for (int r = 0; r < R; r++)                                                                   \
        for (int v = 0; v < NV; v++) acc[r][v] = (engine_attn_v_##SUFFIX){0};                     \
    for (ptrdiff_t k = 0; k < K; k++) {                                                           \
        engine_attn_v_##SUFFIX b[2];                                                              \
        for (int v = 0; v < NV; v++) b[v] = engine_attn_load_##SUFFIX(B + k * ldb + v * (W));    \
        for (int r = 0; r < R; r++) {                                                             \
            float a = A[(m0 + r) * sam + k * sak];                                                \
            for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];                                   \
        }                                                                                         \
    }                                                                                             \
    for (int r = 0; r < R; r++)                                                                   \
        for (int v = 0; v < NV; v++) {                                                            \
            float *c = C + (m0 + r) * ldc + v * (W);                                              \
            engine_attn_v_##SUFFIX cv = engine_attn_load_##SUFFIX(c) + acc[r][v] * alpha;         \
            memcpy(c, &cv, sizeof cv);                                                            \
        }                                                                                         \
}                                                                                                 \
ATTR __attribute__((always_inline)) static inline void                                            \
engine_attn_nn_cols_##SUFFIX(int NV, ptrdiff_t M, ptrdiff_t K, float alpha, const float *A, ptrdiff_t sam, \
                             ptrdiff_t sak, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc) {  \
    ptrdiff_t m0 = 0;                                                                             \
    for (; m0 + ENGINE_ATTN_MR <= M; m0 += ENGINE_ATTN_MR)                                        \
        engine_attn_nn_rows_##SUFFIX(ENGINE_ATTN_MR, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); \
    switch (M - m0) {                                                                             \
    case 5: engine_attn_nn_rows_##SUFFIX(5, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); break; \
    case 4: engine_attn_nn_rows_##SUFFIX(4, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); break; \
    case 3: engine_attn_nn_rows_##SUFFIX(3, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); break; \
    case 2: engine_attn_nn_rows_##SUFFIX(2, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); break; \
    case 1: engine_attn_nn_rows_##SUFFIX(1, NV, m0, K, alpha, A, sam, sak, B, ldb, C, ldc); break; \
    default: break;                                                                               \
    }                                                                                             \
}                                                                                                 \
ATTR static int engine_attn_nn_##SUFFIX(ptrdiff_t M, ptrdiff_t D, ptrdiff_t K, float alpha,        \
                                        const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B, \
                                        ptrdiff_t ldb, float *C, ptrdiff_t ldc) {                 \
    ptrdiff_t c0 = 0;                                                                             \
    if (D % (W) != 0 || D == 0) return 0;                                                         \
    for (; c0 + 2 * (W) <= D; c0 += 2 * (W))                                                      \
        engine_attn_nn_cols_##SUFFIX(2, M, K, alpha, A, sam, sak, B + c0, ldb, C + c0, ldc);      \
    if (c0 < D) engine_attn_nn_cols_##SUFFIX(1, M, K, alpha, A, sam, sak, B + c0, ldb, C + c0, ldc); \
    return 1;                                                                                     \
}

typedef struct {
    float (*row_max)(const float *row, ptrdiff_t n, float init);
    float (*exp_sum)(float *row, float shift, ptrdiff_t n);
    void (*probs)(float *row, float shift, float inv, ptrdiff_t n);
    void (*dscores)(const float *p, float *dp, float delta, ptrdiff_t n);
    double (*dot)(const float *x, const float *y, ptrdiff_t n);
    void (*nt)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t D, const float *A, ptrdiff_t lda, const float *bt,
               ptrdiff_t ldbt, float *C, ptrdiff_t ldc);
    int (*nn)(ptrdiff_t M, ptrdiff_t D, ptrdiff_t K, float alpha, const float *A, ptrdiff_t sam, ptrdiff_t sak,
              const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc);
} engine_attn_isa_table;

#define ENGINE_ATTN_INSTANCE(SUFFIX, ATTR, W)                                                     \
    ENGINE_ATTN_DEFINE_ROWS(float, f32, engine_expf, SUFFIX, ATTR)                               \
    ENGINE_ATTN_DEFINE_MM(SUFFIX, ATTR, W)                                                       \
    static const engine_attn_isa_table engine_attn_table_##SUFFIX = {                            \
        engine_attn_row_max_f32_##SUFFIX, engine_attn_exp_sum_f32_##SUFFIX,                      \
        engine_attn_probs_f32_##SUFFIX, engine_attn_dscores_f32_##SUFFIX,                        \
        engine_attn_dot_f32_##SUFFIX, engine_attn_nt_##SUFFIX, engine_attn_nn_##SUFFIX};

ENGINE_ATTN_INSTANCE(portable, , 4)
#if ENGINE_X86_SIMD
ENGINE_ATTN_INSTANCE(avx2, ENGINE_TARGET_AVX2, 8)
ENGINE_ATTN_INSTANCE(avx512, ENGINE_TARGET_AVX512, 16)
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
static inline double engine_attn_dot_f32(const float *x, const float *y, ptrdiff_t n) {
    return engine_attn_isa()->dot(x, y, n);
}
static inline void engine_attn_nt_f32(ptrdiff_t M, ptrdiff_t N, ptrdiff_t D, const float *A, ptrdiff_t lda,
                                      const float *bt, ptrdiff_t ldbt, float *C, ptrdiff_t ldc) {
    engine_attn_isa()->nt(M, N, D, A, lda, bt, ldbt, C, ldc);
}
static inline int engine_attn_nn_f32(ptrdiff_t M, ptrdiff_t D, ptrdiff_t K, float alpha, const float *A,
                                     ptrdiff_t sam, ptrdiff_t sak, const float *B, ptrdiff_t ldb, float *C,
                                     ptrdiff_t ldc) {
    return engine_attn_isa()->nn(M, D, K, alpha, A, sam, sak, B, ldb, C, ldc);
}
#define engine_attn_row_max_f64 engine_attn_row_max_f64_once
#define engine_attn_exp_sum_f64 engine_attn_exp_sum_f64_once
#define engine_attn_probs_f64 engine_attn_probs_f64_once
#define engine_attn_dscores_f64 engine_attn_dscores_f64_once
#define engine_attn_dot_f64 engine_attn_dot_f64_once

#endif
