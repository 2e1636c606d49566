// Normalisation kernels: group norm and batch norm, forward and backward, with naive twins.
// Shape contract (see sk_norm.h): x contiguous (N, C, S); weight/bias (C) or NULL; statistics in double,
// biased variance for normalising, rstd = 1/sqrt(max(var, 0) + eps); backward adds into its outputs.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>
#include <stdlib.h>

// Sum of n contiguous floats in double, four accumulators.
static inline double sum_f(const float *x, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

// Sum of (x - m)^2 over n contiguous floats in double.
static inline double sum_sq_dev(const float *x, int64_t n, double m) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = x[i] - m, d1 = x[i + 1] - m, d2 = x[i + 2] - m, d3 = x[i + 3] - m;
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < n; i++) { double d = x[i] - m; s0 += d * d; }
    return (s0 + s1) + (s2 + s3);
}

// Sums of gy and gy * x over n contiguous floats in double.
static inline void sum_g_gx(const float *g, const float *x, int64_t n, double *sg, double *sgx) {
    double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        a0 += g[i]; a1 += g[i + 1];
        b0 += (double)g[i] * x[i]; b1 += (double)g[i + 1] * x[i + 1];
    }
    for (; i < n; i++) { a0 += g[i]; b0 += (double)g[i] * x[i]; }
    *sg = a0 + a1; *sgx = b0 + b1;
}

static inline float rstd_of(double var, float eps) {
    return (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps));
}

// y[i] = x[i] * a + b over n contiguous floats.
static inline void scale_shift(float *y, const float *x, int64_t n, float a, float b) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

// ---------------------------------------------------------------- group norm

SK_CLONES int sk_group_norm_forward(float *y, float *mean, float *rstd,
                          const float *x, const float *weight, const float *bias,
                          int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
    if (G <= 0 || C % G != 0) return SK_ERR_SHAPE;
    int64_t cg = C / G, d = cg * S;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xb = x + (n * C + g * cg) * S;
            float *yb = y + (n * C + g * cg) * S;
            double m = d > 0 ? sum_f(xb, d) / (double)d : 0.0;
            double v = d > 0 ? sum_sq_dev(xb, d, m) / (double)d : 0.0;
            float r = rstd_of(v, eps), mf = (float)m;
            mean[n * G + g] = mf; rstd[n * G + g] = r;
            for (int64_t k = 0; k < cg; k++) {
                int64_t c = g * cg + k;
                float a = weight ? r * weight[c] : r;
                float b = (bias ? bias[c] : 0.0f) - mf * a;
                scale_shift(yb + k * S, xb + k * S, S, a, b);
            }
        }
    return SK_OK;
}

int sk_naive_group_norm_forward(float *y, float *mean, float *rstd,
                                const float *x, const float *weight, const float *bias,
                                int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
    if (G <= 0 || C % G != 0) return SK_ERR_SHAPE;
    int64_t cg = C / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double s = 0.0, q = 0.0, cnt = (double)(cg * S);
            for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                for (int64_t i = 0; i < S; i++) s += x[(n * C + c) * S + i];
            double m = cnt > 0 ? s / cnt : 0.0;
            for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                for (int64_t i = 0; i < S; i++) { double dv = x[(n * C + c) * S + i] - m; q += dv * dv; }
            double var = cnt > 0 ? q / cnt : 0.0;
            double r = 1.0 / sqrt(var + (double)eps);
            mean[n * G + g] = (float)m; rstd[n * G + g] = (float)r;
            for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                for (int64_t i = 0; i < S; i++) {
                    int64_t j = (n * C + c) * S + i;
                    double xhat = (x[j] - m) * r;
                    y[j] = (float)(xhat * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f));
                }
        }
    return SK_OK;
}

// dx = c1[c] * gy + c2 * x + c3 per (n, group), as PyTorch's GroupNorm backward:
// with ds = sum gy * w * x and db = sum gy * w over the group (D values),
// c1 = rstd * w[c], c2 = (db * mean - ds) * rstd^3 / D, c3 = -c2 * mean - db * rstd / D.
SK_CLONES int sk_group_norm_backward(float *gx, float *gweight, float *gbias,
                           const float *gy, const float *mean, const float *rstd,
                           const float *x, const float *weight,
                           int64_t N, int64_t C, int64_t S, int64_t G) {
    if (G <= 0 || C % G != 0) return SK_ERR_SHAPE;
    int64_t cg = C / G;
    double *sg = (double *)malloc(sizeof(double) * (size_t)(2 * (cg > 0 ? cg : 1)));
    if (!sg) return sk_naive_group_norm_backward(gx, gweight, gbias, gy, mean, rstd, x, weight, N, C, S, G);
    double *sgx = sg + cg;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            int64_t base = (n * C + g * cg) * S;
            double m = mean[n * G + g], r = rstd[n * G + g];
            double ds = 0.0, db = 0.0;
            for (int64_t k = 0; k < cg; k++) {
                int64_t c = g * cg + k;
                sum_g_gx(gy + base + k * S, x + base + k * S, S, &sg[k], &sgx[k]);
                double w = weight ? weight[c] : 1.0;
                ds += sgx[k] * w; db += sg[k] * w;
                if (gweight) gweight[c] += (float)((sgx[k] - m * sg[k]) * r);
                if (gbias) gbias[c] += (float)sg[k];
            }
            if (!gx) continue;
            double dinv = cg * S > 0 ? 1.0 / (double)(cg * S) : 0.0;
            double c2 = (db * m - ds) * r * r * r * dinv;
            double c3 = -c2 * m - db * r * dinv;
            float c2f = (float)c2, c3f = (float)c3;
            for (int64_t k = 0; k < cg; k++) {
                int64_t c = g * cg + k;
                float c1 = (float)(r * (weight ? weight[c] : 1.0f));
                const float *gyr = gy + base + k * S, *xr = x + base + k * S;
                float *gxr = gx + base + k * S;
                for (int64_t i = 0; i < S; i++) gxr[i] += c1 * gyr[i] + c2f * xr[i] + c3f;
            }
        }
    free(sg);
    return SK_OK;
}

// The textbook form: dxhat = gy * w; gx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
int sk_naive_group_norm_backward(float *gx, float *gweight, float *gbias,
                                 const float *gy, const float *mean, const float *rstd,
                                 const float *x, const float *weight,
                                 int64_t N, int64_t C, int64_t S, int64_t G) {
    if (G <= 0 || C % G != 0) return SK_ERR_SHAPE;
    int64_t cg = C / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double m = mean[n * G + g], r = rstd[n * G + g], cnt = (double)(cg * S);
            double m1 = 0.0, m2 = 0.0;
            for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                for (int64_t i = 0; i < S; i++) {
                    int64_t j = (n * C + c) * S + i;
                    double xhat = (x[j] - m) * r, dxhat = (double)gy[j] * (weight ? weight[c] : 1.0f);
                    m1 += dxhat; m2 += dxhat * xhat;
                    if (gweight) gweight[c] += (float)(gy[j] * xhat);
                    if (gbias) gbias[c] += gy[j];
                }
            if (!gx || cnt == 0) continue;
            m1 /= cnt; m2 /= cnt;
            for (int64_t c = g * cg; c < (g + 1) * cg; c++)
                for (int64_t i = 0; i < S; i++) {
                    int64_t j = (n * C + c) * S + i;
                    double xhat = (x[j] - m) * r, dxhat = (double)gy[j] * (weight ? weight[c] : 1.0f);
                    gx[j] += (float)(r * (dxhat - m1 - xhat * m2));
                }
        }
    return SK_OK;
}

// ---------------------------------------------------------------- batch norm

static inline void update_running(float *running_mean, float *running_var, int64_t c,
                                  double m, double var_biased, int64_t count, float momentum) {
    double unbiased = var_biased * (double)count / (double)(count - 1);
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
    if (running_var) running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
}

SK_CLONES int sk_batch_norm_forward(float *y, float *mean, float *rstd, float *running_mean, float *running_var,
                          const float *x, const float *weight, const float *bias,
                          int64_t N, int64_t C, int64_t S, int training, float momentum, float eps) {
    int64_t count = N * S;
    if (training) {
        if (count < 2) return SK_ERR_ARG;
        double *acc = (double *)calloc((size_t)(2 * (C > 0 ? C : 1)), sizeof(double));
        if (!acc) return sk_naive_batch_norm_forward(y, mean, rstd, running_mean, running_var, x, weight, bias,
                                                     N, C, S, training, momentum, eps);
        // Two passes over (N, C, S): channel sums, then squared deviations; rows of S stay contiguous.
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) acc[c] += sum_f(x + (n * C + c) * S, S);
        for (int64_t c = 0; c < C; c++) { mean[c] = (float)(acc[c] / (double)count); acc[c] /= (double)count; }
        double *q = acc + C;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) q[c] += sum_sq_dev(x + (n * C + c) * S, S, acc[c]);
        for (int64_t c = 0; c < C; c++) {
            double var = q[c] / (double)count;
            rstd[c] = rstd_of(var, eps);
            update_running(running_mean, running_var, c, acc[c], var, count, momentum);
        }
        free(acc);
    } else {
        if (!running_mean || !running_var) return SK_ERR_ARG;
        for (int64_t c = 0; c < C; c++) { mean[c] = running_mean[c]; rstd[c] = rstd_of(running_var[c], eps); }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float a = weight ? rstd[c] * weight[c] : rstd[c];
            float b = (bias ? bias[c] : 0.0f) - mean[c] * a;
            scale_shift(y + (n * C + c) * S, x + (n * C + c) * S, S, a, b);
        }
    return SK_OK;
}

int sk_naive_batch_norm_forward(float *y, float *mean, float *rstd, float *running_mean, float *running_var,
                                const float *x, const float *weight, const float *bias,
                                int64_t N, int64_t C, int64_t S, int training, float momentum, float eps) {
    int64_t count = N * S;
    if (training && count < 2) return SK_ERR_ARG;
    if (!training && (!running_mean || !running_var)) return SK_ERR_ARG;
    for (int64_t c = 0; c < C; c++) {
        double m, r;
        if (training) {
            double s = 0.0, q = 0.0;
            for (int64_t n = 0; n < N; n++) for (int64_t i = 0; i < S; i++) s += x[(n * C + c) * S + i];
            m = s / (double)count;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < S; i++) { double d = x[(n * C + c) * S + i] - m; q += d * d; }
            double var = q / (double)count;
            r = 1.0 / sqrt(var + (double)eps);
            update_running(running_mean, running_var, c, m, var, count, momentum);
        } else {
            m = running_mean[c];
            r = 1.0 / sqrt((double)running_var[c] + (double)eps);
        }
        mean[c] = (float)m; rstd[c] = (float)r;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t j = (n * C + c) * S + i;
                y[j] = (float)((x[j] - m) * r * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f));
            }
    }
    return SK_OK;
}

// Per channel, with M = N * S, sg = sum gy, sgd = sum gy * (x - mean):
// gweight += sgd * rstd, gbias += sg; training: gx += (gy - sg/M - (x - mean) * rstd^2 * sgd/M) * rstd * w,
// eval: gx += gy * rstd * w.
SK_CLONES void sk_batch_norm_backward(float *gx, float *gweight, float *gbias,
                            const float *gy, const float *mean, const float *rstd,
                            const float *x, const float *weight,
                            int64_t N, int64_t C, int64_t S, int training) {
    double *sg = (double *)calloc((size_t)(2 * (C > 0 ? C : 1)), sizeof(double));
    if (!sg) { sk_naive_batch_norm_backward(gx, gweight, gbias, gy, mean, rstd, x, weight, N, C, S, training); return; }
    double *sgx = sg + C;
    int need_sums = gweight || gbias || (gx && training);
    if (need_sums)
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                double a, b;
                sum_g_gx(gy + (n * C + c) * S, x + (n * C + c) * S, S, &a, &b);
                sg[c] += a; sgx[c] += b;
            }
    // sum gy * (x - mean) = sum gy * x - mean * sum gy
    for (int64_t c = 0; c < C; c++) sgx[c] -= (double)mean[c] * sg[c];
    for (int64_t c = 0; c < C; c++) {
        if (gweight) gweight[c] += (float)(sgx[c] * rstd[c]);
        if (gbias) gbias[c] += (float)sg[c];
    }
    if (gx) {
        double inv_count = N * S > 0 ? 1.0 / (double)(N * S) : 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                float r = rstd[c], w = weight ? weight[c] : 1.0f;
                float *gxr = gx + (n * C + c) * S;
                const float *gyr = gy + (n * C + c) * S, *xr = x + (n * C + c) * S;
                if (training) {
                    // gx += a * gy + b * x + e  (expanded so the inner loop is one fma chain)
                    double k = sgx[c] * (double)r * r * inv_count, gm = sg[c] * inv_count;
                    float a = r * w, b = (float)(-k * r * w), e = (float)((k * mean[c] - gm) * r * w);
                    for (int64_t i = 0; i < S; i++) gxr[i] += a * gyr[i] + b * xr[i] + e;
                } else {
                    float a = r * w;
                    for (int64_t i = 0; i < S; i++) gxr[i] += a * gyr[i];
                }
            }
    }
    free(sg);
}

void sk_naive_batch_norm_backward(float *gx, float *gweight, float *gbias,
                                  const float *gy, const float *mean, const float *rstd,
                                  const float *x, const float *weight,
                                  int64_t N, int64_t C, int64_t S, int training) {
    double count = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double m = mean[c], r = rstd[c], w = weight ? weight[c] : 1.0f;
        double s = 0.0, sd = 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t j = (n * C + c) * S + i;
                s += gy[j]; sd += gy[j] * (x[j] - m);
            }
        if (gweight) gweight[c] += (float)(sd * r);
        if (gbias) gbias[c] += (float)s;
        if (!gx) continue;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t j = (n * C + c) * S + i;
                double xhat = (x[j] - m) * r;
                double d = training ? (gy[j] - s / count - xhat * (sd * r) / count) : gy[j];
                gx[j] += (float)(d * r * w);
            }
    }
}
