// Matrix products: batched sgemm through CBLAS, and the naive oracle.
#include "ckernels.h"
#include <cblas.h>

void sk_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t k, int64_t n,
               int trans_a, int trans_b, float alpha, float beta,
               int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    int lda = trans_a ? (int)m : (int)k;
    int ldb = trans_b ? (int)k : (int)n;
    for (int64_t i = 0; i < batch; i++) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
                    beta, c + i * stride_c, (int)n);
    }
}

void sk_naive_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t k, int64_t n,
                     int trans_a, int trans_b, float alpha, float beta,
                     int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    for (int64_t bi = 0; bi < batch; bi++) {
        const float *A = a + bi * stride_a, *B = b + bi * stride_b; float *C = c + bi * stride_c;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0;
                for (int64_t p = 0; p < k; p++) {
                    float av = trans_a ? A[p * m + i] : A[i * k + p];
                    float bv = trans_b ? B[j * k + p] : B[p * n + j];
                    s += (double)av * (double)bv;
                }
                C[i * n + j] = (float)(alpha * s + (beta == 0.0f ? 0.0 : beta * C[i * n + j]));
            }
    }
}
