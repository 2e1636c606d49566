// Elementwise kernels: unary maps and broadcasting binary arithmetic.
// Shape contract: unary kernels see n contiguous floats. Binary kernels see an output of `ndim` dims
// (ndim <= SK_MAX_DIMS) with per-input strides in elements (0 on a broadcast dimension).
#pragma once
#include <stdint.h>

#define SK_MAX_DIMS 8

typedef enum {
    SK_NEG = 0, SK_EXP, SK_LOG, SK_LOG1P, SK_SQRT, SK_ABS, SK_SIGMOID, SK_TANH,
    SK_SOFTPLUS,   // PyTorch softplus, beta 1: x if x > threshold (param), else log1p(exp(x))
    SK_CELU,       // max(0,x) + min(0, alpha*(exp(x/alpha)-1)), alpha = param
    SK_ELU,        // x if x > 0 else alpha*(exp(x)-1), alpha = param
    SK_RELU, SK_SQUARE, SK_RECIPROCAL,
    SK_POW,        // x^param
    SK_CLAMP_MIN,  // max(x, param)
    SK_CLAMP_MAX,  // min(x, param)
    SK_SIGN
} sk_unary_op;

typedef enum { SK_ADD = 0, SK_SUB, SK_MUL, SK_DIV, SK_MAXIMUM, SK_MINIMUM } sk_binary_op;

// y[i] = f(x[i])
void sk_unary_forward(float *y, const float *x, int64_t n, int op, float param);
// gx[i] += gy[i] * f'(x[i]) (y is the forward output, used where cheaper)
void sk_unary_backward(float *gx, const float *gy, const float *x, const float *y, int64_t n, int op, float param);
void sk_naive_unary_forward(float *y, const float *x, int64_t n, int op, float param);

// out[idx] = a[idx . sa] (op) b[idx . sb] over the output shape
void sk_binary_forward(float *out, const float *a, const int64_t *sa, const float *b, const int64_t *sb,
                       const int64_t *shape, int64_t ndim, int op);
void sk_naive_binary_forward(float *out, const float *a, const int64_t *sa, const float *b, const int64_t *sb,
                             const int64_t *shape, int64_t ndim, int op);

// y[i] = a*x[i] + b  (scale and shift by scalars)
void sk_affine_scalar(float *y, const float *x, int64_t n, float a, float b);
// y[i] += x[i]
void sk_accumulate(float *y, const float *x, int64_t n);
void sk_fill(float *y, int64_t n, float v);
