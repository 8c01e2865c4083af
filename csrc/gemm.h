/* The GEMM, compiled into the gemm module only (gemm.pyx includes this header);
 * conv and recurrent reach the same functions at C level, without the GIL,
 * through the table this file ends with (see gemm_api.h).
 *
 * Row-major, like cblas with CblasRowMajor:
 *   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C
 *   op(A) = A (stored m x k, row stride lda) or A^T (A stored k x m) when trans_a
 *   op(B) = B (stored k x n, row stride ldb) or B^T (B stored n x k) when trans_b
 * beta == 0 overwrites C without reading it (NaN in C does not leak through).
 *
 *   static void engine_sgemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
 *                            float alpha, const float *A, ptrdiff_t lda,
 *                            const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc);
 *   static void engine_dgemm(... the same with double ...);
 *
 * Callable without the GIL from any thread.  Uses omp_get_max_threads() threads
 * for products big enough to be worth it; called from inside an active OpenMP
 * parallel region it runs on the calling thread only.  k is never split between
 * threads, so results do not depend on the thread count.
 *
 * Instruction set: AVX-512F, else AVX2+FMA, else portable C: the process-wide level of
 * runtime_api.h (engine.config.set_simd_path caps it for tests and benchmarks), indexing the
 * per-ISA blocking-and-kernel tables below (isa.h's scheme).
 *
 * Files: gemm_kernel_tmpl.h (register-tile micro-kernels, one source for every
 * ISA), gemm_driver_tmpl.h (blocking, packing, threading), this file (glue).
 */
#ifndef ENGINE_GEMM_H
#define ENGINE_GEMM_H

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#include "isa.h"
#include "threads.h"

/* ---- tuning knobs (see bench/gemm.py) ---------------------------------- */
/* Small (unpacked) path while k <= this and op(B) is at most engine_gemm_small_b_bytes(). */
#define ENGINE_GEMM_SMALL_MAX_K 512

/* The packed path reads a transposed A in place instead of packing it while one thread's block
 * of C has at most this many elements (see gd_a_in_place_), [0] float, [1] double.  Double stays
 * packed: with 8-wide panels, 32 x 12800 x 128 on two threads lost 11 % in place.  Variables so
 * the tests can force either way (gemm._set_a_in_place_max_c), set between calls. */
static ptrdiff_t engine_gemm_a_in_place_max_c[2] = {4096, 0};

/* The small path reads a row-major op(B) in place while a k chunk of it has at most this many
 * bytes (half of a 32 KiB L1) or the product has at most 16 row tiles, and copies it into panels
 * otherwise (see gd_small_b_in_place_); [0] float, [1] double, settable for the tests
 * (gemm._set_small_b_in_place_max_bytes). */
static ptrdiff_t engine_gemm_small_b_in_place_max[2] = {16384, 16384};
/* Multiply-adds one extra thread must get before it is worth waking it. */
#define ENGINE_GEMM_MIN_FMAS_PER_THREAD (1 << 18)

/* ---- per-thread scratch -------------------------------------------------- */
/* Packing buffers are thread-local and only ever grow, so the steady state of a
 * training loop does no allocation.  They live as long as the thread (OpenMP
 * worker threads live as long as the process). */
static __thread void *engine_gemm_tls_buf[2];
static __thread size_t engine_gemm_tls_cap[2];

static void *engine_gemm_scratch(int slot, size_t bytes)
{
    if (bytes > engine_gemm_tls_cap[slot]) {
        void *p = NULL;
        /* Big packed panels go on 2 MiB boundaries and ask for transparent
         * huge pages: the micro-kernels sweep megabytes of packed B, and 4 KiB
         * pages would cost a TLB miss every few micro-panel rows. */
        size_t align = bytes >= ((size_t)1 << 21) ? ((size_t)1 << 21) : 4096;
        size_t cap = (bytes + align - 1) & ~(align - 1);
        free(engine_gemm_tls_buf[slot]);
        engine_gemm_tls_buf[slot] = NULL;
        engine_gemm_tls_cap[slot] = 0;
        if (posix_memalign(&p, align, cap) != 0 || p == NULL) {
            /* The C API has no error channel and the sizes are bounded by the
             * cache blocking (a few MiB), so this is genuinely out of memory. */
            fprintf(stderr, "engine gemm: cannot allocate %zu bytes of scratch\n", cap);
            abort();
        }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (align > 4096) madvise(p, cap, MADV_HUGEPAGE);   /* a hint; failure is harmless */
#endif
        engine_gemm_tls_buf[slot] = p;
        engine_gemm_tls_cap[slot] = cap;
    }
    return engine_gemm_tls_buf[slot];
}

/* How many bytes of op(B) (one k chunk of it) the small path may read in place, tile row after
 * tile row: half of L2, and at most 512 KiB.  The cap was tuned on a 2 MiB L2 (Sapphire Rapids);
 * on a 512 KiB L2 (Zen 3) a 432 x 256 chunk (442 KiB) ran the 496 x 1280 x 256 products of a
 * Conv1D forward pass at 70 GFLOP/s on one core, packed at 87. */
static double engine_gemm_small_b_bytes(void)
{
    static double budget = 0.0;
    if (budget == 0.0) {
        long l2 = engine_cpu_l2_bytes();
        double b = l2 > 0 ? 0.5 * (double)l2 : 512.0 * 1024.0;
        budget = b < 512.0 * 1024.0 ? b : 512.0 * 1024.0;   /* benign race: same value */
    }
    return budget;
}

/* ---- threading helpers --------------------------------------------------- */
static int engine_gemm_threads_for(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
#ifdef _OPENMP
    int nt;
    double by_work;
    if (omp_in_parallel()) return 1;
    nt = engine_max_threads();      /* honours the after-fork cap (threads.h) */
    by_work = (double)m * (double)n * (double)k / (double)ENGINE_GEMM_MIN_FMAS_PER_THREAD;
    if (by_work < (double)nt) nt = by_work < 1.0 ? 1 : (int)by_work;
    return nt < 1 ? 1 : nt;
#else
    (void)m; (void)n; (void)k;
    return 1;
#endif
}

/* Cut C into tm x tn rectangles (tm * tn == nt) minimising the biggest share in
 * whole register tiles plus the packing each thread repeats (it packs all of
 * its rows of A and columns of B). */
static void engine_gemm_thread_grid(int nt, ptrdiff_t m, ptrdiff_t n, int mr, int nr, int *tm, int *tn)
{
    ptrdiff_t mt = (m + mr - 1) / mr, ntl = (n + nr - 1) / nr;
    double best = -1.0;
    int a;
    *tm = nt; *tn = 1;
    for (a = nt; a >= 1; a--) {
        int b;
        double rows, cols, cost;
        if (nt % a) continue;
        b = nt / a;
        rows = (double)((mt + a - 1) / a) * mr;
        cols = (double)((ntl + b - 1) / b) * nr;
        cost = rows * cols + 0.5 * (rows + cols) * 16.0;
        if (best < 0.0 || cost < best) { best = cost; *tm = a; *tn = b; }
    }
}

/* Part idx of parts of [0, len), boundaries on multiples of align. */
static void engine_gemm_split(ptrdiff_t len, int parts, int idx, int align, ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t units = (len + align - 1) / align;
    *lo = (units * idx / parts) * align;
    *hi = (units * (idx + 1) / parts) * align;
    if (*lo > len) *lo = len;
    if (*hi > len) *hi = len;
}

/* ---- micro-kernels ------------------------------------------------------- */
/* target("...") attributes and __builtin_cpu_supports: GCC and clang on x86 (isa.h). */
#define ENGINE_GEMM_X86 ENGINE_X86_SIMD

/* Portable: 16-byte vectors (SSE2 on any x86-64, NEON elsewhere, or scalar). */
#define GK_TARGET
#define GK_T float
#define GK_VL 4
#define GK_MR 4
#define GK_NV 2
#define GK_SUF s_portable
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 2
#define GK_SUF d_portable
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET


/* Half-width variants (see rowa_n in gemm_driver_tmpl.h). */
#define GK_TARGET 
#define GK_MR 4
#define GK_NV 1
#define GK_T float
#define GK_VL 4
#define GK_SUF s_portablen
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 2
#define GK_SUF d_portablen
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET

#if ENGINE_GEMM_X86
/* AVX2 + FMA: 6 x 16 floats / 6 x 8 doubles, 12 ymm accumulators. */
#define GK_TARGET __attribute__((target("avx2,fma")))
#define GK_MR 6
#define GK_NV 2
#define GK_T float
#define GK_VL 8
#define GK_SUF s_avx2
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 4
#define GK_SUF d_avx2
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET

/* Half-width variants (see rowa_n in gemm_driver_tmpl.h). */
#define GK_TARGET __attribute__((target("avx2,fma")))
#define GK_MR 6
#define GK_NV 1
#define GK_T float
#define GK_VL 8
#define GK_SUF s_avx2n
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 4
#define GK_SUF d_avx2n
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET

/* AVX-512F: 12 x 32 floats / 12 x 16 doubles, 24 zmm accumulators (enough
 * independent FMAs to cover two FMA ports x 4-cycle latency, and 2 vector
 * loads + 12 broadcasts per 24 FMAs keeps the load ports under the limit). */
#define GK_TARGET __attribute__((target("avx512f")))
#define GK_MR 12
#define GK_NV 2
#define GK_T float
#define GK_VL 16
#define GK_SUF s_avx512
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 8
#define GK_SUF d_avx512
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET

/* Half-width variants (see rowa_n in gemm_driver_tmpl.h). */
#define GK_TARGET __attribute__((target("avx512f")))
#define GK_MR 12
#define GK_NV 1
#define GK_T float
#define GK_VL 16
#define GK_SUF s_avx512n
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#define GK_T double
#define GK_VL 8
#define GK_SUF d_avx512n
#include "gemm_kernel_tmpl.h"
#undef GK_T
#undef GK_VL
#undef GK_SUF
#undef GK_MR
#undef GK_NV
#undef GK_TARGET
#endif

/* ---- instruction-set selection: the process-wide level of runtime_api.h ---- */
static const char *engine_gemm_simd_name(void)
{
    switch (engine_isa_level()) {
    case ENGINE_ISA_AVX512: return "avx512";
    case ENGINE_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}

/* Cache blocks.  The packed path walks the register tiles row sliver by row
 * sliver (ir outer, jr inner), so the MR x kc sliver of A (12 KiB) stays in L1
 * while the kc x nc block of B (1 MiB) streams from L2; mc x kc of A only
 * has to fit L3.  (B micro-panels in L1 with A streaming, the other classic
 * order, needs kc x NR = 48 KiB there for the AVX-512 tile: all of L1d.) */
#if ENGINE_GEMM_X86
#include <immintrin.h>
/* Pack a full 12-row sliver of a row-major float A: eight k at a time, the 12 x 8 block is
 * transposed in registers (an 8 x 8 and a 4 x 8 transpose) and stored as eight runs of 12.  The
 * scalar loop moved one float per load and store and was ~4 % of a 2048^3 product.  Only the
 * AVX-512 float kernels use 12-row slivers, so AVX2 is there whenever this runs. */
__attribute__((target("avx2"))) static void gd_pack_a12_s(const float *const *rows, ptrdiff_t kc, float *out)
{
    ptrdiff_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r0 = _mm256_loadu_ps(rows[0] + p), r1 = _mm256_loadu_ps(rows[1] + p);
        __m256 r2 = _mm256_loadu_ps(rows[2] + p), r3 = _mm256_loadu_ps(rows[3] + p);
        __m256 r4 = _mm256_loadu_ps(rows[4] + p), r5 = _mm256_loadu_ps(rows[5] + p);
        __m256 r6 = _mm256_loadu_ps(rows[6] + p), r7 = _mm256_loadu_ps(rows[7] + p);
        __m256 r8 = _mm256_loadu_ps(rows[8] + p), r9 = _mm256_loadu_ps(rows[9] + p);
        __m256 r10 = _mm256_loadu_ps(rows[10] + p), r11 = _mm256_loadu_ps(rows[11] + p);
        /* rows 0-7: pairs, then quads, then the 128-bit halves */
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        /* rows 8-11: column j's four values in one 128-bit half (low: j < 4, high: j >= 4) */
        __m256 a0 = _mm256_unpacklo_ps(r8, r9), a1 = _mm256_unpackhi_ps(r8, r9);
        __m256 b0 = _mm256_unpacklo_ps(r10, r11), b1 = _mm256_unpackhi_ps(r10, r11);
        __m256 c0 = _mm256_shuffle_ps(a0, b0, 0x44), c1 = _mm256_shuffle_ps(a0, b0, 0xEE);
        __m256 c2 = _mm256_shuffle_ps(a1, b1, 0x44), c3 = _mm256_shuffle_ps(a1, b1, 0xEE);
        float *o = out + p * 12;
        _mm256_storeu_ps(o + 0 * 12, _mm256_permute2f128_ps(s0, s4, 0x20));
        _mm_storeu_ps(o + 0 * 12 + 8, _mm256_castps256_ps128(c0));
        _mm256_storeu_ps(o + 1 * 12, _mm256_permute2f128_ps(s1, s5, 0x20));
        _mm_storeu_ps(o + 1 * 12 + 8, _mm256_castps256_ps128(c1));
        _mm256_storeu_ps(o + 2 * 12, _mm256_permute2f128_ps(s2, s6, 0x20));
        _mm_storeu_ps(o + 2 * 12 + 8, _mm256_castps256_ps128(c2));
        _mm256_storeu_ps(o + 3 * 12, _mm256_permute2f128_ps(s3, s7, 0x20));
        _mm_storeu_ps(o + 3 * 12 + 8, _mm256_castps256_ps128(c3));
        _mm256_storeu_ps(o + 4 * 12, _mm256_permute2f128_ps(s0, s4, 0x31));
        _mm_storeu_ps(o + 4 * 12 + 8, _mm256_extractf128_ps(c0, 1));
        _mm256_storeu_ps(o + 5 * 12, _mm256_permute2f128_ps(s1, s5, 0x31));
        _mm_storeu_ps(o + 5 * 12 + 8, _mm256_extractf128_ps(c1, 1));
        _mm256_storeu_ps(o + 6 * 12, _mm256_permute2f128_ps(s2, s6, 0x31));
        _mm_storeu_ps(o + 6 * 12 + 8, _mm256_extractf128_ps(c2, 1));
        _mm256_storeu_ps(o + 7 * 12, _mm256_permute2f128_ps(s3, s7, 0x31));
        _mm_storeu_ps(o + 7 * 12 + 8, _mm256_extractf128_ps(c3, 1));
    }
    for (; p < kc; p++) {
        int i;
        for (i = 0; i < 12; i++) out[p * 12 + i] = rows[i][p];
    }
}

/* Transpose an 8 x 8 block: rows r[0..7] (eight floats each) become columns. */
__attribute__((target("avx2"))) static inline void gd_transpose8_s(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Pack eight columns of op(B) = B^T (eight stored rows of a float B) into eight columns of a
 * micro-panel of width NR (out points at the first of them): eight k at a time through an
 * 8 x 8 register transpose.  The
 * scalar loop stored one float per k, NR apart, and was a sixth of a 128 x 128 x 96 input
 * gradient.  Only the AVX2 and AVX-512 float kernels (NR 16 and 32) call it. */
__attribute__((target("avx2"))) static void gd_pack_bt8_s(const float *B, ptrdiff_t ldb, ptrdiff_t kc,
                                                          float *out, int NR)
{
    ptrdiff_t p = 0;
    int i;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(B + i * ldb + p);
        gd_transpose8_s(r);
        for (i = 0; i < 8; i++) _mm256_storeu_ps(out + (p + i) * NR, r[i]);
    }
    for (; p < kc; p++)
        for (i = 0; i < 8; i++) out[p * NR + i] = B[i * ldb + p];
}
#define GD_PACK_A12 gd_pack_a12_s
#define GD_PACK_BT8 gd_pack_bt8_s
#endif
#define GD_T float
#define GD_SUF s
#define GD_NAME engine_sgemm
#define GD_PAIR_NAME engine_sgemm_pair
#include "gemm_driver_tmpl.h"
#undef GD_T
#undef GD_SUF
#undef GD_NAME
#undef GD_PAIR_NAME
#undef GD_PACK_A12
#undef GD_PACK_BT8
#define GD_T double
#define GD_SUF d
#define GD_NAME engine_dgemm
#define GD_PAIR_NAME engine_dgemm_pair
#include "gemm_driver_tmpl.h"
#undef GD_T
#undef GD_SUF
#undef GD_NAME
#undef GD_PAIR_NAME

static gd_isa_s gd_isa_s_portable = {4, 8, 128, 256, 1024,
    gk_packed_s_portable, gk_rowmajor_a_s_portable, gk_colmajor_a_s_portable,
    gk_rowmajor_a_s_portablen, gk_colmajor_a_s_portablen};
static gd_isa_d gd_isa_d_portable = {4, 4, 128, 256, 512,
    gk_packed_d_portable, gk_rowmajor_a_d_portable, gk_colmajor_a_d_portable,
    gk_rowmajor_a_d_portablen, gk_colmajor_a_d_portablen};
#if ENGINE_GEMM_X86
/* AVX2 float blocks chosen on a Zen 3 core (L1d 32 KiB, L2 512 KiB, L3 32 MiB shared): kc 512
 * halves the passes over C and keeps the 6 x kc sliver of A at 12 KiB in L1; measured ~3 %
 * over kc 256 at 1024^3 and 2048^3 (B's block then streams from L3, which Zen 3 feeds fast
 * enough for 12 FMAs per loaded vector pair). */
static gd_isa_s gd_isa_s_avx2 = {6, 16, 144, 512, 1024,
    gk_packed_s_avx2, gk_rowmajor_a_s_avx2, gk_colmajor_a_s_avx2,
    gk_rowmajor_a_s_avx2n, gk_colmajor_a_s_avx2n};
static gd_isa_d gd_isa_d_avx2 = {6, 8, 96, 256, 512,
    gk_packed_d_avx2, gk_rowmajor_a_d_avx2, gk_colmajor_a_d_avx2,
    gk_rowmajor_a_d_avx2n, gk_colmajor_a_d_avx2n};
static gd_isa_s gd_isa_s_avx512 = {12, 32, 240, 256, 1024,
    gk_packed_s_avx512, gk_rowmajor_a_s_avx512, gk_colmajor_a_s_avx512,
    gk_rowmajor_a_s_avx512n, gk_colmajor_a_s_avx512n};
static gd_isa_d gd_isa_d_avx512 = {12, 16, 120, 256, 512,
    gk_packed_d_avx512, gk_rowmajor_a_d_avx512, gk_colmajor_a_d_avx512,
    gk_rowmajor_a_d_avx512n, gk_colmajor_a_d_avx512n};
#endif

/* Tables are mutable (engine_gemm_set_blocking tunes the active one), so they are indexed
 * here rather than through ENGINE_ISA_TABLES' const tables. */
#if ENGINE_GEMM_X86
static gd_isa_s *const gd_isa_s_by_level[ENGINE_ISA_LEVELS] = {&gd_isa_s_portable, &gd_isa_s_avx2, &gd_isa_s_avx512};
static gd_isa_d *const gd_isa_d_by_level[ENGINE_ISA_LEVELS] = {&gd_isa_d_portable, &gd_isa_d_avx2, &gd_isa_d_avx512};
#else
static gd_isa_s *const gd_isa_s_by_level[ENGINE_ISA_LEVELS] = {&gd_isa_s_portable, &gd_isa_s_portable, &gd_isa_s_portable};
static gd_isa_d *const gd_isa_d_by_level[ENGINE_ISA_LEVELS] = {&gd_isa_d_portable, &gd_isa_d_portable, &gd_isa_d_portable};
#endif
static inline gd_isa_s *gd_select_isa_s(void) { return gd_isa_s_by_level[engine_isa_level()]; }
static inline gd_isa_d *gd_select_isa_d(void) { return gd_isa_d_by_level[engine_isa_level()]; }

/* Override the cache blocks of the active instruction set (benchmark tuning
 * only; mc must be a multiple of mr and nc of nr, checked by the caller). */
static void engine_gemm_set_blocking(int is_double, ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t nc)
{
    if (is_double) { gd_isa_d *t = gd_select_isa_d(); t->mc = mc; t->kc = kc; t->nc = nc; }
    else { gd_isa_s *t = gd_select_isa_s(); t->mc = mc; t->kc = kc; t->nc = nc; }
}

static ptrdiff_t engine_gemm_swap_a_in_place_max_c(int is_double, ptrdiff_t elements)
{
    ptrdiff_t old = engine_gemm_a_in_place_max_c[is_double != 0];
    engine_gemm_a_in_place_max_c[is_double != 0] = elements;
    return old;
}

static ptrdiff_t engine_gemm_swap_small_b_in_place_max(int is_double, ptrdiff_t bytes)
{
    ptrdiff_t old = engine_gemm_small_b_in_place_max[is_double != 0];
    engine_gemm_small_b_in_place_max[is_double != 0] = bytes;
    return old;
}

static void engine_gemm_get_blocking(int is_double, int *out)
{
    if (is_double) {
        gd_isa_d *t = gd_select_isa_d();
        out[0] = t->mr; out[1] = t->nr; out[2] = (int)t->mc; out[3] = (int)t->kc; out[4] = (int)t->nc;
    } else {
        gd_isa_s *t = gd_select_isa_s();
        out[0] = t->mr; out[1] = t->nr; out[2] = (int)t->mc; out[3] = (int)t->kc; out[4] = (int)t->nc;
    }
}

/* The table other kernel modules call through (see gemm_api.h); gemm.pyx puts it in a capsule. */
#define ENGINE_GEMM_PROVIDER
#include "gemm_api.h"
static const engine_gemm_api engine_gemm_table = {engine_sgemm, engine_dgemm, engine_sgemm_pair,
                                                  engine_dgemm_pair};

#endif
