// Glimpse compositing: paste N = B * G2 glimpses onto B canvases and blend them with a softmax over the
// G2 cells of each image, visiting only each cell's box. Shape contract and semantics: sk_composite.h.
//
// How the optimised kernels work, per image:
// 1. Each cell's taps are separable: column j samples glimpse columns (x0, x0 + 1) with weights
//    (wx_w, wx_e), row i rows (y0, y0 + 1) with (wy_n, wy_s). The box is the range of columns times the
//    range of rows with a tap inside: found in closed form from (ax, bx, ay, by), then tested exactly
//    position by position while the taps are filled in (see axis_taps).
// 2. Glimpse maps are copied into zero-padded planes (one zero row/column before, two after), so every
//    tap reads memory: a tap outside the glimpse reads 0 (zeros padding) and a column or row whose
//    sample misses the glimpse entirely points at the two trailing zero columns (rows). Its value and
//    its PyTorch-style derivative are then exactly 0, with no branch in the inner loops.
// 3. Forward: the count of boxes covering each pixel (a 2-D difference array) seeds the softmax with
//    the cells that do not reach it (importance exactly 0): max m = 0, denominator = their number.
//    The box cells then fold in with an online softmax (rescaling the running sums when the max grows).
// 4. Backward: per pixel, the softmax weight w = exp(I - lse) from the saved log-sum-exp, and the dot
//    product of the output gradient with the output (shared by all cells) are enough for every cell.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int check_args(const float *summed, int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg,
                      int64_t H, int64_t W) {
    if (B < 0 || G2 < 1 || Cv < 0 || Cs < 0 || Hg < 1 || Wg < 1 || H < 1 || W < 1) return SK_ERR_ARG;
    if (Cs > 0 && !summed) return SK_ERR_ARG;
    // Padded offsets are int32: glimpses are small (SPACE: 32 x 32).
    if ((Hg + 3) * (Wg + 3) * (1 + Cv + Cs) >= ((int64_t)1 << 31)) return SK_ERR_ARG;
    return SK_OK;
}

// The glimpse coordinate of a canvas base coordinate, rounded as affine_grid rounds x * t0 + y * t1 + t2
// with t1 = 0: the product, then the sum (two statements, so no fused multiply-add is contracted).
static inline float to_glimpse(float base, float a, float b) {
    float p = base * a;
    return p + b;
}

// ---------------------------------------------------------------- optimised

// One canvas row or column of one cell: padded index `off` of the first tap (glimpse index off - 1) and
// the weights of the two taps (w0 = west/north, w1 = east/south).
typedef struct {
    int32_t off;
    float w0, w1;
} axis_tap;

// The tap of one canvas position (base coordinate `base`) along a glimpse axis of `size` pixels under
// g = a * base + b, as grid_sample's locate: ip = ((g + 1) * size - 1) / 2, taps floor(ip) and
// floor(ip) + 1, sampled when floor(ip) lies in [-1, size - 1]. Returns 0 (and points the tap at the two
// zero entries past the glimpse, padded index size + 1) when the position samples nothing.
static inline int axis_tap_at(axis_tap *t, float base, float a, float b, int64_t size) {
    const float fs = (float)size;
    float ip = ((to_glimpse(base, a, b) + 1.0f) * fs - 1.0f) * 0.5f;
    float f = floorf(ip);
    if (f >= -1.0f && f <= fs - 1.0f) {
        t->off = (int32_t)f + 1;
        t->w0 = (f + 1.0f) - ip;
        t->w1 = ip - f;
        return 1;
    }
    t->off = (int32_t)size + 1;
    t->w0 = 0.0f;
    t->w1 = 0.0f;
    return 0;
}

// Taps of the canvas positions 0..count-1 (base coordinates `base`) that can sample the glimpse, and their
// range [*lo, *hi) (empty when none; entries outside it are not written). The sampled set is an interval
// (g rounds monotonically in base). Its ends come in closed form: ip in [-1, size) <=> g in
// [-1 - 1/size, 1 + 1/size), solved for base, in double, with 2 positions of margin against rounding
// (a negative scale swaps the ends; a zero or non-finite one scans every position); each position is then
// tested exactly, and an end that is still sampled is extended outward until it is not.
static void axis_taps(axis_tap *t, const float *base, int64_t count, float a, float b, int64_t size,
                      int64_t *lo, int64_t *hi) {
    int64_t k0 = 0, k1 = count;
    const double edge = 1.0 + 1.0 / (double)size;
    const double xa = (-edge - (double)b) / (double)a, xb = (edge - (double)b) / (double)a;
    if (a != 0.0f && isfinite(xa) && isfinite(xb)) {
        const double xlo = fmin(xa, xb), xhi = fmax(xa, xb);
        const double klo = floor(((xlo + 1.0) * (double)count - 1.0) / 2.0) - 2.0;
        const double khi = ceil(((xhi + 1.0) * (double)count - 1.0) / 2.0) + 3.0;
        k0 = (int64_t)fmin(fmax(klo, 0.0), (double)count);
        k1 = (int64_t)fmin(fmax(khi, 0.0), (double)count);
    }
    int64_t first = -1, last = -1;
    for (int64_t k = k0; k < k1; k++)
        if (axis_tap_at(t + k, base[k], a, b, size)) {
            if (first < 0) first = k;
            last = k;
        }
    if (first < 0) { *lo = *hi = 0; return; }
    if (first == k0)
        while (first > 0 && axis_tap_at(t + first - 1, base[first - 1], a, b, size)) first--;
    if (last == k1 - 1)
        while (last + 1 < count && axis_tap_at(t + last + 1, base[last + 1], a, b, size)) last++;
    *lo = first;
    *hi = last + 1;
}

typedef struct {
    float *xs, *ys;          // base coordinates: (W), (H)
    axis_tap *cols, *rows;   // one cell's taps: (W), (H)
    int32_t *cover;          // (H + 1, W + 1): difference array, then the number of boxes covering each pixel
    float *m, *d;            // (H * W): running max and denominator (backward: d holds the gradient dot product)
    float *pad, *gpad;       // (1 + Cv + Cs) padded planes (Hg + 3, Wg + 3): importance, values, summed
    float *hbuf;             // forward: (1 + Cv + Cs, Hg + 3, W) planes' rows interpolated at a box's columns
    int32_t *coff;           // forward, (W) each: a box's column taps as arrays, and per-column softmax factors
    float *cw0, *cw1, *tsc, *te;
} scratch;

static void *scratch_alloc(scratch *s, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W,
                           int gradients) {
    const int64_t planes = (1 + Cv + Cs) * (Hg + 3) * (Wg + 3);
    const int64_t rows = (1 + Cv + Cs) * (Hg + 3) * W;
    size_t floats = (size_t)(W + H + 2 * H * W + planes * (gradients ? 2 : 1) + rows + 4 * W);
    size_t bytes = floats * sizeof(float) + (size_t)(W + H) * sizeof(axis_tap) + (size_t)((H + 1) * (W + 1) + W) * sizeof(int32_t);
    char *block = (char *)calloc(1, bytes);
    if (!block) return NULL;
    char *at = block;
    s->cols = (axis_tap *)at; at += (size_t)W * sizeof(axis_tap);
    s->rows = (axis_tap *)at; at += (size_t)H * sizeof(axis_tap);
    s->xs = (float *)at; at += (size_t)W * sizeof(float);
    s->ys = (float *)at; at += (size_t)H * sizeof(float);
    s->m = (float *)at; at += (size_t)(H * W) * sizeof(float);
    s->d = (float *)at; at += (size_t)(H * W) * sizeof(float);
    s->pad = (float *)at; at += (size_t)planes * sizeof(float);
    s->gpad = gradients ? (float *)at : NULL; at += gradients ? (size_t)planes * sizeof(float) : 0;
    s->hbuf = (float *)at; at += (size_t)rows * sizeof(float);
    s->cw0 = (float *)at; at += (size_t)W * sizeof(float);
    s->cw1 = (float *)at; at += (size_t)W * sizeof(float);
    s->tsc = (float *)at; at += (size_t)W * sizeof(float);
    s->te = (float *)at; at += (size_t)W * sizeof(float);
    s->coff = (int32_t *)at; at += (size_t)W * sizeof(int32_t);
    s->cover = (int32_t *)at;
    for (int64_t j = 0; j < W; j++) s->xs[j] = sk_affine_grid_base(j, W);
    for (int64_t i = 0; i < H; i++) s->ys[i] = sk_affine_grid_base(i, H);
    return block;
}

// Copies C planes (Hg, Wg) into the interiors of C padded planes (Hg + 3, Wg + 3); borders stay 0.
static void load_padded(float *pad, const float *src, int64_t C, int64_t Hg, int64_t Wg) {
    const int64_t Wp = Wg + 3, P = (Hg + 3) * Wp;
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < Hg; y++) {
            const float *s = src + (c * Hg + y) * Wg;
            float *o = pad + c * P + (y + 1) * Wp + 1;
            for (int64_t x = 0; x < Wg; x++) o[x] = s[x];  // rows are short: a loop beats a memcpy call
        }
}

// Adds the interiors of C padded gradient planes into C planes (Hg, Wg).
static void store_padded_add(float *dst, const float *gpad, int64_t C, int64_t Hg, int64_t Wg) {
    const int64_t Wp = Wg + 3, P = (Hg + 3) * Wp;
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < Hg; y++) {
            const float *s = gpad + c * P + (y + 1) * Wp + 1;
            float *o = dst + (c * Hg + y) * Wg;
            for (int64_t x = 0; x < Wg; x++) o[x] += s[x];
        }
}

// The taps and box of cell n's affine parameters a = (ax, bx, ay, by). Returns 0 when the box is empty.
static int cell_box(scratch *s, const float *a, int64_t Hg, int64_t Wg, int64_t H, int64_t W,
                    int64_t *i0, int64_t *i1, int64_t *j0, int64_t *j1) {
    axis_taps(s->cols, s->xs, W, a[0], a[1], Wg, j0, j1);
    axis_taps(s->rows, s->ys, H, a[2], a[3], Hg, i0, i1);
    return *j0 < *j1 && *i0 < *i1;
}

// Bilinear sample of a padded plane at q (the north-west tap) with PyTorch's weights.
#define SK_BILINEAR(q, Wp, nw, ne, sw, se) ((q)[0] * (nw) + (q)[1] * (ne) + (q)[Wp] * (sw) + (q)[(Wp) + 1] * (se))

#define SK_BODY "composite_body.h"
#include "sk_multiversion.h"

static void forward_image(float *out, float *lse, const float *values, const float *importance, const float *summed,
                          const float *affine, scratch *s, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg,
                          int64_t H, int64_t W) {
    const int64_t HW = H * W, Wp = Wg + 3, P = (Hg + 3) * Wp, W1 = W + 1;
    const int64_t glimpse = Hg * Wg;
    int32_t *cover = s->cover;
    float *m = s->m, *d = s->d;

    // 1. Coverage: how many cells' boxes reach each pixel.
    memset(cover, 0, sizeof(int32_t) * (size_t)((H + 1) * W1));
    for (int64_t n = 0; n < G2; n++) {
        int64_t i0, i1, j0, j1;
        if (!cell_box(s, affine + n * 4, Hg, Wg, H, W, &i0, &i1, &j0, &j1)) continue;
        cover[i0 * W1 + j0]++; cover[i0 * W1 + j1]--;
        cover[i1 * W1 + j0]--; cover[i1 * W1 + j1]++;
    }
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) {
            int32_t c = cover[i * W1 + j];
            if (i > 0) c += cover[(i - 1) * W1 + j];
            if (j > 0) c += cover[i * W1 + j - 1];
            if (i > 0 && j > 0) c -= cover[(i - 1) * W1 + j - 1];
            cover[i * W1 + j] = c;
        }

    // 2. The cells that do not reach a pixel: importance 0 each, so max 0 and exp(0 - 0) = 1 apiece.
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) {
            int64_t outside = G2 - cover[i * W1 + j];
            m[i * W + j] = outside > 0 ? 0.0f : -INFINITY;
            d[i * W + j] = (float)outside;
        }
    memset(out, 0, sizeof(float) * (size_t)((Cv + Cs) * HW));

    // 3. Online softmax over the box cells: out holds the numerators sum exp(I - m) * v until step 4.
    for (int64_t n = 0; n < G2; n++) {
        int64_t i0, i1, j0, j1;
        if (!cell_box(s, affine + n * 4, Hg, Wg, H, W, &i0, &i1, &j0, &j1)) continue;
        load_padded(s->pad, importance + n * glimpse, 1, Hg, Wg);
        load_padded(s->pad + P, values + n * Cv * glimpse, Cv, Hg, Wg);
        if (Cs > 0) load_padded(s->pad + (1 + Cv) * P, summed + n * Cs * glimpse, Cs, Hg, Wg);
        SK_DISPATCH(paste_cell, out, m, d, s, Cv, Cs, Hg, Wg, H, W, i0, i1, j0, j1);
    }

    // 4. Normalise; lse = m + log(denominator).
    for (int64_t p = 0; p < HW; p++) lse[p] = m[p] + logf(d[p]);
    SK_DISPATCH(normalise_image, out, d, Cv, HW);
}

int sk_composite_forward(float *out, float *lse,
                         const float *values, const float *importance, const float *summed, const float *affine,
                         int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W) {
    int status = check_args(summed, B, G2, Cv, Cs, Hg, Wg, H, W);
    if (status != SK_OK) return status;
    scratch s;
    void *block = scratch_alloc(&s, Cv, Cs, Hg, Wg, H, W, 0);
    if (!block) return sk_naive_composite_forward(out, lse, values, importance, summed, affine, B, G2, Cv, Cs, Hg, Wg, H, W);
    const int64_t HW = H * W, glimpse = Hg * Wg;
    for (int64_t b = 0; b < B; b++) {
        const int64_t n0 = b * G2;
        forward_image(out + b * (Cv + Cs) * HW, lse + b * HW, values + n0 * Cv * glimpse, importance + n0 * glimpse,
                      Cs > 0 ? summed + n0 * Cs * glimpse : NULL, affine + n0 * 4, &s, G2, Cv, Cs, Hg, Wg, H, W);
    }
    free(block);
    return SK_OK;
}

// Gradient of one padded plane's sample with respect to (ix, iy), PyTorch's interior form regrouped per
// tap pair (zero taps make it exact at the border too): d/dix = wy_n (v01 - v00) + wy_s (v11 - v10),
// d/diy = wx_w (v10 - v00) + wx_e (v11 - v01). Scatters gp times the tap weights into gq when non-NULL.
static inline void tap_backward(float *gq, const float *q, int64_t Wp, float gp, float wxw, float wxe, float wyn,
                                float wys, float *gix, float *giy) {
    const float v00 = q[0], v01 = q[1], v10 = q[Wp], v11 = q[Wp + 1];
    if (gq) {
        gq[0] += wxw * wyn * gp; gq[1] += wxe * wyn * gp;
        gq[Wp] += wxw * wys * gp; gq[Wp + 1] += wxe * wys * gp;
    }
    *gix += gp * (wyn * (v01 - v00) + wys * (v11 - v10));
    *giy += gp * (wxw * (v10 - v00) + wxe * (v11 - v01));
}

static void backward_image(float *gvalues, float *gimportance, float *gsummed, float *gaffine, const float *gout,
                           const float *out, const float *lse, const float *values, const float *importance,
                           const float *summed, const float *affine, scratch *s, int64_t G2, int64_t Cv, int64_t Cs,
                           int64_t Hg, int64_t Wg, int64_t H, int64_t W) {
    const int64_t HW = H * W, Wp = Wg + 3, P = (Hg + 3) * Wp, CP = 1 + Cv + Cs;
    const int64_t glimpse = Hg * Wg;
    const int want_glimpse = gvalues || gimportance || gsummed;
    const float gx_mult = (float)Wg / 2.0f, gy_mult = (float)Hg / 2.0f;
    float *dot = s->d;
    for (int64_t p = 0; p < HW; p++) {
        float acc = 0.0f;
        for (int64_t c = 0; c < Cv; c++) acc += gout[c * HW + p] * out[c * HW + p];
        dot[p] = acc;
    }
    for (int64_t n = 0; n < G2; n++) {
        int64_t i0, i1, j0, j1;
        if (!cell_box(s, affine + n * 4, Hg, Wg, H, W, &i0, &i1, &j0, &j1)) continue;
        load_padded(s->pad, importance + n * glimpse, 1, Hg, Wg);
        load_padded(s->pad + P, values + n * Cv * glimpse, Cv, Hg, Wg);
        if (Cs > 0) load_padded(s->pad + (1 + Cv) * P, summed + n * Cs * glimpse, Cs, Hg, Wg);
        if (want_glimpse) memset(s->gpad, 0, sizeof(float) * (size_t)(CP * P));
        double dax = 0.0, dbx = 0.0, day = 0.0, dby = 0.0;
        for (int64_t i = i0; i < i1; i++) {
            const axis_tap ry = s->rows[i];
            const int64_t rowoff = (int64_t)ry.off * Wp;
            const float wyn = ry.w0, wys = ry.w1;
            double row_gx_x = 0.0, row_gx = 0.0, row_gy = 0.0;
            for (int64_t j = j0; j < j1; j++) {
                const axis_tap cx = s->cols[j];
                const int64_t at = rowoff + cx.off;
                const float *q = s->pad + at;
                float *gq = want_glimpse ? s->gpad + at : NULL;
                const float wxw = cx.w0, wxe = cx.w1;
                const float nw = wxw * wyn, ne = wxe * wyn, sw = wxw * wys, se = wxe * wys;
                const int64_t p = i * W + j;
                // Softmax weight of this cell at p, and the values' gradients.
                const float w = sk_fast_expf(SK_BILINEAR(q, Wp, nw, ne, sw, se) - lse[p]);
                float gix = 0.0f, giy = 0.0f, gv = 0.0f;
                for (int64_t c = 0; c < Cv; c++) {
                    const float *qc = q + (1 + c) * P;
                    const float g = gout[c * HW + p];
                    gv += g * SK_BILINEAR(qc, Wp, nw, ne, sw, se);
                    tap_backward(gvalues ? gq + (1 + c) * P : NULL, qc, Wp, g * w, wxw, wxe, wyn, wys, &gix, &giy);
                }
                // Softmax backward: dL/dI = w * (g . v - g . out).
                tap_backward(gimportance ? gq : NULL, q, Wp, w * (gv - dot[p]), wxw, wxe, wyn, wys, &gix, &giy);
                for (int64_t c = 0; c < Cs; c++) {
                    const float *qc = q + (1 + Cv + c) * P;
                    tap_backward(gsummed ? gq + (1 + Cv + c) * P : NULL, qc, Wp, gout[(Cv + c) * HW + p], wxw, wxe, wyn,
                                 wys, &gix, &giy);
                }
                // Grid gradient -> affine: gx = ax * x + bx, gy = ay * y + by.
                const float ggx = gx_mult * gix, ggy = gy_mult * giy;
                row_gx_x += (double)(ggx * s->xs[j]);
                row_gx += (double)ggx;
                row_gy += (double)ggy;
            }
            dax += row_gx_x; dbx += row_gx;
            day += row_gy * (double)s->ys[i]; dby += row_gy;
        }
        if (gimportance) store_padded_add(gimportance + n * glimpse, s->gpad, 1, Hg, Wg);
        if (gvalues) store_padded_add(gvalues + n * Cv * glimpse, s->gpad + P, Cv, Hg, Wg);
        if (gsummed && Cs > 0) store_padded_add(gsummed + n * Cs * glimpse, s->gpad + (1 + Cv) * P, Cs, Hg, Wg);
        if (gaffine) {
            float *ga = gaffine + n * 4;
            ga[0] += (float)dax; ga[1] += (float)dbx; ga[2] += (float)day; ga[3] += (float)dby;
        }
    }
}

SK_CLONES int sk_composite_backward(float *gvalues, float *gimportance, float *gsummed, float *gaffine,
                          const float *gout, const float *out, const float *lse,
                          const float *values, const float *importance, const float *summed, const float *affine,
                          int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W) {
    int status = check_args(summed, B, G2, Cv, Cs, Hg, Wg, H, W);
    if (status != SK_OK) return status;
    if (!gvalues && !gimportance && !gsummed && !gaffine) return SK_OK;
    scratch s;
    void *block = scratch_alloc(&s, Cv, Cs, Hg, Wg, H, W, 1);
    if (!block)
        return sk_naive_composite_backward(gvalues, gimportance, gsummed, gaffine, gout, out, lse, values, importance,
                                           summed, affine, B, G2, Cv, Cs, Hg, Wg, H, W);
    const int64_t HW = H * W, glimpse = Hg * Wg;
    for (int64_t b = 0; b < B; b++) {
        const int64_t n0 = b * G2, C = Cv + Cs;
        backward_image(gvalues ? gvalues + n0 * Cv * glimpse : NULL, gimportance ? gimportance + n0 * glimpse : NULL,
                       gsummed && Cs > 0 ? gsummed + n0 * Cs * glimpse : NULL, gaffine ? gaffine + n0 * 4 : NULL,
                       gout + b * C * HW, out + b * C * HW, lse + b * HW, values + n0 * Cv * glimpse,
                       importance + n0 * glimpse, Cs > 0 ? summed + n0 * Cs * glimpse : NULL, affine + n0 * 4, &s,
                       G2, Cv, Cs, Hg, Wg, H, W);
    }
    free(block);
    return SK_OK;
}

// ---------------------------------------------------------------- naive

// One sample point of grid_sample, transcribed from PyTorch's scalar grid_sampler_2d: the north-west tap
// and the weight factors; valid = 0 when no tap can touch the glimpse (or a coordinate is not finite).
typedef struct {
    int valid;
    int64_t x0, y0;
    float wxw, wxe, wyn, wys;
} naive_point;

static naive_point naive_locate(const float *a, float x, float y, int64_t Hg, int64_t Wg) {
    naive_point t = {0, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f};
    float ix = ((to_glimpse(x, a[0], a[1]) + 1.0f) * (float)Wg - 1.0f) / 2.0f;
    float iy = ((to_glimpse(y, a[2], a[3]) + 1.0f) * (float)Hg - 1.0f) / 2.0f;
    float fx = floorf(ix), fy = floorf(iy);
    if (!(fx >= -1.0f && fx <= (float)Wg - 1.0f && fy >= -1.0f && fy <= (float)Hg - 1.0f)) return t;
    t.valid = 1;
    t.x0 = (int64_t)fx; t.y0 = (int64_t)fy;
    t.wxw = (fx + 1.0f) - ix; t.wxe = ix - fx;
    t.wyn = (fy + 1.0f) - iy; t.wys = iy - fy;
    return t;
}

static inline int inside(int64_t y, int64_t x, int64_t Hg, int64_t Wg) { return y >= 0 && y < Hg && x >= 0 && x < Wg; }

// The bilinear sample of plane q (Hg, Wg) at t; taps outside read 0.
static double naive_sample(const float *q, naive_point t, int64_t Hg, int64_t Wg) {
    if (!t.valid) return 0.0;
    double v = 0.0;
    if (inside(t.y0, t.x0, Hg, Wg)) v += (double)q[t.y0 * Wg + t.x0] * t.wxw * t.wyn;
    if (inside(t.y0, t.x0 + 1, Hg, Wg)) v += (double)q[t.y0 * Wg + t.x0 + 1] * t.wxe * t.wyn;
    if (inside(t.y0 + 1, t.x0, Hg, Wg)) v += (double)q[(t.y0 + 1) * Wg + t.x0] * t.wxw * t.wys;
    if (inside(t.y0 + 1, t.x0 + 1, Hg, Wg)) v += (double)q[(t.y0 + 1) * Wg + t.x0 + 1] * t.wxe * t.wys;
    return v;
}

// Backward of naive_sample for output gradient gp: PyTorch's per-tap form (gq may be NULL).
static void naive_sample_backward(float *gq, const float *q, naive_point t, int64_t Hg, int64_t Wg, double gp,
                                  double *gix, double *giy) {
    if (!t.valid) return;
    const int64_t xs[4] = {t.x0, t.x0 + 1, t.x0, t.x0 + 1}, ys[4] = {t.y0, t.y0, t.y0 + 1, t.y0 + 1};
    const double wx[4] = {t.wxw, t.wxe, t.wxw, t.wxe}, wy[4] = {t.wyn, t.wyn, t.wys, t.wys};
    const double sx[4] = {-1, 1, -1, 1}, sy[4] = {-1, -1, 1, 1};
    for (int k = 0; k < 4; k++) {
        if (!inside(ys[k], xs[k], Hg, Wg)) continue;
        double v = q[ys[k] * Wg + xs[k]];
        if (gq) gq[ys[k] * Wg + xs[k]] += (float)(wx[k] * wy[k] * gp);
        *gix += sx[k] * v * wy[k] * gp;
        *giy += sy[k] * v * wx[k] * gp;
    }
}

// The log-sum-exp over the G2 cells of image b (its cells at values/importance/affine) at base point (x, y).
static double naive_lse(const float *importance, const float *affine, int64_t G2, int64_t Hg, int64_t Wg, float x, float y) {
    const int64_t glimpse = Hg * Wg;
    double mx = -INFINITY, den = 0.0;
    for (int64_t n = 0; n < G2; n++) {
        double imp = naive_sample(importance + n * glimpse, naive_locate(affine + n * 4, x, y, Hg, Wg), Hg, Wg);
        if (imp > mx) mx = imp;
    }
    for (int64_t n = 0; n < G2; n++)
        den += exp(naive_sample(importance + n * glimpse, naive_locate(affine + n * 4, x, y, Hg, Wg), Hg, Wg) - mx);
    return mx + log(den);
}

// Output channel c (< Cv + Cs) at base point (x, y), given the log-sum-exp there.
static double naive_channel(int64_t c, double lse, const float *values, const float *importance, const float *summed,
                            const float *affine, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, float x, float y) {
    const int64_t glimpse = Hg * Wg;
    double acc = 0.0;
    for (int64_t n = 0; n < G2; n++) {
        naive_point t = naive_locate(affine + n * 4, x, y, Hg, Wg);
        if (c < Cv)
            acc += exp(naive_sample(importance + n * glimpse, t, Hg, Wg) - lse) * naive_sample(values + (n * Cv + c) * glimpse, t, Hg, Wg);
        else
            acc += naive_sample(summed + (n * Cs + c - Cv) * glimpse, t, Hg, Wg);
    }
    return acc;
}

int sk_naive_composite_forward(float *out, float *lse,
                               const float *values, const float *importance, const float *summed, const float *affine,
                               int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W) {
    int status = check_args(summed, B, G2, Cv, Cs, Hg, Wg, H, W);
    if (status != SK_OK) return status;
    const int64_t HW = H * W, glimpse = Hg * Wg, C = Cv + Cs;
    for (int64_t b = 0; b < B; b++) {
        const int64_t n0 = b * G2;
        const float *vb = values + n0 * Cv * glimpse, *ib = importance + n0 * glimpse, *ab = affine + n0 * 4;
        const float *sb = Cs > 0 ? summed + n0 * Cs * glimpse : NULL;
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                const float x = sk_affine_grid_base(j, W), y = sk_affine_grid_base(i, H);
                double l = naive_lse(ib, ab, G2, Hg, Wg, x, y);
                lse[b * HW + i * W + j] = (float)l;
                for (int64_t c = 0; c < C; c++)
                    out[(b * C + c) * HW + i * W + j] = (float)naive_channel(c, l, vb, ib, sb, ab, G2, Cv, Cs, Hg, Wg, x, y);
            }
    }
    return SK_OK;
}

int sk_naive_composite_backward(float *gvalues, float *gimportance, float *gsummed, float *gaffine,
                                const float *gout, const float *out, const float *lse,
                                const float *values, const float *importance, const float *summed, const float *affine,
                                int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W) {
    (void)out; (void)lse;  // recomputed in double
    int status = check_args(summed, B, G2, Cv, Cs, Hg, Wg, H, W);
    if (status != SK_OK) return status;
    const int64_t HW = H * W, glimpse = Hg * Wg, C = Cv + Cs;
    for (int64_t b = 0; b < B; b++) {
        const int64_t n0 = b * G2;
        const float *vb = values + n0 * Cv * glimpse, *ib = importance + n0 * glimpse, *ab = affine + n0 * 4;
        const float *sb = Cs > 0 ? summed + n0 * Cs * glimpse : NULL;
        for (int64_t n = 0; n < G2; n++) {
            const int64_t cell = n0 + n;
            double ga[4] = {0, 0, 0, 0};
            for (int64_t i = 0; i < H; i++)
                for (int64_t j = 0; j < W; j++) {
                    const float x = sk_affine_grid_base(j, W), y = sk_affine_grid_base(i, H);
                    naive_point t = naive_locate(ab + n * 4, x, y, Hg, Wg);
                    if (!t.valid) continue;  // the cell's importance is the constant 0 here
                    const float *g = gout + b * C * HW + i * W + j;
                    double l = naive_lse(ib, ab, G2, Hg, Wg, x, y);
                    double w = exp(naive_sample(ib + n * glimpse, t, Hg, Wg) - l);
                    double gv = 0.0, dot = 0.0, gix = 0.0, giy = 0.0;
                    for (int64_t c = 0; c < Cv; c++) {
                        const float *q = vb + (n * Cv + c) * glimpse;
                        gv += g[c * HW] * naive_sample(q, t, Hg, Wg);
                        dot += g[c * HW] * naive_channel(c, l, vb, ib, sb, ab, G2, Cv, Cs, Hg, Wg, x, y);
                        naive_sample_backward(gvalues ? gvalues + (cell * Cv + c) * glimpse : NULL, q, t, Hg, Wg,
                                              g[c * HW] * w, &gix, &giy);
                    }
                    naive_sample_backward(gimportance ? gimportance + cell * glimpse : NULL, ib + n * glimpse, t, Hg, Wg,
                                          w * (gv - dot), &gix, &giy);
                    for (int64_t c = 0; c < Cs; c++)
                        naive_sample_backward(gsummed ? gsummed + (cell * Cs + c) * glimpse : NULL,
                                              sb + (n * Cs + c) * glimpse, t, Hg, Wg, g[(Cv + c) * HW], &gix, &giy);
                    double ggx = gix * (double)Wg / 2.0, ggy = giy * (double)Hg / 2.0;
                    ga[0] += ggx * x; ga[1] += ggx;
                    ga[2] += ggy * y; ga[3] += ggy;
                }
            if (gaffine)
                for (int k = 0; k < 4; k++) gaffine[cell * 4 + k] += (float)ga[k];
        }
    }
    return SK_OK;
}
