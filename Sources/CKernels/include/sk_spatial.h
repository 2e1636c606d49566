// Spatial transformer kernels: affine_grid and bilinear grid_sample with zeros padding and
// align_corners=False, as torch.nn.functional.affine_grid / grid_sample.
#pragma once
#include <stdint.h>

// --- affine grid. theta: (N, 2, 3); grid: (N, H, W, 2) holding (x, y) per output pixel.
// Base coordinates as PyTorch builds them: x_j = linspace(-1, 1, W)[j] * (W - 1) / W (= (2j+1)/W - 1),
// y_i likewise with H; grid[n, i, j] = theta[n] @ (x_j, y_i, 1).
void sk_affine_grid_forward(float *grid, const float *theta, int64_t N, int64_t H, int64_t W);
void sk_naive_affine_grid_forward(float *grid, const float *theta, int64_t N, int64_t H, int64_t W);
// gtheta[n] += sum_{i,j} ggrid[n, i, j]^T (x_j, y_i, 1)
void sk_affine_grid_backward(float *gtheta, const float *ggrid, int64_t N, int64_t H, int64_t W);
void sk_naive_affine_grid_backward(float *gtheta, const float *ggrid, int64_t N, int64_t H, int64_t W);
// The base coordinate k of `size` points (x_j for size W): linspace(-1, 1, size)[k] * (size - 1) / size.
float sk_affine_grid_base(int64_t k, int64_t size);

// --- grid sample. input: (Nin, C, Hin, Win); grid: (Ng, Hout, Wout, 2) with (x, y) in [-1, 1];
// out: (Ng, C, Hout, Wout). Grid entry b samples image image_index[b] (image_index: Ng entries in
// [0, Nin)), or image b when image_index is NULL (then Ng must equal Nin).
// Unnormalised source position ix = ((x + 1) * Win - 1) / 2, iy = ((y + 1) * Hin - 1) / 2; bilinear
// weights on the four taps floor(ix), floor(ix)+1 (x) floor(iy), floor(iy)+1; a tap outside the image
// contributes 0 (padding_mode="zeros"). Non-finite coordinates sample nothing.
// Returns SK_ERR_SHAPE (Ng != Nin without image_index) or SK_ERR_ARG (image index out of range).
int sk_grid_sample_forward(float *out, const float *input, const float *grid, const int64_t *image_index,
                           int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                           int64_t Ng, int64_t Hout, int64_t Wout);
int sk_naive_grid_sample_forward(float *out, const float *input, const float *grid, const int64_t *image_index,
                                 int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                                 int64_t Ng, int64_t Hout, int64_t Wout);
// ginput (Nin, C, Hin, Win) += d/d input; ggrid (Ng, Hout, Wout, 2) += d/d grid, as PyTorch's
// grid_sampler_2d_backward: an out-of-image tap contributes nothing to either gradient, and at an exact
// pixel centre floor() picks the taps (the one-sided derivative PyTorch returns). The optimised kernel
// regroups the interior sums, so it equals the naive one to rounding. Either output may be NULL to skip
// it. Same status codes as forward. Entries sharing an image write the same ginput rows: callers running
// several ranges of grid entries concurrently must give each thread ranges whose images are disjoint
// (or separate ginput buffers).
int sk_grid_sample_backward(float *ginput, float *ggrid, const float *gout, const float *input, const float *grid,
                            const int64_t *image_index, int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                            int64_t Ng, int64_t Hout, int64_t Wout);
int sk_naive_grid_sample_backward(float *ginput, float *ggrid, const float *gout, const float *input, const float *grid,
                                  const int64_t *image_index, int64_t Nin, int64_t C, int64_t Hin, int64_t Win,
                                  int64_t Ng, int64_t Hout, int64_t Wout);
