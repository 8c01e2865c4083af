/* The float gate math of recurrent_math.h written once for a SIMD width, and instantiated by it
 * for AVX2 (8 floats) and AVX-512F (16) (this file has no include guard on purpose).  Expected
 * macros: RV_T (vector type), RV_W (floats per vector), RV_SUF(n) (name mangling), RV_ATTR (the
 * target attribute), the operations RV_SET1, RV_LOAD, RV_STORE, RV_ADD, RV_SUB, RV_MUL, RV_DIV,
 * RV_MIN, RV_MAX, RV_FMADD(a, b, c) = a*b+c, RV_FNMADD(a, b, c) = c-a*b, RV_ROUND (to nearest),
 * RV_POW2I(n) (2^n for integral n), RV_ABS, RV_WITH_SIGN_OF(y, v) (|y| with v's sign) and
 * RV_SELECT_LT(a, t, x, y) (a < t ? x : y per lane), and optionally RV_REST_SIGMOID_RUN,
 * RV_REST_TANH_RUN and RV_REST_CELL_FROM: a narrower instantiation that finishes what is left
 * past whole vectors.  The polynomials are fast_math.h's engine_expf and engine_tanhf (the
 * exp's range clamped to [-87, 88], where one 2^n factor stays a normal float). */

RV_ATTR __attribute__((always_inline)) static inline RV_T RV_SUF(rnn_exp)(RV_T x)
{
    RV_T n, r, p;
    x = RV_MIN(RV_MAX(x, RV_SET1(-87.0f)), RV_SET1(88.0f));
    n = RV_ROUND(RV_MUL(x, RV_SET1(1.44269504088896341f)));
    r = RV_FNMADD(n, RV_SET1(ENGINE_EXPF_LN2_HI), x);
    r = RV_FNMADD(n, RV_SET1(ENGINE_EXPF_LN2_LO), r);
    p = RV_SET1(ENGINE_EXPF_C5);
    p = RV_FMADD(p, r, RV_SET1(ENGINE_EXPF_C4));
    p = RV_FMADD(p, r, RV_SET1(ENGINE_EXPF_C3));
    p = RV_FMADD(p, r, RV_SET1(ENGINE_EXPF_C2));
    p = RV_FMADD(p, r, RV_SET1(ENGINE_EXPF_C1));
    p = RV_FMADD(p, r, RV_SET1(ENGINE_EXPF_C0));
    /* 1 + r + r^2 p as 1 + r (1 + r p): two fused multiply-adds */
    p = RV_FMADD(RV_FMADD(p, r, RV_SET1(1.0f)), r, RV_SET1(1.0f));
    return RV_MUL(p, RV_POW2I(n));
}

RV_ATTR __attribute__((always_inline)) static inline RV_T RV_SUF(rnn_sigmoid)(RV_T x)
{
    const RV_T one = RV_SET1(1.0f);
    return RV_DIV(one, RV_ADD(one, RV_SUF(rnn_exp)(RV_SUB(RV_SET1(0.0f), x))));
}

/* The exp form away from zero, the odd series near it. */
RV_ATTR __attribute__((always_inline)) static inline RV_T RV_SUF(rnn_tanh)(RV_T v)
{
    const RV_T one = RV_SET1(1.0f);
    RV_T ax = RV_ABS(v);
    RV_T e = RV_SUF(rnn_exp)(RV_MUL(RV_SET1(-2.0f), ax));
    RV_T big = RV_DIV(RV_SUB(one, e), RV_ADD(one, e));
    RV_T x2 = RV_MUL(v, v);
    RV_T q = RV_FMADD(x2, RV_SET1(-17.0f / 315.0f), RV_SET1(2.0f / 15.0f));
    q = RV_FMADD(x2, q, RV_SET1(-1.0f / 3.0f));
    q = RV_FMADD(x2, q, one);
    return RV_WITH_SIGN_OF(RV_SELECT_LT(ax, RV_SET1(0.125f), RV_MUL(ax, q), big), v);
}

/* Activations in place over whole vectors; returns how many floats were done. */
RV_ATTR __attribute__((noinline)) static ptrdiff_t RV_SUF(rnn_sigmoid_run)(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + RV_W <= n; j += RV_W) RV_STORE(x + j, RV_SUF(rnn_sigmoid)(RV_LOAD(x + j)));
#ifdef RV_REST_SIGMOID_RUN
    j += RV_REST_SIGMOID_RUN(x + j, n - j);
#endif
    return j;
}

RV_ATTR __attribute__((noinline)) static ptrdiff_t RV_SUF(rnn_tanh_run)(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + RV_W <= n; j += RV_W) RV_STORE(x + j, RV_SUF(rnn_tanh)(RV_LOAD(x + j)));
#ifdef RV_REST_TANH_RUN
    j += RV_REST_TANH_RUN(x + j, n - j);
#endif
    return j;
}

/* One LSTM cell (one batch row, one step) with Keras's default activations, in two passes over
 * units [j, u): the gate pre-activations z (i, f, c, o runs of u) become the activated gates in
 * place, then c, tanh(c) and h.  Each vector's chain through a gate activation, the state and
 * tanh(c) is ~135 cycles deep and ~150 instructions long, so in one pass the reorder window
 * held less than two vectors' worth and the cell ran at the chain's latency (~85 cycles per
 * vector on Zen 3); split, each pass's vectors are independent of each other and it runs at
 * the pipes' throughput.  (Separate passes per gate, each a loop of its own, had cost more than
 * the arithmetic at small unit counts.)  Returns how many units are done; the caller's scalar
 * loop finishes the rest. */
RV_ATTR static inline ptrdiff_t
RV_SUF(rnn_lstm_cell_from)(float *restrict z, const float *restrict bias, const float *restrict cp,
                           float *restrict c, float *restrict tc, float *restrict h, ptrdiff_t u,
                           ptrdiff_t j)
{
    const ptrdiff_t j0 = j;
    ptrdiff_t jv;
    for (; j + RV_W <= u; j += RV_W) {
        RV_T zi = RV_LOAD(z + j), zf = RV_LOAD(z + u + j);
        RV_T zg = RV_LOAD(z + 2 * u + j), zo = RV_LOAD(z + 3 * u + j);
        if (bias) {
            zi = RV_ADD(zi, RV_LOAD(bias + j));
            zf = RV_ADD(zf, RV_LOAD(bias + u + j));
            zg = RV_ADD(zg, RV_LOAD(bias + 2 * u + j));
            zo = RV_ADD(zo, RV_LOAD(bias + 3 * u + j));
        }
        RV_STORE(z + j, RV_SUF(rnn_sigmoid)(zi));
        RV_STORE(z + u + j, RV_SUF(rnn_sigmoid)(zf));
        RV_STORE(z + 2 * u + j, RV_SUF(rnn_tanh)(zg));
        RV_STORE(z + 3 * u + j, RV_SUF(rnn_sigmoid)(zo));
    }
    for (jv = j0; jv < j; jv += RV_W) {
        RV_T cc = RV_FMADD(RV_LOAD(z + u + jv), RV_LOAD(cp + jv),
                           RV_MUL(RV_LOAD(z + jv), RV_LOAD(z + 2 * u + jv)));
        RV_T t = RV_SUF(rnn_tanh)(cc);
        RV_STORE(c + jv, cc);
        RV_STORE(tc + jv, t);
        RV_STORE(h + jv, RV_MUL(RV_LOAD(z + 3 * u + jv), t));
    }
#ifdef RV_REST_CELL_FROM
    j = RV_REST_CELL_FROM(z, bias, cp, c, tc, h, u, j);
#endif
    return j;
}

RV_ATTR static inline ptrdiff_t
RV_SUF(rnn_lstm_cell)(float *restrict z, const float *restrict bias, const float *restrict cp,
                      float *restrict c, float *restrict tc, float *restrict h, ptrdiff_t u)
{
    return RV_SUF(rnn_lstm_cell_from)(z, bias, cp, c, tc, h, u, 0);
}
