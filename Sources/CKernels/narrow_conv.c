// Convolutions to a few output channels from blocked feature maps (see sk_narrow_conv.h): weight
// packing, the thread-pool split (output rows, input rows, images) and the naive twins.
#include "ckernels.h"
#include "sk_math.h"
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define SK_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define SK_ALWAYS_INLINE inline
#endif

typedef struct {
    int64_t N, C, H, W, O, kh, kw, ph, pw, Ho, Wo;
} narrow_geo;

// 16 floats as one value (GNU vector extension): the compiler maps it onto whatever registers the
// target being compiled has. Macros rather than functions, so nothing crosses a call boundary in a
// register width the caller's target does not have.
typedef float sk_v16 __attribute__((vector_size(64)));
#define sk_v16_zero() ((sk_v16){0})
#define sk_v16_splat(s) ((sk_v16){0} + (float)(s))
#define sk_v16_load(p) __extension__({ sk_v16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define sk_v16_store(p, v) do { sk_v16 v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
#define sk_v16_sum(v) __extension__({ float t_[16]; sk_v16 v_ = (v); memcpy(t_, &v_, sizeof v_); \
    float s_ = ((t_[0] + t_[1]) + (t_[2] + t_[3])) + ((t_[4] + t_[5]) + (t_[6] + t_[7])) \
             + (((t_[8] + t_[9]) + (t_[10] + t_[11])) + ((t_[12] + t_[13]) + (t_[14] + t_[15]))); s_; })

#define SK_BODY "narrow_conv_body.h"
#include "sk_multiversion.h"

static int narrow_geo_make(narrow_geo *g, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                           int64_t ph, int64_t pw) {
    if (N < 0 || C < 16 || C % 16 != 0 || H < 1 || W < 1 || O < 1 || O > SK_NARROW_MAX_O || kh < 1 || kw < 1) return SK_ERR_SHAPE;
    if (ph < 0 || pw < 0 || ph >= kh || pw >= kw) return SK_ERR_ARG;
    if (H + 2 * ph < kh || W + 2 * pw < kw) return SK_ERR_SHAPE;
    g->N = N; g->C = C; g->H = H; g->W = W; g->O = O; g->kh = kh; g->kw = kw; g->ph = ph; g->pw = pw;
    g->Ho = H + 2 * ph - kh + 1; g->Wo = W + 2 * pw - kw + 1;
    return SK_OK;
}

// wp (cb, i, j, o, 16) from w (O, C, kh, kw).
static float *pack_weights(const narrow_geo *g, const float *w) {
    const int64_t Cb = g->C / 16, kh = g->kh, kw = g->kw, O = g->O;
    float *wp = malloc(sizeof(float) * (size_t)(g->C * kh * kw * O));
    if (!wp) return NULL;
    for (int64_t cb = 0; cb < Cb; cb++)
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++)
                for (int64_t o = 0; o < O; o++)
                    for (int64_t l = 0; l < 16; l++)
                        wp[((((cb * kh + i) * kw + j) * O + o) * 16) + l] = w[((o * g->C + cb * 16 + l) * kh + i) * kw + j];
    return wp;
}

typedef struct {
    const narrow_geo *g;
    float *out;
    const float *in, *gy, *wp, *b;
    double *acc;     // per part: weight accumulators then bias accumulators
    int64_t acc_stride, units;
} narrow_job;

static void fwd_part(void *ctx, int part, int parts) {
    const narrow_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(narrow_fwd_rows, j->g, j->out, j->in, j->wp, j->b, lo, hi);
}

int sk_narrow_conv_forward(float *y, const float *x, const float *w, const float *b,
                           int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                           int64_t ph, int64_t pw) {
    narrow_geo g;
    int st = narrow_geo_make(&g, N, C, H, W, O, kh, kw, ph, pw);
    if (st != SK_OK || N == 0) return st;
    float *wp = pack_weights(&g, w);
    if (!wp) return SK_ERR_ARG;
    narrow_job j = {.g = &g, .out = y, .in = x, .wp = wp, .b = b, .units = N * g.Ho};
    sk_pool_run(sk_pool_parts(j.units, N * C * H * W * O), fwd_part, &j);
    free(wp);
    return SK_OK;
}

static void bwd_data_part(void *ctx, int part, int parts) {
    const narrow_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(narrow_bwd_data_rows, j->g, j->out, j->gy, j->wp, lo, hi);
}

static void bwd_weights_part(void *ctx, int part, int parts) {
    const narrow_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    double *acc = j->acc + part * j->acc_stride;
    SK_DISPATCH(narrow_bwd_weights_images, j->g, acc, acc + j->g->C * j->g->kh * j->g->kw * j->g->O, j->gy, j->in, lo, hi);
}

int sk_narrow_conv_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t ph, int64_t pw) {
    narrow_geo g;
    int st = narrow_geo_make(&g, N, C, H, W, O, kh, kw, ph, pw);
    if (st != SK_OK || N == 0) return st;
    if (gx) {
        float *wp = pack_weights(&g, w);
        if (!wp) return SK_ERR_ARG;
        narrow_job j = {.g = &g, .out = gx, .gy = gy, .wp = wp, .units = N * H};
        sk_pool_run(sk_pool_parts(j.units, N * C * H * W * O), bwd_data_part, &j);
        free(wp);
    }
    if (gw || gb) {
        const int64_t nw = C * kh * kw * O, stride = nw + O;
        int parts = sk_pool_parts(N, N * C * H * W * O);
        double *acc = calloc((size_t)(parts * stride), sizeof(double));
        if (!acc) return SK_ERR_ARG;
        narrow_job j = {.g = &g, .gy = gy, .in = x, .acc = acc, .acc_stride = stride, .units = N};
        sk_pool_run(parts, bwd_weights_part, &j);
        // Parts in a fixed order: the same sums for the same part count.
        for (int p = 1; p < parts; p++)
            for (int64_t k = 0; k < stride; k++) acc[k] += acc[p * stride + k];
        const int64_t Cb = C / 16;
        if (gw)
            for (int64_t cb = 0; cb < Cb; cb++)
                for (int64_t i = 0; i < kh; i++)
                    for (int64_t jj = 0; jj < kw; jj++)
                        for (int64_t o = 0; o < O; o++)
                            for (int64_t l = 0; l < 16; l++)
                                gw[((o * C + cb * 16 + l) * kh + i) * kw + jj] += (float)acc[(((cb * kh + i) * kw + jj) * O + o) * 16 + l];
        if (gb) for (int64_t o = 0; o < O; o++) gb[o] += (float)acc[nw + o];
        free(acc);
    }
    return SK_OK;
}

// ------------------------------------------------------------------------------------------------

static int64_t xb(const narrow_geo *g, int64_t n, int64_t c, int64_t h, int64_t w) {
    return ((n * (g->C / 16) + c / 16) * g->H + h) * g->W * 16 + w * 16 + c % 16;
}

int sk_naive_narrow_conv_forward(float *y, const float *x, const float *w, const float *b,
                                 int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                 int64_t ph, int64_t pw) {
    narrow_geo g;
    int st = narrow_geo_make(&g, N, C, H, W, O, kh, kw, ph, pw);
    if (st != SK_OK) return st;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < g.Ho; oh++)
                for (int64_t ow = 0; ow < g.Wo; ow++) {
                    double s = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t ih = oh + i - ph, iw = ow + j - pw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)x[xb(&g, n, c, ih, iw)] * w[((o * C + c) * kh + i) * kw + j];
                            }
                    y[((n * O + o) * g.Ho + oh) * g.Wo + ow] = (float)s;
                }
    return SK_OK;
}

int sk_naive_narrow_conv_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                                  int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                  int64_t ph, int64_t pw) {
    narrow_geo g;
    int st = narrow_geo_make(&g, N, C, H, W, O, kh, kw, ph, pw);
    if (st != SK_OK) return st;
    if (gx) memset(gx, 0, sizeof(float) * (size_t)(N * C * H * W));
    for (int64_t o = 0; o < O; o++) {
        double sb = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t q = 0; q < g.Ho * g.Wo; q++) sb += gy[(n * O + o) * g.Ho * g.Wo + q];
        if (gb) gb[o] += (float)sb;
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) {
                    double sw = 0;
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t oh = 0; oh < g.Ho; oh++)
                            for (int64_t ow = 0; ow < g.Wo; ow++) {
                                int64_t ih = oh + i - ph, iw = ow + j - pw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                double d = gy[((n * O + o) * g.Ho + oh) * g.Wo + ow];
                                sw += d * x[xb(&g, n, c, ih, iw)];
                                if (gx) gx[xb(&g, n, c, ih, iw)] += (float)(d * w[((o * C + c) * kh + i) * kw + j]);
                            }
                    if (gw) gw[((o * C + c) * kh + i) * kw + j] += (float)sw;
                }
    }
    return SK_OK;
}
