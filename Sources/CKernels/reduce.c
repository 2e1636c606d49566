// Reductions over one dimension (outer, n, inner) with double accumulation.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>
#include <stdlib.h>

void sk_naive_sum_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0.0;
            for (int64_t k = 0; k < n; k++) s += x[(o * n + k) * inner + i];
            y[o * inner + i] = (float)s;
        }
}

SK_CLONES void sk_sum_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner) {
    if (inner == 1) {
        for (int64_t o = 0; o < outer; o++) {
            const float *row = x + o * n;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t k = 0;
            for (; k + 4 <= n; k += 4) { s0 += row[k]; s1 += row[k + 1]; s2 += row[k + 2]; s3 += row[k + 3]; }
            for (; k < n; k++) s0 += row[k];
            y[o] = (float)((s0 + s1) + (s2 + s3));
        }
        return;
    }
    // Stream rows of `inner` contiguous floats into a double accumulator row.
    double *acc = (double *)malloc(sizeof(double) * (size_t)inner);
    if (!acc) { sk_naive_sum_dim_forward(y, x, outer, n, inner); return; }
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
        for (int64_t k = 0; k < n; k++) {
            const float *row = x + (o * n + k) * inner;
            for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
        }
        for (int64_t i = 0; i < inner; i++) y[o * inner + i] = (float)acc[i];
    }
    free(acc);
}

SK_CLONES void sk_sum_dim_backward(float *gx, const float *gy, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++) {
            float *row = gx + (o * n + k) * inner;
            const float *g = gy + o * inner;
            for (int64_t i = 0; i < inner; i++) row[i] += g[i];
        }
}

void sk_max_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            float m = -INFINITY;
            for (int64_t k = 0; k < n; k++) {
                float v = x[(o * n + k) * inner + i];
                if (v != v) { m = v; break; }
                if (v > m) m = v;
            }
            y[o * inner + i] = m;
        }
}

SK_CLONES double sk_sum_all(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

SK_CLONES double sk_sum_squares(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}
