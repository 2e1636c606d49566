// Layout kernels: moving data between contiguous tensors (permute, slices, gathers).
#pragma once
#include <stdint.h>

// out (contiguous, shape `oshape`) [idx] = x[sum_d idx[d] * xstrides[d]]: a general strided copy.
// Used for permute (strides permuted) and expand (stride 0). ndim <= SK_MAX_DIMS.
void sk_strided_copy(float *out, const float *x, const int64_t *oshape, const int64_t *xstrides, int64_t ndim);
// gx[sum_d idx[d] * xstrides[d]] += gout[idx]: the adjoint of sk_strided_copy.
void sk_strided_copy_backward(float *gx, const float *gout, const int64_t *oshape, const int64_t *xstrides, int64_t ndim);

// Copy a block (outer, n, inner) of x into out viewed as (outer, m, inner) at offset `at` along the middle
// dimension: out[o, at + k, i] = x[o, k, i]. Concatenation and slicing are built from this.
void sk_copy_block(float *out, int64_t m, int64_t at, const float *x, int64_t outer, int64_t n, int64_t inner);
// The reverse: out[o, k, i] = x[o, at + k, i] with x viewed as (outer, m, inner).
void sk_take_block(float *out, const float *x, int64_t m, int64_t at, int64_t outer, int64_t n, int64_t inner);
// Add variants for backward passes.
void sk_take_block_add(float *out, const float *x, int64_t m, int64_t at, int64_t outer, int64_t n, int64_t inner);
void sk_copy_block_add(float *out, int64_t m, int64_t at, const float *x, int64_t outer, int64_t n, int64_t inner);

// Gather along the middle dim: out[o, j, i] = x[o, index[j], i], x viewed (outer, n, inner), out (outer, k, inner).
// Returns SK_ERR_ARG if an index is out of [0, n).
int sk_index_select_forward(float *out, const float *x, const int64_t *index, int64_t k,
                            int64_t outer, int64_t n, int64_t inner);
// gx[o, index[j], i] += gout[o, j, i]
void sk_index_select_backward(float *gx, const float *gout, const int64_t *index, int64_t k,
                              int64_t outer, int64_t n, int64_t inner);
