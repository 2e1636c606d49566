// Reductions over one dimension of a contiguous tensor viewed as (outer, n, inner).
// Sums accumulate in double, so a 128x128x3 log-likelihood sum keeps float32's precision.
#pragma once
#include <stdint.h>

// y[o, i] = sum_k x[o, k, i]          y: (outer, inner)
void sk_sum_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner);
void sk_naive_sum_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner);
// gx[o, k, i] += gy[o, i]
void sk_sum_dim_backward(float *gx, const float *gy, int64_t outer, int64_t n, int64_t inner);
// y[o, i] = max_k x[o, k, i] (NaN propagates); not differentiated (used for stabilisation)
void sk_max_dim_forward(float *y, const float *x, int64_t outer, int64_t n, int64_t inner);
// sum of all elements, in double
double sk_sum_all(const float *x, int64_t n);
// sum of squares, in double
double sk_sum_squares(const float *x, int64_t n);
