// Spatial transformer kernels: affine_grid and bilinear grid_sample (zeros padding, align_corners=False).
// Shape contract (see sk_spatial.h): theta (N, 2, 3) -> grid (N, H, W, 2); input (Nin, C, Hin, Win) sampled
// at grid (Ng, Hout, Wout, 2) -> out (Ng, C, Hout, Wout), grid entry b reading image image_index[b] (or b).
// Formulas, tap order and weight expressions follow PyTorch's grid_sampler_2d so results agree to rounding.
// Loop order: grid entries, then points, channels innermost (a point's taps and weights are found once).
// With AVX2, points go eight at a time: blocks entirely inside gather, blocks entirely outside are
// zero-filled (forward) or skipped (backward) — the common case when pasting glimpses into full
// images — and mixed blocks fall back to the scalar code.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>
#include <stdlib.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SK_SPATIAL_AVX2 1
#endif

// ---------------------------------------------------------------- affine grid

float sk_affine_grid_base(int64_t k, int64_t size) {
    // torch.linspace(-1, 1, size) (first half from the start, second half from the end), then
    // range * (size - 1) / size as linspace_from_neg_one does for align_corners=False.
    if (size <= 1) return 0.0f;
    float step = 2.0f / (float)(size - 1);
    float v = k < size / 2 ? -1.0f + step * (float)k : 1.0f - step * (float)(size - 1 - k);
    return v * (float)(size - 1) / (float)size;
}

void sk_affine_grid_forward(float *grid, const float *theta, int64_t N, int64_t H, int64_t W) {
    float *bx = (float *)malloc(sizeof(float) * (size_t)(W > 0 ? W : 1));
    if (!bx) { sk_naive_affine_grid_forward(grid, theta, N, H, W); return; }
    for (int64_t j = 0; j < W; j++) bx[j] = sk_affine_grid_base(j, W);
    for (int64_t n = 0; n < N; n++) {
        const float *t = theta + n * 6;
        for (int64_t i = 0; i < H; i++) {
            float y = sk_affine_grid_base(i, H);
            // The row-constant parts y * t[1] + t[2] are not hoisted: PyTorch sums x*t0 + y*t1 + t2 in order.
            float *g = grid + ((n * H + i) * W) * 2;
            for (int64_t j = 0; j < W; j++) {
                float x = bx[j];
                g[2 * j] = x * t[0] + y * t[1] + t[2];
                g[2 * j + 1] = x * t[3] + y * t[4] + t[5];
            }
        }
    }
    free(bx);
}

void sk_naive_affine_grid_forward(float *grid, const float *theta, int64_t N, int64_t H, int64_t W) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                double x = (2.0 * j + 1.0) / (double)W - 1.0, y = (2.0 * i + 1.0) / (double)H - 1.0;
                for (int r = 0; r < 2; r++) {
                    const float *t = theta + n * 6 + r * 3;
                    grid[((n * H + i) * W + j) * 2 + r] = (float)(x * t[0] + y * t[1] + t[2]);
                }
            }
}

void sk_affine_grid_backward(float *gtheta, const float *ggrid, int64_t N, int64_t H, int64_t W) {
    for (int64_t n = 0; n < N; n++) {
        double acc[6] = {0, 0, 0, 0, 0, 0};
        for (int64_t i = 0; i < H; i++) {
            double y = sk_affine_grid_base(i, H);
            double sx0 = 0, sx1 = 0, s0 = 0, s1 = 0;  // row sums of g*x and g per output coordinate
            const float *g = ggrid + ((n * H + i) * W) * 2;
            for (int64_t j = 0; j < W; j++) {
                double x = sk_affine_grid_base(j, W);
                sx0 += g[2 * j] * x; s0 += g[2 * j];
                sx1 += g[2 * j + 1] * x; s1 += g[2 * j + 1];
            }
            acc[0] += sx0; acc[1] += s0 * y; acc[2] += s0;
            acc[3] += sx1; acc[4] += s1 * y; acc[5] += s1;
        }
        for (int k = 0; k < 6; k++) gtheta[n * 6 + k] += (float)acc[k];
    }
}

void sk_naive_affine_grid_backward(float *gtheta, const float *ggrid, int64_t N, int64_t H, int64_t W) {
    for (int64_t n = 0; n < N; n++)
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 3; k++) {
                double s = 0.0;
                for (int64_t i = 0; i < H; i++)
                    for (int64_t j = 0; j < W; j++) {
                        double x = (2.0 * j + 1.0) / (double)W - 1.0, y = (2.0 * i + 1.0) / (double)H - 1.0;
                        double base = k == 0 ? x : (k == 1 ? y : 1.0);
                        s += ggrid[((n * H + i) * W + j) * 2 + r] * base;
                    }
                gtheta[n * 6 + r * 3 + k] += (float)s;
            }
}

// ---------------------------------------------------------------- grid sample

static int check_index(const int64_t *image_index, int64_t Nin, int64_t Ng) {
    if (!image_index) return Ng == Nin ? SK_OK : SK_ERR_SHAPE;
    for (int64_t b = 0; b < Ng; b++)
        if (image_index[b] < 0 || image_index[b] >= Nin) return SK_ERR_ARG;
    return SK_OK;
}

// One sample position: the north-west tap (x0, y0) and PyTorch's weight factors
// wx_w = (x0 + 1) - ix, wx_e = ix - x0, wy_n = (y0 + 1) - iy, wy_s = iy - y0.
typedef struct {
    int64_t x0, y0;
    float wx_w, wx_e, wy_n, wy_s;
} sk_tap;

// Unnormalises (gx, gy) and fills the tap. Returns 0 when no tap can touch the image (all four outside,
// or a non-finite coordinate): floor(ix) must lie in [-1, Win - 1] and floor(iy) in [-1, Hin - 1].
// The test is on the floats, before any integer conversion.
static inline int locate(sk_tap *t, float gx, float gy, float fw, float fh) {
    float ix = ((gx + 1.0f) * fw - 1.0f) * 0.5f;
    float iy = ((gy + 1.0f) * fh - 1.0f) * 0.5f;
    float fx = floorf(ix), fy = floorf(iy);
    if (!(fx >= -1.0f && fx <= fw - 1.0f && fy >= -1.0f && fy <= fh - 1.0f)) return 0;
    t->x0 = (int64_t)fx; t->y0 = (int64_t)fy;
    t->wx_w = (fx + 1.0f) - ix; t->wx_e = ix - fx;
    t->wy_n = (fy + 1.0f) - iy; t->wy_s = iy - fy;
    return 1;
}

// Forward of points [p0, p1) of one grid entry: o = out + b * C * HWout, img the entry's image,
// gp = grid + b * HWout * 2. Channel-inner: the tap is located once and reused for every channel.
static void sample_range(float *o, const float *img, const float *gp, int64_t p0, int64_t p1,
                         int64_t C, int64_t Hin, int64_t Win, int64_t HWout) {
    const int64_t HWin = Hin * Win;
    const float fw = (float)Win, fh = (float)Hin;
    for (int64_t p = p0; p < p1; p++) {
        sk_tap t;
        if (!locate(&t, gp[2 * p], gp[2 * p + 1], fw, fh)) {
            for (int64_t c = 0; c < C; c++) o[c * HWout + p] = 0.0f;
            continue;
        }
        float nw = t.wx_w * t.wy_n, ne = t.wx_e * t.wy_n, sw = t.wx_w * t.wy_s, se = t.wx_e * t.wy_s;
        if (t.x0 >= 0 && t.x0 + 1 < Win && t.y0 >= 0 && t.y0 + 1 < Hin) {
            // All four taps inside: no bounds tests in the channel loop.
            const float *q = img + t.y0 * Win + t.x0;
            for (int64_t c = 0; c < C; c++, q += HWin)
                o[c * HWout + p] = q[0] * nw + q[1] * ne + q[Win] * sw + q[Win + 1] * se;
        } else {
            int in_w = t.x0 >= 0, in_e = t.x0 + 1 < Win, in_n = t.y0 >= 0, in_s = t.y0 + 1 < Hin;
            int64_t off = t.y0 * Win + t.x0;
            for (int64_t c = 0; c < C; c++) {
                const float *q = img + c * HWin;
                float v = 0.0f;
                if (in_n && in_w) v += q[off] * nw;
                if (in_n && in_e) v += q[off + 1] * ne;
                if (in_s && in_w) v += q[off + Win] * sw;
                if (in_s && in_e) v += q[off + Win + 1] * se;
                o[c * HWout + p] = v;
            }
        }
    }
}

// Backward of points [p0, p1) of one grid entry; gimg / gg may be NULL. In the interior the grid
// gradient is PyTorch's sum regrouped per tap pair: d/dix = wy_n (v01 - v00) + wy_s (v11 - v10),
// d/diy = wx_w (v10 - v00) + wx_e (v11 - v01); at the border PyTorch's per-tap form is kept.
static void sample_range_backward(float *gimg, float *gg, const float *go, const float *img, const float *gp,
                                  int64_t p0, int64_t p1, int64_t C, int64_t Hin, int64_t Win, int64_t HWout) {
    const int64_t HWin = Hin * Win;
    const float fw = (float)Win, fh = (float)Hin;
    const float gx_mult = fw / 2.0f, gy_mult = fh / 2.0f;
    for (int64_t p = p0; p < p1; p++) {
        sk_tap t;
        if (!locate(&t, gp[2 * p], gp[2 * p + 1], fw, fh)) continue;
        float nw = t.wx_w * t.wy_n, ne = t.wx_e * t.wy_n, sw = t.wx_w * t.wy_s, se = t.wx_e * t.wy_s;
        float gix = 0.0f, giy = 0.0f;
        int64_t off = t.y0 * Win + t.x0;
        if (t.x0 >= 0 && t.x0 + 1 < Win && t.y0 >= 0 && t.y0 + 1 < Hin) {
            for (int64_t c = 0; c < C; c++) {
                float g = go[c * HWout + p];
                if (gimg) {
                    float *q = gimg + c * HWin + off;
                    q[0] += nw * g; q[1] += ne * g; q[Win] += sw * g; q[Win + 1] += se * g;
                }
                if (gg) {
                    const float *q = img + c * HWin + off;
                    float v00 = q[0], v01 = q[1], v10 = q[Win], v11 = q[Win + 1];
                    gix += g * (t.wy_n * (v01 - v00) + t.wy_s * (v11 - v10));
                    giy += g * (t.wx_w * (v10 - v00) + t.wx_e * (v11 - v01));
                }
            }
        } else {
            int in_w = t.x0 >= 0, in_e = t.x0 + 1 < Win, in_n = t.y0 >= 0, in_s = t.y0 + 1 < Hin;
            for (int64_t c = 0; c < C; c++) {
                float g = go[c * HWout + p];
                const float *q = img + c * HWin + off;
                float *gq = gimg ? gimg + c * HWin + off : NULL;
                if (in_n && in_w) {
                    if (gq) gq[0] += nw * g;
                    if (gg) { float v = q[0]; gix -= v * t.wy_n * g; giy -= v * t.wx_w * g; }
                }
                if (in_n && in_e) {
                    if (gq) gq[1] += ne * g;
                    if (gg) { float v = q[1]; gix += v * t.wy_n * g; giy -= v * t.wx_e * g; }
                }
                if (in_s && in_w) {
                    if (gq) gq[Win] += sw * g;
                    if (gg) { float v = q[Win]; gix -= v * t.wy_s * g; giy += v * t.wx_w * g; }
                }
                if (in_s && in_e) {
                    if (gq) gq[Win + 1] += se * g;
                    if (gg) { float v = q[Win + 1]; gix += v * t.wy_s * g; giy += v * t.wx_e * g; }
                }
            }
        }
        if (gg) { gg[2 * p] += gx_mult * gix; gg[2 * p + 1] += gy_mult * giy; }
    }
}

#ifdef SK_SPATIAL_AVX2

// Eight consecutive points at once. Blocks whose points all have four taps inside take gathers;
// blocks entirely outside are zero (forward) or skipped (backward); mixed blocks go to the scalar code.
typedef struct {
    __m256 ix, iy, fx, fy;
    int inside;  // all 8 points have all 4 taps in the image
    int touch;   // bit k: point k reaches the image at all
} sk_block8;

static inline void locate8(sk_block8 *blk, const float *g, float fw, float fh) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    __m256 a = _mm256_loadu_ps(g), b = _mm256_loadu_ps(g + 8);         // x0 y0 x1 y1 .. | x4 y4 ..
    __m256 t0 = _mm256_permute2f128_ps(a, b, 0x20), t1 = _mm256_permute2f128_ps(a, b, 0x31);
    __m256 x = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));   // x0 .. x7
    __m256 y = _mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));   // y0 .. y7
    blk->ix = _mm256_mul_ps(_mm256_fmsub_ps(_mm256_add_ps(x, one), _mm256_set1_ps(fw), one), half);
    blk->iy = _mm256_mul_ps(_mm256_fmsub_ps(_mm256_add_ps(y, one), _mm256_set1_ps(fh), one), half);
    blk->fx = _mm256_floor_ps(blk->ix);
    blk->fy = _mm256_floor_ps(blk->iy);
    // Ordered comparisons: NaN fails every test, so it neither touches nor counts as inside.
    __m256 touch = _mm256_and_ps(
        _mm256_and_ps(_mm256_cmp_ps(blk->fx, _mm256_set1_ps(-1.0f), _CMP_GE_OQ), _mm256_cmp_ps(blk->fx, _mm256_set1_ps(fw - 1.0f), _CMP_LE_OQ)),
        _mm256_and_ps(_mm256_cmp_ps(blk->fy, _mm256_set1_ps(-1.0f), _CMP_GE_OQ), _mm256_cmp_ps(blk->fy, _mm256_set1_ps(fh - 1.0f), _CMP_LE_OQ)));
    __m256 inside = _mm256_and_ps(
        _mm256_and_ps(_mm256_cmp_ps(blk->fx, _mm256_setzero_ps(), _CMP_GE_OQ), _mm256_cmp_ps(blk->fx, _mm256_set1_ps(fw - 2.0f), _CMP_LE_OQ)),
        _mm256_and_ps(_mm256_cmp_ps(blk->fy, _mm256_setzero_ps(), _CMP_GE_OQ), _mm256_cmp_ps(blk->fy, _mm256_set1_ps(fh - 2.0f), _CMP_LE_OQ)));
    blk->touch = _mm256_movemask_ps(touch);
    blk->inside = _mm256_movemask_ps(inside) == 0xFF;
}

// Gather offsets y0 * Win + x0, exact in float (callers keep images below 2^24 pixels).
static inline __m256i offsets8(const sk_block8 *blk, float fw) {
    return _mm256_cvttps_epi32(_mm256_fmadd_ps(blk->fy, _mm256_set1_ps(fw), blk->fx));
}

static void sample_blocks(float *o, const float *img, const float *gp, int64_t nblocks,
                          int64_t C, int64_t Hin, int64_t Win, int64_t HWout) {
    const int64_t HWin = Hin * Win;
    const float fw = (float)Win, fh = (float)Hin;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t k = 0; k < nblocks; k++) {
        int64_t p = 8 * k;
        sk_block8 blk;
        locate8(&blk, gp + 2 * p, fw, fh);
        if (blk.inside) {
            __m256 wx_w = _mm256_sub_ps(_mm256_add_ps(blk.fx, one), blk.ix), wx_e = _mm256_sub_ps(blk.ix, blk.fx);
            __m256 wy_n = _mm256_sub_ps(_mm256_add_ps(blk.fy, one), blk.iy), wy_s = _mm256_sub_ps(blk.iy, blk.fy);
            __m256 nw = _mm256_mul_ps(wx_w, wy_n), ne = _mm256_mul_ps(wx_e, wy_n);
            __m256 sw = _mm256_mul_ps(wx_w, wy_s), se = _mm256_mul_ps(wx_e, wy_s);
            __m256i off = offsets8(&blk, fw);
            for (int64_t c = 0; c < C; c++) {
                const float *q = img + c * HWin;
                __m256 v00 = _mm256_i32gather_ps(q, off, 4), v01 = _mm256_i32gather_ps(q + 1, off, 4);
                __m256 v10 = _mm256_i32gather_ps(q + Win, off, 4), v11 = _mm256_i32gather_ps(q + Win + 1, off, 4);
                __m256 v = _mm256_fmadd_ps(v11, se, _mm256_fmadd_ps(v10, sw, _mm256_fmadd_ps(v01, ne, _mm256_mul_ps(v00, nw))));
                _mm256_storeu_ps(o + c * HWout + p, v);
            }
        } else if (!blk.touch) {
            for (int64_t c = 0; c < C; c++) _mm256_storeu_ps(o + c * HWout + p, _mm256_setzero_ps());
        } else {
            sample_range(o, img, gp, p, p + 8, C, Hin, Win, HWout);
        }
    }
}

static void sample_blocks_backward(float *gimg, float *gg, const float *go, const float *img, const float *gp,
                                   int64_t nblocks, int64_t C, int64_t Hin, int64_t Win, int64_t HWout) {
    const int64_t HWin = Hin * Win;
    const float fw = (float)Win, fh = (float)Hin;
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 gx_mult = _mm256_set1_ps(fw / 2.0f), gy_mult = _mm256_set1_ps(fh / 2.0f);
    for (int64_t k = 0; k < nblocks; k++) {
        int64_t p = 8 * k;
        sk_block8 blk;
        locate8(&blk, gp + 2 * p, fw, fh);
        if (!blk.touch) continue;
        if (!blk.inside) {
            sample_range_backward(gimg, gg, go, img, gp, p, p + 8, C, Hin, Win, HWout);
            continue;
        }
        __m256 wx_w = _mm256_sub_ps(_mm256_add_ps(blk.fx, one), blk.ix), wx_e = _mm256_sub_ps(blk.ix, blk.fx);
        __m256 wy_n = _mm256_sub_ps(_mm256_add_ps(blk.fy, one), blk.iy), wy_s = _mm256_sub_ps(blk.iy, blk.fy);
        __m256i off = offsets8(&blk, fw);
        if (gimg) {
            // No scatter in AVX2: the four weighted gradients go out lane by lane.
            __m256 nw = _mm256_mul_ps(wx_w, wy_n), ne = _mm256_mul_ps(wx_e, wy_n);
            __m256 sw = _mm256_mul_ps(wx_w, wy_s), se = _mm256_mul_ps(wx_e, wy_s);
            int32_t o8[8];
            float w00[8], w01[8], w10[8], w11[8];
            _mm256_storeu_si256((__m256i *)o8, off);
            for (int64_t c = 0; c < C; c++) {
                __m256 g = _mm256_loadu_ps(go + c * HWout + p);
                _mm256_storeu_ps(w00, _mm256_mul_ps(nw, g)); _mm256_storeu_ps(w01, _mm256_mul_ps(ne, g));
                _mm256_storeu_ps(w10, _mm256_mul_ps(sw, g)); _mm256_storeu_ps(w11, _mm256_mul_ps(se, g));
                // Tap by tap: neighbouring points share taps, and interleaving the four taps of one point
                // would chain each add on the previous store to the same address.
                float *q = gimg + c * HWin;
                for (int l = 0; l < 8; l++) q[o8[l]] += w00[l];
                for (int l = 0; l < 8; l++) q[o8[l] + 1] += w01[l];
                for (int l = 0; l < 8; l++) q[o8[l] + Win] += w10[l];
                for (int l = 0; l < 8; l++) q[o8[l] + Win + 1] += w11[l];
            }
        }
        if (gg) {
            __m256 gix = _mm256_setzero_ps(), giy = _mm256_setzero_ps();
            for (int64_t c = 0; c < C; c++) {
                const float *q = img + c * HWin;
                __m256 g = _mm256_loadu_ps(go + c * HWout + p);
                __m256 v00 = _mm256_i32gather_ps(q, off, 4), v01 = _mm256_i32gather_ps(q + 1, off, 4);
                __m256 v10 = _mm256_i32gather_ps(q + Win, off, 4), v11 = _mm256_i32gather_ps(q + Win + 1, off, 4);
                __m256 dx = _mm256_fmadd_ps(wy_s, _mm256_sub_ps(v11, v10), _mm256_mul_ps(wy_n, _mm256_sub_ps(v01, v00)));
                __m256 dy = _mm256_fmadd_ps(wx_e, _mm256_sub_ps(v11, v01), _mm256_mul_ps(wx_w, _mm256_sub_ps(v10, v00)));
                gix = _mm256_fmadd_ps(g, dx, gix);
                giy = _mm256_fmadd_ps(g, dy, giy);
            }
            gix = _mm256_mul_ps(gix, gx_mult); giy = _mm256_mul_ps(giy, gy_mult);
            __m256 lo = _mm256_unpacklo_ps(gix, giy), hi = _mm256_unpackhi_ps(gix, giy);  // x0 y0 x1 y1 | x4 y4 x5 y5
            float *d = gg + 2 * p;
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_permute2f128_ps(lo, hi, 0x20)));
            _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
        }
    }
}
#endif

SK_CLONES int sk_grid_sample_forward(float *out, const float *input, const float *grid, const int64_t *image_index,
                           int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                           int64_t Ng, int64_t Hout, int64_t Wout) {
    int status = check_index(image_index, Nin, Ng);
    if (status != SK_OK) return status;
    const int64_t HWin = Hin * Win, HWout = Hout * Wout;
    for (int64_t b = 0; b < Ng; b++) {
        const float *img = input + (image_index ? image_index[b] : b) * C * HWin;
        const float *gp = grid + b * HWout * 2;
        float *o = out + b * C * HWout;
        int64_t done = 0;
#ifdef SK_SPATIAL_AVX2
        if (HWin + Win + 1 < (1 << 24)) { sample_blocks(o, img, gp, HWout / 8, C, Hin, Win, HWout); done = HWout / 8 * 8; }
#endif
        sample_range(o, img, gp, done, HWout, C, Hin, Win, HWout);
    }
    return SK_OK;
}

// Transcribed from PyTorch's scalar grid_sampler_2d (bilinear, zeros, align_corners=False).
static inline int within(int64_t h, int64_t w, int64_t H, int64_t W) { return h >= 0 && h < H && w >= 0 && w < W; }

int sk_naive_grid_sample_forward(float *out, const float *input, const float *grid, const int64_t *image_index,
                                 int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                                 int64_t Ng, int64_t Hout, int64_t Wout) {
    int status = check_index(image_index, Nin, Ng);
    if (status != SK_OK) return status;
    for (int64_t b = 0; b < Ng; b++) {
        int64_t n = image_index ? image_index[b] : b;
        for (int64_t h = 0; h < Hout; h++)
            for (int64_t w = 0; w < Wout; w++) {
                const float *g = grid + ((b * Hout + h) * Wout + w) * 2;
                float ix = ((g[0] + 1.0f) * (float)Win - 1.0f) / 2.0f;
                float iy = ((g[1] + 1.0f) * (float)Hin - 1.0f) / 2.0f;
                int finite = isfinite(ix) && isfinite(iy) && fabsf(ix) < 1e9f && fabsf(iy) < 1e9f;
                float fx = finite ? floorf(ix) : -1e9f, fy = finite ? floorf(iy) : -1e9f;
                int64_t ix_nw = (int64_t)fx, iy_nw = (int64_t)fy;
                float nw = ((fx + 1.0f) - ix) * ((fy + 1.0f) - iy);
                float ne = (ix - fx) * ((fy + 1.0f) - iy);
                float sw = ((fx + 1.0f) - ix) * (iy - fy);
                float se = (ix - fx) * (iy - fy);
                for (int64_t c = 0; c < C; c++) {
                    const float *q = input + (n * C + c) * Hin * Win;
                    float v = 0.0f;
                    if (finite) {
                        if (within(iy_nw, ix_nw, Hin, Win)) v += q[iy_nw * Win + ix_nw] * nw;
                        if (within(iy_nw, ix_nw + 1, Hin, Win)) v += q[iy_nw * Win + ix_nw + 1] * ne;
                        if (within(iy_nw + 1, ix_nw, Hin, Win)) v += q[(iy_nw + 1) * Win + ix_nw] * sw;
                        if (within(iy_nw + 1, ix_nw + 1, Hin, Win)) v += q[(iy_nw + 1) * Win + ix_nw + 1] * se;
                    }
                    out[((b * C + c) * Hout + h) * Wout + w] = v;
                }
            }
    }
    return SK_OK;
}

SK_CLONES int sk_grid_sample_backward(float *ginput, float *ggrid, const float *gout, const float *input, const float *grid,
                            const int64_t *image_index, int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                            int64_t Ng, int64_t Hout, int64_t Wout) {
    int status = check_index(image_index, Nin, Ng);
    if (status != SK_OK) return status;
    if (!ginput && !ggrid) return SK_OK;
    const int64_t HWin = Hin * Win, HWout = Hout * Wout;
    for (int64_t b = 0; b < Ng; b++) {
        int64_t n = image_index ? image_index[b] : b;
        const float *img = input + n * C * HWin;
        float *gimg = ginput ? ginput + n * C * HWin : NULL;
        const float *gp = grid + b * HWout * 2;
        const float *go = gout + b * C * HWout;
        float *gg = ggrid ? ggrid + b * HWout * 2 : NULL;
        int64_t done = 0;
#ifdef SK_SPATIAL_AVX2
        if (HWin + Win + 1 < (1 << 24)) {
            sample_blocks_backward(gimg, gg, go, img, gp, HWout / 8, C, Hin, Win, HWout);
            done = HWout / 8 * 8;
        }
#endif
        sample_range_backward(gimg, gg, go, img, gp, done, HWout, C, Hin, Win, HWout);
    }
    return SK_OK;
}

int sk_naive_grid_sample_backward(float *ginput, float *ggrid, const float *gout, const float *input, const float *grid,
                                  const int64_t *image_index, int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                                  int64_t Ng, int64_t Hout, int64_t Wout) {
    int status = check_index(image_index, Nin, Ng);
    if (status != SK_OK) return status;
    for (int64_t b = 0; b < Ng; b++) {
        int64_t n = image_index ? image_index[b] : b;
        for (int64_t h = 0; h < Hout; h++)
            for (int64_t w = 0; w < Wout; w++) {
                const float *g = grid + ((b * Hout + h) * Wout + w) * 2;
                float ix = ((g[0] + 1.0f) * (float)Win - 1.0f) / 2.0f;
                float iy = ((g[1] + 1.0f) * (float)Hin - 1.0f) / 2.0f;
                if (!(isfinite(ix) && isfinite(iy) && fabsf(ix) < 1e9f && fabsf(iy) < 1e9f)) continue;
                float fx = floorf(ix), fy = floorf(iy);
                int64_t ix_nw = (int64_t)fx, iy_nw = (int64_t)fy;
                float ix_se = fx + 1.0f, iy_se = fy + 1.0f;
                float nw = (ix_se - ix) * (iy_se - iy), ne = (ix - fx) * (iy_se - iy);
                float sw = (ix_se - ix) * (iy - fy), se = (ix - fx) * (iy - fy);
                float gix = 0.0f, giy = 0.0f;
                for (int64_t c = 0; c < C; c++) {
                    const float *q = input + (n * C + c) * Hin * Win;
                    float *gq = ginput ? ginput + (n * C + c) * Hin * Win : NULL;
                    float go = gout[((b * C + c) * Hout + h) * Wout + w];
                    if (within(iy_nw, ix_nw, Hin, Win)) {
                        float v = q[iy_nw * Win + ix_nw];
                        if (gq) gq[iy_nw * Win + ix_nw] += nw * go;
                        gix -= v * (iy_se - iy) * go; giy -= v * (ix_se - ix) * go;
                    }
                    if (within(iy_nw, ix_nw + 1, Hin, Win)) {
                        float v = q[iy_nw * Win + ix_nw + 1];
                        if (gq) gq[iy_nw * Win + ix_nw + 1] += ne * go;
                        gix += v * (iy_se - iy) * go; giy -= v * (ix - fx) * go;
                    }
                    if (within(iy_nw + 1, ix_nw, Hin, Win)) {
                        float v = q[(iy_nw + 1) * Win + ix_nw];
                        if (gq) gq[(iy_nw + 1) * Win + ix_nw] += sw * go;
                        gix -= v * (iy - fy) * go; giy += v * (ix_se - ix) * go;
                    }
                    if (within(iy_nw + 1, ix_nw + 1, Hin, Win)) {
                        float v = q[(iy_nw + 1) * Win + ix_nw + 1];
                        if (gq) gq[(iy_nw + 1) * Win + ix_nw + 1] += se * go;
                        gix += v * (iy - fy) * go; giy += v * (ix - fx) * go;
                    }
                }
                if (ggrid) {
                    float *gg = ggrid + ((b * Hout + h) * Wout + w) * 2;
                    gg[0] += (float)Win / 2.0f * gix;
                    gg[1] += (float)Hin / 2.0f * giy;
                }
            }
    }
    return SK_OK;
}
