/* GEMM driver template: included once per element type by gemm.h (no include
 * guard).  Parameters: GD_T (float / double), GD_SUF (s / d), GD_NAME (public
 * function name), optionally GD_PACK_A12 (a faster packing of full 12-row slivers of a
 * row-major A) and GD_PACK_BT8 (eight columns of a transposed B into a 16- or 32-wide
 * panel).  Uses the micro-kernels instantiated in gemm_kernels.h.
 *
 * Structure (GotoBLAS / BLIS):
 *   top level  decides the thread count and cuts C into one rectangle per thread
 *              (rows in MR multiples, columns in NR multiples); k is never split,
 *              so each C element is summed by exactly one thread in one order.
 *   small path no packing of A; B used in place when it is row-major and the
 *              panel is full, otherwise only B is copied into panels.  For the
 *              small and skinny products of Keras training steps, where packing
 *              A would cost as much as the product itself.
 *   packed path jc (NC) / pc (KC) / ic (MC) blocking with A and B packed into
 *              contiguous, aligned, zero-padded micro-panels (B block kc x nc
 *              meant for L2, A sliver MR x kc for L1), then ir / jr loops over
 *              register tiles: each A sliver meets every B micro-panel of the
 *              block while it is in L1.  A transposed A is read in place instead
 *              when a thread's block of C is small (gd_a_in_place_).
 */

#define GD_CAT_(a, b) a##b
#define GD_CAT(a, b) GD_CAT_(a, b)
#define GD_FN(name) GD_CAT(name, GD_SUF)

typedef void (*GD_FN(gd_packed_fn_))(ptrdiff_t, const GD_T *, const GD_T *, GD_T *, ptrdiff_t,
                                     GD_T, GD_T, int, int);
typedef void (*GD_FN(gd_strided_fn_))(ptrdiff_t, const GD_T *, ptrdiff_t, const GD_T *, ptrdiff_t,
                                      GD_T *, ptrdiff_t, GD_T, GD_T, int, int, int);

typedef struct {
    int mr, nr;                     /* register tile */
    ptrdiff_t mc, kc, nc;           /* cache blocks (mc % mr == 0, nc % nr == 0) */
    GD_FN(gd_packed_fn_) packed;
    GD_FN(gd_strided_fn_) rowa, cola;
    /* Same kernels half as wide (NR/2 columns), for a narrow last panel such
     * as the 10 outputs of a classifier layer: a full-width tile would waste
     * most of its FMAs there. */
    GD_FN(gd_strided_fn_) rowa_n, cola_n;
} GD_FN(gd_isa_);

/* Pack rows [0, mc) x cols [0, kc) of op(A) (already offset to the block) into
 * MR-row micro-panels: panel r holds element (r*MR + i, p) at p*MR + i; rows
 * past mc are zero so the micro-kernel can run full tiles. */
static void GD_FN(gd_pack_a_)(int trans_a, ptrdiff_t mc, ptrdiff_t kc, const GD_T *A, ptrdiff_t lda,
                              GD_T *out, int MR)
{
    ptrdiff_t ir, p;
    int i;
    for (ir = 0; ir < mc; ir += MR) {
        int mr = (int)(mc - ir < MR ? mc - ir : MR);
        if (!trans_a) {
            /* Rows contiguous along p: walk the mr rows side by side so every
             * store is sequential (mr read streams suit the prefetchers; one
             * row at a time would scatter stores MR apart over the panel). */
            const GD_T *rows[16];
            for (i = 0; i < mr; i++) rows[i] = A + (ir + i) * lda;
            if (mr == MR && MR == 12) {
#ifdef GD_PACK_A12
                GD_PACK_A12(rows, kc, out);
#else
                for (p = 0; p < kc; p++) {
                    GD_T *o = out + p * 12;
                    o[0] = rows[0][p]; o[1] = rows[1][p]; o[2] = rows[2][p]; o[3] = rows[3][p];
                    o[4] = rows[4][p]; o[5] = rows[5][p]; o[6] = rows[6][p]; o[7] = rows[7][p];
                    o[8] = rows[8][p]; o[9] = rows[9][p]; o[10] = rows[10][p]; o[11] = rows[11][p];
                }
#endif
            } else {
                for (p = 0; p < kc; p++)
                    for (i = 0; i < mr; i++) out[p * MR + i] = rows[i][p];
            }
        } else if (mr == MR) {
            /* op(A) = A^T: rows ir..ir+MR of op(A) are a contiguous run of each stored row; a
             * fixed-size copy the compiler turns into vector moves. */
            if (MR == 12)
                for (p = 0; p < kc; p++) memcpy(out + p * 12, A + p * lda + ir, 12 * sizeof(GD_T));
            else if (MR == 6)
                for (p = 0; p < kc; p++) memcpy(out + p * 6, A + p * lda + ir, 6 * sizeof(GD_T));
            else
                for (p = 0; p < kc; p++) memcpy(out + p * MR, A + p * lda + ir, (size_t)MR * sizeof(GD_T));
        } else {
            for (p = 0; p < kc; p++) {
                const GD_T *src = A + p * lda + ir;
                for (i = 0; i < mr; i++) out[p * MR + i] = src[i];
            }
        }
        if (mr < MR)
            for (p = 0; p < kc; p++)
                for (i = mr; i < MR; i++) out[p * MR + i] = (GD_T)0;
        out += (ptrdiff_t)MR * kc;
    }
}

/* Pack rows [0, kc) x cols [0, nc) of op(B) into NR-column micro-panels:
 * panel r holds element (p, r*NR + j) at p*NR + j, zero padded past nc. */
static void GD_FN(gd_pack_b_)(int trans_b, ptrdiff_t kc, ptrdiff_t nc, const GD_T *B, ptrdiff_t ldb,
                              GD_T *out, int NR)
{
    ptrdiff_t jr = 0, p;
    int j;
    if (!trans_b && (NR == 32 || NR == 16) && nc >= NR) {
        /* Full panels, a row of B at a time across all of them: B is read in order (a weight
         * matrix fresh from memory streams; panel by panel, each row's 128 bytes were a
         * separate miss), and the fixed-size copies become plain vector moves. */
        const ptrdiff_t full = nc / NR * NR;
        for (p = 0; p < kc; p++) {
            const GD_T *src = B + p * ldb;
            for (jr = 0; jr < full; jr += NR) {
                if (NR == 32) memcpy(out + jr * kc + p * 32, src + jr, 32 * sizeof(GD_T));
                else memcpy(out + jr * kc + p * 16, src + jr, 16 * sizeof(GD_T));
            }
        }
        out += full * kc;
    }
    for (; jr < nc; jr += NR) {
        int nr = (int)(nc - jr < NR ? nc - jr : NR);
        if (!trans_b) {
            for (p = 0; p < kc; p++) {
                const GD_T *src = B + p * ldb + jr;
                GD_T *dst = out + p * NR;
                for (j = 0; j < nr; j++) dst[j] = src[j];
                for (; j < NR; j++) dst[j] = (GD_T)0;
            }
        } else {
            /* op(B) = B^T: read each stored row (a column of op(B)) once */
            j = 0;
#ifdef GD_PACK_BT8
            if (NR == 16 || NR == 32)
                for (; j + 8 <= nr; j += 8) GD_PACK_BT8(B + (jr + j) * ldb, ldb, kc, out + j, NR);
#endif
            for (; j < nr; j++) {
                const GD_T *col = B + (jr + j) * ldb;
                for (p = 0; p < kc; p++) out[p * NR + j] = col[p];
            }
            if (nr < NR)
                for (p = 0; p < kc; p++)
                    for (j = nr; j < NR; j++) out[p * NR + j] = (GD_T)0;
        }
        out += (ptrdiff_t)NR * kc;
    }
}

/* C = beta * C for k == 0 or alpha == 0 (beta == 0 writes zeros, never reads). */
static void GD_FN(gd_scale_c_)(ptrdiff_t m, ptrdiff_t n, GD_T beta, GD_T *C, ptrdiff_t ldc)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++) {
        GD_T *c = C + i * ldc;
        if (beta == (GD_T)0) { for (j = 0; j < n; j++) c[j] = (GD_T)0; }
        else if (beta != (GD_T)1) { for (j = 0; j < n; j++) c[j] *= beta; }
    }
}

/* Whether the small path reads the full panels of a row-major op(B) in place rather than copying
 * them: while a k chunk of op(B) fits in half of L1 the copy is pure cost (128 x 64 x 32: -4 % when
 * copied); past that the panels come from L2 row after row, ldb apart (a power-of-two stride also
 * maps them onto a few L1 sets), and contiguous copies are faster once enough row tiles reuse
 * them.  Measured on a Zen 3 core, alternating in one process, GFLOP/s in place -> copied, two
 * threads: 1280 x 256 x 256 133-143 -> 164-185, 12800 x 64 x 128 129-152 -> 147-155, 256^3
 * +2-12 %; one thread: 256^3 76-88 -> 95, 3200 x 128 x 128 +0-9 %.  With 16 row tiles or fewer
 * (64 or 96 rows) the copy did not pay (-2 to -4 %, or within the noise), so those stay in place. */
static int GD_FN(gd_small_b_in_place_)(const GD_FN(gd_isa_) *isa, ptrdiff_t m, ptrdiff_t kc, ptrdiff_t n)
{
    return m <= 16 * isa->mr
           || (double)kc * (double)n * sizeof(GD_T)
              <= (double)engine_gemm_small_b_in_place_max[sizeof(GD_T) == sizeof(double)];
}

static void GD_FN(gd_small_)(const GD_FN(gd_isa_) *isa, int trans_a, int trans_b,
                             ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                             GD_T alpha, const GD_T *A, ptrdiff_t lda, const GD_T *B, ptrdiff_t ldb,
                             GD_T beta, GD_T *C, ptrdiff_t ldc, int ct)
{
    const int MR = isa->mr, NR = isa->nr, NRN = NR / 2;
    /* ct: C holds the transpose of the product computed here (see gd_serial_) */
    const ptrdiff_t c_rs = ct ? 1 : ldc, c_cs = ct ? ldc : 1;
    /* k chunks of equal length (a multiple of 8) no longer than the cap: 640 as 320 + 320
     * rather than 512 + 128, whose short tail pays the C tile's load and store for little work. */
    const ptrdiff_t n_chunks = (k + ENGINE_GEMM_SMALL_MAX_K - 1) / ENGINE_GEMM_SMALL_MAX_K;
    const ptrdiff_t KCS = n_chunks <= 1 ? k : ((k + n_chunks - 1) / n_chunks + 7) / 8 * 8;
    const ptrdiff_t kc_max = k < KCS ? k : KCS;
    const ptrdiff_t n_full = trans_b || !(ct || GD_FN(gd_small_b_in_place_)(isa, m, kc_max, n)) ? 0 : (n / NR) * NR;
                                                             /* panels read in place */
    const ptrdiff_t n_pack = n - n_full;                     /* columns copied */
    const ptrdiff_t r = n_pack % NR;
    const int narrow = r > 0 && r <= NRN;                    /* last panel half width */
    const ptrdiff_t n_wide = n_pack - (narrow ? r : 0);      /* copied at width NR */
    GD_T *bp = NULL, *bn = NULL;
    ptrdiff_t ir, jr, pc;
    GD_FN(gd_strided_fn_) kern = trans_a ? isa->cola : isa->rowa;
    GD_FN(gd_strided_fn_) kern_n = trans_a ? isa->cola_n : isa->rowa_n;
    const ptrdiff_t a_step = trans_a ? 1 : lda;               /* pointer step per row of op(A) */
    const ptrdiff_t a_kstep = trans_a ? lda : 1;              /* pointer step per k */

    if (n_pack > 0) {
        ptrdiff_t wide_cols = ((n_wide + NR - 1) / NR) * NR;
        bp = (GD_T *)engine_gemm_scratch(1, (size_t)((wide_cols + (narrow ? NRN : 0)) * kc_max) * sizeof(GD_T));
        bn = bp + wide_cols * kc_max;
    }
    /* k in chunks so the part of B in use stays cache resident (C is then
     * revisited k / KCS times, cheap next to the product). */
    for (pc = 0; pc < k; pc += KCS) {
        ptrdiff_t kc = k - pc < KCS ? k - pc : KCS;
        GD_T beta_eff = pc == 0 ? beta : (GD_T)1;
        const GD_T *Bk = trans_b ? B + pc : B + pc * ldb;
        if (n_wide > 0)
            GD_FN(gd_pack_b_)(trans_b, kc, n_wide, trans_b ? Bk + n_full * ldb : Bk + n_full, ldb, bp, NR);
        if (narrow)
            GD_FN(gd_pack_b_)(trans_b, kc, r, trans_b ? Bk + (n_full + n_wide) * ldb : Bk + n_full + n_wide,
                              ldb, bn, NRN);
        /* Row tiles outside, column panels inside: the MR x kc sliver of A
         * stays in L1 while this chunk of B streams from L1/L2. */
        for (ir = 0; ir < m; ir += MR) {
            int mr = (int)(m - ir < MR ? m - ir : MR);
            const GD_T *a = A + ir * a_step + pc * a_kstep;
            GD_T *c = C + ir * c_rs;
            for (jr = 0; jr < n_full; jr += NR)
                kern(kc, a, lda, Bk + jr, ldb, c + jr * c_cs, ldc, alpha, beta_eff, mr, NR, ct);
            for (jr = 0; jr < n_wide; jr += NR) {
                int nr = (int)(n_wide - jr < NR ? n_wide - jr : NR);
                kern(kc, a, lda, bp + jr * kc, NR, c + (n_full + jr) * c_cs, ldc, alpha, beta_eff, mr, nr, ct);
            }
            if (narrow)
                kern_n(kc, a, lda, bn, NRN, c + (n_full + n_wide) * c_cs, ldc, alpha, beta_eff, mr, (int)r, ct);
        }
    }
}

/* One product of the packed path: rows of op(A) and where they go.  Several products that share
 * op(B) run as a list, each block of op(B) packed once for all of them (engine_?gemm_pair). */
typedef struct {
    ptrdiff_t m;
    const GD_T *A;
    ptrdiff_t lda;
    GD_T *C;
    ptrdiff_t ldc;
} GD_FN(gd_a_job_);

/* Whether the packed path reads a transposed A in place (the strided kernel walks its stored rows,
 * each holding MR consecutive values of a sliver) rather than packing it.  A packed sliver is
 * reused once per micro-panel of the thread's columns; when the thread's block of C is small,
 * the copy costs more than the contiguous reads save.  Measured on a Zen 3 core, alternating in
 * one process, in GFLOP/s packed -> in place: 64 x 12800 x 128 on two threads (64 x 64 each)
 * 110 -> 122, 64 x 12800 x 64 105 -> 124, 32 x 12800 x 128 94 -> 113, and one thread 32 x 12800
 * x 128 59 -> 63; with larger blocks packing wins (one thread 64 x 12800 x 128 70 -> 68, two
 * threads 96 x 12800 x 128 107 -> 104, 1024^3 146 -> 114). */
static int GD_FN(gd_a_in_place_)(int trans_a, ptrdiff_t m, ptrdiff_t n)
{
    return trans_a && (double)m * (double)n
                      <= (double)engine_gemm_a_in_place_max_c[sizeof(GD_T) == sizeof(double)];
}

static void GD_FN(gd_packed_jobs_)(const GD_FN(gd_isa_) *isa, int trans_a, int trans_b,
                                   const GD_FN(gd_a_job_) *jobs, int njobs, ptrdiff_t n, ptrdiff_t k,
                                   GD_T alpha, const GD_T *B, ptrdiff_t ldb, GD_T beta)
{
    const int MR = isa->mr, NR = isa->nr;
    const ptrdiff_t MC = isa->mc, KC = isa->kc, NC = isa->nc;
    ptrdiff_t nc_max = n < NC ? n : NC, kc_max = k < KC ? k : KC, mc_max = 0;
    GD_T *bp, *ap;
    ptrdiff_t jc, pc, ic, jr, ir;
    int j;
    for (j = 0; j < njobs; j++) {       /* the A buffer serves only the jobs that pack A */
        const ptrdiff_t mc_j = jobs[j].m < MC ? jobs[j].m : MC;
        if (mc_j > mc_max && !GD_FN(gd_a_in_place_)(trans_a, jobs[j].m, n)) mc_max = mc_j;
    }
    bp = (GD_T *)engine_gemm_scratch(1, (size_t)(((nc_max + NR - 1) / NR) * NR * kc_max) * sizeof(GD_T));
    ap = (GD_T *)engine_gemm_scratch(0, (size_t)(((mc_max + MR - 1) / MR) * MR * kc_max) * sizeof(GD_T));

    for (jc = 0; jc < n; jc += NC) {
        ptrdiff_t nc = n - jc < NC ? n - jc : NC;
        for (pc = 0; pc < k; pc += KC) {
            ptrdiff_t kc = k - pc < KC ? k - pc : KC;
            /* Later k blocks accumulate onto what the first one wrote. */
            GD_T beta_eff = pc == 0 ? beta : (GD_T)1;
            GD_FN(gd_pack_b_)(trans_b, kc, nc, trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, bp, NR);
            for (j = 0; j < njobs; j++) {
                const ptrdiff_t m = jobs[j].m, lda = jobs[j].lda, ldc = jobs[j].ldc;
                const GD_T *A = jobs[j].A;
                GD_T *C = jobs[j].C;
                if (GD_FN(gd_a_in_place_)(trans_a, m, n)) {
                    /* Same tiles and the same order of the sums as packed: only where A is read. */
                    for (ir = 0; ir < m; ir += MR) {
                        int mr = (int)(m - ir < MR ? m - ir : MR);
                        for (jr = 0; jr < nc; jr += NR) {
                            int nr = (int)(nc - jr < NR ? nc - jr : NR);
                            isa->cola(kc, A + pc * lda + ir, lda, bp + jr * kc, NR, C + ir * ldc + jc + jr, ldc,
                                      alpha, beta_eff, mr, nr, 0);
                        }
                    }
                    continue;
                }
                for (ic = 0; ic < m; ic += MC) {
                    ptrdiff_t mc = m - ic < MC ? m - ic : MC;
                    GD_FN(gd_pack_a_)(trans_a, mc, kc, trans_a ? A + pc * lda + ic : A + ic * lda + pc, lda, ap, MR);
                    for (ir = 0; ir < mc; ir += MR) {
                        int mr = (int)(mc - ir < MR ? mc - ir : MR);
                        for (jr = 0; jr < nc; jr += NR) {
                            int nr = (int)(nc - jr < NR ? nc - jr : NR);
                            isa->packed(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                                        alpha, beta_eff, mr, nr);
                        }
                    }
                }
            }
        }
    }
}

static void GD_FN(gd_packed_)(const GD_FN(gd_isa_) *isa, int trans_a, int trans_b,
                              ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                              GD_T alpha, const GD_T *A, ptrdiff_t lda, const GD_T *B, ptrdiff_t ldb,
                              GD_T beta, GD_T *C, ptrdiff_t ldc)
{
    GD_FN(gd_a_job_) job;
    job.m = m; job.A = A; job.lda = lda; job.C = C; job.ldc = ldc;
    GD_FN(gd_packed_jobs_)(isa, trans_a, trans_b, &job, 1, n, k, alpha, B, ldb, beta);
}

/* Small path while a k-chunk of op(B) stays cache resident (few column
 * panels, so packing A would not be repaid); beyond that packing pays. */
static int GD_FN(gd_use_small_)(ptrdiff_t n, ptrdiff_t k)
{
    return (double)(k < ENGINE_GEMM_SMALL_MAX_K ? k : ENGINE_GEMM_SMALL_MAX_K) * (double)n * sizeof(GD_T)
           <= engine_gemm_small_b_bytes();
}

/* Whether a transposed A (weight gradients x^T dY) should take the packed path although B is
 * small.  Measured on a Zen 3 core, in GFLOP/s small -> packed: with a long k, even a few slivers
 * gain (64 x 12800 x 128: 108 -> 135-143 on two threads); from 256 rows a k past 128 gains (the
 * Conv1D kernel gradient 1280 x 496 x 128: 107-115 -> 177; 256^3: 124-138 -> 163); with fewer
 * rows and a short k the packing is not repaid (64 x 256 x 64: 166 -> 120). */
static int GD_FN(gd_pack_transposed_a_)(const GD_FN(gd_isa_) *isa, ptrdiff_t m, ptrdiff_t k)
{
    return m >= 2 * isa->mr && (k > ENGINE_GEMM_SMALL_MAX_K || (m >= 256 && k > 128));
}

#ifndef GD_PATHS_DEFINED
#define GD_PATHS_DEFINED
enum { GD_PATH_SMALL_CT, GD_PATH_SMALL, GD_PATH_PACKED };
#endif

/* Which path one thread takes for an m x n x k product (m, n, k > 0).  A tiny n (a classifier's
 * 10 outputs) would leave most vector lanes idle: when op(A) = A^T, op(A)^T = A is row-major
 * along m, so the small path computes C^T = op(B)^T op(A)^T instead, reading A in place as full
 * panels, and stores the tiles transposed.  A transposed A is read down its columns by the
 * small path, one cache line per k for MR values; once a k chunk's lines no longer stay in L1
 * across the column panels, packing A is repaid (see gd_pack_transposed_a_). */
static int GD_FN(gd_path_)(const GD_FN(gd_isa_) *isa, int trans_a, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    if (trans_a && n < isa->nr && m >= 2 * n && m >= isa->nr && GD_FN(gd_use_small_)(m, k))
        return GD_PATH_SMALL_CT;
    if (GD_FN(gd_use_small_)(n, k) && !(trans_a && GD_FN(gd_pack_transposed_a_)(isa, m, k)))
        return GD_PATH_SMALL;
    return GD_PATH_PACKED;
}

/* One thread's share: picks the small or the packed path. */
static void GD_FN(gd_serial_)(const GD_FN(gd_isa_) *isa, int trans_a, int trans_b,
                              ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                              GD_T alpha, const GD_T *A, ptrdiff_t lda, const GD_T *B, ptrdiff_t ldb,
                              GD_T beta, GD_T *C, ptrdiff_t ldc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == (GD_T)0) { GD_FN(gd_scale_c_)(m, n, beta, C, ldc); return; }
    switch (GD_FN(gd_path_)(isa, trans_a, m, n, k)) {
    case GD_PATH_SMALL_CT:
        GD_FN(gd_small_)(isa, !trans_b, 0, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc, 1);
        break;
    case GD_PATH_SMALL:
        GD_FN(gd_small_)(isa, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 0);
        break;
    default:
        GD_FN(gd_packed_)(isa, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

static GD_FN(gd_isa_) *GD_FN(gd_select_isa_)(void);

static void GD_NAME(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                    GD_T alpha, const GD_T *A, ptrdiff_t lda, const GD_T *B, ptrdiff_t ldb,
                    GD_T beta, GD_T *C, ptrdiff_t ldc)
{
    const GD_FN(gd_isa_) *isa;
    int nt, tm, tn;
    if (m <= 0 || n <= 0) return;
    isa = GD_FN(gd_select_isa_)();
    nt = engine_gemm_threads_for(m, n, k);
    if (nt <= 1) {
        GD_FN(gd_serial_)(isa, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    engine_gemm_thread_grid(nt, m, n, isa->mr, isa->nr, &tm, &tn);
#ifdef _OPENMP
    /* Threads pack their own copies of B rather than sharing one packed
     * panel: measured here, reading B packed by the other core costs more
     * (cross-core cache transfers) than the redundant packing. */
#pragma omp parallel num_threads(tm * tn)
    {
        int t = omp_get_thread_num(), ti = t / tn, tj = t % tn;
        ptrdiff_t i0, i1, j0, j1;
        engine_gemm_split(m, tm, ti, isa->mr, &i0, &i1);
        engine_gemm_split(n, tn, tj, isa->nr, &j0, &j1);
        if (i1 > i0 && j1 > j0)
            GD_FN(gd_serial_)(isa, trans_a, trans_b, i1 - i0, j1 - j0, k, alpha,
                              trans_a ? A + i0 : A + i0 * lda, lda,
                              trans_b ? B + j0 * ldb : B + j0, ldb,
                              beta, C + i0 * ldc + j0, ldc);
    }
#else
    (void)tm; (void)tn;
    GD_FN(gd_serial_)(isa, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* C1 = alpha op(A1) op(B) + beta C1 and C2 = alpha op(A2) op(B) + beta C2: two products with
 * the same op(B) and k, such as an LSTM's weight gradients x^T dZ and h^T dZ.  When both would
 * take the packed path on one thread (a long k, called from inside a parallel region or too
 * small to split), each block of op(B) is packed once for both, which saves a pass over it:
 * 128x3200x128 and 32x3200x128 per core, both cores busy, measured 4-12 % faster.  Otherwise
 * it is the two products one after the other.  Results are those of the two calls either way
 * (same blocking, same order of the sums). */
static void GD_PAIR_NAME(int trans_a, int trans_b, ptrdiff_t m1, ptrdiff_t m2, ptrdiff_t n, ptrdiff_t k,
                         GD_T alpha, const GD_T *A1, ptrdiff_t lda1, const GD_T *A2, ptrdiff_t lda2,
                         const GD_T *B, ptrdiff_t ldb, GD_T beta, GD_T *C1, ptrdiff_t ldc1,
                         GD_T *C2, ptrdiff_t ldc2)
{
    const GD_FN(gd_isa_) *isa = GD_FN(gd_select_isa_)();
    if (m1 > 0 && m2 > 0 && n > 0 && k > 0 && alpha != (GD_T)0
        && engine_gemm_threads_for(m1, n, k) <= 1 && engine_gemm_threads_for(m2, n, k) <= 1
        && GD_FN(gd_path_)(isa, trans_a, m1, n, k) == GD_PATH_PACKED
        && GD_FN(gd_path_)(isa, trans_a, m2, n, k) == GD_PATH_PACKED) {
        GD_FN(gd_a_job_) jobs[2];
        jobs[0].m = m1; jobs[0].A = A1; jobs[0].lda = lda1; jobs[0].C = C1; jobs[0].ldc = ldc1;
        jobs[1].m = m2; jobs[1].A = A2; jobs[1].lda = lda2; jobs[1].C = C2; jobs[1].ldc = ldc2;
        GD_FN(gd_packed_jobs_)(isa, trans_a, trans_b, jobs, 2, n, k, alpha, B, ldb, beta);
        return;
    }
    GD_NAME(trans_a, trans_b, m1, n, k, alpha, A1, lda1, B, ldb, beta, C1, ldc1);
    GD_NAME(trans_a, trans_b, m2, n, k, alpha, A2, lda2, B, ldb, beta, C2, ldc2);
}

#undef GD_FN
#undef GD_CAT
#undef GD_CAT_
