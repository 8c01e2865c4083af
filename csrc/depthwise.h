/* Depthwise convolution rows (depth multiplier 1) for engine._kernels.conv, compiled per
 * instruction set and picked at run time.
 *
 * depthwise_vec.h holds the passes once, over GCC vector types; here they are instantiated for
 * float and double at 16 bytes (baseline: SSE2 on x86-64, whatever the target has elsewhere),
 * 32 bytes with AVX2+FMA and 64 bytes with AVX-512F, and dw_simd() picks the best the CPU has
 * unless a test capped it (conv.set_simd_path).  The build stays baseline x86-64. */
#ifndef ENGINE_DEPTHWISE_H
#define ENGINE_DEPTHWISE_H

#include <stddef.h>
#include "cpu_features.h"

/* Convolution geometry: input N x H x W x C, kernel kh x kw (x C x F), output N x Ho x Wo,
 * strides sh, sw, dilations dh, dw, top/left padding pt, pl.  conv.pyx's Geometry. */
typedef struct {
    ptrdiff_t N, H, W, C, kh, kw, F, Ho, Wo, sh, sw, dh, dw, pt, pl;
    int nt;     /* threads of one pass, fixed when the shapes are checked (conv.pyx's _team) */
} conv_geometry;

/* The backward-input pass lists the kernel rows covering an input row on the stack; taller
 * kernels (and, to keep one rule, wider ones) take conv.pyx's plain loops. */
#define DW_MAX_TAPS 32

/* Channels per chunk of the forward pass: a multiple of every vector block. */
#ifndef DW_CHUNK_BYTES
#define DW_CHUNK_BYTES 1024
#endif

/* [lo, hi): the t in [0, count) with 0 <= start + t * step < size (step >= 1). */
static inline void dw_inside(ptrdiff_t start, ptrdiff_t step, ptrdiff_t count, ptrdiff_t size,
                             ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t l = start >= 0 ? 0 : (-start + step - 1) / step;
    ptrdiff_t h = start >= size ? 0 : (size - 1 - start) / step + 1;
    if (h > count) h = count;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* The taps t of a kernel axis whose window position covers input position pos, and the output
 * position of each: pos + pad - t * dil = o * stride with 0 <= o < out_size.  Returns how many. */
static inline ptrdiff_t dw_taps_covering(ptrdiff_t pos, ptrdiff_t pad, ptrdiff_t stride, ptrdiff_t dil,
                                         ptrdiff_t k, ptrdiff_t out_size, ptrdiff_t *taps, ptrdiff_t *outs)
{
    ptrdiff_t t, count = 0;
    for (t = 0; t < k; t++) {
        ptrdiff_t at = pos + pad - t * dil;
        if (at < 0)
            break;                       /* later taps sit further left */
        if (at % stride == 0 && at / stride < out_size) {
            taps[count] = t;
            outs[count] = at / stride;
            count++;
        }
    }
    return count;
}

#define DV_ATTR
typedef float dw_vf_base __attribute__((vector_size(16)));
typedef double dw_vd_base __attribute__((vector_size(16)));
#define DV_T float
#define DV_V dw_vf_base
#define DV_W 4
#define DV_SUF(name) name##_f_base
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#define DV_T double
#define DV_V dw_vd_base
#define DV_W 2
#define DV_SUF(name) name##_d_base
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#undef DV_ATTR

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define DW_HAVE_SIMD 1
#define DV_ATTR __attribute__((target("avx2,fma")))
typedef float dw_vf_avx2 __attribute__((vector_size(32)));
typedef double dw_vd_avx2 __attribute__((vector_size(32)));
#define DV_T float
#define DV_V dw_vf_avx2
#define DV_W 8
#define DV_SUF(name) name##_f_avx2
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#define DV_T double
#define DV_V dw_vd_avx2
#define DV_W 4
#define DV_SUF(name) name##_d_avx2
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#undef DV_ATTR

#define DV_ATTR __attribute__((target("avx512f,avx2,fma")))
typedef float dw_vf_avx512 __attribute__((vector_size(64)));
typedef double dw_vd_avx512 __attribute__((vector_size(64)));
#define DV_T float
#define DV_V dw_vf_avx512
#define DV_W 16
#define DV_SUF(name) name##_f_avx512
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#define DV_T double
#define DV_V dw_vd_avx512
#define DV_W 8
#define DV_SUF(name) name##_d_avx512
#include "depthwise_vec.h"
#undef DV_T
#undef DV_V
#undef DV_W
#undef DV_SUF
#undef DV_ATTR
#else
#define DW_HAVE_SIMD 0
#endif

/* 0 baseline, 1 AVX2+FMA, 2 AVX-512F: the best the CPU has unless a test capped it. */
static int dw_simd_level = -1;
static int dw_simd_cap = 2;

static inline int dw_simd(void)
{
    if (dw_simd_level < 0) {
        int level = 0;
        if (DW_HAVE_SIMD && engine_cpu_has_avx2_fma()) level = 1;
        if (level == 1 && engine_cpu_has_avx512f()) level = 2;
        dw_simd_level = level < dw_simd_cap ? level : dw_simd_cap;
    }
    return dw_simd_level;
}

static void dw_set_simd_cap(int cap)
{
    dw_simd_cap = cap;
    dw_simd_level = -1;
}

#if DW_HAVE_SIMD
#define DW_PICK(name, t) (dw_simd() == 2 ? name##_##t##_avx512 : dw_simd() == 1 ? name##_##t##_avx2 \
                          : name##_##t##_base)
#else
#define DW_PICK(name, t) name##_##t##_base
#endif

/* One row of each pass, by element type; r indexes output rows (forward, kernel gradient) or
 * input rows (input gradient, with a per-thread scratch of dw_input_scratch(g) entries). */
static inline ptrdiff_t dw_input_scratch(const conv_geometry *g) { return g->W * (1 + 2 * g->kw); }
static inline void dw_forward_row_f(const float *x, const float *w, float *out, const conv_geometry *g,
                                    ptrdiff_t r) { DW_PICK(dw_forward_row, f)(x, w, out, g, r); }
static inline void dw_forward_row_d(const double *x, const double *w, double *out, const conv_geometry *g,
                                    ptrdiff_t r) { DW_PICK(dw_forward_row, d)(x, w, out, g, r); }
static inline void dw_backward_input_row_f(const float *gy, const float *w, float *dx, const conv_geometry *g,
                                           ptrdiff_t r, ptrdiff_t *cols)
{ DW_PICK(dw_backward_input_row, f)(gy, w, dx, g, r, cols); }
static inline void dw_backward_input_row_d(const double *gy, const double *w, double *dx,
                                           const conv_geometry *g, ptrdiff_t r, ptrdiff_t *cols)
{ DW_PICK(dw_backward_input_row, d)(gy, w, dx, g, r, cols); }
static inline void dw_backward_weight_row_f(const float *x, const float *gy, float *dw, const conv_geometry *g,
                                            ptrdiff_t r) { DW_PICK(dw_backward_weight_row, f)(x, gy, dw, g, r); }
static inline void dw_backward_weight_row_d(const double *x, const double *gy, double *dw,
                                            const conv_geometry *g, ptrdiff_t r)
{ DW_PICK(dw_backward_weight_row, d)(x, gy, dw, g, r); }

#endif
