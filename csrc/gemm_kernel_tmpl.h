/* GEMM micro-kernel template: included several times by gemm_kernels.h, once per
 * (element type, instruction set).  Deliberately no include guard.
 *
 * Parameters (macros defined by the includer, undefined afterwards by it):
 *   GK_T       element type (float / double)
 *   GK_VL      lanes per vector
 *   GK_MR      rows of the register tile (broadcast operand, from A)
 *   GK_NV      vectors per tile row, so NR = GK_NV * GK_VL columns (from B)
 *   GK_TARGET  function attribute selecting the ISA (empty for portable)
 *   GK_SUF     name suffix, e.g. s_avx512
 *
 * The kernel is written once with GCC vector extensions rather than intrinsics:
 * the same source then compiles to zmm FMA code under target("avx512f"), to ymm
 * FMA code under target("avx2,fma") and to baseline SSE2 (or whatever the
 * architecture offers) for the portable path.  GCC contracts acc += a * b into
 * a fused multiply-add when the target has FMA (-ffp-contract=fast is GNU C's
 * default); the portable path therefore rounds slightly differently, within the
 * usual GEMM tolerance.
 *
 * One register tile computes acc[MR][NR] = sum_p A(i,p) * B(p,j) where
 *   A(i,p) = a[i*a_rs + p*a_cs]       (any layout: packed, row- or column-major)
 *   B(p,j) = b[p*b_rs + j], j < NR    (NR contiguous readable values per row)
 * and stores C = alpha*acc + beta*C on the mr x nr top-left part (beta == 0
 * never reads C); with ct the tile is stored transposed, element (i, j) at
 * c[j*ldc + i].
 */

/* GCC cannot see that the spilled tile rows read back (i < MRC, j < nr) are
 * exactly the ones written, and warns under -Wall in every including module. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define GK_CAT_(a, b) a##b
#define GK_CAT(a, b) GK_CAT_(a, b)
#define GK_FN(name) GK_CAT(name, GK_SUF)
#define GK_NR (GK_NV * GK_VL)
/* The packed path streams B micro-panels from L2 (see gemm_driver_tmpl.h):
 * its kernels prefetch B this many k steps ahead; the small path reads B in
 * place from user memory and leaves that to the hardware prefetchers. */
#define GK_PFB 8

typedef GK_T GK_FN(gk_v_) __attribute__((vector_size(GK_VL * sizeof(GK_T))));
/* Unaligned, aliasing view for loads/stores straight from user matrices. */
typedef GK_T GK_FN(gk_vu_) __attribute__((vector_size(GK_VL * sizeof(GK_T)), aligned(sizeof(GK_T)), may_alias));

/* The body is always inlined into small wrappers so that constant arguments
 * (packed strides, the row count of an edge tile) fold away and the MR x NV
 * accumulators stay in registers. */
GK_TARGET static inline __attribute__((always_inline)) void
GK_FN(gk_body_)(ptrdiff_t k, const GK_T *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                const GK_T *b, ptrdiff_t b_rs, GK_T *c, ptrdiff_t ldc,
                GK_T alpha, GK_T beta, const int MRC, int nr, int ct, const int PFB)
{
    typedef GK_FN(gk_v_) V;
    typedef GK_FN(gk_vu_) VU;
    V acc[GK_MR][GK_NV];
    ptrdiff_t p;
    int i, v;
#pragma GCC unroll 16
    for (i = 0; i < MRC; i++)
#pragma GCC unroll 4
        for (v = 0; v < GK_NV; v++) acc[i][v] = (V){0};
    /* The C tile is only touched after the k loop; start fetching it now so
     * the miss latency (C is usually far bigger than L2) hides behind the FMAs. */
#pragma GCC unroll 16
    for (i = 0; i < MRC; i++) {
        __builtin_prefetch(c + i * ldc, 1, 3);
        __builtin_prefetch(c + i * ldc + GK_NR - 1, 1, 3);
    }

#pragma GCC unroll 2
    for (p = 0; p < k; p++) {
        V bv[GK_NV];
#pragma GCC unroll 4
        for (v = 0; v < GK_NV; v++) bv[v] = *(const VU *)(b + v * GK_VL);
        if (PFB) {
            __builtin_prefetch(b + PFB * b_rs, 0, 3);
            if (GK_NR * sizeof(GK_T) > 64) __builtin_prefetch(b + PFB * b_rs + 64 / sizeof(GK_T), 0, 3);
        }
#pragma GCC unroll 16
        for (i = 0; i < MRC; i++) {
            /* x - (+0) == x exactly, so this folds to a plain broadcast (x + 0
             * would not: -0 + 0 is +0, so GCC must keep an add). */
            V ai = a[i * a_rs] - (V){0};
#pragma GCC unroll 4
            for (v = 0; v < GK_NV; v++) acc[i][v] += ai * bv[v];
        }
        a += a_cs;
        b += b_rs;
    }

    if (ct) {
        /* C stored transposed (tile element (i, j) at c[j*ldc + i]): the small
         * path computes C^T = op(B)^T op(A)^T this way when n is tiny, so the
         * vector lanes run along m instead of mostly idling along n. */
        GK_T tmp[GK_MR * GK_NR] __attribute__((aligned(64)));
        int j;
        for (i = 0; i < MRC; i++)
#pragma GCC unroll 4
            for (v = 0; v < GK_NV; v++) *(VU *)(tmp + i * GK_NR + v * GK_VL) = acc[i][v];
        for (j = 0; j < nr; j++) {
            GK_T *cj = c + j * ldc;
            if (beta == (GK_T)0) { for (i = 0; i < MRC; i++) cj[i] = alpha * tmp[i * GK_NR + j]; }
            else { for (i = 0; i < MRC; i++) cj[i] = alpha * tmp[i * GK_NR + j] + beta * cj[i]; }
        }
    } else if (nr == GK_NR) {
#pragma GCC unroll 16
        for (i = 0; i < MRC; i++) {
            GK_T *ci = c + i * ldc;
#pragma GCC unroll 4
            for (v = 0; v < GK_NV; v++) {
                V r = acc[i][v] * alpha;
                if (beta != (GK_T)0) r += *(VU *)(ci + v * GK_VL) * beta;
                *(VU *)(ci + v * GK_VL) = r;
            }
        }
    } else {
        /* Right edge: spill the tile and store only the nr valid columns. */
        GK_T tmp[GK_NR] __attribute__((aligned(64)));
        int j;
        for (i = 0; i < MRC; i++) {
            GK_T *ci = c + i * ldc;
#pragma GCC unroll 4
            for (v = 0; v < GK_NV; v++) *(VU *)(tmp + v * GK_VL) = acc[i][v];
            if (beta == (GK_T)0) { for (j = 0; j < nr; j++) ci[j] = alpha * tmp[j]; }
            else { for (j = 0; j < nr; j++) ci[j] = alpha * tmp[j] + beta * ci[j]; }
        }
    }
}

/* Hot loop of the packed path: A packed MR-interleaved (a_rs = 1, a_cs = MR),
 * B packed NR-interleaved, full tile. */
GK_TARGET static void
GK_FN(gk_packed_)(ptrdiff_t k, const GK_T *a, const GK_T *b, GK_T *c, ptrdiff_t ldc,
                  GK_T alpha, GK_T beta, int mr, int nr)
{
    switch (mr) {
#define GK_CASE(M) case M: GK_FN(gk_body_)(k, a, 1, GK_MR, b, GK_NR, c, ldc, alpha, beta, M, nr, 0, GK_PFB); break;
    GK_CASE(GK_MR)
#undef GK_CASE
    default: {
        /* Edge rows of a packed panel are zero padded, so computing the full
         * tile is correct; only the store is trimmed. */
        GK_T tmp[GK_MR * GK_NR] __attribute__((aligned(64)));
        int i, j;
        GK_FN(gk_body_)(k, a, 1, GK_MR, b, GK_NR, tmp, GK_NR, (GK_T)1, (GK_T)0, GK_MR, GK_NR, 0, GK_PFB);
        for (i = 0; i < mr; i++) {
            GK_T *ci = c + i * ldc;
            if (beta == (GK_T)0) { for (j = 0; j < nr; j++) ci[j] = alpha * tmp[i * GK_NR + j]; }
            else { for (j = 0; j < nr; j++) ci[j] = alpha * tmp[i * GK_NR + j] + beta * ci[j]; }
        }
    }
    }
}

/* Unpacked A with rows contiguous (a_cs == 1, row stride lda): the small path
 * for op(A) = A.  Edge tiles get their own exactly-sized instantiation, so no
 * row past the end of A is ever read. */
GK_TARGET static void
GK_FN(gk_rowmajor_a_)(ptrdiff_t k, const GK_T *a, ptrdiff_t lda, const GK_T *b, ptrdiff_t b_rs,
                      GK_T *c, ptrdiff_t ldc, GK_T alpha, GK_T beta, int mr, int nr, int ct)
{
    switch (mr) {
#define GK_CASE(M) case M: GK_FN(gk_body_)(k, a, lda, 1, b, b_rs, c, ldc, alpha, beta, M, nr, ct, 0); break;
    GK_CASE(1) GK_CASE(2) GK_CASE(3) GK_CASE(4)
#if GK_MR > 4
    GK_CASE(5) GK_CASE(6)
#endif
#if GK_MR > 6
    GK_CASE(7) GK_CASE(8)
#endif
#if GK_MR > 8
    GK_CASE(9) GK_CASE(10) GK_CASE(11) GK_CASE(12)
#endif
#if GK_MR > 12
    GK_CASE(13) GK_CASE(14)
#endif
#undef GK_CASE
    default: break;
    }
}

/* Unpacked A stored transposed (op(A) = A^T: a_rs == 1, a_cs == lda). */
GK_TARGET static void
GK_FN(gk_colmajor_a_)(ptrdiff_t k, const GK_T *a, ptrdiff_t lda, const GK_T *b, ptrdiff_t b_rs,
                      GK_T *c, ptrdiff_t ldc, GK_T alpha, GK_T beta, int mr, int nr, int ct)
{
    switch (mr) {
#define GK_CASE(M) case M: GK_FN(gk_body_)(k, a, 1, lda, b, b_rs, c, ldc, alpha, beta, M, nr, ct, 0); break;
    GK_CASE(1) GK_CASE(2) GK_CASE(3) GK_CASE(4)
#if GK_MR > 4
    GK_CASE(5) GK_CASE(6)
#endif
#if GK_MR > 6
    GK_CASE(7) GK_CASE(8)
#endif
#if GK_MR > 8
    GK_CASE(9) GK_CASE(10) GK_CASE(11) GK_CASE(12)
#endif
#if GK_MR > 12
    GK_CASE(13) GK_CASE(14)
#endif
#undef GK_CASE
    default: break;
    }
}

#undef GK_NR
#undef GK_PFB
#undef GK_FN
#undef GK_CAT
#undef GK_CAT_

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
