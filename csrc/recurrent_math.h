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
#include "gemm_api.h"
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

/* gcc does not vectorise rnn_expf's bit tricks, and the gate activations are most of an LSTM
 * step's time at small unit counts, so the SIMD builds get explicit vector versions of the same
 * polynomials (recurrent_vec.h), 8 wide for AVX2 and 16 wide for AVX-512F: at 32 units per row
 * the cell is most of a step after its small GEMM, and AVX-512 halves its instructions. */
#define RV_T __m256
#define RV_W 8
#define RV_SUF(n) n##_avx2
#define RV_ATTR __attribute__((target("avx2,fma")))
#define RV_SET1 _mm256_set1_ps
#define RV_LOAD _mm256_loadu_ps
#define RV_STORE _mm256_storeu_ps
#define RV_ADD _mm256_add_ps
#define RV_SUB _mm256_sub_ps
#define RV_MUL _mm256_mul_ps
#define RV_DIV _mm256_div_ps
#define RV_MIN _mm256_min_ps
#define RV_MAX _mm256_max_ps
#define RV_FMADD _mm256_fmadd_ps
#define RV_FNMADD _mm256_fnmadd_ps
#define RV_ROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define RV_POW2I(n) _mm256_castsi256_ps(_mm256_slli_epi32( \
    _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define RV_ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (v))
#define RV_WITH_SIGN_OF(y, v) _mm256_or_ps((y), _mm256_and_ps(_mm256_set1_ps(-0.0f), (v)))
#define RV_SELECT_LT(a, t, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (t), _CMP_LT_OQ))
#include "recurrent_vec.h"
#undef RV_T
#undef RV_W
#undef RV_SUF
#undef RV_ATTR
#undef RV_SET1
#undef RV_LOAD
#undef RV_STORE
#undef RV_ADD
#undef RV_SUB
#undef RV_MUL
#undef RV_DIV
#undef RV_MIN
#undef RV_MAX
#undef RV_FMADD
#undef RV_FNMADD
#undef RV_ROUND
#undef RV_POW2I
#undef RV_ABS
#undef RV_WITH_SIGN_OF
#undef RV_SELECT_LT

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

#define RNN_HAVE_AVX512 1
#define RV_T __m512
#define RV_W 16
#define RV_SUF(n) n##_avx512
#define RV_ATTR __attribute__((target("avx512f,avx2,fma")))
#define RV_SET1 _mm512_set1_ps
#define RV_LOAD _mm512_loadu_ps
#define RV_STORE _mm512_storeu_ps
#define RV_ADD _mm512_add_ps
#define RV_SUB _mm512_sub_ps
#define RV_MUL _mm512_mul_ps
#define RV_DIV _mm512_div_ps
#define RV_MIN _mm512_min_ps
#define RV_MAX _mm512_max_ps
#define RV_FMADD _mm512_fmadd_ps
#define RV_FNMADD _mm512_fnmadd_ps
#define RV_ROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define RV_POW2I(n) _mm512_castsi512_ps(_mm512_slli_epi32( \
    _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
/* float and/or/andnot on zmm need AVX-512DQ; the integer forms are AVX-512F */
#define RV_SIGN_BITS _mm512_set1_epi32((int)0x80000000u)
#define RV_ABS(v) _mm512_castsi512_ps(_mm512_andnot_si512(RV_SIGN_BITS, _mm512_castps_si512(v)))
#define RV_WITH_SIGN_OF(y, v) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), \
    _mm512_and_si512(RV_SIGN_BITS, _mm512_castps_si512(v))))
#define RV_SELECT_LT(a, t, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (t), _CMP_LT_OQ), (y), (x))
#define RV_REST_SIGMOID_RUN rnn_sigmoid_run_avx2
#define RV_REST_TANH_RUN rnn_tanh_run_avx2
#define RV_REST_CELL_FROM rnn_lstm_cell_from_avx2
#include "recurrent_vec.h"
#undef RV_T
#undef RV_W
#undef RV_SUF
#undef RV_ATTR
#undef RV_SET1
#undef RV_LOAD
#undef RV_STORE
#undef RV_ADD
#undef RV_SUB
#undef RV_MUL
#undef RV_DIV
#undef RV_MIN
#undef RV_MAX
#undef RV_FMADD
#undef RV_FNMADD
#undef RV_ROUND
#undef RV_POW2I
#undef RV_SIGN_BITS
#undef RV_ABS
#undef RV_WITH_SIGN_OF
#undef RV_SELECT_LT
#undef RV_REST_SIGMOID_RUN
#undef RV_REST_TANH_RUN
#undef RV_REST_CELL_FROM

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

/* Cap this module's gate math and the GEMM (process-wide): 0 portable, 1 AVX2, 2 whatever the CPU has. */
static void rnn_set_simd_cap(int cap)
{
    rnn_simd_cap = cap;
    rnn_simd_level = -1;
    engine_gemm_set_simd(cap);
}

/* Force the portable C paths of this module's gate math and of the GEMM, for tests. */
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
