// 2-D convolution on OpenBLAS sgemm, and direct-loop oracles.
//
// Two lowerings, chosen by the number of output positions per image, P = Ho*Wo:
//
// Small maps (P < SK_CONV_COLS_MIN_P), "rows": a chunk of nb images is transposed to NHWC and unfolded
// into a matrix `mat` (nb*P, K) with one row per output position and K = kh*kw*C ordered (i, j, c),
// so each kernel row i is one contiguous copy of up to kw*C floats. One sgemm per chunk, over
// nb*P columns (thousands: this is where tiny 4x4 or 1x1 maps get their speed):
//     tmp (O, nb*P) = wp (O, K) @ mat^T      wp = w permuted to (O, kh, kw, C)
// then tmp is scattered into y (nb, O, P) with the bias. Backward gathers gy into gt (O, nb*P) and
//     gwp += gt @ mat,   gmat = gt^T @ wp,   folded back into NHWC (row2im), transposed and added to gx.
// For 1x1 / stride 1 / no padding, mat is the NHWC chunk itself.
//
// Large maps, "cols": the im2col matrix col (K, nb*P), K ordered (c, i, j), row segments copied from
// the NCHW planes, and one sgemm per image straight into y:
//     y_n (O, P) = w @ col[:, n*P : n*P+P],   gw += gy_n @ col_n^T,   gcol_n = w^T @ gy_n, then col2im.
// For 1x1 / stride 1 / no padding, col_n is x_n: no im2col nor col2im at all.
//
// A kernel covering the whole unpadded map (1x1 conv on 1x1 maps, 4x4 conv on 4x4 maps) is a
// linear layer: y (N, O) = x (N, C*H*W) @ w^T, one sgemm on the tensors as they are.
//
// Copy passes run on the kernels' thread pool, split into units (images, or (image, channel) pairs)
// that write disjoint memory, so results do not depend on the thread count.
#include "ckernels.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Scratch per chunk, in floats (16 MB): sgemm already runs at full speed on 2-4 thousand columns,
// and a chunk this size stays in the last-level cache between the unfold and the sgemm.
#ifndef SK_CONV_BUDGET_FLOATS
#define SK_CONV_BUDGET_FLOATS ((int64_t)4 << 20)
#endif
// Maps with at least this many output positions take the per-image "cols" lowering.
#ifndef SK_CONV_COLS_MIN_P
#define SK_CONV_COLS_MIN_P 1024
#endif
// Below this many floats of copying, a pass runs on the calling thread only.
#define SK_CONV_PARALLEL_MIN_FLOATS ((int64_t)1 << 15)

typedef struct {
    int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw;
    int64_t Ho, Wo, P, K, HW;
    int dense;                // the kernel covers the whole unpadded map: y = x (N, K) @ w^T, a single sgemm
    int rows;                 // small-map lowering (NHWC unfold, one sgemm per chunk)
    int pointwise;            // 1x1, stride 1, no padding: the unfolded matrix is the input itself
    int64_t nb;               // images per chunk
    // Workspace layout, offsets in floats. rows: wp (O*K) | gwp (O*K) | xt (nb*HW*C) | mat (nb*P*K) |
    // tmp (O*nb*P). cols: col (K*nb*P). Regions a mode or pointwise conv does not use have size 0.
    int64_t off_gwp, off_xt, off_mat, off_tmp, work_floats;
} conv_plan;

static int conv_plan_make(conv_plan *p, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                          int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk) {
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0) return SK_ERR_ARG;
    if (N < 0 || C < 1 || H < 1 || W < 1 || O < 1 || kh < 1 || kw < 1) return SK_ERR_SHAPE;
    if (H + 2 * ph < kh || W + 2 * pw < kw) return SK_ERR_SHAPE;
    memset(p, 0, sizeof *p);
    p->N = N; p->C = C; p->H = H; p->W = W; p->O = O; p->kh = kh; p->kw = kw;
    p->sh = sh; p->sw = sw; p->ph = ph; p->pw = pw;
    p->Ho = (H + 2 * ph - kh) / sh + 1;
    p->Wo = (W + 2 * pw - kw) / sw + 1;
    p->P = p->Ho * p->Wo;
    p->HW = H * W;
    p->K = C * kh * kw;
    const int64_t big = (int64_t)1 << 30;  // sgemm takes int sizes
    if (p->P > big || p->K > big || p->HW > big || O > big) return SK_ERR_SHAPE;
    p->dense = kh == H && kw == W && ph == 0 && pw == 0 && N <= big;
    p->rows = !p->dense && p->P < SK_CONV_COLS_MIN_P;
    p->pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    int64_t fixed = 0, per_image;
    if (p->rows) {
        fixed = 2 * O * p->K;
        per_image = p->HW * C + (p->pointwise ? 0 : p->P * p->K) + O * p->P;
    } else {
        per_image = p->pointwise || p->dense ? 0 : p->K * p->P;
    }
    int64_t nb;
    if (chunk > 0) {
        nb = chunk;
    } else if (per_image == 0) {
        nb = N;
    } else {
        // As many images as fit the budget, then evened out over the chunks that takes.
        nb = (SK_CONV_BUDGET_FLOATS - fixed) / per_image;
        if (nb < 1) nb = 1;
        if (N > 0) { int64_t chunks = (N + nb - 1) / nb; nb = (N + chunks - 1) / chunks; }
    }
    if (nb > N) nb = N;
    if (nb * p->P > big) nb = big / p->P;  // a chunk's nb*P columns are an sgemm dimension (an int)
    p->nb = nb;
    if (p->rows) {
        p->off_gwp = O * p->K;
        p->off_xt = 2 * O * p->K;
        p->off_mat = p->off_xt + nb * p->HW * C;
        p->off_tmp = p->off_mat + (p->pointwise ? 0 : nb * p->P * p->K);
        p->work_floats = p->off_tmp + O * nb * p->P;
    } else {
        p->work_floats = nb * per_image;
    }
    return SK_OK;
}

// Scratch the kernel allocates itself when the caller passes none: 2 MB aligned and advised for
// transparent huge pages, since im2col and sgemm's packing walk it with strides of whole rows
// (measured 10-25% faster than 4 KB pages on the glimpse encoder's conv). Freed with free().
static float *conv_alloc(int64_t floats) {
    const size_t huge = (size_t)2 << 20;
    size_t bytes = ((sizeof(float) * (size_t)floats) + huge - 1) & ~(huge - 1);
    void *ptr = NULL;
    if (posix_memalign(&ptr, huge, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(ptr, bytes, MADV_HUGEPAGE);
#endif
    return (float *)ptr;
}

// ---------------------------------------------------------------------------------------------
// Copy passes split [0, n) over the kernels' thread pool.

typedef void (*range_fn)(const void *ctx, int64_t lo, int64_t hi);
typedef struct { range_fn fn; const void *ctx; int64_t n; } range_job;

static void range_part(void *arg, int part, int parts) {
    const range_job *j = (const range_job *)arg;
    int64_t lo, hi;
    sk_pool_slice(j->n, part, parts, &lo, &hi);
    if (hi > lo) j->fn(j->ctx, lo, hi);
}

static void parallel_range(int64_t n, int64_t floats_per_item, range_fn fn, const void *ctx) {
    if (n <= 0) return;
    range_job j = {fn, ctx, n};
    int parts = n * floats_per_item < SK_CONV_PARALLEL_MIN_FLOATS ? 1 : sk_pool_parts(n, n * floats_per_item);
    sk_pool_run(parts, range_part, &j);
}

// ---------------------------------------------------------------------------------------------
// "rows" lowering: NHWC unfold / fold over units = local images of one chunk.

// dst (cols, rows) = src (rows, cols)^T, in 16x16 tiles; `add` accumulates instead.
static void transpose_tiles(float *restrict dst, const float *restrict src, int64_t rows, int64_t cols, int add) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16)
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows, c1 = c0 + 16 < cols ? c0 + 16 : cols;
            if (add) for (int64_t c = c0; c < c1; c++) for (int64_t r = r0; r < r1; r++) dst[c * rows + r] += src[r * cols + c];
            else for (int64_t c = c0; c < c1; c++) for (int64_t r = r0; r < r1; r++) dst[c * rows + r] = src[r * cols + c];
        }
}

// For output column ow, the kernel columns j whose input column ow*sw - pw + j lies in [0, W): [*j0, *j1).
static inline void valid_taps(const conv_plan *p, int64_t ow, int64_t *j0, int64_t *j1) {
    int64_t base = ow * p->sw - p->pw;
    int64_t a = base < 0 ? -base : 0, b = p->W - base;
    if (b > p->kw) b = p->kw;
    if (a > b) a = b;
    *j0 = a; *j1 = b;
}

typedef struct {
    const conv_plan *p;
    const float *x;    // input (whole tensor), for unfold
    float *gx;         // input gradient (whole tensor), for fold
    float *xt;         // NHWC chunk (nb, HW, C)
    float *mat;        // (nb*P, K); equal to xt when pointwise
    int64_t n0;
} rows_ctx;

static void unfold_rows_units(const void *vctx, int64_t lo, int64_t hi) {
    const rows_ctx *a = (const rows_ctx *)vctx;
    const conv_plan *p = a->p;
    const int64_t C = p->C, H = p->H, W = p->W, HW = p->HW, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const int64_t ph = p->ph, pw = p->pw, Ho = p->Ho, Wo = p->Wo, P = p->P, K = p->K;
    for (int64_t n = lo; n < hi; n++) {
        float *xt = a->xt + n * HW * C;
        transpose_tiles(xt, a->x + (a->n0 + n) * C * HW, C, HW, 0);
        if (p->pointwise) continue;
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                float *d = a->mat + (n * P + oh * Wo + ow) * K;
                int64_t j0, j1;
                valid_taps(p, ow, &j0, &j1);
                for (int64_t i = 0; i < kh; i++) {
                    float *di = d + i * kw * C;
                    int64_t ih = oh * sh - ph + i;
                    if (ih < 0 || ih >= H || j0 == j1) { memset(di, 0, sizeof(float) * (size_t)(kw * C)); continue; }
                    if (j0 > 0) memset(di, 0, sizeof(float) * (size_t)(j0 * C));
                    memcpy(di + j0 * C, xt + (ih * W + ow * sw - pw + j0) * C, sizeof(float) * (size_t)((j1 - j0) * C));
                    if (j1 < kw) memset(di + j1 * C, 0, sizeof(float) * (size_t)((kw - j1) * C));
                }
            }
    }
}

static void fold_rows_units(const void *vctx, int64_t lo, int64_t hi) {
    const rows_ctx *a = (const rows_ctx *)vctx;
    const conv_plan *p = a->p;
    const int64_t C = p->C, H = p->H, W = p->W, HW = p->HW, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const int64_t ph = p->ph, pw = p->pw, Ho = p->Ho, Wo = p->Wo, P = p->P, K = p->K;
    for (int64_t n = lo; n < hi; n++) {
        float *restrict xt = a->xt + n * HW * C;
        if (!p->pointwise) {
            memset(xt, 0, sizeof(float) * (size_t)(HW * C));
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    const float *restrict s = a->mat + (n * P + oh * Wo + ow) * K;
                    int64_t j0, j1;
                    valid_taps(p, ow, &j0, &j1);
                    for (int64_t i = 0; i < kh; i++) {
                        int64_t ih = oh * sh - ph + i;
                        if (ih < 0 || ih >= H || j0 == j1) continue;
                        float *restrict g = xt + (ih * W + ow * sw - pw + j0) * C;
                        const float *restrict si = s + (i * kw + j0) * C;
                        for (int64_t e = 0; e < (j1 - j0) * C; e++) g[e] += si[e];
                    }
                }
        }
        transpose_tiles(a->gx + (a->n0 + n) * C * HW, xt, HW, C, 1);
    }
}

static void permute_weight(float *wp, const float *w, const conv_plan *p) {
    const int64_t C = p->C, R = p->kh * p->kw;
    for (int64_t o = 0; o < p->O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++) wp[(o * R + r) * C + c] = w[(o * C + c) * R + r];
}

static void unpermute_weight_add(float *gw, const float *gwp, const conv_plan *p) {
    const int64_t C = p->C, R = p->kh * p->kw;
    for (int64_t o = 0; o < p->O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < R; r++) gw[(o * C + c) * R + r] += gwp[(o * R + r) * C + c];
}

// ---------------------------------------------------------------------------------------------
// "cols" lowering: im2col / col2im over units u = (local image n, channel c) of one chunk.

typedef struct {
    const conv_plan *p;
    float *col;           // (K, ld)
    int64_t ld;           // columns of col: nbc * P
    float *gx;            // col2im target (whole tensor)
    const float *x;       // im2col source (whole tensor)
    int64_t n0;           // first image of the chunk
} col_ctx;

// The output columns ow whose input column ow*sw - pw + j lies inside [0, W): [*lo, *hi).
static inline void valid_cols(const conv_plan *p, int64_t j, int64_t *lo, int64_t *hi) {
    int64_t a = p->pw - j;  // need ow*sw >= a
    int64_t l = a <= 0 ? 0 : (a + p->sw - 1) / p->sw;
    int64_t b = p->W - 1 + p->pw - j;  // need ow*sw <= b
    int64_t h = b < 0 ? 0 : b / p->sw + 1;
    if (h > p->Wo) h = p->Wo;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

static void im2col_units(const void *vctx, int64_t lo, int64_t hi) {
    const col_ctx *a = (const col_ctx *)vctx;
    const conv_plan *p = a->p;
    const int64_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const int64_t ph = p->ph, pw = p->pw, Ho = p->Ho, Wo = p->Wo, P = p->P, ld = a->ld;
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / C, c = u % C;
        const float *xc = a->x + ((a->n0 + n) * C + c) * H * W;
        for (int64_t j = 0; j < kw; j++) {
            int64_t ow0, ow1;
            valid_cols(p, j, &ow0, &ow1);
            for (int64_t i = 0; i < kh; i++) {
                float *dst = a->col + ((c * kh + i) * kw + j) * ld + n * P;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    float *d = dst + oh * Wo;
                    int64_t ih = oh * sh - ph + i;
                    if (ih < 0 || ih >= H) { for (int64_t ow = 0; ow < Wo; ow++) d[ow] = 0.0f; continue; }
                    const float *src = xc + ih * W;  // src[ow*sw + j - pw] is x[c, ih, ow*sw - pw + j]
                    for (int64_t ow = 0; ow < ow0; ow++) d[ow] = 0.0f;
                    if (sw == 1) for (int64_t ow = ow0; ow < ow1; ow++) d[ow] = src[ow + j - pw];
                    else for (int64_t ow = ow0; ow < ow1; ow++) d[ow] = src[ow * sw + j - pw];
                    for (int64_t ow = ow1; ow < Wo; ow++) d[ow] = 0.0f;
                }
            }
        }
    }
}

static void col2im_units(const void *vctx, int64_t lo, int64_t hi) {
    const col_ctx *a = (const col_ctx *)vctx;
    const conv_plan *p = a->p;
    const int64_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw;
    const int64_t ph = p->ph, pw = p->pw, Ho = p->Ho, Wo = p->Wo, P = p->P, ld = a->ld;
    for (int64_t u = lo; u < hi; u++) {
        int64_t n = u / C, c = u % C;
        float *gc = a->gx + ((a->n0 + n) * C + c) * H * W;
        for (int64_t j = 0; j < kw; j++) {
            int64_t ow0, ow1;
            valid_cols(p, j, &ow0, &ow1);
            for (int64_t i = 0; i < kh; i++) {
                const float *srcrow = a->col + ((c * kh + i) * kw + j) * ld + n * P;
                for (int64_t oh = 0; oh < Ho; oh++) {
                    int64_t ih = oh * sh - ph + i;
                    if (ih < 0 || ih >= H) continue;
                    const float *s = srcrow + oh * Wo;
                    float *g = gc + ih * W;  // g[ow*sw + j - pw] is gx[c, ih, ow*sw - pw + j]
                    if (sw == 1) for (int64_t ow = ow0; ow < ow1; ow++) g[ow + j - pw] += s[ow];
                    else for (int64_t ow = ow0; ow < ow1; ow++) g[ow * sw + j - pw] += s[ow];
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scatter (O, nbc*P) -> y (nbc, O, P) with bias (or adding), and the gather of gy the other way.
// Units are images, handled in blocks so that each row of the (O, nbc*P) matrix is read in runs of
// SK_CONV_MOVE_BLOCK*P contiguous floats rather than P.

#define SK_CONV_MOVE_BLOCK 16

typedef struct {
    const conv_plan *p;
    float *dst;
    const float *src;
    const float *b;
    int64_t ld, n0;
    int add;
} move_ctx;

static void scatter_units(const void *vctx, int64_t lo, int64_t hi) {
    const move_ctx *a = (const move_ctx *)vctx;
    const int64_t O = a->p->O, P = a->p->P;
    for (int64_t nb0 = lo; nb0 < hi; nb0 += SK_CONV_MOVE_BLOCK) {
        int64_t nb1 = nb0 + SK_CONV_MOVE_BLOCK < hi ? nb0 + SK_CONV_MOVE_BLOCK : hi;
        for (int64_t o = 0; o < O; o++) {
            float bo = a->b ? a->b[o] : 0.0f;
            for (int64_t n = nb0; n < nb1; n++) {
                float *restrict d = a->dst + ((a->n0 + n) * O + o) * P;
                const float *restrict s = a->src + o * a->ld + n * P;
                if (a->add) for (int64_t q = 0; q < P; q++) d[q] += s[q];
                else for (int64_t q = 0; q < P; q++) d[q] = s[q] + bo;
            }
        }
    }
}

static void gather_units(const void *vctx, int64_t lo, int64_t hi) {
    const move_ctx *a = (const move_ctx *)vctx;
    const int64_t O = a->p->O, P = a->p->P;
    for (int64_t nb0 = lo; nb0 < hi; nb0 += SK_CONV_MOVE_BLOCK) {
        int64_t nb1 = nb0 + SK_CONV_MOVE_BLOCK < hi ? nb0 + SK_CONV_MOVE_BLOCK : hi;
        for (int64_t o = 0; o < O; o++)
            for (int64_t n = nb0; n < nb1; n++)
                memcpy(a->dst + o * a->ld + n * P, a->src + ((a->n0 + n) * O + o) * P, sizeof(float) * (size_t)P);
    }
}

// ---------------------------------------------------------------------------------------------

static void sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static void im2col_chunk(const conv_plan *p, float *col, int64_t ld, const float *x, int64_t n0, int64_t nbc) {
    col_ctx a = {p, col, ld, NULL, x, n0};
    parallel_range(nbc * p->C, p->kh * p->kw * p->P, im2col_units, &a);
}

static void col2im_chunk(const conv_plan *p, float *gx, const float *col, int64_t ld, int64_t n0, int64_t nbc) {
    col_ctx a = {p, (float *)col, ld, gx, NULL, n0};
    parallel_range(nbc * p->C, p->kh * p->kw * p->P, col2im_units, &a);
}

// y = conv(x, w) + b, or y += conv(x, w) when `add` (then b is ignored). ws: p->work_floats floats.
static void forward_planned(const conv_plan *p, float *y, int add, float *ws, const float *x, const float *w, const float *b) {
    const int64_t N = p->N, C = p->C, O = p->O, K = p->K, P = p->P;
    if (add) b = NULL;
    if (p->dense) {
        if (b) for (int64_t n = 0; n < N; n++) memcpy(y + n * O, b, sizeof(float) * (size_t)O);
        sgemm(0, 1, N, O, K, x, K, w, K, (add || b) ? 1.0f : 0.0f, y, O);
        return;
    }
    if (p->rows) {
        float *wp = ws, *xt = ws + p->off_xt, *tmp = ws + p->off_tmp;
        float *mat = p->pointwise ? xt : ws + p->off_mat;
        permute_weight(wp, w, p);
        for (int64_t n0 = 0; n0 < N; n0 += p->nb) {
            int64_t nbc = N - n0 < p->nb ? N - n0 : p->nb, ld = nbc * P;
            rows_ctx a = {p, x, NULL, xt, mat, n0};
            parallel_range(nbc, p->HW * C + (p->pointwise ? 0 : P * K), unfold_rows_units, &a);
            sgemm(0, 1, O, ld, K, wp, K, mat, K, 0.0f, tmp, ld);
            move_ctx m = {p, y, tmp, b, ld, n0, add};
            parallel_range(nbc, O * P, scatter_units, &m);
        }
        return;
    }
    for (int64_t n0 = 0; n0 < N; n0 += p->nb) {
        int64_t nbc = N - n0 < p->nb ? N - n0 : p->nb, ld = nbc * P;
        if (!p->pointwise) im2col_chunk(p, ws, ld, x, n0, nbc);
        for (int64_t n = 0; n < nbc; n++) {
            float *yn = y + (n0 + n) * O * P;
            if (b) for (int64_t o = 0; o < O; o++) for (int64_t q = 0; q < P; q++) yn[o * P + q] = b[o];
            float beta = (add || b) ? 1.0f : 0.0f;
            if (p->pointwise) sgemm(0, 0, O, P, K, w, K, x + (n0 + n) * C * P, P, beta, yn, P);
            else sgemm(0, 0, O, P, K, w, K, ws + n * P, ld, beta, yn, P);
        }
    }
}

// With stride 1 and padding below the kernel size, dL/dx is itself a stride-1 convolution: of gy,
// padded by (kh-1-ph, kw-1-pw), with the kernel flipped and its channel axes swapped, wt[c, o, i, j] =
// w[o, c, kh-1-i, kw-1-j]. Run as a forward pass it accumulates straight into gx through a sgemm of
// depth O*kh*kw, with no col2im; otherwise backward folds w^T @ gy back (col2im / row2im).
static int transposed_plan(conv_plan *t, const conv_plan *p, int64_t chunk) {
    if (p->dense || p->sh != 1 || p->sw != 1 || p->ph > p->kh - 1 || p->pw > p->kw - 1) return 0;
    return conv_plan_make(t, p->N, p->O, p->Ho, p->Wo, p->C, p->kh, p->kw, 1, 1,
                          p->kh - 1 - p->ph, p->kw - 1 - p->pw, chunk) == SK_OK;
}

static void flip_weight(float *wt, const float *w, const conv_plan *p) {
    const int64_t O = p->O, C = p->C, kh = p->kh, kw = p->kw;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++)
                    wt[((c * O + o) * kh + i) * kw + j] = w[((o * C + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
}

int64_t sk_conv2d_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk) {
    conv_plan p, t;
    if (conv_plan_make(&p, N, C, H, W, O, kh, kw, sh, sw, ph, pw, chunk) != SK_OK) return -1;
    int64_t n = p.work_floats;
    if (transposed_plan(&t, &p, chunk) && O * C * kh * kw + t.work_floats > n) n = O * C * kh * kw + t.work_floats;
    return n;
}

int sk_conv2d_forward(float *y, float *work, const float *x, const float *w, const float *b,
                      int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                      int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk) {
    conv_plan p;
    int st = conv_plan_make(&p, N, C, H, W, O, kh, kw, sh, sw, ph, pw, chunk);
    if (st != SK_OK) return st;
    if (N == 0) return SK_OK;
    float *ws = work, *owned = NULL;
    if (p.work_floats > 0 && !ws) {
        ws = owned = conv_alloc(p.work_floats);
        if (!ws) return sk_naive_conv2d_forward(y, x, w, b, N, C, H, W, O, kh, kw, sh, sw, ph, pw);
    }
    forward_planned(&p, y, 0, ws, x, w, b);
    free(owned);
    return SK_OK;
}

int sk_conv2d_backward(float *gx, float *gw, float *gb, float *work, const float *gy, const float *x, const float *w,
                       int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk) {
    conv_plan p, t;
    int st = conv_plan_make(&p, N, C, H, W, O, kh, kw, sh, sw, ph, pw, chunk);
    if (st != SK_OK) return st;
    if (N == 0) return SK_OK;
    const int64_t K = p.K, P = p.P;
    if (gb) {
        // Row sums of gy per (n, o) in float (P terms), accumulated over images in double.
        double *acc = (double *)calloc((size_t)O, sizeof(double));
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < O; o++) {
                const float *g = gy + (n * O + o) * P;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                int64_t q = 0;
                for (; q + 4 <= P; q += 4) { s0 += g[q]; s1 += g[q + 1]; s2 += g[q + 2]; s3 += g[q + 3]; }
                for (; q < P; q++) s0 += g[q];
                float s = (s0 + s1) + (s2 + s3);
                if (acc) acc[o] += s; else gb[o] += s;
            }
        if (acc) for (int64_t o = 0; o < O; o++) gb[o] += (float)acc[o];
        free(acc);
    }
    if (!gx && !gw) return SK_OK;
    const int transposed = gx && transposed_plan(&t, &p, chunk);
    int64_t need = p.work_floats;
    if (transposed && O * K + t.work_floats > need) need = O * K + t.work_floats;
    float *ws = work, *owned = NULL;
    if (need > 0 && !ws) {
        ws = owned = conv_alloc(need);
        if (!ws) return sk_naive_conv2d_backward(gx, gw, NULL, gy, x, w, N, C, H, W, O, kh, kw, sh, sw, ph, pw);
    }
    float *gxf = transposed ? NULL : gx;  // gx still to be folded back in the loops below
    if (p.dense) {
        if (gw) sgemm(1, 0, O, K, N, gy, O, x, K, 1.0f, gw, K);
        if (gx) sgemm(0, 0, N, K, O, gy, O, w, K, 1.0f, gx, K);
    } else if (p.rows && (gw || gxf)) {
        float *wp = ws, *gwp = ws + p.off_gwp, *xt = ws + p.off_xt, *gt = ws + p.off_tmp;
        float *mat = p.pointwise ? xt : ws + p.off_mat;
        if (gxf) permute_weight(wp, w, &p);
        for (int64_t n0 = 0; n0 < N; n0 += p.nb) {
            int64_t nbc = N - n0 < p.nb ? N - n0 : p.nb, ld = nbc * P;
            move_ctx m = {&p, gt, gy, NULL, ld, n0, 0};
            parallel_range(nbc, O * P, gather_units, &m);
            rows_ctx a = {&p, x, gxf, xt, mat, n0};
            if (gw) {
                parallel_range(nbc, p.HW * C + (p.pointwise ? 0 : P * K), unfold_rows_units, &a);
                sgemm(0, 0, O, K, ld, gt, ld, mat, K, n0 == 0 ? 0.0f : 1.0f, gwp, K);
            }
            if (gxf) {
                sgemm(1, 0, ld, K, O, gt, ld, wp, K, 0.0f, mat, K);
                parallel_range(nbc, p.HW * C + (p.pointwise ? 0 : P * K), fold_rows_units, &a);
            }
        }
        if (gw) unpermute_weight_add(gw, gwp, &p);
    } else if (gw || gxf) {
        float *col = ws;
        for (int64_t n0 = 0; n0 < N; n0 += p.nb) {
            int64_t nbc = N - n0 < p.nb ? N - n0 : p.nb, ld = nbc * P;
            if (p.pointwise) {
                for (int64_t n = 0; n < nbc; n++) {
                    const float *gyn = gy + (n0 + n) * O * P;
                    if (gw) sgemm(0, 1, O, C, P, gyn, P, x + (n0 + n) * C * P, P, 1.0f, gw, C);
                    if (gxf) sgemm(1, 0, C, P, O, w, C, gyn, P, 1.0f, gxf + (n0 + n) * C * P, P);
                }
                continue;
            }
            if (gw) {
                im2col_chunk(&p, col, ld, x, n0, nbc);
                for (int64_t n = 0; n < nbc; n++) sgemm(0, 1, O, K, P, gy + (n0 + n) * O * P, P, col + n * P, ld, 1.0f, gw, K);
            }
            if (gxf) {
                for (int64_t n = 0; n < nbc; n++) sgemm(1, 0, K, P, O, w, K, gy + (n0 + n) * O * P, P, 0.0f, col + n * P, ld);
                col2im_chunk(&p, gxf, col, ld, n0, nbc);
            }
        }
    }
    if (transposed) {
        flip_weight(ws, w, &p);
        forward_planned(&t, gx, 1, ws + O * K, gy, ws, NULL);
    }
    free(owned);
    return SK_OK;
}

// ---------------------------------------------------------------------------------------------
// Oracles: direct loops, double accumulation.

int sk_naive_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
    conv_plan p;
    int st = conv_plan_make(&p, N, C, H, W, O, kh, kw, sh, sw, ph, pw, 1);
    if (st != SK_OK) return st;
    const int64_t Ho = p.Ho, Wo = p.Wo;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    double s = b ? (double)b[o] : 0.0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t i = 0; i < kh; i++) {
                            int64_t ih = oh * sh - ph + i;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t iw = ow * sw - pw + j;
                                if (iw < 0 || iw >= W) continue;
                                s += (double)x[((n * C + c) * H + ih) * W + iw] * (double)w[((o * C + c) * kh + i) * kw + j];
                            }
                        }
                    y[((n * O + o) * Ho + oh) * Wo + ow] = (float)s;
                }
    return SK_OK;
}

int sk_naive_conv2d_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                             int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                             int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
    conv_plan p;
    int st = conv_plan_make(&p, N, C, H, W, O, kh, kw, sh, sw, ph, pw, 1);
    if (st != SK_OK) return st;
    const int64_t Ho = p.Ho, Wo = p.Wo;
    if (gb)
        for (int64_t o = 0; o < O; o++) {
            double s = 0.0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t q = 0; q < Ho * Wo; q++) s += gy[(n * O + o) * Ho * Wo + q];
            gb[o] += (float)s;
        }
    if (gw)
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < kh; i++)
                    for (int64_t j = 0; j < kw; j++) {
                        double s = 0.0;
                        for (int64_t n = 0; n < N; n++)
                            for (int64_t oh = 0; oh < Ho; oh++) {
                                int64_t ih = oh * sh - ph + i;
                                if (ih < 0 || ih >= H) continue;
                                for (int64_t ow = 0; ow < Wo; ow++) {
                                    int64_t iw = ow * sw - pw + j;
                                    if (iw < 0 || iw >= W) continue;
                                    s += (double)gy[((n * O + o) * Ho + oh) * Wo + ow] * (double)x[((n * C + c) * H + ih) * W + iw];
                                }
                            }
                        gw[((o * C + c) * kh + i) * kw + j] += (float)s;
                    }
    if (gx)
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t ih = 0; ih < H; ih++)
                    for (int64_t iw = 0; iw < W; iw++) {
                        double s = 0.0;
                        for (int64_t o = 0; o < O; o++)
                            for (int64_t i = 0; i < kh; i++) {
                                int64_t th = ih + ph - i;  // = oh * sh
                                if (th < 0 || th % sh != 0 || th / sh >= Ho) continue;
                                for (int64_t j = 0; j < kw; j++) {
                                    int64_t tw = iw + pw - j;
                                    if (tw < 0 || tw % sw != 0 || tw / sw >= Wo) continue;
                                    s += (double)gy[((n * O + o) * Ho + th / sh) * Wo + tw / sw] * (double)w[((o * C + c) * kh + i) * kw + j];
                                }
                            }
                        gx[((n * C + c) * H + ih) * W + iw] += (float)s;
                    }
    return SK_OK;
}
