/* Whole-sequence RNN slab kernels, written once and instantiated per element
 * type and instruction set by recurrent_math.h (this file has no include
 * guard on purpose).  Expected macros:
 *   RT        element type (float / double)
 *   RSUF(n)   name mangling for this instantiation
 *   RATTR     function attribute (empty or a target("avx2,fma") attribute)
 *   RSIGMOID(x), RTANH(x), RHARD_SIGMOID(x)  the activations for RT (fast_math.h)
 *   RGEMM     engine_sgemm / engine_dgemm
 *   RVEC_SIGMOID(x, n), RVEC_TANH(x, n)  (optional) apply the activation in place
 *             to the longest prefix of whole SIMD vectors and return its length
 *
 * A "slab" is a range of batch rows [b0, b1).  Rows of a recurrent network
 * never interact, so each OpenMP thread runs the whole time loop for its own
 * slab with no barrier between steps; the per-step GEMMs are then called
 * from inside the parallel region and run single-threaded.
 *
 * Layouts (all C-contiguous, batch-major so the weight gradients over all
 * steps are single GEMMs):  Z, R, dZ, dZr are (B, T, G*u) indexed by the
 * input time t; Hm, C, TC, RH are (B, T, u) indexed by t; hseq and d_hseq are
 * (B, T, u) in processing order s (t = T-1-s when going backwards).
 */

/* ---- activations on a contiguous run, in place ---- */

static inline __attribute__((always_inline)) void
RSUF(act_run)(int code, RT *x, ptrdiff_t n)
{
    ptrdiff_t j;
    switch (code) {
    case RNN_TANH:
#ifdef RVEC_TANH
        j = RVEC_TANH(x, n);  /* SIMD over whole vectors; the scalar loop finishes the tail */
#else
        j = 0;
#endif
        for (; j < n; j++) x[j] = RTANH(x[j]);
        break;
    case RNN_SIGMOID:
#ifdef RVEC_SIGMOID
        j = RVEC_SIGMOID(x, n);
#else
        j = 0;
#endif
        for (; j < n; j++) x[j] = RSIGMOID(x[j]);
        break;
    case RNN_RELU:
        for (j = 0; j < n; j++) x[j] = x[j] > (RT)0 ? x[j] : (RT)0;
        break;
    case RNN_HARD_SIGMOID:
        for (j = 0; j < n; j++) x[j] = RHARD_SIGMOID(x[j]);
        break;
    default: /* linear */
        break;
    }
}

/* g[j] *= act'(pre-activation), expressed through the activation's output y
 * so the backward needs no transcendental calls. */
static inline __attribute__((always_inline)) void
RSUF(dact_run)(int code, const RT *y, RT *g, ptrdiff_t n)
{
    ptrdiff_t j;
    switch (code) {
    case RNN_TANH:
        for (j = 0; j < n; j++) g[j] *= ENGINE_TANH_SLOPE_Y(y[j]);
        break;
    case RNN_SIGMOID:
        for (j = 0; j < n; j++) g[j] *= ENGINE_SIGMOID_SLOPE_Y(y[j]);
        break;
    case RNN_RELU:
        for (j = 0; j < n; j++) g[j] = y[j] > (RT)0 ? g[j] : (RT)0;
        break;
    case RNN_HARD_SIGMOID:
        for (j = 0; j < n; j++)
            g[j] = ENGINE_HARD_SIGMOID_GRAD_Y(RT, y[j], g[j]);
        break;
    default:
        break;
    }
}

static inline __attribute__((always_inline)) int
RSUF(row_active)(const rnn_args *a, ptrdiff_t b, ptrdiff_t t)
{
    return a->mask == NULL || a->mask[b * a->T + t] != 0;
}

static inline __attribute__((always_inline)) ptrdiff_t
RSUF(time_of)(const rnn_args *a, ptrdiff_t s)
{
    return a->backwards ? a->T - 1 - s : s;
}

/* h_{s-1} of row b: the previous output in processing order, h0 at s == 0 */
static inline __attribute__((always_inline)) const RT *
RSUF(hprev_row)(const rnn_args *a, ptrdiff_t b, ptrdiff_t s)
{
    if (s == 0) return (const RT *)a->h0 + b * a->u;
    return (const RT *)a->hseq + (b * a->T + s - 1) * a->u;
}

/* Fetch a row of n elements into L2 ahead of its time step.  The buffers are batch-major, so
 * the rows of one step lie T steps apart: a stride per row the hardware prefetchers do not
 * track across a whole slab.  Once the buffers outgrow the caches (T = 200 at batch 128 here)
 * each step otherwise waits on memory row after row: the LSTM backward step went from 19 us
 * to 450 us. */
static inline __attribute__((always_inline)) void
RSUF(prefetch_row)(const RT *p, ptrdiff_t n)
{
    const char *c = (const char *)p, *end = (const char *)(p + n);
    for (; c < end; c += 64) __builtin_prefetch(c, 1, 2);
}

/* Start a backward carry from the caller's gradient, or from zero. */
static inline __attribute__((always_inline)) void
RSUF(init_carry)(const rnn_args *a, const void *src, RT *dst, ptrdiff_t b0, ptrdiff_t b1)
{
    ptrdiff_t j, n = (b1 - b0) * a->u;
    RT *d = dst + b0 * a->u;
    if (src) { const RT *x = (const RT *)src + b0 * a->u; for (j = 0; j < n; j++) d[j] = x[j]; }
    else for (j = 0; j < n; j++) d[j] = (RT)0;
}

/* Hm[:, t] = h_{s-1} * rec_mask for the slab; h_{-1} is h0. */
static inline __attribute__((always_inline)) void
RSUF(stage_hprev)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t s, ptrdiff_t t)
{
    const ptrdiff_t T = a->T, u = a->u;
    const RT *rm = (const RT *)a->rec_mask;
    ptrdiff_t b, j;
    for (b = b0; b < b1; b++) {
        const RT *hp = RSUF(hprev_row)(a, b, s);
        RT *dst = (RT *)a->Hm + (b * T + t) * u;
        if (rm) {
            const RT *m = rm + b * u;
            for (j = 0; j < u; j++) dst[j] = hp[j] * m[j];
        } else {
            for (j = 0; j < u; j++) dst[j] = hp[j];
        }
    }
}

/* ======================= LSTM ======================= */

/* The LSTM cell of one row and step with Keras's default activations (tanh, sigmoid), fused
 * into one pass over the units; other activations take the per-gate runs below.  Forward: z
 * holds the gate pre-activations (without bias) and leaves holding the activated gates. */
static inline __attribute__((always_inline)) void
RSUF(lstm_cell_forward)(RT *restrict z, const RT *restrict bias, const RT *restrict cp,
                        RT *restrict c, RT *restrict tc, RT *restrict h, ptrdiff_t u)
{
#ifdef RVEC_LSTM_CELL
    ptrdiff_t j = RVEC_LSTM_CELL(z, bias, cp, c, tc, h, u);
#else
    ptrdiff_t j = 0;
#endif
    for (; j < u; j++) {
        RT zi = z[j], zf = z[u + j], zg = z[2 * u + j], zo = z[3 * u + j];
        if (bias) { zi += bias[j]; zf += bias[u + j]; zg += bias[2 * u + j]; zo += bias[3 * u + j]; }
        RT gi = RSIGMOID(zi), gf = RSIGMOID(zf);
        RT gg = RTANH(zg), go = RSIGMOID(zo);
        z[j] = gi; z[u + j] = gf; z[2 * u + j] = gg; z[3 * u + j] = go;
        c[j] = gf * cp[j] + gi * gg;
        tc[j] = RTANH(c[j]);
        h[j] = go * tc[j];
    }
}

/* Backward of the same cell: from the activated gates z, tanh(c) and c_{t-1}, the carried
 * gradients gh (of h, upstream already added) and gc (of c), write the gate pre-activation
 * gradients d, add them to the bias partial dbp (may be NULL) and carry gc to c_{t-1}.  Plain
 * arithmetic: the compiler vectorises it for each instruction set. */
static inline __attribute__((always_inline)) void
RSUF(lstm_cell_backward)(const RT *restrict z, const RT *restrict tc, const RT *restrict cp,
                         const RT *restrict gh, RT *restrict gc, RT *restrict d,
                         RT *restrict dbp, ptrdiff_t u)
{
    ptrdiff_t j;
    for (j = 0; j < u; j++) {
        const RT gi = z[j], gf = z[u + j], gg = z[2 * u + j], go = z[3 * u + j], t = tc[j];
        const RT dc = gc[j] + gh[j] * go * ENGINE_TANH_SLOPE_Y(t);
        d[j] = dc * gg * ENGINE_SIGMOID_SLOPE_Y(gi);
        d[u + j] = dc * cp[j] * ENGINE_SIGMOID_SLOPE_Y(gf);
        d[2 * u + j] = dc * gi * ENGINE_TANH_SLOPE_Y(gg);
        d[3 * u + j] = gh[j] * t * ENGINE_SIGMOID_SLOPE_Y(go);
        gc[j] = dc * gf;
    }
    if (dbp) for (j = 0; j < 4 * u; j++) dbp[j] += d[j];
}

RATTR static void
RSUF(lstm_forward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1)
{
    const ptrdiff_t T = a->T, u = a->u, G = 4 * u;
    const RT *bias = (const RT *)a->bias;
    RT *Z = (RT *)a->Z, *C = (RT *)a->C, *TC = (RT *)a->TC, *Hm = (RT *)a->Hm;
    RT *hseq = (RT *)a->hseq;
    const int fused = a->act == RNN_TANH && a->ract == RNN_SIGMOID;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    for (s = 0; s < T; s++) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        const ptrdiff_t tp = a->backwards ? t + 1 : t - 1;
        RSUF(stage_hprev)(a, b0, b1, s, t);
        RGEMM(0, 0, b1 - b0, G, u, (RT)1, Hm + (b0 * T + t) * u, T * u,
              (const RT *)a->U, G, (RT)1, Z + (b0 * T + t) * G, T * G);
        for (b = b0; b < b1; b++) {
            const RT *hp = RSUF(hprev_row)(a, b, s);
            const RT *cp = s == 0 ? (const RT *)a->c0 + b * u : C + (b * T + tp) * u;
            RT *c = C + (b * T + t) * u, *h = hseq + (b * T + s) * u;
            RT *z = Z + (b * T + t) * G, *tc = TC + (b * T + t) * u;
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < u; j++) { c[j] = cp[j]; h[j] = hp[j]; tc[j] = (RT)0; }
                continue;
            }
            if (fused) {
                RSUF(lstm_cell_forward)(z, bias, cp, c, tc, h, u);
            } else {
                if (bias) for (j = 0; j < G; j++) z[j] += bias[j];
                RSUF(act_run)(a->ract, z, 2 * u);          /* i, f */
                RSUF(act_run)(a->act, z + 2 * u, u);       /* g */
                RSUF(act_run)(a->ract, z + 3 * u, u);      /* o */
                for (j = 0; j < u; j++) c[j] = z[u + j] * cp[j] + z[j] * z[2 * u + j];
                for (j = 0; j < u; j++) tc[j] = c[j];
                RSUF(act_run)(a->act, tc, u);
                for (j = 0; j < u; j++) h[j] = z[3 * u + j] * tc[j];
            }
            if (s + 1 < T) {
                const ptrdiff_t tn = RSUF(time_of)(a, s + 1);
                RSUF(prefetch_row)(Z + (b * T + tn) * G, G);
                RSUF(prefetch_row)(C + (b * T + tn) * u, u);
                RSUF(prefetch_row)(TC + (b * T + tn) * u, u);
                RSUF(prefetch_row)(Hm + (b * T + tn) * u, u);
                RSUF(prefetch_row)(hseq + (b * T + s + 1) * u, u);
            }
        }
    }
}

RATTR static void
RSUF(lstm_backward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t slab)
{
    const ptrdiff_t T = a->T, u = a->u, G = 4 * u;
    const RT *Z = (const RT *)a->Z, *C = (const RT *)a->C, *TC = (const RT *)a->TC;
    const RT *dhs = (const RT *)a->d_hseq, *rm = (const RT *)a->rec_mask;
    RT *dZ = (RT *)a->dZ, *dh = (RT *)a->dh, *dc = (RT *)a->dc, *tmp = (RT *)a->tmp;
    RT *dbp = a->db_part ? (RT *)a->db_part + slab * G : NULL;
    const int fused = a->act == RNN_TANH && a->ract == RNN_SIGMOID;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    RSUF(init_carry)(a, a->d_h_last, dh, b0, b1);
    RSUF(init_carry)(a, a->d_c_last, dc, b0, b1);
    if (dbp) for (j = 0; j < G; j++) dbp[j] = (RT)0;
    for (s = T - 1; s >= 0; s--) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        const ptrdiff_t tp = a->backwards ? t + 1 : t - 1;
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u, *gc = dc + b * u;
            RT *d = dZ + (b * T + t) * G;
            const RT *z = Z + (b * T + t) * G, *tc = TC + (b * T + t) * u;
            const RT *cp = s == 0 ? (const RT *)a->c0 + b * u : C + (b * T + tp) * u;
            if (dhs) { const RT *x = dhs + (b * T + s) * u; for (j = 0; j < u; j++) gh[j] += x[j]; }
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < G; j++) d[j] = (RT)0;
                continue;
            }
            if (fused) {
                RSUF(lstm_cell_backward)(z, tc, cp, gh, gc, d, dbp, u);
                goto prefetch;
            }
            /* d[3u..] temporarily holds d(tc) so the activation derivative
             * helper can work in place on a contiguous run */
            for (j = 0; j < u; j++) d[3 * u + j] = gh[j] * z[3 * u + j];
            RSUF(dact_run)(a->act, tc, d + 3 * u, u);
            for (j = 0; j < u; j++) gc[j] += d[3 * u + j];
            for (j = 0; j < u; j++) {
                d[j] = gc[j] * z[2 * u + j];        /* d i */
                d[u + j] = gc[j] * cp[j];          /* d f */
                d[2 * u + j] = gc[j] * z[j];       /* d g */
                d[3 * u + j] = gh[j] * tc[j];      /* d o */
                gc[j] *= z[u + j];                 /* carry to c_{t-1} */
            }
            RSUF(dact_run)(a->ract, z, d, 2 * u);
            RSUF(dact_run)(a->act, z + 2 * u, d + 2 * u, u);
            RSUF(dact_run)(a->ract, z + 3 * u, d + 3 * u, u);
            if (dbp) for (j = 0; j < G; j++) dbp[j] += d[j];
        prefetch:
            if (s > 0) {
                const ptrdiff_t tn = RSUF(time_of)(a, s - 1);
                RSUF(prefetch_row)(Z + (b * T + tn) * G, G);
                RSUF(prefetch_row)(dZ + (b * T + tn) * G, G);
                RSUF(prefetch_row)(TC + (b * T + tn) * u, u);
                if (s > 1) RSUF(prefetch_row)(C + (b * T + RSUF(time_of)(a, s - 2)) * u, u);
                if (dhs) RSUF(prefetch_row)(dhs + (b * T + s - 1) * u, u);
            }
        }
        RGEMM(0, 0, b1 - b0, u, G, (RT)1, dZ + (b0 * T + t) * G, T * G,
              (const RT *)a->UT, u, (RT)0, tmp + b0 * u, u);
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u;
            const RT *r = tmp + b * u;
            if (!RSUF(row_active)(a, b, t)) continue;
            if (rm) { const RT *m = rm + b * u; for (j = 0; j < u; j++) gh[j] = r[j] * m[j]; }
            else for (j = 0; j < u; j++) gh[j] = r[j];
        }
    }
}

/* ======================= SimpleRNN ======================= */

RATTR static void
RSUF(rnn_forward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1)
{
    const ptrdiff_t T = a->T, u = a->u;
    const RT *bias = (const RT *)a->bias;
    RT *Z = (RT *)a->Z, *Hm = (RT *)a->Hm, *hseq = (RT *)a->hseq;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    for (s = 0; s < T; s++) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        RSUF(stage_hprev)(a, b0, b1, s, t);
        RGEMM(0, 0, b1 - b0, u, u, (RT)1, Hm + (b0 * T + t) * u, T * u,
              (const RT *)a->U, u, (RT)1, Z + (b0 * T + t) * u, T * u);
        for (b = b0; b < b1; b++) {
            const RT *hp = RSUF(hprev_row)(a, b, s);
            RT *z = Z + (b * T + t) * u, *h = hseq + (b * T + s) * u;
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < u; j++) h[j] = hp[j];
                continue;
            }
            if (bias) for (j = 0; j < u; j++) z[j] += bias[j];
            RSUF(act_run)(a->act, z, u);
            for (j = 0; j < u; j++) h[j] = z[j];
        }
    }
}

RATTR static void
RSUF(rnn_backward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t slab)
{
    const ptrdiff_t T = a->T, u = a->u;
    const RT *Z = (const RT *)a->Z, *dhs = (const RT *)a->d_hseq, *rm = (const RT *)a->rec_mask;
    RT *dZ = (RT *)a->dZ, *dh = (RT *)a->dh, *tmp = (RT *)a->tmp;
    RT *dbp = a->db_part ? (RT *)a->db_part + slab * u : NULL;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    RSUF(init_carry)(a, a->d_h_last, dh, b0, b1);
    if (dbp) for (j = 0; j < u; j++) dbp[j] = (RT)0;
    for (s = T - 1; s >= 0; s--) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u, *d = dZ + (b * T + t) * u;
            if (dhs) { const RT *x = dhs + (b * T + s) * u; for (j = 0; j < u; j++) gh[j] += x[j]; }
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < u; j++) d[j] = (RT)0;
                continue;
            }
            for (j = 0; j < u; j++) d[j] = gh[j];
            RSUF(dact_run)(a->act, Z + (b * T + t) * u, d, u);
            if (dbp) for (j = 0; j < u; j++) dbp[j] += d[j];
        }
        RGEMM(0, 0, b1 - b0, u, u, (RT)1, dZ + (b0 * T + t) * u, T * u,
              (const RT *)a->UT, u, (RT)0, tmp + b0 * u, u);
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u;
            const RT *r = tmp + b * u;
            if (!RSUF(row_active)(a, b, t)) continue;
            if (rm) { const RT *m = rm + b * u; for (j = 0; j < u; j++) gh[j] = r[j] * m[j]; }
            else for (j = 0; j < u; j++) gh[j] = r[j];
        }
    }
}

/* ======================= GRU ======================= */
/* reset_after:  R (B,T,3u) = Hm U + b_rec (stored with the bias so the
 *               backward reads r_h directly).
 * reset_before: R[..., :2u] = Hm U[:, :2u],  RH (B,T,u) = r * Hm,
 *               R[..., 2u:] = RH U[:, 2u:].
 * Z holds the input projection, then the gates z, r, hh. */

RATTR static void
RSUF(gru_forward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1)
{
    const ptrdiff_t T = a->T, u = a->u, G = 3 * u;
    const RT *bias = (const RT *)a->bias;           /* (2,3u) or (3u,) or NULL */
    const RT *U = (const RT *)a->U;
    RT *Z = (RT *)a->Z, *R = (RT *)a->R, *RH = (RT *)a->RH, *Hm = (RT *)a->Hm;
    RT *hseq = (RT *)a->hseq;
    const int after = a->reset_after;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    for (s = 0; s < T; s++) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        RSUF(stage_hprev)(a, b0, b1, s, t);
        RGEMM(0, 0, b1 - b0, after ? G : 2 * u, u, (RT)1, Hm + (b0 * T + t) * u, T * u,
              U, G, (RT)0, R + (b0 * T + t) * G, T * G);
        for (b = b0; b < b1; b++) {
            RT *z = Z + (b * T + t) * G, *r = R + (b * T + t) * G;
            if (!RSUF(row_active)(a, b, t)) {
                if (!after) { RT *rh = RH + (b * T + t) * u; for (j = 0; j < u; j++) rh[j] = (RT)0; }
                continue;
            }
            if (bias) {
                for (j = 0; j < G; j++) z[j] += bias[j];
                if (after) for (j = 0; j < G; j++) r[j] += bias[G + j];
            }
            for (j = 0; j < 2 * u; j++) z[j] += r[j];
            RSUF(act_run)(a->ract, z, 2 * u);
            if (!after) {
                RT *rh = RH + (b * T + t) * u;
                const RT *hm = Hm + (b * T + t) * u;
                for (j = 0; j < u; j++) rh[j] = z[u + j] * hm[j];
            }
        }
        if (!after)
            RGEMM(0, 0, b1 - b0, u, u, (RT)1, RH + (b0 * T + t) * u, T * u,
                  U + 2 * u, G, (RT)0, R + (b0 * T + t) * G + 2 * u, T * G);
        for (b = b0; b < b1; b++) {
            const RT *hp = RSUF(hprev_row)(a, b, s);
            RT *z = Z + (b * T + t) * G, *r = R + (b * T + t) * G;
            RT *h = hseq + (b * T + s) * u;
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < u; j++) h[j] = hp[j];
                continue;
            }
            if (after) for (j = 0; j < u; j++) z[2 * u + j] += z[u + j] * r[2 * u + j];
            else for (j = 0; j < u; j++) z[2 * u + j] += r[2 * u + j];
            RSUF(act_run)(a->act, z + 2 * u, u);
            for (j = 0; j < u; j++) h[j] = z[j] * hp[j] + ((RT)1 - z[j]) * z[2 * u + j];
        }
    }
}

RATTR static void
RSUF(gru_backward_slab)(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t slab)
{
    const ptrdiff_t T = a->T, u = a->u, G = 3 * u;
    const RT *Z = (const RT *)a->Z, *R = (const RT *)a->R, *Hm = (const RT *)a->Hm;
    const RT *dhs = (const RT *)a->d_hseq, *rm = (const RT *)a->rec_mask;
    const RT *UT = (const RT *)a->UT;              /* (3u, u) */
    RT *dZ = (RT *)a->dZ, *dZr = (RT *)a->dZr, *dh = (RT *)a->dh;
    RT *tmp = (RT *)a->tmp, *tmp2 = (RT *)a->tmp2;
    RT *dbp = a->db_part ? (RT *)a->db_part + slab * G : NULL;
    RT *dbp2 = a->db2_part ? (RT *)a->db2_part + slab * G : NULL;
    const int after = a->reset_after;
    ptrdiff_t s, b, j;
    if (b1 <= b0) return;
    RSUF(init_carry)(a, a->d_h_last, dh, b0, b1);
    if (dbp) for (j = 0; j < G; j++) dbp[j] = (RT)0;
    if (dbp2) for (j = 0; j < G; j++) dbp2[j] = (RT)0;
    for (s = T - 1; s >= 0; s--) {
        const ptrdiff_t t = RSUF(time_of)(a, s);
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u, *d = dZ + (b * T + t) * G;
            const RT *z = Z + (b * T + t) * G, *r = R + (b * T + t) * G;
            const RT *hp = RSUF(hprev_row)(a, b, s);
            if (dhs) { const RT *x = dhs + (b * T + s) * u; for (j = 0; j < u; j++) gh[j] += x[j]; }
            if (!RSUF(row_active)(a, b, t)) {
                for (j = 0; j < G; j++) d[j] = (RT)0;
                if (after) { RT *dr = dZr + (b * T + t) * G; for (j = 0; j < G; j++) dr[j] = (RT)0; }
                continue;
            }
            for (j = 0; j < u; j++) {
                d[j] = gh[j] * (hp[j] - z[2 * u + j]);
                d[2 * u + j] = gh[j] * ((RT)1 - z[j]);
                gh[j] *= z[j];                       /* direct path through z * h_{t-1} */
            }
            RSUF(dact_run)(a->ract, z, d, u);
            RSUF(dact_run)(a->act, z + 2 * u, d + 2 * u, u);
            if (after) {
                RT *dr = dZr + (b * T + t) * G;
                for (j = 0; j < u; j++) d[u + j] = d[2 * u + j] * r[2 * u + j];
                RSUF(dact_run)(a->ract, z + u, d + u, u);
                for (j = 0; j < 2 * u; j++) dr[j] = d[j];
                for (j = 0; j < u; j++) dr[2 * u + j] = d[2 * u + j] * z[u + j];
                if (dbp) for (j = 0; j < G; j++) dbp[j] += d[j];
                if (dbp2) for (j = 0; j < G; j++) dbp2[j] += dr[j];
            }
        }
        if (after) {
            RGEMM(0, 0, b1 - b0, u, G, (RT)1, dZr + (b0 * T + t) * G, T * G,
                  UT, u, (RT)0, tmp + b0 * u, u);
        } else {
            /* d(r * hm) through U_h, then the reset gate, then z/r through U_zr */
            RGEMM(0, 0, b1 - b0, u, u, (RT)1, dZ + (b0 * T + t) * G + 2 * u, T * G,
                  UT + 2 * u * u, u, (RT)0, tmp2 + b0 * u, u);
            for (b = b0; b < b1; b++) {
                RT *d = dZ + (b * T + t) * G;
                const RT *z = Z + (b * T + t) * G, *hm = Hm + (b * T + t) * u;
                const RT *drh = tmp2 + b * u;
                if (!RSUF(row_active)(a, b, t)) continue;
                for (j = 0; j < u; j++) d[u + j] = drh[j] * hm[j];
                RSUF(dact_run)(a->ract, z + u, d + u, u);
                if (dbp) for (j = 0; j < G; j++) dbp[j] += d[j];
            }
            RGEMM(0, 0, b1 - b0, u, 2 * u, (RT)1, dZ + (b0 * T + t) * G, T * G,
                  UT, u, (RT)0, tmp + b0 * u, u);
        }
        for (b = b0; b < b1; b++) {
            RT *gh = dh + b * u, *r = tmp + b * u;
            if (!RSUF(row_active)(a, b, t)) continue;
            if (!after) {
                const RT *z = Z + (b * T + t) * G, *drh = tmp2 + b * u;
                for (j = 0; j < u; j++) r[j] += drh[j] * z[u + j];
            }
            if (rm) { const RT *m = rm + b * u; for (j = 0; j < u; j++) gh[j] += r[j] * m[j]; }
            else for (j = 0; j < u; j++) gh[j] += r[j];
        }
    }
}
