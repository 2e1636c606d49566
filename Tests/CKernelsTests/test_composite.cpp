// Glimpse compositing: the optimised kernels against their naive twins (forward and backward, with
// boxes covering the whole canvas, tiny and mirrored boxes, boxes partly or entirely off the canvas,
// importances large enough to overflow a naive exp), hand-computed cases, backward against finite
// differences (away from the pixel-centre kinks of bilinear sampling), status codes, NULL gradients,
// and that backward accumulates.
#include "support.h"

namespace {

struct CompositeShape { int64_t B, G2, Cv, Cs, Hg, Wg, H, W; };

struct CompositeInputs {
    std::vector<float> values, importance, summed, affine;
};

// (ax, bx, ay, by) for a cell of scale s and shift t per axis: the inverse of glimpse -> canvas.
void setAxis(float *a, float s, float t) { a[0] = 1.0f / s; a[1] = -t / s; }

// Affine parameters mixing the cases the kernels must handle, cycling through: typical SPACE boxes,
// boxes larger than the canvas, tiny boxes (|ax| ~ 100), mirrored (negative) scales, boxes partly
// off the canvas and boxes entirely off it. With allLarge, every box covers the whole canvas (every pixel
// is reached by every cell, so no cell contributes the constant importance 0).
std::vector<float> mixedAffine(int64_t N, uint32_t seed, bool allLarge = false) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> a(N * 4);
    for (int64_t n = 0; n < N; n++)
        for (int axis = 0; axis < 2; axis++) {
            float *p = a.data() + n * 4 + axis * 2;
            float t = -0.9f + 1.8f * u(gen);
            if (allLarge) t *= 0.2f;
            switch (allLarge ? 1 : n % 6) {
                case 0: setAxis(p, 0.1f + 0.3f * u(gen), t); break;
                case 1: setAxis(p, 1.2f + 2.0f * u(gen), t); break;
                case 2: setAxis(p, 0.005f + 0.01f * u(gen), t); break;
                case 3: setAxis(p, -(0.2f + 0.5f * u(gen)), t); break;
                case 4: setAxis(p, 0.3f + 0.3f * u(gen), u(gen) < 0.5f ? -1.1f : 1.1f); break;
                default: setAxis(p, 0.2f + 0.2f * u(gen), axis == 0 ? 2.5f : t); break;
            }
        }
    return a;
}

CompositeInputs randomInputs(const CompositeShape &s, uint32_t seed, bool allLarge = false) {
    const int64_t N = s.B * s.G2, g = s.Hg * s.Wg;
    CompositeInputs in;
    in.values = randomVector(N * s.Cv * g, seed, -1.0f, 1.0f);
    in.importance = randomVector(N * g, seed + 1, -5.0f, 100.0f);
    in.summed = randomVector(N * s.Cs * g, seed + 2, -1.0f, 1.0f);
    in.affine = mixedAffine(N, seed + 3, allLarge);
    return in;
}

struct CompositeOutputs { std::vector<float> out, lse; };

CompositeOutputs runForward(const CompositeShape &s, const CompositeInputs &in, bool naive) {
    CompositeOutputs r{std::vector<float>(s.B * (s.Cv + s.Cs) * s.H * s.W), std::vector<float>(s.B * s.H * s.W)};
    auto f = naive ? sk_naive_composite_forward : sk_composite_forward;
    EXPECT_EQ(f(r.out.data(), r.lse.data(), in.values.data(), in.importance.data(), s.Cs > 0 ? in.summed.data() : nullptr,
                in.affine.data(), s.B, s.G2, s.Cv, s.Cs, s.Hg, s.Wg, s.H, s.W),
              SK_OK);
    return r;
}

struct CompositeGrads { std::vector<float> values, importance, summed, affine; };

CompositeGrads runBackward(const CompositeShape &s, const CompositeInputs &in, const std::vector<float> &gout, bool naive,
                           float start) {
    const int64_t N = s.B * s.G2, g = s.Hg * s.Wg;
    CompositeGrads gr{std::vector<float>(N * s.Cv * g, start), std::vector<float>(N * g, start),
                      std::vector<float>(N * s.Cs * g, start), std::vector<float>(N * 4, start)};
    CompositeOutputs fw = runForward(s, in, false);
    auto f = naive ? sk_naive_composite_backward : sk_composite_backward;
    EXPECT_EQ(f(gr.values.data(), gr.importance.data(), s.Cs > 0 ? gr.summed.data() : nullptr, gr.affine.data(), gout.data(),
                fw.out.data(), fw.lse.data(), in.values.data(), in.importance.data(), s.Cs > 0 ? in.summed.data() : nullptr,
                in.affine.data(), s.B, s.G2, s.Cv, s.Cs, s.Hg, s.Wg, s.H, s.W),
              SK_OK);
    return gr;
}

float maxAbs(const std::vector<float> &v) {
    float m = 0.0f;
    for (float x : v) m = std::max(m, std::fabs(x));
    return m;
}

// Affine parameters whose sample positions on every canvas row and column keep at least `margin`
// pixels from every integer (the kinks of bilinear sampling, including the glimpse border), so finite
// differences of size < margin see a smooth function. Scales and shifts are drawn until that holds.
std::vector<float> kinkFreeAffine(const CompositeShape &s, uint32_t seed, float margin) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> scale(0.4f, 1.3f), shift(-0.6f, 0.6f);
    std::vector<float> a(s.B * s.G2 * 4);
    for (int64_t n = 0; n < s.B * s.G2; n++)
        for (int axis = 0; axis < 2; axis++) {
            const int64_t count = axis == 0 ? s.W : s.H, size = axis == 0 ? s.Wg : s.Hg;
            for (;;) {
                float *p = a.data() + n * 4 + axis * 2;
                setAxis(p, scale(gen), shift(gen));
                bool ok = true;
                for (int64_t k = 0; k < count && ok; k++) {
                    double g = (double)p[0] * sk_affine_grid_base(k, count) + p[1];
                    double ip = ((g + 1.0) * size - 1.0) / 2.0, frac = ip - std::floor(ip);
                    ok = frac > margin && frac < 1.0 - margin;
                }
                if (ok) break;
            }
        }
    return a;
}

}  // namespace

TEST(Composite, ForwardMatchesNaiveOnEveryIsa) {
    IsaRestore restore;
    // The last shape has a canvas wider than a vector of any ISA and boxes of every width.
    for (CompositeShape s : {CompositeShape{2, 6, 3, 2, 6, 7, 13, 17}, CompositeShape{1, 12, 4, 1, 8, 8, 16, 16},
                             CompositeShape{3, 7, 1, 0, 5, 4, 9, 11}, CompositeShape{2, 6, 0, 1, 4, 4, 8, 8},
                             CompositeShape{1, 24, 4, 0, 32, 32, 41, 70}}) {
        for (bool allLarge : {false, true}) {
            auto in = randomInputs(s, 101, allLarge);
            auto naive = runForward(s, in, true);
            for (int level : isaLevels()) {
                SCOPED_TRACE(std::string("isa ") + sk_isa_name(level) + (allLarge ? ", all large" : ""));
                sk_set_isa_level(level);
                auto fast = runForward(s, in, false);
                expectClose(fast.lse, naive.lse, 1e-6f, 1e-5f);
                expectClose(fast.out, naive.out, 1e-5f, 1e-5f);
            }
        }
    }
}

TEST(Composite, ExtremeAffineMatchesNaive) {
    // Degenerate transforms: near-zero scales (|ax| = 1e9: a box of at most a pixel; the first cell's
    // is the canvas centre pixel), an enormous scale (ax = 1e-30: every pixel samples
    // the glimpse centre), ax = 0 (constant sample), and non-finite parameters (sample nothing).
    CompositeShape s{1, 8, 2, 1, 5, 6, 11, 9};
    auto in = randomInputs(s, 505);
    in.affine = {1e9f, 0.0f, 1e9f, 0.0f,        -1e9f, 0.55e9f, 2.0f, 0.1f,  1e-30f, 0.0f, 1e-30f, 0.0f,
                 0.0f, 0.5f, 0.0f, -0.5f,        NAN, 0.0f, 1.0f, 0.0f,      INFINITY, 0.0f, 1.0f, 0.0f,
                 1.0f, NAN, 1.0f, 0.0f,          3.0f, 0.2f, -2.5f, 0.3f};
    // Centre the first box on pixel (5, 4) whatever the rounding of its base coordinates (0 up to rounding).
    in.affine[1] = -(in.affine[0] * sk_affine_grid_base(4, s.W));
    in.affine[3] = -(in.affine[2] * sk_affine_grid_base(5, s.H));
    auto naive = runForward(s, in, true);
    {
        IsaRestore restore;
        for (int level : isaLevels()) {
            SCOPED_TRACE(std::string("isa ") + sk_isa_name(level));
            sk_set_isa_level(level);
            auto fast = runForward(s, in, false);
            expectClose(fast.lse, naive.lse, 1e-6f, 1e-5f);
            expectClose(fast.out, naive.out, 1e-5f, 1e-5f);
        }
    }
    auto gout = randomVector(s.B * (s.Cv + s.Cs) * s.H * s.W, 506);
    auto gf = runBackward(s, in, gout, false, 0.0f), gn = runBackward(s, in, gout, true, 0.0f);
    expectClose(gf.values, gn.values, 1e-4f, 1e-5f * maxAbs(gn.values) + 1e-6f);
    expectClose(gf.importance, gn.importance, 1e-4f, 1e-5f * maxAbs(gn.importance) + 1e-6f);
    expectClose(gf.summed, gn.summed, 1e-4f, 1e-5f * maxAbs(gn.summed) + 1e-6f);
    // The one-pixel box samples glimpse point (2.5, 2) (up to rounding): the summed gradient reaches its pixels.
    EXPECT_NE(gf.summed[2 * s.Wg + 2], 0.0f);
    EXPECT_NE(gf.summed[2 * s.Wg + 3], 0.0f);
    // The affine gradient of the |ax| = 1e9 cells is ~1e9 times the others: compare cell by cell.
    for (int64_t n = 0; n < s.G2; n++) {
        std::vector<float> a(gf.affine.begin() + n * 4, gf.affine.begin() + n * 4 + 4);
        std::vector<float> b(gn.affine.begin() + n * 4, gn.affine.begin() + n * 4 + 4);
        expectClose(a, b, 1e-4f, 1e-5f * maxAbs(b) + 1e-6f);
    }
}

TEST(Composite, HandComputedCases) {
    // One 4 x 4 glimpse pasted with the identity onto a 4 x 4 canvas: every pixel centre samples its own
    // glimpse pixel. With G2 = 1 the softmax weight is 1, so out = values and the sum = summed.
    CompositeShape s{1, 1, 2, 1, 4, 4, 4, 4};
    CompositeInputs in;
    in.values = randomVector(2 * 16, 5);
    in.importance = randomVector(16, 6, 0.0f, 50.0f);
    in.summed = randomVector(16, 7);
    in.affine = {1, 0, 1, 0};
    auto r = runForward(s, in, false);
    std::vector<float> expected = in.values;
    expected.insert(expected.end(), in.summed.begin(), in.summed.end());
    expectClose(r.out, expected, 1e-6f, 1e-6f);
    expectClose(r.lse, in.importance, 1e-6f, 1e-6f);

    // Two cells over the same pixels with importances 100 and 90 (exp(100) overflows float): weights
    // 1 / (1 + e^-10) and e^-10 / (1 + e^-10); a third cell entirely off the canvas adds exp(0 - 100).
    s = {1, 3, 1, 0, 4, 4, 4, 4};
    in.values.assign(48, 0.0f);
    for (int k = 0; k < 16; k++) { in.values[k] = 1.0f; in.values[16 + k] = -2.0f; in.values[32 + k] = 7.0f; }
    in.importance.assign(48, 0.0f);
    for (int k = 0; k < 16; k++) { in.importance[k] = 100.0f; in.importance[16 + k] = 90.0f; in.importance[32 + k] = 5.0f; }
    in.affine = {1, 0, 1, 0, 1, 0, 1, 0, 1, -5, 1, 0};
    r = runForward(s, in, false);
    double e = std::exp(-10.0), z = std::exp(-100.0), den = 1.0 + e + z;
    for (int k = 0; k < 16; k++) {
        EXPECT_NEAR(r.out[k], (1.0 - 2.0 * e) / den, 1e-6);
        EXPECT_NEAR(r.lse[k], 100.0 + std::log(den), 1e-5);
    }

    // No cell reaches the canvas: the weighted blend is 0 and lse = log(G2) (G2 importances of 0).
    in.affine = {1, 5, 1, 0, 1, -5, 1, 0, 1, 0, 1, 9};
    r = runForward(s, in, false);
    for (int k = 0; k < 16; k++) {
        EXPECT_EQ(r.out[k], 0.0f);
        EXPECT_NEAR(r.lse[k], std::log(3.0), 1e-6);
    }
}

TEST(Composite, BackwardMatchesNaiveAndAccumulates) {
    for (CompositeShape s : {CompositeShape{2, 6, 3, 2, 6, 7, 13, 17}, CompositeShape{1, 12, 4, 1, 8, 8, 16, 16},
                             CompositeShape{3, 7, 1, 0, 5, 4, 9, 11}}) {
        auto in = randomInputs(s, 202, s.G2 == 12);
        auto gout = randomVector(s.B * (s.Cv + s.Cs) * s.H * s.W, 203);
        auto fast = runBackward(s, in, gout, false, 0.5f), naive = runBackward(s, in, gout, true, 0.0f);
        // Starting from 0.5 checks that backward adds; tolerance relative to each gradient's magnitude.
        for (auto *pair : {&fast.values, &fast.importance, &fast.summed, &fast.affine})
            for (float &x : *pair) x -= 0.5f;
        expectClose(fast.values, naive.values, 1e-4f, 1e-5f * maxAbs(naive.values) + 1e-6f);
        expectClose(fast.importance, naive.importance, 1e-4f, 1e-5f * maxAbs(naive.importance) + 1e-6f);
        expectClose(fast.summed, naive.summed, 1e-4f, 1e-5f * maxAbs(naive.summed) + 1e-6f);
        expectClose(fast.affine, naive.affine, 1e-4f, 1e-5f * maxAbs(naive.affine) + 1e-6f);
        EXPECT_GT(maxAbs(naive.affine), 0.0f);
        EXPECT_GT(maxAbs(naive.importance), 0.0f);
    }
}

TEST(Composite, BackwardMatchesFiniteDifferences) {
    CompositeShape s{2, 3, 2, 1, 4, 5, 7, 6};
    auto in = randomInputs(s, 303);
    in.affine = kinkFreeAffine(s, 304, 0.12f);
    in.importance = randomVector(in.importance.size(), 305, -2.0f, 3.0f);
    auto gout = randomVector(s.B * (s.Cv + s.Cs) * s.H * s.W, 306);
    auto gr = runBackward(s, in, gout, false, 0.0f);
    auto check = [&](std::vector<float> &x, const std::vector<float> &g, const char *name, float eps) {
        auto f = [&](const std::vector<float> &) { return runForward(s, in, false).out; };
        float scale = maxAbs(g);
        ASSERT_GT(scale, 0.0f) << name;
        for (size_t i = 0; i < x.size(); i++) {
            double fd = finiteDifference(x, i, gout, f, eps);
            ASSERT_NEAR(g[i], fd, 2e-3 * scale + 2e-3 * std::fabs(fd)) << name << " at " << i;
        }
    };
    check(in.values, gr.values, "values", 1e-2f);
    check(in.importance, gr.importance, "importance", 1e-2f);
    check(in.summed, gr.summed, "summed", 1e-2f);
    check(in.affine, gr.affine, "affine", 2e-3f);
}

TEST(Composite, NullGradientsAreSkipped) {
    CompositeShape s{2, 6, 3, 2, 6, 7, 13, 17};
    auto in = randomInputs(s, 404);
    auto gout = randomVector(s.B * (s.Cv + s.Cs) * s.H * s.W, 405);
    auto all = runBackward(s, in, gout, false, 0.0f);
    auto fw = runForward(s, in, false);
    std::vector<float> ga(s.B * s.G2 * 4, 0.0f);
    ASSERT_EQ(sk_composite_backward(nullptr, nullptr, nullptr, ga.data(), gout.data(), fw.out.data(), fw.lse.data(),
                                    in.values.data(), in.importance.data(), in.summed.data(), in.affine.data(), s.B, s.G2,
                                    s.Cv, s.Cs, s.Hg, s.Wg, s.H, s.W),
              SK_OK);
    expectClose(ga, all.affine, 0.0f, 0.0f);
    std::vector<float> gi(s.B * s.G2 * s.Hg * s.Wg, 0.0f);
    ASSERT_EQ(sk_composite_backward(nullptr, gi.data(), nullptr, nullptr, gout.data(), fw.out.data(), fw.lse.data(),
                                    in.values.data(), in.importance.data(), in.summed.data(), in.affine.data(), s.B, s.G2,
                                    s.Cv, s.Cs, s.Hg, s.Wg, s.H, s.W),
              SK_OK);
    expectClose(gi, all.importance, 0.0f, 0.0f);
}

TEST(Composite, StatusCodes) {
    std::vector<float> buf(4096, 0.0f);
    float *p = buf.data();
    EXPECT_EQ(sk_composite_forward(p, p, p, p, p, p, 1, 0, 1, 0, 4, 4, 4, 4), SK_ERR_ARG);        // G2 = 0
    EXPECT_EQ(sk_composite_forward(p, p, p, p, nullptr, p, 1, 1, 1, 1, 4, 4, 4, 4), SK_ERR_ARG);  // summed missing
    EXPECT_EQ(sk_naive_composite_forward(p, p, p, p, p, p, 1, 1, 1, 0, 0, 4, 4, 4), SK_ERR_ARG);  // empty glimpse
    EXPECT_EQ(sk_composite_backward(p, p, p, p, p, p, p, p, p, p, p, 1, 1, 1, 0, 4, 4, 0, 4), SK_ERR_ARG);  // empty canvas
    EXPECT_EQ(sk_naive_composite_backward(p, p, p, p, p, p, p, p, p, p, p, 1, 1, -1, 0, 4, 4, 4, 4), SK_ERR_ARG);
    EXPECT_EQ(sk_composite_forward(p, p, p, p, nullptr, p, 0, 4, 1, 0, 4, 4, 4, 4), SK_OK);  // no images: nothing to do
}
