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


# ---------------------------------------------------------------------------
# Sums over a middle axis (means over spatial or time axes: global average pooling)
# ---------------------------------------------------------------------------

cdef enum:
    _MIDDLE_CHUNK = 256      # columns summed at a time: their double accumulators stay in L1


cdef void _sum_middle_span(const floating* x, floating* out, Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t mid,
                           Py_ssize_t inner) noexcept nogil:
    """out[o, j] = sum over m of x[o, m, j] for outer rows o0..o1, in double."""
    cdef double acc[_MIDDLE_CHUNK]
    cdef Py_ssize_t o, m, j, j0, w
    cdef const floating* row
    for o in range(o0, o1):
        j0 = 0
        while j0 < inner:
            w = min(<Py_ssize_t>_MIDDLE_CHUNK, inner - j0)
            for j in range(w):
                acc[j] = 0
            for m in range(mid):
                row = x + (o * mid + m) * inner + j0
                for j in range(w):
                    acc[j] += row[j]
            for j in range(w):
                out[o * inner + j0 + j] = <floating>acc[j]
            j0 = j0 + w


cdef struct _MiddleJob:
    const void* x
    void* out
    Py_ssize_t mid
    Py_ssize_t inner


cdef void _sum_middle_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _MiddleJob* j = <const _MiddleJob*>job
    _sum_middle_span(<const float*>j.x, <float*>j.out, lo, hi, j.mid, j.inner)


cdef void _sum_middle_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _MiddleJob* j = <const _MiddleJob*>job
    _sum_middle_span(<const double*>j.x, <double*>j.out, lo, hi, j.mid, j.inner)


def sum_middle(x, out):
    """out[o, j] = sum over m of x[o, m, j], accumulated in double: x a C-contiguous 3-D float
    array (outer, mid, inner), out (outer, inner) of its dtype.  numpy sums a middle axis with
    strided adds (90 us for 32 x 200 x 32 here); this reads x once, in order."""
    cdef str fn = "sum_middle"
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray oa = _float_array(fn, "out", out)
    if cnp.PyArray_NDIM(xa) != 3 or cnp.PyArray_NDIM(oa) != 2:
        raise ValueError(f"{fn}: x must be 3-D (outer, mid, inner) and out 2-D (outer, inner); got shapes "
                         f"{(<object>xa).shape} and {(<object>oa).shape}")
    cdef Py_ssize_t outer = cnp.PyArray_DIMS(xa)[0], mid = cnp.PyArray_DIMS(xa)[1], inner = cnp.PyArray_DIMS(xa)[2]
    if cnp.PyArray_DIMS(oa)[0] != outer or cnp.PyArray_DIMS(oa)[1] != inner:
        raise ValueError(f"{fn}: out must have shape {(outer, inner)} for x of shape {(<object>xa).shape}, got "
                         f"{(<object>oa).shape}")
    _check_same_dtype(fn, "out", oa, "x", xa)
    _check_writable(fn, "out", oa)
    _disjoint(fn, "x", xa, "out", oa)
    if outer == 0 or inner == 0:
        return out
    cdef _MiddleJob job
    job.x, job.out, job.mid, job.inner = _data(xa), _data(oa), mid, inner
    cdef int nt = engine_team_size(outer * mid * inner, PAR_MIN_CHEAP, outer)
    cdef bint single = _is_f32(xa)
    with nogil:
        if single:
            engine_run_spans(_sum_middle_spans_f, &job, outer, nt, 1)
        else:
            engine_run_spans(_sum_middle_spans_d, &job, outer, nt, 1)
    return out
