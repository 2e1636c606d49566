// The pointwise stage between two convolutions, fused: an optional pixel shuffle, an activation
// (CELU or ELU) and a normalisation (group norm or batch norm), in either order, on feature maps
// blocked by 16 channels (N, C/16, H, W, 16), as SPACE's networks chain them:
//     conv -> [PixelShuffle(r)] -> CELU -> GroupNorm -> conv      (glimpse and mask decoders, encoders)
//     conv -> BatchNorm -> ELU -> conv                            (background encoders, component decoder)
//
// Shape contract (sk_pw_desc): z is the convolution's output, blocked, with C * r * r channels ordered
// (sub-pixel s = i * r + j, channel c), i.e. the convolution's output channels permuted from PyTorch's
// pixel-shuffle order (c * r * r + s) so that each sub-pixel's channels are whole blocks; y is the
// stage's output, blocked, (N, C, H * r, W * r), y[n, c, h * r + i, w * r + j] = f(z[n, s * C + c, h, w]).
// C must be a multiple of 16. Per-(n, c) quantities are arrays of N * C.
//
// The stage is u = act(z) then y = norm(u) (act_first), or t = norm(z) then y = act(t); a missing act
// or norm is the identity. Norms compute y = v * scale[n, c] + shift[n, c] (PyTorch's form) from the
// statistics of their input v over the group's channels and all positions of an image (group norm) or
// over all images and positions of a channel (batch norm), biased variance, rstd = 1 / sqrt(var + eps).
//
// Forward: sk_pw_stats (per-(n, c) sums of v and v^2, in double), sk_pw_finish (statistics, scale and
// shift; batch norm in training updates its running statistics here), sk_pw_apply (y).
// Backward, given dy: sk_pw_backward_sums (per-(n, c) sums of g and g * vhat, where g is the gradient
// at the norm's output), sk_pw_backward_finish (the affine gradients, added, and the coefficients of dz),
// sk_pw_backward_apply (dz, written).
#pragma once
#include <stdint.h>

#define SK_ACT_NONE 0
#define SK_ACT_CELU 1
#define SK_ACT_ELU 2

#define SK_NORM_NONE 0
#define SK_NORM_GROUP 1
#define SK_NORM_BATCH 2

typedef struct {
    int64_t N, C, H, W;   // C: channels after the shuffle; H, W: z's spatial size
    int64_t r;            // pixel shuffle factor (1: none)
    int act;              // SK_ACT_*
    float alpha;          // CELU / ELU alpha
    int norm;             // SK_NORM_*
    int64_t groups;       // group norm: groups dividing C
    int act_first;        // 1: act then norm; 0: norm then act
    int training;         // batch norm: batch statistics (1) or running statistics (0)
    float eps, momentum;  // norm epsilon; batch norm running-statistics momentum
} sk_pw_desc;

// SK_OK, or SK_ERR_SHAPE / SK_ERR_ARG for an inconsistent description.
int sk_pw_check(const sk_pw_desc *d);

// sum, sumsq: N * C doubles, written: the sums over each (n, c)'s positions of v (v = act(z) if
// act_first, else z) and of v^2.
int sk_pw_stats(const sk_pw_desc *d, double *sum, double *sumsq, const float *z);

// From the sums: mean and rstd (N * C each, written: every channel carries its group's or its own
// statistic), and scale, shift (N * C, written) with y_norm = v * scale + shift. gamma, beta: (C) or
// NULL. Batch norm: training uses the batch statistics and updates running_mean / running_var (C) in
// place with the unbiased variance, as PyTorch; evaluation reads them (the sums are then unused and
// may be NULL). With no norm, scale = 1 and shift = 0.
int sk_pw_finish(const sk_pw_desc *d, float *mean, float *rstd, float *scale, float *shift,
                 const double *sum, const double *sumsq, const float *gamma, const float *beta,
                 float *running_mean, float *running_var);

// y (N, C/16, H*r, W*r, 16), written.
int sk_pw_apply(const sk_pw_desc *d, float *y, const float *z, const float *scale, const float *shift);

// s1, s2: N * C doubles, written: per (n, c), the sums of g and of g * vhat, where g is the gradient
// reaching the norm's output (dy, or dy * act'(t) when the activation comes after the norm) and
// vhat = (v - mean) * rstd.
int sk_pw_backward_sums(const sk_pw_desc *d, double *s1, double *s2, const float *dy, const float *z,
                        const float *mean, const float *rstd, const float *scale, const float *shift);

// Adds the affine gradients into dgamma, dbeta (C, either may be NULL) and writes k1, k2, k3 (N * C):
// the gradient at the norm's input is k1 * g + k2 * vhat + k3.
int sk_pw_backward_finish(const sk_pw_desc *d, float *dgamma, float *dbeta, float *k1, float *k2, float *k3,
                          const double *s1, const double *s2, const float *rstd, const float *gamma);

// dz (N, C*r*r/16, H, W, 16), written. Without a shuffle (r = 1) dz may be dy itself (in place).
int sk_pw_backward_apply(const sk_pw_desc *d, float *dz, const float *dy, const float *z,
                         const float *mean, const float *rstd, const float *scale, const float *shift,
                         const float *k1, const float *k2, const float *k3);

// Naive twins: the stage computed element by element from its definition, in double, on the same
// layouts (forward: y, and the updated running statistics; backward: dz, dgamma, dbeta added).
int sk_naive_pw_forward(const sk_pw_desc *d, float *y, const float *z, const float *gamma, const float *beta,
                        float *running_mean, float *running_var);
int sk_naive_pw_backward(const sk_pw_desc *d, float *dz, float *dgamma, float *dbeta, const float *dy,
                         const float *z, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var);
