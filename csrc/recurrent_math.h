/* C side of engine._kernels.recurrent: shared argument block, and the slab kernels of
 * recurrent_impl.h instantiated for float (portable, AVX2+FMA and AVX-512F: one ISA table each,
 * isa.h's scheme) and double.
 *
 * float uses fast_math.h's polynomial exp, sigmoid and tanh (libm expf calls would keep the gate
 * math scalar and dominate small-unit LSTMs); double keeps libm so the float64 path stays a
 * precise reference for gradient checks.
 */
#ifndef ENGINE_RECURRENT_MATH_H
#define ENGINE_RECURRENT_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "gemm_api.h"
#include "fast_math.h"

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

#define RT float
#define RSUF(n) n##_f_base
#define RATTR
#define RSIGMOID(x) engine_sigmoidf(x)
#define RTANH(x) engine_tanhf(x)
#define RHARD_SIGMOID(x) engine_hard_sigmoidf(x)
#define RGEMM engine_sgemm
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR

#if ENGINE_X86_SIMD
#include <immintrin.h>

/* gcc does not vectorise the exp's bit tricks inside these loops, and the gate activations are most of an LSTM
 * step's time at small unit counts, so the SIMD builds get explicit vector versions of the same
 * polynomials (recurrent_vec.h), 8 wide for AVX2 and 16 wide for AVX-512F: at 32 units per row
 * the cell is most of a step after its small GEMM, and AVX-512 halves its instructions. */
#define RV_T __m256
#define RV_W 8
#define RV_SUF(n) n##_avx2
#define RV_ATTR ENGINE_TARGET_AVX2
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
#define RATTR ENGINE_TARGET_AVX2
#define RVEC_SIGMOID rnn_sigmoid_run_avx2
#define RVEC_TANH rnn_tanh_run_avx2
#define RVEC_LSTM_CELL rnn_lstm_cell_avx2
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR
#undef RVEC_SIGMOID
#undef RVEC_TANH
#undef RVEC_LSTM_CELL

#define RV_T __m512
#define RV_W 16
#define RV_SUF(n) n##_avx512
#define RV_ATTR ENGINE_TARGET_AVX512
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
#define RATTR ENGINE_TARGET_AVX512
#define RVEC_SIGMOID rnn_sigmoid_run_avx512
#define RVEC_TANH rnn_tanh_run_avx512
#define RVEC_LSTM_CELL rnn_lstm_cell_avx512
#include "recurrent_impl.h"
#undef RSUF
#undef RATTR
#undef RVEC_SIGMOID
#undef RVEC_TANH
#undef RVEC_LSTM_CELL
#endif
#undef RT
#undef RSIGMOID
#undef RTANH
#undef RHARD_SIGMOID
#undef RGEMM

#define RT double
#define RSUF(n) n##_d
#define RATTR
#define RSIGMOID(x) engine_sigmoid(x)
#define RTANH(x) tanh(x)
#define RHARD_SIGMOID(x) engine_hard_sigmoid(x)
#define RGEMM engine_dgemm
#include "recurrent_impl.h"
#undef RT
#undef RSUF
#undef RATTR
#undef RSIGMOID
#undef RTANH
#undef RHARD_SIGMOID
#undef RGEMM

/* The per-ISA table of float slab kernels (double runs libm's exp and tanh at every level: it is
 * the precise reference of the gradient checks). */
typedef void (*rnn_fwd_fn)(const rnn_args *, ptrdiff_t, ptrdiff_t);
typedef void (*rnn_bwd_fn)(const rnn_args *, ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef struct {
    rnn_fwd_fn lstm_forward, gru_forward, simple_forward;
    rnn_bwd_fn lstm_backward, gru_backward, simple_backward;
} rnn_isa_table;

#define RNN_TABLE(sfx) {lstm_forward_slab_f_##sfx, gru_forward_slab_f_##sfx, rnn_forward_slab_f_##sfx, \
                        lstm_backward_slab_f_##sfx, gru_backward_slab_f_##sfx, rnn_backward_slab_f_##sfx}
static const rnn_isa_table rnn_table_portable = RNN_TABLE(base);
#if ENGINE_X86_SIMD
static const rnn_isa_table rnn_table_avx2 = RNN_TABLE(avx2);
static const rnn_isa_table rnn_table_avx512 = RNN_TABLE(avx512);
ENGINE_ISA_TABLES(rnn_isa_table, rnn_isa, &rnn_table_portable, &rnn_table_avx2, &rnn_table_avx512)
#else
ENGINE_ISA_TABLES(rnn_isa_table, rnn_isa, &rnn_table_portable, &rnn_table_portable, &rnn_table_portable)
#endif
#undef RNN_TABLE

static void rnn_lstm_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { rnn_isa()->lstm_forward(a, b0, b1); }
static void rnn_lstm_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { lstm_forward_slab_d(a, b0, b1); }
static void rnn_lstm_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { rnn_isa()->lstm_backward(a, b0, b1, k); }
static void rnn_lstm_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { lstm_backward_slab_d(a, b0, b1, k); }
static void rnn_gru_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { rnn_isa()->gru_forward(a, b0, b1); }
static void rnn_gru_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { gru_forward_slab_d(a, b0, b1); }
static void rnn_gru_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { rnn_isa()->gru_backward(a, b0, b1, k); }
static void rnn_gru_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { gru_backward_slab_d(a, b0, b1, k); }
static void rnn_simple_forward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { rnn_isa()->simple_forward(a, b0, b1); }
static void rnn_simple_forward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1) { rnn_forward_slab_d(a, b0, b1); }
static void rnn_simple_backward_f(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { rnn_isa()->simple_backward(a, b0, b1, k); }
static void rnn_simple_backward_d(const rnn_args *a, ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t k) { rnn_backward_slab_d(a, b0, b1, k); }

#endif
