// Normalisation kernels: group norm and batch norm against their naive twins, backward against finite
// differences, running-statistics updates, status codes, and that backward accumulates.
#include "support.h"

namespace {

struct NormShape { int64_t N, C, S, G; };

std::vector<float> groupNormOut(const std::vector<float> &x, const std::vector<float> &w, const std::vector<float> &b,
                                const NormShape &s, bool affine) {
    std::vector<float> y(x.size()), mean(s.N * s.G), rstd(s.N * s.G);
    sk_naive_group_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), affine ? w.data() : nullptr,
                                affine ? b.data() : nullptr, s.N, s.C, s.S, s.G, 1e-5f);
    return y;
}

}  // namespace

TEST(GroupNorm, ForwardMatchesNaive) {
    for (NormShape s : {NormShape{2, 6, 5, 1}, NormShape{2, 6, 5, 3}, NormShape{3, 8, 16, 8}, NormShape{1, 4, 1, 2},
                        NormShape{4, 32, 64, 4}}) {
        for (bool affine : {false, true}) {
            size_t n = s.N * s.C * s.S;
            auto x = randomVector(n, 11, -2.0f, 3.0f), w = randomVector(s.C, 12, 0.5f, 1.5f), b = randomVector(s.C, 13);
            std::vector<float> y1(n), y2(n), m1(s.N * s.G), m2(s.N * s.G), r1(s.N * s.G), r2(s.N * s.G);
            const float *wp = affine ? w.data() : nullptr, *bp = affine ? b.data() : nullptr;
            ASSERT_EQ(sk_group_norm_forward(y1.data(), m1.data(), r1.data(), x.data(), wp, bp, s.N, s.C, s.S, s.G, 1e-5f), SK_OK);
            ASSERT_EQ(sk_naive_group_norm_forward(y2.data(), m2.data(), r2.data(), x.data(), wp, bp, s.N, s.C, s.S, s.G, 1e-5f), SK_OK);
            expectClose(m1, m2, 1e-6f, 1e-6f);
            expectClose(r1, r2, 1e-6f, 1e-6f);
            expectClose(y1, y2, 1e-5f, 1e-5f);
        }
    }
}

TEST(GroupNorm, HandComputedValues) {
    // One sample, 2 channels, 1 group, 2 positions: x = [1, 2 | 3, 4]. mean 2.5, biased var
    // ((1.5^2 + 0.5^2) * 2) / 4 = 1.25, rstd = 1/sqrt(1.25 + 1e-5). y = (x - 2.5) * rstd * w[c] + b[c].
    std::vector<float> x = {1, 2, 3, 4}, w = {2, -1}, b = {0.5f, 0}, y(4), mean(1), rstd(1);
    ASSERT_EQ(sk_group_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), 1, 2, 2, 1, 1e-5f), SK_OK);
    double r = 1.0 / std::sqrt(1.25 + 1e-5);
    EXPECT_FLOAT_EQ(mean[0], 2.5f);
    EXPECT_FLOAT_EQ(rstd[0], (float)r);
    expectClose(y, {(float)(-1.5 * r * 2 + 0.5), (float)(-0.5 * r * 2 + 0.5), (float)(0.5 * r * -1), (float)(1.5 * r * -1)},
                1e-6f, 1e-6f);
}

TEST(GroupNorm, RejectsIndivisibleGroups) {
    std::vector<float> x(12), y(12), m(8), r(8), g(12);
    EXPECT_EQ(sk_group_norm_forward(y.data(), m.data(), r.data(), x.data(), nullptr, nullptr, 1, 6, 2, 4, 1e-5f), SK_ERR_SHAPE);
    EXPECT_EQ(sk_naive_group_norm_forward(y.data(), m.data(), r.data(), x.data(), nullptr, nullptr, 1, 6, 2, 0, 1e-5f), SK_ERR_SHAPE);
    EXPECT_EQ(sk_group_norm_backward(g.data(), nullptr, nullptr, y.data(), m.data(), r.data(), x.data(), nullptr, 1, 6, 2, 4),
              SK_ERR_SHAPE);
}

TEST(GroupNorm, BackwardMatchesNaiveAndAccumulates) {
    NormShape s{3, 8, 10, 4};
    size_t n = s.N * s.C * s.S;
    auto x = randomVector(n, 21, -2.0f, 2.0f), w = randomVector(s.C, 22, 0.5f, 1.5f), b = randomVector(s.C, 23);
    auto gy = randomVector(n, 24);
    std::vector<float> y(n), mean(s.N * s.G), rstd(s.N * s.G);
    sk_group_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), s.N, s.C, s.S, s.G, 1e-5f);
    std::vector<float> gx1(n, 0.5f), gx2(n, 0.5f), gw1(s.C, 1.0f), gw2(s.C, 1.0f), gb1(s.C, -1.0f), gb2(s.C, -1.0f);
    sk_group_norm_backward(gx1.data(), gw1.data(), gb1.data(), gy.data(), mean.data(), rstd.data(), x.data(), w.data(),
                           s.N, s.C, s.S, s.G);
    sk_naive_group_norm_backward(gx2.data(), gw2.data(), gb2.data(), gy.data(), mean.data(), rstd.data(), x.data(), w.data(),
                                 s.N, s.C, s.S, s.G);
    expectClose(gx1, gx2, 1e-4f, 1e-5f);
    expectClose(gw1, gw2, 1e-5f, 1e-5f);
    expectClose(gb1, gb2, 1e-5f, 1e-5f);
    // Accumulation: a second call doubles the increment over the initial 0.5 / 1 / -1.
    std::vector<float> gx3(n, 0.0f);
    sk_group_norm_backward(gx3.data(), nullptr, nullptr, gy.data(), mean.data(), rstd.data(), x.data(), w.data(),
                           s.N, s.C, s.S, s.G);
    for (size_t i = 0; i < n; i++) ASSERT_NEAR(gx1[i], 0.5f + gx3[i], 1e-6f);
}

TEST(GroupNorm, BackwardMatchesFiniteDifferences) {
    for (bool affine : {true, false}) {
        NormShape s{2, 6, 4, 3};
        size_t n = s.N * s.C * s.S;
        auto x = randomVector(n, 31, -2.0f, 2.0f), w = randomVector(s.C, 32, 0.5f, 1.5f), b = randomVector(s.C, 33);
        auto gy = randomVector(n, 34);
        std::vector<float> y(n), mean(s.N * s.G), rstd(s.N * s.G);
        sk_group_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), affine ? w.data() : nullptr,
                              affine ? b.data() : nullptr, s.N, s.C, s.S, s.G, 1e-5f);
        std::vector<float> gx(n, 0.0f), gw(s.C, 0.0f), gb(s.C, 0.0f);
        sk_group_norm_backward(gx.data(), affine ? gw.data() : nullptr, affine ? gb.data() : nullptr, gy.data(),
                               mean.data(), rstd.data(), x.data(), affine ? w.data() : nullptr, s.N, s.C, s.S, s.G);
        auto fx = [&](const std::vector<float> &v) { return groupNormOut(v, w, b, s, affine); };
        for (size_t i = 0; i < n; i++) {
            double fd = finiteDifference(x, i, gy, fx, 1e-2f);
            ASSERT_NEAR(gx[i], fd, 2e-3 + 5e-3 * std::fabs(fd)) << "x at " << i;
        }
        if (!affine) continue;
        auto fw = [&](const std::vector<float> &v) { return groupNormOut(x, v, b, s, true); };
        auto fb = [&](const std::vector<float> &v) { return groupNormOut(x, w, v, s, true); };
        for (size_t c = 0; c < (size_t)s.C; c++) {
            double fdw = finiteDifference(w, c, gy, fw, 1e-2f), fdb = finiteDifference(b, c, gy, fb, 1e-2f);
            ASSERT_NEAR(gw[c], fdw, 2e-3 + 5e-3 * std::fabs(fdw)) << "weight at " << c;
            ASSERT_NEAR(gb[c], fdb, 2e-3 + 5e-3 * std::fabs(fdb)) << "bias at " << c;
        }
    }
}

namespace {

std::vector<float> batchNormOut(const std::vector<float> &x, const std::vector<float> &w, const std::vector<float> &b,
                                std::vector<float> rm, std::vector<float> rv, int64_t N, int64_t C, int64_t S, int training) {
    std::vector<float> y(x.size()), mean(C), rstd(C);
    sk_naive_batch_norm_forward(y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), w.data(), b.data(),
                                N, C, S, training, 0.1f, 1e-5f);
    return y;
}

}  // namespace

TEST(BatchNorm, ForwardMatchesNaiveWithRunningStats) {
    for (int training : {1, 0}) {
        for (auto dims : {std::vector<int64_t>{5, 4, 1}, std::vector<int64_t>{3, 6, 20}, std::vector<int64_t>{16, 32, 64}}) {
            int64_t N = dims[0], C = dims[1], S = dims[2];
            size_t n = N * C * S;
            auto x = randomVector(n, 41, -1.0f, 3.0f), w = randomVector(C, 42, 0.5f, 1.5f), b = randomVector(C, 43);
            auto rm = randomVector(C, 44), rv = randomVector(C, 45, 0.5f, 2.0f);
            auto rm2 = rm, rv2 = rv;
            std::vector<float> y1(n), y2(n), m1(C), m2(C), r1(C), r2(C);
            ASSERT_EQ(sk_batch_norm_forward(y1.data(), m1.data(), r1.data(), rm.data(), rv.data(), x.data(), w.data(), b.data(),
                                            N, C, S, training, 0.1f, 1e-5f), SK_OK);
            ASSERT_EQ(sk_naive_batch_norm_forward(y2.data(), m2.data(), r2.data(), rm2.data(), rv2.data(), x.data(), w.data(),
                                                  b.data(), N, C, S, training, 0.1f, 1e-5f), SK_OK);
            expectClose(y1, y2, 1e-5f, 1e-5f);
            expectClose(m1, m2, 1e-6f, 1e-6f);
            expectClose(r1, r2, 1e-6f, 1e-6f);
            expectClose(rm, rm2, 1e-6f, 1e-6f);
            expectClose(rv, rv2, 1e-6f, 1e-6f);
        }
    }
}

TEST(BatchNorm, HandComputedTrainingStep) {
    // One channel, values 1, 2, 3, 6 (N = 4): mean 3, biased var (4 + 1 + 0 + 9) / 4 = 3.5,
    // unbiased 14 / 3. running_mean 0 -> 0.9 * 0 + 0.1 * 3 = 0.3;
    // running_var 1 -> 0.9 * 1 + 0.1 * 14/3 = 1.3666667. y = (x - 3) / sqrt(3.5 + 1e-5).
    std::vector<float> x = {1, 2, 3, 6}, y(4), mean(1), rstd(1), rm = {0}, rv = {1};
    ASSERT_EQ(sk_batch_norm_forward(y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), nullptr, nullptr,
                                    4, 1, 1, 1, 0.1f, 1e-5f), SK_OK);
    EXPECT_FLOAT_EQ(rm[0], 0.3f);
    EXPECT_FLOAT_EQ(rv[0], (float)(0.9 + 0.1 * 14.0 / 3.0));
    double r = 1.0 / std::sqrt(3.5 + 1e-5);
    expectClose(y, {(float)(-2 * r), (float)(-1 * r), 0.0f, (float)(3 * r)}, 1e-6f, 1e-6f);
    // Eval: uses the running stats, leaves them alone.
    ASSERT_EQ(sk_batch_norm_forward(y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), nullptr, nullptr,
                                    4, 1, 1, 0, 0.1f, 1e-5f), SK_OK);
    EXPECT_FLOAT_EQ(rm[0], 0.3f);
    EXPECT_FLOAT_EQ(y[0], (float)((1 - 0.3) / std::sqrt(0.9 + 0.1 * 14.0 / 3.0 + 1e-5)));
}

TEST(BatchNorm, RejectsSingleValuePerChannelInTraining) {
    std::vector<float> x = {1, 2}, y(2), m(2), r(2), rm(2, 0.0f), rv(2, 1.0f);
    EXPECT_EQ(sk_batch_norm_forward(y.data(), m.data(), r.data(), rm.data(), rv.data(), x.data(), nullptr, nullptr,
                                    1, 2, 1, 1, 0.1f, 1e-5f), SK_ERR_ARG);
    EXPECT_EQ(sk_batch_norm_forward(y.data(), m.data(), r.data(), rm.data(), rv.data(), x.data(), nullptr, nullptr,
                                    1, 2, 1, 0, 0.1f, 1e-5f), SK_OK);
}

TEST(BatchNorm, BackwardMatchesNaiveAndFiniteDifferences) {
    for (int training : {1, 0}) {
        for (auto dims : {std::vector<int64_t>{6, 3, 1}, std::vector<int64_t>{3, 4, 5}}) {
            int64_t N = dims[0], C = dims[1], S = dims[2];
            size_t n = N * C * S;
            auto x = randomVector(n, 51, -2.0f, 2.0f), w = randomVector(C, 52, 0.5f, 1.5f), b = randomVector(C, 53);
            auto rm = randomVector(C, 54), rv = randomVector(C, 55, 0.5f, 2.0f), gy = randomVector(n, 56);
            auto rm0 = rm, rv0 = rv;
            std::vector<float> y(n), mean(C), rstd(C);
            sk_batch_norm_forward(y.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), w.data(), b.data(),
                                  N, C, S, training, 0.1f, 1e-5f);
            std::vector<float> gx(n, 0.25f), gw(C, 0.0f), gb(C, 0.0f), gx2(n, 0.25f), gw2(C, 0.0f), gb2(C, 0.0f);
            sk_batch_norm_backward(gx.data(), gw.data(), gb.data(), gy.data(), mean.data(), rstd.data(), x.data(), w.data(),
                                   N, C, S, training);
            sk_naive_batch_norm_backward(gx2.data(), gw2.data(), gb2.data(), gy.data(), mean.data(), rstd.data(), x.data(),
                                         w.data(), N, C, S, training);
            expectClose(gx, gx2, 1e-4f, 1e-5f);
            expectClose(gw, gw2, 1e-5f, 1e-5f);
            expectClose(gb, gb2, 1e-5f, 1e-5f);
            auto fx = [&](const std::vector<float> &v) { return batchNormOut(v, w, b, rm0, rv0, N, C, S, training); };
            auto fw = [&](const std::vector<float> &v) { return batchNormOut(x, v, b, rm0, rv0, N, C, S, training); };
            auto fb = [&](const std::vector<float> &v) { return batchNormOut(x, w, v, rm0, rv0, N, C, S, training); };
            for (size_t i = 0; i < n; i++) {
                double fd = finiteDifference(x, i, gy, fx, 1e-2f);
                ASSERT_NEAR(gx[i] - 0.25f, fd, 2e-3 + 5e-3 * std::fabs(fd)) << "training " << training << " x at " << i;
            }
            for (size_t c = 0; c < (size_t)C; c++) {
                double fdw = finiteDifference(w, c, gy, fw, 1e-2f), fdb = finiteDifference(b, c, gy, fb, 1e-2f);
                ASSERT_NEAR(gw[c], fdw, 2e-3 + 5e-3 * std::fabs(fdw)) << "weight at " << c;
                ASSERT_NEAR(gb[c], fdb, 2e-3 + 5e-3 * std::fabs(fdb)) << "bias at " << c;
            }
        }
    }
}
