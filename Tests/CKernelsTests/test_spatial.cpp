// Spatial transformer kernels: affine_grid and grid_sample against their naive twins, backward against
// finite differences (away from the pixel-centre kinks of bilinear interpolation), PyTorch's border and
// out-of-range behaviour, image_index batching, status codes, and that backward accumulates.
#include "support.h"

namespace {

// Normalised grid coordinates whose unnormalised positions ix = ((x + 1) * size - 1) / 2 cover
// [-2.5, size + 1.5) (inside, on the border band, and entirely outside) but keep at least `margin`
// pixels from every integer, where bilinear sampling has a kink.
// With `interior`, every point keeps all four taps inside (ix in [0, size - 1)), so the 8-point vector
// blocks of the optimised kernels take their gather path.
std::vector<float> kinkFreeGrid(int64_t count, int64_t W, int64_t H, uint32_t seed, float margin = 0.08f,
                                bool interior = false) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> frac(margin, 1.0f - margin);
    std::vector<float> g(count * 2);
    for (int64_t p = 0; p < count; p++)
        for (int d = 0; d < 2; d++) {
            int64_t size = d == 0 ? W : H;
            std::uniform_int_distribution<int64_t> whole(interior ? 0 : -3, interior ? size - 2 : size + 1);
            float pix = (float)whole(gen) + frac(gen);
            g[2 * p + d] = (2.0f * pix + 1.0f) / (float)size - 1.0f;
        }
    return g;
}

}  // namespace

TEST(AffineGrid, BaseCoordinatesArePixelCentres) {
    for (int64_t size : {1, 2, 3, 7, 32, 128})
        for (int64_t k = 0; k < size; k++)
            ASSERT_NEAR(sk_affine_grid_base(k, size), (2.0 * k + 1.0) / size - 1.0, 2e-7) << size << " " << k;
}

TEST(AffineGrid, ForwardAndBackwardMatchNaive) {
    int64_t N = 3, H = 5, W = 7;
    auto theta = randomVector(N * 6, 61);
    std::vector<float> g1(N * H * W * 2), g2(N * H * W * 2);
    sk_affine_grid_forward(g1.data(), theta.data(), N, H, W);
    sk_naive_affine_grid_forward(g2.data(), theta.data(), N, H, W);
    expectClose(g1, g2, 1e-6f, 1e-6f);
    auto gg = randomVector(N * H * W * 2, 62);
    std::vector<float> t1(N * 6, 1.0f), t2(N * 6, 1.0f);
    sk_affine_grid_backward(t1.data(), gg.data(), N, H, W);
    sk_naive_affine_grid_backward(t2.data(), gg.data(), N, H, W);
    expectClose(t1, t2, 1e-5f, 1e-5f);
    // Linear in theta, so finite differences are exact up to rounding.
    std::vector<float> t3(N * 6, 0.0f);
    sk_affine_grid_backward(t3.data(), gg.data(), N, H, W);
    auto f = [&](const std::vector<float> &t) {
        std::vector<float> g(N * H * W * 2);
        sk_affine_grid_forward(g.data(), t.data(), N, H, W);
        return g;
    };
    for (size_t i = 0; i < theta.size(); i++) {
        double fd = finiteDifference(theta, i, gg, f, 1e-2f);
        ASSERT_NEAR(t3[i], fd, 1e-3 + 1e-3 * std::fabs(fd)) << "theta at " << i;
        ASSERT_NEAR(t1[i], 1.0f + t3[i], 1e-5f);
    }
}

TEST(GridSample, ForwardMatchesNaive) {
    int64_t Nin = 2, C = 3, Hin = 9, Win = 11, Hout = 6, Wout = 5;
    auto input = randomVector(Nin * C * Hin * Win, 71);
    // Random coordinates, including exact pixel centres, borders, far outside and non-finite values.
    auto grid = randomVector(Nin * Hout * Wout * 2, 72, -1.4f, 1.4f);
    grid[0] = -1.0f; grid[1] = -1.0f; grid[2] = 1.0f; grid[3] = 1.0f; grid[4] = 1e20f; grid[5] = 0.0f;
    grid[6] = NAN; grid[7] = 0.0f; grid[8] = INFINITY; grid[9] = -INFINITY;
    grid[10] = 1.0f / Win - 1.0f; grid[11] = 1.0f / Hin - 1.0f;  // exactly the first pixel centre
    std::vector<float> o1(Nin * C * Hout * Wout), o2(o1.size());
    ASSERT_EQ(sk_grid_sample_forward(o1.data(), input.data(), grid.data(), nullptr, Nin, C, Hin, Win, Nin, Hout, Wout), SK_OK);
    ASSERT_EQ(sk_naive_grid_sample_forward(o2.data(), input.data(), grid.data(), nullptr, Nin, C, Hin, Win, Nin, Hout, Wout),
              SK_OK);
    expectClose(o1, o2, 1e-6f, 1e-6f);
    for (int64_t c = 0; c < C; c++) {
        EXPECT_EQ(o1[c * Hout * Wout + 2], 0.0f);  // 1e20: outside
        EXPECT_EQ(o1[c * Hout * Wout + 3], 0.0f);  // NaN: nothing sampled
        EXPECT_EQ(o1[c * Hout * Wout + 4], 0.0f);  // infinities
        EXPECT_NEAR(o1[c * Hout * Wout + 5], input[c * Hin * Win], 1e-6f);
    }
}

TEST(GridSample, IdentityGridReproducesInput) {
    // Pixel-centre coordinates (2j + 1)/W - 1 are exact in float for power-of-two sizes, so the
    // unnormalised positions are exactly integers and every output equals its input pixel.
    int64_t C = 2, H = 4, W = 8;
    auto input = randomVector(C * H * W, 73);
    std::vector<float> grid(H * W * 2), out(C * H * W);
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) {
            grid[(i * W + j) * 2] = (2.0f * j + 1.0f) / W - 1.0f;
            grid[(i * W + j) * 2 + 1] = (2.0f * i + 1.0f) / H - 1.0f;
        }
    ASSERT_EQ(sk_grid_sample_forward(out.data(), input.data(), grid.data(), nullptr, 1, C, H, W, 1, H, W), SK_OK);
    expectClose(out, input, 0, 0);
}

TEST(GridSample, ImageIndexSelectsImages) {
    int64_t Nin = 3, C = 2, Hin = 5, Win = 6, Ng = 7, Hout = 3, Wout = 4;
    auto input = randomVector(Nin * C * Hin * Win, 74);
    auto grid = randomVector(Ng * Hout * Wout * 2, 75, -1.2f, 1.2f);
    std::vector<int64_t> index = {2, 0, 0, 1, 2, 2, 1};
    std::vector<float> o1(Ng * C * Hout * Wout), o2(o1.size());
    ASSERT_EQ(sk_grid_sample_forward(o1.data(), input.data(), grid.data(), index.data(), Nin, C, Hin, Win, Ng, Hout, Wout),
              SK_OK);
    // Same as sampling each image on its own.
    for (int64_t b = 0; b < Ng; b++)
        sk_naive_grid_sample_forward(o2.data() + b * C * Hout * Wout, input.data() + index[b] * C * Hin * Win,
                                     grid.data() + b * Hout * Wout * 2, nullptr, 1, C, Hin, Win, 1, Hout, Wout);
    expectClose(o1, o2, 1e-6f, 1e-6f);
    auto gout = randomVector(o1.size(), 76);
    std::vector<float> gi1(input.size(), 0.0f), gi2(input.size(), 0.0f), gg1(grid.size(), 0.0f), gg2(grid.size(), 0.0f);
    sk_grid_sample_backward(gi1.data(), gg1.data(), gout.data(), input.data(), grid.data(), index.data(),
                            Nin, C, Hin, Win, Ng, Hout, Wout);
    for (int64_t b = 0; b < Ng; b++)
        sk_naive_grid_sample_backward(gi2.data() + index[b] * C * Hin * Win, gg2.data() + b * Hout * Wout * 2,
                                      gout.data() + b * C * Hout * Wout, input.data() + index[b] * C * Hin * Win,
                                      grid.data() + b * Hout * Wout * 2, nullptr, 1, C, Hin, Win, 1, Hout, Wout);
    expectClose(gi1, gi2, 1e-5f, 1e-6f);
    expectClose(gg1, gg2, 1e-5f, 1e-5f);
}

TEST(GridSample, StatusCodes) {
    std::vector<float> input(2 * 4), grid(3 * 2), out(3), g(3);
    std::vector<int64_t> bad = {0, 2, 1};
    EXPECT_EQ(sk_grid_sample_forward(out.data(), input.data(), grid.data(), nullptr, 2, 1, 2, 2, 3, 1, 1), SK_ERR_SHAPE);
    EXPECT_EQ(sk_grid_sample_forward(out.data(), input.data(), grid.data(), bad.data(), 2, 1, 2, 2, 3, 1, 1), SK_ERR_ARG);
    EXPECT_EQ(sk_naive_grid_sample_forward(out.data(), input.data(), grid.data(), bad.data(), 2, 1, 2, 2, 3, 1, 1), SK_ERR_ARG);
    EXPECT_EQ(sk_grid_sample_backward(input.data(), grid.data(), g.data(), input.data(), grid.data(), bad.data(),
                                      2, 1, 2, 2, 3, 1, 1), SK_ERR_ARG);
}

TEST(GridSample, BackwardMatchesNaiveAndAccumulates) {
    int64_t N = 2, C = 3, Hin = 7, Win = 6, Hout = 5, Wout = 8;
    auto input = randomVector(N * C * Hin * Win, 81);
    auto grid = randomVector(N * Hout * Wout * 2, 82, -1.3f, 1.3f);
    auto gout = randomVector(N * C * Hout * Wout, 83);
    std::vector<float> gi1(input.size(), 1.0f), gi2(input.size(), 1.0f), gg1(grid.size(), -1.0f), gg2(grid.size(), -1.0f);
    sk_grid_sample_backward(gi1.data(), gg1.data(), gout.data(), input.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
    sk_naive_grid_sample_backward(gi2.data(), gg2.data(), gout.data(), input.data(), grid.data(), nullptr,
                                  N, C, Hin, Win, N, Hout, Wout);
    expectClose(gi1, gi2, 1e-5f, 1e-6f);
    expectClose(gg1, gg2, 1e-5f, 1e-5f);
    // Each gradient alone equals its part of the joint call.
    std::vector<float> gi3(input.size(), 1.0f), gg3(grid.size(), -1.0f);
    sk_grid_sample_backward(gi3.data(), nullptr, gout.data(), input.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
    sk_grid_sample_backward(nullptr, gg3.data(), gout.data(), input.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
    expectClose(gi3, gi1, 0, 0);
    expectClose(gg3, gg1, 0, 0);
}

TEST(GridSample, BackwardMatchesFiniteDifferences) {
    int64_t N = 2, C = 2, Hin = 5, Win = 6, Hout = 4, Wout = 7;
    auto input = randomVector(N * C * Hin * Win, 91);
    auto grid = kinkFreeGrid(N * Hout * Wout, Win, Hin, 92);
    auto gout = randomVector(N * C * Hout * Wout, 93);
    std::vector<float> gi(input.size(), 0.0f), gg(grid.size(), 0.0f);
    sk_grid_sample_backward(gi.data(), gg.data(), gout.data(), input.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
    auto fin = [&](const std::vector<float> &in) {
        std::vector<float> o(N * C * Hout * Wout);
        sk_grid_sample_forward(o.data(), in.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
        return o;
    };
    auto fgrid = [&](const std::vector<float> &g) {
        std::vector<float> o(N * C * Hout * Wout);
        sk_grid_sample_forward(o.data(), input.data(), g.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
        return o;
    };
    for (size_t i = 0; i < input.size(); i++) {
        double fd = finiteDifference(input, i, gout, fin, 1e-2f);
        ASSERT_NEAR(gi[i], fd, 1e-3 + 1e-3 * std::fabs(fd)) << "input at " << i;
    }
    // eps 1e-3 in normalised units moves ix by at most 1e-3 * W / 2 = 0.003 px, inside the 0.08 px margin.
    int nonzero = 0;
    for (size_t i = 0; i < grid.size(); i++) {
        double fd = finiteDifference(grid, i, gout, fgrid, 1e-3f);
        ASSERT_NEAR(gg[i], fd, 5e-3 + 5e-3 * std::fabs(fd)) << "grid at " << i;
        nonzero += gg[i] != 0.0f;
    }
    EXPECT_GT(nonzero, (int)grid.size() / 4);  // the test exercised real gradients, not only outside points
}

TEST(GridSample, VectorBlocksMatchNaive) {
    // Rows of 8-point blocks that are fully inside, fully outside and mixed, plus a tail (Wout = 21):
    // the optimised kernels take gathers, zero stores and the scalar path respectively.
    int64_t Nin = 2, C = 3, Hin = 13, Win = 10, Ng = 5, Hout = 6, Wout = 21;
    auto input = randomVector(Nin * C * Hin * Win, 101);
    std::vector<int64_t> index = {1, 0, 1, 1, 0};
    std::vector<float> grid(Ng * Hout * Wout * 2);
    std::mt19937 gen(102);
    std::uniform_real_distribution<float> inside(-0.85f, 0.85f), outside(1.3f, 3.0f), any(-1.5f, 1.5f);
    for (int64_t b = 0; b < Ng; b++)
        for (int64_t h = 0; h < Hout; h++)
            for (int64_t w = 0; w < Wout; w++) {
                float *g = &grid[((b * Hout + h) * Wout + w) * 2];
                switch (h % 3) {
                case 0: g[0] = inside(gen); g[1] = inside(gen); break;
                case 1: g[0] = (w % 2 ? 1.0f : -1.0f) * outside(gen); g[1] = any(gen); break;
                default: g[0] = any(gen); g[1] = any(gen); break;
                }
            }
    std::vector<float> o1(Ng * C * Hout * Wout), o2(o1.size());
    ASSERT_EQ(sk_grid_sample_forward(o1.data(), input.data(), grid.data(), index.data(), Nin, C, Hin, Win, Ng, Hout, Wout), SK_OK);
    ASSERT_EQ(sk_naive_grid_sample_forward(o2.data(), input.data(), grid.data(), index.data(), Nin, C, Hin, Win, Ng, Hout, Wout),
              SK_OK);
    expectClose(o1, o2, 1e-6f, 1e-6f);
    auto gout = randomVector(o1.size(), 103);
    for (int mode = 0; mode < 3; mode++) {  // both gradients, input only, grid only
        std::vector<float> gi1(input.size(), 0.5f), gi2(input.size(), 0.5f), gg1(grid.size(), 0.5f), gg2(grid.size(), 0.5f);
        float *a1 = mode == 2 ? nullptr : gi1.data(), *a2 = mode == 2 ? nullptr : gi2.data();
        float *b1 = mode == 1 ? nullptr : gg1.data(), *b2 = mode == 1 ? nullptr : gg2.data();
        sk_grid_sample_backward(a1, b1, gout.data(), input.data(), grid.data(), index.data(), Nin, C, Hin, Win, Ng, Hout, Wout);
        sk_naive_grid_sample_backward(a2, b2, gout.data(), input.data(), grid.data(), index.data(), Nin, C, Hin, Win, Ng, Hout, Wout);
        expectClose(gi1, gi2, 1e-5f, 1e-5f);
        expectClose(gg1, gg2, 1e-5f, 1e-5f);
    }
}

TEST(GridSample, InteriorBackwardMatchesFiniteDifferences) {
    // All points inside (fractional parts kept 0.08 px from the kinks): the vector gather path.
    int64_t N = 2, C = 3, Hin = 6, Win = 9, Hout = 3, Wout = 8;
    auto input = randomVector(N * C * Hin * Win, 111);
    auto grid = kinkFreeGrid(N * Hout * Wout, Win, Hin, 112, 0.08f, true);
    auto gout = randomVector(N * C * Hout * Wout, 113);
    std::vector<float> gi(input.size(), 0.0f), gg(grid.size(), 0.0f);
    sk_grid_sample_backward(gi.data(), gg.data(), gout.data(), input.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
    auto fin = [&](const std::vector<float> &in) {
        std::vector<float> o(N * C * Hout * Wout);
        sk_grid_sample_forward(o.data(), in.data(), grid.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
        return o;
    };
    auto fgrid = [&](const std::vector<float> &g) {
        std::vector<float> o(N * C * Hout * Wout);
        sk_grid_sample_forward(o.data(), input.data(), g.data(), nullptr, N, C, Hin, Win, N, Hout, Wout);
        return o;
    };
    for (size_t i = 0; i < input.size(); i++) {
        double fd = finiteDifference(input, i, gout, fin, 1e-2f);
        ASSERT_NEAR(gi[i], fd, 1e-3 + 1e-3 * std::fabs(fd)) << "input at " << i;
    }
    for (size_t i = 0; i < grid.size(); i++) {
        double fd = finiteDifference(grid, i, gout, fgrid, 1e-3f);
        ASSERT_NEAR(gg[i], fd, 5e-3 + 5e-3 * std::fabs(fd)) << "grid at " << i;
        ASSERT_NE(gg[i], 0.0f);
    }
}
