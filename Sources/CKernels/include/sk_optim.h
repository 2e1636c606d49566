// Optimizer update rules, elementwise over one parameter tensor (PyTorch's single-tensor code paths).
#pragma once
#include <stdint.h>

// RMSprop (momentum 0, not centered): v = alpha v + (1 - alpha) g^2; p -= lr * g / (sqrt(v) + eps).
void sk_rmsprop_step(float *param, float *square_avg, const float *grad, int64_t n, float lr, float alpha, float eps);
// Adam (no amsgrad, no weight decay), step t >= 1 already incremented:
// m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g^2;
// p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
void sk_adam_step(float *param, float *exp_avg, float *exp_avg_sq, const float *grad, int64_t n,
                  float lr, float beta1, float beta2, float eps, int64_t step);
// x *= s
void sk_scale_inplace(float *x, int64_t n, float s);
