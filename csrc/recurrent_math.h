/* C side of engine._kernels.recurrent: shared argument block, fast float
 * activations, and the slab kernels of recurrent_impl.h instantiated for
 * float (baseline and AVX2/FMA, picked at run time) and double.
 *
 * float uses a polynomial exp that gcc can vectorise (libm expf calls would
 * keep the gate math scalar and dominate small-unit LSTMs); double keeps libm
 * so the float64 path stays a precise reference for gradient checks.
 */
#ifndef ENGINE_RECURRENT_MATH_H
#define ENGINE_RECURRENT_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "gemm.h"
#include "cpu_features.h"

enum { RNN_LINEAR = 0, RNN_TANH = 1, RNN_SIGMOID = 2, RNN_RELU = 3, RNN_HARD_SIGMOID = 4 };

/* Everything one cell kernel needs; pointers are to the caller's dtype. */
typedef struct {
    ptrdiff_t B, T, u;
    int backwards, act, ract, reset_after;
    const unsigned char *mask;   /* (B, T) or NULL */
    const void *rec_mask;        /* (B, u) or NULL */
    const void *U;               /* (u, G*u) recurrent kernel */
    const void *UT;              /* (G*u, u) its transpose, backward only */
    const void *bias;            /* NULL when the layer has none */
    const void *h0, *c0;
    void *Z, *R, *RH, *Hm, *C, *TC, *hseq;
    const void *d_hseq, *d_h_last, *d_c_last;
    void *dZ, *dZr, *dh, *dc, *tmp, *tmp2, *db_part, *db2_part;
} rnn_args;

/* exp for float without libm: 2^n * p(r), |r| <= ln2/2, degree-6 Taylor
 * (relative error ~1e-7); the input is clamped so 2^n stays a normal float. */
static inline __attribute__((always_inline)) float rnn_expf(float x)
{
    float n, r, p;
    int32_t bits;
    float scale;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round to nearest */
    r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = ((int32_t)n + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh through exp(-2|x|); a short odd series near zero avoids the
 * cancellation in 1 - e there. */
static inline __attribute__((always_inline)) float rnn_tanhf(float x)
{
    float ax = fabsf(x);
    float e = rnn_expf(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    float x2 = x * x;
    float small = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f))));
    float y = ax < 0.125f ? small : big;
    return x < 0.0f ? -y : y;
}

#define RT float
#define RSUF(n) n##_f_base
#define RATTR
#define REXP(x) rnn_expf(x)
#define RTANH(x) rnn_tanhf(x)
#define RGEMM engine_sgemm
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define RNN_HAVE_AVX2 1
#include <immintrin.h>

/* gcc does not vectorise rnn_expf's bit tricks, and the gate activations are
 * most of an LSTM step's time at small unit counts, so the AVX2 build gets
 * explicit 8-wide versions of the same polynomial. */
#define RNN_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

RNN_AVX2 __m256 rnn_exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    __m256 n, r, p;
    __m256i bits;
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

RNN_AVX2 __m256 rnn_sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, rnn_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* Same split as rnn_tanhf: the exp form away from zero, the odd series near it. */
RNN_AVX2 __m256 rnn_tanh8(__m256 v)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, v);
    __m256 e = rnn_exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ax));
    __m256 big = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    __m256 x2 = _mm256_mul_ps(v, v);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-17.0f / 315.0f), _mm256_set1_ps(2.0f / 15.0f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.0f / 3.0f));
    q = _mm256_fmadd_ps(x2, q, one);
    __m256 small = _mm256_mul_ps(ax, q);
    __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.125f), _CMP_LT_OQ));
    return _mm256_or_ps(y, _mm256_and_ps(sign, v));
}

__attribute__((target("avx2,fma"), noinline)) static ptrdiff_t rnn_sigmoid_run_avx2(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, rnn_sigmoid8(_mm256_loadu_ps(x + j)));
    return j;
}

__attribute__((target("avx2,fma"), noinline)) static ptrdiff_t rnn_tanh_run_avx2(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, rnn_tanh8(_mm256_loadu_ps(x + j)));
    return j;
}

/* One LSTM cell (one batch row, one step) with Keras's default activations, all four gates
 * and the state update in a single pass over the units: the gate pre-activations z (i, f, c,
 * o runs of u) become the activated gates in place, then c, tanh(c) and h.  Separate passes per
 * gate cost more than the arithmetic at small unit counts (loop set-up and reloads per run of
 * 32).  Returns how many units it did: whole vectors; rnn's scalar loop finishes the rest. */
__attribute__((target("avx2,fma"))) static inline ptrdiff_t
rnn_lstm_cell_avx2_from(float *restrict z, const float *restrict bias, const float *restrict cp,
                        float *restrict c, float *restrict tc, float *restrict h, ptrdiff_t u,
                        ptrdiff_t j)
{
    for (; j + 8 <= u; j += 8) {
        __m256 zi = _mm256_loadu_ps(z + j), zf = _mm256_loadu_ps(z + u + j);
        __m256 zg = _mm256_loadu_ps(z + 2 * u + j), zo = _mm256_loadu_ps(z + 3 * u + j);
        if (bias) {
            zi = _mm256_add_ps(zi, _mm256_loadu_ps(bias + j));
            zf = _mm256_add_ps(zf, _mm256_loadu_ps(bias + u + j));
            zg = _mm256_add_ps(zg, _mm256_loadu_ps(bias + 2 * u + j));
            zo = _mm256_add_ps(zo, _mm256_loadu_ps(bias + 3 * u + j));
        }
        __m256 gi = rnn_sigmoid8(zi), gf = rnn_sigmoid8(zf), gg = rnn_tanh8(zg), go = rnn_sigmoid8(zo);
        _mm256_storeu_ps(z + j, gi);
        _mm256_storeu_ps(z + u + j, gf);
        _mm256_storeu_ps(z + 2 * u + j, gg);
        _mm256_storeu_ps(z + 3 * u + j, go);
        __m256 cc = _mm256_fmadd_ps(gf, _mm256_loadu_ps(cp + j), _mm256_mul_ps(gi, gg));
        __m256 t = rnn_tanh8(cc);
        _mm256_storeu_ps(c + j, cc);
        _mm256_storeu_ps(tc + j, t);
        _mm256_storeu_ps(h + j, _mm256_mul_ps(go, t));
    }
    return j;
}

__attribute__((target("avx2,fma"))) static inline ptrdiff_t
rnn_lstm_cell_avx2(float *restrict z, const float *restrict bias, const float *restrict cp,
                   float *restrict c, float *restrict tc, float *restrict h, ptrdiff_t u)
{
    return rnn_lstm_cell_avx2_from(z, bias, cp, c, tc, h, u, 0);
}

#define RSUF(n) n##_f_avx2
#define RATTR __attribute__((target("avx2,fma")))
#define RVEC_SIGMOID rnn_sigmoid_run_avx2
#define RVEC_TANH rnn_tanh_run_avx2
#define RVEC_LSTM_CELL rnn_lstm_cell_avx2
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR
#undef RVEC_SIGMOID
#undef RVEC_TANH
#undef RVEC_LSTM_CELL

/* The same gate math 16 wide for AVX-512F (what remains of a run after whole 16-float vectors
 * goes through the 8-wide code): an LSTM step's cell is half the instructions, which at 32
 * units per row is most of the step after its small GEMM. */
#define RNN_HAVE_AVX512 1
#define RNN_AVX512 __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline

RNN_AVX512 __m512 rnn_exp16(__m512 x)
{
    __m512 n, r, p;
    __m512i bits;
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

RNN_AVX512 __m512 rnn_sigmoid16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, rnn_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

RNN_AVX512 __m512 rnn_tanh16(__m512 v)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(v)));
    __m512 e = rnn_exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), ax));
    __m512 big = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    __m512 x2 = _mm512_mul_ps(v, v);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(-17.0f / 315.0f), _mm512_set1_ps(2.0f / 15.0f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.0f / 3.0f));
    q = _mm512_fmadd_ps(x2, q, one);
    __m512 small = _mm512_mul_ps(ax, q);
    __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.125f), _CMP_LT_OQ), big, small);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y),
                                               _mm512_and_si512(sign, _mm512_castps_si512(v))));
}

__attribute__((target("avx512f,avx2,fma"), noinline)) static ptrdiff_t rnn_sigmoid_run_avx512(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, rnn_sigmoid16(_mm512_loadu_ps(x + j)));
    return j + rnn_sigmoid_run_avx2(x + j, n - j);
}

__attribute__((target("avx512f,avx2,fma"), noinline)) static ptrdiff_t rnn_tanh_run_avx512(float *x, ptrdiff_t n)
{
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, rnn_tanh16(_mm512_loadu_ps(x + j)));
    return j + rnn_tanh_run_avx2(x + j, n - j);
}

__attribute__((target("avx512f,avx2,fma"))) static inline ptrdiff_t
rnn_lstm_cell_avx512(float *restrict z, const float *restrict bias, const float *restrict cp,
                     float *restrict c, float *restrict tc, float *restrict h, ptrdiff_t u)
{
    ptrdiff_t j = 0;
    for (; j + 16 <= u; j += 16) {
        __m512 zi = _mm512_loadu_ps(z + j), zf = _mm512_loadu_ps(z + u + j);
        __m512 zg = _mm512_loadu_ps(z + 2 * u + j), zo = _mm512_loadu_ps(z + 3 * u + j);
        if (bias) {
            zi = _mm512_add_ps(zi, _mm512_loadu_ps(bias + j));
            zf = _mm512_add_ps(zf, _mm512_loadu_ps(bias + u + j));
            zg = _mm512_add_ps(zg, _mm512_loadu_ps(bias + 2 * u + j));
            zo = _mm512_add_ps(zo, _mm512_loadu_ps(bias + 3 * u + j));
        }
        __m512 gi = rnn_sigmoid16(zi), gf = rnn_sigmoid16(zf), gg = rnn_tanh16(zg), go = rnn_sigmoid16(zo);
        _mm512_storeu_ps(z + j, gi);
        _mm512_storeu_ps(z + u + j, gf);
        _mm512_storeu_ps(z + 2 * u + j, gg);
        _mm512_storeu_ps(z + 3 * u + j, go);
        __m512 cc = _mm512_fmadd_ps(gf, _mm512_loadu_ps(cp + j), _mm512_mul_ps(gi, gg));
        __m512 t = rnn_tanh16(cc);
        _mm512_storeu_ps(c + j, cc);
        _mm512_storeu_ps(tc + j, t);
        _mm512_storeu_ps(h + j, _mm512_mul_ps(go, t));
    }
    return rnn_lstm_cell_avx2_from(z, bias, cp, c, tc, h, u, j);
}

#define RSUF(n) n##_f_avx512
#define RATTR __attribute__((target("avx512f,avx2,fma")))
#define RVEC_SIGMOID rnn_sigmoid_run_avx512
#define RVEC_TANH rnn_tanh_run_avx512
#define RVEC_LSTM_CELL rnn_lstm_cell_avx512
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR
#undef RVEC_SIGMOID
#undef RVEC_TANH
#undef RVEC_LSTM_CELL
#else
#define RNN_HAVE_AVX2 0
#define RNN_HAVE_AVX512 0
#endif
#undef RT
#undef REXP
#undef RTANH
#undef RGEMM

#define RT double
#define RSUF(n) n##_d
#define RATTR
#define REXP(x) exp(x)
#define RTANH(x) tanh(x)
#define RGEMM engine_dgemm
#include "recurrent_impl.h"
#undef RT
#undef RSUF
#undef RATTR
#undef REXP
#undef RTANH
#undef RGEMM

/* 0 portable C, 1 AVX2+FMA, 2 AVX-512F: the best the CPU has unless a test capped it. */
static int rnn_simd_level = -1;
static int rnn_simd_cap = 2;

static inline int rnn_simd(void)
{
    if (rnn_simd_level < 0) {
        int level = 0;
        if (RNN_HAVE_AVX2 && engine_cpu_has_avx2_fma()) level = 1;
        if (level == 1 && RNN_HAVE_AVX512 && engine_cpu_has_avx512f()) level = 2;
        rnn_simd_level = level < rnn_simd_cap ? level : rnn_simd_cap;
    }
    return rnn_simd_level;
}

/* Cap this module's gate math and its GEMM copy: 0 portable, 1 AVX2, 2 whatever the CPU has. */
static void rnn_set_simd_cap(int cap)
{
    rnn_simd_cap = cap;
    rnn_simd_level = -1;
    engine_gemm_set_simd(cap);
}

/* Force the portable C paths of this module (gate math and its GEMM copy), for tests. */
static void rnn_set_portable(int on)
{
    rnn_set_simd_cap(on ? 0 : 2);
}

#if RNN_HAVE_AVX2
#define RNN_PICK_F(name) (rnn_simd() == 2 ? name##_f_avx512 : rnn_simd() == 1 ? name##_f_avx2 : name##_f_base)
#else
#define RNN_PICK_F(name) (name##_f_base)
#endif

static void rnn_lstm_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { RNN_PICK_F(lstm_forward_slab)(a, b0, b1); }
static void rnn_lstm_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { lstm_forward_slab_d(a, b0, b1); }
static void rnn_lstm_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { RNN_PICK_F(lstm_backward_slab)(a, b0, b1, k); }
static void rnn_lstm_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { lstm_backward_slab_d(a, b0, b1, k); }
static void rnn_gru_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { RNN_PICK_F(gru_forward_slab)(a, b0, b1); }
static void rnn_gru_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { gru_forward_slab_d(a, b0, b1); }
static void rnn_gru_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { RNN_PICK_F(gru_backward_slab)(a, b0, b1, k); }
static void rnn_gru_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { gru_backward_slab_d(a, b0, b1, k); }
static void rnn_simple_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { RNN_PICK_F(rnn_forward_slab)(a, b0, b1); }
static void rnn_simple_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { rnn_forward_slab_d(a, b0, b1); }
static void rnn_simple_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { RNN_PICK_F(rnn_backward_slab)(a, b0, b1, k); }
static void rnn_simple_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { rnn_backward_slab_d(a, b0, b1, k); }

#endif
