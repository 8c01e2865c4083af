/* Depthwise convolution rows (depth multiplier 1) for engine._kernels.conv, compiled per
 * instruction set and picked at run time.
 *
 * depthwise_vec.h holds the passes once, over GCC vector types; here they are instantiated for
 * float and double at 16 bytes (baseline: SSE2 on x86-64, whatever the target has elsewhere),
 * 32 bytes with AVX2+FMA and 64 bytes with AVX-512F, one ISA table each (isa.h's scheme), and
 * dw_isa() returns the one for the process-wide level.  The build stays baseline x86-64. */
#ifndef ENGINE_DEPTHWISE_H
#define ENGINE_DEPTHWISE_H

#include <stddef.h>
#include "isa.h"

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

#if ENGINE_X86_SIMD
#define DV_ATTR ENGINE_TARGET_AVX2
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

#define DV_ATTR ENGINE_TARGET_AVX512
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
#endif

/* The per-ISA table of depthwise rows. */
typedef struct {
    void (*forward_row_f)(const float *, const float *, float *, const conv_geometry *, ptrdiff_t);
    void (*forward_row_d)(const double *, const double *, double *, const conv_geometry *, ptrdiff_t);
    void (*backward_input_row_f)(const float *, const float *, float *, const conv_geometry *, ptrdiff_t,
                                 ptrdiff_t *);
    void (*backward_input_row_d)(const double *, const double *, double *, const conv_geometry *,
                                 ptrdiff_t, ptrdiff_t *);
    void (*backward_weight_row_f)(const float *, const float *, float *, const conv_geometry *, ptrdiff_t);
    void (*backward_weight_row_d)(const double *, const double *, double *, const conv_geometry *,
                                  ptrdiff_t);
} dw_isa_table;

#define DW_TABLE(sfx) {dw_forward_row_f_##sfx, dw_forward_row_d_##sfx, dw_backward_input_row_f_##sfx, \
                       dw_backward_input_row_d_##sfx, dw_backward_weight_row_f_##sfx,             \
                       dw_backward_weight_row_d_##sfx}
static const dw_isa_table dw_table_portable = {dw_forward_row_f_base, dw_forward_row_d_base,
    dw_backward_input_row_f_base, dw_backward_input_row_d_base, dw_backward_weight_row_f_base,
    dw_backward_weight_row_d_base};
#if ENGINE_X86_SIMD
static const dw_isa_table dw_table_avx2 = DW_TABLE(avx2);
static const dw_isa_table dw_table_avx512 = DW_TABLE(avx512);
ENGINE_ISA_TABLES(dw_isa_table, dw_isa, &dw_table_portable, &dw_table_avx2, &dw_table_avx512)
#else
ENGINE_ISA_TABLES(dw_isa_table, dw_isa, &dw_table_portable, &dw_table_portable, &dw_table_portable)
#endif
#undef DW_TABLE

/* One row of each pass, by element type; r indexes output rows (forward, kernel gradient) or
 * input rows (input gradient, with a per-thread scratch of dw_input_scratch(g) entries). */
static inline ptrdiff_t dw_input_scratch(const conv_geometry *g) { return g->W * (1 + 2 * g->kw); }
static inline void dw_forward_row_f(const float *x, const float *w, float *out, const conv_geometry *g,
                                    ptrdiff_t r) { dw_isa()->forward_row_f(x, w, out, g, r); }
static inline void dw_forward_row_d(const double *x, const double *w, double *out, const conv_geometry *g,
                                    ptrdiff_t r) { dw_isa()->forward_row_d(x, w, out, g, r); }
static inline void dw_backward_input_row_f(const float *gy, const float *w, float *dx, const conv_geometry *g,
                                           ptrdiff_t r, ptrdiff_t *cols)
{ dw_isa()->backward_input_row_f(gy, w, dx, g, r, cols); }
static inline void dw_backward_input_row_d(const double *gy, const double *w, double *dx,
                                           const conv_geometry *g, ptrdiff_t r, ptrdiff_t *cols)
{ dw_isa()->backward_input_row_d(gy, w, dx, g, r, cols); }
static inline void dw_backward_weight_row_f(const float *x, const float *gy, float *dw, const conv_geometry *g,
                                            ptrdiff_t r) { dw_isa()->backward_weight_row_f(x, gy, dw, g, r); }
static inline void dw_backward_weight_row_d(const double *x, const double *gy, double *dw,
                                            const conv_geometry *g, ptrdiff_t r)
{ dw_isa()->backward_weight_row_d(x, gy, dw, g, r); }

#endif
