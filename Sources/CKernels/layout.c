// Layout kernels: strided copies and block moves.
#include "ckernels.h"
#include "sk_math.h"
#include <string.h>

SK_CLONES void sk_strided_copy(float *out, const float *x, const int64_t *oshape, const int64_t *xstrides, int64_t ndim) {
    if (ndim == 0) { out[0] = x[0]; return; }
    int64_t inner = oshape[ndim - 1], is = xstrides[ndim - 1], outer = 1;
    for (int64_t d = 0; d < ndim - 1; d++) outer *= oshape[d];
    int64_t idx[SK_MAX_DIMS] = {0}, off = 0;
    for (int64_t r = 0; r < outer; r++) {
        float *o = out + r * inner;
        if (is == 1) memcpy(o, x + off, sizeof(float) * (size_t)inner);
        else for (int64_t j = 0; j < inner; j++) o[j] = x[off + j * is];
        for (int64_t d = ndim - 2; d >= 0; d--) {
            idx[d]++; off += xstrides[d];
            if (idx[d] < oshape[d]) break;
            off -= xstrides[d] * oshape[d]; idx[d] = 0;
        }
    }
}

SK_CLONES void sk_strided_copy_backward(float *gx, const float *gout, const int64_t *oshape, const int64_t *xstrides, int64_t ndim) {
    if (ndim == 0) { gx[0] += gout[0]; return; }
    int64_t inner = oshape[ndim - 1], is = xstrides[ndim - 1], outer = 1;
    for (int64_t d = 0; d < ndim - 1; d++) outer *= oshape[d];
    int64_t idx[SK_MAX_DIMS] = {0}, off = 0;
    for (int64_t r = 0; r < outer; r++) {
        const float *g = gout + r * inner;
        for (int64_t j = 0; j < inner; j++) gx[off + j * is] += g[j];
        for (int64_t d = ndim - 2; d >= 0; d--) {
            idx[d]++; off += xstrides[d];
            if (idx[d] < oshape[d]) break;
            off -= xstrides[d] * oshape[d]; idx[d] = 0;
        }
    }
}

SK_CLONES void sk_copy_block(float *out, int64_t m, int64_t at, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + (o * m + at) * inner, x + o * n * inner, sizeof(float) * (size_t)(n * inner));
}

SK_CLONES void sk_take_block(float *out, const float *x, int64_t m, int64_t at, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * n * inner, x + (o * m + at) * inner, sizeof(float) * (size_t)(n * inner));
}

SK_CLONES void sk_take_block_add(float *out, const float *x, int64_t m, int64_t at, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++) {
        float *dst = out + o * n * inner; const float *src = x + (o * m + at) * inner;
        for (int64_t i = 0; i < n * inner; i++) dst[i] += src[i];
    }
}

SK_CLONES void sk_copy_block_add(float *out, int64_t m, int64_t at, const float *x, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++) {
        float *dst = out + (o * m + at) * inner; const float *src = x + o * n * inner;
        for (int64_t i = 0; i < n * inner; i++) dst[i] += src[i];
    }
}

int sk_index_select_forward(float *out, const float *x, const int64_t *index, int64_t k,
                            int64_t outer, int64_t n, int64_t inner) {
    for (int64_t j = 0; j < k; j++) if (index[j] < 0 || index[j] >= n) return SK_ERR_ARG;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++)
            memcpy(out + (o * k + j) * inner, x + (o * n + index[j]) * inner, sizeof(float) * (size_t)inner);
    return SK_OK;
}

void sk_index_select_backward(float *gx, const float *gout, const int64_t *index, int64_t k,
                              int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < k; j++) {
            float *dst = gx + (o * n + index[j]) * inner; const float *src = gout + (o * k + j) * inner;
            for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
        }
}
