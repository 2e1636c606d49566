// The fused pointwise stage (see sk_pointwise.h): the per-ISA loops of pointwise_body.h, spread over
// the thread pool by (image, channel block) units, the small statistics arithmetic between them, and
// the naive twins.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>
#include <stdlib.h>

// The activation's inner scale: CELU is alpha * expm1(x / alpha), ELU alpha * expm1(x).
static inline float sk_act_kin(const sk_pw_desc *d) { return d->act == SK_ACT_CELU ? 1.0f / d->alpha : 1.0f; }

// act(x) for an active activation: x where x > 0, alpha * (exp(kin * x) - 1) elsewhere (PyTorch's own
// formula, exp - 1 rather than expm1); branch-free so that the 16-lane loops vectorise.
static inline float sk_act(float x, int active, float alpha, float kin) {
    float neg = alpha * (sk_fast_expf((x < 0.0f ? x : 0.0f) * kin) - 1.0f);
    return (active && x <= 0.0f) ? neg : x;
}

// act'(x): 1 where x > 0, alpha * kin * exp(kin * x) elsewhere (PyTorch takes this branch at 0).
static inline float sk_act_grad(float x, int active, float alpha, float kin) {
    float neg = alpha * kin * sk_fast_expf((x < 0.0f ? x : 0.0f) * kin);
    return (active && x <= 0.0f) ? neg : 1.0f;
}

// Both from one exponential: *value = act(x), returns act'(x).
static inline float sk_act_both(float x, int active, float alpha, float kin, float *value) {
    float e = sk_fast_expf((x < 0.0f ? x : 0.0f) * kin);
    int neg = active && x <= 0.0f;
    *value = neg ? alpha * (e - 1.0f) : x;
    return neg ? alpha * kin * e : 1.0f;
}

#define SK_BODY "pointwise_body.h"
#include "sk_multiversion.h"

int sk_pw_check(const sk_pw_desc *d) {
    if (!d || d->N < 0 || d->C < 16 || d->C % 16 != 0 || d->H < 1 || d->W < 1 || d->r < 1) return SK_ERR_SHAPE;
    if (d->act < SK_ACT_NONE || d->act > SK_ACT_ELU || d->norm < SK_NORM_NONE || d->norm > SK_NORM_BATCH) return SK_ERR_ARG;
    if (d->act != SK_ACT_NONE && !(d->alpha > 0.0f)) return SK_ERR_ARG;
    if (d->norm == SK_NORM_GROUP && (d->groups < 1 || d->C % d->groups != 0)) return SK_ERR_SHAPE;
    if (d->norm != SK_NORM_NONE && !(d->eps > 0.0f)) return SK_ERR_ARG;
    return SK_OK;
}

typedef struct {
    const sk_pw_desc *d;
    double *a, *b;
    float *out;
    const float *x, *g, *mean, *rstd, *scale, *shift, *k1, *k2, *k3;
    int64_t units;
} pw_job;

static int64_t pw_units(const sk_pw_desc *d) { return d->N * (d->C / 16); }
static int pw_parts(const sk_pw_desc *d) { return sk_pool_parts(pw_units(d), d->N * d->C * d->H * d->W * d->r * d->r); }

static void stats_part(void *ctx, int part, int parts) {
    const pw_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(pw_stats_units, j->d, j->a, j->b, j->x, lo, hi);
}

int sk_pw_stats(const sk_pw_desc *d, double *sum, double *sumsq, const float *z) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_job j = {.d = d, .a = sum, .b = sumsq, .x = z, .units = pw_units(d)};
    sk_pool_run(pw_parts(d), stats_part, &j);
    return SK_OK;
}

static float rstd_of(double var, float eps) { return (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps)); }

int sk_pw_finish(const sk_pw_desc *d, float *mean, float *rstd, float *scale, float *shift,
                 const double *sum, const double *sumsq, const float *gamma, const float *beta,
                 float *running_mean, float *running_var) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    const int64_t N = d->N, C = d->C, P = d->H * d->W * d->r * d->r;
    if (d->norm == SK_NORM_GROUP) {
        const int64_t G = d->groups, cg = C / G;
        const double count = (double)(cg * P);
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                double s = 0, q = 0;
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) { s += sum[n * C + c]; q += sumsq[n * C + c]; }
                double m = s / count, var = q / count - m * m;
                float mf = (float)m, r = rstd_of(var, d->eps);
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) { mean[n * C + c] = mf; rstd[n * C + c] = r; }
            }
    } else if (d->norm == SK_NORM_BATCH) {
        for (int64_t c = 0; c < C; c++) {
            float mf, r;
            if (d->training) {
                double s = 0, q = 0;
                for (int64_t n = 0; n < N; n++) { s += sum[n * C + c]; q += sumsq[n * C + c]; }
                double count = (double)(N * P), m = s / count, var = q / count - m * m;
                if (var < 0) var = 0;
                mf = (float)m; r = rstd_of(var, d->eps);
                if (running_mean && running_var) {
                    double unbiased = count > 1 ? var * count / (count - 1) : var;
                    running_mean[c] = (float)((1.0 - d->momentum) * running_mean[c] + d->momentum * m);
                    running_var[c] = (float)((1.0 - d->momentum) * running_var[c] + d->momentum * unbiased);
                }
            } else {
                if (!running_mean || !running_var) return SK_ERR_ARG;
                mf = running_mean[c]; r = rstd_of(running_var[c], d->eps);
            }
            for (int64_t n = 0; n < N; n++) { mean[n * C + c] = mf; rstd[n * C + c] = r; }
        }
    } else {
        for (int64_t k = 0; k < N * C; k++) { mean[k] = 0.0f; rstd[k] = 1.0f; }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t k = n * C + c;
            if (d->norm == SK_NORM_NONE) { scale[k] = 1.0f; shift[k] = 0.0f; continue; }
            float a = gamma ? rstd[k] * gamma[c] : rstd[k];
            scale[k] = a;
            shift[k] = (beta ? beta[c] : 0.0f) - mean[k] * a;
        }
    return SK_OK;
}

static void apply_part(void *ctx, int part, int parts) {
    const pw_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(pw_apply_units, j->d, j->out, j->x, j->scale, j->shift, lo, hi);
}

int sk_pw_apply(const sk_pw_desc *d, float *y, const float *z, const float *scale, const float *shift) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_job j = {.d = d, .out = y, .x = z, .scale = scale, .shift = shift, .units = pw_units(d)};
    sk_pool_run(pw_parts(d), apply_part, &j);
    return SK_OK;
}

static void bsums_part(void *ctx, int part, int parts) {
    const pw_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(pw_bsums_units, j->d, j->a, j->b, j->g, j->x, j->mean, j->rstd, j->scale, j->shift, lo, hi);
}

int sk_pw_backward_sums(const sk_pw_desc *d, double *s1, double *s2, const float *dy, const float *z,
                        const float *mean, const float *rstd, const float *scale, const float *shift) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_job j = {.d = d, .a = s1, .b = s2, .g = dy, .x = z, .mean = mean, .rstd = rstd, .scale = scale, .shift = shift,
                .units = pw_units(d)};
    sk_pool_run(pw_parts(d), bsums_part, &j);
    return SK_OK;
}

int sk_pw_backward_finish(const sk_pw_desc *d, float *dgamma, float *dbeta, float *k1, float *k2, float *k3,
                          const double *s1, const double *s2, const float *rstd, const float *gamma) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    const int64_t N = d->N, C = d->C, P = d->H * d->W * d->r * d->r;
    if (d->norm != SK_NORM_NONE)
        for (int64_t c = 0; c < C; c++) {
            double g1 = 0, g2 = 0;
            for (int64_t n = 0; n < N; n++) { g1 += s1[n * C + c]; g2 += s2[n * C + c]; }
            if (dbeta) dbeta[c] += (float)g1;
            if (dgamma) dgamma[c] += (float)g2;
        }
    if (d->norm == SK_NORM_GROUP) {
        const int64_t G = d->groups, cg = C / G;
        const double count = (double)(cg * P);
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                double t1 = 0, t2 = 0;
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) {
                    double gm = gamma ? gamma[c] : 1.0;
                    t1 += gm * s1[n * C + c]; t2 += gm * s2[n * C + c];
                }
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) {
                    int64_t k = n * C + c;
                    double r = rstd[k], gm = gamma ? gamma[c] : 1.0;
                    k1[k] = (float)(r * gm);
                    k2[k] = (float)(-r * t2 / count);
                    k3[k] = (float)(-r * t1 / count);
                }
            }
    } else if (d->norm == SK_NORM_BATCH) {
        const double count = (double)(N * P);
        for (int64_t c = 0; c < C; c++) {
            double t1 = 0, t2 = 0;
            for (int64_t n = 0; n < N; n++) { t1 += s1[n * C + c]; t2 += s2[n * C + c]; }
            double gm = gamma ? gamma[c] : 1.0;
            for (int64_t n = 0; n < N; n++) {
                int64_t k = n * C + c;
                double r = rstd[k];
                k1[k] = (float)(r * gm);
                k2[k] = d->training ? (float)(-r * gm * t2 / count) : 0.0f;
                k3[k] = d->training ? (float)(-r * gm * t1 / count) : 0.0f;
            }
        }
    } else {
        for (int64_t k = 0; k < N * C; k++) { k1[k] = 1.0f; k2[k] = 0.0f; k3[k] = 0.0f; }
    }
    return SK_OK;
}

static void bapply_part(void *ctx, int part, int parts) {
    const pw_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->units, part, parts, &lo, &hi);
    SK_DISPATCH(pw_bapply_units, j->d, j->out, j->g, j->x, j->mean, j->rstd, j->scale, j->shift, j->k1, j->k2, j->k3, lo, hi);
}

int sk_pw_backward_apply(const sk_pw_desc *d, float *dz, const float *dy, const float *z,
                         const float *mean, const float *rstd, const float *scale, const float *shift,
                         const float *k1, const float *k2, const float *k3) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_job j = {.d = d, .out = dz, .g = dy, .x = z, .mean = mean, .rstd = rstd, .scale = scale, .shift = shift,
                .k1 = k1, .k2 = k2, .k3 = k3, .units = pw_units(d)};
    sk_pool_run(pw_parts(d), bapply_part, &j);
    return SK_OK;
}

// ------------------------------------------------------------------------------------------------
// Naive twins: element by element in double, indexing the layouts from their definitions.

typedef struct { int64_t Cb, R2, Hr, Wr, P; } pw_dims;

static pw_dims dims_of(const sk_pw_desc *d) {
    pw_dims m = {d->C / 16, d->r * d->r, d->H * d->r, d->W * d->r, d->H * d->W * d->r * d->r};
    return m;
}

// Offsets of z and y for output position (n, c, Y, X).
static int64_t z_off(const sk_pw_desc *d, pw_dims m, int64_t n, int64_t c, int64_t Y, int64_t X) {
    int64_t s = (Y % d->r) * d->r + X % d->r, h = Y / d->r, w = X / d->r;
    return ((n * m.Cb * m.R2 + s * m.Cb + c / 16) * d->H + h) * d->W * 16 + w * 16 + c % 16;
}
static int64_t y_off(pw_dims m, int64_t n, int64_t c, int64_t Y, int64_t X) {
    return ((n * m.Cb + c / 16) * m.Hr + Y) * m.Wr * 16 + X * 16 + c % 16;
}

static double act_d(const sk_pw_desc *d, double x) {
    if (d->act == SK_ACT_NONE || x > 0) return x;
    double k = d->act == SK_ACT_CELU ? 1.0 / d->alpha : 1.0;
    return d->alpha * expm1(k * x);
}
static double act_grad_d(const sk_pw_desc *d, double x) {
    if (d->act == SK_ACT_NONE || x > 0) return 1.0;
    double k = d->act == SK_ACT_CELU ? 1.0 / d->alpha : 1.0;
    return d->alpha * k * exp(k * x);
}

// Per-(n, c) mean and rstd of the norm's input v, in double (training batch norm also updates running).
static void naive_stats(const sk_pw_desc *d, double *mean, double *rstd, const float *z,
                        float *running_mean, float *running_var, int update) {
    pw_dims m = dims_of(d);
    const int64_t N = d->N, C = d->C;
    for (int64_t k = 0; k < N * C; k++) { mean[k] = 0; rstd[k] = 1; }
    if (d->norm == SK_NORM_NONE) return;
    if (d->norm == SK_NORM_BATCH && !d->training) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) { mean[n * C + c] = running_mean[c]; rstd[n * C + c] = 1.0 / sqrt((double)running_var[c] + d->eps); }
        return;
    }
    int64_t groups = d->norm == SK_NORM_GROUP ? d->groups : C, cg = C / groups;
    int64_t images = d->norm == SK_NORM_GROUP ? N : 1;
    for (int64_t img = 0; img < images; img++)
        for (int64_t g = 0; g < groups; g++) {
            double s = 0, q = 0, cnt = 0;
            int64_t n0 = d->norm == SK_NORM_GROUP ? img : 0, n1 = d->norm == SK_NORM_GROUP ? img + 1 : N;
            for (int64_t pass = 0; pass < 2; pass++)
                for (int64_t n = n0; n < n1; n++)
                    for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                        for (int64_t Y = 0; Y < m.Hr; Y++)
                            for (int64_t X = 0; X < m.Wr; X++) {
                                double x = z[z_off(d, m, n, c, Y, X)];
                                double v = d->act_first ? act_d(d, x) : x;
                                if (pass == 0) { s += v; cnt += 1; } else { q += (v - s / cnt) * (v - s / cnt); }
                            }
            double mu = s / cnt, var = q / cnt;
            for (int64_t n = n0; n < n1; n++)
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) { mean[n * C + c] = mu; rstd[n * C + c] = 1.0 / sqrt(var + d->eps); }
            if (d->norm == SK_NORM_BATCH && update && running_mean && running_var) {
                running_mean[g] = (float)((1.0 - d->momentum) * running_mean[g] + d->momentum * mu);
                running_var[g] = (float)((1.0 - d->momentum) * running_var[g] + d->momentum * var * cnt / (cnt - 1));
            }
        }
}

int sk_naive_pw_forward(const sk_pw_desc *d, float *y, const float *z, const float *gamma, const float *beta,
                        float *running_mean, float *running_var) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_dims m = dims_of(d);
    const int64_t N = d->N, C = d->C;
    double *mean = malloc(sizeof(double) * (size_t)(N * C)), *rstd = malloc(sizeof(double) * (size_t)(N * C));
    if (!mean || !rstd) { free(mean); free(rstd); return SK_ERR_ARG; }
    naive_stats(d, mean, rstd, z, running_mean, running_var, 1);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t Y = 0; Y < m.Hr; Y++)
                for (int64_t X = 0; X < m.Wr; X++) {
                    double x = z[z_off(d, m, n, c, Y, X)], v = d->act_first ? act_d(d, x) : x;
                    double t = v;
                    if (d->norm != SK_NORM_NONE)
                        t = (v - mean[n * C + c]) * rstd[n * C + c] * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0);
                    y[y_off(m, n, c, Y, X)] = (float)(d->act_first ? t : act_d(d, t));
                }
    free(mean); free(rstd);
    return SK_OK;
}

int sk_naive_pw_backward(const sk_pw_desc *d, float *dz, float *dgamma, float *dbeta, const float *dy,
                         const float *z, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var) {
    int st = sk_pw_check(d);
    if (st != SK_OK) return st;
    pw_dims m = dims_of(d);
    const int64_t N = d->N, C = d->C;
    size_t nc = (size_t)(N * C);
    double *mean = malloc(sizeof(double) * nc), *rstd = malloc(sizeof(double) * nc);
    double *s1 = calloc(nc, sizeof(double)), *s2 = calloc(nc, sizeof(double));
    if (!mean || !rstd || !s1 || !s2) { free(mean); free(rstd); free(s1); free(s2); return SK_ERR_ARG; }
    naive_stats(d, mean, rstd, z, (float *)running_mean, (float *)running_var, 0);
    // g: gradient at the norm's output; sums of g and g * vhat per (n, c).
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t Y = 0; Y < m.Hr; Y++)
                for (int64_t X = 0; X < m.Wr; X++) {
                    double x = z[z_off(d, m, n, c, Y, X)], g = dy[y_off(m, n, c, Y, X)];
                    double v = d->act_first ? act_d(d, x) : x, vhat = (v - mean[n * C + c]) * rstd[n * C + c];
                    if (!d->act_first) {
                        double t = d->norm != SK_NORM_NONE ? vhat * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0) : v;
                        g *= act_grad_d(d, t);
                    }
                    s1[n * C + c] += g; s2[n * C + c] += g * vhat;
                }
    for (int64_t c = 0; c < C && d->norm != SK_NORM_NONE; c++) {
        double a = 0, b = 0;
        for (int64_t n = 0; n < N; n++) { a += s1[n * C + c]; b += s2[n * C + c]; }
        if (dbeta) dbeta[c] += (float)a;
        if (dgamma) dgamma[c] += (float)b;
    }
    int64_t groups = d->norm == SK_NORM_GROUP ? d->groups : C, cg = C / groups;
    double count = d->norm == SK_NORM_GROUP ? (double)(cg * m.P) : (double)(N * m.P);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            // The means over the normalised set of gamma * g and gamma * g * vhat.
            double mg = 0, mgv = 0;
            if (d->norm == SK_NORM_GROUP || (d->norm == SK_NORM_BATCH && d->training)) {
                int64_t g0 = (c / cg) * cg;
                int64_t n0 = d->norm == SK_NORM_GROUP ? n : 0, n1 = d->norm == SK_NORM_GROUP ? n + 1 : N;
                for (int64_t nn = n0; nn < n1; nn++)
                    for (int64_t cc = g0; cc < g0 + cg; cc++) {
                        double gm = gamma ? gamma[cc] : 1.0;
                        mg += gm * s1[nn * C + cc]; mgv += gm * s2[nn * C + cc];
                    }
                mg /= count; mgv /= count;
            }
            double gmc = d->norm == SK_NORM_NONE ? 1.0 : (gamma ? gamma[c] : 1.0);
            for (int64_t Y = 0; Y < m.Hr; Y++)
                for (int64_t X = 0; X < m.Wr; X++) {
                    double x = z[z_off(d, m, n, c, Y, X)], g = dy[y_off(m, n, c, Y, X)];
                    double v = d->act_first ? act_d(d, x) : x, vhat = (v - mean[n * C + c]) * rstd[n * C + c];
                    if (!d->act_first) {
                        double t = d->norm != SK_NORM_NONE ? vhat * gmc + (beta ? beta[c] : 0.0) : v;
                        g *= act_grad_d(d, t);
                    }
                    double dv = d->norm == SK_NORM_NONE ? g : rstd[n * C + c] * (gmc * g - mg - vhat * mgv);
                    dz[z_off(d, m, n, c, Y, X)] = (float)(d->act_first ? dv * act_grad_d(d, x) : dv);
                }
        }
    free(mean); free(rstd); free(s1); free(s2);
    return SK_OK;
}
