# Optimizer steps, fused and in place (SGD with momentum, RMSprop, Adam, Adagrad), on whole
# variables or on the rows a sparse gradient touches.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t
from row_sums cimport sum_rows, prefetch_rows_of, engine_prefetch_span, ROWS_AHEAD
from ew_common cimport *

cnp.import_array()
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)


# ---------------------------------------------------------------------------
# Optimizer steps, in place.  Float32 variables are updated in float32 with
# the scalars rounded to float32 first, in the operation order of Keras 3, so
# results match Keras within rounding.
# ---------------------------------------------------------------------------

cdef extern from "optimizer_spans.h" nogil:
    # The update rules over a span of a variable, per instruction set (csrc/optimizer_spans.h).
    enum:
        OPT_SGD "ENGINE_OPT_SGD"
        OPT_MOMENTUM "ENGINE_OPT_MOMENTUM"
        OPT_RMSPROP "ENGINE_OPT_RMSPROP"
        OPT_ADAM "ENGINE_OPT_ADAM"
        OPT_ADAGRAD "ENGINE_OPT_ADAGRAD"
    ctypedef struct OptStep "engine_opt_step":
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
    void engine_opt_span_f32(const OptStep* st, float* w, Py_ssize_t lo, Py_ssize_t hi)
    void engine_opt_span_f64(const OptStep* st, double* w, Py_ssize_t lo, Py_ssize_t hi)


cdef inline void _opt_span(const OptStep* st, floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    if floating is float:
        engine_opt_span_f32(st, w, lo, hi)
    else:
        engine_opt_span_f64(st, w, lo, hi)


cdef struct _OptJob:
    const OptStep* st
    void* w


cdef void _opt_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _OptJob* j = <const _OptJob*>job
    _opt_span(j.st, <float*>j.w, lo, hi)


cdef void _opt_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _OptJob* j = <const _OptJob*>job
    _opt_span(j.st, <double*>j.w, lo, hi)


cdef void _opt_run(const OptStep* st, floating* w, Py_ssize_t n, int nt) noexcept nogil:
    cdef _OptJob job
    job.st, job.w = st, w
    if floating is float:
        engine_run_spans(_opt_spans_f, &job, n, nt, SPAN_ALIGN)
    else:
        engine_run_spans(_opt_spans_d, &job, n, nt, SPAN_ALIGN)


cdef enum:
    RUN_ELEMENTS = 2048      # a run's summed gradient rows (per thread): 8 KB of float32, in L1


cdef inline void _decay_row(floating* vr, floating rho, int times, Py_ssize_t width) noexcept nogil:
    """vr = rho * vr, `times` times over, each product rounded: the bits of that many eager steps."""
    cdef int t
    cdef Py_ssize_t j
    for t in range(times):
        for j in range(width):
            vr[j] = rho * vr[j]


cdef inline Py_ssize_t _next_touched(const int64_t* start, Py_ssize_t v, Py_ssize_t hi) noexcept nogil:
    """The first table row at or after v (below hi) with gradient rows, or hi."""
    while v < hi and start[v] == start[v + 1]:
        v += 1
    return v


cdef inline void _prefetch_touched(const OptStep* st, floating* w, const floating* rows, const int64_t* order,
                                   const int64_t* start, Py_ssize_t v, Py_ssize_t width) noexcept nogil:
    """Ask for what the step of touched table row v reads: its gradient rows, its weights and
    velocity rows."""
    cdef long long i
    for i in range(start[v], start[v + 1]):
        engine_prefetch_span(rows + order[i] * width, width * sizeof(floating))
    engine_prefetch_span(w + v * width, width * sizeof(floating))
    engine_prefetch_span(<floating*>st.s1 + v * width, width * sizeof(floating))


cdef void _opt_rows_span(const OptStep* st, floating* w, const floating* rows, const int64_t* order,
                         const int64_t* start, int* pending, floating* run, Py_ssize_t run_rows,
                         Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t vocab, Py_ssize_t width) noexcept nogil:
    """The rows runner's work on table rows [lo, hi), one thread: each run of consecutive rows
    the step must compute (up to run_rows) has its gradient rows summed into `run` back to back,
    then one span call steps the whole run, so the span's per-call cost (its dispatch, the vector
    loop's set-up and tail) is paid per run, not per row.  With `pending` (plain RMSprop only) an
    untouched row's velocity decay is counted there instead of applied, and a touched row's
    counted decays are applied just before its step."""
    cdef Py_ssize_t v = lo, j, k, first
    cdef floating rho = <floating>st.a
    cdef floating* vr
    cdef OptStep step
    cdef bint plain_rmsprop = st.kind == OPT_RMSPROP and st.s2 == NULL and st.s3 == NULL
    cdef bint skip_untouched = st.kind == OPT_SGD or st.kind == OPT_ADAGRAD
    cdef Py_ssize_t ahead = lo, primed
    if pending != NULL:
        # The touched rows are far apart (their w and velocity rows no longer a stream the
        # hardware prefetcher follows): keep ROWS_AHEAD touched rows' reads asked for ahead.
        for primed in range(ROWS_AHEAD):
            ahead = _next_touched(start, ahead, hi)
            if ahead >= hi:
                break
            _prefetch_touched(st, w, rows, order, start, ahead, width)
            ahead += 1
    while v < hi:
        if start[v] == start[v + 1] and (skip_untouched or plain_rmsprop):
            if pending != NULL:
                pending[v] += 1
                v += 1
                continue
            prefetch_rows_of(rows, <const long long*>order, <const long long*>start, v, vocab, width)
            if plain_rmsprop:
                vr = <floating*>st.s1 + v * width
                for j in range(width):
                    vr[j] = rho * vr[j]          # rho * v + (1 - rho) * 0: the same float
            v += 1
            continue
        first = v
        k = 0
        while v < hi and k < run_rows and (start[v] != start[v + 1] or not (skip_untouched or plain_rmsprop)):
            if pending != NULL:
                ahead = _next_touched(start, ahead, hi)
                if ahead < hi:
                    _prefetch_touched(st, w, rows, order, start, ahead, width)
                    ahead += 1
                if pending[v]:
                    _decay_row(<floating*>st.s1 + v * width, rho, pending[v], width)
                    pending[v] = 0
            else:
                prefetch_rows_of(rows, <const long long*>order, <const long long*>start, v, vocab, width)
            sum_rows(run + k * width, rows, <const long long*>order, start[v], start[v + 1], width)
            k += 1
            v += 1
        step = st[0]
        step.g = run
        step.s1 = NULL if st.s1 == NULL else <void*>(<floating*>st.s1 + first * width)
        step.s2 = NULL if st.s2 == NULL else <void*>(<floating*>st.s2 + first * width)
        step.s3 = NULL if st.s3 == NULL else <void*>(<floating*>st.s3 + first * width)
        _opt_span(&step, w + first * width, 0, k * width)


cdef void _opt_rows_run(const OptStep* st, floating* w, const floating* rows, const int64_t* order,
                       const int64_t* start, int* pending, floating* scratch, Py_ssize_t scratch_stride,
                       Py_ssize_t run_rows, Py_ssize_t vocab, Py_ssize_t width, int nt) noexcept nogil:
    """The step of st for a (vocab, width) table whose gradient is zero but on some rows: row v's
    gradient is the sum of rows[order[start[v]:start[v+1]]], in that order (as segment_sum adds
    them).  Rows run the dense step's own span code on their summed or zero gradient, so the
    bits are the dense step's; rows without gradient that the step provably leaves as they are
    (SGD, Adagrad: w - 0, acc + 0) are skipped, and plain RMSprop only decays their velocity (or,
    given `pending`, counts the decay there: see rmsprop_update).  Each of the nt threads takes
    a contiguous part of the table, with its own run buffer (scratch + t * scratch_stride,
    run_rows rows)."""
    cdef Py_ssize_t t, per = (vocab + nt - 1) // nt
    for t in prange(nt, schedule="static", num_threads=nt):
        _opt_rows_span(st, w, rows, order, start, pending, scratch + t * scratch_stride, run_rows, t * per,
                       min(vocab, (t + 1) * per), vocab, width)


cdef class _OptArgs:
    """Checks the arrays of one optimizer call: w and its state buffers are
    written in place and must not share memory; g may alias only exactly."""
    cdef str fn
    cdef cnp.ndarray w
    cdef list state
    cdef list state_names
    cdef tuple rows            # (rows, order, start) when g is given by rows, else None
    cdef cnp.ndarray pending   # int32 deferred-decay counts per table row (plain RMSprop by rows), or None

    def __init__(self, str fn, object w):
        self.fn = fn
        self.w = _float_array(fn, "w", w)
        _check_writable(fn, "w", self.w)
        self.state = [self.w]
        self.state_names = ["w"]
        self.rows = None
        self.pending = None

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
        cdef int nt = engine_team_size(n, PAR_MIN_CHEAP, n // SPAN_ALIGN)
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
        cdef int nt = engine_team_size(vocab * width, PAR_MIN_CHEAP, vocab)
        cdef cnp.ndarray ra = self.rows[0], oa = self.rows[1], sa = self.rows[2]
        # One run buffer of summed-gradient rows per thread, each on cache lines of its own:
        # threads writing the same line (rows packed back to back) ran the step 2.3x slower than
        # one thread.
        cdef Py_ssize_t line = 64 // cnp.PyArray_ITEMSIZE(self.w)
        cdef Py_ssize_t run_rows = max(1, RUN_ELEMENTS // max(width, 1))
        cdef Py_ssize_t stride = (run_rows * width + line - 1) // line * line
        cdef cnp.ndarray scratch = np.empty(max(nt, 1) * stride + line, dtype=(<object>self.w).dtype)
        cdef size_t misalign = (<size_t>_data(scratch)) % 64
        cdef Py_ssize_t skew = <Py_ssize_t>((64 - misalign) % 64) // cnp.PyArray_ITEMSIZE(self.w)
        cdef void* wp = _data(self.w)
        cdef void* rp = _data(ra)
        cdef char* sp = <char*>_data(scratch) + skew * cnp.PyArray_ITEMSIZE(self.w)
        cdef const int64_t* op = <const int64_t*>_data(oa)
        cdef const int64_t* stp = <const int64_t*>_data(sa)
        cdef int* pp = NULL if self.pending is None else <int*>_data(self.pending)
        if _is_f32(self.w):
            with nogil:
                _opt_rows_run(st, <float*>wp, <const float*>rp, op, stp, pp, <float*>sp, stride, run_rows, vocab, width, nt)
        else:
            with nogil:
                _opt_rows_run(st, <double*>wp, <const double*>rp, op, stp, pp, <double*>sp, stride, run_rows, vocab, width, nt)
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
                   mom, bint centered, avg_grad, pending=None):
    """Keras 3 RMSprop step; `mom` is used when momentum > 0, `avg_grad` when centered.

    `pending` (plain RMSprop with a gradient by rows only): an int32 array of one count per table
    row.  A row without gradient then has its velocity decay (rho * v, the whole of its step)
    counted there instead of applied; a row with gradient first gets its counted decays, one
    rounded product each, then its step.  apply_deferred_decay applies what is left.  The bits
    are those of the eager steps; the memory an untouched row's velocity would have streamed
    through each step is not touched."""
    cdef str fn = "rmsprop_update"
    cdef _OptArgs args = _OptArgs(fn, w)
    cdef OptStep st = _new_step(OPT_RMSPROP)
    st.g = args.grad(g)
    st.s1 = args.slot("velocity", velocity)
    if pending is not None:
        if args.rows is None or momentum > 0 or centered:
            raise ValueError(f"{fn}: pending decays need plain RMSprop (momentum=0, centered=False) with a "
                             "gradient by rows")
        args.pending = _pending_counts(fn, pending, cnp.PyArray_DIMS(args.w)[0])
        # the counts are written while w and velocity are, and the gradient's rows read
        for k in range(len(args.state)):
            _disjoint(fn, "pending", args.pending, args.state_names[k], args.state[k])
        for name, a in zip(("rows", "order", "start"), args.rows):
            _disjoint(fn, "pending", args.pending, name, a)
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



cdef cnp.ndarray _pending_counts(str fn, object pending, Py_ssize_t vocab):
    if not (isinstance(pending, np.ndarray) and pending.dtype == np.int32 and pending.ndim == 1
            and pending.flags.c_contiguous and pending.flags.writeable):
        raise ValueError(f"{fn}: pending must be a writable contiguous 1-D int32 array")
    if pending.shape[0] != vocab:
        raise ValueError(f"{fn}: pending has {pending.shape[0]} counts for a table of {vocab} rows")
    if pending.shape[0] and pending.min() < 0:
        raise ValueError(f"{fn}: pending counts must be >= 0")
    return pending


cdef void _apply_pending(floating* vel, int* pending, floating rho, Py_ssize_t vocab, Py_ssize_t width,
                         int nt) noexcept nogil:
    cdef Py_ssize_t v
    for v in prange(vocab, schedule="static", num_threads=nt):
        if pending[v]:
            _decay_row(vel + v * width, rho, pending[v], width)
            pending[v] = 0


def apply_deferred_decay(velocity, pending, double rho):
    """Apply the velocity decays rmsprop_update(pending=...) counted: row v of the (vocab, width)
    `velocity` is multiplied by rho pending[v] times (each product rounded, as the eager steps
    round them); `pending` is zeroed.  Returns velocity."""
    cdef str fn = "apply_deferred_decay"
    cdef cnp.ndarray va = _float_array(fn, "velocity", velocity)
    _check_writable(fn, "velocity", va)
    if cnp.PyArray_NDIM(va) != 2:
        raise ValueError(f"{fn}: velocity must be a 2-D table, got shape {velocity.shape}")
    cdef Py_ssize_t vocab = cnp.PyArray_DIMS(va)[0], width = cnp.PyArray_DIMS(va)[1]
    cdef cnp.ndarray pa = _pending_counts(fn, pending, vocab)
    _disjoint(fn, "pending", pa, "velocity", va)
    cdef int nt = engine_team_size(vocab * width, PAR_MIN_CHEAP, vocab)
    cdef void* vp = _data(va)
    cdef int* pp = <int*>_data(pa)
    if _is_f32(va):
        with nogil:
            _apply_pending(<float*>vp, pp, <float>rho, vocab, width, nt)
    else:
        with nogil:
            _apply_pending(<double*>vp, pp, <double>rho, vocab, width, nt)
    return velocity


# ---------------------------------------------------------------------------
# All of a model's variables in one call.  A training step's update is one
# small kernel call per variable, and for small models the Python around each
# call (argument checks, slot lookups) costs more than the arithmetic.  A
# FusedUpdate checks the variables and their state buffers once, when it is
# made; each call checks only the gradients and runs the same span code as the
# per-variable functions above, one variable after the other, so the bits are
# theirs.
# ---------------------------------------------------------------------------

cdef dict _RULES = {"sgd": OPT_SGD, "momentum": OPT_MOMENTUM, "rmsprop": OPT_RMSPROP,
                    "adam": OPT_ADAM, "adagrad": OPT_ADAGRAD}


cdef class FusedUpdate:
    """One update rule over a fixed list of variables, run for all of them in one call.

    Args:
        rule: "sgd", "momentum", "rmsprop", "adam" or "adagrad" (the kernels above).
        ws: the variables' arrays (float32 or float64, all of one dtype, C-contiguous, writable).
        s1, s2, s3: per variable, its state buffers in the order of the rule's OptStep fields
            (momentum / velocity / m / accumulator; RMSprop's momentum or Adam's v; RMSprop's
            average gradient or Adam's vhat), or None for a list the rule does not use or for
            a variable whose rule leaves that buffer out.
        flag: nesterov (momentum) or centered (rmsprop).

    Calling it with (grads, lr, a, b, eps) updates every variable whose gradient is an array
    (converted to the variable's dtype and made contiguous when it is not); it returns the
    indices of the gradients it left to the caller (neither None nor an array: a gradient by
    rows, which the per-variable functions take).
    """
    cdef str fn
    cdef int kind
    cdef bint flag, f32
    cdef list args              # the _OptArgs of each variable: the checked arrays, kept alive
    cdef list ws
    cdef OptStep* steps
    cdef int* teams
    cdef void** wps
    cdef Py_ssize_t* sizes
    cdef Py_ssize_t n

    def __cinit__(self):
        self.steps = NULL
        self.teams = NULL
        self.wps = NULL
        self.sizes = NULL
        self.n = 0

    def __init__(self, str rule, list ws, list s1=None, list s2=None, list s3=None, bint flag=False):
        if rule not in _RULES:
            raise ValueError(f"FusedUpdate: rule must be one of {sorted(_RULES)}, got {rule!r}")
        self.fn = f"FusedUpdate({rule})"
        self.kind = _RULES[rule]
        self.flag = flag
        cdef Py_ssize_t n = len(ws), i, k, size
        for name, lst in (("s1", s1), ("s2", s2), ("s3", s3)):
            if lst is not None and len(lst) != n:
                raise ValueError(f"{self.fn}: {name} has {len(lst)} buffers for {n} variables")
        self.steps = <OptStep*>malloc(max(n, 1) * sizeof(OptStep))
        self.teams = <int*>malloc(max(n, 1) * sizeof(int))
        self.wps = <void**>malloc(max(n, 1) * sizeof(void*))
        self.sizes = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
        if self.steps == NULL or self.teams == NULL or self.wps == NULL or self.sizes == NULL:
            raise MemoryError()
        self.args = []
        self.ws = []
        cdef _OptArgs a
        for i in range(n):
            a = _OptArgs(self.fn, ws[i])
            if i and cnp.PyArray_TYPE(a.w) != cnp.PyArray_TYPE(<cnp.ndarray>self.ws[0]):
                raise ValueError(f"{self.fn}: variable {i} has dtype {a.w.dtype} but variable 0 has "
                                 f"dtype {(<object>self.ws[0]).dtype}; make one FusedUpdate per dtype")
            self.steps[i] = _new_step(self.kind)
            self.steps[i].flag = flag
            for k, (name, lst) in enumerate((("s1", s1), ("s2", s2), ("s3", s3))):
                if lst is None or lst[i] is None:
                    continue
                p = a.slot(name, lst[i])
                if k == 0:
                    self.steps[i].s1 = p
                elif k == 1:
                    self.steps[i].s2 = p
                else:
                    self.steps[i].s3 = p
            size = cnp.PyArray_SIZE(a.w)
            self.teams[i] = engine_team_size(size, PAR_MIN_CHEAP, size // SPAN_ALIGN)
            self.wps[i] = _data(a.w)
            self.sizes[i] = size
            self.args.append(a)
            self.ws.append(a.w)
        self.f32 = n == 0 or _is_f32(<cnp.ndarray>self.ws[0])
        self.n = n

    def __dealloc__(self):
        free(self.steps)
        free(self.teams)
        free(self.wps)
        free(self.sizes)

    def __len__(self):
        return self.n

    def __call__(self, list grads, double lr, double a=0.0, double b=0.0, double eps=0.0):
        if len(grads) != self.n:
            raise ValueError(f"{self.fn}: {len(grads)} gradients for {self.n} variables")
        cdef Py_ssize_t i, size
        cdef list held = []              # converted gradients, alive until the loop has run
        cdef list left = []
        cdef cnp.ndarray w, ga
        cdef object g
        cdef OptStep* st
        for i in range(self.n):
            st = &self.steps[i]
            g = grads[i]
            st.g = NULL
            if g is None:
                continue
            if not isinstance(g, cnp.ndarray):
                left.append(i)
                continue
            w = <cnp.ndarray>self.ws[i]
            ga = <cnp.ndarray>g
            if cnp.PyArray_TYPE(ga) != cnp.PyArray_TYPE(w) or not cnp.PyArray_IS_C_CONTIGUOUS(ga):
                ga = np.ascontiguousarray(ga, dtype=(<object>w).dtype)
                held.append(ga)
            if not cnp.PyArray_SAMESHAPE(ga, w):
                raise ValueError(f"{self.fn}: gradient {i} has shape {(<object>ga).shape} but its variable "
                                 f"has shape {(<object>w).shape}")
            _same_or_disjoint(self.fn, "g", ga, "w", w)
            st.g = _data(ga)
            st.lr, st.a, st.b, st.eps = lr, a, b, eps
        with nogil:
            for i in range(self.n):
                if self.steps[i].g == NULL or self.sizes[i] == 0:
                    continue
                if self.f32:
                    _opt_run(&self.steps[i], <float*>self.wps[i], self.sizes[i], self.teams[i])
                else:
                    _opt_run(&self.steps[i], <double*>self.wps[i], self.sizes[i], self.teams[i])
        return left
