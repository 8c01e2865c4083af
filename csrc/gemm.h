/* GEMM entry points shared by every kernel module (header-only: each .pyx that
 * includes it gets its own copy, so conv and recurrent kernels can call GEMM at
 * C level, without the GIL and without Python overhead).
 *
 * Row-major, like cblas with CblasRowMajor:
 *   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C
 *   op(A) = A (stored m x k, row stride lda) or A^T (A stored k x m) when trans_a
 *   op(B) = B (stored k x n, row stride ldb) or B^T (B stored n x k) when trans_b
 * beta == 0 overwrites C without reading it (NaN in C does not leak through).
 *
 * This first version is correct and simple; the fast packed version replaces
 * the bodies and keeps these signatures.
 */
#ifndef ENGINE_GEMM_H
#define ENGINE_GEMM_H

#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ENGINE_DEFINE_REFERENCE_GEMM(NAME, T)                                          \
static void NAME(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,     \
                 T alpha, const T *A, ptrdiff_t lda, const T *B, ptrdiff_t ldb,       \
                 T beta, T *C, ptrdiff_t ldc)                                         \
{                                                                                     \
    ptrdiff_t i;                                                                      \
    int big = (double)m * (double)n * (double)k > 65536.0;                            \
    (void)big;                                                                        \
    _Pragma("omp parallel for schedule(static) if(big)")                              \
    for (i = 0; i < m; i++) {                                                         \
        T *c = C + i * ldc;                                                           \
        ptrdiff_t j, p;                                                               \
        if (beta == (T)0) { for (j = 0; j < n; j++) c[j] = (T)0; }                    \
        else if (beta != (T)1) { for (j = 0; j < n; j++) c[j] *= beta; }              \
        for (p = 0; p < k; p++) {                                                     \
            T a = alpha * (trans_a ? A[p * lda + i] : A[i * lda + p]);                \
            if (trans_b) { for (j = 0; j < n; j++) c[j] += a * B[j * ldb + p]; }      \
            else { const T *b = B + p * ldb; for (j = 0; j < n; j++) c[j] += a * b[j]; } \
        }                                                                             \
    }                                                                                 \
}

ENGINE_DEFINE_REFERENCE_GEMM(engine_sgemm, float)
ENGINE_DEFINE_REFERENCE_GEMM(engine_dgemm, double)

#endif
