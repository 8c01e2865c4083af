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
    void engine_gemm_set_simd(int cap)      # 0 portable, 1 AVX2+FMA, 2 best available (process-wide)

cdef extern from "gemm_api.h":
    int engine_gemm_api_import() except -1
