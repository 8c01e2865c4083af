# Whole-sequence LSTM / GRU / SimpleRNN kernels with Keras 3 semantics.
#
# One call runs the whole sequence: the input projection of every step is one
# GEMM, then each OpenMP thread walks the time loop for its own slab of batch
# rows (rows never interact, so steps need no barrier), doing a small GEMM
# h_{t-1} U and fused gate math per step (csrc/recurrent_impl.h).  The
# backward stores dZ for all steps so dx and the weight gradients are again
# GEMMs over all of a slab's steps, run by the slab's thread (see _SlabGrads).
#
# The cache returned by a forward keeps references to x, the weights, h0/c0,
# the masks and the returned h_seq: callers must not modify them in place
# before the matching backward.
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

cdef extern from "fpmode.h" nogil:
    unsigned int engine_ftz_enter()
    void engine_ftz_leave(unsigned int mode)

cdef extern from "recurrent_math.h" nogil:
    ctypedef struct rnn_args:
        Py_ssize_t B, T, u
        int backwards, act, ract, reset_after
        const unsigned char *mask
        const void *rec_mask
        const void *U
        const void *UT
        const void *bias
        const void *h0
        const void *c0
        void *Z
        void *R
        void *RH
        void *Hm
        void *C
        void *TC
        void *hseq
        const void *d_hseq
        const void *d_h_last
        const void *d_c_last
        void *dZ
        void *dZr
        void *dh
        void *dc
        void *tmp
        void *tmp2
        void *db_part
        void *db2_part

    void rnn_lstm_forward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_lstm_forward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_lstm_backward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)
    void rnn_lstm_backward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)
    void rnn_gru_forward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_gru_forward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_gru_backward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)
    void rnn_gru_backward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)
    void rnn_simple_forward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_simple_forward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1)
    void rnn_simple_backward_f(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)
    void rnn_simple_backward_d(const rnn_args *a, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t k)

from kernel_common cimport engine_team_size, engine_runtime_import
from gemm_api cimport (engine_sgemm, engine_dgemm, engine_sgemm_pair, engine_dgemm_pair,
                       engine_gemm_api_import)
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)
engine_gemm_api_import()


ctypedef void (*fwd_fn)(const rnn_args *, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*bwd_fn)(const rnn_args *, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil

# Below this many gate elements per call a thread team costs more than it saves.
cdef Py_ssize_t _PARALLEL_MIN_WORK = 32768
# Fewer rows per thread than this make the per-step GEMMs too thin to pay off.
cdef Py_ssize_t _MIN_ROWS_PER_SLAB = 4

_ACTIVATIONS = {None: 0, "linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "hard_sigmoid": 4}

_LSTM = "lstm"
_GRU = "gru"
_SIMPLE = "simple_rnn"


# ---------------------------------------------------------------- validation

cdef int _activation_code(str fn, str which, object name) except -1:
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"{fn}: unsupported {which} {name!r}; expected one of "
                         f"'tanh', 'sigmoid', 'relu', 'linear', 'hard_sigmoid' or None")


cdef object _float_array(str fn, str name, object a, int ndim, object dtype):
    """Check a float input: ndarray, float32/float64 (matching dtype if given), ndim, C order."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{fn}: {name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        raise ValueError(f"{fn}: {name} must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{fn}: {name} has dtype {a.dtype} but x has dtype {dtype}; "
                         f"all float arrays must share one dtype")
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} must be C-contiguous (shape {a.shape}, strides {a.strides})")
    return a


cdef void _expect_shape(str fn, str name, object a, tuple shape) except *:
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {a.shape}")


cdef object _step_mask(str fn, object mask, Py_ssize_t B, Py_ssize_t T):
    """(B, T) mask as a C-contiguous uint8 array (nonzero = run the step), or None."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"{fn}: mask must be a numpy array or None, got {type(mask).__name__}")
    if mask.shape != (B, T):
        raise ValueError(f"{fn}: mask must have shape (batch, timesteps) = {(B, T)}, got {mask.shape}")
    if mask.dtype == np.bool_ or mask.dtype == np.uint8 or mask.dtype == np.int8:
        return np.ascontiguousarray(mask).view(np.uint8)
    if mask.dtype.kind in "iuf":
        return np.ascontiguousarray(mask != 0).view(np.uint8)
    raise ValueError(f"{fn}: mask must be bool or numeric, got dtype {mask.dtype}")


cdef object _optional_float(str fn, str name, object a, tuple shape, object dtype):
    if a is None:
        return None
    _float_array(fn, name, a, len(shape), dtype)
    _expect_shape(fn, name, a, shape)
    return a


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef Py_ssize_t _num_slabs(Py_ssize_t B, Py_ssize_t work):
    cdef Py_ssize_t n = engine_team_size(work, _PARALLEL_MIN_WORK, work)
    if n > B // _MIN_ROWS_PER_SLAB:
        n = B // _MIN_ROWS_PER_SLAB
    return n if n >= 1 else 1


# Both run with denormals flushed to zero in every thread (see fpmode.h).
cdef void _run_forward(fwd_fn f, rnn_args *a, Py_ssize_t nslab) noexcept nogil:
    cdef Py_ssize_t k, B = a.B
    cdef unsigned int mode
    if nslab <= 1:
        mode = engine_ftz_enter()
        f(a, 0, B)
        engine_ftz_leave(mode)
        return
    for k in prange(nslab, num_threads=nslab, schedule="static"):
        mode = engine_ftz_enter()
        f(a, k * B // nslab, (k + 1) * B // nslab)
        engine_ftz_leave(mode)


# The backward's products over all steps run per slab, in the thread that ran the slab's time
# loop, right after it, while the slab's dZ is still in that core's caches: dx = dZ W^T for the
# slab's rows, and the weight gradients x^T dZ and h^T dZ (sums over every row and step) into a
# partial per slab, added after.  One GEMM over all rows made each thread read every row, half
# of them written by the other core: 2.3 ms where the per-slab products take ~1.0 (LSTM
# 128x100x64->32 weight gradients).
cdef struct _WGrad:
    void *A             # (B*T, lda) rows in batch-major order: x, Hm or RH
    Py_ssize_t lda
    void *B             # (B*T, ldb): dZ or dZr, from column b_off
    Py_ssize_t ldb, b_off
    Py_ssize_t m, n     # the product is (m, n) = A[:, :m]^T B[:, b_off:b_off+n]
    Py_ssize_t c_off    # where it goes in a slab's partial, row stride ldc
    Py_ssize_t ldc

cdef struct _SlabGrads:
    int count, dbl
    Py_ssize_t T, part_size
    void *parts         # (nslab, part_size)
    _WGrad job[3]
    # dx = dZx W^T for the slab's rows as well (dx NULL when not wanted)
    void *dx
    const void *dZx
    const void *WT      # (G, D)
    Py_ssize_t D, G


cdef void _slab_products(const _SlabGrads *w, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t slab) noexcept nogil:
    cdef Py_ssize_t j, r0 = b0 * w.T, k = (b1 - b0) * w.T
    cdef const _WGrad *g
    if w.dx != NULL:
        if w.dbl:
            engine_dgemm(0, 0, k, w.D, w.G, 1.0, <const double *>w.dZx + r0 * w.G, w.G,
                         <const double *>w.WT, w.D, 0.0, <double *>w.dx + r0 * w.D, w.D)
        else:
            engine_sgemm(0, 0, k, w.D, w.G, 1.0, <const float *>w.dZx + r0 * w.G, w.G,
                         <const float *>w.WT, w.D, 0.0, <float *>w.dx + r0 * w.D, w.D)
    cdef const _WGrad *h
    if w.count == 2 and w.job[0].B == w.job[1].B and w.job[0].ldb == w.job[1].ldb \
            and w.job[0].b_off == w.job[1].b_off and w.job[0].n == w.job[1].n:
        # x^T dZ and h^T dZ (LSTM, SimpleRNN): one pass over dZ packs it for both products.
        g = &w.job[0]
        h = &w.job[1]
        if w.dbl:
            engine_dgemm_pair(1, 0, g.m, h.m, g.n, k, 1.0, <const double *>g.A + r0 * g.lda, g.lda,
                              <const double *>h.A + r0 * h.lda, h.lda,
                              <const double *>g.B + r0 * g.ldb + g.b_off, g.ldb, 0.0,
                              <double *>w.parts + slab * w.part_size + g.c_off, g.ldc,
                              <double *>w.parts + slab * w.part_size + h.c_off, h.ldc)
        else:
            engine_sgemm_pair(1, 0, g.m, h.m, g.n, k, 1.0, <const float *>g.A + r0 * g.lda, g.lda,
                              <const float *>h.A + r0 * h.lda, h.lda,
                              <const float *>g.B + r0 * g.ldb + g.b_off, g.ldb, 0.0,
                              <float *>w.parts + slab * w.part_size + g.c_off, g.ldc,
                              <float *>w.parts + slab * w.part_size + h.c_off, h.ldc)
        return
    for j in range(w.count):
        g = &w.job[j]
        if w.dbl:
            engine_dgemm(1, 0, g.m, g.n, k, 1.0, <const double *>g.A + r0 * g.lda, g.lda,
                         <const double *>g.B + r0 * g.ldb + g.b_off, g.ldb, 0.0,
                         <double *>w.parts + slab * w.part_size + g.c_off, g.ldc)
        else:
            engine_sgemm(1, 0, g.m, g.n, k, 1.0, <const float *>g.A + r0 * g.lda, g.lda,
                         <const float *>g.B + r0 * g.ldb + g.b_off, g.ldb, 0.0,
                         <float *>w.parts + slab * w.part_size + g.c_off, g.ldc)


cdef void _run_backward(bwd_fn f, rnn_args *a, Py_ssize_t nslab, const _SlabGrads *w) noexcept nogil:
    cdef Py_ssize_t k, B = a.B
    cdef unsigned int mode
    if nslab <= 1:
        mode = engine_ftz_enter()
        f(a, 0, B, 0)
        engine_ftz_leave(mode)
        _slab_products(w, 0, B, 0)
        return
    for k in prange(nslab, num_threads=nslab, schedule="static"):
        mode = engine_ftz_enter()
        f(a, k * B // nslab, (k + 1) * B // nslab, k)
        engine_ftz_leave(mode)
        _slab_products(w, k * B // nslab, (k + 1) * B // nslab, k)


cdef void _gemm(bint dbl, int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                object A, Py_ssize_t a_off, Py_ssize_t lda,
                object Bm, Py_ssize_t b_off, Py_ssize_t ldb,
                double beta, object C, Py_ssize_t c_off, Py_ssize_t ldc):
    """GEMM on numpy arrays with element offsets, without the GIL."""
    cdef void *pa = _ptr(A)
    cdef void *pb = _ptr(Bm)
    cdef void *pc = _ptr(C)
    with nogil:
        if dbl:
            engine_dgemm(ta, tb, m, n, k, 1.0, <const double *>pa + a_off, lda,
                         <const double *>pb + b_off, ldb, beta, <double *>pc + c_off, ldc)
        else:
            engine_sgemm(ta, tb, m, n, k, 1.0, <const float *>pa + a_off, lda,
                         <const float *>pb + b_off, ldb, <float>beta, <float *>pc + c_off, ldc)


cdef tuple _check_common(str fn, object x, object kernel, object recurrent_kernel, int gates):
    """Validate x (B,T,D), kernel (D, g*u), recurrent_kernel (u, g*u); return (B, T, D, u)."""
    _float_array(fn, "x", x, 3, None)
    dtype = x.dtype
    _float_array(fn, "kernel", kernel, 2, dtype)
    _float_array(fn, "recurrent_kernel", recurrent_kernel, 2, dtype)
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], D = x.shape[2]
    if B < 1 or T < 1 or D < 1:
        raise ValueError(f"{fn}: x must have nonzero batch, timesteps and features, got shape {x.shape}")
    if kernel.shape[0] != D or kernel.shape[1] % gates != 0 or kernel.shape[1] == 0:
        raise ValueError(f"{fn}: kernel must have shape (features, {gates}*units) with features = "
                         f"{D} from x {x.shape}, got {kernel.shape}")
    cdef Py_ssize_t u = kernel.shape[1] // gates
    if recurrent_kernel.shape != (u, gates * u):
        raise ValueError(f"{fn}: recurrent_kernel must have shape {(u, gates * u)} to match kernel "
                         f"{kernel.shape}, got {recurrent_kernel.shape}")
    return B, T, D, u


cdef object _forward_cache(str fn, object cache, str kind):
    """The cache of a forward call, every size in it checked against its arrays.

    The cache is a dict the caller can reach and change; the backward kernels index its arrays
    with its B, T, D and u, so each array is checked here (type, dtype, C order, exact shape)
    before anything runs without the GIL: a changed dict is a ValueError, never a read outside
    a buffer."""
    if not isinstance(cache, dict) or cache.get("kind") != kind:
        raise ValueError(f"{fn}: cache must be the cache returned by the matching forward call")
    _check_cache(fn, cache, kind)
    return cache


cdef Py_ssize_t _cache_size(str fn, dict c, str key) except -1:
    v = c.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{fn}: cache[{key!r}] must be a positive int, got {v!r}")
    return v


cdef void _cache_array(str fn, dict c, str key, tuple shape, object dtype, bint optional) except *:
    a = c.get(key)
    if a is None and optional:
        return
    if a is None:
        raise ValueError(f"{fn}: cache[{key!r}] is missing")
    _float_array(fn, f"cache[{key!r}]", a, len(shape), dtype)
    _expect_shape(fn, f"cache[{key!r}]", a, shape)


cdef void _check_cache(str fn, dict c, str kind) except *:
    cdef int gates = 4 if kind == _LSTM else 3 if kind == _GRU else 1
    cdef Py_ssize_t B = _cache_size(fn, c, "B"), T = _cache_size(fn, c, "T")
    cdef Py_ssize_t D = _cache_size(fn, c, "D"), u = _cache_size(fn, c, "u")
    cdef Py_ssize_t G = _cache_size(fn, c, "G")
    if G != gates * u:
        raise ValueError(f"{fn}: cache['G'] = {G} must be {gates} * cache['u'] = {gates * u}")
    dtype = c.get("dtype")
    if dtype is None or np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"{fn}: cache['dtype'] must be float32 or float64, got {dtype!r}")
    dtype = np.dtype(dtype)
    if c.get("act") not in _ACTIVATIONS.values() or c.get("ract") not in _ACTIVATIONS.values():
        raise ValueError(f"{fn}: cache['act'] and cache['ract'] must be activation codes")
    _cache_array(fn, c, "x", (B, T, D), dtype, False)
    _cache_array(fn, c, "kernel", (D, G), dtype, False)
    _cache_array(fn, c, "recurrent_kernel", (u, G), dtype, False)
    reset_after = bool(c.get("reset_after", True))
    cdef tuple bias_shape = (G,)
    if kind == _GRU and reset_after:
        bias_shape = (2, G)
    _cache_array(fn, c, "bias", bias_shape, dtype, True)
    _cache_array(fn, c, "h0", (B, u), dtype, False)
    _cache_array(fn, c, "rec_mask", (B, u), dtype, True)
    _cache_array(fn, c, "Z", (B, T, G), dtype, False)
    _cache_array(fn, c, "Hm", (B, T, u), dtype, False)
    _cache_array(fn, c, "h_seq", (B, T, u), dtype, False)
    if kind == _LSTM:
        for key in ("C", "TC"):
            _cache_array(fn, c, key, (B, T, u), dtype, False)
        _cache_array(fn, c, "c0", (B, u), dtype, False)
    if kind == _GRU:
        _cache_array(fn, c, "R", (B, T, G), dtype, False)
        if reset_after:
            if c.get("RH") is not None:
                raise ValueError(f"{fn}: cache['RH'] must be None when reset_after")
        else:
            _cache_array(fn, c, "RH", (B, T, u), dtype, False)
    mask = c.get("mask")
    if mask is not None and (not isinstance(mask, np.ndarray) or mask.dtype != np.uint8
                             or mask.shape != (B, T) or not mask.flags.c_contiguous):
        raise ValueError(f"{fn}: cache['mask'] must be None or a C-contiguous uint8 array of shape "
                         f"{(B, T)}")


cdef void _fill_common(rnn_args *a, dict c):
    a.B = c["B"]; a.T = c["T"]; a.u = c["u"]
    a.backwards = c["go_backwards"]; a.act = c["act"]; a.ract = c["ract"]
    a.reset_after = c.get("reset_after", 1)
    a.mask = <const unsigned char *>_ptr(c["mask"])
    a.rec_mask = _ptr(c["rec_mask"])
    a.U = _ptr(c["recurrent_kernel"])
    a.bias = _ptr(c["bias"])
    a.h0 = _ptr(c["h0"])
    a.c0 = _ptr(c.get("c0"))
    a.Z = _ptr(c["Z"]); a.R = _ptr(c.get("R")); a.RH = _ptr(c.get("RH"))
    a.Hm = _ptr(c["Hm"]); a.C = _ptr(c.get("C")); a.TC = _ptr(c.get("TC"))
    a.hseq = _ptr(c["h_seq"])


cdef dict _forward_setup(str fn, str kind, int gates, object x, object kernel, object recurrent_kernel,
                         object bias, tuple bias_shape, object h0, object c0, object mask,
                         object rec_mask, object go_backwards, object activation,
                         object recurrent_activation):
    cdef Py_ssize_t B, T, D, u
    B, T, D, u = _check_common(fn, x, kernel, recurrent_kernel, gates)
    dtype = x.dtype
    if bias is not None:
        _float_array(fn, "bias", bias, len(bias_shape), dtype)
        _expect_shape(fn, "bias", bias, bias_shape)
    _float_array(fn, "h0", h0, 2, dtype)
    _expect_shape(fn, "h0", h0, (B, u))
    if kind == _LSTM:
        _float_array(fn, "c0", c0, 2, dtype)
        _expect_shape(fn, "c0", c0, (B, u))
    rec_mask = _optional_float(fn, "rec_mask", rec_mask, (B, u), dtype)
    cdef dict c = dict(
        kind=kind, B=B, T=T, D=D, u=u, G=gates * u, dtype=dtype, x=x, kernel=kernel,
        recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0,
        mask=_step_mask(fn, mask, B, T), rec_mask=rec_mask, go_backwards=bool(go_backwards),
        act=_activation_code(fn, "activation", activation),
        ract=_activation_code(fn, "recurrent_activation", recurrent_activation),
    )
    # input projection of every step at once: Z = x W (bias is added in the gate math)
    Z = np.empty((B, T, gates * u), dtype=dtype)
    _gemm(dtype == np.float64, 0, 0, B * T, gates * u, D, x, 0, D, kernel, 0, gates * u,
          0.0, Z, 0, gates * u)
    c["Z"] = Z
    c["Hm"] = np.empty((B, T, u), dtype=dtype)
    c["h_seq"] = np.empty((B, T, u), dtype=dtype)
    return c


cdef tuple _backward_setup(str fn, dict c, object d_h_seq, object d_h_last, object d_c_last):
    cdef Py_ssize_t B = c["B"], T = c["T"], u = c["u"]
    dtype = c["dtype"]
    d_h_seq = _optional_float(fn, "d_h_seq", d_h_seq, (B, T, u), dtype)
    d_h_last = _optional_float(fn, "d_h_last", d_h_last, (B, u), dtype)
    d_c_last = _optional_float(fn, "d_c_last", d_c_last, (B, u), dtype)
    return d_h_seq, d_h_last, d_c_last


cdef void _add_wgrad(_SlabGrads *w, object A, Py_ssize_t lda, object Bm, Py_ssize_t ldb, Py_ssize_t b_off,
                     Py_ssize_t m, Py_ssize_t n, Py_ssize_t c_off, Py_ssize_t ldc):
    cdef _WGrad *g = &w.job[w.count]
    g.A = _ptr(A); g.lda = lda; g.B = _ptr(Bm); g.ldb = ldb; g.b_off = b_off
    g.m = m; g.n = n; g.c_off = c_off; g.ldc = ldc
    w.count += 1


cdef object _plan_slab_grads(_SlabGrads *w, dict c, object dZx, object dZr, Py_ssize_t nslab,
                             bint input_grad, bint weight_grads):
    """Fill w with the products each slab runs after its time loop: dx = dZx W^T over its rows
    (into c["dx"]) when input_grad, and when weight_grads d_kernel = x^T dZx and
    d_recurrent_kernel = Hm^T dZr (GRU without reset_after: Hm^T dZx for z, r and RH^T dZx for
    h).  Returns (dx or None, the slabs' partials of the weight gradients or None, W^T or None:
    the buffers w points into, to keep alive until the kernel has run)."""
    cdef Py_ssize_t D = c["D"], u = c["u"], G = c["G"]
    dtype = c["dtype"]
    w.count = 0
    w.dbl = dtype == np.float64
    w.T = c["T"]
    w.D = D
    w.G = G
    w.part_size = D * G + u * G
    w.parts = NULL
    w.dx = NULL
    dx = parts = WT = None
    if input_grad:
        # W^T copied once so the GEMM streams it without a strided transpose access
        WT = np.ascontiguousarray(c["kernel"].T)
        dx = np.empty((c["B"], c["T"], D), dtype=dtype)
        w.dx = _ptr(dx); w.dZx = _ptr(dZx); w.WT = _ptr(WT)
    if not weight_grads:
        return dx, parts, WT
    parts = np.empty((nslab, w.part_size), dtype=dtype)
    w.parts = _ptr(parts)
    _add_wgrad(w, c["x"], D, dZx, G, 0, D, G, 0, G)
    if c["kind"] == _GRU and not c["reset_after"]:
        _add_wgrad(w, c["Hm"], u, dZx, G, 0, u, 2 * u, D * G, G)
        _add_wgrad(w, c["RH"], u, dZx, G, 2 * u, u, u, D * G + 2 * u, G)
    else:
        _add_wgrad(w, c["Hm"], u, dZr, G, 0, u, G, D * G, G)
    return dx, parts, WT


cdef tuple _weight_grads(dict c, object parts):
    """(d_kernel, d_recurrent_kernel): the sum of the slabs' partials, or (None, None)."""
    cdef Py_ssize_t D = c["D"], u = c["u"], G = c["G"]
    if parts is None:
        return None, None
    total = parts[0] if parts.shape[0] == 1 else parts.sum(axis=0)
    return total[:D * G].reshape(D, G), total[D * G:].reshape(u, G)


cdef object _new_backward_buffers(rnn_args *a, dict c, Py_ssize_t nslab, int gates):
    cdef Py_ssize_t B = c["B"], T = c["T"], u = c["u"]
    dtype = c["dtype"]
    bufs = dict(
        dZ=np.empty((B, T, gates * u), dtype=dtype),
        dh=np.empty((B, u), dtype=dtype),
        tmp=np.empty((B, u), dtype=dtype),
        db_part=np.empty((nslab, gates * u), dtype=dtype) if c["bias"] is not None else None,
    )
    a.dZ = _ptr(bufs["dZ"]); a.dh = _ptr(bufs["dh"]); a.tmp = _ptr(bufs["tmp"])
    a.db_part = _ptr(bufs["db_part"])
    a.UT = NULL; a.dc = NULL; a.dZr = NULL; a.tmp2 = NULL; a.db2_part = NULL
    return bufs


# ---------------------------------------------------------------- LSTM

def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask=None, rec_mask=None,
                 go_backwards=False, activation="tanh", recurrent_activation="sigmoid"):
    """Keras 3 LSTM over a whole sequence (gate order i, f, c, o).

    x (B,T,D), kernel (D,4u), recurrent_kernel (u,4u), bias (4u,) or None,
    h0/c0 (B,u), mask (B,T) or None, rec_mask (B,u) multiplier on h_{t-1} or None.
    Returns (h_seq (B,T,u) in processing order, h_last, c_last, cache).
    """
    fn = "lstm_forward"
    cdef Py_ssize_t B, T, u
    cdef dict c
    if bias is not None and isinstance(kernel, np.ndarray) and kernel.ndim == 2:
        bias_shape = (kernel.shape[1],)
    else:
        bias_shape = (0,)
    c = _forward_setup(fn, _LSTM, 4, x, kernel, recurrent_kernel, bias, bias_shape, h0, c0, mask,
                       rec_mask, go_backwards, activation, recurrent_activation)
    B = c["B"]; T = c["T"]; u = c["u"]
    c["C"] = np.empty((B, T, u), dtype=c["dtype"])
    c["TC"] = np.empty((B, T, u), dtype=c["dtype"])
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * T * 4 * u)
    cdef fwd_fn f = rnn_lstm_forward_d if c["dtype"] == np.float64 else rnn_lstm_forward_f
    with nogil:
        _run_forward(f, &a, nslab)
    h_seq = c["h_seq"]
    t_last = 0 if c["go_backwards"] else T - 1
    return h_seq, h_seq[:, T - 1].copy(), c["C"][:, t_last].copy(), c


def lstm_backward(cache, d_h_seq=None, d_h_last=None, d_c_last=None, input_grad=True, weight_grads=True):
    """Gradients of an lstm_forward call (dx None unless input_grad; kernel, recurrent kernel and
    bias gradients None unless weight_grads).

    Returns (dx, d_kernel, d_recurrent_kernel, d_bias or None, d_h0, d_c0).
    """
    fn = "lstm_backward"
    cdef dict c = _forward_cache(fn, cache, _LSTM)
    d_h_seq, d_h_last, d_c_last = _backward_setup(fn, c, d_h_seq, d_h_last, d_c_last)
    cdef Py_ssize_t B = c["B"], u = c["u"]
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * c["T"] * 4 * u)
    bufs = _new_backward_buffers(&a, c, nslab, 4)
    UT = np.ascontiguousarray(c["recurrent_kernel"].T)
    dc = np.empty((B, u), dtype=c["dtype"])
    a.UT = _ptr(UT); a.dc = _ptr(dc)
    a.d_hseq = _ptr(d_h_seq); a.d_h_last = _ptr(d_h_last); a.d_c_last = _ptr(d_c_last)
    cdef bwd_fn f = rnn_lstm_backward_d if c["dtype"] == np.float64 else rnn_lstm_backward_f
    cdef _SlabGrads w
    dZ = bufs["dZ"]
    dx, parts, WT = _plan_slab_grads(&w, c, dZ, dZ, nslab, input_grad, weight_grads)
    with nogil:
        _run_backward(f, &a, nslab, &w)
    dW, dU = _weight_grads(c, parts)
    db = None if bufs["db_part"] is None or not weight_grads else bufs["db_part"].sum(axis=0)
    return dx, dW, dU, db, bufs["dh"], dc


# ---------------------------------------------------------------- GRU

def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None,
                go_backwards=False, activation="tanh", recurrent_activation="sigmoid",
                reset_after=True):
    """Keras 3 GRU over a whole sequence (gate order z, r, h).

    bias: (2, 3u) [input row, recurrent row] when reset_after, (3u,) otherwise, or None.
    Returns (h_seq (B,T,u) in processing order, h_last, cache).
    """
    fn = "gru_forward"
    cdef Py_ssize_t B, T, u
    cdef dict c
    ncol = kernel.shape[1] if isinstance(kernel, np.ndarray) and kernel.ndim == 2 else 0
    bias_shape = (2, ncol) if reset_after else (ncol,)
    c = _forward_setup(fn, _GRU, 3, x, kernel, recurrent_kernel, bias, bias_shape, h0, None, mask,
                       rec_mask, go_backwards, activation, recurrent_activation)
    B = c["B"]; T = c["T"]; u = c["u"]
    c["reset_after"] = bool(reset_after)
    c["R"] = np.empty((B, T, 3 * u), dtype=c["dtype"])
    c["RH"] = None if reset_after else np.empty((B, T, u), dtype=c["dtype"])
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * T * 3 * u)
    cdef fwd_fn f = rnn_gru_forward_d if c["dtype"] == np.float64 else rnn_gru_forward_f
    with nogil:
        _run_forward(f, &a, nslab)
    h_seq = c["h_seq"]
    return h_seq, h_seq[:, T - 1].copy(), c


def gru_backward(cache, d_h_seq=None, d_h_last=None, input_grad=True, weight_grads=True):
    """Gradients of a gru_forward call (input_grad / weight_grads as in lstm_backward).

    Returns (dx, d_kernel, d_recurrent_kernel, d_bias or None, d_h0); d_bias has the
    forward bias's shape.
    """
    fn = "gru_backward"
    cdef dict c = _forward_cache(fn, cache, _GRU)
    d_h_seq, d_h_last, _ = _backward_setup(fn, c, d_h_seq, d_h_last, None)
    cdef Py_ssize_t B = c["B"], u = c["u"]
    cdef bint after = c["reset_after"]
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * c["T"] * 3 * u)
    bufs = _new_backward_buffers(&a, c, nslab, 3)
    dtype = c["dtype"]
    UT = np.ascontiguousarray(c["recurrent_kernel"].T)
    dZr = np.empty_like(bufs["dZ"]) if after else None
    tmp2 = None if after else np.empty((B, u), dtype=dtype)
    db2_part = np.empty_like(bufs["db_part"]) if (after and bufs["db_part"] is not None) else None
    a.UT = _ptr(UT); a.dZr = _ptr(dZr); a.tmp2 = _ptr(tmp2); a.db2_part = _ptr(db2_part)
    a.d_hseq = _ptr(d_h_seq); a.d_h_last = _ptr(d_h_last); a.d_c_last = NULL
    cdef bwd_fn f = rnn_gru_backward_d if dtype == np.float64 else rnn_gru_backward_f
    cdef _SlabGrads w
    dZ = bufs["dZ"]
    dx, parts, WT = _plan_slab_grads(&w, c, dZ, dZr if after else dZ, nslab, input_grad, weight_grads)
    with nogil:
        _run_backward(f, &a, nslab, &w)
    dW, dU = _weight_grads(c, parts)
    db = None
    if bufs["db_part"] is not None and weight_grads:
        db = bufs["db_part"].sum(axis=0)
        if after:
            db = np.stack([db, db2_part.sum(axis=0)])
    return dx, dW, dU, db, bufs["dh"]


# ---------------------------------------------------------------- SimpleRNN

def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None,
                       go_backwards=False, activation="tanh"):
    """Keras 3 SimpleRNN over a whole sequence: h_t = act(x_t W + h_{t-1} U + b).

    Returns (h_seq (B,T,u) in processing order, h_last, cache).
    """
    fn = "simple_rnn_forward"
    cdef Py_ssize_t B, T, u
    cdef dict c
    ncol = kernel.shape[1] if isinstance(kernel, np.ndarray) and kernel.ndim == 2 else 0
    c = _forward_setup(fn, _SIMPLE, 1, x, kernel, recurrent_kernel, bias, (ncol,), h0, None, mask,
                       rec_mask, go_backwards, activation, "linear")
    B = c["B"]; T = c["T"]; u = c["u"]
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * T * u)
    cdef fwd_fn f = rnn_simple_forward_d if c["dtype"] == np.float64 else rnn_simple_forward_f
    with nogil:
        _run_forward(f, &a, nslab)
    h_seq = c["h_seq"]
    return h_seq, h_seq[:, T - 1].copy(), c


def simple_rnn_backward(cache, d_h_seq=None, d_h_last=None, input_grad=True, weight_grads=True):
    """Gradients of a simple_rnn_forward call: (dx, d_kernel, d_recurrent_kernel, d_bias or None, d_h0)."""
    fn = "simple_rnn_backward"
    cdef dict c = _forward_cache(fn, cache, _SIMPLE)
    d_h_seq, d_h_last, _ = _backward_setup(fn, c, d_h_seq, d_h_last, None)
    cdef Py_ssize_t B = c["B"], u = c["u"]
    cdef rnn_args a
    _fill_common(&a, c)
    cdef Py_ssize_t nslab = _num_slabs(B, B * c["T"] * u)
    bufs = _new_backward_buffers(&a, c, nslab, 1)
    UT = np.ascontiguousarray(c["recurrent_kernel"].T)
    a.UT = _ptr(UT)
    a.d_hseq = _ptr(d_h_seq); a.d_h_last = _ptr(d_h_last); a.d_c_last = NULL
    cdef bwd_fn f = rnn_simple_backward_d if c["dtype"] == np.float64 else rnn_simple_backward_f
    cdef _SlabGrads w
    dZ = bufs["dZ"]
    dx, parts, WT = _plan_slab_grads(&w, c, dZ, dZ, nslab, input_grad, weight_grads)
    with nogil:
        _run_backward(f, &a, nslab, &w)
    dW, dU = _weight_grads(c, parts)
    db = None if bufs["db_part"] is None or not weight_grads else bufs["db_part"].sum(axis=0)
    return dx, dW, dU, db, bufs["dh"]
