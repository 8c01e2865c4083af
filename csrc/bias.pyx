# Bias add, per-channel scale and shift, and the bias gradient (column sums in double).
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from ew_common cimport *

cnp.import_array()
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)


# ---------------------------------------------------------------------------
# Bias
# ---------------------------------------------------------------------------

cdef void _bias_add_span(const floating* x, const floating* b, floating* out,
                         Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c, const floating* a) noexcept nogil:
    """Rows r0..r1 of out = x + b, or x * a + b when a is given (one loop each, so both vectorise)."""
    cdef Py_ssize_t r, j
    cdef const floating* xr
    cdef floating* orow
    for r in range(r0, r1):
        xr = x + r * c
        orow = out + r * c
        if a == NULL:
            for j in range(c):
                orow[j] = xr[j] + b[j]
        else:
            for j in range(c):
                orow[j] = xr[j] * a[j] + b[j]


cdef struct _BiasJob:
    const void* x
    const void* b
    void* out
    Py_ssize_t c
    const void* a


cdef void _bias_add_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _BiasJob* j = <const _BiasJob*>job
    _bias_add_span(<const float*>j.x, <const float*>j.b, <float*>j.out, lo, hi, j.c, <const float*>j.a)


cdef void _bias_add_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _BiasJob* j = <const _BiasJob*>job
    _bias_add_span(<const double*>j.x, <const double*>j.b, <double*>j.out, lo, hi, j.c, <const double*>j.a)


cdef void _bias_add_run(const floating* x, const floating* b, floating* out,
                        Py_ssize_t rows, Py_ssize_t c, int nt, const floating* a=NULL) noexcept nogil:
    """out = x + b per channel, or x * a + b when a scale is given."""
    cdef _BiasJob job
    job.x, job.b, job.out, job.c, job.a = x, b, out, c, a
    if floating is float:
        engine_run_spans(_bias_add_spans_f, &job, rows, nt, 1)
    else:
        engine_run_spans(_bias_add_spans_d, &job, rows, nt, 1)


cdef void _col_sums(const floating* g, double* acc, Py_ssize_t r0, Py_ssize_t r1,
                    Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t c) noexcept nogil:
    """acc[j - c0] = sum over rows r0..r1 of g[r, j] for columns c0..c1."""
    cdef Py_ssize_t r, j, w = c1 - c0
    cdef const floating* gr
    for j in range(w):
        acc[j] = 0
    for r in range(r0, r1):
        gr = g + r * c + c0
        for j in range(w):
            acc[j] += gr[j]


cdef void _bias_grad_run(const floating* g, floating* out_b, double* partial,
                         Py_ssize_t rows, Py_ssize_t c, int nt) noexcept nogil:
    # `partial` holds nt * c doubles.  Many rows: each thread sums its own rows
    # into its own slice, then the slices are added (no shared writes).
    # Few rows but wide: each thread owns a column range instead.
    cdef Py_ssize_t span, lo, hi, j
    cdef int t
    cdef double s
    if nt <= 1:
        _col_sums(g, partial, 0, rows, 0, c, c)
        for j in range(c):
            out_b[j] = <floating>partial[j]
        return
    if rows >= nt:
        span = engine_span_len(rows, nt, 1)
        for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            lo = t * span
            hi = lo + span
            if hi > rows:
                hi = rows
            if lo > hi:
                lo = hi
            _col_sums(g, partial + t * c, lo, hi, 0, c, c)
        for j in range(c):
            s = 0
            for t in range(nt):
                s = s + partial[t * c + j]
            out_b[j] = <floating>s
    else:
        span = engine_span_len(c, nt, SPAN_ALIGN)
        for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            lo = t * span
            hi = lo + span
            if hi > c:
                hi = c
            if lo < hi:
                _col_sums(g, partial + lo, 0, rows, lo, hi, c)
        for j in range(c):
            out_b[j] = <floating>partial[j]


cdef int _check_bias(str fn, str name, cnp.ndarray b, str ref_name, cnp.ndarray ref) except -1:
    if cnp.PyArray_NDIM(ref) < 1:
        raise ValueError(f"{fn}: {ref_name} must have at least one axis, got shape {(<object>ref).shape}")
    _check_same_dtype(fn, name, b, ref_name, ref)
    cdef Py_ssize_t c = cnp.PyArray_DIMS(ref)[cnp.PyArray_NDIM(ref) - 1]
    if cnp.PyArray_NDIM(b) != 1 or cnp.PyArray_DIMS(b)[0] != c:
        raise ValueError(f"{fn}: {name} must have shape ({c},) to match the last axis of "
                         f"{ref_name} {(<object>ref).shape}, got {(<object>b).shape}")
    return 0


cdef object _per_channel(str fn, x, scale, shift, out):
    """out[..., c] = x[..., c] (* scale[c]) + shift[c]: checks, then one threaded pass."""
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray aa = None if scale is None else _float_array(fn, "scale", scale)
    cdef str shift_name = "b" if scale is None else "shift"
    cdef cnp.ndarray ba = _float_array(fn, shift_name, shift)
    if aa is not None:
        _check_bias(fn, "scale", aa, "x", xa)
    _check_bias(fn, shift_name, ba, "x", xa)
    cdef cnp.ndarray oa = _like(fn, "out", out, "x", xa, True)
    _same_or_disjoint(fn, "x", xa, "out", oa)
    _disjoint(fn, shift_name, ba, "out", oa)
    if aa is not None:
        _disjoint(fn, "scale", aa, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef Py_ssize_t c = cnp.PyArray_DIMS(ba)[0]
    if n == 0:
        return out
    cdef Py_ssize_t rows = n // c
    cdef int nt = engine_team_size(n, PAR_MIN_CHEAP, rows)
    cdef const void *pa = NULL if aa is None else _data(aa)
    if _is_f32(xa):
        with nogil:
            _bias_add_run(<const float*>_data(xa), <const float*>_data(ba), <float*>_data(oa),
                          rows, c, nt, <const float*>pa)
    else:
        with nogil:
            _bias_add_run(<const double*>_data(xa), <const double*>_data(ba), <double*>_data(oa),
                          rows, c, nt, <const double*>pa)
    return out


def bias_add(x, b, out):
    """out[..., c] = x[..., c] + b[c]; out may be x."""
    return _per_channel("bias_add", x, None, b, out)


def scale_shift(x, scale, shift, out):
    """out[..., c] = x[..., c] * scale[c] + shift[c] in one pass (batch normalisation at
    inference, folded); out may be x."""
    return _per_channel("scale_shift", x, scale, shift, out)


def bias_grad(g, out_b):
    """out_b[c] = sum of g[..., c] over all leading axes, accumulated in double."""
    cdef str fn = "bias_grad"
    cdef cnp.ndarray ga = _float_array(fn, "g", g)
    cdef cnp.ndarray oa = _float_array(fn, "out_b", out_b)
    _check_bias(fn, "out_b", oa, "g", ga)
    _check_writable(fn, "out_b", oa)
    _disjoint(fn, "g", ga, "out_b", oa)
    cdef Py_ssize_t c = cnp.PyArray_DIMS(oa)[0]
    if c == 0:
        return out_b
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ga)
    cdef Py_ssize_t rows = n // c
    cdef int nt = engine_team_size(n, PAR_MIN_CHEAP, rows if rows >= 2 else c // SPAN_ALIGN)
    cdef double* partial = <double*>malloc(<size_t>nt * <size_t>c * sizeof(double))
    if partial == NULL:
        raise MemoryError(f"{fn}: cannot allocate {nt} x {c} partial sums")
    try:
        if _is_f32(ga):
            with nogil:
                _bias_grad_run(<const float*>_data(ga), <float*>_data(oa), partial, rows, c, nt)
        else:
            with nogil:
                _bias_grad_run(<const double*>_data(ga), <double*>_data(oa), partial, rows, c, nt)
    finally:
        free(partial)
    return out_b

