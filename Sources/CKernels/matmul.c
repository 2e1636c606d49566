// Matrix products: batched sgemm, and the naive oracle.
//
// Products of at least SK_MATMUL_ENGINE_FLOPS multiply-adds run on oneDNN's sgemm, threaded on the
// same OpenMP team as every other kernel; smaller ones (the LSTM cells, the latent heads) on
// single-threaded OpenBLAS, where a thread hand-off would cost more than the product.
#include "ckernels.h"
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#define SK_MATMUL_ENGINE_FLOPS ((int64_t)1 << 21)

void sk_matmul(float *c, const float *a, const float *b, int64_t batch, int64_t m, int64_t k, int64_t n,
               int trans_a, int trans_b, float alpha, float beta,
               int64_t stride_a, int64_t stride_b, int64_t stride_c) {
    int lda = trans_a ? (int)m : (int)k;
    int ldb = trans_b ? (int)k : (int)n;
    sk_pool_threads();  // makes sure OpenBLAS runs single-threaded (see pool.c)
    for (int64_t i = 0; i < batch; i++) {
        if (m * n * k >= SK_MATMUL_ENGINE_FLOPS
            && dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a + i * stride_a, lda,
                          b + i * stride_b, ldb, beta, c + i * stride_c, n) == dnnl_success)
            continue;
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
