# Max and average pooling over NHWC images, forward and backward.
#
# 1-D pooling is 2-D pooling with H = 1.  Padding is explicit (top, bottom,
# left, right).  Padded cells never win a max, and averages divide by the
# number of real (unpadded) cells in the window, as TensorFlow's "same" does.
# Backward passes scatter into dx image by image, so threads never share a row.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memset

cnp.import_array()

from kernel_common cimport engine_team_size, engine_runtime_import
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)

cdef Py_ssize_t PARALLEL_MIN_WORK = 1 << 15


cdef inline int _threads(Py_ssize_t work) noexcept nogil:
    return engine_team_size(work, PARALLEL_MIN_WORK, work)


cdef extern from "pool_rows.h" nogil:
    ctypedef struct Window "pool_window":
        Py_ssize_t N, H, W, C, ph, pw, Ho, Wo, sh, sw, pt, pl
    void pool_max_row_f(const float *x, float *out, const Window *w, Py_ssize_t r)
    void pool_max_row_d(const double *x, double *out, const Window *w, Py_ssize_t r)


def _window(str fn, x_shape, out_shape, pool, strides, pads):
    ph, pw = (int(v) for v in pool)
    sh, sw = (int(v) for v in strides)
    pads = tuple(int(p) for p in pads)
    if len(x_shape) != 4 or len(out_shape) != 4:
        raise ValueError(f"{fn}: expected 4-D input and output, got {x_shape} and {out_shape}")
    if min(ph, pw, sh, sw) < 1 or len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"{fn}: pool {pool} and strides {strides} must be >= 1, pads {pads} >= 0")
    N, H, W, C = x_shape
    pt, pb, pl, pr = pads
    if pt >= ph or pb >= ph or pl >= pw or pr >= pw:
        raise ValueError(f"{fn}: padding {pads} must be smaller than the pool {pool}, or a window could hold "
                         f"no real cell")
    Ho = (H + pt + pb - ph) // sh + 1
    Wo = (W + pl + pr - pw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{fn}: the pool {pool} does not fit the input {tuple(x_shape)} padded by {pads}: "
                         f"there would be no output")
    if tuple(out_shape) != (N, Ho, Wo, C):
        raise ValueError(f"{fn}: output shape {tuple(out_shape)} does not match {(N, Ho, Wo, C)} for input "
                         f"{x_shape}, pool {pool}, strides {strides}, pads {pads}")
    cdef Window w
    w.N, w.H, w.W, w.C, w.ph, w.pw, w.Ho, w.Wo, w.sh, w.sw, w.pt, w.pl = N, H, W, C, ph, pw, Ho, Wo, sh, sw, pt, pl
    return w


def _floats(str fn, **arrays):
    dtype = None
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous:
            raise ValueError(f"{fn}: {name} must be a C-contiguous float32 or float64 array")
        if dtype is not None and a.dtype != dtype:
            raise ValueError(f"{fn}: {name} is {a.dtype} but the other arrays are {dtype}")
        dtype = a.dtype
    return dtype


cdef void _max_forward(const floating *x, floating *out, int *argmax, Window w) noexcept nogil:
    """Window maxima (NaN is sticky, as in numpy); with argmax, the window cell (a * pw + b) of each.

    The maxima come first, a row at a time in C (pool_rows.h, one copy per instruction set); the
    cells are found in a second pass as the first that equals the maximum.  Both passes vectorise,
    which one pass keeping a 64-bit index per channel did not.
    """
    cdef Py_ssize_t r, n, i, j, a, b, hi, wi, c
    cdef int cell
    cdef floating v, m
    cdef floating *o
    cdef int *am
    cdef const floating *src
    for r in prange(w.N * w.Ho, schedule="static", num_threads=_threads(w.N * w.Ho * w.Wo * w.C * w.ph * w.pw)):
        if floating is float:
            pool_max_row_f(x, out, &w, r)
        else:
            pool_max_row_d(x, out, &w, r)
        if argmax == NULL:
            continue
        n = r // w.Ho
        i = r % w.Ho
        for j in range(w.Wo):
            o = out + (r * w.Wo + j) * w.C
            am = argmax + (r * w.Wo + j) * w.C
            for c in range(w.C):
                am[c] = -1
            for a in range(w.ph):
                hi = i * w.sh + a - w.pt
                if hi < 0 or hi >= w.H:
                    continue
                for b in range(w.pw):
                    wi = j * w.sw + b - w.pl
                    if wi < 0 or wi >= w.W:
                        continue
                    src = x + ((n * w.H + hi) * w.W + wi) * w.C
                    cell = <int>(a * w.pw + b)
                    for c in range(w.C):
                        v = src[c]
                        m = o[c]
                        am[c] = cell if am[c] < 0 and (v == m or (v != v and m != m)) else am[c]


cdef void _max_backward(const floating *gy, const int *argmax, floating *dx, Window w) noexcept nogil:
    """dx = each output gradient added at the input cell its window's maximum came from."""
    cdef Py_ssize_t n, i, j, c, hi, wi, per_in = w.H * w.W * w.C
    cdef int cell
    cdef const floating *g
    cdef const int *am
    for n in prange(w.N, schedule="static", num_threads=_threads(w.N * w.Ho * w.Wo * w.C)):
        memset(dx + n * per_in, 0, per_in * sizeof(floating))
        for i in range(w.Ho):
            for j in range(w.Wo):
                g = gy + ((n * w.Ho + i) * w.Wo + j) * w.C
                am = argmax + ((n * w.Ho + i) * w.Wo + j) * w.C
                for c in range(w.C):
                    cell = am[c]
                    hi = i * w.sh + cell // w.pw - w.pt
                    wi = j * w.sw + cell % w.pw - w.pl
                    # Checked so that no argmax array, however made, can write outside dx.
                    if cell >= 0 and hi >= 0 and hi < w.H and wi >= 0 and wi < w.W:
                        dx[((n * w.H + hi) * w.W + wi) * w.C + c] += g[c]


cdef void _avg(const floating *src, floating *dst, Window w, bint backward) noexcept nogil:
    """Forward: dst = out from src = x.  Backward: dst = dx from src = gy."""
    cdef Py_ssize_t r, n, i, j, a, b, hi, wi, c, h0, h1, w0, w1, count
    cdef floating inv
    cdef const floating *s
    cdef floating *d
    cdef Py_ssize_t per_in = w.H * w.W * w.C
    if backward:
        for n in prange(w.N, schedule="static", num_threads=_threads(w.N * per_in)):
            memset(dst + n * per_in, 0, per_in * sizeof(floating))
    for n in prange(w.N, schedule="static", num_threads=_threads(w.N * w.Ho * w.Wo * w.C * w.ph * w.pw)):
        for i in range(w.Ho):
            h0 = i * w.sh - w.pt
            h1 = h0 + w.ph
            if h0 < 0:
                h0 = 0
            if h1 > w.H:
                h1 = w.H
            for j in range(w.Wo):
                w0 = j * w.sw - w.pl
                w1 = w0 + w.pw
                if w0 < 0:
                    w0 = 0
                if w1 > w.W:
                    w1 = w.W
                count = (h1 - h0) * (w1 - w0)
                inv = 1.0 / count
                if backward:
                    s = src + ((n * w.Ho + i) * w.Wo + j) * w.C
                    for hi in range(h0, h1):
                        for wi in range(w0, w1):
                            d = dst + ((n * w.H + hi) * w.W + wi) * w.C
                            for c in range(w.C):
                                d[c] += s[c] * inv
                else:
                    d = dst + ((n * w.Ho + i) * w.Wo + j) * w.C
                    for c in range(w.C):
                        d[c] = 0
                    for hi in range(h0, h1):
                        for wi in range(w0, w1):
                            s = src + ((n * w.H + hi) * w.W + wi) * w.C
                            for c in range(w.C):
                                d[c] += s[c]
                    for c in range(w.C):
                        d[c] *= inv


cdef inline void* _p(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def max_pool2d_forward(x, out, argmax, pool, strides, pads=(0, 0, 0, 0)):
    """out = window maxima; argmax (int32, out's shape, or None at inference) receives for each the window
    cell (a * pool_w + b) it came from, for the backward pass."""
    dtype = _floats("max_pool2d_forward", x=x, out=out)
    cdef Window w = _window("max_pool2d_forward", x.shape, out.shape, pool, strides, pads)
    if argmax is not None and (not isinstance(argmax, np.ndarray) or argmax.dtype != np.int32
                               or argmax.shape != out.shape or not argmax.flags.c_contiguous):
        raise ValueError(f"max_pool2d_forward: argmax must be None or a C-contiguous int32 array of shape "
                         f"{out.shape}")
    cdef void *px = _p(x)
    cdef void *po = _p(out)
    cdef int *pa = NULL if argmax is None else <int*>_p(argmax)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _max_forward(<float*>px, <float*>po, pa, w)
        else:
            _max_forward(<double*>px, <double*>po, pa, w)
    return out


def max_pool2d_backward(gy, argmax, dx, pool, strides, pads=(0, 0, 0, 0)):
    """dx (overwritten) = gy added at the cells max_pool2d_forward recorded in argmax."""
    dtype = _floats("max_pool2d_backward", g=gy, dx=dx)
    cdef Window w = _window("max_pool2d_backward", dx.shape, gy.shape, pool, strides, pads)
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int32 or argmax.shape != gy.shape \
            or not argmax.flags.c_contiguous:
        raise ValueError(f"max_pool2d_backward: argmax must be a C-contiguous int32 array of shape {gy.shape}")
    cdef void *pg = _p(gy)
    cdef void *pd = _p(dx)
    cdef int *pa = <int*>_p(argmax)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _max_backward(<float*>pg, pa, <float*>pd, w)
        else:
            _max_backward(<double*>pg, pa, <double*>pd, w)
    return dx


def avg_pool2d_forward(x, out, pool, strides, pads=(0, 0, 0, 0)):
    """out = window means over the real (unpadded) cells."""
    dtype = _floats("avg_pool2d_forward", x=x, out=out)
    cdef Window w = _window("avg_pool2d_forward", x.shape, out.shape, pool, strides, pads)
    cdef void *px = _p(x)
    cdef void *po = _p(out)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _avg(<float*>px, <float*>po, w, False)
        else:
            _avg(<double*>px, <double*>po, w, False)
    return out


def avg_pool2d_backward(gy, dx, pool, strides, pads=(0, 0, 0, 0)):
    """dx (overwritten) = the gradient of avg_pool2d_forward for output gradient gy."""
    dtype = _floats("avg_pool2d_backward", g=gy, dx=dx)
    cdef Window w = _window("avg_pool2d_backward", dx.shape, gy.shape, pool, strides, pads)
    cdef void *pg = _p(gy)
    cdef void *pd = _p(dx)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _avg(<float*>pg, <float*>pd, w, True)
        else:
            _avg(<double*>pg, <double*>pd, w, True)
    return dx
