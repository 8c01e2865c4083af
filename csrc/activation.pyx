# Activations and their gradients, and dropout: pointwise maps over one flat buffer, in the
# array's own precision (float32 exp, sigmoid and SiLU through fast_math.h's vectorised loops).
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.math cimport log as c_log      # `log` is this module's def below
from ew_common cimport *

cnp.import_array()
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)


# Constants for GELU, written out to full double precision.
cdef double INV_SQRT2 = 0.70710678118654752440084436210484903928483593768847
cdef double INV_SQRT_2PI = 0.39894228040143267793994605993438186847585863116493
cdef double SQRT_2_OVER_PI = 0.79788456080286535587989211986876373695171726232986
cdef double GELU_TANH_C = 0.044715
cdef double SELU_SCALE = 1.0507009873554804934193349852946
cdef double SELU_ALPHA = 1.6732632423543772848170429916717


cdef inline floating _gelu(floating v) noexcept nogil:
    cdef floating half = 0.5, one = 1
    return half * v * (one + _erf(v * <floating>INV_SQRT2))


cdef inline floating _gelu_slope(floating v) noexcept nogil:
    # d/dx [x * Phi(x)] = Phi(x) + x * phi(x)
    cdef floating half = 0.5, one = 1
    cdef floating cdf = half * (one + _erf(v * <floating>INV_SQRT2))
    cdef floating pdf = <floating>INV_SQRT_2PI * _exp(-half * v * v)
    return cdf + v * pdf


cdef inline floating _gelu_tanh(floating v) noexcept nogil:
    cdef floating half = 0.5, one = 1
    cdef floating u = <floating>SQRT_2_OVER_PI * (v + <floating>GELU_TANH_C * v * v * v)
    return half * v * (one + _tanh(u))


cdef inline floating _gelu_tanh_slope(floating v) noexcept nogil:
    cdef floating half = 0.5, one = 1, three = 3
    cdef floating k = <floating>SQRT_2_OVER_PI, c = <floating>GELU_TANH_C
    cdef floating t = _tanh(k * (v + c * v * v * v))
    cdef floating du = k * (one + three * c * v * v)
    return half * (one + t) + half * v * (one - t * t) * du


# ---------------------------------------------------------------------------
# Activations: elementwise forward and backward
# ---------------------------------------------------------------------------

cdef enum Activation:
    ACT_RELU
    ACT_SIGMOID
    ACT_TANH
    ACT_ELU
    ACT_SELU
    ACT_SOFTPLUS
    ACT_GELU
    ACT_GELU_TANH
    ACT_SILU
    ACT_LEAKY_RELU
    ACT_EXP
    ACT_LOG


cdef void _act_forward_span(int act, const floating* x, floating* y, Py_ssize_t n,
                            double param) noexcept nogil:
    # One loop per activation so each compiles (and, where possible,
    # vectorises) on its own; the switch runs once per span.
    cdef Py_ssize_t i
    cdef floating v, zero = 0, p = <floating>param
    cdef floating scale = <floating>SELU_SCALE, sa = <floating>(SELU_SCALE * SELU_ALPHA)
    if act == ACT_RELU:
        for i in range(n):
            v = x[i]
            y[i] = zero if v <= 0 else v          # NaN passes through
    elif act == ACT_SIGMOID:
        if floating is float:
            engine_ew_f32_sigmoid(x, y, n)
        else:
            for i in range(n):
                y[i] = _sigmoid(x[i])
    elif act == ACT_TANH:
        for i in range(n):
            y[i] = _tanh(x[i])
    elif act == ACT_ELU:
        for i in range(n):
            v = x[i]
            y[i] = v if v > 0 else p * _expm1(v)
    elif act == ACT_SELU:
        for i in range(n):
            v = x[i]
            y[i] = scale * v if v > 0 else sa * _expm1(v)
    elif act == ACT_SOFTPLUS:
        for i in range(n):
            y[i] = _softplus(x[i])
    elif act == ACT_GELU:
        for i in range(n):
            y[i] = _gelu(x[i])
    elif act == ACT_GELU_TANH:
        for i in range(n):
            y[i] = _gelu_tanh(x[i])
    elif act == ACT_SILU:
        if floating is float:
            engine_ew_f32_silu(x, y, n)
        else:
            for i in range(n):
                v = x[i]
                y[i] = v * _sigmoid(v)
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            v = x[i]
            y[i] = v if v >= 0 else p * v
    elif act == ACT_EXP:
        if floating is float:
            engine_ew_f32_exp_shift(x, 0.0, y, n)
        else:
            for i in range(n):
                y[i] = _exp(x[i])
    elif act == ACT_LOG:
        if floating is float:
            engine_ew_f32_log(x, y, n)
        else:
            for i in range(n):
                y[i] = c_log(x[i])


cdef void _act_backward_span(int act, const floating* a, const floating* g, floating* out,
                             Py_ssize_t n, double param) noexcept nogil:
    # `a` is the forward output for relu/sigmoid/tanh/elu/selu and the
    # forward input for the others (see the Python docstrings).
    cdef Py_ssize_t i
    cdef floating v, zero = 0, one = 1, p = <floating>param
    cdef floating scale = <floating>SELU_SCALE, sa = <floating>(SELU_SCALE * SELU_ALPHA)
    if act == ACT_RELU:
        for i in range(n):
            # g[i] read on both sides of the select so the loop vectorises as a blend (read
            # only where a[i] > 0, it is a conditional load gcc leaves scalar: 9x slower here)
            v = g[i]
            out[i] = v if a[i] > 0 else zero
    elif act == ACT_SIGMOID:
        for i in range(n):
            out[i] = g[i] * _sigmoid_slope_y(a[i])
    elif act == ACT_TANH:
        for i in range(n):
            out[i] = g[i] * _tanh_slope_y(a[i])
    elif act == ACT_ELU:
        for i in range(n):
            v = a[i]
            out[i] = g[i] if v > 0 else g[i] * (v + p)
    elif act == ACT_SELU:
        for i in range(n):
            v = a[i]
            out[i] = g[i] * scale if v > 0 else g[i] * (v + sa)
    elif act == ACT_SOFTPLUS:
        if floating is float:
            engine_ew_f32_sigmoid_mul(a, g, out, n)
        else:
            for i in range(n):
                out[i] = g[i] * _sigmoid(a[i])
    elif act == ACT_GELU:
        for i in range(n):
            out[i] = g[i] * _gelu_slope(a[i])
    elif act == ACT_GELU_TANH:
        for i in range(n):
            out[i] = g[i] * _gelu_tanh_slope(a[i])
    elif act == ACT_SILU:
        if floating is float:
            engine_ew_f32_silu_grad(a, g, out, n)
        else:
            for i in range(n):
                out[i] = g[i] * _silu_slope(a[i])
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            out[i] = g[i] if a[i] > 0 else g[i] * p


cdef struct _ActJob:
    int act
    bint backward
    const void* a
    const void* g
    void* out
    double param


cdef void _act_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _ActJob* j = <const _ActJob*>job
    if j.backward:
        _act_backward_span(j.act, <const float*>j.a + lo, <const float*>j.g + lo, <float*>j.out + lo, hi - lo,
                           j.param)
    else:
        _act_forward_span(j.act, <const float*>j.a + lo, <float*>j.out + lo, hi - lo, j.param)


cdef void _act_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _ActJob* j = <const _ActJob*>job
    if j.backward:
        _act_backward_span(j.act, <const double*>j.a + lo, <const double*>j.g + lo, <double*>j.out + lo, hi - lo,
                           j.param)
    else:
        _act_forward_span(j.act, <const double*>j.a + lo, <double*>j.out + lo, hi - lo, j.param)


cdef void _act_run(int act, bint backward, const floating* a, const floating* g, floating* out,
                   Py_ssize_t n, double param, int nt) noexcept nogil:
    cdef _ActJob job
    job.act, job.backward, job.a, job.g, job.out, job.param = act, backward, a, g, out, param
    if floating is float:
        engine_run_spans(_act_spans_f, &job, n, nt, SPAN_ALIGN)
    else:
        engine_run_spans(_act_spans_d, &job, n, nt, SPAN_ALIGN)


cdef inline bint _has_simd_f32_loop(int act, bint backward):
    """True where the float32 loop is a vectorised exp or log (fast_math.h), as cheap as a copy."""
    if backward:
        return act == ACT_SOFTPLUS or act == ACT_SILU
    return act == ACT_SIGMOID or act == ACT_SILU or act == ACT_EXP or act == ACT_LOG


cdef object _activation(str fn, int act, object x, object out, double param, Py_ssize_t par_min):
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray oa = _like(fn, "out", out, "x", xa, True)
    _same_or_disjoint(fn, "x", xa, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    if _is_f32(xa) and _has_simd_f32_loop(act, False):
        par_min = PAR_MIN_CHEAP
    cdef int nt = engine_team_size(n, par_min, n)
    if n == 0:
        return out
    if _is_f32(xa):
        with nogil:
            _act_run(act, False, <const float*>_data(xa), <const float*>NULL, <float*>_data(oa),
                     n, param, nt)
    else:
        with nogil:
            _act_run(act, False, <const double*>_data(xa), <const double*>NULL, <double*>_data(oa),
                     n, param, nt)
    return out


cdef object _activation_grad(str fn, str a_name, int act, object a, object g, object out,
                             double param, Py_ssize_t par_min):
    cdef cnp.ndarray aa = _float_array(fn, a_name, a)
    cdef cnp.ndarray ga = _like(fn, "g", g, a_name, aa, False)
    cdef cnp.ndarray oa = _like(fn, "out", out, a_name, aa, True)
    _same_or_disjoint(fn, a_name, aa, "out", oa)
    _same_or_disjoint(fn, "g", ga, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(aa)
    if _is_f32(aa) and _has_simd_f32_loop(act, True):
        par_min = PAR_MIN_CHEAP
    cdef int nt = engine_team_size(n, par_min, n)
    if n == 0:
        return out
    if _is_f32(aa):
        with nogil:
            _act_run(act, True, <const float*>_data(aa), <const float*>_data(ga), <float*>_data(oa),
                     n, param, nt)
    else:
        with nogil:
            _act_run(act, True, <const double*>_data(aa), <const double*>_data(ga), <double*>_data(oa),
                     n, param, nt)
    return out


def relu(x, out):
    """out = max(x, 0)."""
    return _activation("relu", ACT_RELU, x, out, 0.0, PAR_MIN_CHEAP)


def relu_grad(y, g, out):
    """out = g where the forward output y > 0, else 0."""
    return _activation_grad("relu_grad", "y", ACT_RELU, y, g, out, 0.0, PAR_MIN_CHEAP)


def sigmoid(x, out):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|."""
    return _activation("sigmoid", ACT_SIGMOID, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def sigmoid_grad(y, g, out):
    """out = g * y * (1 - y), y the forward output."""
    return _activation_grad("sigmoid_grad", "y", ACT_SIGMOID, y, g, out, 0.0, PAR_MIN_CHEAP)


def exp(x, out):
    """out = exp(x) (float32 uses the module's vectorised exp, float64 libm)."""
    return _activation("exp", ACT_EXP, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def log(x, out):
    """out = log(x) (float32 uses fast_math.h's vectorised engine_logf, the log the loss kernels
    take; float64 libm)."""
    return _activation("log", ACT_LOG, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def tanh(x, out):
    """out = tanh(x)."""
    return _activation("tanh", ACT_TANH, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def tanh_grad(y, g, out):
    """out = g * (1 - y^2), y the forward output."""
    return _activation_grad("tanh_grad", "y", ACT_TANH, y, g, out, 0.0, PAR_MIN_CHEAP)


def elu(x, out, double alpha=1.0):
    """out = x if x > 0 else alpha * (exp(x) - 1)."""
    return _activation("elu", ACT_ELU, x, out, alpha, PAR_MIN_TRANSCENDENTAL)


def elu_grad(y, g, out, double alpha=1.0):
    """out = g if y > 0 else g * (y + alpha), y the forward output."""
    return _activation_grad("elu_grad", "y", ACT_ELU, y, g, out, alpha, PAR_MIN_CHEAP)


def selu(x, out):
    """out = scale * (x if x > 0 else alpha * (exp(x) - 1)) with the SELU constants."""
    return _activation("selu", ACT_SELU, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def selu_grad(y, g, out):
    """out = g * scale if y > 0 else g * (y + scale * alpha), y the forward output."""
    return _activation_grad("selu_grad", "y", ACT_SELU, y, g, out, 0.0, PAR_MIN_CHEAP)


def softplus(x, out):
    """out = log(1 + exp(x)), stable for large |x|."""
    return _activation("softplus", ACT_SOFTPLUS, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def softplus_grad(x, g, out):
    """out = g * sigmoid(x), x the forward input."""
    return _activation_grad("softplus_grad", "x", ACT_SOFTPLUS, x, g, out, 0.0,
                            PAR_MIN_TRANSCENDENTAL)


def gelu(x, out):
    """Exact GELU: out = 0.5 * x * (1 + erf(x / sqrt(2)))."""
    return _activation("gelu", ACT_GELU, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def gelu_grad(x, g, out):
    """out = g * (Phi(x) + x * phi(x)), x the forward input."""
    return _activation_grad("gelu_grad", "x", ACT_GELU, x, g, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def gelu_tanh(x, out):
    """Tanh-approximate GELU: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    return _activation("gelu_tanh", ACT_GELU_TANH, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def gelu_tanh_grad(x, g, out):
    """out = g * d/dx gelu_tanh(x), x the forward input."""
    return _activation_grad("gelu_tanh_grad", "x", ACT_GELU_TANH, x, g, out, 0.0,
                            PAR_MIN_TRANSCENDENTAL)


def silu(x, out):
    """out = x * sigmoid(x) (a.k.a. swish)."""
    return _activation("silu", ACT_SILU, x, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def silu_grad(x, g, out):
    """out = g * (s + x * s * (1 - s)), s = sigmoid(x), x the forward input."""
    return _activation_grad("silu_grad", "x", ACT_SILU, x, g, out, 0.0, PAR_MIN_TRANSCENDENTAL)


def leaky_relu(x, out, double negative_slope=0.2):
    """out = x if x >= 0 else negative_slope * x."""
    return _activation("leaky_relu", ACT_LEAKY_RELU, x, out, negative_slope, PAR_MIN_CHEAP)


def leaky_relu_grad(x, g, out, double negative_slope=0.2):
    """out = g if x > 0 else negative_slope * g, x the forward input."""
    return _activation_grad("leaky_relu_grad", "x", ACT_LEAKY_RELU, x, g, out, negative_slope,
                            PAR_MIN_CHEAP)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

cdef void _dropout_span(const floating* x, const uint8_t* mask, floating scale, floating* out,
                        Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    # A select, not x * (mask * scale): dropped NaN/inf inputs must give 0.  Written as a bit
    # mask on the product's bits: as `v if mask else 0` gcc kept a branch, which a random mask
    # mispredicts half the time (10x slower).  The build has -fno-strict-aliasing.
    if floating is float:
        for i in range(lo, hi):
            v = x[i] * scale
            (<uint32_t*>out)[i] = (<uint32_t*>&v)[0] & (<uint32_t>0 - <uint32_t>(mask[i] != 0))
    else:
        for i in range(lo, hi):
            v = x[i] * scale
            (<uint64_t*>out)[i] = (<uint64_t*>&v)[0] & (<uint64_t>0 - <uint64_t>(mask[i] != 0))


cdef struct _DropoutJob:
    const void* x
    const uint8_t* mask
    double scale
    void* out


cdef void _dropout_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _DropoutJob* j = <const _DropoutJob*>job
    _dropout_span(<const float*>j.x, j.mask, <float>j.scale, <float*>j.out, lo, hi)


cdef void _dropout_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _DropoutJob* j = <const _DropoutJob*>job
    _dropout_span(<const double*>j.x, j.mask, <double>j.scale, <double*>j.out, lo, hi)


cdef void _dropout_run(const floating* x, const uint8_t* mask, double scale, floating* out,
                       Py_ssize_t n, int nt) noexcept nogil:
    cdef _DropoutJob job
    job.x, job.mask, job.scale, job.out = x, mask, scale, out
    if floating is float:
        engine_run_spans(_dropout_spans_f, &job, n, nt, SPAN_ALIGN * 4)
    else:
        engine_run_spans(_dropout_spans_d, &job, n, nt, SPAN_ALIGN * 4)


def dropout_apply(x, mask_u8, double scale, out):
    """out = x * scale where mask != 0, else 0.  Forward on x and backward on g alike."""
    cdef str fn = "dropout_apply"
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray oa = _like(fn, "out", out, "x", xa, True)
    _same_or_disjoint(fn, "x", xa, "out", oa)
    if not isinstance(mask_u8, cnp.ndarray):
        raise ValueError(f"{fn}: mask must be a numpy array, got {type(mask_u8).__name__}")
    cdef cnp.ndarray ma = <cnp.ndarray>mask_u8
    cdef int mt = cnp.PyArray_TYPE(ma)
    if mt != cnp.NPY_UINT8 and mt != cnp.NPY_BOOL:
        raise ValueError(f"{fn}: mask must be uint8 (or bool), got dtype {ma.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(ma):
        raise ValueError(f"{fn}: mask must be C-contiguous, got strides {(<object>ma).strides}")
    if not cnp.PyArray_SAMESHAPE(ma, xa):
        raise ValueError(f"{fn}: mask has shape {(<object>ma).shape} but x has shape {(<object>xa).shape}")
    _disjoint(fn, "mask", ma, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int nt = engine_team_size(n, PAR_MIN_CHEAP, n // (SPAN_ALIGN * 4))
    if n == 0:
        return out
    if _is_f32(xa):
        with nogil:
            _dropout_run(<const float*>_data(xa), <const uint8_t*>_data(ma), scale,
                         <float*>_data(oa), n, nt)
    else:
        with nogil:
            _dropout_run(<const double*>_data(xa), <const uint8_t*>_data(ma), scale,
                         <double*>_data(oa), n, nt)
    return out


# Dropout with its mask drawn by the element (csrc/philox.h): nothing stored between the forward
# and the backward, which recompute the same mask from the same key.
cdef extern from "philox.h" nogil:
    void engine_philox_dropout_f32(const float *x, float *out, Py_ssize_t lo, Py_ssize_t hi, uint64_t offset,
                                   uint64_t key, uint32_t threshold, float scale)
    void engine_philox_dropout_f64(const double *x, double *out, Py_ssize_t lo, Py_ssize_t hi,
                                   uint64_t offset, uint64_t key, uint32_t threshold, double scale)
    void engine_philox_mask(uint8_t *mask, Py_ssize_t lo, Py_ssize_t hi, uint64_t offset, uint64_t key,
                            uint32_t threshold)


cdef struct _HashedJob:
    const void* x
    void* out
    uint64_t offset
    uint64_t key
    uint32_t threshold
    double scale


cdef void _hashed_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _HashedJob* j = <const _HashedJob*>job
    engine_philox_dropout_f32(<const float*>j.x, <float*>j.out, lo, hi, j.offset, j.key, j.threshold,
                              <float>j.scale)


cdef void _hashed_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _HashedJob* j = <const _HashedJob*>job
    engine_philox_dropout_f64(<const double*>j.x, <double*>j.out, lo, hi, j.offset, j.key, j.threshold,
                              j.scale)


cdef void _mask_spans(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _HashedJob* j = <const _HashedJob*>job
    engine_philox_mask(<uint8_t*>j.out, lo, hi, j.offset, j.key, j.threshold)


cdef int _check_stream(str fn, object offset, object key, object threshold) except -1:
    if not 0 <= offset < 2 ** 63 or not 0 <= key < 2 ** 64 or not 0 <= threshold < 2 ** 32:
        raise ValueError(f"{fn}: offset must lie in [0, 2**63), key in [0, 2**64) and threshold in "
                         f"[0, 2**32); got {offset}, {key}, {threshold}")
    return 0


def dropout_hashed(x, key, offset, threshold, double scale, out):
    """out = x * scale where element i's random word (Philox4x32-10 of key at element offset + i,
    csrc/philox.h) is >= threshold, else 0.  The forward on x and the backward on g alike."""
    cdef str fn = "dropout_hashed"
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray oa = _like(fn, "out", out, "x", xa, True)
    _same_or_disjoint(fn, "x", xa, "out", oa)
    _check_stream(fn, offset, key, threshold)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    if n > 2 ** 63 - offset:
        raise ValueError(f"{fn}: offset {offset} + size {n} passes 2**63")
    cdef _HashedJob job
    job.x, job.out, job.offset, job.key, job.threshold, job.scale = _data(xa), _data(oa), offset, key, threshold, scale
    cdef int nt = engine_team_size(n, PAR_MIN_TRANSCENDENTAL, n // (SPAN_ALIGN * 4))
    if n == 0:
        return out
    cdef bint single = _is_f32(xa)
    with nogil:
        if single:
            engine_run_spans(_hashed_spans_f, &job, n, nt, SPAN_ALIGN * 4)
        else:
            engine_run_spans(_hashed_spans_d, &job, n, nt, SPAN_ALIGN * 4)
    return out


def keep_mask_hashed(key, offset, threshold, out):
    """out (uint8, any shape, C-contiguous) = 1 where element i's random word (as dropout_hashed's)
    is >= threshold, else 0."""
    cdef str fn = "keep_mask_hashed"
    if not isinstance(out, cnp.ndarray) or (<cnp.ndarray>out).dtype != np.uint8 or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out):
        raise ValueError(f"{fn}: out must be a C-contiguous uint8 array, got "
                         f"{getattr(out, 'dtype', type(out).__name__)}")
    cdef cnp.ndarray oa = <cnp.ndarray>out
    _check_writable(fn, "out", oa)
    _check_stream(fn, offset, key, threshold)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(oa)
    if n > 2 ** 63 - offset:
        raise ValueError(f"{fn}: offset {offset} + size {n} passes 2**63")
    cdef _HashedJob job
    job.x, job.out, job.offset, job.key, job.threshold, job.scale = NULL, _data(oa), offset, key, threshold, 0
    cdef int nt = engine_team_size(n, PAR_MIN_TRANSCENDENTAL, n // (SPAN_ALIGN * 4))
    if n:
        with nogil:
            engine_run_spans(_mask_spans, &job, n, nt, SPAN_ALIGN * 4)
    return out
