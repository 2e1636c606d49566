// Optimizer update rules with PyTorch's arithmetic: scalars computed in double and applied in float32,
// in the same order as torch.optim's single-tensor RMSprop and Adam.
#include "ckernels.h"
#include "sk_math.h"
#include <math.h>

SK_CLONES void sk_rmsprop_step(float *param, float *square_avg, const float *grad, int64_t n, float lr, float alpha, float eps) {
    const float one_minus_alpha = (float)(1.0 - (double)alpha);
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        float v = square_avg[i] * alpha + one_minus_alpha * (g * g);  // mul_(alpha).addcmul_(g, g, 1 - alpha)
        square_avg[i] = v;
        float avg = sqrtf(v) + eps;                                    // sqrt().add_(eps)
        param[i] = param[i] + (-lr) * (g / avg);                        // addcdiv_(g, avg, value=-lr)
    }
}

SK_CLONES void sk_adam_step(float *param, float *exp_avg, float *exp_avg_sq, const float *grad, int64_t n,
                  float lr, float beta1, float beta2, float eps, int64_t step) {
    const double bc1 = 1.0 - pow((double)beta1, (double)step);
    const double bc2 = 1.0 - pow((double)beta2, (double)step);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float w = (float)(1.0 - (double)beta1);           // lerp weight
    const float one_minus_beta2 = (float)(1.0 - (double)beta2);
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        float m = exp_avg[i];
        m = w < 0.5f ? m + w * (g - m) : g - (g - m) * (1.0f - w);  // torch.lerp
        exp_avg[i] = m;
        float v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
        exp_avg_sq[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + eps;
        param[i] = param[i] + (-step_size) * (m / denom);
    }
}

void sk_scale_inplace(float *x, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}
