# The shared driver of the elementwise kernel modules (activation, softmax, bias, loss,
# optimizer_step): the argument checks every C loop relies on, the scalar math in the array's
# own precision, the row reductions, and the work split.  Everything here is inline, compiled
# into each module that cimports it (`from ew_common cimport *`).
#
# Every kernel treats its arrays as flat C-contiguous buffers.  Work is split into one
# contiguous span per thread, run by threads.h's one driver (engine_run_spans); below a size
# threshold (engine_team_size) the span function is called directly, because waking a thread
# team costs microseconds and small models call these kernels on tiny arrays every step.  A module cimporting this file calls
# cnp.import_array() and engine_runtime_import() at import.
cimport numpy as cnp
from cython cimport floating
from libc.math cimport (expm1, expm1f, log, logf, log1p, log1pf, tanhf, erf, erff, sqrt, sqrtf,
                        exp as c_exp, tanh as c_tanh)
from kernel_common cimport (engine_team_size, engine_span_len, engine_thread_num,
                            engine_run_spans, engine_runtime_import)

# fast_math.h: the one definition of the fast float32 exp and sigmoid; the span loops through
# its per-ISA table (portable, AVX2+FMA).
cdef extern from "fast_math.h" nogil:
    float engine_expf(float x)
    float engine_sigmoidf(float x)
    double engine_sigmoid(double x)
    void engine_ew_f32_exp_shift(const float *x, float shift, float *y, Py_ssize_t n)
    void engine_ew_f32_sigmoid(const float *x, float *y, Py_ssize_t n)
    void engine_ew_f32_silu(const float *x, float *y, Py_ssize_t n)
    void engine_ew_f32_sigmoid_mul(const float *x, const float *g, float *out, Py_ssize_t n)
    void engine_ew_f32_silu_grad(const float *x, const float *g, float *out, Py_ssize_t n)
    void engine_ew_f32_log(const float *x, float *y, Py_ssize_t n)
    # derivatives (macros: one definition for every float type)
    float _sigmoid_slope_y_f "ENGINE_SIGMOID_SLOPE_Y"(float y)
    double _sigmoid_slope_y_d "ENGINE_SIGMOID_SLOPE_Y"(double y)
    float _tanh_slope_y_f "ENGINE_TANH_SLOPE_Y"(float y)
    double _tanh_slope_y_d "ENGINE_TANH_SLOPE_Y"(double y)
    float _silu_slope_f "ENGINE_SILU_SLOPE"(float x, float s)
    double _silu_slope_d "ENGINE_SILU_SLOPE"(double x, double s)

# Below these element counts one thread is faster than a team.  Memory-bound
# loops need much more work per thread than loops that call exp/erf/tanh.
cdef enum:
    PAR_MIN_CHEAP = 32768
    PAR_MIN_TRANSCENDENTAL = 4096
    # Spans start on 64-byte boundaries (for float32) so two threads never
    # write the same cache line.
    SPAN_ALIGN = 16



# ---------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------

cdef inline bint _is_float(cnp.ndarray a):
    cdef int t = cnp.PyArray_TYPE(a)
    return t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64


cdef inline cnp.ndarray _float_array(str fn, str name, object a):
    if not isinstance(a, cnp.ndarray):
        raise ValueError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not _is_float(arr):
        raise ValueError(f"{fn}: {name} must be float32 or float64, got dtype {arr.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{fn}: {name} must be C-contiguous, got shape {(<object>arr).shape} "
                         f"with strides {(<object>arr).strides}")
    return arr


cdef inline int _check_writable(str fn, str name, cnp.ndarray a) except -1:
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{fn}: {name} is read-only")
    return 0


cdef inline int _check_same_dtype(str fn, str name, cnp.ndarray a, str ref_name, cnp.ndarray ref) except -1:
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(ref):
        raise ValueError(f"{fn}: {name} has dtype {a.dtype} but {ref_name} has dtype {ref.dtype}")
    return 0


cdef inline cnp.ndarray _like(str fn, str name, object a, str ref_name, cnp.ndarray ref, bint writable):
    """A float array with the dtype and shape of ref."""
    cdef cnp.ndarray arr = _float_array(fn, name, a)
    _check_same_dtype(fn, name, arr, ref_name, ref)
    if not cnp.PyArray_SAMESHAPE(arr, ref):
        raise ValueError(f"{fn}: {name} has shape {(<object>arr).shape} but {ref_name} has shape {(<object>ref).shape}")
    if writable:
        _check_writable(fn, name, arr)
    return arr


cdef inline bint _overlaps(cnp.ndarray a, cnp.ndarray b):
    cdef char *pa = <char*>cnp.PyArray_DATA(a)
    cdef char *pb = <char*>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


cdef inline int _same_or_disjoint(str fn, str name_a, cnp.ndarray a, str name_b, cnp.ndarray b) except -1:
    # In place (the very same buffer) is fine for elementwise loops; a shifted
    # overlap would make a loop read values it already overwrote, and the
    # result would depend on the thread split.
    if not _overlaps(a, b):
        return 0
    if (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b)
            and cnp.PyArray_NBYTES(a) == cnp.PyArray_NBYTES(b)):
        return 0
    raise ValueError(f"{fn}: {name_a} {(<object>a).shape} and {name_b} {(<object>b).shape} partially overlap in memory; "
                     f"pass the same array for in-place use or non-overlapping buffers")


cdef inline int _disjoint(str fn, str name_a, cnp.ndarray a, str name_b, cnp.ndarray b) except -1:
    if _overlaps(a, b):
        raise ValueError(f"{fn}: {name_a} {(<object>a).shape} and {name_b} {(<object>b).shape} must not share memory")
    return 0


cdef inline bint _is_f32(cnp.ndarray a):
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32


cdef inline void* _data(cnp.ndarray a) noexcept nogil:
    return cnp.PyArray_DATA(a)



# ---------------------------------------------------------------------------
# Scalar math in the array's own precision
# ---------------------------------------------------------------------------

cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return engine_expf(v)       # vectorisable; libm's expf is a call per element
    else:
        return c_exp(v)


cdef inline floating _expm1(floating v) noexcept nogil:
    if floating is float:
        return expm1f(v)
    else:
        return expm1(v)


cdef inline floating _log1p(floating v) noexcept nogil:
    if floating is float:
        return log1pf(v)
    else:
        return log1p(v)


cdef inline floating _log(floating v) noexcept nogil:
    if floating is float:
        return logf(v)
    else:
        return log(v)


cdef inline floating _tanh(floating v) noexcept nogil:
    if floating is float:
        return tanhf(v)
    else:
        return c_tanh(v)


cdef inline floating _erf(floating v) noexcept nogil:
    if floating is float:
        return erff(v)
    else:
        return erf(v)


cdef inline floating _sqrt(floating v) noexcept nogil:
    if floating is float:
        return sqrtf(v)
    else:
        return sqrt(v)


cdef inline floating _abs(floating v) noexcept nogil:
    return -v if v < 0 else v


cdef inline floating _sigmoid(floating v) noexcept nogil:
    if floating is float:
        return engine_sigmoidf(v)
    else:
        return engine_sigmoid(v)


cdef inline floating _softplus(floating v) noexcept nogil:
    cdef floating zero = 0
    return (v if v > 0 else zero) + _log1p(_exp(-_abs(v)))


cdef inline floating _silu_slope(floating v) noexcept nogil:
    if floating is float:
        return _silu_slope_f(v, _sigmoid(v))
    else:
        return _silu_slope_d(v, _sigmoid(v))


cdef inline floating _sigmoid_slope_y(floating y) noexcept nogil:
    """sigmoid'(x) from y = sigmoid(x)."""
    if floating is float:
        return _sigmoid_slope_y_f(y)
    else:
        return _sigmoid_slope_y_d(y)


cdef inline floating _tanh_slope_y(floating y) noexcept nogil:
    """tanh'(x) from y = tanh(x)."""
    if floating is float:
        return _tanh_slope_y_f(y)
    else:
        return _tanh_slope_y_d(y)



# ---------------------------------------------------------------------------
# Row reductions (softmax and the cross-entropies)
# ---------------------------------------------------------------------------

# Reductions are kept out of the exp loops: without -ffast-math gcc will not
# vectorise a floating-point reduction, and it would take the exp with it.
# Sums use four independent double accumulators (a fixed, deterministic
# order) so they are not bound by one add's latency.

cdef inline floating _row_max(const floating* x, Py_ssize_t c) noexcept nogil:
    # Callers never pass c == 0 (empty rows are skipped); guard anyway.
    if c <= 0:
        return 0
    cdef floating m = x[0]
    cdef Py_ssize_t j
    for j in range(1, c):
        if x[j] > m:
            m = x[j]
    return m


cdef inline double _sum(const floating* a, Py_ssize_t n) noexcept nogil:
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += a[j]
        s1 += a[j + 1]
        s2 += a[j + 2]
        s3 += a[j + 3]
        j += 4
    while j < n:
        s0 += a[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += <double>a[j] * b[j]
        s1 += <double>a[j + 1] * b[j + 1]
        s2 += <double>a[j + 2] * b[j + 2]
        s3 += <double>a[j + 3] * b[j + 3]
        j += 4
    while j < n:
        s0 += <double>a[j] * b[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef enum:
    EXP_BLOCK = 256


cdef inline double _sum_exp_shifted(const floating* x, floating m, Py_ssize_t c) noexcept nogil:
    """sum_j exp(x[j] - m) without writing to the row: exps go through a stack block."""
    cdef floating buf[EXP_BLOCK]
    cdef double s = 0
    cdef Py_ssize_t j0 = 0, j, w
    while j0 < c:
        w = c - j0
        if w > EXP_BLOCK:
            w = EXP_BLOCK
        if floating is float:
            engine_ew_f32_exp_shift(x + j0, m, buf, w)
        else:
            for j in range(w):
                buf[j] = _exp(x[j0 + j] - m)
        s += _sum(buf, w)
        j0 += w
    return s

