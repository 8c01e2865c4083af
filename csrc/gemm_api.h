/* The GEMM of gemm.h as the other kernel modules see it.
 *
 * gemm.h (its micro-kernels for three instruction sets and two types) is compiled once, into the
 * gemm module, which publishes its entry points in a capsule (engine._kernels.gemm._c_api).
 * conv and recurrent include this header instead and call through that table: compiling the
 * header into each of them tripled the build's longest compile jobs.  One copy also means one
 * set of packing buffers per thread and one L2 probe for the process.
 *
 * A module that includes this header calls engine_gemm_api_import() once at import time (it
 * returns -1 with a Python exception set when the gemm module cannot be loaded).  gemm.h defines
 * ENGINE_GEMM_PROVIDER before including it, and gets only the table's type.
 */
#ifndef ENGINE_GEMM_API_H
#define ENGINE_GEMM_API_H

#include <stddef.h>

#define ENGINE_GEMM_CAPSULE "engine._kernels.gemm._c_api"

typedef struct {
    void (*sgemm)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                  float alpha, const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                  float beta, float *C, ptrdiff_t ldc);
    void (*dgemm)(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                  double alpha, const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                  double beta, double *C, ptrdiff_t ldc);
    /* two products sharing op(B): C1 = alpha op(A1) op(B) + beta C1, C2 likewise (gemm_driver_tmpl.h) */
    void (*sgemm_pair)(int trans_a, int trans_b, ptrdiff_t m1, ptrdiff_t m2, ptrdiff_t n, ptrdiff_t k,
                       float alpha, const float *A1, ptrdiff_t lda1, const float *A2, ptrdiff_t lda2,
                       const float *B, ptrdiff_t ldb, float beta, float *C1, ptrdiff_t ldc1,
                       float *C2, ptrdiff_t ldc2);
    void (*dgemm_pair)(int trans_a, int trans_b, ptrdiff_t m1, ptrdiff_t m2, ptrdiff_t n, ptrdiff_t k,
                       double alpha, const double *A1, ptrdiff_t lda1, const double *A2, ptrdiff_t lda2,
                       const double *B, ptrdiff_t ldb, double beta, double *C1, ptrdiff_t ldc1,
                       double *C2, ptrdiff_t ldc2);
} engine_gemm_api;

#ifndef ENGINE_GEMM_PROVIDER
#include <Python.h>

static const engine_gemm_api *engine_gemm_fns = NULL;

static int engine_gemm_api_import(void)
{
    PyObject *mod = PyImport_ImportModule("engine._kernels.gemm"), *cap;
    if (mod == NULL) return -1;
    cap = PyObject_GetAttrString(mod, "_c_api");
    Py_DECREF(mod);
    if (cap == NULL) return -1;
    engine_gemm_fns = (const engine_gemm_api *)PyCapsule_GetPointer(cap, ENGINE_GEMM_CAPSULE);
    Py_DECREF(cap);
    return engine_gemm_fns == NULL ? -1 : 0;
}

static inline void engine_sgemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                float alpha, const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb,
                                float beta, float *C, ptrdiff_t ldc)
{
    engine_gemm_fns->sgemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

static inline void engine_dgemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                double alpha, const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                                double beta, double *C, ptrdiff_t ldc)
{
    engine_gemm_fns->dgemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

static inline void engine_sgemm_pair(int trans_a, int trans_b, ptrdiff_t m1, ptrdiff_t m2, ptrdiff_t n,
                                     ptrdiff_t k, float alpha, const float *A1, ptrdiff_t lda1,
                                     const float *A2, ptrdiff_t lda2, const float *B, ptrdiff_t ldb,
                                     float beta, float *C1, ptrdiff_t ldc1, float *C2, ptrdiff_t ldc2)
{
    engine_gemm_fns->sgemm_pair(trans_a, trans_b, m1, m2, n, k, alpha, A1, lda1, A2, lda2, B, ldb, beta,
                                C1, ldc1, C2, ldc2);
}

static inline void engine_dgemm_pair(int trans_a, int trans_b, ptrdiff_t m1, ptrdiff_t m2, ptrdiff_t n,
                                     ptrdiff_t k, double alpha, const double *A1, ptrdiff_t lda1,
                                     const double *A2, ptrdiff_t lda2, const double *B, ptrdiff_t ldb,
                                     double beta, double *C1, ptrdiff_t ldc1, double *C2, ptrdiff_t ldc2)
{
    engine_gemm_fns->dgemm_pair(trans_a, trans_b, m1, m2, n, k, alpha, A1, lda1, A2, lda2, B, ldb, beta,
                                C1, ldc1, C2, ldc2);
}
#endif

#endif
