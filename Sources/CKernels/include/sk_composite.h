// Glimpse compositing: SPACE's foreground paste-back fused with the softmax over cells, without
// materialising one full-size canvas per cell.
//
// Shape contract. B images of G2 cells each; the N = B * G2 cells are image-major (cell n belongs to
// image n / G2). All tensors are contiguous float32:
//   values     (N, Cv, Hg, Wg)   glimpse maps blended with the softmax weights (SPACE: y_att, alpha_att_hat)
//   importance (N, 1, Hg, Wg)    glimpse importance logits
//   summed     (N, Cs, Hg, Wg)   glimpse maps summed without weights (SPACE: the boundary kernel); NULL iff Cs == 0
//   affine     (N, 4)            (ax, bx, ay, by) of each cell's inverse transform
//   out        (B, Cv + Cs, H, W) channels [0, Cv): the softmax-weighted blend; [Cv, Cv + Cs): the plain sums
//   lse        (B, H, W)         log-sum-exp over the G2 cells of the pasted importances (saved for backward)
//
// Pasting is exactly affine_grid (align_corners=False) + grid_sample (bilinear, zeros padding,
// align_corners=False) with theta = [[ax, 0, bx], [0, ay, by]]: canvas pixel (i, j) has base coordinates
// x = (2j + 1)/W - 1, y = (2i + 1)/H - 1 (computed as sk_affine_grid_base) and samples glimpse point
// gx = ax * x + bx, gy = ay * y + by, unnormalised ix = ((gx + 1) * Wg - 1) / 2, iy = ((gy + 1) * Hg - 1) / 2.
// paste_n(f)(i, j) is that bilinear sample of cell n's map f, 0 where no tap falls inside the glimpse.
//
//   out[b, c, p]      = sum_n paste_n(values[:, c])(p) * softmax_n(paste_n(importance)(p))   (c < Cv)
//   out[b, Cv + c, p] = sum_n paste_n(summed[:, c])(p)
// with the softmax over ALL G2 cells of image b: a cell whose glimpse does not reach p has importance
// exactly 0 there (as the reference's full-size pasted maps). lse = log sum_n exp(paste_n(importance)(p)).
//
// The optimised kernels visit only each cell's box (the canvas rows and columns whose sample has a tap
// inside the glimpse), so the cost is the sum of the box areas, not G2 * H * W. Each image is
// independent: callers may run disjoint ranges of images concurrently (offset every pointer by the
// range's first image or cell).
//
// Returns SK_ERR_ARG for G2 < 1, a non-positive glimpse or canvas size, negative B/Cv/Cs, or summed
// NULL while Cs > 0. The optimised kernels fall back to the naive ones when scratch memory cannot be had.
#pragma once
#include <stdint.h>

int sk_composite_forward(float *out, float *lse,
                         const float *values, const float *importance, const float *summed, const float *affine,
                         int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W);
int sk_naive_composite_forward(float *out, float *lse,
                               const float *values, const float *importance, const float *summed, const float *affine,
                               int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W);

// Backward: gvalues (N, Cv, Hg, Wg), gimportance (N, 1, Hg, Wg), gsummed (N, Cs, Hg, Wg) and gaffine (N, 4)
// += the gradients of sum(gout * out); any of them may be NULL to skip it. out and lse are forward's
// outputs. Importance gradient: w_n(p) * (sum_c gout[c, p] * paste_n(values[:, c])(p) - sum_c gout[c, p] *
// out[c, p]) at the pixels the cell's box covers (elsewhere its importance is the constant 0). The
// bilinear and grid gradients are PyTorch's grid_sampler_2d_backward ones (an out-of-glimpse tap
// contributes nothing; at an exact pixel centre floor() picks the taps), and d gx / d(ax, bx) = (x, 1),
// d gy / d(ay, by) = (y, 1). The naive twin recomputes the softmax and out in double from the inputs
// (it does not read out and lse).
int sk_composite_backward(float *gvalues, float *gimportance, float *gsummed, float *gaffine,
                          const float *gout, const float *out, const float *lse,
                          const float *values, const float *importance, const float *summed, const float *affine,
                          int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W);
int sk_naive_composite_backward(float *gvalues, float *gimportance, float *gsummed, float *gaffine,
                                const float *gout, const float *out, const float *lse,
                                const float *values, const float *importance, const float *summed, const float *affine,
                                int64_t B, int64_t G2, int64_t Cv, int64_t Cs, int64_t Hg, int64_t Wg, int64_t H, int64_t W);
