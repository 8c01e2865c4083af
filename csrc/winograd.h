/* Winograd F(2x2, 3x3) for 3x3, stride-1, undilated convolutions, and F(2, 5) for 1-D ones 5
 * wide (conv.pyx's forward pass and, through the flipped kernel, its input gradient).  winograd_tmpl.h holds the passes once; here
 * they are instantiated for float and double.  The transforms are plain loops over channels
 * built for the baseline target (they touch each value once, so memory rather than arithmetic
 * bounds them); the products go through the process's GEMM (gemm_api.h), which picks its SIMD
 * path at run time. */
#ifndef ENGINE_WINOGRAD_H
#define ENGINE_WINOGRAD_H

#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "depthwise.h"      /* conv_geometry */
#include "gemm_api.h"

/* Scratch elements one thread needs for blocks of tb tiles: V and M (16 or 6 positions). */
static inline ptrdiff_t wino_scratch(const conv_geometry *g, ptrdiff_t tb)
{
    return tb * 16 * (g->C + g->F);
}

static inline ptrdiff_t wino1_scratch(const conv_geometry *g, ptrdiff_t tb)
{
    return tb * 6 * (g->C + g->F);
}

#define WT float
#define WSUF(n) n##_f
#define WGEMM engine_sgemm
#include "winograd_tmpl.h"
#undef WT
#undef WSUF
#undef WGEMM

#define WT double
#define WSUF(n) n##_d
#define WGEMM engine_dgemm
#include "winograd_tmpl.h"
#undef WT
#undef WSUF
#undef WGEMM

#endif
