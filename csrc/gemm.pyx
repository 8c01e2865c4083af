# Python entry to the GEMM kernels in gemm.h, with every check the C code relies on.
#
# The checks use the C-level numpy API: for the small products of a Keras
# training step the call overhead is a visible part of the cost.
import numpy as np
cimport numpy as cnp

cnp.import_array()

from cpython.pycapsule cimport PyCapsule_New

# gemm.h holds the implementation; it must be included before gemm_api.h (whose include guard
# then keeps out the call-through wrappers of the same names that other modules use), so this
# block comes before the cimport that declares the entry points.
cdef extern from "gemm.h" nogil:
    ctypedef struct engine_gemm_api:
        pass
    const engine_gemm_api engine_gemm_table
    const char *ENGINE_GEMM_CAPSULE
    const char *engine_gemm_simd_name()
    void engine_gemm_set_blocking(int is_double, Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t nc)
    void engine_gemm_get_blocking(int is_double, int *out)
    Py_ssize_t engine_gemm_swap_a_in_place_max_c(int is_double, Py_ssize_t elements)
    Py_ssize_t engine_gemm_swap_small_b_in_place_max(int is_double, Py_ssize_t nbytes)

from gemm_api cimport engine_sgemm, engine_dgemm, engine_sgemm_pair, engine_dgemm_pair
from kernel_common cimport engine_runtime_import
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)

cdef extern from "gemm_peak.h" nogil:
    double engine_fma_peak_gflops(int nthreads, int simd, long iters)


# The entry points conv and recurrent call (csrc/gemm_api.h): this module's one compiled GEMM.
_c_api = PyCapsule_New(<void *>&engine_gemm_table, ENGINE_GEMM_CAPSULE, NULL)


cdef Py_ssize_t _row_stride(cnp.ndarray a, str name) except -1:
    cdef int nd = cnp.PyArray_NDIM(a)
    if nd != 2:
        raise ValueError(f"gemm: {name} must be 2-D, got shape {(<object>a).shape}")
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(a)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(a)
    if shape[0] == 0 or shape[1] == 0:
        return shape[1] if shape[1] > 0 else 1    # no element is read; numpy may give 0 strides
    if shape[1] > 1 and strides[1] != itemsize:
        raise ValueError(f"gemm: {name} must have unit stride along its last axis, got strides {(<object>a).strides}")
    if shape[0] > 1 and (strides[0] % itemsize != 0 or strides[0] < 0):
        raise ValueError(f"gemm: {name} has an unsupported row stride {strides[0]}")
    cdef Py_ssize_t ld = strides[0] // itemsize
    if shape[0] > 1 and ld < shape[1]:
        raise ValueError(f"gemm: {name} rows overlap (row stride {ld} < {shape[1]} columns)")
    return ld if ld >= shape[1] else shape[1]


cdef struct _Dims:
    Py_ssize_t m, n, k, lda, ldb, ldc


cdef int _checked(str fn, object A, object B, object C, bint trans_a, bint trans_b,
                  _Dims *d) except -1:
    """Every check the C code relies on for C = op(A) op(B); fills d (a struct, not a tuple:
    this runs on every small product of a training step)."""
    if not (cnp.PyArray_Check(A) and cnp.PyArray_Check(B) and cnp.PyArray_Check(C)):
        raise ValueError(f"{fn}: A, B and C must be numpy arrays")
    cdef cnp.ndarray a = <cnp.ndarray>A, b = <cnp.ndarray>B, c = <cnp.ndarray>C
    cdef int t = cnp.PyArray_TYPE(a)
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or cnp.PyArray_TYPE(b) != t \
            or cnp.PyArray_TYPE(c) != t:
        raise ValueError(f"{fn}: A, B, C must share dtype float32 or float64, got "
                         f"{A.dtype}, {B.dtype}, {C.dtype}")
    if not cnp.PyArray_ISWRITEABLE(c):
        raise ValueError(f"{fn}: C is read-only")
    if not (cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISNOTSWAPPED(b) and cnp.PyArray_ISNOTSWAPPED(c)):
        raise ValueError(f"{fn}: operands must be in native byte order")
    cdef Py_ssize_t lda = _row_stride(a, "A"), ldb = _row_stride(b, "B"), ldc = _row_stride(c, "C")
    cdef cnp.npy_intp *sa = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *sb = cnp.PyArray_DIMS(b)
    cdef cnp.npy_intp *sc = cnp.PyArray_DIMS(c)
    cdef Py_ssize_t m = sa[1] if trans_a else sa[0]
    cdef Py_ssize_t k = sa[0] if trans_a else sa[1]
    cdef Py_ssize_t kb = sb[1] if trans_b else sb[0]
    cdef Py_ssize_t n = sb[0] if trans_b else sb[1]
    if k != kb or sc[0] != m or sc[1] != n:
        raise ValueError(f"{fn}: shapes do not agree: op(A) is ({m}, {k}), op(B) is ({kb}, {n}), "
                         f"C is {tuple(C.shape)}")
    d.m = m; d.n = n; d.k = k; d.lda = lda; d.ldb = ldb; d.ldc = ldc
    return 0


def gemm(object A, object B, object C, bint trans_a=False, bint trans_b=False,
         double alpha=1.0, double beta=0.0):
    """C = alpha * op(A) @ op(B) + beta * C, in place. Same dtype (float32/float64) throughout."""
    cdef _Dims d
    _checked("gemm", A, B, C, trans_a, trans_b, &d)
    cdef Py_ssize_t m = d.m, n = d.n, k = d.k, lda = d.lda, ldb = d.ldb, ldc = d.ldc
    if m == 0 or n == 0:
        return C
    cdef char *pa = <char*>cnp.PyArray_DATA(<cnp.ndarray>A)
    cdef char *pb = <char*>cnp.PyArray_DATA(<cnp.ndarray>B)
    cdef char *pc = <char*>cnp.PyArray_DATA(<cnp.ndarray>C)
    if cnp.PyArray_TYPE(<cnp.ndarray>A) == cnp.NPY_FLOAT32:
        with nogil:
            engine_sgemm(trans_a, trans_b, m, n, k, <float>alpha, <float*>pa, lda,
                         <float*>pb, ldb, <float>beta, <float*>pc, ldc)
    else:
        with nogil:
            engine_dgemm(trans_a, trans_b, m, n, k, alpha, <double*>pa, lda,
                         <double*>pb, ldb, beta, <double*>pc, ldc)
    return C


def gemm_pair(object A1, object A2, object B, object C1, object C2, bint trans_a=False,
              bint trans_b=False, double alpha=1.0, double beta=0.0):
    """C1 = alpha op(A1) @ op(B) + beta C1 and C2 = alpha op(A2) @ op(B) + beta C2, in place: two
    products sharing op(B) (weight gradients x^T dZ and h^T dZ), op(B) packed once for both when
    that pays.  Returns (C1, C2)."""
    cdef _Dims d1, d2
    _checked("gemm_pair", A1, B, C1, trans_a, trans_b, &d1)
    _checked("gemm_pair", A2, B, C2, trans_a, trans_b, &d2)     # the same B: same n, k, ldb
    cdef Py_ssize_t m1 = d1.m, m2 = d2.m, n = d1.n, k = d1.k, ldb = d1.ldb
    cdef Py_ssize_t lda1 = d1.lda, lda2 = d2.lda, ldc1 = d1.ldc, ldc2 = d2.ldc
    cdef char *pa1 = <char*>cnp.PyArray_DATA(<cnp.ndarray>A1)
    cdef char *pa2 = <char*>cnp.PyArray_DATA(<cnp.ndarray>A2)
    cdef char *pb = <char*>cnp.PyArray_DATA(<cnp.ndarray>B)
    cdef char *pc1 = <char*>cnp.PyArray_DATA(<cnp.ndarray>C1)
    cdef char *pc2 = <char*>cnp.PyArray_DATA(<cnp.ndarray>C2)
    if n == 0:
        return C1, C2
    if cnp.PyArray_TYPE(<cnp.ndarray>A1) == cnp.NPY_FLOAT32:
        with nogil:
            engine_sgemm_pair(trans_a, trans_b, m1, m2, n, k, <float>alpha, <float*>pa1, lda1,
                              <float*>pa2, lda2, <float*>pb, ldb, <float>beta, <float*>pc1, ldc1,
                              <float*>pc2, ldc2)
    else:
        with nogil:
            engine_dgemm_pair(trans_a, trans_b, m1, m2, n, k, alpha, <double*>pa1, lda1,
                              <double*>pa2, lda2, <double*>pb, ldb, beta, <double*>pc1, ldc1,
                              <double*>pc2, ldc2)
    return C1, C2


cdef bint _column_major(cnp.ndarray a):
    """A 2-D array whose columns, not rows, have unit stride (a transposed view of a row-major
    matrix, or a Fortran-ordered one): gemm cannot read it, but its transpose it can."""
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(a)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(a)
    return shape[0] > 1 and shape[1] > 1 and strides[1] != itemsize and strides[0] == itemsize


def matmul(A, B, bint trans_a=False, bint trans_b=False):
    """op(A) @ op(B) into a new C-contiguous array. A column-major operand (x.T of a row-major
    x) is read in place, as its transpose with the flag flipped, instead of raising."""
    if not cnp.PyArray_Check(A):
        A = np.asarray(A)
    if not cnp.PyArray_Check(B):
        B = np.asarray(B)
    cdef cnp.ndarray a = <cnp.ndarray>A, b = <cnp.ndarray>B
    if cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_NDIM(b) != 2:
        raise ValueError(f"matmul: expected 2-D operands, got shapes {A.shape} and {B.shape}")
    if _column_major(a):
        A = a = <cnp.ndarray>cnp.PyArray_Transpose(a, NULL)
        trans_a = not trans_a
    if _column_major(b):
        B = b = <cnp.ndarray>cnp.PyArray_Transpose(b, NULL)
        trans_b = not trans_b
    cdef cnp.npy_intp dims[2]
    dims[0] = cnp.PyArray_DIMS(a)[1] if trans_a else cnp.PyArray_DIMS(a)[0]
    dims[1] = cnp.PyArray_DIMS(b)[0] if trans_b else cnp.PyArray_DIMS(b)[1]
    C = cnp.PyArray_EMPTY(2, dims, cnp.PyArray_TYPE(a), 0)
    return gemm(A, B, C, trans_a, trans_b, 1.0, 0.0)


def simd_path():
    """The instruction set the GEMM runs now: "avx512", "avx2" or "portable" (the process-wide
    level engine.config.set_simd_path caps)."""
    return engine_gemm_simd_name().decode()


def _fma_peak_gflops(int nthreads=1, str simd="avx2", long iters=50000000):
    """Measured FMA-only throughput (GFLOP/s) of nthreads threads with the given
    instruction set ("avx2" or "avx512"); 0.0 if the CPU lacks it."""
    cdef int lvl = 2 if simd == "avx512" else 1
    cdef double r
    with nogil:
        r = engine_fma_peak_gflops(nthreads, lvl, iters)
    return r


def _blocking(dtype=np.float32):
    """(mr, nr, mc, kc, nc) of the active path for dtype (for tuning)."""
    cdef int out[5]
    engine_gemm_get_blocking(np.dtype(dtype) == np.float64, out)
    return tuple(out[i] for i in range(5))


def _set_blocking(dtype, Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t nc):
    """Override the cache blocks of the active path (benchmark tuning only)."""
    mr, nr = _blocking(dtype)[:2]
    if mc < mr or mc % mr or nc < nr or nc % nr or kc < 1:
        raise ValueError(f"_set_blocking: need mc % {mr} == 0, nc % {nr} == 0, kc >= 1")
    engine_gemm_set_blocking(np.dtype(dtype) == np.float64, mc, kc, nc)


def _set_a_in_place_max_c(dtype, Py_ssize_t elements):
    """Largest block of C (elements per thread) for which the packed path reads a transposed A in
    place rather than packing it (float32 4096, float64 0 by default).  Tests set 0 (always
    pack) or a huge value (never pack) to compare the two ways; returns the previous value."""
    return engine_gemm_swap_a_in_place_max_c(np.dtype(dtype) == np.float64, elements)


def _set_small_b_in_place_max_bytes(dtype, Py_ssize_t nbytes):
    """Largest k chunk of a row-major op(B), in bytes, that the small path reads in place rather
    than copying into panels (16384 by default; products of at most 16 row tiles always read it
    in place).  Tests set 0 (copy when allowed) or a huge value (always in place) to compare the
    two ways; returns the previous value."""
    return engine_gemm_swap_small_b_in_place_max(np.dtype(dtype) == np.float64, nbytes)
