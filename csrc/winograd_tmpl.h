/* Winograd convolutions, F(2x2, 3x3) and (further down) the 1-D F(2, 5) with its kernel
 * gradient, written once and instantiated per element type by winograd.h (no include guard on
 * purpose).  Expected macros: WT (float / double), WSUF(n) (name mangling) and WGEMM
 * (engine_sgemm / engine_dgemm).
 *
 * Each 2x2 block of output pixels ("tile") is computed from the 4x4 input patch under it:
 * V = B^T d B per channel (16 values), then for each of the 16 positions xi a product
 * M[xi] = V[xi] (tiles x C) . U[xi] (C x F), where U = G g G^T is the kernel transformed once
 * per call, and the output is A^T m A.  16 multiplies per tile position and channel pair
 * instead of 36: 2.25x fewer multiply-adds than the direct product, for transforms that touch
 * memory once per tile.  Tiles go in blocks sized for L2, each thread transforming, multiplying
 * and writing back its own blocks, so V and M never leave the core's caches.
 *
 * Layouts: x (N, H, W, C), out (N, Ho, Wo, F), U (16, C, F) for xi = 4i + j; a block's V is
 * (16, tiles, C) and M (16, tiles, F), so each product reads and writes rows C or F apart.  (Tile
 * by tile, (tiles, 16, C), put the product's rows 16*C apart, a multiple of 4 KiB for every
 * power-of-two C from 64: the rows of a register tile then share one set of the L1 cache, and
 * the 128 -> 128 channel case ran slower than im2col.) */

/* U = G g G^T (16 x C x F, position xi = 4i + j) for the kernel g = w (3, 3, C, F); with flip,
 * for the input gradient, g is w turned 180 degrees with its channel axes swapped, and U is
 * (16, F, C).  Threads split the input channels. */
static void WSUF(wino_kernel)(const WT *w, ptrdiff_t C, ptrdiff_t F, int flip, WT *restrict U, int nt)
{
    const ptrdiff_t CF = C * F;
    ptrdiff_t c;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (c = 0; c < C; c++) {
        ptrdiff_t f, a, b, i;
        for (f = 0; f < F; f++) {
            WT g[3][3], t[4][3];
            const ptrdiff_t at = flip ? f * C + c : c * F + f;
            for (a = 0; a < 3; a++)
                for (b = 0; b < 3; b++)
                    g[a][b] = flip ? w[((2 - a) * 3 + 2 - b) * CF + c * F + f] : w[(a * 3 + b) * CF + c * F + f];
            /* G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 */
            for (b = 0; b < 3; b++) {
                t[0][b] = g[0][b];
                t[1][b] = (WT)0.5 * (g[0][b] + g[1][b] + g[2][b]);
                t[2][b] = (WT)0.5 * (g[0][b] - g[1][b] + g[2][b]);
                t[3][b] = g[2][b];
            }
            /* (G g) G^T: the same along the columns */
            for (i = 0; i < 4; i++) {
                U[(4 * i + 0) * CF + at] = t[i][0];
                U[(4 * i + 1) * CF + at] = (WT)0.5 * (t[i][0] + t[i][1] + t[i][2]);
                U[(4 * i + 2) * CF + at] = (WT)0.5 * (t[i][0] - t[i][1] + t[i][2]);
                U[(4 * i + 3) * CF + at] = t[i][2];
            }
        }
    }
}

/* The 4x4 patch with top-left input pixel (r0, c0) of image n, transformed into v (16 x C).
 * Pixels outside the image read `zeros` (C zeros). */
static void WSUF(wino_input_tile)(const WT *x, const conv_geometry *g, ptrdiff_t n, ptrdiff_t r0,
                                  ptrdiff_t c0, const WT *zeros, WT *restrict v, ptrdiff_t vs)
{
    const ptrdiff_t C = g->C;
    const WT *p[4][4];
    ptrdiff_t i, j, c;
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++) {
            ptrdiff_t r = r0 + i, q = c0 + j;
            p[i][j] = (r >= 0 && r < g->H && q >= 0 && q < g->W) ? x + ((n * g->H + r) * g->W + q) * C : zeros;
        }
#pragma GCC ivdep
    for (c = 0; c < C; c++) {
        WT d[4][4], t[4][4];
        for (i = 0; i < 4; i++)
            for (j = 0; j < 4; j++) d[i][j] = p[i][j][c];
        /* B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
        for (j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
        }
        /* (B^T d) B: the same along the columns */
        for (i = 0; i < 4; i++) {
            v[(4 * i + 0) * vs + c] = t[i][0] - t[i][2];
            v[(4 * i + 1) * vs + c] = t[i][1] + t[i][2];
            v[(4 * i + 2) * vs + c] = t[i][2] - t[i][1];
            v[(4 * i + 3) * vs + c] = t[i][1] - t[i][3];
        }
    }
}

/* The 2x2 output pixels from (r0, c0) of image n from one tile's products m (16 x F): A^T m A,
 * skipping pixels past the bottom or right edge. */
static void WSUF(wino_output_tile)(const WT *restrict m, ptrdiff_t ms, const conv_geometry *g, ptrdiff_t n,
                                   ptrdiff_t r0, ptrdiff_t c0, WT *out)
{
    const ptrdiff_t F = g->F;
    const int down = r0 + 1 < g->Ho, right = c0 + 1 < g->Wo;
    WT *y00 = out + ((n * g->Ho + r0) * g->Wo + c0) * F;
    WT *y01 = y00 + F, *y10 = y00 + g->Wo * F, *y11 = y10 + F;
    ptrdiff_t f, j;
#pragma GCC ivdep
    for (f = 0; f < F; f++) {
        WT s0[4], s1[4];
        /* A^T m: rows m0 + m1 + m2 and m1 - m2 - m3 */
        for (j = 0; j < 4; j++) {
            WT m0 = m[j * ms + f], m1 = m[(4 + j) * ms + f], m2 = m[(8 + j) * ms + f], m3 = m[(12 + j) * ms + f];
            s0[j] = m0 + m1 + m2;
            s1[j] = m1 - m2 - m3;
        }
        y00[f] = s0[0] + s0[1] + s0[2];
        if (right) y01[f] = s0[1] - s0[2] - s0[3];
        if (down) {
            y10[f] = s1[0] + s1[1] + s1[2];
            if (right) y11[f] = s1[1] - s1[2] - s1[3];
        }
    }
}

/* out = the 3x3, stride-1, undilated convolution of x with the kernel transformed to U, top and
 * left padding g->pt, g->pl (the bottom and right follow from Ho and Wo).  scratch holds, per
 * thread, wino_scratch(g, tb) elements; zeros, g->C zeros (what pixels past the edges read). */
static void WSUF(wino_conv3x3)(const WT *x, const WT *U, WT *out, const conv_geometry *g, ptrdiff_t tb,
                               WT *scratch, const WT *zeros, int nt)
{
    const ptrdiff_t th = (g->Ho + 1) / 2, tw = (g->Wo + 1) / 2, tiles = g->N * th * tw;
    const ptrdiff_t blocks = (tiles + tb - 1) / tb, per_thread = wino_scratch(g, tb);
    const ptrdiff_t C = g->C, F = g->F;
    ptrdiff_t blk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (blk = 0; blk < blocks; blk++) {
#ifdef _OPENMP
        WT *V = scratch + omp_get_thread_num() * per_thread;
#else
        WT *V = scratch;
#endif
        WT *M = V + tb * 16 * C;
        const ptrdiff_t t0 = blk * tb, t1 = t0 + tb < tiles ? t0 + tb : tiles;
        ptrdiff_t t, xi;
        for (t = t0; t < t1; t++) {
            ptrdiff_t n = t / (th * tw), ti = t / tw % th, tj = t % tw;
            WSUF(wino_input_tile)(x, g, n, 2 * ti - g->pt, 2 * tj - g->pl, zeros, V + (t - t0) * C, tb * C);
        }
        /* Inside the parallel region the GEMM runs on this thread alone. */
        for (xi = 0; xi < 16; xi++)
            WGEMM(0, 0, t1 - t0, F, C, (WT)1, V + xi * tb * C, C, U + xi * C * F, F, (WT)0, M + xi * tb * F, F);
        for (t = t0; t < t1; t++) {
            ptrdiff_t n = t / (th * tw), ti = t / tw % th, tj = t % tw;
            WSUF(wino_output_tile)(M + (t - t0) * F, tb * F, g, n, 2 * ti, 2 * tj, out);
        }
    }
}

/* ---- 1-D: F(2, 5), for Conv1D's 5-wide kernels ---------------------------------------------
 * Two outputs from a 6-wide input patch, with the interpolation points 0, 1, -1, 2, -2 and
 * infinity: 6 multiplies per output pair and channel pair instead of 10.  Float32 error, measured
 * against float64 on 256 -> 128 channels: 2.2e-6 of the largest output (im2col's: 5e-7).
 *   V = B^T d:  B^T rows (4 0 -5 0 1 0) (0 -4 -4 1 1 0) (0 4 -4 -1 1 0) (0 -2 -1 2 1 0)
 *               (0 2 -1 -2 1 0) (0 4 0 -5 0 1)
 *   U = G g:    G rows (1/4 0 0 0 0) -(1 1 1 1 1)/6 -(1 -1 1 -1 1)/6 (1 2 4 8 16)/24
 *               (1 -2 4 -8 16)/24 (0 0 0 0 1)
 *   y = A^T m:  A^T rows (1 1 1 1 1 0) (0 1 -1 2 -2 1) */

/* U (6 x C x F) = G g for the kernel g = w (5, C, F); with flip, g is w reversed along its taps
 * with its channel axes swapped, and U is (6, F, C). */
static void WSUF(wino1_kernel)(const WT *w, ptrdiff_t C, ptrdiff_t F, int flip, WT *restrict U, int nt)
{
    const ptrdiff_t CF = C * F;
    ptrdiff_t c;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (c = 0; c < C; c++) {
        ptrdiff_t f, a;
        for (f = 0; f < F; f++) {
            WT g[5];
            const ptrdiff_t at = flip ? f * C + c : c * F + f;
            for (a = 0; a < 5; a++) g[a] = w[(flip ? 4 - a : a) * CF + c * F + f];
            U[0 * CF + at] = g[0] / (WT)4;
            U[1 * CF + at] = -(g[0] + g[1] + g[2] + g[3] + g[4]) / (WT)6;
            U[2 * CF + at] = -(g[0] - g[1] + g[2] - g[3] + g[4]) / (WT)6;
            U[3 * CF + at] = (g[0] + 2 * g[1] + 4 * g[2] + 8 * g[3] + 16 * g[4]) / (WT)24;
            U[4 * CF + at] = (g[0] - 2 * g[1] + 4 * g[2] - 8 * g[3] + 16 * g[4]) / (WT)24;
            U[5 * CF + at] = g[4];
        }
    }
}

/* The 6-wide patch from input position p0 of sequence n, transformed into v (6 rows vs apart). */
static void WSUF(wino1_input_tile)(const WT *x, const conv_geometry *g, ptrdiff_t n, ptrdiff_t p0,
                                   const WT *zeros, WT *restrict v, ptrdiff_t vs)
{
    const ptrdiff_t C = g->C;
    const WT *p[6];
    ptrdiff_t l, c;
    for (l = 0; l < 6; l++)
        p[l] = (p0 + l >= 0 && p0 + l < g->W) ? x + (n * g->W + p0 + l) * C : zeros;
#pragma GCC ivdep
    for (c = 0; c < C; c++) {
        WT d0 = p[0][c], d1 = p[1][c], d2 = p[2][c], d3 = p[3][c], d4 = p[4][c], d5 = p[5][c];
        v[0 * vs + c] = 4 * d0 - 5 * d2 + d4;
        v[1 * vs + c] = -4 * d1 - 4 * d2 + d3 + d4;
        v[2 * vs + c] = 4 * d1 - 4 * d2 - d3 + d4;
        v[3 * vs + c] = -2 * d1 - d2 + 2 * d3 + d4;
        v[4 * vs + c] = 2 * d1 - d2 - 2 * d3 + d4;
        v[5 * vs + c] = 4 * d1 - 5 * d3 + d5;
    }
}

/* Outputs q0 and q0 + 1 (when inside) of sequence n from one tile's products m (6 rows ms apart). */
static void WSUF(wino1_output_tile)(const WT *restrict m, ptrdiff_t ms, const conv_geometry *g, ptrdiff_t n,
                                    ptrdiff_t q0, WT *out)
{
    const ptrdiff_t F = g->F;
    const int second = q0 + 1 < g->Wo;
    WT *y0 = out + (n * g->Wo + q0) * F, *y1 = y0 + F;
    ptrdiff_t f;
#pragma GCC ivdep
    for (f = 0; f < F; f++) {
        WT m0 = m[f], m1 = m[ms + f], m2 = m[2 * ms + f], m3 = m[3 * ms + f], m4 = m[4 * ms + f];
        y0[f] = m0 + m1 + m2 + m3 + m4;
        if (second) y1[f] = m1 - m2 + 2 * (m3 - m4) + m[5 * ms + f];
    }
}

/* out (N, Wo, F) = the 5-wide, stride-1, undilated 1-D convolution of x (N, W, C) with the kernel
 * transformed to U, left padding g->pl.  Blocks of tb tiles per thread as in the 2-D case, with
 * wino1_scratch(g, tb) elements of scratch per thread and C zeros. */
static void WSUF(wino1_conv5)(const WT *x, const WT *U, WT *out, const conv_geometry *g, ptrdiff_t tb,
                              WT *scratch, const WT *zeros, int nt)
{
    const ptrdiff_t tw = (g->Wo + 1) / 2, tiles = g->N * tw;
    const ptrdiff_t blocks = (tiles + tb - 1) / tb, per_thread = wino1_scratch(g, tb);
    const ptrdiff_t C = g->C, F = g->F;
    ptrdiff_t blk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (blk = 0; blk < blocks; blk++) {
#ifdef _OPENMP
        WT *V = scratch + omp_get_thread_num() * per_thread;
#else
        WT *V = scratch;
#endif
        WT *M = V + tb * 6 * C;
        const ptrdiff_t t0 = blk * tb, t1 = t0 + tb < tiles ? t0 + tb : tiles;
        ptrdiff_t t, xi;
        for (t = t0; t < t1; t++)
            WSUF(wino1_input_tile)(x, g, t / tw, 2 * (t % tw) - g->pl, zeros, V + (t - t0) * C, tb * C);
        for (xi = 0; xi < 6; xi++)
            WGEMM(0, 0, t1 - t0, F, C, (WT)1, V + xi * tb * C, C, U + xi * C * F, F, (WT)0, M + xi * tb * F, F);
        for (t = t0; t < t1; t++)
            WSUF(wino1_output_tile)(M + (t - t0) * F, tb * F, g, t / tw, 2 * (t % tw), out);
    }
}

/* The kernel gradient of the 1-D F(2, 5) convolution, through the same algorithm read backwards:
 * dw[a] = sum over tiles and t < 2 of d[t + a] gy[t] is G^T [(A gy) . (B^T d)] per tile, so with
 * V = B^T d as in the forward pass and Y = A gy (A = A^T's transpose, rows (1 0) (1 1) (1 -1)
 * (1 2) (1 -2) (0 1)), S[xi] = sum over tiles of V[xi]^T Y[xi] is one product per position
 * whose depth is the tiles, and dw = G^T S at the end. */
static void WSUF(wino1_grad_tile)(const WT *gy, const conv_geometry *g, ptrdiff_t n, ptrdiff_t q0,
                                  WT *restrict y, ptrdiff_t ys)
{
    const ptrdiff_t F = g->F;
    const WT *g0 = gy + (n * g->Wo + q0) * F;
    const int second = q0 + 1 < g->Wo;
    ptrdiff_t f;
#pragma GCC ivdep
    for (f = 0; f < F; f++) {
        WT a = g0[f], b = second ? g0[F + f] : (WT)0;
        y[f] = a;
        y[ys + f] = a + b;
        y[2 * ys + f] = a - b;
        y[3 * ys + f] = a + 2 * b;
        y[4 * ys + f] = a - 2 * b;
        y[5 * ys + f] = b;
    }
}

/* S (a partial of 6 x C x F per thread) for x (N, W, C) and gy (N, Wo, F); scratch as for
 * wino1_conv5 (tb tiles of V and Y per thread).  Returns how many partials were written. */
static int WSUF(wino1_weight_sums)(const WT *x, const WT *gy, WT *S, const conv_geometry *g, ptrdiff_t tb,
                                   WT *scratch, const WT *zeros, int nt)
{
    int parts = 1;
    const ptrdiff_t tw = (g->Wo + 1) / 2, tiles = g->N * tw;
    const ptrdiff_t blocks = (tiles + tb - 1) / tb, per_thread = wino1_scratch(g, tb);
    const ptrdiff_t C = g->C, F = g->F;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int me = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int me = 0, team = 1;
#endif
        WT *V = scratch + me * per_thread, *Y = V + tb * 6 * C, *Sme = S + (ptrdiff_t)me * 6 * C * F;
        ptrdiff_t blk, t, xi;
        int first = 1;
        if (me == 0) parts = team;      /* the runtime may grant fewer threads than asked */
        /* blocks dealt round-robin, so each thread knows which block is its first */
        for (blk = me; blk < blocks; blk += team) {
            const ptrdiff_t t0 = blk * tb, t1 = t0 + tb < tiles ? t0 + tb : tiles;
            for (t = t0; t < t1; t++) {
                WSUF(wino1_input_tile)(x, g, t / tw, 2 * (t % tw) - g->pl, zeros, V + (t - t0) * C, tb * C);
                WSUF(wino1_grad_tile)(gy, g, t / tw, 2 * (t % tw), Y + (t - t0) * F, tb * F);
            }
            for (xi = 0; xi < 6; xi++)
                WGEMM(1, 0, C, F, t1 - t0, (WT)1, V + xi * tb * C, C, Y + xi * tb * F, F, first ? (WT)0 : (WT)1,
                      Sme + xi * C * F, F);
            first = 0;
        }
        if (first)
            for (t = 0; t < 6 * C * F; t++) Sme[t] = (WT)0;
    }
    return parts;
}

/* dw (5, C, F) (+)= G^T (the sum of the parts partials S). */
static void WSUF(wino1_weight_finish)(const WT *S, int parts, ptrdiff_t C, ptrdiff_t F, WT *dw, int accumulate)
{
    const ptrdiff_t CF = C * F;
    ptrdiff_t e;
    int p;
    for (e = 0; e < CF; e++) {
        WT s[6] = {0, 0, 0, 0, 0, 0}, d[5];
        int xi, a;
        for (p = 0; p < parts; p++)
            for (xi = 0; xi < 6; xi++) s[xi] += S[(ptrdiff_t)p * 6 * CF + xi * CF + e];
        d[0] = s[0] / (WT)4 - (s[1] + s[2]) / (WT)6 + (s[3] + s[4]) / (WT)24;
        d[1] = (s[2] - s[1]) / (WT)6 + (s[3] - s[4]) / (WT)12;
        d[2] = (s[3] + s[4] - s[1] - s[2]) / (WT)6;
        d[3] = (s[2] - s[1]) / (WT)6 + (s[3] - s[4]) / (WT)3;
        d[4] = -(s[1] + s[2]) / (WT)6 + (WT)2 * (s[3] + s[4]) / (WT)3 + s[5];
        for (a = 0; a < 5; a++) dw[a * CF + e] = accumulate ? dw[a * CF + e] + d[a] : d[a];
    }
}
