// Convolutions to a few output channels from blocked feature maps: the glimpse decoder's RGB + alpha
// heads (16 -> 4 channels, 3x3), the mask decoder's last layer (16 -> 1), the component decoder's
// output (32 -> 3, 1x1), and, run on the output gradient with the kernel transposed and flipped, the
// input gradient of a convolution from a few channels (the glimpse encoder's 3 -> 16 on RGB glimpses).
// General convolution engines vectorise over output channels and waste most of each vector here; these
// kernels vectorise over the 16 input channels of a block and reduce across lanes at the end.
//
// Shape contract: x blocked (N, C/16, H, W, 16), C a multiple of 16; w (O, C, kh, kw) with
// 1 <= O <= SK_NARROW_MAX_O; b (O) or NULL; stride 1, zero padding (ph, pw) with ph < kh, pw < kw;
// y NCHW (N, O, Ho, Wo), Ho = H + 2 ph - kh + 1, Wo = W + 2 pw - kw + 1.
// Forward writes y. Backward writes gx (blocked, may be NULL) and adds into gw, gb (either may be NULL).
#pragma once
#include <stdint.h>

#define SK_NARROW_MAX_O 8

int sk_narrow_conv_forward(float *y, const float *x, const float *w, const float *b,
                           int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                           int64_t ph, int64_t pw);
int sk_narrow_conv_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                            int64_t ph, int64_t pw);

// Direct loops in double with the same contracts (test oracles).
int sk_naive_narrow_conv_forward(float *y, const float *x, const float *w, const float *b,
                                 int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                 int64_t ph, int64_t pw);
int sk_naive_narrow_conv_backward(float *gx, float *gw, float *gb, const float *gy, const float *x, const float *w,
                                  int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                  int64_t ph, int64_t pw);
