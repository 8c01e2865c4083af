/* Branch-free float32 exp for the elementwise kernels.
 *
 * libm's expf is a call gcc cannot vectorise, and it dominated sigmoid,
 * softmax and friends.  This version is straight-line arithmetic and selects
 * only, so loops calling it auto-vectorise at -O3 on baseline x86-64.
 *
 * Method: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so n*ln2_hi
 * is exact), exp(r) from a degree-6 minimax-style polynomial (max error about
 * 1-2 ulp on the float32 range), then scaling by 2^n.  The scale is applied as
 * two factors 2^(n/2) * 2^(n - n/2), each a normal float, so the hardware
 * multiply produces the correctly rounded overflow to +inf and gradual
 * underflow to subnormals/0 without special cases.
 */
#ifndef ENGINE_ELEMENTWISE_MATH_H
#define ENGINE_ELEMENTWISE_MATH_H

#include <stdint.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    const float ln2_hi = 0.693359375f;          /* few mantissa bits: n * ln2_hi is exact */
    const float ln2_lo = -2.12194440e-4f;
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
    float r = (xc - fn * ln2_hi) - fn * ln2_lo;

    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;

    int32_t half = n >> 1;
    e = e * engine_pow2i_f32(half) * engine_pow2i_f32(n - half);
    return engine_select_f32(is_nan, x, e);
}

static inline float engine_sigmoidf(float v) {
    /* exp(-|v|) never overflows; for v < 0, sigmoid(v) = e * sigmoid(|v|). */
    float e = engine_expf(-fabsf(v));
    float s = 1.0f / (1.0f + e);
    return engine_select_f32(v >= 0.0f, s, e * s);
}

/* float32 span loops built twice: for baseline x86-64 (SSE2, 4 lanes) and
 * with AVX2+FMA (8 lanes, fused multiply-adds); engine_ew_f32_* picks one at
 * run time.  Each writes out[i] only after reading its inputs at i, so out
 * may be any of the inputs. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define ENGINE_EW_HAVE_AVX2_CLONES 1
#define ENGINE_EW_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define ENGINE_EW_HAVE_AVX2_CLONES 0
#define ENGINE_EW_TARGET_AVX2
#endif

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
ATTR static void engine_ew_silu_grad_##SUFFIX(const float *x, const float *g,           \
                                              float *out, ptrdiff_t n) {               \
    for (ptrdiff_t i = 0; i < n; i++) {                                                \
        float v = x[i], s = engine_sigmoidf(v);                                         \
        out[i] = g[i] * (s + v * s * (1.0f - s));                                      \
    }                                                                                  \
}

ENGINE_EW_DEFINE_SPANS(base, )
#if ENGINE_EW_HAVE_AVX2_CLONES
ENGINE_EW_DEFINE_SPANS(avx2, ENGINE_EW_TARGET_AVX2)
#endif

/* Set by elementwise.pyx from engine_cpu_has_avx2_fma() and the SIMD cap (set_simd_path). */
static int engine_ew_use_avx2 = 0;

#if ENGINE_EW_HAVE_AVX2_CLONES
#define ENGINE_EW_PICK(NAME) (engine_ew_use_avx2 ? NAME##_avx2 : NAME##_base)
#else
#define ENGINE_EW_PICK(NAME) NAME##_base
#endif

static inline void engine_ew_f32_exp_shift(const float *x, float shift, float *y, ptrdiff_t n) {
    ENGINE_EW_PICK(engine_ew_exp_shift)(x, shift, y, n);
}
static inline void engine_ew_f32_sigmoid(const float *x, float *y, ptrdiff_t n) {
    ENGINE_EW_PICK(engine_ew_sigmoid)(x, y, n);
}
static inline void engine_ew_f32_silu(const float *x, float *y, ptrdiff_t n) {
    ENGINE_EW_PICK(engine_ew_silu)(x, y, n);
}
static inline void engine_ew_f32_sigmoid_mul(const float *x, const float *g, float *out, ptrdiff_t n) {
    ENGINE_EW_PICK(engine_ew_sigmoid_mul)(x, g, out, n);
}
static inline void engine_ew_f32_silu_grad(const float *x, const float *g, float *out, ptrdiff_t n) {
    ENGINE_EW_PICK(engine_ew_silu_grad)(x, g, out, n);
}


#endif
