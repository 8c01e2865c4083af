# Declarations the kernel modules share: the C-level GEMM of gemm.h (each module
# compiles its own copy of the header) and the size of an OpenMP thread team.

cdef extern from "gemm.h" nogil:
    void engine_sgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      float alpha, const float *A, Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                      float beta, float *C, Py_ssize_t ldc)
    void engine_dgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      double alpha, const double *A, Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                      double beta, double *C, Py_ssize_t ldc)
    void engine_gemm_set_simd(int cap)      # 0 portable, 1 AVX2+FMA, 2 best available

cdef extern from "threads.h" nogil:
    int engine_openmp_enabled()
    int engine_max_threads()
    int engine_thread_num()
    void engine_set_max_threads(int n)


cdef inline int team_size(Py_ssize_t work, Py_ssize_t minimum) noexcept nogil:
    """Threads for a loop of `work` elements: one below `minimum`, where waking a team costs
    more than it saves (small Keras models call these every step)."""
    if work < minimum:
        return 1
    return engine_max_threads()
