// Elementwise kernels: unary maps with their derivatives, and broadcasting binary arithmetic.
#include "ckernels.h"
#include <math.h>
#include <string.h>
#include "sk_math.h"

static inline float sk_sigmoidf(float x) {
    // Stable for both signs.
    if (x >= 0.0f) { float z = expf(-x); return 1.0f / (1.0f + z); }
    float z = expf(x); return z / (1.0f + z);
}

static inline float unary_value(float x, int op, float p) {
    switch (op) {
    case SK_NEG: return -x;
    case SK_EXP: return expf(x);
    case SK_LOG: return logf(x);
    case SK_LOG1P: return log1pf(x);
    case SK_SQRT: return sqrtf(x);
    case SK_ABS: return fabsf(x);
    case SK_SIGMOID: return sk_sigmoidf(x);
    case SK_TANH: return tanhf(x);
    case SK_SOFTPLUS: return x > p ? x : log1pf(expf(x));
    case SK_CELU: return x > 0.0f ? x : p * expm1f(x / p);
    case SK_ELU: return x > 0.0f ? x : p * expm1f(x);
    case SK_RELU: return x > 0.0f ? x : 0.0f;
    case SK_SQUARE: return x * x;
    case SK_RECIPROCAL: return 1.0f / x;
    case SK_POW: return powf(x, p);
    case SK_CLAMP_MIN: return x < p ? p : x;
    case SK_CLAMP_MAX: return x > p ? p : x;
    case SK_SIGN: return (float)((x > 0.0f) - (x < 0.0f));
    default: return NAN;
    }
}

// Derivative df/dx at x (y = f(x) given). Edge conventions follow PyTorch:
// abs'(0) = 0, relu'(0) = 0, clamp passes the gradient where x is inside the closed bound
// (x >= min for clamp_min), celu/elu use the x <= 0 branch at 0.
static inline float unary_derivative(float x, float y, int op, float p) {
    switch (op) {
    case SK_NEG: return -1.0f;
    case SK_EXP: return y;
    case SK_LOG: return 1.0f / x;
    case SK_LOG1P: return 1.0f / (1.0f + x);
    case SK_SQRT: return 0.5f / y;
    case SK_ABS: return (float)((x > 0.0f) - (x < 0.0f));
    case SK_SIGMOID: return y * (1.0f - y);
    case SK_TANH: return 1.0f - y * y;
    case SK_SOFTPLUS: { if (x > p) return 1.0f; float z = expf(x); return z / (z + 1.0f); }
    case SK_CELU: return x > 0.0f ? 1.0f : expf(x / p);
    case SK_ELU: return x > 0.0f ? 1.0f : p * expf(x);
    case SK_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SK_SQUARE: return 2.0f * x;
    case SK_RECIPROCAL: return -y * y;
    case SK_POW: return p * powf(x, p - 1.0f);
    case SK_CLAMP_MIN: return x >= p ? 1.0f : 0.0f;
    case SK_CLAMP_MAX: return x <= p ? 1.0f : 0.0f;
    case SK_SIGN: return 0.0f;
    default: return NAN;
    }
}

void sk_naive_unary_forward(float *y, const float *x, int64_t n, int op, float param) {
    for (int64_t i = 0; i < n; i++) y[i] = unary_value(x[i], op, param);
}

SK_CLONES static void unary_forward_range(float *y, const float *x, int64_t n, int op, float param) {
    // Specialised loops for the ops on hot paths; the switch inside unary_value is hoisted otherwise.
    switch (op) {
    case SK_NEG: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; return;
    case SK_SQUARE: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; return;
    case SK_EXP: for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]); return;
    case SK_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = sk_fast_sigmoidf(x[i]); return;
    case SK_CELU: {
        const float inv = 1.0f / param;
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], neg = param * sk_fast_expm1_nonpos((v < 0.0f ? v : 0.0f) * inv);
            y[i] = v > 0.0f ? v : neg;
        }
        return;
    }
    case SK_ELU:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], neg = param * sk_fast_expm1_nonpos(v < 0.0f ? v : 0.0f);
            y[i] = v > 0.0f ? v : neg;
        }
        return;
    default: sk_naive_unary_forward(y, x, n, op, param);
    }
}

SK_CLONES static void unary_backward_range(float *gx, const float *gy, const float *x, const float *y, int64_t n, int op, float param) {
    switch (op) {
    case SK_NEG: for (int64_t i = 0; i < n; i++) gx[i] -= gy[i]; return;
    case SK_EXP: for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * y[i]; return;
    case SK_SIGMOID: for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * y[i] * (1.0f - y[i]); return;
    case SK_TANH: for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * (1.0f - y[i] * y[i]); return;
    case SK_CELU: {
        // d/dx = 1 for x > 0, e^(x/alpha) = y/alpha + 1 otherwise (from the output: no exp needed)
        const float inv = 1.0f / param;
        for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * (x[i] > 0.0f ? 1.0f : y[i] * inv + 1.0f);
        return;
    }
    case SK_ELU:
        // d/dx = 1 for x > 0, alpha e^x = y + alpha otherwise
        for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * (x[i] > 0.0f ? 1.0f : y[i] + param);
        return;
    default:
        for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * unary_derivative(x ? x[i] : 0.0f, y ? y[i] : 0.0f, op, param);
    }
}

// Elementwise passes over large tensors run on the thread pool, in contiguous slices.
typedef struct { float *out; const float *a, *b, *c; int64_t n; int op; float param; } ew_job;

static void unary_forward_part(void *ctx, int part, int parts) {
    const ew_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->n, part, parts, &lo, &hi);
    unary_forward_range(j->out + lo, j->a + lo, hi - lo, j->op, j->param);
}

void sk_unary_forward(float *y, const float *x, int64_t n, int op, float param) {
    ew_job j = {y, x, NULL, NULL, n, op, param};
    sk_pool_run(sk_pool_parts(n, n * 4), unary_forward_part, &j);
}

static void unary_backward_part(void *ctx, int part, int parts) {
    const ew_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->n, part, parts, &lo, &hi);
    unary_backward_range(j->out + lo, j->a + lo, j->b ? j->b + lo : NULL, j->c ? j->c + lo : NULL, hi - lo, j->op, j->param);
}

void sk_unary_backward(float *gx, const float *gy, const float *x, const float *y, int64_t n, int op, float param) {
    ew_job j = {gx, gy, x, y, n, op, param};
    sk_pool_run(sk_pool_parts(n, n * 4), unary_backward_part, &j);
}

static inline float binary_value(float a, float b, int op) {
    switch (op) {
    case SK_ADD: return a + b;
    case SK_SUB: return a - b;
    case SK_MUL: return a * b;
    case SK_DIV: return a / b;
    case SK_MAXIMUM: return (a != a || a > b) ? a : b;
    case SK_MINIMUM: return (a != a || a < b) ? a : b;
    default: return NAN;
    }
}

void sk_naive_binary_forward(float *out, const float *a, const int64_t *sa, const float *b, const int64_t *sb,
                             const int64_t *shape, int64_t ndim, int op) {
    int64_t total = 1;
    for (int64_t d = 0; d < ndim; d++) total *= shape[d];
    for (int64_t i = 0; i < total; i++) {
        int64_t rem = i, oa = 0, ob = 0;
        for (int64_t d = ndim - 1; d >= 0; d--) {
            int64_t c = rem % shape[d]; rem /= shape[d];
            oa += c * sa[d]; ob += c * sb[d];
        }
        out[i] = binary_value(a[oa], b[ob], op);
    }
}

#define SK_BIN_LOOP(EXPR) \
    for (int64_t j = 0; j < inner; j++) { float av = a[oa + j * ia], bv = b[ob + j * ib]; o[j] = (EXPR); }

// Rows [lo, hi) of the outer dims (all but the last), starting from the multi-index of row lo.
SK_CLONES static void binary_rows(float *out, const float *a, const int64_t *sa, const float *b, const int64_t *sb,
                                  const int64_t *shape, int64_t ndim, int op, int64_t lo, int64_t hi) {
    int64_t inner = shape[ndim - 1], ia = sa[ndim - 1], ib = sb[ndim - 1];
    int64_t idx[SK_MAX_DIMS] = {0};
    int64_t oa = 0, ob = 0, rem = lo;
    for (int64_t d = ndim - 2; d >= 0; d--) {
        idx[d] = rem % shape[d]; rem /= shape[d];
        oa += idx[d] * sa[d]; ob += idx[d] * sb[d];
    }
    for (int64_t r = lo; r < hi; r++) {
        float *o = out + r * inner;
        switch (op) {
        case SK_ADD: SK_BIN_LOOP(av + bv) break;
        case SK_SUB: SK_BIN_LOOP(av - bv) break;
        case SK_MUL: SK_BIN_LOOP(av * bv) break;
        case SK_DIV: SK_BIN_LOOP(av / bv) break;
        default: for (int64_t j = 0; j < inner; j++) o[j] = binary_value(a[oa + j * ia], b[ob + j * ib], op);
        }
        // advance the multi-index over the outer dims
        for (int64_t d = ndim - 2; d >= 0; d--) {
            idx[d]++; oa += sa[d]; ob += sb[d];
            if (idx[d] < shape[d]) break;
            oa -= sa[d] * shape[d]; ob -= sb[d] * shape[d]; idx[d] = 0;
        }
    }
}

typedef struct {
    float *out; const float *a, *b; const int64_t *sa, *sb, *shape; int64_t ndim, outer; int op;
} binary_job;

static void binary_part(void *ctx, int part, int parts) {
    const binary_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice(j->outer, part, parts, &lo, &hi);
    if (hi > lo) binary_rows(j->out, j->a, j->sa, j->b, j->sb, j->shape, j->ndim, j->op, lo, hi);
}

void sk_binary_forward(float *out, const float *a, const int64_t *sa, const float *b, const int64_t *sb,
                       const int64_t *shape, int64_t ndim, int op) {
    if (ndim == 0) { out[0] = binary_value(a[0], b[0], op); return; }
    int64_t outer = 1;
    for (int64_t d = 0; d < ndim - 1; d++) outer *= shape[d];
    binary_job j = {out, a, b, sa, sb, shape, ndim, outer, op};
    sk_pool_run(sk_pool_parts(outer, outer * shape[ndim - 1] * 3), binary_part, &j);
}

SK_CLONES void sk_affine_scalar(float *y, const float *x, int64_t n, float a, float b) {
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + b;
}

SK_CLONES void sk_accumulate(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

SK_CLONES void sk_fill(float *y, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) y[i] = v;
}
