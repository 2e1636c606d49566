// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d with groups=1), NCHW float32.
//
// Shape contract:
//   x (N, C, H, W), w (O, C, kh, kw), b (O) or NULL, y (N, O, Ho, Wo), all contiguous row-major, with
//   Ho = (H + 2*ph - kh) / sh + 1 and Wo = (W + 2*pw - kw) / sw + 1 (integer division; zero padding).
//   Needs N >= 0, C, O, kh, kw >= 1, Ho, Wo >= 1 (else SK_ERR_SHAPE) and sh, sw >= 1, ph, pw >= 0
//   (else SK_ERR_ARG). Nothing is written when the status is not SK_OK.
//
// The optimised kernels lower the convolution to OpenBLAS sgemm on an unfolded (im2col) matrix of
// K = C*kh*kw values per output position, processing `chunk` images at a time so that matrix stays
// bounded (chunk 0 picks the default: about 16 MB of workspace; a chunk holds at least one image).
// Small maps (Ho*Wo < 1024) are unfolded for the whole chunk so that one sgemm sees chunk*Ho*Wo
// columns; large maps get one sgemm per image straight into y; a 1x1 stride-1 unpadded convolution
// on large maps skips the unfolding entirely, and a kernel covering the whole unpadded map is a
// single sgemm on x as it is. At stride 1, grad input is computed as the transposed convolution
// (a forward pass of gy with the flipped kernel), with no col2im. See conv.c for the layouts.
//
// `work` is scratch of sk_conv2d_workspace(...) floats, or NULL to let the kernel allocate it.
// Hot paths pass memory they reuse, ideally 2 MB aligned and advised for huge pages (the im2col
// matrix is walked with strides of whole rows; 4 KB pages cost 10-25% on SPACE's shapes).
// Results do not depend on `chunk` or `work` beyond float rounding order.
#pragma once
#include <stdint.h>

// Floats of scratch sk_conv2d_forward / sk_conv2d_backward need for these sizes and chunk (0 = default);
// 0 when none is needed. Returns -1 on invalid sizes.
int64_t sk_conv2d_workspace(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk);

// y = conv2d(x, w) + b.
int sk_conv2d_forward(float *y, float *work, const float *x, const float *w, const float *b,
                      int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                      int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk);

// gx += dL/dx, gw += dL/dw, gb += dL/db given gy = dL/dy (N, O, Ho, Wo). Any of gx, gw, gb may be
// NULL to skip that gradient. x is needed only for gw, w only for gx (either may then be NULL).
int sk_conv2d_backward(float *gx, float *gw, float *gb, float *work, const float *gy, const float *x, const float *w,
                       int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t chunk);

// Direct loops in double precision with the same contracts (test oracles).
int sk_naive_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t sh, int64_t sw, int64_t ph, int64_t pw);
int sk_naive_conv2d_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                             int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                             int64_t sh, int64_t sw, int64_t ph, int64_t pw);
