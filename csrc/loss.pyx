# Per-sample losses and their gradients in one pass over each row.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int32_t, int64_t
from ew_common cimport *

cnp.import_array()
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)


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


cdef double _bce_logits_row(const floating* t, const floating* z, floating* g,
                            Py_ssize_t c) noexcept nogil:
    cdef double acc = 0, tj, zj, k = 1.0 / c
    cdef Py_ssize_t j
    for j in range(c):
        tj = t[j]
        zj = z[j]
        acc += (zj if zj > 0 else 0.0) - zj * tj + log1p(c_exp(-(zj if zj >= 0 else -zj)))
        if g != NULL:
            g[j] = <floating>(k * (engine_sigmoid(zj) - tj))
    return acc / c


cdef enum:
    # _cce_rows takes its logarithms in batches of up to LOG_BATCH values, gathered from up to
    # ROW_BLOCK rows (stack buffers).
    LOG_BATCH = 512
    ROW_BLOCK = 64


cdef void _cce_rows(const floating* t, const floating* p, floating* g, floating* loss,
                    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c, double lo, double hi) noexcept nogil:
    # Per row, q = p / s (s = sum p) is clipped before the log; where q is clipped dL/dq is 0.
    # Through the normalisation: dL/dp_j = (dL/dq_j - sum_i dL/dq_i q_i) / s, and with
    # dL/dq_j = -t_j / q_j that is -t_j / p_j - dot / s, where dot = sum over the unclipped
    # classes of -t.  A class with target 0 adds exactly nothing to the loss or to dot and its
    # gradient is -dot / s, so those classes skip the log (one-hot targets: all but one class).
    # That holds while s is finite, i.e. every p finite; otherwise _cce_row_nonfinite takes the
    # full formula for every class, so NaN and inf propagate.
    # The values that take the log are gathered across a block of rows and logged in one call:
    # float32 through fast_math.h's vectorised engine_logf (libm's scalar log, one row at a
    # time, was most of the cost of soft targets), float64 through libm's log.  Each row's sum
    # runs in class order, as one row at a time would.
    cdef floating lq[LOG_BATCH]
    cdef floating tk[LOG_BATCH]
    cdef int owner[LOG_BATCH]
    cdef double inv_s[ROW_BLOCK]
    cdef double dot[ROW_BLOCK]
    cdef double acc[ROW_BLOCK]
    cdef bint done[ROW_BLOCK]
    cdef Py_ssize_t rb, re, r, j, k = 0, i, off
    cdef double s, q, rest, inv, d
    cdef const floating* tr
    cdef const floating* pr
    cdef floating* gr
    rb = r0
    while rb < r1:
        re = rb + ROW_BLOCK if r1 - rb > ROW_BLOCK else r1
        for i in range(re - rb):
            acc[i] = 0
        for r in range(rb, re):
            off = r * c
            tr = t + off
            pr = p + off
            i = r - rb
            s = _sum(pr, c)
            done[i] = not (s - s == 0)
            if done[i]:
                loss[r] = <floating>_cce_row_nonfinite(tr, pr, NULL if g == NULL else g + off, c, s, lo, hi)
                continue
            inv = 1.0 / s
            d = 0
            for j in range(c):
                if tr[j] == 0:
                    continue
                q = pr[j] * inv
                if lo <= q <= hi:
                    d += -tr[j]
                lq[k] = <floating>_clip(q, lo, hi)
                tk[k] = tr[j]
                owner[k] = <int>i
                k += 1
                if k == LOG_BATCH:
                    _log_batch(lq, tk, owner, k, acc)
                    k = 0
            inv_s[i] = inv
            dot[i] = d
        _log_batch(lq, tk, owner, k, acc)
        k = 0
        for r in range(rb, re):
            i = r - rb
            if done[i]:
                continue
            loss[r] = <floating>(-acc[i])
            if g == NULL:
                continue
            off = r * c
            tr = t + off
            pr = p + off
            gr = g + off
            inv = inv_s[i]
            rest = -dot[i] * inv
            for j in range(c):
                if tr[j] == 0:
                    gr[j] = <floating>rest
                    continue
                q = pr[j] * inv
                gr[j] = <floating>(rest - tr[j] / <double>pr[j] if lo <= q <= hi else rest)
        rb = re


cdef inline void _log_batch(floating* lq, const floating* tk, const int* owner, Py_ssize_t k,
                            double* acc) noexcept nogil:
    """acc[owner[i]] += tk[i] * log(lq[i]) for i < k, in order (lq is overwritten)."""
    cdef Py_ssize_t i
    if floating is float:
        engine_ew_f32_log(lq, lq, k)
    else:
        for i in range(k):
            lq[i] = log(lq[i])
    for i in range(k):
        acc[owner[i]] += tk[i] * <double>lq[i]


cdef double _cce_row_nonfinite(const floating* t, const floating* p, floating* g, Py_ssize_t c,
                               double s, double lo, double hi) noexcept nogil:
    """_cce_rows' formula with no shortcut, for a row whose sum s is inf or NaN."""
    cdef double acc = 0, dot = 0, q, dq
    cdef Py_ssize_t j
    for j in range(c):
        q = p[j] / s
        acc += t[j] * log(_clip(q, lo, hi))
        if lo <= q <= hi:
            dot += -t[j]
    if g != NULL:
        for j in range(c):
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
    if kind == LOSS_CCE:       # rows in blocks (see _cce_rows)
        _cce_rows(t, p, g, loss, r0, r1, c, lo, hi)
        return
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
        elif kind == LOSS_CCE_LOGITS:
            v = _cce_logits_row(tr, p + off, gr, c)
        elif kind == LOSS_SPARSE_CCE:
            v = _sparse_cce_row(_label_at(labels, lab64, r), p + off, gr, c, lo, hi)
        else:
            v = _sparse_cce_logits_row(_label_at(labels, lab64, r), p + off, gr, c)
        loss[r] = <floating>v


cdef struct _LossJob:
    int kind
    const void* t
    const void* labels
    bint lab64
    const void* p
    void* loss
    void* g
    Py_ssize_t c
    double lo
    double hi


cdef void _loss_spans_f(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _LossJob* j = <const _LossJob*>job
    _loss_span(j.kind, <const float*>j.t, j.labels, j.lab64, <const float*>j.p, <float*>j.loss, <float*>j.g,
               lo, hi, j.c, j.lo, j.hi)


cdef void _loss_spans_d(const void* job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef const _LossJob* j = <const _LossJob*>job
    _loss_span(j.kind, <const double*>j.t, j.labels, j.lab64, <const double*>j.p, <double*>j.loss, <double*>j.g,
               lo, hi, j.c, j.lo, j.hi)


cdef void _loss_run(int kind, const floating* t, const void* labels, bint lab64,
                    const floating* p, floating* loss, floating* g, Py_ssize_t rows, Py_ssize_t c,
                    double lo, double hi, int nt) noexcept nogil:
    cdef _LossJob job
    job.kind, job.t, job.labels, job.lab64, job.p = kind, t, labels, lab64, p
    job.loss, job.g, job.c, job.lo, job.hi = loss, g, c, lo, hi
    # Rows per thread rounded so loss_out seams fall on cache-line boundaries.
    if floating is float:
        engine_run_spans(_loss_spans_f, &job, rows, nt, SPAN_ALIGN)
    else:
        engine_run_spans(_loss_spans_d, &job, rows, nt, SPAN_ALIGN)


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
    cdef int nt = engine_team_size(n if n > rows else rows, par_min, rows // SPAN_ALIGN)
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

