// Narrow convolutions (blocked input, a few NCHW output channels) against their naive twins on every
// instruction set this CPU has, and against finite differences.
#include "support.h"
#include <string>

namespace {

struct NarrowShape {
    int64_t N, C, H, W, O, kh, kw, ph, pw;
    int64_t Ho() const { return H + 2 * ph - kh + 1; }
    int64_t Wo() const { return W + 2 * pw - kw + 1; }
    size_t x() const { return (size_t)(N * C * H * W); }
    size_t w() const { return (size_t)(O * C * kh * kw); }
    size_t y() const { return (size_t)(N * O * Ho() * Wo()); }
};

const NarrowShape kShapes[] = {
    {3, 16, 9, 11, 4, 3, 3, 1, 1},   // the glimpse decoder's RGB + alpha head
    {2, 16, 8, 8, 1, 3, 3, 1, 1},    // the mask decoder's last layer
    {2, 32, 5, 6, 3, 1, 1, 0, 0},    // the component decoder's 1x1 output
    {2, 16, 6, 7, 3, 3, 3, 1, 1},    // the glimpse encoder's input gradient (3 channels)
    {3, 48, 4, 5, 8, 3, 2, 2, 0},    // non-square kernel, several blocks, all 8 outputs
    {1, 16, 3, 2, 5, 3, 3, 1, 1},    // a map smaller than the kernel: every position is a border
};

std::string describe(const NarrowShape &s) {
    char buf[120];
    snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld O%ld k%ldx%ld p%ld,%ld", (long)s.N, (long)s.C, (long)s.H, (long)s.W, (long)s.O,
             (long)s.kh, (long)s.kw, (long)s.ph, (long)s.pw);
    return buf;
}

}  // namespace

TEST(NarrowConv, MatchesNaiveOnEveryIsa) {
    IsaRestore restore;
    uint32_t seed = 900;
    for (const auto &s : kShapes) {
        if (s.Ho() < 1 || s.Wo() < 1) continue;
        auto x = randomVector(s.x(), seed++), w = randomVector(s.w(), seed++), b = randomVector((size_t)s.O, seed++);
        auto gy = randomVector(s.y(), seed++);
        std::vector<float> yRef(s.y()), gxRef(s.x()), gwRef = randomVector(s.w(), seed++), gbRef = randomVector((size_t)s.O, seed++);
        auto gw0 = gwRef, gb0 = gbRef;
        ASSERT_EQ(sk_naive_narrow_conv_forward(yRef.data(), x.data(), w.data(), b.data(), s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw), SK_OK);
        ASSERT_EQ(sk_naive_narrow_conv_backward(gxRef.data(), gwRef.data(), gbRef.data(), gy.data(), x.data(), w.data(),
                                                s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw), SK_OK);
        for (int level = SK_ISA_BASELINE; level <= sk_isa_supported(); level++) {
            SCOPED_TRACE(describe(s) + " isa " + sk_isa_name(level));
            sk_set_isa_level(level);
            std::vector<float> y(s.y(), -7.0f);
            ASSERT_EQ(sk_narrow_conv_forward(y.data(), x.data(), w.data(), b.data(), s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw), SK_OK);
            expectClose(y, yRef, 1e-5f, 1e-5f);
            std::vector<float> gx(s.x(), -7.0f);
            auto gw = gw0, gb = gb0;  // backward adds into the weight and bias gradients
            ASSERT_EQ(sk_narrow_conv_backward(gx.data(), gw.data(), gb.data(), gy.data(), x.data(), w.data(),
                                              s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw), SK_OK);
            expectClose(gx, gxRef, 1e-4f, 1e-5f);
            expectClose(gw, gwRef, 1e-4f, 1e-4f);
            expectClose(gb, gbRef, 1e-4f, 1e-4f);
            // Each gradient alone.
            std::vector<float> gxOnly(s.x(), -7.0f);
            ASSERT_EQ(sk_narrow_conv_backward(gxOnly.data(), nullptr, nullptr, gy.data(), nullptr, w.data(),
                                              s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw), SK_OK);
            expectClose(gxOnly, gxRef, 1e-4f, 1e-5f);
        }
    }
}

TEST(NarrowConv, BackwardMatchesFiniteDifferences) {
    const NarrowShape s = {2, 16, 4, 5, 3, 3, 3, 1, 1};
    auto x = randomVector(s.x(), 950), w = randomVector(s.w(), 951), b = randomVector((size_t)s.O, 952), gy = randomVector(s.y(), 953);
    std::vector<float> gx(s.x()), gw(s.w(), 0.0f), gb((size_t)s.O, 0.0f);
    ASSERT_EQ(sk_narrow_conv_backward(gx.data(), gw.data(), gb.data(), gy.data(), x.data(), w.data(), s.N, s.C, s.H, s.W, s.O,
                                      s.kh, s.kw, s.ph, s.pw), SK_OK);
    auto f = [&](const std::vector<float> &xv, const std::vector<float> &wv, const std::vector<float> &bv) {
        std::vector<float> y(s.y());
        sk_narrow_conv_forward(y.data(), xv.data(), wv.data(), bv.data(), s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.ph, s.pw);
        return y;
    };
    auto viaX = [&](const std::vector<float> &v) { return f(v, w, b); };
    auto viaW = [&](const std::vector<float> &v) { return f(x, v, b); };
    auto viaB = [&](const std::vector<float> &v) { return f(x, w, v); };
    for (size_t i = 0; i < x.size(); i += 7) ASSERT_NEAR(gx[i], finiteDifference(x, i, gy, viaX, 1e-2f), 2e-3) << "x " << i;
    for (size_t i = 0; i < w.size(); i += 5) ASSERT_NEAR(gw[i], finiteDifference(w, i, gy, viaW, 1e-2f), 2e-3) << "w " << i;
    for (size_t i = 0; i < b.size(); i++) ASSERT_NEAR(gb[i], finiteDifference(b, i, gy, viaB, 1e-2f), 2e-3) << "b " << i;
}

TEST(NarrowConv, RejectsWhatItCannotRun) {
    std::vector<float> x(2 * 16 * 4 * 4, 1.0f), w(9 * 16 * 3 * 3, 1.0f), y(4096);
    auto fwd = [&](int64_t C, int64_t O, int64_t ph) {
        return sk_narrow_conv_forward(y.data(), x.data(), w.data(), nullptr, 2, C, 4, 4, O, 3, 3, ph, ph);
    };
    EXPECT_EQ(fwd(16, 4, 1), SK_OK);
    EXPECT_EQ(fwd(24, 4, 1), SK_ERR_SHAPE);  // channels not in blocks of 16
    EXPECT_EQ(fwd(16, 9, 1), SK_ERR_SHAPE);  // more outputs than the kernel keeps in registers
    EXPECT_EQ(fwd(16, 0, 1), SK_ERR_SHAPE);
    EXPECT_EQ(fwd(16, 4, 3), SK_ERR_ARG);    // padding as large as the kernel
    EXPECT_EQ(fwd(16, 4, -1), SK_ERR_ARG);
}
