# Fused scaled-dot-product attention, forward and backward, in Keras's layout (batch, length,
# heads, depth): out = softmax(scale * q k^T, masked) v for every (batch, head) pair.  The
# pairs are read through the row strides (heads * depth), so the projections of
# MultiHeadAttention feed the kernel without transposes; each pair's operands are copied once
# into contiguous scratch rows (_rows: the queries times the scale), since the tile products
# walk down 64-128 rows at a time and rows a power of two apart share a few L1 sets.
#
# The (T, S) score matrix is never materialised: each (batch, head) pair walks its queries in
# blocks of _BQ rows and its keys in blocks of _BK, computing one (_BQ, _BK) tile of scores at a
# time, and keeps a running row maximum and row sum (the online softmax), rescaling the
# partial output when the maximum grows.  The tile products have one small side (the head depth):
# in float32 they are written directly (csrc/attention_rows.h: register-blocked vector code per
# instruction set, 6 rows by 2 vectors; the pair's keys / values transposed once for the
# score-shaped products, up to 64 deep; the others need depths a multiple of the vector width),
# which beats the GEMM's packing and blocking at these sizes; other depths and float64 run on
# the GEMM.  The tiles' row loops (maximum, exponentials, softmax backward) are
# in the same header.  The forward saves each row's maximum and 1 / sum, so
# the backward recomputes each tile's probabilities exactly (no log-sum-exp round trip, which
# in float32 would lose a fully masked row's normaliser) and never stores the matrix either.
# OpenMP runs one (batch, head) pair per iteration; a GEMM call runs on one thread inside the
# team (it checks omp_in_parallel).
#
# Masks: a uint8 array (Bm, Hm, T, S) with Bm in {1, batch} and Hm in {1, heads}, nonzero where
# a query may attend to a key, and/or a causal flag (key j visible to query i when j <= i).
# A masked score is replaced by _NEG (not added to), so a row with every key masked averages
# all values uniformly, as Keras's JAX backend does, and its gradient through the scores is 0.
#
# The Python entries check every shape, dtype and contiguity the C loops rely on.
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, INFINITY
from libc.string cimport memcpy, memset
from libc.stdint cimport uint8_t

cnp.import_array()

from kernel_common cimport engine_team_size, engine_thread_num, engine_runtime_import
from gemm_api cimport engine_sgemm, engine_dgemm, engine_gemm_api_import
engine_runtime_import()        # the thread cap and SIMD level (csrc/runtime_api.h)
engine_gemm_api_import()

# The row loops of a tile (maximum, exponentials and their sum, recomputed probabilities, the
# softmax backward): csrc/attention_rows.h, float32 vectorised per instruction set through its
# ISA table (fast_math.h's exp; libm's expf is a call per element), float64 with libm.
cdef extern from "attention_rows.h" nogil:
    float engine_attn_row_max_f32(const float *row, Py_ssize_t n, float init)
    float engine_attn_exp_sum_f32(float *row, float shift, Py_ssize_t n)
    void engine_attn_probs_f32(float *row, float shift, float inv, Py_ssize_t n)
    void engine_attn_dscores_f32(const float *p, float *dp, float delta, Py_ssize_t n)
    double engine_attn_row_max_f64(const double *row, Py_ssize_t n, double init)
    double engine_attn_exp_sum_f64(double *row, double shift, Py_ssize_t n)
    void engine_attn_probs_f64(double *row, double shift, double inv, Py_ssize_t n)
    void engine_attn_dscores_f64(const double *p, double *dp, double delta, Py_ssize_t n)
    double engine_attn_dot_f32(const float *x, const float *y, Py_ssize_t n)
    double engine_attn_dot_f64(const double *x, const double *y, Py_ssize_t n)
    # The small-depth products written directly (0 when the shape is not theirs: then the GEMM).
    enum: ENGINE_ATTN_NT_DMAX, ENGINE_ATTN_PAD
    void engine_attn_pack_t(const float *B, Py_ssize_t ldb, Py_ssize_t N, Py_ssize_t D, float *bt, Py_ssize_t ldbt)
    void engine_attn_nt_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t D, const float *A, Py_ssize_t lda,
                            const float *bt, Py_ssize_t ldbt, float *C, Py_ssize_t ldc)
    int engine_attn_nn_f32(Py_ssize_t M, Py_ssize_t D, Py_ssize_t K, float alpha, const float *A, Py_ssize_t sam,
                           Py_ssize_t sak, const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc)

cdef extern from "fpmode.h" nogil:
    unsigned int engine_ftz_enter()
    void engine_ftz_leave(unsigned int mode)

cdef enum:
    _BQ = 64          # query rows per tile
    _BK = 128         # keys per tile: a float32 tile of scores is 32 KiB, in L2 with its operands
    # The tiles' row stride: 16 values past _BK, so a tile's rows (and the transposed keys' rows,
    # _fill's SP) are not a power of two apart.  Rows 512 B or 2 KiB apart map onto a few of L1's
    # sets, and a product walking down them evicted its own operand rows at every step.
    _LDT = _BK + 16
    # The row loops (maximum, exponentials) run over a tile row rounded up to this many columns
    # (the widest vector, 16 floats), the columns past the keys set to -inf by _score_tile: with
    # a partial last vector (a tile of 72 keys leaves 8) the compiler's scalar epilogue called
    # the exponential once per value, a third of the forward's time.  exp(-inf) is 0 (with
    # denormals flushed, see _run_forward), so the padding adds nothing to a row's sum, and the
    # products read the tile only up to the keys.
    _ROW_PAD = 16

# Below this much work (multiply-adds) one thread is faster than a team.
cdef Py_ssize_t _PARALLEL_MIN = 1 << 16

cdef double _NEG = -1e30


cdef struct _Args:
    const void *q
    const void *k
    const void *v
    const uint8_t *mask
    const void *dout
    void *out
    void *row_max
    void *row_inv
    void *dq
    void *dk
    void *dv
    Py_ssize_t heads, T, S, D, Dv, mask_b, mask_h
    Py_ssize_t ldq, ldv        # row strides of q / k (heads * D) and of v / out (heads * Dv)
    # float32 keys / values up to ENGINE_ATTN_NT_DMAX deep go through the direct product (_nt),
    # transposed once per pair into rows of SP (S padded) values
    bint direct_k, direct_v
    Py_ssize_t SP
    bint causal
    double scale


cdef inline void _gemm(int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                       const floating *A, Py_ssize_t lda, const floating *B, Py_ssize_t ldb,
                       floating beta, floating *C, Py_ssize_t ldc) noexcept nogil:
    if floating is float:
        engine_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
    else:
        engine_dgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


cdef inline void _nt(Py_ssize_t m, Py_ssize_t n, Py_ssize_t d, const floating *A, Py_ssize_t lda,
                     const floating *B, Py_ssize_t ldb, const floating *bt, Py_ssize_t col0, Py_ssize_t ldbt,
                     floating *C, Py_ssize_t ldc) noexcept nogil:
    """C (m, n; row stride ldc >= n rounded up to 32) = A B^T over depth d: from bt when it is
    not NULL (B's pair transposed by _pack_t, row stride ldbt; B is its column col0 on)."""
    if floating is float:
        if bt != NULL:
            engine_attn_nt_f32(m, n, d, A, lda, bt + col0, ldbt, C, ldc)
            return
    _gemm[floating](0, 1, m, n, d, 1, A, lda, B, ldb, 0, C, ldc)


cdef inline floating *_pack_t(bint direct, const floating *B, Py_ssize_t ldb, Py_ssize_t N, Py_ssize_t D,
                              floating *bt, Py_ssize_t ldbt) noexcept nogil:
    """bt = B's N rows transposed for _nt (float32 with direct set), else NULL (the GEMM runs)."""
    if floating is float:
        if direct:
            engine_attn_pack_t(B, ldb, N, D, bt, ldbt)
            return bt
    return NULL


cdef inline void _nn(bint trans, Py_ssize_t m, Py_ssize_t d, Py_ssize_t depth, floating alpha, const floating *A,
                     Py_ssize_t lda, const floating *B, Py_ssize_t ldb, floating *C, Py_ssize_t ldc) noexcept nogil:
    """C (m, d) += alpha op(A) B over `depth`, op(A) A itself (m, depth) or A^T (A is (depth, m))."""
    if floating is float:
        if engine_attn_nn_f32(m, d, depth, alpha, A, 1 if trans else lda, lda if trans else 1, B, ldb, C, ldc):
            return
    _gemm[floating](trans, 0, m, d, depth, alpha, A, lda, B, ldb, 1, C, ldc)


cdef inline floating _row_max(const floating *row, Py_ssize_t n, floating init) noexcept nogil:
    if floating is float:
        return engine_attn_row_max_f32(row, n, init)
    else:
        return engine_attn_row_max_f64(row, n, init)


cdef inline floating _exp_sum(floating *row, floating shift, Py_ssize_t n) noexcept nogil:
    """row[c] = exp(row[c] - shift), in place; returns the sum."""
    if floating is float:
        return engine_attn_exp_sum_f32(row, shift, n)
    else:
        return engine_attn_exp_sum_f64(row, shift, n)


cdef inline void _probs(floating *row, floating shift, floating inv, Py_ssize_t n) noexcept nogil:
    """row[c] = exp(row[c] - shift) * inv, in place."""
    if floating is float:
        engine_attn_probs_f32(row, shift, inv, n)
    else:
        engine_attn_probs_f64(row, shift, inv, n)


cdef inline void _dscores(const floating *p, floating *dp, floating delta, Py_ssize_t n) noexcept nogil:
    """dp[c] = p[c] * (dp[c] - delta), in place."""
    if floating is float:
        engine_attn_dscores_f32(p, dp, delta, n)
    else:
        engine_attn_dscores_f64(p, dp, delta, n)


cdef inline double _dot(const floating *x, const floating *y, Py_ssize_t n) noexcept nogil:
    """sum_c x[c] y[c], accumulated in double."""
    if floating is float:
        return engine_attn_dot_f32(x, y, n)
    else:
        return engine_attn_dot_f64(x, y, n)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline const uint8_t *_mask_of(const _Args *a, Py_ssize_t bh) noexcept nogil:
    """The (T, S) mask plane of pair bh (NULL without a mask)."""
    if a.mask == NULL:
        return NULL
    cdef Py_ssize_t b = bh // a.heads, h = bh % a.heads
    if a.mask_b == 1:
        b = 0
    if a.mask_h == 1:
        h = 0
    return a.mask + (b * a.mask_h + h) * a.T * a.S


cdef inline bint _skip_tile(const _Args *a, Py_ssize_t i1, Py_ssize_t j0) noexcept nogil:
    """A key tile every query of the tile is causally blind to contributes nothing, unless an
    explicit mask could leave some row with no visible key (then every key counts, uniformly)."""
    return a.causal and a.mask == NULL and j0 > i1 - 1


cdef inline void _score_tile(const _Args *a, const uint8_t *plane, const floating *q, Py_ssize_t ldq,
                             const floating *k, Py_ssize_t ldk, const floating *kt, floating *tile, Py_ssize_t i0,
                             Py_ssize_t nq, Py_ssize_t j0, Py_ssize_t nk) noexcept nogil:
    """tile (nq, nk; row stride _LDT) = q[i0:i0+nq] k[j0:j0+nk]^T, masked scores replaced by
    _NEG (q, the queries times the scale, and k point at the pair's first row, rows ldq / ldk
    apart)."""
    cdef Py_ssize_t r, c
    cdef const uint8_t *mrow
    cdef floating neg = <floating>_NEG
    _nt[floating](nq, nk, a.D, q + i0 * ldq, ldq, k + j0 * ldk, ldk,
                  kt, j0, a.SP, tile, _LDT)
    for r in range(nq):
        if plane != NULL:
            mrow = plane + (i0 + r) * a.S + j0
            for c in range(nk):
                if mrow[c] == 0:
                    tile[r * _LDT + c] = neg
        if a.causal:
            for c in range(nk):
                if j0 + c > i0 + r:
                    tile[r * _LDT + c] = neg
        for c in range(nk, _padded(nk)):
            tile[r * _LDT + c] = -INFINITY


cdef inline Py_ssize_t _padded(Py_ssize_t nk) noexcept nogil:
    """A tile row's keys rounded up to _ROW_PAD (at most _BK, within the row stride _LDT)."""
    return (nk + _ROW_PAD - 1) // _ROW_PAD * _ROW_PAD


cdef inline bint _masked(const _Args *a, const uint8_t *plane, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    if a.causal and j > i:
        return True
    return plane != NULL and plane[i * a.S + j] == 0


cdef inline floating *_rows(const floating *src, Py_ssize_t ld, Py_ssize_t n, Py_ssize_t d,
                           floating *dst, floating factor) noexcept nogil:
    """dst (n, d) contiguous = factor * src's n rows of d values, ld apart; returns dst.  The pair's rows
    in the (batch, length, heads, depth) layout are heads * depth apart (1 KiB for 8 heads of 32
    floats), a stride that maps every row onto a few L1 sets: the tile products, which walk down
    64-128 of them per output row block, read them from a contiguous copy made once per pair."""
    cdef Py_ssize_t r, c
    if factor == 1:
        for r in range(n):
            memcpy(dst + r * d, src + r * ld, d * sizeof(floating))
    else:
        for r in range(n):
            for c in range(d):
                dst[r * d + c] = factor * src[r * ld + c]
    return dst


cdef void _forward_pair(const _Args *a, Py_ssize_t bh, floating *tile, floating *pack) noexcept nogil:
    cdef Py_ssize_t T = a.T, S = a.S, D = a.D, Dv = a.Dv, ldq = a.ldq, ldv = a.ldv
    cdef Py_ssize_t b = bh // a.heads, h = bh % a.heads
    cdef const floating *q = <const floating *>a.q + b * T * ldq + h * D
    cdef const floating *k = <const floating *>a.k + b * S * ldq + h * D
    cdef const floating *v = <const floating *>a.v + b * S * ldv + h * Dv
    cdef floating *out = <floating *>a.out + b * T * ldv + h * Dv
    cdef floating *rmax = <floating *>a.row_max + bh * T
    cdef floating *rinv = <floating *>a.row_inv + bh * T
    cdef const uint8_t *plane = _mask_of(a, bh)
    cdef Py_ssize_t i0, j0, nq, nk, r, c
    cdef floating mx, corr, s
    cdef floating *trow
    cdef floating *orow
    cdef const floating *kt = _pack_t[floating](a.direct_k, k, ldq, S, D, pack, a.SP)
    cdef const floating *vp = _rows(v, ldv, S, Dv, pack + (D if a.direct_k else 0) * a.SP, 1)
    # the queries times the scale: the score tiles are then products without a factor
    cdef const floating *qp = _rows(q, ldq, T, D, pack + (D if a.direct_k else 0) * a.SP + S * Dv,
                                    <floating>a.scale)
    for r in range(T):
        memset(out + r * ldv, 0, Dv * sizeof(floating))
    i0 = 0
    while i0 < T:
        nq = min(<Py_ssize_t>_BQ, T - i0)
        for r in range(nq):
            rmax[i0 + r] = -INFINITY
            rinv[i0 + r] = 0          # the running sum until the end of the row
        j0 = 0
        while j0 < S:
            nk = min(<Py_ssize_t>_BK, S - j0)
            if _skip_tile(a, i0 + nq, j0):
                break
            _score_tile(a, plane, qp, D, k, ldq, kt, tile, i0, nq, j0, nk)
            for r in range(nq):
                trow = tile + r * _LDT
                mx = _row_max(trow, _padded(nk), rmax[i0 + r])
                corr = _exp(rmax[i0 + r] - mx)
                rinv[i0 + r] = rinv[i0 + r] * corr + _exp_sum(trow, mx, _padded(nk))
                rmax[i0 + r] = mx
                if corr != 1:
                    orow = out + (i0 + r) * ldv
                    for c in range(Dv):
                        orow[c] = orow[c] * corr
            _nn[floating](0, nq, Dv, nk, 1, tile, _LDT, vp + j0 * Dv, Dv, out + i0 * ldv, ldv)
            j0 = j0 + nk
        for r in range(nq):
            s = 1 / rinv[i0 + r]
            rinv[i0 + r] = s
            orow = out + (i0 + r) * ldv
            for c in range(Dv):
                orow[c] = orow[c] * s
        i0 = i0 + nq


cdef void _backward_pair(const _Args *a, Py_ssize_t bh, floating *tile, floating *dtile, floating *pack,
                         floating *delta) noexcept nogil:
    """pack: the transposed keys / values (direct paths) then contiguous copies of the pair's
    keys, queries and output gradients (_rows), _backward_scratch(a) - 2 tiles - T values."""
    cdef Py_ssize_t T = a.T, S = a.S, D = a.D, Dv = a.Dv, ldq = a.ldq, ldv = a.ldv
    cdef Py_ssize_t b = bh // a.heads, h = bh % a.heads
    cdef const floating *q = <const floating *>a.q + b * T * ldq + h * D
    cdef const floating *k = <const floating *>a.k + b * S * ldq + h * D
    cdef const floating *v = <const floating *>a.v + b * S * ldv + h * Dv
    cdef const floating *out = <const floating *>a.out + b * T * ldv + h * Dv
    cdef const floating *dout = <const floating *>a.dout + b * T * ldv + h * Dv
    cdef const floating *rmax = <const floating *>a.row_max + bh * T
    cdef const floating *rinv = <const floating *>a.row_inv + bh * T
    cdef floating *dq = <floating *>a.dq + b * T * ldq + h * D
    cdef floating *dk = <floating *>a.dk + b * S * ldq + h * D
    cdef floating *dv = <floating *>a.dv + b * S * ldv + h * Dv
    cdef const uint8_t *plane = _mask_of(a, bh)
    cdef Py_ssize_t i0, j0, nq, nk, r, c
    cdef floating scale = <floating>a.scale, p
    cdef floating *trow
    cdef floating *drow
    cdef const floating *kt = _pack_t[floating](a.direct_k, k, ldq, S, D, pack, a.SP)
    cdef const floating *vt = _pack_t[floating](a.direct_v, v, ldv, S, Dv,
                                                pack + (D if a.direct_k else 0) * a.SP, a.SP)
    cdef floating *rows = pack + _transposed(a)
    cdef const floating *kp = _rows(k, ldq, S, D, rows, 1)
    # the queries times the scale, as in the forward (the same scores; and dK = dS^T (scale Q))
    cdef const floating *qp = _rows(q, ldq, T, D, rows + S * D, scale)
    cdef const floating *dop = _rows(dout, ldv, T, Dv, rows + S * D + T * D, 1)
    for r in range(T):
        memset(dq + r * ldq, 0, D * sizeof(floating))
    for r in range(S):
        memset(dk + r * ldq, 0, D * sizeof(floating))
        memset(dv + r * ldv, 0, Dv * sizeof(floating))
    # delta_i = sum_c dout_ic out_ic: the softmax backward's row term
    for r in range(T):
        delta[r] = <floating>_dot(dout + r * ldv, out + r * ldv, Dv)
    i0 = 0
    while i0 < T:
        nq = min(<Py_ssize_t>_BQ, T - i0)
        j0 = 0
        while j0 < S:
            nk = min(<Py_ssize_t>_BK, S - j0)
            if _skip_tile(a, i0 + nq, j0):
                break
            _score_tile(a, plane, qp, D, kp, D, kt, tile, i0, nq, j0, nk)
            for r in range(nq):
                _probs(tile + r * _LDT, rmax[i0 + r], rinv[i0 + r], _padded(nk))
            # dV_j += P^T dO_i ;  dP = dO_i V_j^T
            _nn[floating](1, nk, Dv, nq, 1, tile, _LDT, dop + i0 * Dv, Dv, dv + j0 * ldv, ldv)
            _nt[floating](nq, nk, Dv, dop + i0 * Dv, Dv, v + j0 * ldv, ldv, vt, j0, a.SP,
                          dtile, _LDT)
            for r in range(nq):
                drow = dtile + r * _LDT
                _dscores(tile + r * _LDT, drow, delta[i0 + r], nk)
                if plane != NULL or a.causal:
                    for c in range(nk):
                        if _masked(a, plane, i0 + r, j0 + c):
                            drow[c] = 0          # a replaced score does not depend on q or k
            # dQ_i += scale dS K_j ;  dK_j += scale dS^T Q_i
            _nn[floating](0, nq, D, nk, scale, dtile, _LDT, kp + j0 * D, D, dq + i0 * ldq, ldq)
            _nn[floating](1, nk, D, nq, 1, dtile, _LDT, qp + i0 * D, D, dk + j0 * ldq, ldq)
            j0 = j0 + nk
        i0 = i0 + nq


cdef void _run_forward(const _Args *a, Py_ssize_t pairs, int nt, bint is_double, char *scratch,
                       Py_ssize_t per_thread) noexcept nogil:
    """scratch: nt * per_thread bytes, one tile of scores and the transposed keys per thread."""
    cdef Py_ssize_t bh
    cdef char *mine
    cdef unsigned int mode
    for bh in prange(pairs, num_threads=nt, schedule="dynamic"):
        mine = scratch + engine_thread_num() * per_thread
        # Denormals flushed (fpmode.h): a masked or padded score's exponential underflows, and
        # on x86 each multiply making a denormal would take a microcode assist.
        mode = engine_ftz_enter()
        if is_double:
            _forward_pair[double](a, bh, <double *>mine, <double *>mine + _BQ * _LDT)
        else:
            _forward_pair[float](a, bh, <float *>mine, <float *>mine + _BQ * _LDT)
        engine_ftz_leave(mode)


cdef void _run_backward(const _Args *a, Py_ssize_t pairs, int nt, bint is_double, char *scratch,
                        Py_ssize_t per_thread) noexcept nogil:
    """scratch: nt * per_thread bytes, two tiles, the pair's transposed and copied operands
    (_backward_pair) and a row of T values per thread."""
    cdef Py_ssize_t bh
    cdef char *mine
    cdef unsigned int mode
    for bh in prange(pairs, num_threads=nt, schedule="dynamic"):
        mine = scratch + engine_thread_num() * per_thread
        mode = engine_ftz_enter()       # as in _run_forward
        if is_double:
            _backward_pair[double](a, bh, <double *>mine, <double *>mine + _BQ * _LDT,
                                   <double *>mine + 2 * _BQ * _LDT,
                                   <double *>mine + _backward_scratch(a) - a.T)
        else:
            _backward_pair[float](a, bh, <float *>mine, <float *>mine + _BQ * _LDT,
                                  <float *>mine + 2 * _BQ * _LDT,
                                  <float *>mine + _backward_scratch(a) - a.T)
        engine_ftz_leave(mode)


def _expect(str fn, str name, a, dtype, shape, bint writable=False):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or tuple(a.shape) != tuple(shape) \
            or not a.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} must be a C-contiguous {np.dtype(dtype).name} array of shape "
                         f"{tuple(shape)}, got {getattr(a, 'dtype', type(a).__name__)} "
                         f"{getattr(a, 'shape', None)}")
    if writable and not a.flags.writeable:
        raise ValueError(f"{fn}: {name} is read-only")


cdef int _fill(str fn, _Args *a, q, k, v, mask, bint causal, double scale) except -1:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype not in (np.float32, np.float64):
            raise ValueError(f"{fn}: {name} must be a 4-D float32/float64 array (batch, length, heads, "
                             f"depth), got {getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', None)}")
    cdef Py_ssize_t batch = q.shape[0]
    a.T, a.heads, a.D = q.shape[1], q.shape[2], q.shape[3]
    a.S, a.Dv = k.shape[1], v.shape[3]
    _expect(fn, "q", q, q.dtype, (batch, a.T, a.heads, a.D))
    _expect(fn, "k", k, q.dtype, (batch, a.S, a.heads, a.D))
    _expect(fn, "v", v, q.dtype, (batch, a.S, a.heads, a.Dv))
    a.ldq, a.ldv = a.heads * a.D, a.heads * a.Dv
    a.q, a.k, a.v = cnp.PyArray_DATA(q), cnp.PyArray_DATA(k), cnp.PyArray_DATA(v)
    a.mask = NULL
    a.mask_b = a.mask_h = 1
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.ndim != 4 or mask.dtype != np.uint8:
            raise ValueError(f"{fn}: mask must be a 4-D uint8 array, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {getattr(mask, 'shape', None)}")
        mb, mh = mask.shape[0], mask.shape[1]
        if mb not in (1, batch) or mh not in (1, a.heads):
            raise ValueError(f"{fn}: mask of shape {mask.shape} does not broadcast to "
                             f"({batch}, {a.heads}, {a.T}, {a.S})")
        _expect(fn, "mask", mask, np.uint8, (mb, mh, a.T, a.S))
        a.mask_b, a.mask_h = mb, mh
        a.mask = <const uint8_t *>cnp.PyArray_DATA(mask)
    a.causal = causal
    a.scale = scale
    a.direct_k = q.dtype == np.float32 and a.D <= ENGINE_ATTN_NT_DMAX
    a.direct_v = q.dtype == np.float32 and a.Dv <= ENGINE_ATTN_NT_DMAX
    # rows of the transposed keys / values: padded for the direct products, and 16 values more
    # so they are not a power of two apart (see _LDT)
    a.SP = (a.S + ENGINE_ATTN_PAD - 1) // ENGINE_ATTN_PAD * ENGINE_ATTN_PAD + 16
    return 0


cdef inline Py_ssize_t _transposed(const _Args *a) noexcept nogil:
    """Values of scratch a pair's transposed keys and values take (0 on the GEMM path)."""
    return ((a.D if a.direct_k else 0) + (a.Dv if a.direct_v else 0)) * a.SP


cdef inline Py_ssize_t _forward_scratch(const _Args *a) noexcept nogil:
    """Values of scratch per thread in the forward: a tile, the transposed keys, the pair's
    values and queries copied (_rows)."""
    return _BQ * _LDT + (a.D if a.direct_k else 0) * a.SP + a.S * a.Dv + a.T * a.D


cdef inline Py_ssize_t _backward_scratch(const _Args *a) noexcept nogil:
    """Values of scratch per thread in the backward: two tiles, the transposed keys and values,
    the pair's keys, queries and output gradients copied, and the T row terms."""
    return 2 * _BQ * _LDT + _transposed(a) + a.S * a.D + a.T * a.D + a.T * a.Dv + a.T


cdef int _threads(const _Args *a, Py_ssize_t pairs):
    cdef int nt = engine_team_size(pairs * a.T * a.S * (a.D + a.Dv), _PARALLEL_MIN, pairs)
    if nt > pairs:
        nt = <int>pairs
    return nt if nt > 0 else 1


def sdpa_forward(q, k, v, mask, bint causal, double scale, out, row_max, row_inv):
    """out = softmax(scale * q k^T with masked scores replaced) v, per (batch, head) pair.

    q (B, T, N, D), k (B, S, N, D), v (B, S, N, Dv), out (B, T, N, Dv) of one dtype; mask None
    or uint8 (Bm, Hm, T, S) (see the module comment); row_max and row_inv (B, N, T) receive each
    row's score maximum and 1 / sum of exponentials, for sdpa_backward."""
    fn = "sdpa_forward"
    cdef _Args a
    _fill(fn, &a, q, k, v, mask, causal, scale)
    cdef Py_ssize_t batch = q.shape[0], pairs = q.shape[0] * a.heads
    _expect(fn, "out", out, q.dtype, (batch, a.T, a.heads, a.Dv), True)
    _expect(fn, "row_max", row_max, q.dtype, (batch, a.heads, a.T), True)
    _expect(fn, "row_inv", row_inv, q.dtype, (batch, a.heads, a.T), True)
    if a.S == 0:
        raise ValueError(f"{fn}: there are no keys (S == 0) to attend to")
    a.out, a.row_max, a.row_inv = cnp.PyArray_DATA(out), cnp.PyArray_DATA(row_max), cnp.PyArray_DATA(row_inv)
    cdef int nt = _threads(&a, pairs)
    cdef bint is_double = q.dtype == np.float64
    if pairs == 0 or a.T == 0:
        return out
    cdef Py_ssize_t per = _forward_scratch(&a)
    scratch = np.empty(nt * per, dtype=q.dtype)
    cdef char *sp = <char *>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t per_thread = per * q.dtype.itemsize
    with nogil:
        _run_forward(&a, pairs, nt, is_double, sp, per_thread)
    return out


def sdpa_backward(q, k, v, mask, bint causal, double scale, out, row_max, row_inv, dout, dq, dk, dv):
    """Gradients of sdpa_forward with respect to q, k and v (written into dq, dk, dv), from the
    forward's out, row_max and row_inv and the output gradient dout."""
    fn = "sdpa_backward"
    cdef _Args a
    _fill(fn, &a, q, k, v, mask, causal, scale)
    cdef Py_ssize_t batch = q.shape[0], pairs = q.shape[0] * a.heads
    _expect(fn, "out", out, q.dtype, (batch, a.T, a.heads, a.Dv))
    _expect(fn, "dout", dout, q.dtype, (batch, a.T, a.heads, a.Dv))
    _expect(fn, "row_max", row_max, q.dtype, (batch, a.heads, a.T))
    _expect(fn, "row_inv", row_inv, q.dtype, (batch, a.heads, a.T))
    _expect(fn, "dq", dq, q.dtype, (batch, a.T, a.heads, a.D), True)
    _expect(fn, "dk", dk, q.dtype, (batch, a.S, a.heads, a.D), True)
    _expect(fn, "dv", dv, q.dtype, (batch, a.S, a.heads, a.Dv), True)
    if a.S == 0:
        raise ValueError(f"{fn}: there are no keys (S == 0) to attend to")
    a.out, a.dout = cnp.PyArray_DATA(out), cnp.PyArray_DATA(dout)
    a.row_max, a.row_inv = cnp.PyArray_DATA(row_max), cnp.PyArray_DATA(row_inv)
    a.dq, a.dk, a.dv = cnp.PyArray_DATA(dq), cnp.PyArray_DATA(dk), cnp.PyArray_DATA(dv)
    cdef int nt = _threads(&a, pairs)
    cdef bint is_double = q.dtype == np.float64
    if pairs == 0:
        return dq, dk, dv
    if a.T == 0:
        dk[...] = 0
        dv[...] = 0
        return dq, dk, dv
    cdef Py_ssize_t per = _backward_scratch(&a)
    scratch = np.empty(nt * per, dtype=q.dtype)
    cdef char *sp = <char *>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t per_thread = per * q.dtype.itemsize
    with nogil:
        _run_backward(&a, pairs, nt, is_double, sp, per_thread)
    return dq, dk, dv
