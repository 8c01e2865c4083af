# Fused elementwise kernels: activations and their gradients, bias add/grad,
# per-sample losses with their gradients, optimizer steps and dropout.
#
# Layout of this file: argument checking (everything the C loops rely on),
# scalar math helpers, the nogil kernels with their parallel drivers, and the
# Python-visible functions at the end of each section.
#
# Every kernel treats its arrays as flat C-contiguous buffers.  Work is split
# into one contiguous span per thread; below a size threshold the span loop is
# called directly, because waking a thread team costs microseconds and small
# models call these kernels on tiny arrays every step.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport (expm1, expm1f, log, logf, log1p, log1pf, tanhf,
                        erf, erff, sqrt, sqrtf)
# Imported under other names: `exp` and `tanh` are Python-visible kernels below.
from libc.math cimport exp as c_exp, tanh as c_tanh
from libc.stdlib cimport malloc, free

from row_sums cimport sum_rows, prefetch_rows_of
from libc.stdint cimport int32_t, int64_t, uint8_t

cnp.import_array()

from kernel_common cimport engine_set_thread_cap, engine_get_thread_cap


def _set_thread_cap(int n):
    """Limit this module's thread teams to n threads (0: no limit).  engine/_fork.py sets 1 in a
    forked child, where GNU OpenMP's thread pool is gone (csrc/threads.h)."""
    engine_set_thread_cap(n)


def _thread_cap():
    """The cap _set_thread_cap set (0: none)."""
    return engine_get_thread_cap()

cdef extern from "elementwise_omp.h" nogil:
    int engine_ew_max_threads()
    int engine_ew_thread_num()

cdef extern from "cpu_features.h" nogil:
    int engine_cpu_has_avx2_fma()

cdef extern from "elementwise_math.h" nogil:
    float engine_expf(float x)
    int engine_ew_use_avx2
    int ENGINE_EW_HAVE_AVX2_CLONES
    void engine_ew_f32_exp_shift(const float *x, float shift, float *y, Py_ssize_t n)
    void engine_ew_f32_sigmoid(const float *x, float *y, Py_ssize_t n)
    void engine_ew_f32_silu(const float *x, float *y, Py_ssize_t n)
    void engine_ew_f32_sigmoid_mul(const float *x, const float *g, float *out, Py_ssize_t n)
    void engine_ew_f32_silu_grad(const float *x, const float *g, float *out, Py_ssize_t n)

# The float32 exp-based loops have an AVX2+FMA build, the rest is baseline x86-64 only.  The
# level follows engine.config.set_simd_path like the other modules' (0 portable, 1 AVX2+FMA;
# this module has no AVX-512 code, so 2 means the best it has).
_SIMD_NAMES = {0: "portable", 1: "avx2_fma"}
_SIMD_LEVELS = {"portable": 0, "avx2_fma": 1, "avx2": 1, "avx512": 2, None: 2}
cdef int _simd_cap = 2


cdef void _apply_simd_cap(int cap):
    global engine_ew_use_avx2, _simd_cap
    _simd_cap = cap
    engine_ew_use_avx2 = cap >= 1 and engine_cpu_has_avx2_fma() and ENGINE_EW_HAVE_AVX2_CLONES


_apply_simd_cap(2)


def set_portable(bint on):
    """Force the portable C loops (True), or go back to the best SIMD ones (False)."""
    _apply_simd_cap(0 if on else 2)


def set_simd_path(name=None):
    """Cap the instruction set ('portable', 'avx2_fma', 'avx512' or None for the best the CPU
    has), for tests of each code path."""
    if name not in _SIMD_LEVELS:
        raise ValueError(f"set_simd_path: unknown path {name!r}")
    _apply_simd_cap(_SIMD_LEVELS[name])


def simd_path():
    """The path the float32 exp-based loops take now."""
    return _SIMD_NAMES[1 if engine_ew_use_avx2 else 0]


def _set_avx2(bint enabled):
    """Testing hook: force the baseline (False) or AVX2 (True, if the CPU has it) float32 loops.
    Returns the previous setting."""
    cdef bint previous = engine_ew_use_avx2
    _apply_simd_cap(2 if enabled else 0)
    return previous


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


cdef cnp.ndarray _float_array(str fn, str name, object a):
    if not isinstance(a, cnp.ndarray):
        raise ValueError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not _is_float(arr):
        raise ValueError(f"{fn}: {name} must be float32 or float64, got dtype {arr.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{fn}: {name} must be C-contiguous, got shape {(<object>arr).shape} "
                         f"with strides {(<object>arr).strides}")
    return arr


cdef int _check_writable(str fn, str name, cnp.ndarray a) except -1:
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{fn}: {name} is read-only")
    return 0


cdef int _check_same_dtype(str fn, str name, cnp.ndarray a, str ref_name, cnp.ndarray ref) except -1:
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(ref):
        raise ValueError(f"{fn}: {name} has dtype {a.dtype} but {ref_name} has dtype {ref.dtype}")
    return 0


cdef cnp.ndarray _like(str fn, str name, object a, str ref_name, cnp.ndarray ref, bint writable):
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


cdef int _same_or_disjoint(str fn, str name_a, cnp.ndarray a, str name_b, cnp.ndarray b) except -1:
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


cdef int _disjoint(str fn, str name_a, cnp.ndarray a, str name_b, cnp.ndarray b) except -1:
    if _overlaps(a, b):
        raise ValueError(f"{fn}: {name_a} {(<object>a).shape} and {name_b} {(<object>b).shape} must not share memory")
    return 0


cdef inline bint _is_f32(cnp.ndarray a):
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32


cdef inline void* _data(cnp.ndarray a) noexcept nogil:
    return cnp.PyArray_DATA(a)


# ---------------------------------------------------------------------------
# Work splitting
# ---------------------------------------------------------------------------

cdef inline int _team_size(Py_ssize_t work, Py_ssize_t par_min, Py_ssize_t max_parts) noexcept nogil:
    """Threads worth using for `work` elements split into at most `max_parts` pieces."""
    if work < par_min or max_parts < 2:
        return 1
    cdef int nt = engine_ew_max_threads()
    # Each extra thread must get at least half a threshold's worth of work.
    cdef Py_ssize_t by_work = work // (par_min // 2)
    if by_work < nt:
        nt = <int>by_work
    if max_parts < nt:
        nt = <int>max_parts
    return nt if nt > 1 else 1


cdef inline Py_ssize_t _span_len(Py_ssize_t n, int nt, Py_ssize_t align) noexcept nogil:
    cdef Py_ssize_t c = (n + nt - 1) // nt
    return ((c + align - 1) // align) * align


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
    # exp(-|v|) never overflows; for v < 0, sigmoid(v) = e * sigmoid(|v|).
    cdef floating one = 1
    cdef floating e = _exp(-_abs(v))
    cdef floating s = one / (one + e)
    return s if v >= 0 else e * s


cdef inline floating _softplus(floating v) noexcept nogil:
    cdef floating zero = 0
    return (v if v > 0 else zero) + _log1p(_exp(-_abs(v)))


cdef inline floating _silu_slope(floating v) noexcept nogil:
    cdef floating one = 1
    cdef floating s = _sigmoid(v)
    return s + v * s * (one - s)


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
            v = a[i]
            out[i] = g[i] * v * (one - v)
    elif act == ACT_TANH:
        for i in range(n):
            v = a[i]
            out[i] = g[i] * (one - v * v)
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


cdef void _act_run(int act, bint backward, const floating* a, const floating* g, floating* out,
                   Py_ssize_t n, double param, int nt) noexcept nogil:
    cdef Py_ssize_t span, lo, hi
    cdef int t
    if nt <= 1:
        if backward:
            _act_backward_span(act, a, g, out, n, param)
        else:
            _act_forward_span(act, a, out, n, param)
        return
    span = _span_len(n, nt, SPAN_ALIGN)
    for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        lo = t * span
        hi = lo + span
        if hi > n:
            hi = n
        if lo < hi:
            if backward:
                _act_backward_span(act, a + lo, g + lo, out + lo, hi - lo, param)
            else:
                _act_forward_span(act, a + lo, out + lo, hi - lo, param)


cdef inline bint _has_simd_f32_loop(int act, bint backward):
    """True where the float32 loop is a vectorised exp (elementwise_math.h), as cheap as a copy."""
    if backward:
        return act == ACT_SOFTPLUS or act == ACT_SILU
    return act == ACT_SIGMOID or act == ACT_SILU or act == ACT_EXP


cdef object _activation(str fn, int act, object x, object out, double param, Py_ssize_t par_min):
    cdef cnp.ndarray xa = _float_array(fn, "x", x)
    cdef cnp.ndarray oa = _like(fn, "out", out, "x", xa, True)
    _same_or_disjoint(fn, "x", xa, "out", oa)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    if _is_f32(xa) and _has_simd_f32_loop(act, False):
        par_min = PAR_MIN_CHEAP
    cdef int nt = _team_size(n, par_min, n)
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
    cdef int nt = _team_size(n, par_min, n)
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
# Softmax family: rows along the last axis
# ---------------------------------------------------------------------------

cdef enum RowOp:
    ROW_SOFTMAX
    ROW_LOG_SOFTMAX
    ROW_SOFTMAX_GRAD
    ROW_LOG_SOFTMAX_GRAD


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


cdef double _sum_exp_shifted(const floating* x, floating m, Py_ssize_t c) noexcept nogil:
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


cdef void _rows_run(int op, const floating* x, const floating* g, floating* out,
                    Py_ssize_t rows, Py_ssize_t c, int nt) noexcept nogil:
    cdef Py_ssize_t span, lo, hi
    cdef int t
    if nt <= 1:
        _rows_span(op, x, g, out, 0, rows, c)
        return
    span = _span_len(rows, nt, 1)
    for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        lo = t * span
        hi = lo + span
        if hi > rows:
            hi = rows
        if lo < hi:
            _rows_span(op, x, g, out, lo, hi, c)


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
    cdef int nt = _team_size(n, par_min, rows)
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


cdef void _bias_add_run(const floating* x, const floating* b, floating* out,
                        Py_ssize_t rows, Py_ssize_t c, int nt, const floating* a=NULL) noexcept nogil:
    """out = x + b per channel, or x * a + b when a scale is given."""
    cdef Py_ssize_t span, lo, hi
    cdef int t
    if nt <= 1:
        _bias_add_span(x, b, out, 0, rows, c, a)
        return
    span = _span_len(rows, nt, 1)
    for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        lo = t * span
        hi = lo + span
        if hi > rows:
            hi = rows
        if lo < hi:
            _bias_add_span(x, b, out, lo, hi, c, a)


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
        span = _span_len(rows, nt, 1)
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
        span = _span_len(c, nt, SPAN_ALIGN)
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
    cdef int nt = _team_size(n, PAR_MIN_CHEAP, rows)
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
    cdef int nt = _team_size(n, PAR_MIN_CHEAP, rows if rows >= 2 else c // SPAN_ALIGN)
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
# Losses: per-sample value and gradient in one pass over each row
#
# Rows are computed in double for both dtypes.  Every row function finishes
# its reductions before writing the gradient, and writes g[j] only after
# reading t[j] and p[j], so grad_out may be y_pred or y_true itself.
# ---------------------------------------------------------------------------

cdef enum Loss:
    LOSS_MSE
    LOSS_MAE
    LOSS_BCE
    LOSS_BCE_LOGITS
    LOSS_CCE
    LOSS_CCE_LOGITS
    LOSS_SPARSE_CCE
    LOSS_SPARSE_CCE_LOGITS


cdef inline double _clip(double v, double lo, double hi) noexcept nogil:
    # NaN stays NaN, as with np.clip.
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


cdef double _mse_row(const floating* t, const floating* p, floating* g, Py_ssize_t c) noexcept nogil:
    cdef double acc = 0, d, k = 2.0 / c
    cdef Py_ssize_t j
    for j in range(c):
        d = <double>p[j] - <double>t[j]
        acc += d * d
        if g != NULL:
            g[j] = <floating>(k * d)
    return acc / c


cdef double _mae_row(const floating* t, const floating* p, floating* g, Py_ssize_t c) noexcept nogil:
    cdef double acc = 0, d, k = 1.0 / c
    cdef Py_ssize_t j
    for j in range(c):
        d = <double>p[j] - <double>t[j]
        acc += d if d >= 0 else -d
        if g != NULL:
            g[j] = <floating>(k if d > 0 else (-k if d < 0 else 0.0))
    return acc / c


cdef double _bce_row(const floating* t, const floating* p, floating* g, Py_ssize_t c,
                     double lo, double hi) noexcept nogil:
    cdef double acc = 0, tj, pj, q, k = 1.0 / c
    cdef Py_ssize_t j
    for j in range(c):
        tj = t[j]
        pj = p[j]
        q = _clip(pj, lo, hi)
        acc += tj * log(q) + (1.0 - tj) * log(1.0 - q)
        if g != NULL:
            # Clipping cuts the gradient outside [lo, hi].
            if lo <= pj <= hi:
                g[j] = <floating>(-k * (tj / q - (1.0 - tj) / (1.0 - q)))
            else:
                g[j] = 0
    return -acc / c


cdef inline double _sigmoid_d(double z) noexcept nogil:
    cdef double e = c_exp(-(z if z >= 0 else -z))
    cdef double s = 1.0 / (1.0 + e)
    return s if z >= 0 else e * s


cdef double _bce_logits_row(const floating* t, const floating* z, floating* g,
                            Py_ssize_t c) noexcept nogil:
    cdef double acc = 0, tj, zj, k = 1.0 / c
    cdef Py_ssize_t j
    for j in range(c):
        tj = t[j]
        zj = z[j]
        acc += (zj if zj > 0 else 0.0) - zj * tj + log1p(c_exp(-(zj if zj >= 0 else -zj)))
        if g != NULL:
            g[j] = <floating>(k * (_sigmoid_d(zj) - tj))
    return acc / c


cdef double _cce_row(const floating* t, const floating* p, floating* g, Py_ssize_t c,
                     double lo, double hi) noexcept nogil:
    # q = p / sum(p) is clipped before the log; where q is clipped dL/dq is 0.
    # Through the normalisation: dL/dp_i = (dL/dq_i - sum_j dL/dq_j q_j) / s.
    # A class with target 0 adds exactly nothing to the loss or to dot and its gradient is
    # -dot / s, so those classes skip the log and the divisions (one-hot targets: all but one
    # class; 128 x 500 went from ~515 to ~80 us).  That holds while s is finite,
    # i.e. every p finite; otherwise every class takes the full formula, so NaN and inf
    # propagate as before.
    cdef double s = _sum(p, c), acc = 0, dot = 0, q, dq, rest
    cdef Py_ssize_t j
    cdef bint finite = s - s == 0
    for j in range(c):
        if t[j] == 0 and finite:
            continue
        q = p[j] / s
        acc += t[j] * log(_clip(q, lo, hi))
        if lo <= q <= hi:
            dot += -t[j]
    if g != NULL:
        rest = -dot / s
        for j in range(c):
            if t[j] == 0 and finite:
                g[j] = <floating>rest
                continue
            q = p[j] / s
            dq = -t[j] / q if lo <= q <= hi else 0.0
            g[j] = <floating>((dq - dot) / s)
    return -acc


cdef void _softmax_scaled(const floating* z, floating m, floating log_s, floating scale,
                          const floating* t, floating* g, Py_ssize_t c) noexcept nogil:
    """g = softmax(z) * scale - t (t may be NULL), softmax(z) = exp((z - m) - log_s)."""
    cdef Py_ssize_t j
    if t != NULL:
        for j in range(c):
            g[j] = _exp((z[j] - m) - log_s) * scale - t[j]
    else:
        for j in range(c):
            g[j] = _exp((z[j] - m) - log_s) * scale


cdef double _cce_logits_row(const floating* t, const floating* z, floating* g,
                            Py_ssize_t c) noexcept nogil:
    # loss = -sum t ((z - m) - log s).  Shifting by m before the product keeps
    # large logits from cancelling.  The reductions finish before g is
    # written, so g may alias z or t.
    if c == 0:
        return 0.0
    cdef floating m = _row_max(z, c)
    cdef double log_s = log(_sum_exp_shifted(z, m, c))
    cdef double total_t = _sum(t, c), loss = 0
    cdef Py_ssize_t j
    for j in range(c):
        loss -= <double>t[j] * ((<double>z[j] - m) - log_s)
    if g != NULL:
        _softmax_scaled(z, m, <floating>log_s, <floating>total_t, t, g, c)
    return loss


cdef double _sparse_cce_row(Py_ssize_t label, const floating* p, floating* g, Py_ssize_t c,
                            double lo, double hi) noexcept nogil:
    cdef double s = _sum(p, c)
    cdef double q = p[label] / s
    cdef bint live = lo <= q <= hi
    cdef double dq = -1.0 / q if live else 0.0
    cdef double dot = dq * q
    cdef Py_ssize_t j
    if g != NULL:
        for j in range(c):
            g[j] = <floating>(-dot / s)
        g[label] = <floating>((dq - dot) / s)
    return -log(_clip(q, lo, hi))


cdef double _sparse_cce_logits_row(Py_ssize_t label, const floating* z, floating* g,
                                   Py_ssize_t c) noexcept nogil:
    cdef floating m = _row_max(z, c)
    cdef double log_s = log(_sum_exp_shifted(z, m, c))
    cdef double loss = (<double>m - z[label]) + log_s
    if g != NULL:
        _softmax_scaled(z, m, <floating>log_s, <floating>1, <const floating*>NULL, g, c)
        g[label] = g[label] - 1
    return loss


cdef inline Py_ssize_t _label_at(const void* labels, bint lab64, Py_ssize_t r) noexcept nogil:
    if lab64:
        return <Py_ssize_t>(<const int64_t*>labels)[r]
    return <Py_ssize_t>(<const int32_t*>labels)[r]


cdef void _loss_span(int kind, const floating* t, const void* labels, bint lab64,
                     const floating* p, floating* loss, floating* g, Py_ssize_t r0, Py_ssize_t r1,
                     Py_ssize_t c, double lo, double hi) noexcept nogil:
    cdef Py_ssize_t r, off
    cdef double v
    cdef floating* gr = NULL
    cdef const floating* tr = NULL
    for r in range(r0, r1):
        off = r * c
        if g != NULL:
            gr = g + off
        if t != NULL:
            tr = t + off
        if kind == LOSS_MSE:
            v = _mse_row(tr, p + off, gr, c)
        elif kind == LOSS_MAE:
            v = _mae_row(tr, p + off, gr, c)
        elif kind == LOSS_BCE:
            v = _bce_row(tr, p + off, gr, c, lo, hi)
        elif kind == LOSS_BCE_LOGITS:
            v = _bce_logits_row(tr, p + off, gr, c)
        elif kind == LOSS_CCE:
            v = _cce_row(tr, p + off, gr, c, lo, hi)
        elif kind == LOSS_CCE_LOGITS:
            v = _cce_logits_row(tr, p + off, gr, c)
        elif kind == LOSS_SPARSE_CCE:
            v = _sparse_cce_row(_label_at(labels, lab64, r), p + off, gr, c, lo, hi)
        else:
            v = _sparse_cce_logits_row(_label_at(labels, lab64, r), p + off, gr, c)
        loss[r] = <floating>v


cdef void _loss_run(int kind, const floating* t, const void* labels, bint lab64,
                    const floating* p, floating* loss, floating* g, Py_ssize_t rows, Py_ssize_t c,
                    double lo, double hi, int nt) noexcept nogil:
    cdef Py_ssize_t span, a, b
    cdef int k
    if nt <= 1:
        _loss_span(kind, t, labels, lab64, p, loss, g, 0, rows, c, lo, hi)
        return
    # Rows per thread rounded so loss_out seams fall on cache-line boundaries.
    span = _span_len(rows, nt, SPAN_ALIGN)
    for k in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        a = k * span
        b = a + span
        if b > rows:
            b = rows
        if a < b:
            _loss_span(kind, t, labels, lab64, p, loss, g, a, b, c, lo, hi)


cdef Py_ssize_t _leading_size(cnp.ndarray a):
    cdef Py_ssize_t n = 1
    cdef int d
    for d in range(cnp.PyArray_NDIM(a) - 1):
        n *= cnp.PyArray_DIMS(a)[d]
    return n


cdef bint _has_leading_shape(cnp.ndarray a, cnp.ndarray ref, Py_ssize_t rows):
    """a has shape (rows,) or ref.shape[:-1]."""
    cdef int nd = cnp.PyArray_NDIM(a), d
    if nd == 1 and cnp.PyArray_DIMS(a)[0] == rows:
        return True
    if nd != cnp.PyArray_NDIM(ref) - 1:
        return False
    for d in range(nd):
        if cnp.PyArray_DIMS(a)[d] != cnp.PyArray_DIMS(ref)[d]:
            return False
    return True


cdef double _eps_lo(cnp.ndarray ref, double eps):
    # Bounds rounded to the array dtype, as clipping a float32 array does.
    return <double><float>eps if _is_f32(ref) else eps


cdef double _eps_hi(cnp.ndarray ref, double eps):
    return <double><float>(1.0 - eps) if _is_f32(ref) else 1.0 - eps


cdef object _loss(str fn, int kind, str p_name, object y_true, object y_pred, object loss_out,
                  object grad_out, double eps):
    cdef bint sparse = kind == LOSS_SPARSE_CCE or kind == LOSS_SPARSE_CCE_LOGITS
    cdef cnp.ndarray pa = _float_array(fn, p_name, y_pred)
    if cnp.PyArray_NDIM(pa) < 1:
        raise ValueError(f"{fn}: {p_name} must have at least one axis, got shape {(<object>pa).shape}")
    cdef Py_ssize_t c = cnp.PyArray_DIMS(pa)[cnp.PyArray_NDIM(pa) - 1]
    cdef Py_ssize_t rows = _leading_size(pa)
    cdef cnp.ndarray ta = None, la = None, ga = None
    cdef bint lab64 = False
    if sparse:
        la = _labels(fn, y_true, pa, rows)
        lab64 = cnp.PyArray_TYPE(la) == cnp.NPY_INT64
    else:
        ta = _like(fn, "y_true", y_true, p_name, pa, False)
    cdef cnp.ndarray lo_a = _float_array(fn, "loss_out", loss_out)
    _check_same_dtype(fn, "loss_out", lo_a, p_name, pa)
    if not _has_leading_shape(lo_a, pa, rows):
        raise ValueError(f"{fn}: loss_out must have shape ({rows},) for {p_name} of shape "
                         f"{(<object>pa).shape}, got {(<object>lo_a).shape}")
    _check_writable(fn, "loss_out", lo_a)
    _disjoint(fn, "loss_out", lo_a, p_name, pa)
    if ta is not None:
        _disjoint(fn, "loss_out", lo_a, "y_true", ta)
    if grad_out is not None:
        ga = _like(fn, "grad_out", grad_out, p_name, pa, True)
        _same_or_disjoint(fn, "grad_out", ga, p_name, pa)
        _disjoint(fn, "grad_out", ga, "loss_out", lo_a)
        if ta is not None:
            _same_or_disjoint(fn, "grad_out", ga, "y_true", ta)
    if rows == 0:
        return loss_out
    if sparse:
        _check_label_range(fn, la, lab64, rows, c)
    cdef Py_ssize_t n = rows * c
    cdef Py_ssize_t par_min = (PAR_MIN_CHEAP if kind == LOSS_MSE or kind == LOSS_MAE
                               else PAR_MIN_TRANSCENDENTAL)
    cdef int nt = _team_size(n if n > rows else rows, par_min, rows // SPAN_ALIGN)
    cdef double lo = _eps_lo(pa, eps), hi = _eps_hi(pa, eps)
    cdef void* tp = _data(ta) if ta is not None else NULL
    cdef void* lp = _data(la) if la is not None else NULL
    cdef void* gp = _data(ga) if ga is not None else NULL
    if _is_f32(pa):
        with nogil:
            _loss_run(kind, <const float*>tp, lp, lab64, <const float*>_data(pa),
                      <float*>_data(lo_a), <float*>gp, rows, c, lo, hi, nt)
    else:
        with nogil:
            _loss_run(kind, <const double*>tp, lp, lab64, <const double*>_data(pa),
                      <double*>_data(lo_a), <double*>gp, rows, c, lo, hi, nt)
    return loss_out


cdef cnp.ndarray _labels(str fn, object labels, cnp.ndarray pa, Py_ssize_t rows):
    if not isinstance(labels, cnp.ndarray):
        raise ValueError(f"{fn}: labels must be a numpy array, got {type(labels).__name__}")
    cdef cnp.ndarray la = <cnp.ndarray>labels
    cdef int t = cnp.PyArray_TYPE(la)
    if t != cnp.NPY_INT32 and t != cnp.NPY_INT64:
        raise ValueError(f"{fn}: labels must be int32 or int64, got dtype {la.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(la):
        raise ValueError(f"{fn}: labels must be C-contiguous, got strides {(<object>la).strides}")
    if not _has_leading_shape(la, pa, rows):
        raise ValueError(f"{fn}: labels must have shape ({rows},) for predictions of shape "
                         f"{(<object>pa).shape}, got {(<object>la).shape}")
    return la


cdef Py_ssize_t _first_bad_label(const void* labels, bint lab64, Py_ssize_t rows,
                                 Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t r, v
    for r in range(rows):
        if lab64:
            # Compare in 64 bits: a label beyond Py_ssize_t must not wrap into range.
            if (<const int64_t*>labels)[r] < 0 or (<const int64_t*>labels)[r] >= c:
                return r
        else:
            v = (<const int32_t*>labels)[r]
            if v < 0 or v >= c:
                return r
    return -1


cdef int _check_label_range(str fn, cnp.ndarray la, bint lab64, Py_ssize_t rows,
                            Py_ssize_t c) except -1:
    cdef Py_ssize_t bad
    cdef const void* lp = _data(la)
    with nogil:
        bad = _first_bad_label(lp, lab64, rows, c)
    if bad >= 0:
        raise ValueError(f"{fn}: label {int(la.reshape(-1)[bad])} at index {bad} is outside "
                         f"[0, {c}) for C = {c} classes")
    return 0


def mse(y_true, y_pred, loss_out, grad_out=None):
    """loss_out[i] = mean_j (p - t)^2; grad_out = d loss_out[i] / d y_pred[i, :]."""
    return _loss("mse", LOSS_MSE, "y_pred", y_true, y_pred, loss_out, grad_out, 0.0)


def mae(y_true, y_pred, loss_out, grad_out=None):
    """loss_out[i] = mean_j |p - t|; gradient sign(p - t) / C (0 where equal)."""
    return _loss("mae", LOSS_MAE, "y_pred", y_true, y_pred, loss_out, grad_out, 0.0)


def binary_crossentropy(y_true, y_pred, loss_out, grad_out=None, double epsilon=1e-7):
    """Mean over the last axis of -(t log p + (1 - t) log(1 - p)), p clipped to [eps, 1 - eps]."""
    return _loss("binary_crossentropy", LOSS_BCE, "y_pred", y_true, y_pred, loss_out, grad_out,
                 epsilon)


def binary_crossentropy_logits(y_true, logits, loss_out, grad_out=None):
    """Mean over the last axis of max(z, 0) - z t + log1p(exp(-|z|))."""
    return _loss("binary_crossentropy_logits", LOSS_BCE_LOGITS, "logits", y_true, logits,
                 loss_out, grad_out, 0.0)


def categorical_crossentropy(y_true, y_pred, loss_out, grad_out=None, double epsilon=1e-7):
    """-sum t log(clip(p / sum p, eps, 1 - eps)); gradient with respect to the unnormalised p."""
    return _loss("categorical_crossentropy", LOSS_CCE, "y_pred", y_true, y_pred, loss_out,
                 grad_out, epsilon)


def categorical_crossentropy_logits(y_true, logits, loss_out, grad_out=None):
    """-sum t log_softmax(z); gradient softmax(z) sum(t) - t."""
    return _loss("categorical_crossentropy_logits", LOSS_CCE_LOGITS, "logits", y_true, logits,
                 loss_out, grad_out, 0.0)


def sparse_categorical_crossentropy(labels, y_pred, loss_out, grad_out=None, double epsilon=1e-7):
    """categorical_crossentropy with one-hot targets given as int32/int64 class indices."""
    return _loss("sparse_categorical_crossentropy", LOSS_SPARSE_CCE, "y_pred", labels, y_pred,
                 loss_out, grad_out, epsilon)


def sparse_categorical_crossentropy_logits(labels, logits, loss_out, grad_out=None):
    """categorical_crossentropy_logits with one-hot targets given as class indices."""
    return _loss("sparse_categorical_crossentropy_logits", LOSS_SPARSE_CCE_LOGITS, "logits",
                 labels, logits, loss_out, grad_out, 0.0)


# ---------------------------------------------------------------------------
# Optimizer steps, in place.  Float32 variables are updated in float32 with
# the scalars rounded to float32 first, in the operation order of Keras 3, so
# results match Keras within rounding.
# ---------------------------------------------------------------------------

cdef enum Optimizer:
    OPT_SGD
    OPT_MOMENTUM
    OPT_RMSPROP
    OPT_ADAM
    OPT_ADAGRAD


cdef struct OptStep:
    int kind
    void* g
    void* s1          # momentum / velocity / m / accumulator
    void* s2          # rmsprop momentum buffer / adam v
    void* s3          # rmsprop avg_grad / adam vhat
    double lr         # lr, or adam's alpha
    double a          # momentum / rho / beta_1
    double b          # rmsprop momentum / beta_2
    double eps
    bint flag         # nesterov / centered


cdef void _sgd_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const floating* g = <const floating*>st.g
    cdef floating lr = <floating>st.lr
    cdef Py_ssize_t i
    for i in range(lo, hi):
        w[i] = w[i] - g[i] * lr


cdef void _momentum_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const floating* g = <const floating*>st.g
    cdef floating* m = <floating*>st.s1
    cdef floating lr = <floating>st.lr, mu = <floating>st.a, mi
    cdef Py_ssize_t i
    if st.flag:
        for i in range(lo, hi):
            mi = -g[i] * lr + m[i] * mu
            m[i] = mi
            w[i] = w[i] + (-g[i] * lr + mi * mu)
    else:
        for i in range(lo, hi):
            mi = -g[i] * lr + m[i] * mu
            m[i] = mi
            w[i] = w[i] + mi


cdef void _rmsprop_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const floating* g = <const floating*>st.g
    cdef floating* vel = <floating*>st.s1
    cdef floating* mom = <floating*>st.s2
    cdef floating* avg = <floating*>st.s3
    cdef floating lr = <floating>st.lr, rho = <floating>st.a, one_m_rho = <floating>(1.0 - st.a)
    cdef floating mu = <floating>st.b, eps = <floating>st.eps
    cdef floating gi, vi, ai, denom, inc
    cdef Py_ssize_t i
    for i in range(lo, hi):
        gi = g[i]
        vi = rho * vel[i] + one_m_rho * (gi * gi)
        vel[i] = vi
        if avg != NULL:
            ai = rho * avg[i] + one_m_rho * gi
            avg[i] = ai
            denom = vi - ai * ai + eps
        else:
            denom = vi + eps
        inc = lr * gi / _sqrt(denom)
        if mom != NULL:
            inc = mu * mom[i] + inc
            mom[i] = inc
        w[i] = w[i] - inc


cdef void _adam_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const floating* g = <const floating*>st.g
    cdef floating* m = <floating*>st.s1
    cdef floating* v = <floating*>st.s2
    cdef floating* vhat = <floating*>st.s3
    cdef floating alpha = <floating>st.lr, eps = <floating>st.eps
    cdef floating one_m_b1 = <floating>(1.0 - st.a), one_m_b2 = <floating>(1.0 - st.b)
    cdef floating gi, mi, vi
    cdef Py_ssize_t i
    for i in range(lo, hi):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_m_b1
        vi = v[i] + (gi * gi - v[i]) * one_m_b2
        m[i] = mi
        v[i] = vi
        if vhat != NULL:
            if not (vhat[i] >= vi):
                vhat[i] = vi
            vi = vhat[i]
        w[i] = w[i] - (mi * alpha) / (_sqrt(vi) + eps)


cdef void _adagrad_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const floating* g = <const floating*>st.g
    cdef floating* acc = <floating*>st.s1
    cdef floating lr = <floating>st.lr, eps = <floating>st.eps, gi, ai
    cdef Py_ssize_t i
    for i in range(lo, hi):
        gi = g[i]
        ai = acc[i] + gi * gi
        acc[i] = ai
        w[i] = w[i] - (lr * gi) / _sqrt(ai + eps)


cdef void _opt_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    if st.kind == OPT_SGD:
        _sgd_span(st, w, lo, hi)
    elif st.kind == OPT_MOMENTUM:
        _momentum_span(st, w, lo, hi)
    elif st.kind == OPT_RMSPROP:
        _rmsprop_span(st, w, lo, hi)
    elif st.kind == OPT_ADAM:
        _adam_span(st, w, lo, hi)
    else:
        _adagrad_span(st, w, lo, hi)


cdef void _opt_run(const OptStep* st, floating* w, Py_ssize_t n, int nt) noexcept nogil:
    cdef Py_ssize_t span, lo, hi
    cdef int t
    if nt <= 1:
        _opt_span(st, w, 0, n)
        return
    span = _span_len(n, nt, SPAN_ALIGN)
    for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        lo = t * span
        hi = lo + span
        if hi > n:
            hi = n
        if lo < hi:
            _opt_span(st, w, lo, hi)


cdef void _opt_rows_run(const OptStep* st, floating* w, const floating* rows, const int64_t* order,
                       const int64_t* start, floating* scratch, Py_ssize_t scratch_stride,
                       Py_ssize_t vocab, Py_ssize_t width, int nt) noexcept nogil:
    """The step of st for a (vocab, width) table whose gradient is zero but on some rows: row v's
    gradient is the sum of rows[order[start[v]:start[v+1]]], in that order (as segment_sum adds
    them).  Each row runs the dense step's own span code on its summed or zero gradient, so the
    bits are the dense step's; rows without gradient that the step provably leaves as they are
    (SGD, Adagrad: w - 0, acc + 0) are skipped, and plain RMSprop only decays their velocity."""
    cdef Py_ssize_t v, i, j, off
    cdef floating rho = <floating>st.a
    cdef floating* g
    cdef floating* vr
    cdef const floating* r
    cdef OptStep row
    cdef bint plain_rmsprop = st.kind == OPT_RMSPROP and st.s2 == NULL and st.s3 == NULL
    for v in prange(vocab, schedule="static", num_threads=nt):
        off = v * width
        prefetch_rows_of(rows, <const long long*>order, <const long long*>start, v, vocab, width)
        if start[v] == start[v + 1]:
            if st.kind == OPT_SGD or st.kind == OPT_ADAGRAD:
                continue
            if plain_rmsprop:
                vr = <floating*>st.s1 + off
                for j in range(width):
                    vr[j] = rho * vr[j]          # rho * v + (1 - rho) * 0: the same float
                continue
        g = scratch + engine_ew_thread_num() * scratch_stride
        sum_rows(g, rows, <const long long*>order, start[v], start[v + 1], width)
        row = st[0]
        row.g = g
        row.s1 = NULL if st.s1 == NULL else <void*>(<floating*>st.s1 + off)
        row.s2 = NULL if st.s2 == NULL else <void*>(<floating*>st.s2 + off)
        row.s3 = NULL if st.s3 == NULL else <void*>(<floating*>st.s3 + off)
        _opt_span(&row, w + off, 0, width)


cdef class _OptArgs:
    """Checks the arrays of one optimizer call: w and its state buffers are
    written in place and must not share memory; g may alias only exactly."""
    cdef str fn
    cdef cnp.ndarray w
    cdef list state
    cdef list state_names
    cdef tuple rows            # (rows, order, start) when g is given by rows, else None

    def __init__(self, str fn, object w):
        self.fn = fn
        self.w = _float_array(fn, "w", w)
        _check_writable(fn, "w", self.w)
        self.state = [self.w]
        self.state_names = ["w"]
        self.rows = None

    cdef void* grad(self, object g) except? NULL:
        """g: an array like w, or a table's gradient by rows: a tuple (rows, order, start) where
        rows is (n, width) and row v of the gradient is the sum of rows[order[start[v]:start[v+1]]]
        (engine.ops.embedding.RowGradient.kernel_rows)."""
        if isinstance(g, tuple):
            self.rows = self._check_rows(g)
            return NULL                # not read: the rows runner supplies each row's gradient
        cdef cnp.ndarray ga = _like(self.fn, "g", g, "w", self.w, False)
        _same_or_disjoint(self.fn, "g", ga, "w", self.w)
        return _data(ga)

    cdef tuple _check_rows(self, tuple g):
        cdef str fn = self.fn
        if len(g) != 3:
            raise ValueError(f"{fn}: a gradient by rows is (rows, order, start), got {len(g)} items")
        rows, order, start = g
        if cnp.PyArray_NDIM(self.w) != 2:
            raise ValueError(f"{fn}: a gradient by rows needs a 2-D table, w has shape {(<object>self.w).shape}")
        cdef Py_ssize_t vocab = cnp.PyArray_DIMS(self.w)[0], width = cnp.PyArray_DIMS(self.w)[1]
        cdef cnp.ndarray ra = _float_array(fn, "rows", rows)
        _check_same_dtype(fn, "rows", ra, "w", self.w)
        if cnp.PyArray_NDIM(ra) != 2 or cnp.PyArray_DIMS(ra)[1] != width:
            raise ValueError(f"{fn}: rows must have shape (n, {width}) to match w {(<object>self.w).shape}, "
                             f"got {rows.shape}")
        for name, a in (("order", order), ("start", start)):
            if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.ndim == 1 and a.flags.c_contiguous):
                raise ValueError(f"{fn}: {name} must be a contiguous 1-D int64 array")
        cdef Py_ssize_t n = cnp.PyArray_DIMS(ra)[0]
        if start.shape[0] != vocab + 1 or order.shape[0] != n or start[0] != 0 \
                or start[vocab] != order.shape[0] or np.any(np.diff(start) < 0):
            raise ValueError(f"{fn}: start must be the {vocab + 1} offsets of each table row's positions "
                             f"in order ({order.shape[0]} positions of {n} gradient rows)")
        if order.shape[0] and (order.min() < 0 or order.max() >= n):
            raise ValueError(f"{fn}: order holds positions outside the {n} gradient rows")
        return (ra, order, start)

    cdef void* slot(self, str name, object a) except? NULL:
        cdef cnp.ndarray sa = _like(self.fn, name, a, "w", self.w, True)
        cdef Py_ssize_t k
        for k in range(len(self.state)):
            _disjoint(self.fn, name, sa, self.state_names[k], self.state[k])
        self.state.append(sa)
        self.state_names.append(name)
        return _data(sa)

    cdef object run(self, OptStep* st):
        cdef Py_ssize_t n = cnp.PyArray_SIZE(self.w)
        cdef int nt = _team_size(n, PAR_MIN_CHEAP, n // SPAN_ALIGN)
        cdef void* wp = _data(self.w)
        if n == 0:
            return None
        if self.rows is not None:
            return self._run_rows(st)
        if _is_f32(self.w):
            with nogil:
                _opt_run(st, <float*>wp, n, nt)
        else:
            with nogil:
                _opt_run(st, <double*>wp, n, nt)
        return None

    cdef object _run_rows(self, OptStep* st):
        cdef Py_ssize_t vocab = cnp.PyArray_DIMS(self.w)[0], width = cnp.PyArray_DIMS(self.w)[1]
        cdef int nt = _team_size(vocab * width, PAR_MIN_CHEAP, vocab)
        cdef cnp.ndarray ra = self.rows[0], oa = self.rows[1], sa = self.rows[2]
        # One summed-gradient row per thread, each on cache lines of its own: threads writing
        # the same line (rows packed back to back) ran the step 2.3x slower than one thread.
        cdef Py_ssize_t line = 64 // cnp.PyArray_ITEMSIZE(self.w)
        cdef Py_ssize_t stride = (width + line - 1) // line * line
        cdef cnp.ndarray scratch = np.empty(max(nt, 1) * stride + line, dtype=(<object>self.w).dtype)
        cdef size_t misalign = (<size_t>_data(scratch)) % 64
        cdef Py_ssize_t skew = <Py_ssize_t>((64 - misalign) % 64) // cnp.PyArray_ITEMSIZE(self.w)
        cdef void* wp = _data(self.w)
        cdef void* rp = _data(ra)
        cdef char* sp = <char*>_data(scratch) + skew * cnp.PyArray_ITEMSIZE(self.w)
        cdef const int64_t* op = <const int64_t*>_data(oa)
        cdef const int64_t* stp = <const int64_t*>_data(sa)
        if _is_f32(self.w):
            with nogil:
                _opt_rows_run(st, <float*>wp, <const float*>rp, op, stp, <float*>sp, stride, vocab, width, nt)
        else:
            with nogil:
                _opt_rows_run(st, <double*>wp, <const double*>rp, op, stp, <double*>sp, stride, vocab, width, nt)
        return None


cdef OptStep _new_step(int kind):
    cdef OptStep st
    st.kind = kind
    st.g = st.s1 = st.s2 = st.s3 = NULL
    st.lr = st.a = st.b = st.eps = 0.0
    st.flag = False
    return st


def sgd_update(w, g, double lr):
    """w -= lr * g."""
    cdef _OptArgs args = _OptArgs("sgd_update", w)
    cdef OptStep st = _new_step(OPT_SGD)
    st.g = args.grad(g)
    st.lr = lr
    args.run(&st)
    return w


def sgd_momentum_update(w, g, m, double lr, double momentum, bint nesterov):
    """m = momentum * m - lr * g; w += momentum * m - lr * g if nesterov else m."""
    cdef _OptArgs args = _OptArgs("sgd_momentum_update", w)
    cdef OptStep st = _new_step(OPT_MOMENTUM)
    st.g = args.grad(g)
    st.s1 = args.slot("m", m)
    st.lr = lr
    st.a = momentum
    st.flag = nesterov
    args.run(&st)
    return w


def rmsprop_update(w, g, velocity, double lr, double rho, double epsilon, double momentum,
                   mom, bint centered, avg_grad):
    """Keras 3 RMSprop step; `mom` is used when momentum > 0, `avg_grad` when centered."""
    cdef str fn = "rmsprop_update"
    cdef _OptArgs args = _OptArgs(fn, w)
    cdef OptStep st = _new_step(OPT_RMSPROP)
    st.g = args.grad(g)
    st.s1 = args.slot("velocity", velocity)
    if momentum > 0:
        if mom is None:
            raise ValueError(f"{fn}: momentum={momentum} > 0 needs a `mom` buffer, got None")
        st.s2 = args.slot("mom", mom)
    if centered:
        if avg_grad is None:
            raise ValueError(f"{fn}: centered=True needs an `avg_grad` buffer, got None")
        st.s3 = args.slot("avg_grad", avg_grad)
    st.lr = lr
    st.a = rho
    st.b = momentum
    st.eps = epsilon
    args.run(&st)
    return w


def adam_update(w, g, m, v, double alpha, double beta_1, double beta_2, double epsilon,
                vhat=None):
    """Keras 3 Adam step with the bias correction folded into alpha; AMSGrad when vhat is given."""
    cdef _OptArgs args = _OptArgs("adam_update", w)
    cdef OptStep st = _new_step(OPT_ADAM)
    st.g = args.grad(g)
    st.s1 = args.slot("m", m)
    st.s2 = args.slot("v", v)
    if vhat is not None:
        st.s3 = args.slot("vhat", vhat)
    st.lr = alpha
    st.a = beta_1
    st.b = beta_2
    st.eps = epsilon
    args.run(&st)
    return w


def adagrad_update(w, g, acc, double lr, double epsilon):
    """acc += g^2; w -= lr * g / sqrt(acc + epsilon)."""
    cdef _OptArgs args = _OptArgs("adagrad_update", w)
    cdef OptStep st = _new_step(OPT_ADAGRAD)
    st.g = args.grad(g)
    st.s1 = args.slot("acc", acc)
    st.lr = lr
    st.eps = epsilon
    args.run(&st)
    return w


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

cdef void _dropout_span(const floating* x, const uint8_t* mask, floating scale, floating* out,
                        Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating zero = 0
    for i in range(lo, hi):
        # A select, not x * (mask * scale): dropped NaN/inf inputs must give 0.
        out[i] = x[i] * scale if mask[i] != 0 else zero


cdef void _dropout_run(const floating* x, const uint8_t* mask, double scale, floating* out,
                       Py_ssize_t n, int nt) noexcept nogil:
    cdef Py_ssize_t span, lo, hi
    cdef int t
    cdef floating s = <floating>scale
    if nt <= 1:
        _dropout_span(x, mask, s, out, 0, n)
        return
    span = _span_len(n, nt, SPAN_ALIGN * 4)
    for t in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        lo = t * span
        hi = lo + span
        if hi > n:
            hi = n
        if lo < hi:
            _dropout_span(x, mask, s, out, lo, hi)


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
    cdef int nt = _team_size(n, PAR_MIN_CHEAP, n // (SPAN_ALIGN * 4))
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
