// Normalisation kernels: group norm and batch norm, as torch.nn.functional.group_norm / batch_norm.
// Shape contract: x is contiguous (N, C, S) with S the product of the spatial dims (1 for (N, C)).
// weight and bias are (C) and may be NULL (no affine: weight 1, bias 0). Statistics are accumulated in
// double; the variance normalising x is the BIASED one; rstd = 1 / sqrt(max(var, 0) + eps).
// Forward writes y = x * a[n, c] + b[n, c] with a = rstd * weight, b = bias - mean * a (PyTorch's form).
// Backward ADDS into gx, gweight, gbias; any of them may be NULL to skip it.
#pragma once
#include <stdint.h>

// --- group norm: statistics per (n, group) over the C/G channels of the group and all S positions.
// mean, rstd: (N, G). Returns SK_ERR_SHAPE if G <= 0 or C is not divisible by G.
int sk_group_norm_forward(float *y, float *mean, float *rstd,
                          const float *x, const float *weight, const float *bias,
                          int64_t N, int64_t C, int64_t S, int64_t G, float eps);
int sk_naive_group_norm_forward(float *y, float *mean, float *rstd,
                                const float *x, const float *weight, const float *bias,
                                int64_t N, int64_t C, int64_t S, int64_t G, float eps);
// gx += d/dx, gweight[c] += sum gy * xhat, gbias[c] += sum gy. mean, rstd as saved by forward.
int sk_group_norm_backward(float *gx, float *gweight, float *gbias,
                           const float *gy, const float *mean, const float *rstd,
                           const float *x, const float *weight,
                           int64_t N, int64_t C, int64_t S, int64_t G);
int sk_naive_group_norm_backward(float *gx, float *gweight, float *gbias,
                                 const float *gy, const float *mean, const float *rstd,
                                 const float *x, const float *weight,
                                 int64_t N, int64_t C, int64_t S, int64_t G);

// --- batch norm: statistics per channel over the N * S values of that channel.
// mean, rstd: (C), written by forward and read by backward.
// training != 0: mean/rstd are the batch mean and 1/sqrt(biased var + eps); running_mean and running_var
//   (C, may be NULL) are updated in place: r = (1 - momentum) * r + momentum * stat, with the UNBIASED
//   variance var * M / (M - 1), M = N * S. Returns SK_ERR_ARG if M < 2 (PyTorch refuses it too).
// training == 0: mean = running_mean, rstd = 1/sqrt(running_var + eps); running stats are not touched
//   (they must not be NULL).
int sk_batch_norm_forward(float *y, float *mean, float *rstd, float *running_mean, float *running_var,
                          const float *x, const float *weight, const float *bias,
                          int64_t N, int64_t C, int64_t S, int training, float momentum, float eps);
int sk_naive_batch_norm_forward(float *y, float *mean, float *rstd, float *running_mean, float *running_var,
                                const float *x, const float *weight, const float *bias,
                                int64_t N, int64_t C, int64_t S, int training, float momentum, float eps);
// training != 0: the gradient through the batch statistics; training == 0: statistics are constants,
// gx += gy * weight * rstd.
void sk_batch_norm_backward(float *gx, float *gweight, float *gbias,
                            const float *gy, const float *mean, const float *rstd,
                            const float *x, const float *weight,
                            int64_t N, int64_t C, int64_t S, int training);
void sk_naive_batch_norm_backward(float *gx, float *gweight, float *gbias,
                                  const float *gy, const float *mean, const float *rstd,
                                  const float *x, const float *weight,
                                  int64_t N, int64_t C, int64_t S, int training);
