# Python entry to the GEMM kernels in gemm.h, with every check the C code relies on.
import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "gemm.h" nogil:
    void engine_sgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      float alpha, const float *A, Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                      float beta, float *C, Py_ssize_t ldc)
    void engine_dgemm(int trans_a, int trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      double alpha, const double *A, Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                      double beta, double *C, Py_ssize_t ldc)


cdef Py_ssize_t _row_stride(object a, str name) except -1:
    if a.ndim != 2:
        raise ValueError(f"gemm: {name} must be 2-D, got shape {a.shape}")
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError(f"gemm: {name} must have unit stride along its last axis, got strides {a.strides}")
    if a.strides[0] % a.itemsize != 0 or a.strides[0] < 0:
        raise ValueError(f"gemm: {name} has an unsupported row stride {a.strides[0]}")
    cdef Py_ssize_t ld = a.strides[0] // a.itemsize
    if a.shape[0] > 1 and ld < a.shape[1]:
        raise ValueError(f"gemm: {name} rows overlap (row stride {ld} < {a.shape[1]} columns)")
    return ld if ld >= a.shape[1] else a.shape[1]


def gemm(object A, object B, object C, bint trans_a=False, bint trans_b=False,
         double alpha=1.0, double beta=0.0):
    """C = alpha * op(A) @ op(B) + beta * C, in place. Same dtype (float32/float64) throughout."""
    if not (isinstance(A, np.ndarray) and isinstance(B, np.ndarray) and isinstance(C, np.ndarray)):
        raise ValueError("gemm: A, B and C must be numpy arrays")
    if A.dtype != B.dtype or A.dtype != C.dtype or A.dtype not in (np.float32, np.float64):
        raise ValueError(f"gemm: A, B, C must share dtype float32 or float64, got "
                         f"{A.dtype}, {B.dtype}, {C.dtype}")
    if not C.flags.writeable:
        raise ValueError("gemm: C is read-only")
    cdef Py_ssize_t lda = _row_stride(A, "A"), ldb = _row_stride(B, "B"), ldc = _row_stride(C, "C")
    cdef Py_ssize_t m = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t k = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t kb = B.shape[1] if trans_b else B.shape[0]
    cdef Py_ssize_t n = B.shape[0] if trans_b else B.shape[1]
    if k != kb or C.shape[0] != m or C.shape[1] != n:
        raise ValueError(f"gemm: shapes do not agree: op(A) is ({m}, {k}), op(B) is ({kb}, {n}), "
                         f"C is {tuple(C.shape)}")
    if m == 0 or n == 0:
        return C
    cdef char *pa = <char*>cnp.PyArray_DATA(A)
    cdef char *pb = <char*>cnp.PyArray_DATA(B)
    cdef char *pc = <char*>cnp.PyArray_DATA(C)
    if A.dtype == np.float32:
        with nogil:
            engine_sgemm(trans_a, trans_b, m, n, k, <float>alpha, <float*>pa, lda,
                         <float*>pb, ldb, <float>beta, <float*>pc, ldc)
    else:
        with nogil:
            engine_dgemm(trans_a, trans_b, m, n, k, alpha, <double*>pa, lda,
                         <double*>pb, ldb, beta, <double*>pc, ldc)
    return C


def matmul(A, B, bint trans_a=False, bint trans_b=False):
    """op(A) @ op(B) into a new C-contiguous array."""
    A = np.asarray(A)
    B = np.asarray(B)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"matmul: expected 2-D operands, got shapes {A.shape} and {B.shape}")
    m = A.shape[1] if trans_a else A.shape[0]
    n = B.shape[0] if trans_b else B.shape[1]
    C = np.empty((m, n), dtype=A.dtype)
    return gemm(A, B, C, trans_a, trans_b, 1.0, 0.0)
