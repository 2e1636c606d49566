// Convolution kernels: im2col + sgemm forward/backward vs the direct-loop oracles (every path: tiny maps
// gathered into one sgemm, per-image sgemm on large maps, 1x1 without im2col; grad input as a
// transposed convolution at stride 1 or folded back otherwise), chunk boundaries, accumulation,
// finite differences, and status codes.
#include "support.h"

namespace {

struct ConvShape {
    int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw;
    int64_t Ho() const { return (H + 2 * ph - kh) / sh + 1; }
    int64_t Wo() const { return (W + 2 * pw - kw) / sw + 1; }
    size_t xCount() const { return (size_t)(N * C * H * W); }
    size_t wCount() const { return (size_t)(O * C * kh * kw); }
    size_t yCount() const { return (size_t)(N * O * Ho() * Wo()); }
};

const ConvShape kShapes[] = {
    {5, 3, 4, 4, 4, 3, 3, 1, 1, 1, 1},     // tiny maps, 3x3 pad 1 (glimpse encoder)
    {7, 4, 9, 7, 5, 2, 3, 2, 1, 1, 2},     // non-square kernel, different strides and pads per dim
    {3, 4, 40, 37, 5, 3, 2, 2, 3, 2, 0},   // strided, below the per-image threshold
    {3, 8, 40, 40, 6, 1, 1, 1, 1, 0, 0},   // 1x1 on large maps: no im2col
    {6, 8, 5, 5, 6, 1, 1, 1, 1, 0, 0},     // 1x1 on small maps: gathered
    {9, 5, 1, 1, 7, 1, 1, 1, 1, 0, 0},     // 1x1 on 1x1 maps: one dense sgemm
    {6, 3, 4, 3, 5, 4, 3, 2, 1, 0, 0},     // kernel covering the whole map: dense too
    {4, 2, 2, 2, 3, 3, 3, 1, 1, 1, 1},     // 2x2 maps, 3x3 pad 1
    {2, 3, 33, 34, 6, 3, 3, 1, 1, 1, 1},   // per-image sgemm with im2col
    {3, 3, 64, 64, 6, 4, 4, 2, 2, 1, 1},   // 4x4 stride 2 (encoder downsampling), 32x32 out
    {2, 2, 3, 2, 3, 5, 4, 1, 1, 2, 1},     // kernel larger than the input, made to fit by padding
    {3, 2, 7, 9, 2, 3, 3, 3, 2, 0, 1},     // stride that skips input rows/cols
    {40, 16, 4, 4, 8, 3, 3, 1, 1, 1, 1},   // enough tiny maps for im2col/col2im to run on threads
    {24, 8, 8, 8, 16, 4, 4, 2, 2, 1, 1},   // the same, strided
    {3, 2, 4, 5, 3, 1, 1, 1, 1, 1, 0},     // stride 1 but padding >= kernel: grad input by row2im, not
    {1, 2, 30, 34, 3, 3, 3, 1, 1, 3, 0},   // the transposed convolution (small map, then large map)
};

std::vector<int64_t> chunksFor(int64_t N) { return {0, 1, 2, N - 1, N, N + 3}; }

std::vector<float> forward(const ConvShape &s, const std::vector<float> &x, const std::vector<float> &w,
                           const float *b, int64_t chunk, bool naive) {
    std::vector<float> y(s.yCount(), -7.0f);
    int st = naive ? sk_naive_conv2d_forward(y.data(), x.data(), w.data(), b, s.N, s.C, s.H, s.W, s.O, s.kh, s.kw,
                                             s.sh, s.sw, s.ph, s.pw)
                   : sk_conv2d_forward(y.data(), nullptr, x.data(), w.data(), b, s.N, s.C, s.H, s.W, s.O, s.kh, s.kw,
                                       s.sh, s.sw, s.ph, s.pw, chunk);
    EXPECT_EQ(st, SK_OK);
    return y;
}

std::string describe(const ConvShape &s, int64_t chunk) {
    char buf[200];
    snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld O%ld k%ldx%ld s%ld,%ld p%ld,%ld chunk %ld", (long)s.N, (long)s.C,
             (long)s.H, (long)s.W, (long)s.O, (long)s.kh, (long)s.kw, (long)s.sh, (long)s.sw, (long)s.ph, (long)s.pw,
             (long)chunk);
    return buf;
}

}  // namespace

TEST(Conv2d, ForwardMatchesNaive) {
    uint32_t seed = 100;
    for (const auto &s : kShapes) {
        auto x = randomVector(s.xCount(), seed++), w = randomVector(s.wCount(), seed++), b = randomVector(s.O, seed++);
        auto ref = forward(s, x, w, b.data(), 0, true);
        auto refNoBias = forward(s, x, w, nullptr, 0, true);
        for (int64_t chunk : chunksFor(s.N)) {
            SCOPED_TRACE(describe(s, chunk));
            expectClose(forward(s, x, w, b.data(), chunk, false), ref, 1e-5f, 1e-5f);
            expectClose(forward(s, x, w, nullptr, chunk, false), refNoBias, 1e-5f, 1e-5f);
        }
    }
}

TEST(Conv2d, CallerWorkspaceGivesSameResult) {
    const ConvShape s = {11, 6, 4, 4, 5, 3, 3, 1, 1, 1, 1};
    auto x = randomVector(s.xCount(), 1), w = randomVector(s.wCount(), 2), b = randomVector(s.O, 3);
    for (int64_t chunk : {0, 4}) {
        int64_t n = sk_conv2d_workspace(s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk);
        ASSERT_GT(n, 0);
        std::vector<float> work((size_t)n, NAN), y(s.yCount());
        ASSERT_EQ(sk_conv2d_forward(y.data(), work.data(), x.data(), w.data(), b.data(), s.N, s.C, s.H, s.W, s.O,
                                    s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk), SK_OK);
        expectClose(y, forward(s, x, w, b.data(), 0, true), 1e-5f, 1e-5f);
    }
}

TEST(Conv2d, BackwardMatchesNaiveAndAccumulates) {
    uint32_t seed = 200;
    for (const auto &s : kShapes) {
        auto x = randomVector(s.xCount(), seed++), w = randomVector(s.wCount(), seed++), gy = randomVector(s.yCount(), seed++);
        // Start from non-zero gradients: backward must add into them.
        auto gx0 = randomVector(s.xCount(), seed++), gw0 = randomVector(s.wCount(), seed++), gb0 = randomVector(s.O, seed++);
        auto rgx = gx0, rgw = gw0, rgb = gb0;
        ASSERT_EQ(sk_naive_conv2d_backward(rgx.data(), rgw.data(), rgb.data(), gy.data(), x.data(), w.data(),
                                           s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw), SK_OK);
        for (int64_t chunk : chunksFor(s.N)) {
            SCOPED_TRACE(describe(s, chunk));
            auto gx = gx0, gw = gw0, gb = gb0;
            ASSERT_EQ(sk_conv2d_backward(gx.data(), gw.data(), gb.data(), nullptr, gy.data(), x.data(), w.data(),
                                         s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk), SK_OK);
            expectClose(gx, rgx, 1e-4f, 1e-4f);
            expectClose(gw, rgw, 1e-4f, 1e-4f);
            expectClose(gb, rgb, 1e-4f, 1e-4f);
            // Each gradient alone (the others NULL, and the input they do not need NULL too).
            auto gxOnly = gx0, gwOnly = gw0, gbOnly = gb0;
            ASSERT_EQ(sk_conv2d_backward(gxOnly.data(), nullptr, nullptr, nullptr, gy.data(), nullptr, w.data(),
                                         s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk), SK_OK);
            ASSERT_EQ(sk_conv2d_backward(nullptr, gwOnly.data(), nullptr, nullptr, gy.data(), x.data(), nullptr,
                                         s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk), SK_OK);
            ASSERT_EQ(sk_conv2d_backward(nullptr, nullptr, gbOnly.data(), nullptr, gy.data(), nullptr, nullptr,
                                         s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, chunk), SK_OK);
            expectClose(gxOnly, rgx, 1e-4f, 1e-4f);
            expectClose(gwOnly, rgw, 1e-4f, 1e-4f);
            expectClose(gbOnly, rgb, 1e-4f, 1e-4f);
        }
    }
}

TEST(Conv2d, BackwardMatchesFiniteDifferences) {
    const ConvShape s = {2, 2, 5, 4, 3, 3, 2, 2, 1, 1, 1};
    auto x = randomVector(s.xCount(), 300), w = randomVector(s.wCount(), 301), b = randomVector(s.O, 302);
    auto gy = randomVector(s.yCount(), 303);
    std::vector<float> gx(s.xCount(), 0.0f), gw(s.wCount(), 0.0f), gb(s.O, 0.0f);
    ASSERT_EQ(sk_conv2d_backward(gx.data(), gw.data(), gb.data(), nullptr, gy.data(), x.data(), w.data(),
                                 s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, 0), SK_OK);
    // The loss sum(y * gy) is linear in each argument, so central differences are exact up to round-off.
    auto viaX = [&](const std::vector<float> &v) { return forward(s, v, w, b.data(), 0, false); };
    auto viaW = [&](const std::vector<float> &v) { return forward(s, x, v, b.data(), 0, false); };
    auto viaB = [&](const std::vector<float> &v) { return forward(s, x, w, v.data(), 0, false); };
    for (size_t i = 0; i < x.size(); i++) ASSERT_NEAR(gx[i], finiteDifference(x, i, gy, viaX, 1e-2f), 2e-3) << "x " << i;
    for (size_t i = 0; i < w.size(); i++) ASSERT_NEAR(gw[i], finiteDifference(w, i, gy, viaW, 1e-2f), 2e-3) << "w " << i;
    for (size_t i = 0; i < b.size(); i++) ASSERT_NEAR(gb[i], finiteDifference(b, i, gy, viaB, 1e-2f), 2e-3) << "b " << i;
}

TEST(Conv2d, RejectsImpossibleSizes) {
    std::vector<float> x(2 * 3 * 4 * 4, 1.0f), w(5 * 3 * 3 * 3, 1.0f), y(1000, -7.0f), g(1000, 0.0f);
    auto fwd = [&](int64_t N, int64_t H, int64_t kh, int64_t sh, int64_t ph) {
        return sk_conv2d_forward(y.data(), nullptr, x.data(), w.data(), nullptr, N, 3, H, 4, 5, kh, 3, sh, 1, ph, 1, 0);
    };
    EXPECT_EQ(fwd(2, 4, 3, 1, 0), SK_OK);
    EXPECT_EQ(fwd(2, 1, 3, 1, 0), SK_ERR_SHAPE);  // output height 1 + 0 - 3 + 1 <= 0
    EXPECT_EQ(fwd(2, 4, 7, 1, 1), SK_ERR_SHAPE);  // kernel taller than the padded input
    EXPECT_EQ(fwd(2, 4, 0, 1, 0), SK_ERR_SHAPE);  // empty kernel
    EXPECT_EQ(fwd(-1, 4, 3, 1, 0), SK_ERR_SHAPE);
    EXPECT_EQ(fwd(2, 4, 3, 0, 0), SK_ERR_ARG);    // stride 0
    EXPECT_EQ(fwd(2, 4, 3, 1, -1), SK_ERR_ARG);   // negative padding
    EXPECT_EQ(sk_naive_conv2d_forward(y.data(), x.data(), w.data(), nullptr, 2, 3, 1, 4, 5, 3, 3, 1, 1, 0, 1), SK_ERR_SHAPE);
    EXPECT_EQ(sk_conv2d_backward(g.data(), nullptr, nullptr, nullptr, y.data(), x.data(), w.data(), 2, 3, 1, 4, 5, 3, 3, 1, 1, 0, 1, 0),
              SK_ERR_SHAPE);
    EXPECT_EQ(sk_conv2d_workspace(2, 3, 1, 4, 5, 3, 3, 1, 1, 0, 1, 0), -1);
    // A failed call writes nothing; an empty batch is fine and writes nothing either.
    std::vector<float> y2(1000, -7.0f), untouched(1000, -7.0f);
    EXPECT_EQ(sk_conv2d_forward(y2.data(), nullptr, x.data(), w.data(), nullptr, 2, 3, 1, 4, 5, 3, 3, 1, 1, 0, 1, 0), SK_ERR_SHAPE);
    EXPECT_EQ(sk_conv2d_forward(y2.data(), nullptr, x.data(), w.data(), nullptr, 0, 3, 4, 4, 5, 3, 3, 1, 1, 0, 1, 0), SK_OK);
    expectClose(y2, untouched, 0, 0);
}

TEST(Conv2d, WorkspaceStaysBoundedOnSpaceShapes) {
    // {N, C, H, W, O, kh, kw, sh, sw, ph, pw}: glimpse encoder on B*G*G glimpses, image encoder layers, 1x1s.
    const ConvShape shapes[] = {
        {3072, 128, 4, 4, 128, 3, 3, 1, 1, 1, 1}, {3072, 64, 8, 8, 128, 4, 4, 2, 2, 1, 1}, {36, 32, 130, 130, 32, 3, 3, 1, 1, 1, 1},
        {12, 3, 128, 128, 16, 4, 4, 2, 2, 1, 1},   {12, 128, 16, 16, 128, 1, 1, 1, 1, 0, 0}, {3072, 128, 1, 1, 256, 1, 1, 1, 1, 0, 0},
    };
    for (const auto &s : shapes) {
        int64_t n = sk_conv2d_workspace(s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, 0);
        int64_t perImage = s.C * s.kh * s.kw * s.Ho() * s.Wo();
        SCOPED_TRACE(describe(s, 0));
        EXPECT_GE(n, 0);
        // 64 MB, unless a single image's im2col matrix alone is larger.
        EXPECT_LE(n, std::max<int64_t>((int64_t)16 << 20, 2 * perImage));
    }
    // Yet the glimpse encoder's tiny maps are unfolded for enough images at once that its sgemm gets
    // thousands of columns: room for at least 2048 output positions of im2col matrix.
    const ConvShape &g = shapes[0];
    EXPECT_GE(sk_conv2d_workspace(g.N, g.C, g.H, g.W, g.O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, 0), 2048 * g.C * g.kh * g.kw);
}
