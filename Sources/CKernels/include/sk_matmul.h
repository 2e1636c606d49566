// Matrix products on OpenBLAS sgemm (row-major).
#pragma once
#include <stdint.h>

// For each b in [0, batch): C_b = alpha * op(A_b) @ op(B_b) + beta * C_b, op = transpose if trans_* != 0.
// A_b is (m, k) after op, B_b is (k, n) after op, C_b is (m, n). Batch strides in elements; a stride
// of 0 broadcasts that operand over the batch.
void sk_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t k, int64_t n,
               int trans_a, int trans_b, float alpha, float beta,
               int64_t stride_a, int64_t stride_b, int64_t stride_c);
// The naive triple loop with the same contract (test oracle).
void sk_naive_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t k, int64_t n,
                     int trans_a, int trans_b, float alpha, float beta,
                     int64_t stride_a, int64_t stride_b, int64_t stride_c);
