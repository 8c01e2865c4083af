/* The three passes of a depthwise convolution (depth multiplier 1), written once for a vector
 * width and instantiated by depthwise.h per element type and instruction set (no include guard
 * on purpose).  Expected macros: DV_T (element), DV_V (a GCC vector of DV_W elements), DV_SUF(n)
 * (name mangling) and DV_ATTR (the target attribute, or nothing).
 *
 * Every pass is a gather: each call writes one row of its result once, from sums kept in
 * registers over the kernel taps that land inside the image, a block of channels at a time.
 * The Cython loops these replace summed into the output in memory, three loads and a store per
 * multiply-add, four floats wide on baseline x86-64; these run 2-3.5x faster on Xception's
 * shapes and are then near this machine's memory bandwidth (~30 GB/s a core). */

#define DV_LOAD(p) __extension__({ DV_V v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define DV_STORE(p, v) do { DV_V t_ = (v); __builtin_memcpy((p), &t_, sizeof t_); } while (0)

/* Output pixel j of a row, channels [c, c1): sums over the taps inside the image, two vectors,
 * then one, then single channels.  x points at the image, o at the pixel's output. */
DV_ATTR static inline __attribute__((always_inline)) void
DV_SUF(dw_forward_pixel)(const DV_T *restrict image, const DV_T *restrict w, DV_T *restrict o,
                         const conv_geometry *g, ptrdiff_t top, ptrdiff_t a0, ptrdiff_t a1, ptrdiff_t j,
                         ptrdiff_t c, ptrdiff_t c1)
{
    const ptrdiff_t C = g->C, kw = g->kw;
    ptrdiff_t a, b, b0, b1;
    dw_inside(j * g->sw - g->pl, g->dw, kw, g->W, &b0, &b1);
/* tap (a, b) of output pixel j, at channel c */
#define DV_X(a, b) (image + ((top + (a) * g->dh) * g->W + j * g->sw - g->pl + (b) * g->dw) * C + c)
#define DV_W_(a, b) (w + ((a) * kw + (b)) * C + c)
    for (; c + 2 * DV_W <= c1; c += 2 * DV_W) {
        DV_V s0 = {0}, s1 = {0};
        for (a = a0; a < a1; a++)
            for (b = b0; b < b1; b++) {
                const DV_T *xs = DV_X(a, b), *ws = DV_W_(a, b);
                s0 += DV_LOAD(xs) * DV_LOAD(ws);
                s1 += DV_LOAD(xs + DV_W) * DV_LOAD(ws + DV_W);
            }
        DV_STORE(o + c, s0);
        DV_STORE(o + c + DV_W, s1);
    }
    for (; c + DV_W <= c1; c += DV_W) {
        DV_V s0 = {0};
        for (a = a0; a < a1; a++)
            for (b = b0; b < b1; b++)
                s0 += DV_LOAD(DV_X(a, b)) * DV_LOAD(DV_W_(a, b));
        DV_STORE(o + c, s0);
    }
    for (; c < c1; c++) {
        DV_T s = 0;
        for (a = a0; a < a1; a++)
            for (b = b0; b < b1; b++)
                s += *DV_X(a, b) * *DV_W_(a, b);
        o[c] = s;
    }
#undef DV_X
#undef DV_W_
}

/* Four neighbouring output pixels of a 3-wide, stride-1, undilated kernel whose windows lie
 * inside the row, channels [c, c1) a vector at a time: per kernel row, six input vectors and
 * three weights feed twelve multiply-adds (one pixel at a time loads two vectors per
 * multiply-add, and the loads, not the FMAs, bound it).  Returns where the vectors stopped. */
DV_ATTR static inline __attribute__((always_inline)) ptrdiff_t
DV_SUF(dw_forward_quad3)(const DV_T *restrict x, ptrdiff_t x_rs, const DV_T *restrict w, ptrdiff_t rows,
                         DV_T *restrict o, ptrdiff_t C, ptrdiff_t c, ptrdiff_t c1)
{
    ptrdiff_t a;
    for (; c + DV_W <= c1; c += DV_W) {
        DV_V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (a = 0; a < rows; a++) {
            const DV_T *xs = x + a * x_rs + c, *ws = w + a * 3 * C + c;
            const DV_V w0 = DV_LOAD(ws), w1 = DV_LOAD(ws + C), w2 = DV_LOAD(ws + 2 * C);
            const DV_V x0 = DV_LOAD(xs), x1 = DV_LOAD(xs + C), x2 = DV_LOAD(xs + 2 * C);
            const DV_V x3 = DV_LOAD(xs + 3 * C), x4 = DV_LOAD(xs + 4 * C), x5 = DV_LOAD(xs + 5 * C);
            s0 += x0 * w0; s0 += x1 * w1; s0 += x2 * w2;
            s1 += x1 * w0; s1 += x2 * w1; s1 += x3 * w2;
            s2 += x2 * w0; s2 += x3 * w1; s2 += x4 * w2;
            s3 += x3 * w0; s3 += x4 * w1; s3 += x5 * w2;
        }
        DV_STORE(o + c, s0);
        DV_STORE(o + C + c, s1);
        DV_STORE(o + 2 * C + c, s2);
        DV_STORE(o + 3 * C + c, s3);
    }
    return c;
}

/* out[n, i, :, :] for output row r = n * Ho + i.  Channels in chunks of DW_CHUNK_BYTES, pixels
 * inside: the taps of a pixel are contiguous runs (streams the prefetchers follow) and a chunk's
 * window and weights stay in L1 as it slides along the row. */
DV_ATTR static void DV_SUF(dw_forward_row)(const DV_T *restrict x, const DV_T *restrict w,
                                           DV_T *restrict out, const conv_geometry *g, ptrdiff_t r)
{
    const ptrdiff_t n = r / g->Ho, i = r % g->Ho, C = g->C, Wo = g->Wo;
    const ptrdiff_t top = i * g->sh - g->pt, chunk = DW_CHUNK_BYTES / sizeof(DV_T);
    const DV_T *image = x + n * g->H * g->W * C;
    DV_T *orow = out + r * Wo * C;
    /* the output pixels whose 3-wide windows lie inside the row, for the four-pixel blocks */
    const int quads = g->kw == 3 && g->sw == 1 && g->dw == 1;
    const ptrdiff_t q0 = g->pl, q1 = g->W - 2 + g->pl;
    ptrdiff_t a0, a1, j, c, c0, c1, q;
    dw_inside(top, g->dh, g->kh, g->H, &a0, &a1);
    for (c0 = 0; c0 < C; c0 += chunk) {
        c1 = c0 + chunk < C ? c0 + chunk : C;
        for (j = 0; j < Wo;) {
            if (quads && j >= q0 && j + 4 <= q1 && j + 4 <= Wo) {
                /* from the first kernel row inside the image, at the first block's leftmost tap */
                c = DV_SUF(dw_forward_quad3)(image + ((top + a0 * g->dh) * g->W + j - g->pl) * C,
                                             g->dh * g->W * C, w + a0 * 3 * C, a1 - a0, orow + j * C, C,
                                             c0, c1);
                for (q = 0; q < 4 && c < c1; q++)
                    DV_SUF(dw_forward_pixel)(image, w, orow + (j + q) * C, g, top, a0, a1, j + q, c, c1);
                j += 4;
            } else {
                DV_SUF(dw_forward_pixel)(image, w, orow + j * C, g, top, a0, a1, j, c0, c1);
                j++;
            }
        }
    }
}

/* dx[n, hi, :, :] for input row r = n * H + hi: the sum over every output pixel whose window
 * covers the input pixel, of its gradient times the kernel tap that covered it (a gather, so
 * each dx element is written once and needs no zeroing).  The covering taps are listed on the
 * stack, at most DW_MAX_TAPS of them (the caller checks); the column lists of the whole
 * row are made once, in the caller's scratch `cols` of W * (1 + 2 * kw) entries.  Channel chunks
 * as in the forward pass. */
DV_ATTR static void DV_SUF(dw_backward_input_row)(const DV_T *restrict gy, const DV_T *restrict w,
                                                  DV_T *restrict dx, const conv_geometry *g, ptrdiff_t r,
                                                  ptrdiff_t *restrict cols)
{
    const ptrdiff_t n = r / g->H, hi = r % g->H, C = g->C, kw = g->kw, W = g->W;
    const DV_T *gimage = gy + n * g->Ho * g->Wo * C;
    DV_T *drow = dx + r * W * C;
    ptrdiff_t tap_a[DW_MAX_TAPS], out_i[DW_MAX_TAPS];
    ptrdiff_t na = dw_taps_covering(hi, g->pt, g->sh, g->dh, g->kh, g->Ho, tap_a, out_i);
    ptrdiff_t *ncols = cols, *tap_b = cols + W, *out_j = tap_b + W * kw;
    const ptrdiff_t chunk = DW_CHUNK_BYTES / sizeof(DV_T);
    ptrdiff_t wi, p, q, c, c0, c1;
    for (wi = 0; wi < W; wi++)
        ncols[wi] = dw_taps_covering(wi, g->pl, g->sw, g->dw, kw, g->Wo, tap_b + wi * kw, out_j + wi * kw);
#define DV_G(p, q) (gimage + (out_i[p] * g->Wo + out_j[wi * kw + (q)]) * C + c)
#define DV_W_(p, q) (w + (tap_a[p] * kw + tap_b[wi * kw + (q)]) * C + c)
    for (c0 = 0; c0 < C; c0 += chunk) {
        c1 = c0 + chunk < C ? c0 + chunk : C;
        for (wi = 0; wi < W; wi++) {
            DV_T *d = drow + wi * C;
            const ptrdiff_t nb = ncols[wi];
            for (c = c0; c + 2 * DV_W <= c1; c += 2 * DV_W) {
                DV_V s0 = {0}, s1 = {0};
                for (p = 0; p < na; p++)
                    for (q = 0; q < nb; q++) {
                        const DV_T *gs = DV_G(p, q), *ws = DV_W_(p, q);
                        s0 += DV_LOAD(gs) * DV_LOAD(ws);
                        s1 += DV_LOAD(gs + DV_W) * DV_LOAD(ws + DV_W);
                    }
                DV_STORE(d + c, s0);
                DV_STORE(d + c + DV_W, s1);
            }
            for (; c + DV_W <= c1; c += DV_W) {
                DV_V s0 = {0};
                for (p = 0; p < na; p++)
                    for (q = 0; q < nb; q++)
                        s0 += DV_LOAD(DV_G(p, q)) * DV_LOAD(DV_W_(p, q));
                DV_STORE(d + c, s0);
            }
            for (; c < c1; c++) {
                DV_T s = 0;
                for (p = 0; p < na; p++)
                    for (q = 0; q < nb; q++)
                        s += *DV_G(p, q) * *DV_W_(p, q);
                d[c] = s;
            }
        }
    }
#undef DV_G
#undef DV_W_
}

/* dw[a, b, :] += the sum over output row r = n * Ho + i of x under tap (a, b) times the output
 * gradient, for every tap; dw is the calling thread's own (kh, kw, C) partial.  Channel blocks
 * outside (the block's slice of the row's input and gradient stays in L1 across the taps), four
 * vectors at a time: the sum along the row is a chain per vector, and four keep the FMA units
 * busy. */
DV_ATTR static void DV_SUF(dw_backward_weight_row)(const DV_T *restrict x, const DV_T *restrict gy,
                                                   DV_T *restrict dw, const conv_geometry *g, ptrdiff_t r)
{
    const ptrdiff_t n = r / g->Ho, i = r % g->Ho, C = g->C, kw = g->kw;
    const ptrdiff_t top = i * g->sh - g->pt;
    const DV_T *grow = gy + r * g->Wo * C;
    ptrdiff_t a0, a1, a, b, j, j0, j1, c = 0;
    dw_inside(top, g->dh, g->kh, g->H, &a0, &a1);
/* the input under tap (a, b) of output pixel j, the gradient of pixel j, the tap's partial */
#define DV_X(a, b) (x + ((n * g->H + top + (a) * g->dh) * g->W + j * g->sw + (b) * g->dw - g->pl) * C + c)
#define DV_G() (grow + j * C + c)
#define DV_ACC(a, b) (dw + ((a) * kw + (b)) * C + c)
/* the output columns whose tap b lands inside the row: j * sw + b * dw - pl in [0, W) */
#define DV_COLS(b) dw_inside((b) * g->dw - g->pl, g->sw, g->Wo, g->W, &j0, &j1)
    for (; c + 4 * DV_W <= C; c += 4 * DV_W)
        for (a = a0; a < a1; a++)
            for (b = 0; b < kw; b++) {
                DV_V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
                DV_T *acc = DV_ACC(a, b);
                DV_COLS(b);
                for (j = j0; j < j1; j++) {
                    const DV_T *xs = DV_X(a, b), *gs = DV_G();
                    s0 += DV_LOAD(xs) * DV_LOAD(gs);
                    s1 += DV_LOAD(xs + DV_W) * DV_LOAD(gs + DV_W);
                    s2 += DV_LOAD(xs + 2 * DV_W) * DV_LOAD(gs + 2 * DV_W);
                    s3 += DV_LOAD(xs + 3 * DV_W) * DV_LOAD(gs + 3 * DV_W);
                }
                DV_STORE(acc, DV_LOAD(acc) + s0);
                DV_STORE(acc + DV_W, DV_LOAD(acc + DV_W) + s1);
                DV_STORE(acc + 2 * DV_W, DV_LOAD(acc + 2 * DV_W) + s2);
                DV_STORE(acc + 3 * DV_W, DV_LOAD(acc + 3 * DV_W) + s3);
            }
    for (; c + DV_W <= C; c += DV_W)
        for (a = a0; a < a1; a++)
            for (b = 0; b < kw; b++) {
                DV_V s0 = {0};
                DV_T *acc = DV_ACC(a, b);
                DV_COLS(b);
                for (j = j0; j < j1; j++)
                    s0 += DV_LOAD(DV_X(a, b)) * DV_LOAD(DV_G());
                DV_STORE(acc, DV_LOAD(acc) + s0);
            }
    for (; c < C; c++)
        for (a = a0; a < a1; a++)
            for (b = 0; b < kw; b++) {
                DV_T s = 0;
                DV_COLS(b);
                for (j = j0; j < j1; j++)
                    s += *DV_X(a, b) * *DV_G();
                *DV_ACC(a, b) += s;
            }
#undef DV_X
#undef DV_G
#undef DV_ACC
#undef DV_COLS
}

#undef DV_LOAD
#undef DV_STORE
