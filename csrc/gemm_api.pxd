# The GEMM's entry points.  In conv and recurrent, calls go through the table the gemm module
# publishes (csrc/gemm_api.h), so gemm.h is compiled once: call engine_gemm_api_import() at module
# import before anything else here.  gemm.pyx cimports the same names after including gemm.h,
# which makes them the implementation itself.

cdef extern from "gemm_api.h" nogil:
    void engine_sgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      float alpha, const float *A, Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                      float beta, float *C, Py_ssize_t ldc)
    void engine_dgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      double alpha, const double *A, Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                      double beta, double *C, Py_ssize_t ldc)
    # C1 = alpha op(A1) op(B) + beta C1 and C2 likewise, op(B) packed once for both when it pays
    void engine_sgemm_pair(int trans_a, int trans_b, Py_ssize_t m1, Py_ssize_t m2, Py_ssize_t n, Py_ssize_t k,
                           float alpha, const float *A1, Py_ssize_t lda1, const float *A2, Py_ssize_t lda2,
                           const float *B, Py_ssize_t ldb, float beta, float *C1, Py_ssize_t ldc1,
                           float *C2, Py_ssize_t ldc2)
    void engine_dgemm_pair(int trans_a, int trans_b, Py_ssize_t m1, Py_ssize_t m2, Py_ssize_t n, Py_ssize_t k,
                           double alpha, const double *A1, Py_ssize_t lda1, const double *A2, Py_ssize_t lda2,
                           const double *B, Py_ssize_t ldb, double beta, double *C1, Py_ssize_t ldc1,
                           double *C2, Py_ssize_t ldc2)

cdef extern from "gemm_api.h":
    int engine_gemm_api_import() except -1
