# Softmax and log-softmax along the last axis, forward and backward, one row per task.
import numpy as np
cimport numpy as cnp
from cython cimport floating

from ew_common cimport *

cnp.import_array()
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)


# ---------------------------------------------------------------------------
# Softmax family: rows along the last axis
# ---------------------------------------------------------------------------

cdef enum RowOp:
    ROW_SOFTMAX
    ROW_LOG_SOFTMAX
    ROW_SOFTMAX_GRAD
    ROW_LOG_SOFTMAX_GRAD



cdef void _softmax_row(const floating* x, floating* y, Py_ssize_t c) noexcept nogil:
    cdef floating m = _row_max(x, c)
    cdef Py_ssize_t j
    if floating is float:
        engine_ew_f32_exp_shift(x, m, y, c)
    else:
        for j in range(c):
            y[j] = _exp(x[j] - m)
    cdef floating inv = <floating>(1.0 / _sum(y, c))
    for j in range(c):
        y[j] = y[j] * inv


cdef void _log_softmax_row(const floating* x, floating* y, Py_ssize_t c) noexcept nogil:
    cdef floating m = _row_max(x, c)
    # (x - m) - log(s), not x - (m + log(s)): for large logits m + log(s)
    # would round away the small log term in float32.
    cdef floating log_s = <floating>log(_sum_exp_shifted(x, m, c))
    cdef Py_ssize_t j
    for j in range(c):
        y[j] = (x[j] - m) - log_s


cdef void _softmax_grad_row(const floating* y, const floating* g, floating* out,
                            Py_ssize_t c) noexcept nogil:
    cdef floating df = <floating>_dot(g, y, c)
    cdef Py_ssize_t j
    for j in range(c):
        out[j] = y[j] * (g[j] - df)


cdef void _log_softmax_grad_row(const floating* y, const floating* g, floating* out,
                                Py_ssize_t c) noexcept nogil:
    cdef floating sf = <floating>_sum(g, c)
    cdef Py_ssize_t j
    for j in range(c):
        out[j] = g[j] - _exp(y[j]) * sf


cdef void _rows_span(int op, const floating* x, const floating* g, floating* out,
                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t r, off
    for r in range(r0, r1):
        off = r * c
        if op == ROW_SOFTMAX:
            _softmax_row(x + off, out + off, c)
        elif op == ROW_LOG_SOFTMAX:
            _log_softmax_row(x + off, out + off, c)
        elif op == ROW_SOFTMAX_GRAD:
            _softmax_grad_row(x + off, g + off, out + off, c)
        else:
            _log_softmax_grad_row(x + off, g + off, out + off, c)


cdef struct _RowsJob:
    int op
    const void* x
    const void* g
    void* out
    Py_ssize_t c


cdef void _rows_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _RowsJob* j = <const _RowsJob*>job
    _rows_span(j.op, <const float*>j.x, <const float*>j.g, <float*>j.out, lo, hi, j.c)


cdef void _rows_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _RowsJob* j = <const _RowsJob*>job
    _rows_span(j.op, <const double*>j.x, <const double*>j.g, <double*>j.out, lo, hi, j.c)


cdef void _rows_run(int op, const floating* x, const floating* g, floating* out,
                    Py_ssize_t rows, Py_ssize_t c, int nt) noexcept nogil:
    cdef _RowsJob job
    job.op, job.x, job.g, job.out, job.c = op, x, g, out, c
    if floating is float:
        engine_run_spans(_rows_spans_f, &job, rows, nt, 1)
    else:
        engine_run_spans(_rows_spans_d, &job, rows, nt, 1)


cdef object _row_kernel(str fn, int op, str x_name, object x, object g, object out):
    cdef cnp.ndarray xa = _float_array(fn, x_name, x)
    if cnp.PyArray_NDIM(xa) < 1:
        raise ValueError(f"{fn}: {x_name} must have at least one axis, got shape {(<object>xa).shape}")
    cdef cnp.ndarray ga = None
    if op == ROW_SOFTMAX_GRAD or op == ROW_LOG_SOFTMAX_GRAD:
        ga = _like(fn, "g", g, x_name, xa, False)
    cdef cnp.ndarray oa = _like(fn, "out", out, x_name, xa, True)
    _same_or_disjoint(fn, x_name, xa, "out", oa)
    if ga is not None:
        _same_or_disjoint(fn, "g", ga, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef Py_ssize_t c = cnp.PyArray_DIMS(xa)[cnp.PyArray_NDIM(xa) - 1]
    if n == 0:
        return out
    cdef Py_ssize_t rows = n // c
    # Only float64 rows pay for a libm exp per element.
    cdef Py_ssize_t par_min = (PAR_MIN_TRANSCENDENTAL if op != ROW_SOFTMAX_GRAD and not _is_f32(xa)
                               else PAR_MIN_CHEAP)
    cdef int nt = engine_team_size(n, par_min, rows)
    cdef void* gp = _data(ga) if ga is not None else NULL
    if _is_f32(xa):
        with nogil:
            _rows_run(op, <const float*>_data(xa), <const float*>gp, <float*>_data(oa), rows, c, nt)
    else:
        with nogil:
            _rows_run(op, <const double*>_data(xa), <const double*>gp, <double*>_data(oa), rows, c, nt)
    return out


def softmax(x, out):
    """Softmax over the last axis, shifted by the row max so exp cannot overflow."""
    return _row_kernel("softmax", ROW_SOFTMAX, "x", x, None, out)


def softmax_grad(y, g, out):
    """out = y * (g - sum(g * y, last axis)), y the softmax output."""
    return _row_kernel("softmax_grad", ROW_SOFTMAX_GRAD, "y", y, g, out)


def log_softmax(x, out):
    """out = x - max - log(sum(exp(x - max))) over the last axis."""
    return _row_kernel("log_softmax", ROW_LOG_SOFTMAX, "x", x, None, out)


def log_softmax_grad(y, g, out):
    """out = g - exp(y) * sum(g, last axis), y the log_softmax output."""
    return _row_kernel("log_softmax_grad", ROW_LOG_SOFTMAX_GRAD, "y", y, g, out)

