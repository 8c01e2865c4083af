/* The one definition of the fast float32 exp, sigmoid and tanh (and the derivatives the kernels
 * take from an activation's output), shared by the elementwise, attention and recurrent kernels;
 * float64 keeps libm (the precise reference of the gradient checks).
 *
 * libm's expf is a call gcc cannot vectorise, and it dominated sigmoid,
 * softmax, LSTM gates and friends.  This version is straight-line arithmetic and selects
 * only, so loops calling it auto-vectorise at -O3 on baseline x86-64.  recurrent_vec.h writes
 * the same polynomial (ENGINE_EXPF_C*) with explicit vector intrinsics.
 *
 * Method: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so n*ln2_hi
 * is exact), exp(r) from a degree-6 minimax-style polynomial (max error about
 * 1-2 ulp on the float32 range), then scaling by 2^n.  The scale is applied as
 * two factors 2^(n/2) * 2^(n - n/2), each a normal float, so the hardware
 * multiply produces the correctly rounded overflow to +inf and gradual
 * underflow to subnormals/0 without special cases.
 */
#ifndef ENGINE_FAST_MATH_H
#define ENGINE_FAST_MATH_H

#include <stdint.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "isa.h"

/* exp(r) = 1 + r + r^2 * p(r) on |r| <= ln2/2, p of degree 5 (minimax-style fit). */
#define ENGINE_EXPF_C5 1.9875691500e-4f
#define ENGINE_EXPF_C4 1.3981999507e-3f
#define ENGINE_EXPF_C3 8.3334519073e-3f
#define ENGINE_EXPF_C2 4.1665795894e-2f
#define ENGINE_EXPF_C1 1.6666665459e-1f
#define ENGINE_EXPF_C0 5.0000001201e-1f
/* ln2 in two parts: few mantissa bits in the first, so n * ENGINE_EXPF_LN2_HI is exact */
#define ENGINE_EXPF_LN2_HI 0.693359375f
#define ENGINE_EXPF_LN2_LO -2.12194440e-4f

static inline float engine_pow2i_f32(int32_t n) {
    /* 2^n for n in [-126, 127] */
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* cond ? a : b as bit masks.  Written with ?: gcc jump-threads the clamps
 * below into separate paths, and since float ops may trap it then refuses to
 * if-convert them back, which blocks vectorisation. */
static inline float engine_select_f32(int cond, float a, float b) {
    uint32_t m = -(uint32_t)(cond != 0), ua, ub, u;
    float r;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    u = (ua & m) | (ub & ~m);
    memcpy(&r, &u, sizeof r);
    return r;
}

static inline float engine_expf(float x) {
    const float log2e = 1.44269504088896341f;
    const float round_magic = 12582912.0f;      /* 1.5 * 2^23: adding it rounds to an integer */
    /* Outside [-104, 89] the result is 0 or +inf anyway; clamping keeps n
     * small enough for the two-factor scale.  NaN is replaced here (so the
     * float->int conversion is defined) and restored at the end. */
    int is_nan = x != x;
    float xc = engine_select_f32(x < -104.0f, -104.0f, x);
    xc = engine_select_f32(xc > 89.0f, 89.0f, xc);
    xc = engine_select_f32(is_nan, 0.0f, xc);

    float fn = (xc * log2e + round_magic) - round_magic;
    int32_t n = (int32_t)fn;
    float r = (xc - fn * ENGINE_EXPF_LN2_HI) - fn * ENGINE_EXPF_LN2_LO;

    float p = ENGINE_EXPF_C5;
    p = p * r + ENGINE_EXPF_C4;
    p = p * r + ENGINE_EXPF_C3;
    p = p * r + ENGINE_EXPF_C2;
    p = p * r + ENGINE_EXPF_C1;
    p = p * r + ENGINE_EXPF_C0;
    float e = p * (r * r) + r + 1.0f;

    int32_t half = n >> 1;
    e = e * engine_pow2i_f32(half) * engine_pow2i_f32(n - half);
    return engine_select_f32(is_nan, x, e);
}

/* log(x) for float32, straight-line so that loops calling it vectorise (libm's logf is a call
 * per element, the whole cost of a cross-entropy on soft targets).
 *
 * Method: x = m 2^e with m in [sqrt(1/2), sqrt(2)); with f = m - 1,
 * log x = e ln2 + f - f^2/2 + f^3 q(f), q of degree 8 (the classic single-precision fit;
 * max error about 1 ulp).  ln2 is split in two so e * ENGINE_EXPF_LN2_HI is exact.
 * Subnormals are scaled by 2^23 first; 0 gives -inf, negatives and NaN give NaN, +inf stays. */
#define ENGINE_LOGF_Q8 7.0376836292e-2f
#define ENGINE_LOGF_Q7 -1.1514610310e-1f
#define ENGINE_LOGF_Q6 1.1676998740e-1f
#define ENGINE_LOGF_Q5 -1.2420140846e-1f
#define ENGINE_LOGF_Q4 1.4249322787e-1f
#define ENGINE_LOGF_Q3 -1.6668057665e-1f
#define ENGINE_LOGF_Q2 2.0000714765e-1f
#define ENGINE_LOGF_Q1 -2.4999993993e-1f
#define ENGINE_LOGF_Q0 3.3333331174e-1f

static inline float engine_logf(float x) {
    int tiny = x < 1.17549435e-38f;                 /* subnormal, zero or negative (NaN is not) */
    float xs = engine_select_f32(tiny, x * 8388608.0f, x);
    uint32_t bits;
    memcpy(&bits, &xs, sizeof bits);
    int32_t e = (int32_t)(bits >> 23) - 127 - (tiny ? 23 : 0);
    uint32_t mbits = (bits & 0x007fffffu) | 0x3f800000u;   /* m in [1, 2) */
    float m;
    memcpy(&m, &mbits, sizeof m);
    int big = m > 1.41421356f;
    m = engine_select_f32(big, 0.5f * m, m);
    e += big;
    float f = m - 1.0f;
    float z = f * f;
    float q = ENGINE_LOGF_Q8;
    q = q * f + ENGINE_LOGF_Q7;
    q = q * f + ENGINE_LOGF_Q6;
    q = q * f + ENGINE_LOGF_Q5;
    q = q * f + ENGINE_LOGF_Q4;
    q = q * f + ENGINE_LOGF_Q3;
    q = q * f + ENGINE_LOGF_Q2;
    q = q * f + ENGINE_LOGF_Q1;
    q = q * f + ENGINE_LOGF_Q0;
    float fe = (float)e;
    float y = (f * z * q + fe * ENGINE_EXPF_LN2_LO) - 0.5f * z;
    y = (f + y) + fe * ENGINE_EXPF_LN2_HI;
    /* the edges: +inf and NaN pass through, 0 is -inf, negatives are NaN */
    y = engine_select_f32(x == INFINITY || x != x, x, y);
    y = engine_select_f32(x == 0.0f, -INFINITY, y);
    return engine_select_f32(x < 0.0f, NAN, y);
}

static inline float engine_sigmoidf(float v) {
    /* exp(-|v|) never overflows; for v < 0, sigmoid(v) = e * sigmoid(|v|). */
    float e = engine_expf(-fabsf(v));
    float s = 1.0f / (1.0f + e);
    return engine_select_f32(v >= 0.0f, s, e * s);
}

static inline double engine_sigmoid(double v) {
    double e = exp(-fabs(v));
    double s = 1.0 / (1.0 + e);
    return v >= 0.0 ? s : e * s;
}

/* tanh through exp(-2|x|); a short odd series near zero avoids the cancellation in 1 - e there. */
static inline float engine_tanhf(float x) {
    float ax = fabsf(x);
    float e = engine_expf(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    float x2 = x * x;
    float small = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f))));
    float y = ax < 0.125f ? small : big;
    return x < 0.0f ? -y : y;
}

/* Derivatives from the activation's output y (any float type), so backward passes need no
 * transcendental call; hard_sigmoid is Keras 3's relu6(x + 3) / 6. */
#define ENGINE_SIGMOID_SLOPE_Y(y) ((y) * (1 - (y)))
#define ENGINE_TANH_SLOPE_Y(y) (1 - (y) * (y))
/* d/dx x sigmoid(x), from x and s = sigmoid(x) */
#define ENGINE_SILU_SLOPE(x, s) ((s) + (x) * (s) * (1 - (s)))
static inline double engine_hard_sigmoid(double x) {
    double v = x / 6.0 + 0.5;
    v = v < 0.0 ? 0.0 : v;
    return v > 1.0 ? 1.0 : v;            /* NaN stays NaN */
}
static inline float engine_hard_sigmoidf(float x) {
    float v = x / 6.0f + 0.5f;
    v = v < 0.0f ? 0.0f : v;
    return v > 1.0f ? 1.0f : v;
}
/* g * hard_sigmoid'(x), from the output y: 1/6 where the output is not clipped */
#define ENGINE_HARD_SIGMOID_GRAD_Y(T, y, g) (((y) > (T)0 && (y) < (T)1) ? (g) / (T)6 : (T)0)

/* float32 span loops built per instruction set: for baseline x86-64 (SSE2, 4 lanes) and
 * with AVX2+FMA (8 lanes, fused multiply-adds), one ISA table each (isa.h's scheme; no AVX-512
 * build: the loops are memory-bound there).  Each writes out[i] only after reading its inputs at
 * i, so out may be any of the inputs. */
#define ENGINE_EW_DEFINE_SPANS(SUFFIX, ATTR)                                          \
ATTR static void engine_ew_exp_shift_##SUFFIX(const float *x, float shift, float *y,   \
                                              ptrdiff_t n) {                           \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = engine_expf(x[i] - shift);                 \
}                                                                                      \
ATTR static void engine_ew_sigmoid_##SUFFIX(const float *x, float *y, ptrdiff_t n) {    \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = engine_sigmoidf(x[i]);                     \
}                                                                                      \
ATTR static void engine_ew_silu_##SUFFIX(const float *x, float *y, ptrdiff_t n) {       \
    for (ptrdiff_t i = 0; i < n; i++) { float v = x[i]; y[i] = v * engine_sigmoidf(v); } \
}                                                                                      \
ATTR static void engine_ew_sigmoid_mul_##SUFFIX(const float *x, const float *g,         \
                                                float *out, ptrdiff_t n) {             \
    for (ptrdiff_t i = 0; i < n; i++) out[i] = g[i] * engine_sigmoidf(x[i]);            \
}                                                                                      \
ATTR static void engine_ew_log_##SUFFIX(const float *x, float *y, ptrdiff_t n) {       \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = engine_logf(x[i]);                         \
}                                                                                      \
ATTR static void engine_ew_silu_grad_##SUFFIX(const float *x, const float *g,           \
                                              float *out, ptrdiff_t n) {               \
    for (ptrdiff_t i = 0; i < n; i++) {                                                \
        float v = x[i], s = engine_sigmoidf(v);                                         \
        out[i] = g[i] * ENGINE_SILU_SLOPE(v, s);                                       \
    }                                                                                  \
}

typedef struct {
    void (*exp_shift)(const float *x, float shift, float *y, ptrdiff_t n);
    void (*sigmoid)(const float *x, float *y, ptrdiff_t n);
    void (*silu)(const float *x, float *y, ptrdiff_t n);
    void (*sigmoid_mul)(const float *x, const float *g, float *out, ptrdiff_t n);
    void (*silu_grad)(const float *x, const float *g, float *out, ptrdiff_t n);
    void (*log)(const float *x, float *y, ptrdiff_t n);
} engine_ew_isa_table;

#define ENGINE_EW_TABLE(SUFFIX) {engine_ew_exp_shift_##SUFFIX, engine_ew_sigmoid_##SUFFIX,     \
    engine_ew_silu_##SUFFIX, engine_ew_sigmoid_mul_##SUFFIX, engine_ew_silu_grad_##SUFFIX, engine_ew_log_##SUFFIX}

ENGINE_EW_DEFINE_SPANS(base, )
static const engine_ew_isa_table engine_ew_table_portable = ENGINE_EW_TABLE(base);
#if ENGINE_X86_SIMD
ENGINE_EW_DEFINE_SPANS(avx2, ENGINE_TARGET_AVX2)
static const engine_ew_isa_table engine_ew_table_avx2 = ENGINE_EW_TABLE(avx2);
ENGINE_ISA_TABLES(engine_ew_isa_table, engine_ew_isa, &engine_ew_table_portable, &engine_ew_table_avx2, &engine_ew_table_avx2)
#else
ENGINE_ISA_TABLES(engine_ew_isa_table, engine_ew_isa, &engine_ew_table_portable, &engine_ew_table_portable, &engine_ew_table_portable)
#endif
#undef ENGINE_EW_TABLE

static inline void engine_ew_f32_exp_shift(const float *x, float shift, float *y, ptrdiff_t n) {
    engine_ew_isa()->exp_shift(x, shift, y, n);
}
static inline void engine_ew_f32_sigmoid(const float *x, float *y, ptrdiff_t n) {
    engine_ew_isa()->sigmoid(x, y, n);
}
static inline void engine_ew_f32_silu(const float *x, float *y, ptrdiff_t n) {
    engine_ew_isa()->silu(x, y, n);
}
static inline void engine_ew_f32_sigmoid_mul(const float *x, const float *g, float *out, ptrdiff_t n) {
    engine_ew_isa()->sigmoid_mul(x, g, out, n);
}
static inline void engine_ew_f32_silu_grad(const float *x, const float *g, float *out, ptrdiff_t n) {
    engine_ew_isa()->silu_grad(x, g, out, n);
}
static inline void engine_ew_f32_log(const float *x, float *y, ptrdiff_t n) {
    engine_ew_isa()->log(x, y, n);
}

#endif
