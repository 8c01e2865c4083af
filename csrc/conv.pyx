# Convolutions in channels_last (NHWC) layout, forward and both gradients.
#
# General convolutions run as im2col + GEMM: a chunk of images is unrolled into
# a (rows, kh*kw*Cin) matrix whose rows are output pixels, so one large GEMM
# with the (kh*kw*Cin, Cout) kernel (Keras's layout, used as is) gives the
# output rows directly.  Chunks bound the unrolled buffer's memory.  A 1x1,
# stride-1, unpadded convolution is a plain GEMM on the input, with no copy.
# 3x3 and 1-D 5-wide stride-1 convolutions with enough channels take Winograd
# F(2x2, 3x3) and F(2, 5) instead (winograd.h), for the forward pass and the
# input gradient.
# Depthwise convolutions are direct loops (no reduction over channels, so a
# GEMM would waste its work): depthwise.h's vector rows for depth multiplier 1,
# plain loops here otherwise.
#
# 1-D convolutions are images with H = 1.  Padding is explicit
# (top, bottom, left, right); the layer computes TensorFlow's "same" split.
import numpy as np
cimport numpy as cnp
cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memset

cnp.import_array()

from kernel_common cimport engine_thread_num, engine_team_size, engine_runtime_import
from gemm_api cimport engine_sgemm, engine_dgemm, engine_gemm_api_import
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)
engine_gemm_api_import()

# Upper bound on the unrolled buffer, in elements (16 MiB of float32).
cdef Py_ssize_t COLS_BUDGET = 1 << 22
# Unrolled elements per chunk of the forward pass and the kernel gradient (1 MiB of float32: stays
# in L2 between im2col and the GEMM), and a floor on its rows so the GEMM still splits over threads.
cdef Py_ssize_t CACHE_CHUNK = 1 << 18
cdef Py_ssize_t MIN_CHUNK_ROWS = 256
cdef Py_ssize_t PARALLEL_MIN_WORK = 1 << 15
# 1-D forward passes with fewer output positions than this run all images as one product.
cdef Py_ssize_t BATCHED_MAX_WO = 64


cdef inline int _threads(Py_ssize_t work) noexcept nogil:
    return engine_team_size(work, PARALLEL_MIN_WORK, work)


cdef inline void _gemm(int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating *A,
                       Py_ssize_t lda, const floating *B, Py_ssize_t ldb, floating beta, floating *C,
                       Py_ssize_t ldc) noexcept nogil:
    if floating is float:
        engine_sgemm(ta, tb, m, n, k, 1.0, A, lda, B, ldb, beta, C, ldc)
    else:
        engine_dgemm(ta, tb, m, n, k, 1.0, A, lda, B, ldb, beta, C, ldc)


cdef extern from "depthwise.h" nogil:
    ctypedef struct Geometry "conv_geometry":
        Py_ssize_t N, H, W, C, kh, kw, F, Ho, Wo, sh, sw, dh, dw, pt, pl
        int nt
    enum: DW_MAX_TAPS
    void dw_forward_row_f(const float *x, const float *w, float *out, const Geometry *g, Py_ssize_t r)
    void dw_forward_row_d(const double *x, const double *w, double *out, const Geometry *g, Py_ssize_t r)
    Py_ssize_t dw_input_scratch(const Geometry *g)
    void dw_backward_input_row_f(const float *gy, const float *w, float *dx, const Geometry *g, Py_ssize_t r,
                                 Py_ssize_t *cols)
    void dw_backward_input_row_d(const double *gy, const double *w, double *dx, const Geometry *g,
                                 Py_ssize_t r, Py_ssize_t *cols)
    void dw_backward_weight_row_f(const float *x, const float *gy, float *dw, const Geometry *g, Py_ssize_t r)
    void dw_backward_weight_row_d(const double *x, const double *gy, double *dw, const Geometry *g,
                                  Py_ssize_t r)


cdef extern from "winograd.h" nogil:
    Py_ssize_t wino_scratch(const Geometry *g, Py_ssize_t tb)
    void wino_kernel_f(const float *w, Py_ssize_t C, Py_ssize_t F, int flip, float *U, int nt)
    void wino_kernel_d(const double *w, Py_ssize_t C, Py_ssize_t F, int flip, double *U, int nt)
    void wino_conv3x3_f(const float *x, const float *U, float *out, const Geometry *g, Py_ssize_t tb,
                        float *scratch, const float *zeros, int nt)
    void wino_conv3x3_d(const double *x, const double *U, double *out, const Geometry *g, Py_ssize_t tb,
                        double *scratch, const double *zeros, int nt)
    Py_ssize_t wino1_scratch(const Geometry *g, Py_ssize_t tb)
    void wino1_kernel_f(const float *w, Py_ssize_t C, Py_ssize_t F, int flip, float *U, int nt)
    void wino1_kernel_d(const double *w, Py_ssize_t C, Py_ssize_t F, int flip, double *U, int nt)
    void wino1_conv5_f(const float *x, const float *U, float *out, const Geometry *g, Py_ssize_t tb,
                       float *scratch, const float *zeros, int nt)
    void wino1_conv5_d(const double *x, const double *U, double *out, const Geometry *g, Py_ssize_t tb,
                       double *scratch, const double *zeros, int nt)
    int wino1_weight_sums_f(const float *x, const float *gy, float *S, const Geometry *g, Py_ssize_t tb,
                            float *scratch, const float *zeros, int nt)
    int wino1_weight_sums_d(const double *x, const double *gy, double *S, const Geometry *g, Py_ssize_t tb,
                            double *scratch, const double *zeros, int nt)
    void wino1_weight_finish_f(const float *S, int parts, Py_ssize_t C, Py_ssize_t F, float *dw, int accumulate)
    void wino1_weight_finish_d(const double *S, int parts, Py_ssize_t C, Py_ssize_t F, double *dw, int accumulate)


cdef inline int _team(Geometry g) noexcept nogil:
    """Threads for one pass of an ordinary convolution.  The per-thread scratch (_cols_buffer)
    is sized with this same count, so kernels and buffers must both take it from here; it is
    fixed in the geometry (_geometry) rather than recomputed, so a thread count changed from
    another Python thread between sizing and running cannot make a team outgrow its scratch."""
    return g.nt


def _pair(v, name, fn):
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{fn}: {name} must be a pair, got {v}")
    return v


def _geometry(str fn, x_shape, w_shape, out_shape, strides, dilations, pads, bint depthwise=False):
    """Check every shape against the others; return the loop bounds."""
    sh, sw = _pair(strides, "strides", fn)
    dh, dw = _pair(dilations, "dilations", fn)
    pads = tuple(int(p) for p in pads)
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"{fn}: pads must be four non-negative ints (top, bottom, left, right), got {pads}")
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise ValueError(f"{fn}: strides and dilations must be >= 1, got {(sh, sw)}, {(dh, dw)}")
    if len(x_shape) != 4 or len(w_shape) != 4 or len(out_shape) != 4:
        raise ValueError(f"{fn}: expected 4-D input, kernel and output, got {x_shape}, {w_shape}, {out_shape}")
    N, H, W, C = x_shape
    kh, kw, wc, F = w_shape
    if wc != C:
        raise ValueError(f"{fn}: the kernel {w_shape} expects {wc} input channels but the input {x_shape} has {C}")
    pt, pb, pl, pr = pads
    Ho = (H + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    Wo = (W + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    channels_out = C * F if depthwise else F
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{fn}: the kernel {w_shape} with dilation {(dh, dw)} does not fit the padded input "
                         f"{x_shape} (pads {pads})")
    if tuple(out_shape) != (N, Ho, Wo, channels_out):
        raise ValueError(f"{fn}: output shape {tuple(out_shape)} does not match the expected "
                         f"{(N, Ho, Wo, channels_out)} for input {x_shape}, kernel {w_shape}, strides {(sh, sw)}, "
                         f"dilations {(dh, dw)}, pads {pads}")
    cdef Geometry g
    g.N, g.H, g.W, g.C, g.kh, g.kw, g.F, g.Ho, g.Wo = N, H, W, C, kh, kw, F, Ho, Wo
    g.sh, g.sw, g.dh, g.dw, g.pt, g.pl = sh, sw, dh, dw, pt, pl
    g.nt = _threads(g.N * g.Ho * g.Wo * g.kh * g.kw * g.C * g.F)
    return g


def _arrays(str fn, **arrays):
    dtype = None
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{fn}: {name} must be a float32 or float64 array, got "
                             f"{getattr(a, 'dtype', type(a).__name__)}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{fn}: {name} must be C-contiguous")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise ValueError(f"{fn}: all arrays must share one dtype; {name} is {a.dtype}, expected {dtype}")
    return dtype


# -- Winograd: F(2x2, 3x3) and, for 1-D, F(2, 5) -------------------------------------------------
# Stride-1 convolutions with 3x3 (or 1-D 5-wide) kernels and enough channels run through
# winograd.h: 2.25x (1.67x) fewer multiply-adds than im2col + GEMM, for transforms that cost a
# pass over each tile's inputs and outputs.
cdef bint _winograd_on = True
# Per-thread bytes for a block's transformed inputs and products (positions x tiles x (C + F)):
# 256 KiB to 1 MiB measured alike on a Zen 3 core (512 KiB L2); from 2 MiB the blocks spill to L3.
cdef Py_ssize_t WINO_BLOCK_BYTES = 1 << 19
# The kernel gradient's products are as deep as a block, so its blocks are deeper (each product
# then adds into the C x F sums fewer times).
cdef Py_ssize_t WINO_WEIGHT_BLOCK_BYTES = 1 << 21


def set_winograd(bint on):
    """Use Winograd for the stride-1 3x3 and 1-D 5-wide convolutions it suits (True, the
    default), or always im2col + GEMM (False: tests compare the two, benches measure the gain)."""
    global _winograd_on
    _winograd_on = on


cdef bint _use_winograd(Geometry g) noexcept nogil:
    """Stride 1, undilated, and channels enough for the saved products to outweigh the transforms,
    which cost ~C + F operations per tile position where the product saves ~C * F; then 2-D 3x3
    kernels (F(2x2, 3x3)) and 1-D ones 5 wide (F(2, 5)).  Measured on a Zen 3 core, 3x3 forward:
    32 -> 64 channels 6.6 -> 4.8 ms (2x122x122), 64 -> 128 8.0 -> 4.8 ms (8x32x32), 256 -> 256
    15.1 -> 12.4 ms (8x16x16); 32 -> 32 1.8 -> 2.1 ms lost.  1-D forward, 64 sequences: 500 long,
    256 -> 128 channels, 58 -> 41 ms; 14 long, 256 -> 256, 3.5 -> 1.9 ms."""
    if not (_winograd_on and g.sh == 1 and g.sw == 1 and g.dh == 1 and g.dw == 1
            and g.C >= 16 and g.F >= 16 and g.C * g.F >= 2048):
        return False
    if _is_row_conv(g):
        return g.kw == 5 and g.W > 1
    return g.kh == 3 and g.kw == 3 and g.H > 1 and g.W > 1


cdef tuple _winograd_plan(Geometry g, Py_ssize_t positions, Py_ssize_t block_bytes, Py_ssize_t itemsize):
    """(tiles per block, threads) for a Winograd pass: blocks of about block_bytes of transforms
    per thread, and no more threads than blocks."""
    cdef Py_ssize_t tiles = g.N * ((g.Wo + 1) // 2) * (1 if g.kh == 1 else (g.Ho + 1) // 2)
    cdef Py_ssize_t tb = max(6, min(block_bytes // (positions * (g.C + g.F) * itemsize), tiles))
    return tb, min(_team(g), (tiles + tb - 1) // tb)


def _winograd(x, w, out, Geometry g, bint flip):
    """out = the convolution of x under geometry g by the kernel w ((3, 3, C, F), or (1, 5, C, F)
    for 1-D), or (flip, for the input gradient) by w turned 180 degrees with its channel axes
    swapped.  The kernel transform is done here in C, not with numpy: a BLAS call in between
    wakes OpenBLAS's threads, which then spin against this module's on a small machine."""
    cdef bint one_d = g.kh == 1
    cdef Py_ssize_t positions = 6 if one_d else 16
    cdef Py_ssize_t itemsize = x.dtype.itemsize, tb
    cdef int nt
    tb, nt = _winograd_plan(g, positions, WINO_BLOCK_BYTES, itemsize)
    U = np.empty((positions, g.C, g.F), x.dtype)
    scratch = np.empty(nt * (wino1_scratch(&g, tb) if one_d else wino_scratch(&g, tb)), x.dtype)
    zeros = np.zeros(g.C, x.dtype)
    cdef Py_ssize_t wc = w.shape[2], wf = w.shape[3]
    cdef void *pw = _p(w)
    cdef void *px = _p(x)
    cdef void *pu = _p(U)
    cdef void *po = _p(out)
    cdef void *ps = _p(scratch)
    cdef void *pz = _p(zeros)
    with nogil:
        if itemsize == 4 and one_d:
            wino1_kernel_f(<float*>pw, wc, wf, flip, <float*>pu, nt)
            wino1_conv5_f(<float*>px, <float*>pu, <float*>po, &g, tb, <float*>ps, <float*>pz, nt)
        elif one_d:
            wino1_kernel_d(<double*>pw, wc, wf, flip, <double*>pu, nt)
            wino1_conv5_d(<double*>px, <double*>pu, <double*>po, &g, tb, <double*>ps, <double*>pz, nt)
        elif itemsize == 4:
            wino_kernel_f(<float*>pw, wc, wf, flip, <float*>pu, nt)
            wino_conv3x3_f(<float*>px, <float*>pu, <float*>po, &g, tb, <float*>ps, <float*>pz, nt)
        else:
            wino_kernel_d(<double*>pw, wc, wf, flip, <double*>pu, nt)
            wino_conv3x3_d(<double*>px, <double*>pu, <double*>po, &g, tb, <double*>ps, <double*>pz, nt)
    return out


def _winograd_weight(x, gy, dw, Geometry g, bint accumulate):
    """dw (1, 5, C, F) (+)= the kernel gradient of a 1-D F(2, 5) convolution (winograd_tmpl.h)."""
    cdef Py_ssize_t itemsize = x.dtype.itemsize, tb
    cdef int nt
    tb, nt = _winograd_plan(g, 6, WINO_WEIGHT_BLOCK_BYTES, itemsize)
    S = np.empty((nt, 6, g.C, g.F), x.dtype)
    scratch = np.empty(nt * wino1_scratch(&g, tb), x.dtype)
    zeros = np.zeros(g.C, x.dtype)
    cdef int parts
    cdef void *px = _p(x)
    cdef void *pg = _p(gy)
    cdef void *pS = _p(S)
    cdef void *pd = _p(dw)
    cdef void *ps = _p(scratch)
    cdef void *pz = _p(zeros)
    with nogil:
        if itemsize == 4:
            parts = wino1_weight_sums_f(<float*>px, <float*>pg, <float*>pS, &g, tb, <float*>ps, <float*>pz, nt)
            wino1_weight_finish_f(<float*>pS, parts, g.C, g.F, <float*>pd, accumulate)
        else:
            parts = wino1_weight_sums_d(<double*>px, <double*>pg, <double*>pS, &g, tb, <double*>ps, <double*>pz,
                                        nt)
            wino1_weight_finish_d(<double*>pS, parts, g.C, g.F, <double*>pd, accumulate)
    return dw


# -- im2col / col2im ----------------------------------------------------------------------------
cdef inline void _unroll_pixel(const floating *x, floating *dst, Geometry g, Py_ssize_t n,
                              Py_ssize_t q) noexcept nogil:
    """The kh*kw*C window of output pixel q of image n, zeros where it hangs over the padding."""
    cdef Py_ssize_t i = q // g.Wo, j = q % g.Wo, a, b, hi, wi, c
    cdef const floating *src
    for a in range(g.kh):
        hi = i * g.sh + a * g.dh - g.pt
        for b in range(g.kw):
            wi = j * g.sw + b * g.dw - g.pl
            if hi < 0 or hi >= g.H or wi < 0 or wi >= g.W:
                for c in range(g.C):
                    dst[c] = 0
            else:
                src = x + ((n * g.H + hi) * g.W + wi) * g.C
                for c in range(g.C):
                    dst[c] = src[c]
            dst = dst + g.C


cdef inline void _scatter_pixel(const floating *src, floating *dx, Geometry g, Py_ssize_t n,
                                Py_ssize_t q) noexcept nogil:
    """dx[n] += the unrolled window gradient src of output pixel q (the adjoint of _unroll_pixel)."""
    cdef Py_ssize_t i = q // g.Wo, j = q % g.Wo, a, b, hi, wi, c
    cdef floating *dst
    for a in range(g.kh):
        hi = i * g.sh + a * g.dh - g.pt
        for b in range(g.kw):
            wi = j * g.sw + b * g.dw - g.pl
            if hi >= 0 and hi < g.H and wi >= 0 and wi < g.W:
                dst = dx + ((n * g.H + hi) * g.W + wi) * g.C
                for c in range(g.C):
                    dst[c] += src[c]
            src = src + g.C


cdef void _im2col(const floating *x, floating *cols, Geometry g, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Unroll output pixels r0..r1 (flat over images, rows and columns) into rows of cols."""
    cdef Py_ssize_t K = g.kh * g.kw * g.C, HW = g.Ho * g.Wo, q
    for q in prange(r1 - r0, schedule="static", num_threads=_threads((r1 - r0) * K)):
        _unroll_pixel(x, cols + q * K, g, (r0 + q) // HW, (r0 + q) % HW)


cdef void _col2im(const floating *cols, floating *dx, Geometry g, Py_ssize_t n0, Py_ssize_t n1) noexcept nogil:
    """dx[n0:n1] += the unrolled gradient, image by image (images never overlap, windows do)."""
    cdef Py_ssize_t K = g.kh * g.kw * g.C, HW = g.Ho * g.Wo, n, q
    for n in prange(n0, n1, schedule="static", num_threads=_threads((n1 - n0) * HW * K)):
        for q in range(HW):
            _scatter_pixel(cols + ((n - n0) * HW + q) * K, dx, g, n, q)


cdef inline bint _by_image(Py_ssize_t N, int nt) noexcept nogil:
    """Whole images per thread when that keeps the threads evenly loaded: the images divide
    evenly, or there are enough that one left over matters little."""
    return nt > 1 and (N >= 2 * nt or (N >= nt and N % nt == 0))


cdef void _im2col_pixels(const floating *x, floating *cols, Geometry g, Py_ssize_t n, Py_ssize_t p0,
                         Py_ssize_t p1) noexcept nogil:
    """Unroll output pixels p0..p1 of image n into rows of cols (one thread)."""
    cdef Py_ssize_t K = g.kh * g.kw * g.C, q
    for q in range(p0, p1):
        _unroll_pixel(x, cols + (q - p0) * K, g, n, q)


cdef void _col2im_pixels(const floating *cols, floating *dx, Geometry g, Py_ssize_t n, Py_ssize_t p0,
                         Py_ssize_t p1) noexcept nogil:
    """dx[n] += the unrolled gradient of output pixels p0..p1 of image n (one thread)."""
    cdef Py_ssize_t K = g.kh * g.kw * g.C, q
    for q in range(p0, p1):
        _scatter_pixel(cols + (q - p0) * K, dx, g, n, q)


cdef void _start_partials(floating *dw, floating *partial, Py_ssize_t KF, int nt, bint accumulate) noexcept nogil:
    """Kernel gradients with whole images per thread: thread 0 sums into dw (cleared unless
    accumulating), thread t > 0 into partial[t-1] (cleared); _add_partials folds them in."""
    if not accumulate:
        memset(dw, 0, KF * sizeof(floating))
    memset(partial, 0, (nt - 1) * KF * sizeof(floating))


cdef void _add_partials(floating *dw, const floating *partial, Py_ssize_t KF, int nt) noexcept nogil:
    cdef Py_ssize_t e
    cdef int u
    for e in prange(KF, schedule="static", num_threads=nt):
        for u in range(nt - 1):
            dw[e] += partial[u * KF + e]


cdef bint _is_pointwise(Geometry g) noexcept nogil:
    return g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pt == 0 and g.pl == 0 \
        and g.Ho == g.H and g.Wo == g.W


cdef Py_ssize_t _images_per_chunk(Geometry g) noexcept nogil:
    cdef Py_ssize_t per_image = g.Ho * g.Wo * g.kh * g.kw * g.C
    cdef Py_ssize_t n = COLS_BUDGET // (per_image if per_image > 0 else 1)
    if n < 1:
        n = 1
    return n if n < g.N else g.N


cdef Py_ssize_t _rows_per_chunk(Geometry g) noexcept nogil:
    """Output pixels unrolled at a time by the forward pass and the kernel gradient: few enough
    that the GEMM reads the unrolled rows back from cache right after im2col wrote them (the
    forward pass of an 8x32x32x64 -> 128 3x3 conv: 4.45 ms with 16 MiB chunks, 4.2 ms so; the
    kernel gradient measured the same either way)."""
    cdef Py_ssize_t K = g.kh * g.kw * g.C, total = g.N * g.Ho * g.Wo
    cdef Py_ssize_t r = CACHE_CHUNK // (K if K > 0 else 1)
    if r < MIN_CHUNK_ROWS:
        r = MIN_CHUNK_ROWS
    return r if r < total else total


# -- the three passes ------------------------------------------------------------------------
cdef void _forward(const floating *x, const floating *w, floating *out, floating *cols, Geometry g) noexcept nogil:
    cdef Py_ssize_t K = g.kh * g.kw * g.C, step = _rows_per_chunk(g), total = g.N * g.Ho * g.Wo, r0, r1
    cdef Py_ssize_t n, p0, p1, HW = g.Ho * g.Wo
    cdef int nt = _team(g)
    cdef floating *mine
    if _is_pointwise(g):
        _gemm(0, 0, g.N * g.H * g.W, g.F, g.C, x, g.C, w, g.F, 0, out, g.F)
        return
    if _by_image(g.N, nt):
        # Whole images per thread: unroll a cache-sized run of pixels, multiply, repeat.
        for n in prange(g.N, schedule="static", num_threads=nt):
            mine = cols + engine_thread_num() * step * K
            p0 = 0
            while p0 < HW:
                p1 = p0 + step if p0 + step < HW else HW
                _im2col_pixels(x, mine, g, n, p0, p1)
                _gemm(0, 0, p1 - p0, g.F, K, mine, K, w, g.F, 0, out + (n * HW + p0) * g.F, g.F)
                p0 = p1
        return
    r0 = 0
    while r0 < total:
        r1 = r0 + step if r0 + step < total else total
        _im2col(x, cols, g, r0, r1)
        _gemm(0, 0, r1 - r0, g.F, K, cols, K, w, g.F, 0, out + r0 * g.F, g.F)
        r0 = r1


cdef void _backward_input(const floating *gy, const floating *w, floating *dx, floating *cols,
                          Geometry g) noexcept nogil:
    cdef Py_ssize_t K = g.kh * g.kw * g.C, step, n0, n1, rows, n, p0, p1, HW = g.Ho * g.Wo
    cdef int nt = _team(g)
    cdef floating *mine
    if _is_pointwise(g):
        _gemm(0, 1, g.N * g.H * g.W, g.C, g.F, gy, g.F, w, g.F, 0, dx, g.C)
        return
    if _by_image(g.N, nt):
        # Whole images per thread: the GEMM writes a cache-sized run of unrolled rows and the
        # same thread scatters it into its own image straight away (no race: images are disjoint).
        step = _rows_per_chunk(g)
        for n in prange(g.N, schedule="static", num_threads=nt):
            mine = cols + engine_thread_num() * step * K
            memset(dx + n * g.H * g.W * g.C, 0, g.H * g.W * g.C * sizeof(floating))
            p0 = 0
            while p0 < HW:
                p1 = p0 + step if p0 + step < HW else HW
                _gemm(0, 1, p1 - p0, K, g.F, gy + (n * HW + p0) * g.F, g.F, w, g.F, 0, mine, K)
                _col2im_pixels(mine, dx, g, n, p0, p1)
                p0 = p1
        return
    step = _images_per_chunk(g)
    memset(dx, 0, g.N * g.H * g.W * g.C * sizeof(floating))
    n0 = 0
    while n0 < g.N:
        n1 = n0 + step if n0 + step < g.N else g.N
        rows = (n1 - n0) * HW
        _gemm(0, 1, rows, K, g.F, gy + n0 * HW * g.F, g.F, w, g.F, 0, cols, K)
        _col2im(cols, dx, g, n0, n1)
        n0 = n1


cdef void _backward_weight(const floating *x, const floating *gy, floating *dw, floating *cols, Geometry g,
                           bint accumulate) noexcept nogil:
    cdef Py_ssize_t K = g.kh * g.kw * g.C, step = _rows_per_chunk(g), total = g.N * g.Ho * g.Wo, r0, r1
    cdef Py_ssize_t n, p0, p1, HW = g.Ho * g.Wo, KF = K * g.F
    cdef int nt = _team(g), t
    cdef floating beta = 1 if accumulate else 0
    cdef floating *mine
    cdef floating *acc
    cdef floating *partial = cols + nt * step * K
    if _is_pointwise(g):
        _gemm(1, 0, g.C, g.F, g.N * g.H * g.W, x, g.C, gy, g.F, beta, dw, g.F)
        return
    if _by_image(g.N, nt):
        # Whole images per thread, each thread summing into its own kernel gradient (thread 0
        # into dw, the others into partial[t-1]), added up at the end.
        _start_partials(dw, partial, KF, nt, accumulate)
        for n in prange(g.N, schedule="static", num_threads=nt):
            t = engine_thread_num()
            mine = cols + t * step * K
            acc = dw if t == 0 else partial + (t - 1) * KF
            p0 = 0
            while p0 < HW:
                p1 = p0 + step if p0 + step < HW else HW
                _im2col_pixels(x, mine, g, n, p0, p1)
                _gemm(1, 0, K, g.F, p1 - p0, mine, K, gy + (n * HW + p0) * g.F, g.F, 1, acc, g.F)
                p0 = p1
        _add_partials(dw, partial, KF, nt)
        return
    r0 = 0
    while r0 < total:
        r1 = r0 + step if r0 + step < total else total
        _im2col(x, cols, g, r0, r1)
        _gemm(1, 0, K, g.F, r1 - r0, cols, K, gy + r0 * g.F, g.F, beta, dw, g.F)
        beta = 1
        r0 = r1


# -- 1-D convolutions without unrolling ---------------------------------------------------------
# With H == 1 and no dilation, the kw*C inputs of output position j are one contiguous run of the
# (padded) input starting at j*sw*C: the im2col matrix is the input itself read with row stride
# sw*C (rows overlap, which is fine for an operand GEMM only reads).  The forward pass and the
# kernel gradient are then GEMMs straight on the input, and for stride 1 the input gradient is the
# same trick again: a "full" correlation of the output gradient, zero-extended by kw-1 rows at both
# ends, with the kernel flipped along its taps and transposed (kw, F, C) -- no col2im scatter.
# With enough images, each thread takes whole images and runs single-threaded GEMMs on them (no
# team wake-up per image); otherwise images go one by one through the threaded GEMM.

cdef bint _is_row_conv(Geometry g) noexcept nogil:
    return g.H == 1 and g.kh == 1 and g.Ho == 1 and g.pt == 0 and g.dw == 1


cdef void _row_forward(const floating *xp, Py_ssize_t Wp, const floating *w, floating *out,
                       Geometry g) noexcept nogil:
    """out[n] = xp[n] viewed as (Wo, kw*C) with row stride sw*C, times w (kw*C, F)."""
    cdef Py_ssize_t K = g.kw * g.C, n
    cdef int nt = _team(g)
    if _by_image(g.N, nt):
        for n in prange(g.N, schedule="static", num_threads=nt):
            _gemm(0, 0, g.Wo, g.F, K, xp + n * Wp * g.C, g.sw * g.C, w, g.F, 0, out + n * g.Wo * g.F, g.F)
    else:
        for n in range(g.N):
            _gemm(0, 0, g.Wo, g.F, K, xp + n * Wp * g.C, g.sw * g.C, w, g.F, 0, out + n * g.Wo * g.F, g.F)


cdef void _row_forward_batched(const floating *xp, const floating *w, floating *opad, Py_ssize_t R,
                               Geometry g) noexcept nogil:
    """Stride 1, all images in one threaded product: opad row r = the window at row r of the
    images laid end to end (Wp rows each) times w; rows whose window straddles two images are
    computed and dropped by the caller."""
    _gemm(0, 0, R, g.F, g.kw * g.C, xp, g.C, w, g.F, 0, opad, g.F)


cdef void _row_backward_weight(const floating *xp, Py_ssize_t Wp, const floating *gy, floating *dw,
                               floating *partial, Geometry g, bint accumulate) noexcept nogil:
    """dw (kw*C, F) (+)= sum over images of xp[n]^T (as above) times gy[n] (Wo, F).  With whole
    images per thread, thread t > 0 sums into partial[t-1] and the partials are added at the end."""
    cdef Py_ssize_t K = g.kw * g.C, KF = K * g.F, n
    cdef int nt = _team(g), t
    cdef floating beta = 1 if accumulate else 0
    cdef floating *acc
    if _by_image(g.N, nt):
        _start_partials(dw, partial, KF, nt, accumulate)
        for n in prange(g.N, schedule="static", num_threads=nt):
            t = engine_thread_num()
            acc = dw if t == 0 else partial + (t - 1) * KF
            _gemm(1, 0, K, g.F, g.Wo, xp + n * Wp * g.C, g.sw * g.C, gy + n * g.Wo * g.F, g.F, 1, acc, g.F)
        _add_partials(dw, partial, KF, nt)
    else:
        for n in range(g.N):
            _gemm(1, 0, K, g.F, g.Wo, xp + n * Wp * g.C, g.sw * g.C, gy + n * g.Wo * g.F, g.F, beta, dw, g.F)
            beta = 1


cdef void _row_backward_weight_batched(const floating *xp, const floating *gpad, floating *dw, Py_ssize_t R,
                                       Geometry g, bint accumulate) noexcept nogil:
    """Stride 1, all images in one product: row r of xp read with stride C is the window of
    position r of the images laid end to end (Wp rows each), and gpad is gy with zero rows at
    the positions whose windows straddle two images, so dw (+)= xp_rows^T gpad over R rows.  One
    threaded GEMM over N*Wp rows replaces N single-threaded ones over Wo rows each (a Conv1D
    91 x 1280 x 256 per image ran ~100 GFLOP/s; with k = N*Wp the packed path runs ~170)."""
    _gemm(1, 0, g.kw * g.C, g.F, R, xp, g.C, gpad, g.F, 1 if accumulate else 0, dw, g.F)


cdef void _row_backward_input(const floating *ge, Py_ssize_t Le, const floating *wflip, floating *dx,
                              Geometry g) noexcept nogil:
    """Stride 1: dx[n, t] = ge[n] rows t+pl .. t+pl+kw-1 (one run of kw*F values) times wflip
    (kw*F, C), where ge[n] is gy[n] with kw-1 zero rows before and after (Le rows)."""
    cdef Py_ssize_t K = g.kw * g.F, n
    cdef int nt = _team(g)
    if _by_image(g.N, nt):
        for n in prange(g.N, schedule="static", num_threads=nt):
            _gemm(0, 0, g.W, g.C, K, ge + (n * Le + g.pl) * g.F, g.F, wflip, g.C, 0, dx + n * g.W * g.C, g.C)
    else:
        for n in range(g.N):
            _gemm(0, 0, g.W, g.C, K, ge + (n * Le + g.pl) * g.F, g.F, wflip, g.C, 0, dx + n * g.W * g.C, g.C)


cdef void _row_backward_input_batched(const floating *gs, const floating *wflip, floating *dx,
                                      Geometry g) noexcept nogil:
    """Stride 1, unpadded (W = Wo + kw - 1), all images in one threaded product.  gs holds kw-1
    zero rows, then each image of gy followed by kw-1 zero rows (period W): the kw rows from row r
    are then exactly the window of dx row r = n*W + t, one run of zeros serving as the right edge
    of an image and the left edge of the next, so every row computed is a row of dx."""
    _gemm(0, 0, g.N * g.W, g.C, g.kw * g.F, gs, g.F, wflip, g.C, 0, dx, g.C)


def _padded_rows(x, Geometry g):
    """x (N, 1, W, C) as (N, Wp, C) with the left/right zero padding, and Wp (x itself if unpadded).
    Wp is the padded length the output actually reads: (Wo-1)*sw + kw <= W + pl + pr."""
    cdef Py_ssize_t Wp = (g.Wo - 1) * g.sw + g.kw
    if g.pl == 0 and Wp <= g.W:
        return x, g.W
    xp = np.empty((g.N, Wp, g.C), x.dtype)
    cdef Py_ssize_t stop = min(g.W, Wp - g.pl)
    xp[:, :g.pl] = 0
    xp[:, g.pl + stop:] = 0
    xp[:, g.pl:g.pl + stop] = x.reshape(g.N, g.W, g.C)[:, :stop]
    return xp, Wp


def _cols_buffer(Geometry g, dtype, bint input_grad=False):
    """Scratch for the unrolled rows: a cache-sized run of output pixels (one per thread for the
    input gradient with whole images per thread; else whole images, which col2im scatters in
    parallel image by image)."""
    if _is_pointwise(g):
        return np.empty(1, dtype)
    cdef Py_ssize_t rows = _rows_per_chunk(g)
    cdef int nt = _team(g)
    cdef Py_ssize_t extra = 0
    if _by_image(g.N, nt):
        rows = nt * rows
        extra = (nt - 1) * g.kh * g.kw * g.C * g.F     # kernel-gradient partial sums
    elif input_grad:
        rows = _images_per_chunk(g) * g.Ho * g.Wo
    return np.empty(rows * g.kh * g.kw * g.C + extra, dtype)


cdef inline void* _p(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def conv2d_forward(x, w, out, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0)):
    """out (N,Ho,Wo,F) = conv(x (N,H,W,C), w (kh,kw,C,F)); no bias."""
    dtype = _arrays("conv2d_forward", x=x, w=w, out=out)
    cdef Geometry g = _geometry("conv2d_forward", x.shape, w.shape, out.shape, strides, dilations, pads)
    if _use_winograd(g):
        return _winograd(x, w, out, g, False)
    cdef bint single = dtype == np.float32
    cdef bint rows = _is_row_conv(g)
    # Short outputs run as one product over all images: a per-image product of 14 rows is two
    # full 6-row tiles and a third of 2 (a Conv1D 18 -> 14 x 256 forward: 7.5 -> 5.6-6.1 ms);
    # long ones gain nothing and would pay for the copy out of the padded buffer.
    cdef bint batched = rows and g.sw == 1 and g.N > 1 and g.Wo < BATCHED_MAX_WO
    cdef Py_ssize_t Wp = 0, R = 0
    if rows:
        x, Wp = _padded_rows(x, g)
        cols = None
    else:
        cols = _cols_buffer(g, dtype)
    target = out
    if batched:
        R = (g.N - 1) * Wp + g.Wo
        target = np.empty((g.N, Wp, g.F), dtype)
    cdef void *px = _p(x)
    cdef void *pw = _p(w)
    cdef void *po = _p(target)
    cdef void *pc = NULL if cols is None else _p(cols)
    with nogil:
        if batched and single:
            _row_forward_batched(<float*>px, <float*>pw, <float*>po, R, g)
        elif batched:
            _row_forward_batched(<double*>px, <double*>pw, <double*>po, R, g)
        elif rows and single:
            _row_forward(<float*>px, Wp, <float*>pw, <float*>po, g)
        elif rows:
            _row_forward(<double*>px, Wp, <double*>pw, <double*>po, g)
        elif single:
            _forward(<float*>px, <float*>pw, <float*>po, <float*>pc, g)
        else:
            _forward(<double*>px, <double*>pw, <double*>po, <double*>pc, g)
    if batched:
        out.reshape(g.N, g.Wo, g.F)[...] = target[:, :g.Wo]
    return out


def conv2d_backward_input(gy, w, dx, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0)):
    """dx (N,H,W,C) = the gradient of conv2d_forward with respect to x, for output gradient gy."""
    dtype = _arrays("conv2d_backward_input", g=gy, w=w, dx=dx)
    cdef Geometry g = _geometry("conv2d_backward_input", dx.shape, w.shape, gy.shape, strides, dilations, pads)
    cdef Geometry t
    # The transposed convolution pads kh-1-pt above and kw-1-pl on the left: padding wider than
    # the kernel would make those negative, which the Winograd tiles do not handle.
    if _use_winograd(g) and max(pads) < min(g.kh, g.kw):
        # dx is gy convolved with the kernel turned 180 degrees, its channel axes swapped, and
        # padded kh-1-pt above and kw-1-pl on the left (the bottom and right follow from dx's size)
        t = g
        t.H, t.W, t.C, t.F, t.Ho, t.Wo = g.Ho, g.Wo, g.F, g.C, g.H, g.W
        t.pt, t.pl = g.kh - 1 - g.pt, g.kw - 1 - g.pl
        return _winograd(gy, w, dx, t, True)
    cdef bint single = dtype == np.float32
    cdef bint rows = _is_row_conv(g) and g.sw == 1
    # Unpadded inputs run as one product over all images: a single shared run of kw-1 zero rows
    # between images makes every row of that product a row of dx, so nothing is wasted or copied
    # (Conv1D 64 x 14 x 256 -> 256, k 5: 8.4 -> 5.1 ms; 18 long 8.2 -> 6.2; 95 long 31.7 -> 29.3;
    # 500 long unchanged).  With padding the product has pl+pr extra rows per image and dx must
    # be copied out of it: measured 8-15 % slower on 30-60 long inputs, so those stay per image.
    cdef bint batched = rows and g.N > 1 and g.pl == 0 and g.Wo + g.kw - 1 == g.W
    cdef Py_ssize_t Le = 0
    if not rows:
        ge, wk = gy, w
        cols = _cols_buffer(g, dtype, True)
    else:
        # the kernel flipped along its taps, as (kw, F, C)
        wk = np.ascontiguousarray(w.reshape(g.kw, g.C, g.F)[::-1].transpose(0, 2, 1))
        cols = None
        if batched:
            # kw-1 zero rows, then each image of gy followed by kw-1 zero rows (period W rows)
            ge = np.empty((g.kw - 1 + g.N * g.W) * g.F, dtype)
            ge[:(g.kw - 1) * g.F] = 0
            body = ge[(g.kw - 1) * g.F:].reshape(g.N, g.W, g.F)
            body[:, :g.Wo] = gy.reshape(g.N, g.Wo, g.F)
            body[:, g.Wo:] = 0
        else:
            # gy with kw-1 zero rows at both ends of every image: only those rows need zeroing
            Le = g.Wo + 2 * (g.kw - 1)
            ge = np.empty((g.N, Le, g.F), dtype)
            ge[:, :g.kw - 1] = 0
            ge[:, g.kw - 1 + g.Wo:] = 0
            ge[:, g.kw - 1:g.kw - 1 + g.Wo] = gy.reshape(g.N, g.Wo, g.F)
    cdef void *pg = _p(ge)
    cdef void *pw = _p(wk)
    cdef void *pd = _p(dx)
    cdef void *pc = NULL if cols is None else _p(cols)
    with nogil:
        if batched and single:
            _row_backward_input_batched(<float*>pg, <float*>pw, <float*>pd, g)
        elif batched:
            _row_backward_input_batched(<double*>pg, <double*>pw, <double*>pd, g)
        elif rows and single:
            _row_backward_input(<float*>pg, Le, <float*>pw, <float*>pd, g)
        elif rows:
            _row_backward_input(<double*>pg, Le, <double*>pw, <double*>pd, g)
        elif single:
            _backward_input(<float*>pg, <float*>pw, <float*>pd, <float*>pc, g)
        else:
            _backward_input(<double*>pg, <double*>pw, <double*>pd, <double*>pc, g)
    return dx


def conv2d_backward_weight(x, gy, dw, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), accumulate=False):
    """dw (kh,kw,C,F) = the gradient with respect to the kernel (added to dw when accumulate)."""
    dtype = _arrays("conv2d_backward_weight", x=x, g=gy, dw=dw)
    cdef Geometry g = _geometry("conv2d_backward_weight", x.shape, dw.shape, gy.shape, strides, dilations, pads)
    # The 1-D kernel gradient gains from Winograd (500 long, 256 -> 128: 72 -> 43 ms); the 2-D one
    # was tried and lost on most shapes: 16 partial sums of C x F per thread, rewritten every
    # block, outgrow the caches (8x16x16, 256 -> 256: 14.6 -> 21.5 ms).
    if g.kh == 1 and _use_winograd(g):
        return _winograd_weight(x, gy, dw, g, bool(accumulate))
    cdef bint single = dtype == np.float32
    cdef bint rows = _is_row_conv(g)
    cdef bint acc = bool(accumulate)
    cdef Py_ssize_t Wp = 0
    cdef bint batched = rows and g.sw == 1 and g.N > 1
    cdef Py_ssize_t R = 0
    if rows:
        x, Wp = _padded_rows(x, g)
    if batched:
        # gy with Wp rows per image, zeros past its Wo rows (see _row_backward_weight_batched)
        R = (g.N - 1) * Wp + g.Wo
        gpad = np.empty((g.N, Wp, g.F), dtype)
        gpad[:, g.Wo:] = 0
        gpad[:, :g.Wo] = gy.reshape(g.N, g.Wo, g.F)
        gy = gpad
        cols = None
    elif rows:
        # per-thread partial sums for all threads but the first (see _row_backward_weight)
        cols = np.empty(max(1, (_team(g) - 1) * g.kw * g.C * g.F), dtype)
    else:
        cols = _cols_buffer(g, dtype)
    cdef void *px = _p(x)
    cdef void *pg = _p(gy)
    cdef void *pd = _p(dw)
    cdef void *pc = NULL if cols is None else _p(cols)
    with nogil:
        if batched and single:
            _row_backward_weight_batched(<float*>px, <float*>pg, <float*>pd, R, g, acc)
        elif batched:
            _row_backward_weight_batched(<double*>px, <double*>pg, <double*>pd, R, g, acc)
        elif rows and single:
            _row_backward_weight(<float*>px, Wp, <float*>pg, <float*>pd, <float*>pc, g, acc)
        elif rows:
            _row_backward_weight(<double*>px, Wp, <double*>pg, <double*>pd, <double*>pc, g, acc)
        elif single:
            _backward_weight(<float*>px, <float*>pg, <float*>pd, <float*>pc, g, acc)
        else:
            _backward_weight(<double*>px, <double*>pg, <double*>pd, <double*>pc, g, acc)
    return dw


# -- depthwise ---------------------------------------------------------------------------------
cdef inline bint _dw_rows(Geometry g) noexcept nogil:
    """Depth multiplier 1 with kernels of at most DW_MAX_TAPS a side (every Keras model we know)
    runs depthwise.h's vector rows; other shapes take the plain loops below."""
    return g.F == 1 and g.kh <= DW_MAX_TAPS and g.kw <= DW_MAX_TAPS


cdef void _dw_forward(const floating *x, const floating *w, floating *out, Geometry g) noexcept nogil:
    cdef Py_ssize_t M = g.F, CM = g.C * g.F
    cdef Py_ssize_t r, n, i, j, a, b, hi, wi, c, m
    cdef floating *o
    cdef const floating *src
    cdef const floating *wk
    cdef int nt = _threads(g.N * g.Ho * g.Wo * CM * g.kh * g.kw)
    if _dw_rows(g):
        for r in prange(g.N * g.Ho, schedule="static", num_threads=nt):
            if floating is float:
                dw_forward_row_f(x, w, out, &g, r)
            else:
                dw_forward_row_d(x, w, out, &g, r)
        return
    for r in prange(g.N * g.Ho, schedule="static", num_threads=nt):
        n = r // g.Ho
        i = r % g.Ho
        for j in range(g.Wo):
            o = out + (r * g.Wo + j) * CM
            for c in range(CM):
                o[c] = 0
            for a in range(g.kh):
                hi = i * g.sh + a * g.dh - g.pt
                if hi < 0 or hi >= g.H:
                    continue
                for b in range(g.kw):
                    wi = j * g.sw + b * g.dw - g.pl
                    if wi < 0 or wi >= g.W:
                        continue
                    src = x + ((n * g.H + hi) * g.W + wi) * g.C
                    wk = w + (a * g.kw + b) * CM
                    if M == 1:
                        # The usual case (depth_multiplier 1): a contiguous run that vectorises.
                        for c in range(g.C):
                            o[c] += src[c] * wk[c]
                    else:
                        for c in range(g.C):
                            for m in range(M):
                                o[c * M + m] += src[c] * wk[c * M + m]


cdef void _dw_backward_input(const floating *gy, const floating *w, floating *dx, Geometry g,
                             Py_ssize_t *scratch, int nt) noexcept nogil:
    """scratch: dw_input_scratch entries for each of the nt threads (the vector rows' column lists)."""
    cdef Py_ssize_t M = g.F, CM = g.C * g.F
    cdef Py_ssize_t n, i, j, a, b, hi, wi, c, m
    cdef const floating *go
    cdef const floating *wk
    cdef floating *d
    cdef floating acc
    cdef Py_ssize_t r
    if _dw_rows(g):
        # A gather per input row: each dx row is written once, no zeroing first.
        for r in prange(g.N * g.H, schedule="static", num_threads=nt):
            if floating is float:
                dw_backward_input_row_f(gy, w, dx, &g, r, scratch + engine_thread_num() * dw_input_scratch(&g))
            else:
                dw_backward_input_row_d(gy, w, dx, &g, r, scratch + engine_thread_num() * dw_input_scratch(&g))
        return
    for n in prange(g.N, schedule="static", num_threads=nt):
        memset(dx + n * g.H * g.W * g.C, 0, g.H * g.W * g.C * sizeof(floating))
        for i in range(g.Ho):
            for j in range(g.Wo):
                go = gy + ((n * g.Ho + i) * g.Wo + j) * CM
                for a in range(g.kh):
                    hi = i * g.sh + a * g.dh - g.pt
                    if hi < 0 or hi >= g.H:
                        continue
                    for b in range(g.kw):
                        wi = j * g.sw + b * g.dw - g.pl
                        if wi < 0 or wi >= g.W:
                            continue
                        d = dx + ((n * g.H + hi) * g.W + wi) * g.C
                        wk = w + (a * g.kw + b) * CM
                        if M == 1:
                            for c in range(g.C):
                                d[c] += go[c] * wk[c]
                        else:
                            for c in range(g.C):
                                acc = 0
                                for m in range(M):
                                    acc = acc + go[c * M + m] * wk[c * M + m]
                                d[c] += acc


cdef void _dw_backward_weight(const floating *x, const floating *gy, floating *partial, Geometry g,
                              int nt) noexcept nogil:
    """Per-thread partial kernel gradients (nt, kh, kw, C, M); the caller sums them."""
    cdef Py_ssize_t M = g.F, CM = g.C * g.F, KK = g.kh * g.kw * CM
    cdef Py_ssize_t r, n, i, j, a, b, hi, wi, c, m
    cdef int t
    cdef const floating *go
    cdef const floating *src
    cdef floating *d
    if _dw_rows(g):
        for r in prange(g.N * g.Ho, schedule="static", num_threads=nt):
            if floating is float:
                dw_backward_weight_row_f(x, gy, partial + engine_thread_num() * KK, &g, r)
            else:
                dw_backward_weight_row_d(x, gy, partial + engine_thread_num() * KK, &g, r)
        return
    for r in prange(g.N * g.Ho, schedule="static", num_threads=nt):
        t = engine_thread_num()
        n = r // g.Ho
        i = r % g.Ho
        for j in range(g.Wo):
            go = gy + (r * g.Wo + j) * CM
            for a in range(g.kh):
                hi = i * g.sh + a * g.dh - g.pt
                if hi < 0 or hi >= g.H:
                    continue
                for b in range(g.kw):
                    wi = j * g.sw + b * g.dw - g.pl
                    if wi < 0 or wi >= g.W:
                        continue
                    src = x + ((n * g.H + hi) * g.W + wi) * g.C
                    d = partial + t * KK + (a * g.kw + b) * CM
                    if M == 1:
                        for c in range(g.C):
                            d[c] += src[c] * go[c]
                    else:
                        for c in range(g.C):
                            for m in range(M):
                                d[c * M + m] += src[c] * go[c * M + m]


def depthwise_conv2d_forward(x, w, out, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0)):
    """out (N,Ho,Wo,C*M), channel c*M+m = sum over the window of x[..., c] * w[..., c, m]."""
    dtype = _arrays("depthwise_conv2d_forward", x=x, w=w, out=out)
    cdef Geometry g = _geometry("depthwise_conv2d_forward", x.shape, w.shape, out.shape, strides, dilations,
                                pads, True)
    cdef void *px = _p(x)
    cdef void *pw = _p(w)
    cdef void *po = _p(out)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _dw_forward(<float*>px, <float*>pw, <float*>po, g)
        else:
            _dw_forward(<double*>px, <double*>pw, <double*>po, g)
    return out


def depthwise_conv2d_backward_input(gy, w, dx, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0)):
    dtype = _arrays("depthwise_conv2d_backward_input", g=gy, w=w, dx=dx)
    cdef Geometry g = _geometry("depthwise_conv2d_backward_input", dx.shape, w.shape, gy.shape, strides,
                                dilations, pads, True)
    cdef void *pg = _p(gy)
    cdef void *pw = _p(w)
    cdef void *pd = _p(dx)
    cdef bint single = dtype == np.float32
    cdef int nt = _threads(g.N * g.Ho * g.Wo * g.C * g.F * g.kh * g.kw)
    cdef Py_ssize_t[::1] scratch = np.empty(nt * dw_input_scratch(&g) if _dw_rows(g) else 1, np.intp)
    with nogil:
        if single:
            _dw_backward_input(<float*>pg, <float*>pw, <float*>pd, g, &scratch[0], nt)
        else:
            _dw_backward_input(<double*>pg, <double*>pw, <double*>pd, g, &scratch[0], nt)
    return dx


def depthwise_conv2d_backward_weight(x, gy, dw, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0),
                                     accumulate=False):
    dtype = _arrays("depthwise_conv2d_backward_weight", x=x, g=gy, dw=dw)
    cdef Geometry g = _geometry("depthwise_conv2d_backward_weight", x.shape, dw.shape, gy.shape, strides,
                                dilations, pads, True)
    cdef int nt = _threads(g.N * g.Ho * g.Wo * g.C * g.F * g.kh * g.kw)
    partial = np.zeros((nt,) + tuple(dw.shape), dtype)
    cdef void *px = _p(x)
    cdef void *pg = _p(gy)
    cdef void *pp = _p(partial)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            _dw_backward_weight(<float*>px, <float*>pg, <float*>pp, g, nt)
        else:
            _dw_backward_weight(<double*>px, <double*>pg, <double*>pp, g, nt)
    total = partial.sum(axis=0)
    if accumulate:
        dw += total
    else:
        dw[...] = total
    return dw
