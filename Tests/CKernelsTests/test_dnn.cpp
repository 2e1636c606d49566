// Convolutions on oneDNN against the direct-loop oracle of conv.c, in every activation format the
// engine uses, direct and Winograd; reorders; and the statuses for descriptions it cannot run.
#include "support.h"
#include <string>

namespace {

struct DnnShape {
    int64_t N, C, H, W, O, kh, kw, s, p;
    int64_t Ho() const { return (H + 2 * p - kh) / s + 1; }
    int64_t Wo() const { return (W + 2 * p - kw) / s + 1; }
    size_t x() const { return (size_t)(N * C * H * W); }
    size_t w() const { return (size_t)(O * C * kh * kw); }
    size_t y() const { return (size_t)(N * O * Ho() * Wo()); }
};

// x in `format` from NCHW, and back.
std::vector<float> toFormat(const std::vector<float> &nchw, int format, int64_t N, int64_t C, int64_t H, int64_t W) {
    std::vector<float> out(nchw.size());
    EXPECT_EQ(sk_dnn_reorder(out.data(), format, nchw.data(), SK_FMT_NCHW, N, C, H, W), SK_OK);
    return out;
}
std::vector<float> toNCHW(const std::vector<float> &v, int format, int64_t N, int64_t C, int64_t H, int64_t W) {
    std::vector<float> out(v.size());
    EXPECT_EQ(sk_dnn_reorder(out.data(), SK_FMT_NCHW, v.data(), format, N, C, H, W), SK_OK);
    return out;
}

void checkShape(const DnnShape &s, int src, int dst, int algorithm, float tol, uint32_t seed) {
    char buf[160];
    snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld O%ld k%ld s%ld p%ld src%d dst%d alg%d", (long)s.N, (long)s.C, (long)s.H,
             (long)s.W, (long)s.O, (long)s.kh, (long)s.s, (long)s.p, src, dst, algorithm);
    SCOPED_TRACE(buf);
    auto x = randomVector(s.x(), seed), w = randomVector(s.w(), seed + 1, -0.3f, 0.3f), b = randomVector((size_t)s.O, seed + 2);
    auto gy = randomVector(s.y(), seed + 3);
    std::vector<float> yRef(s.y()), gxRef(s.x(), 0.0f), gwRef(s.w(), 0.5f), gbRef((size_t)s.O, -0.5f);
    ASSERT_EQ(sk_naive_conv2d_forward(yRef.data(), x.data(), w.data(), b.data(), s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.s, s.s, s.p, s.p), SK_OK);
    ASSERT_EQ(sk_naive_conv2d_backward(gxRef.data(), gwRef.data(), gbRef.data(), gy.data(), x.data(), w.data(),
                                       s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.s, s.s, s.p, s.p), SK_OK);
    int status = -1;
    sk_dnn_conv *conv = sk_dnn_conv_get(s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.s, s.s, s.p, s.p, src, dst, 1, algorithm, &status);
    ASSERT_NE(conv, nullptr) << sk_dnn_last_error();
    ASSERT_EQ(status, SK_OK);
    if (algorithm == SK_DNN_WINOGRAD) EXPECT_EQ(sk_dnn_conv_algorithm(conv), SK_DNN_WINOGRAD);
    // The same description gives the same cached object.
    EXPECT_EQ(sk_dnn_conv_get(s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.s, s.s, s.p, s.p, src, dst, 1, algorithm, &status), conv);

    auto xs = toFormat(x, src, s.N, s.C, s.H, s.W);
    std::vector<float> y(s.y(), -7.0f);
    ASSERT_EQ(sk_dnn_conv_forward(conv, y.data(), xs.data(), w.data(), b.data()), SK_OK) << sk_dnn_last_error();
    expectClose(toNCHW(y, dst, s.N, s.O, s.Ho(), s.Wo()), yRef, tol, tol);

    auto gys = toFormat(gy, dst, s.N, s.O, s.Ho(), s.Wo());
    std::vector<float> gx(s.x(), -7.0f);
    ASSERT_EQ(sk_dnn_conv_backward_data(conv, gx.data(), gys.data(), w.data()), SK_OK) << sk_dnn_last_error();
    expectClose(toNCHW(gx, src, s.N, s.C, s.H, s.W), gxRef, tol, tol);

    std::vector<float> gw(s.w(), 0.5f), gb((size_t)s.O, -0.5f);  // backward weights adds into these
    ASSERT_EQ(sk_dnn_conv_backward_weights(conv, gw.data(), gb.data(), gys.data(), xs.data()), SK_OK) << sk_dnn_last_error();
    expectClose(gw, gwRef, tol, tol * 10);
    expectClose(gb, gbRef, tol, tol * 10);
}

}  // namespace

TEST(DnnConv, DirectMatchesNaiveInEveryFormat) {
    const DnnShape shapes[] = {
        {3, 16, 6, 5, 32, 3, 3, 1, 1}, {2, 32, 8, 8, 16, 4, 4, 2, 1}, {4, 16, 3, 3, 16, 1, 1, 1, 0},
        {2, 3, 9, 7, 16, 3, 3, 1, 1},  {2, 16, 7, 7, 16, 3, 3, 1, 0},
    };
    uint32_t seed = 1200;
    for (const auto &s : shapes) {
        for (int src : {SK_FMT_NCHW, SK_FMT_NHWC, SK_FMT_BLOCK16})
            for (int dst : {SK_FMT_NCHW, SK_FMT_BLOCK16}) {
                if (src == SK_FMT_BLOCK16 && s.C % 16) continue;
                checkShape(s, src, dst, SK_DNN_DIRECT, 2e-5f, seed);
                seed += 4;
            }
    }
}

TEST(DnnConv, WinogradMatchesNaive) {
    // Winograd trades a little round-off for arithmetic: outputs agree to ~1e-6 relative, weight
    // gradients (sums over many tiles) to ~1e-4.
    const DnnShape shapes[] = {{8, 32, 8, 8, 32, 3, 3, 1, 1}, {4, 16, 12, 10, 16, 3, 3, 1, 0}};
    uint32_t seed = 1300;
    for (const auto &s : shapes) checkShape(s, SK_FMT_BLOCK16, SK_FMT_BLOCK16, SK_DNN_WINOGRAD, 2e-4f, seed += 4);
}

TEST(DnnConv, AutoPicksWinogradOnlyWhereItPays) {
    int st = 0;
    sk_dnn_conv *big = sk_dnn_conv_get(64, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_AUTO, &st);
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(sk_dnn_conv_algorithm(big), SK_DNN_WINOGRAD);
    sk_dnn_conv *tiny = sk_dnn_conv_get(64, 32, 2, 2, 32, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_AUTO, &st);
    ASSERT_NE(tiny, nullptr);
    EXPECT_EQ(sk_dnn_conv_algorithm(tiny), SK_DNN_DIRECT);  // 2x2 maps
    sk_dnn_conv *strided = sk_dnn_conv_get(64, 32, 16, 16, 32, 3, 3, 2, 2, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_AUTO, &st);
    ASSERT_NE(strided, nullptr);
    EXPECT_EQ(sk_dnn_conv_algorithm(strided), SK_DNN_DIRECT);
}

TEST(DnnConv, ReorderRoundTrips) {
    const int64_t N = 3, C = 32, H = 5, W = 7;
    auto x = randomVector((size_t)(N * C * H * W), 1400);
    for (int f : {SK_FMT_NHWC, SK_FMT_BLOCK16}) {
        auto y = toFormat(x, f, N, C, H, W);
        expectClose(toNCHW(y, f, N, C, H, W), x, 0, 0);
    }
    // Blocked needs channels in whole blocks.
    std::vector<float> out(x.size());
    EXPECT_EQ(sk_dnn_reorder(out.data(), SK_FMT_BLOCK16, x.data(), SK_FMT_NCHW, N, 24, H, W), SK_ERR_ARG);
    EXPECT_EQ(sk_dnn_reorder(out.data(), 9, x.data(), SK_FMT_NCHW, N, C, H, W), SK_ERR_ARG);
}

TEST(DnnConv, RejectsBadDescriptions) {
    int st = SK_OK;
    EXPECT_EQ(sk_dnn_conv_get(2, 16, 4, 4, 16, 3, 3, 0, 1, 1, 1, SK_FMT_NCHW, SK_FMT_NCHW, 1, SK_DNN_AUTO, &st), nullptr);
    EXPECT_EQ(st, SK_ERR_ARG);  // stride 0
    EXPECT_EQ(sk_dnn_conv_get(2, 16, 1, 4, 16, 3, 3, 1, 1, 0, 1, SK_FMT_NCHW, SK_FMT_NCHW, 1, SK_DNN_AUTO, &st), nullptr);
    EXPECT_EQ(st, SK_ERR_SHAPE);  // kernel taller than the padded input
    EXPECT_EQ(sk_dnn_conv_get(2, 24, 4, 4, 16, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_NCHW, 1, SK_DNN_AUTO, &st), nullptr);
    EXPECT_EQ(st, SK_ERR_ARG);  // 24 channels cannot be blocked by 16
    EXPECT_EQ(sk_dnn_conv_get(2, 16, 4, 4, 16, 3, 3, 2, 2, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_WINOGRAD, &st), nullptr);
    EXPECT_NE(st, SK_OK);  // Winograd asked for a strided convolution
    EXPECT_NE(std::string(sk_dnn_version()).find("oneDNN"), std::string::npos);
}

namespace {

// y = conv(x, w) + b from the naive oracle, blocked (the inference convolutions here are blocked to blocked).
std::vector<float> naiveBlocked(const DnnShape &s, const std::vector<float> &x, const std::vector<float> &w,
                                const std::vector<float> &b) {
    std::vector<float> y(s.y());
    EXPECT_EQ(sk_naive_conv2d_forward(y.data(), x.data(), w.data(), b.data(), s.N, s.C, s.H, s.W, s.O, s.kh, s.kw, s.s, s.s,
                                      s.p, s.p), SK_OK);
    return y;
}

std::vector<float> inferenceForward(sk_dnn_conv *conv, const DnnShape &s, const std::vector<float> &xs,
                                    const std::vector<float> &w, const std::vector<float> &b) {
    std::vector<float> y(s.y(), -7.0f);
    EXPECT_EQ(sk_dnn_conv_forward(conv, y.data(), xs.data(), w.data(), b.data()), SK_OK) << sk_dnn_last_error();
    return toNCHW(y, SK_FMT_BLOCK16, s.N, s.O, s.Ho(), s.Wo());
}

}  // namespace

TEST(DnnConv, InferenceRunsWinogradFromOneImageAndRefusesBackward) {
    int st = 0;
    sk_dnn_conv *one = sk_dnn_conv_get_inference(1, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_AUTO, &st);
    ASSERT_NE(one, nullptr) << sk_dnn_last_error();
    EXPECT_EQ(sk_dnn_conv_algorithm(one), SK_DNN_WINOGRAD);
    EXPECT_EQ(sk_dnn_conv_is_inference(one), 1);
    // A different object from the training convolution of the same description, which stays direct here.
    sk_dnn_conv *train = sk_dnn_conv_get(1, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1, SK_DNN_AUTO, &st);
    ASSERT_NE(train, nullptr);
    EXPECT_NE(train, one);
    EXPECT_EQ(sk_dnn_conv_algorithm(train), SK_DNN_DIRECT);
    EXPECT_EQ(sk_dnn_conv_is_inference(train), 0);
    std::vector<float> buf(32 * 32 * 9 * 64, 0.0f);
    EXPECT_EQ(sk_dnn_conv_backward_data(one, buf.data(), buf.data(), buf.data()), SK_ERR_ARG);
    EXPECT_EQ(sk_dnn_conv_backward_weights(one, buf.data(), nullptr, buf.data(), buf.data()), SK_ERR_ARG);
    // Strided: direct, still forward only.
    sk_dnn_conv *strided = sk_dnn_conv_get_inference(1, 32, 8, 8, 32, 4, 4, 2, 2, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 0, SK_DNN_AUTO, &st);
    ASSERT_NE(strided, nullptr);
    EXPECT_EQ(sk_dnn_conv_algorithm(strided), SK_DNN_DIRECT);
}

TEST(DnnConv, InferenceKeepsWeightsOnlyWhileTheyAreUnchanged) {
    // Six layers of one shape share a convolution that keeps four weight sets: cycling through them,
    // changing one in place, and passing equal weights at a new address must all give each layer's
    // own result.
    const DnnShape s{2, 32, 8, 8, 16, 3, 3, 1, 1};
    int st = 0;
    sk_dnn_conv *conv = sk_dnn_conv_get_inference(s.N, s.C, s.H, s.W, s.O, 3, 3, 1, 1, 1, 1, SK_FMT_BLOCK16, SK_FMT_BLOCK16, 1,
                                                  SK_DNN_AUTO, &st);
    ASSERT_NE(conv, nullptr) << sk_dnn_last_error();
    ASSERT_EQ(sk_dnn_conv_algorithm(conv), SK_DNN_WINOGRAD);
    auto x = randomVector(s.x(), 1500), b = randomVector((size_t)s.O, 1501);
    auto xs = toFormat(x, SK_FMT_BLOCK16, s.N, s.C, s.H, s.W);
    std::vector<std::vector<float>> layers;
    for (uint32_t k = 0; k < 6; k++) layers.push_back(randomVector(s.w(), 1510 + k, -0.3f, 0.3f));
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < layers.size(); k++) {
            SCOPED_TRACE("round " + std::to_string(round) + " layer " + std::to_string(k));
            expectClose(inferenceForward(conv, s, xs, layers[k], b), naiveBlocked(s, x, layers[k], b), 2e-4f, 2e-4f);
        }
    // One weight changed in place (what an optimizer step or a loaded checkpoint does).
    layers[1][123] += 0.25f;
    expectClose(inferenceForward(conv, s, xs, layers[1], b), naiveBlocked(s, x, layers[1], b), 2e-4f, 2e-4f);
    layers[1][s.w() - 1] = -layers[1][s.w() - 1];  // the last weight too
    expectClose(inferenceForward(conv, s, xs, layers[1], b), naiveBlocked(s, x, layers[1], b), 2e-4f, 2e-4f);
    // Equal weights at another address (weights rebuilt every call), and a changed bias.
    std::vector<float> copy = layers[2];
    b[3] += 1.0f;
    expectClose(inferenceForward(conv, s, xs, copy, b), naiveBlocked(s, x, layers[2], b), 2e-4f, 2e-4f);
}
