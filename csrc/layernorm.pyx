# Layer normalization over the last axis of a 2-D (rows, width) array: forward and backward,
# each one sweep over a row's memory (the second touch of a row is in L1), OpenMP over rows.
#
# Forward, per row: the mean, then the variance from the centred squares, both summed in double
# (a float32 row of a few thousand values keeps its precision), then
# y = (x - mean) * rstd * gamma + beta.  mean and rstd are saved for the backward.  The row loops
# are C (csrc/layernorm_rows.h), vectorised per instruction set through its ISA table.
# Backward, per row: with xhat = (x - mean) * rstd and gg = g * gamma,
#     dx = rstd * (gg - mean(gg) - xhat * mean(gg * xhat));
# dgamma = sum over rows of g * xhat and dbeta = sum of g are accumulated per thread into
# one row of a scratch table each, then added up (no atomics, a fixed summation order).
#
# The Python entries check every shape, dtype and contiguity the C loops rely on.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange

cnp.import_array()

from kernel_common cimport engine_team_size, engine_runtime_import
engine_runtime_import()        # the thread cap (csrc/runtime_api.h)

# Below this many elements a thread team costs more than it saves.
cdef Py_ssize_t _PARALLEL_MIN = 1 << 15


def _array(str fn, str name, a, dtype, shape):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or tuple(a.shape) != tuple(shape) \
            or not a.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} must be a C-contiguous {np.dtype(dtype).name} array of shape "
                         f"{tuple(shape)}, got {getattr(a, 'dtype', type(a).__name__)} "
                         f"{getattr(a, 'shape', None)}")


def _writable(str fn, str name, a):
    if not a.flags.writeable:
        raise ValueError(f"{fn}: {name} is read-only")


cdef extern from "layernorm_rows.h" nogil:
    # The row loops, per instruction set (csrc/layernorm_rows.h; the sums vectorised in double).
    void engine_ln_forward_rows_f32(const float *x, const float *gamma, const float *beta, double eps,
                                    float *y, float *mean, float *rstd, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t width)
    void engine_ln_forward_rows_f64(const double *x, const double *gamma, const double *beta, double eps,
                                    double *y, double *mean, double *rstd, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t width)
    void engine_ln_backward_rows_f32(const float *x, const float *gamma, const float *mean, const float *rstd,
                                     const float *g, Py_ssize_t gstride, float *dx, float *dgamma_part,
                                     float *dbeta_part, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t width)
    void engine_ln_backward_rows_f64(const double *x, const double *gamma, const double *mean,
                                     const double *rstd, const double *g, Py_ssize_t gstride, double *dx,
                                     double *dgamma_part, double *dbeta_part, Py_ssize_t r0, Py_ssize_t r1,
                                     Py_ssize_t width)


cdef inline void _forward_rows(const floating *x, const floating *gamma, const floating *beta, double eps,
                               floating *y, floating *mean, floating *rstd, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t width) noexcept nogil:
    if floating is float:
        engine_ln_forward_rows_f32(x, gamma, beta, eps, y, mean, rstd, r0, r1, width)
    else:
        engine_ln_forward_rows_f64(x, gamma, beta, eps, y, mean, rstd, r0, r1, width)


cdef inline void _backward_rows(const floating *x, const floating *gamma, const floating *mean,
                                const floating *rstd, const floating *g, Py_ssize_t gstride, floating *dx,
                                floating *dgamma_part, floating *dbeta_part, Py_ssize_t r0, Py_ssize_t r1,
                                Py_ssize_t width) noexcept nogil:
    if floating is float:
        engine_ln_backward_rows_f32(x, gamma, mean, rstd, g, gstride, dx, dgamma_part, dbeta_part, r0, r1, width)
    else:
        engine_ln_backward_rows_f64(x, gamma, mean, rstd, g, gstride, dx, dgamma_part, dbeta_part, r0, r1, width)


cdef void _forward(const floating *x, const floating *gamma, const floating *beta, double eps,
                   floating *y, floating *mean, floating *rstd, Py_ssize_t rows,
                   Py_ssize_t width) noexcept nogil:
    cdef int nt = engine_team_size(rows * width, _PARALLEL_MIN, rows * width)
    cdef Py_ssize_t c, chunk
    if nt > rows:
        nt = <int>rows if rows > 0 else 1
    chunk = (rows + nt - 1) // nt if nt > 0 else rows
    if nt <= 1:
        _forward_rows(x, gamma, beta, eps, y, mean, rstd, 0, rows, width)
        return
    for c in prange(nt, num_threads=nt, schedule="static"):
        _forward_rows(x, gamma, beta, eps, y, mean, rstd, c * chunk,
                      min(rows, (c + 1) * chunk), width)


cdef void _backward(const floating *x, const floating *gamma, const floating *mean,
                    const floating *rstd, const floating *g, Py_ssize_t gstride, floating *dx,
                    floating *parts, int nparts, Py_ssize_t rows, Py_ssize_t width) noexcept nogil:
    """parts: 2 * nparts rows of `width` zeros (dgamma then dbeta partials per chunk); row r of
    g at g + r * gstride."""
    cdef Py_ssize_t c, chunk = (rows + nparts - 1) // nparts
    if nparts <= 1:
        _backward_rows(x, gamma, mean, rstd, g, gstride, dx, parts, parts + width, 0, rows, width)
        return
    for c in prange(nparts, num_threads=nparts, schedule="static"):
        _backward_rows(x, gamma, mean, rstd, g, gstride, dx, parts + 2 * c * width,
                       parts + (2 * c + 1) * width, c * chunk, min(rows, (c + 1) * chunk), width)


def layer_norm_forward(x, gamma, beta, double epsilon, y, mean, rstd):
    """y = (x - mean) / sqrt(var + epsilon) * gamma + beta over the last axis of the 2-D x.

    gamma and beta are (width,) arrays or None; mean and rstd (rows,) receive each row's mean
    and 1 / sqrt(var + epsilon) for the backward.  All arrays share x's dtype (float32/64)."""
    fn = "layer_norm_forward"
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{fn}: x must be a 2-D float32/float64 array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', None)}")
    cdef Py_ssize_t rows = x.shape[0], width = x.shape[1]
    _array(fn, "x", x, x.dtype, (rows, width))
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            _array(fn, name, p, x.dtype, (width,))
    for name, a, shape in (("y", y, (rows, width)), ("mean", mean, (rows,)), ("rstd", rstd, (rows,))):
        _array(fn, name, a, x.dtype, shape)
        _writable(fn, name, a)
    if epsilon < 0:
        raise ValueError(f"{fn}: epsilon must be >= 0, got {epsilon}")
    if rows == 0 or width == 0:
        mean[...] = 0
        rstd[...] = 0
        return y
    if x.dtype == np.float32:
        _forward_f[float](x, gamma, beta, epsilon, y, mean, rstd)
    else:
        _forward_f[double](x, gamma, beta, epsilon, y, mean, rstd)
    return y


cdef void _forward_f(floating[:, ::1] x, object gamma, object beta, double eps, floating[:, ::1] y,
                     floating[::1] mean, floating[::1] rstd):
    cdef floating[::1] gv, bv
    cdef const floating *gp = NULL
    cdef const floating *bp = NULL
    if gamma is not None:
        gv = gamma
        gp = &gv[0]
    if beta is not None:
        bv = beta
        bp = &bv[0]
    with nogil:
        _forward(&x[0, 0], gp, bp, eps, &y[0, 0], &mean[0], &rstd[0], x.shape[0], x.shape[1])


def layer_norm_backward(x, gamma, mean, rstd, g, dx):
    """Gradients of layer_norm_forward: fills dx (or skips it when dx is None) and returns
    (dgamma, dbeta) as new (width,) arrays.  g, the output gradient, is (rows, width), or
    (1, width): one row that is every row's gradient (a broadcast, read once per row)."""
    fn = "layer_norm_backward"
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{fn}: x must be a 2-D float32/float64 array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', None)}")
    cdef Py_ssize_t rows = x.shape[0], width = x.shape[1]
    _array(fn, "x", x, x.dtype, (rows, width))
    if gamma is not None:
        _array(fn, "gamma", gamma, x.dtype, (width,))
    _array(fn, "mean", mean, x.dtype, (rows,))
    _array(fn, "rstd", rstd, x.dtype, (rows,))
    _array(fn, "g", g, x.dtype, (1 if isinstance(g, np.ndarray) and g.ndim == 2 and g.shape[0] == 1
                                 else rows, width))
    if dx is not None:
        _array(fn, "dx", dx, x.dtype, (rows, width))
        _writable(fn, "dx", dx)
    cdef int nparts = engine_team_size(rows * width, _PARALLEL_MIN, rows * width)
    if nparts > rows:
        nparts = <int>rows if rows > 0 else 1
    parts = np.zeros((2 * nparts, width), dtype=x.dtype)
    if rows > 0 and width > 0:
        if x.dtype == np.float32:
            _backward_f[float](x, gamma, mean, rstd, g, dx, parts, nparts)
        else:
            _backward_f[double](x, gamma, mean, rstd, g, dx, parts, nparts)
    return parts[0::2].sum(axis=0), parts[1::2].sum(axis=0)


cdef void _backward_f(floating[:, ::1] x, object gamma, floating[::1] mean, floating[::1] rstd,
                      floating[:, ::1] g, object dx, floating[:, ::1] parts, int nparts):
    cdef floating[::1] gv
    cdef floating[:, ::1] dv
    cdef const floating *gp = NULL
    cdef floating *dp = NULL
    if gamma is not None:
        gv = gamma
        gp = &gv[0]
    if dx is not None:
        dv = dx
        dp = &dv[0, 0]
    # one shared row of g (a broadcast over rows) is read with row stride 0
    cdef Py_ssize_t gstride = 0 if g.shape[0] == 1 else x.shape[1]
    with nogil:
        _backward(&x[0, 0], gp, &mean[0], &rstd[0], &g[0, 0], gstride, dp, &parts[0, 0], nparts,
                  x.shape[0], x.shape[1])
