// Convolutions on oneDNN (Debian's libdnnl, JIT-compiled for the CPU it runs on: AVX-512, AVX2 or
// whatever the machine has), with the memory formats the engine keeps activations in.
//
// Formats of an (N, C, H, W) activation (logical dims always N, C, H, W):
//   SK_FMT_NCHW     row-major N, C, H, W (PyTorch's layout)
//   SK_FMT_NHWC     row-major N, H, W, C
//   SK_FMT_BLOCK16  N, C/16, H, W, 16: channels in blocks of 16 (oneDNN's nChw16c); needs C % 16 == 0
// Weights are always PyTorch's (O, C, kh, kw) and biases (O); oneDNN's own weight formats stay inside.
//
// A convolution is described once (sizes, stride, zero padding, formats, bias or not, algorithm) and
// cached: sk_dnn_conv_get returns the same object for the same description. Its three passes:
//   forward           y = conv(x, w) + b                  (writes y)
//   backward_data     gx = dL/dx given gy = dL/dy         (writes gx)
//   backward_weights  gw += dL/dw, gb += dL/db            (adds, like every backward kernel here)
// Forward and backward-data write rather than add: they produce fresh tensors.
//
// Algorithm: SK_DNN_AUTO takes Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions whose channels are
// blocked (C, O multiples of 16) on maps of at least 4x4 positions and 8192 output positions in the
// batch (fewer tiles leave its transforms underused), where it measured 1.5-2x faster than direct (and agrees with it to ~1e-6 relative in forward, ~4e-5 in weight gradients); direct
// otherwise. The choice depends only on the description, never on timing, so results are reproducible.
// Every entry point returns SK_OK or an error status; sk_dnn_last_error() says what failed.
#pragma once
#include <stdint.h>

#define SK_FMT_NCHW 0
#define SK_FMT_NHWC 1
#define SK_FMT_BLOCK16 2

#define SK_DNN_AUTO 0
#define SK_DNN_DIRECT 1
#define SK_DNN_WINOGRAD 2

#define SK_ERR_DNN 10

typedef struct sk_dnn_conv sk_dnn_conv;

// The cached convolution for this description, created on first use; NULL on failure (bad sizes or a
// description oneDNN cannot run), with *status set.
sk_dnn_conv *sk_dnn_conv_get(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                             int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                             int src_format, int dst_format, int has_bias, int algorithm, int *status);

// The same for a forward pass whose result records no gradient (evaluation, detection): forward only
// (the backward passes return SK_ERR_ARG). SK_DNN_AUTO takes oneDNN's inference Winograd for blocked
// 3x3 stride-1 convolutions at any batch size: its weights are transformed once and kept, and
// transformed again only when the weights given differ from the ones kept (compared at each call).
sk_dnn_conv *sk_dnn_conv_get_inference(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                       int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                       int src_format, int dst_format, int has_bias, int algorithm, int *status);
int sk_dnn_conv_is_inference(const sk_dnn_conv *conv);

int sk_dnn_conv_forward(sk_dnn_conv *conv, float *y, const float *x, const float *w, const float *b);
int sk_dnn_conv_backward_data(sk_dnn_conv *conv, float *gx, const float *gy, const float *w);
// gw (O, C, kh, kw) and gb (O) are added into; either may be NULL to skip it.
int sk_dnn_conv_backward_weights(sk_dnn_conv *conv, float *gw, float *gb, const float *gy, const float *x);

// The algorithm the convolution runs (SK_DNN_DIRECT or SK_DNN_WINOGRAD) and oneDNN's name for the
// implementation of a pass (0 forward, 1 backward data, 2 backward weights; "" before first use).
int sk_dnn_conv_algorithm(const sk_dnn_conv *conv);
const char *sk_dnn_conv_impl(const sk_dnn_conv *conv, int pass);

// Reorders an activation between formats: dst (in dst_format) = src (in src_format).
int sk_dnn_reorder(float *dst, int dst_format, const float *src, int src_format,
                   int64_t N, int64_t C, int64_t H, int64_t W);

// A description of the last failure on this thread (empty if none).
const char *sk_dnn_last_error(void);
// "oneDNN 2.6.3 (cpu runtime OpenMP, ISA avx512_core)"-like summary.
const char *sk_dnn_version(void);
