// Elementwise, reduction, layout and matmul kernels: optimised vs naive, backward vs finite differences.
#include "support.h"

static const int kUnaryOps[] = {SK_NEG, SK_EXP, SK_LOG, SK_LOG1P, SK_SQRT, SK_ABS, SK_SIGMOID, SK_TANH, SK_SOFTPLUS,
                                SK_CELU, SK_ELU, SK_RELU, SK_SQUARE, SK_RECIPROCAL, SK_POW, SK_CLAMP_MIN, SK_CLAMP_MAX};

static float paramFor(int op) {
    switch (op) {
    case SK_SOFTPLUS: return 20.0f;
    case SK_CELU: case SK_ELU: return 1.3f;
    case SK_POW: return 1.7f;
    case SK_CLAMP_MIN: return -0.2f;
    case SK_CLAMP_MAX: return 0.3f;
    default: return 0.0f;
    }
}

static bool needsPositive(int op) { return op == SK_LOG || op == SK_SQRT || op == SK_RECIPROCAL || op == SK_POW || op == SK_LOG1P; }

TEST(Unary, ForwardMatchesNaive) {
    for (int op : kUnaryOps) {
        auto x = randomVector(1000, 1, needsPositive(op) ? 0.1f : -25.0f, 25.0f);
        std::vector<float> a(x.size()), b(x.size());
        sk_unary_forward(a.data(), x.data(), (int64_t)x.size(), op, paramFor(op));
        sk_naive_unary_forward(b.data(), x.data(), (int64_t)x.size(), op, paramFor(op));
        // CELU/ELU and the sigmoid use a polynomial exp (no libm call, so the loop vectorises): a few ulp apart.
        bool approx = op == SK_CELU || op == SK_ELU || op == SK_SIGMOID;
        expectClose(a, b, approx ? 1e-6f : 0.0f, approx ? 2e-7f : 0.0f);
    }
}

TEST(Unary, BackwardMatchesFiniteDifferences) {
    for (int op : kUnaryOps) {
        auto x = randomVector(64, 2, needsPositive(op) ? 0.5f : -3.0f, 3.0f);
        // keep clear of kinks (0 for abs/relu, clamp bounds)
        for (auto &v : x) if (std::fabs(v) < 0.05f || std::fabs(v - paramFor(op)) < 0.05f) v += 0.2f;
        auto w = randomVector(x.size(), 3);
        std::vector<float> y(x.size()), gx(x.size(), 0.0f);
        sk_unary_forward(y.data(), x.data(), (int64_t)x.size(), op, paramFor(op));
        sk_unary_backward(gx.data(), w.data(), x.data(), y.data(), (int64_t)x.size(), op, paramFor(op));
        auto f = [&](const std::vector<float> &in) {
            std::vector<float> out(in.size());
            sk_naive_unary_forward(out.data(), in.data(), (int64_t)in.size(), op, paramFor(op));
            return out;
        };
        for (size_t i = 0; i < x.size(); i++) {
            double fd = finiteDifference(x, i, w, f, 1e-2f);
            ASSERT_NEAR(gx[i], fd, 2e-3 + 5e-3 * std::fabs(fd)) << "op " << op << " at " << i;
        }
    }
}

TEST(Unary, BackwardAccumulates) {
    std::vector<float> x = {0.5f, -1.0f}, y(2), g = {1.0f, 1.0f}, gx = {10.0f, 20.0f};
    sk_unary_forward(y.data(), x.data(), 2, SK_SQUARE, 0);
    sk_unary_backward(gx.data(), g.data(), x.data(), y.data(), 2, SK_SQUARE, 0);
    EXPECT_FLOAT_EQ(gx[0], 11.0f);
    EXPECT_FLOAT_EQ(gx[1], 18.0f);
}

TEST(Binary, BroadcastMatchesNaive) {
    int64_t shape[3] = {4, 5, 6};
    int64_t sa[3] = {30, 6, 1}, sb[3] = {0, 1, 0};  // a full, b of shape (1, 5, 1)
    auto a = randomVector(120, 4), b = randomVector(5, 5, 0.5f, 2.0f);
    for (int op = SK_ADD; op <= SK_MINIMUM; op++) {
        std::vector<float> o1(120), o2(120);
        sk_binary_forward(o1.data(), a.data(), sa, b.data(), sb, shape, 3, op);
        sk_naive_binary_forward(o2.data(), a.data(), sa, b.data(), sb, shape, 3, op);
        expectClose(o1, o2, 0, 0);
    }
}

TEST(Reduce, SumMatchesNaive) {
    auto x = randomVector(3 * 7 * 5, 6);
    for (int inner : {1, 5}) {
        int64_t outer = inner == 1 ? 15 : 3, n = 7;
        std::vector<float> a(outer * inner), b(outer * inner);
        sk_sum_dim_forward(a.data(), x.data(), outer, n, inner);
        sk_naive_sum_dim_forward(b.data(), x.data(), outer, n, inner);
        expectClose(a, b, 1e-6f, 1e-6f);
    }
}

TEST(Reduce, SumBackwardIsBroadcast) {
    std::vector<float> g = {1, 2, 3, 4}, gx(2 * 3 * 2, 0.0f);
    sk_sum_dim_backward(gx.data(), g.data(), 2, 3, 2);
    std::vector<float> expected = {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4};
    expectClose(gx, expected, 0, 0);
}

TEST(Layout, StridedCopyTransposes) {
    std::vector<float> x = {1, 2, 3, 4, 5, 6}, out(6);  // (2, 3) -> (3, 2)
    int64_t shape[2] = {3, 2}, strides[2] = {1, 3};
    sk_strided_copy(out.data(), x.data(), shape, strides, 2);
    expectClose(out, {1, 4, 2, 5, 3, 6}, 0, 0);
    std::vector<float> gx(6, 0.0f);
    sk_strided_copy_backward(gx.data(), out.data(), shape, strides, 2);
    expectClose(gx, x, 0, 0);
}

TEST(Layout, IndexSelectChecksRange) {
    std::vector<float> x = {1, 2, 3}, out(2);
    int64_t good[2] = {2, 0}, bad[2] = {0, 3};
    EXPECT_EQ(sk_index_select_forward(out.data(), x.data(), good, 2, 1, 3, 1), SK_OK);
    expectClose(out, {3, 1}, 0, 0);
    EXPECT_EQ(sk_index_select_forward(out.data(), x.data(), bad, 2, 1, 3, 1), SK_ERR_ARG);
}

TEST(Matmul, SgemmMatchesNaive) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t batch = 3, m = 7, k = 11, n = 5;
            auto a = randomVector(batch * m * k, 7), b = randomVector(batch * k * n, 8);
            std::vector<float> c1(batch * m * n, 1.0f), c2(batch * m * n, 1.0f);
            sk_matmul(c1.data(), a.data(), b.data(), batch, m, k, n, ta, tb, 0.5f, 1.0f, m * k, k * n, m * n);
            sk_naive_matmul(c2.data(), a.data(), b.data(), batch, m, k, n, ta, tb, 0.5f, 1.0f, m * k, k * n, m * n);
            expectClose(c1, c2, 1e-5f, 1e-5f);
        }
}

TEST(Reduce, MaxMatchesNaiveAndPropagatesNaN) {
    int64_t outer = 3, n = 5, inner = 4;
    auto x = randomVector(outer * n * inner, 9);
    x[(1 * n + 2) * inner + 3] = NAN;
    std::vector<float> y(outer * inner);
    sk_max_dim_forward(y.data(), x.data(), outer, n, inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            float m = -INFINITY; bool nan = false;
            for (int64_t k = 0; k < n; k++) { float v = x[(o * n + k) * inner + i]; nan |= v != v; m = v > m ? v : m; }
            if (nan) EXPECT_TRUE(std::isnan(y[o * inner + i])); else EXPECT_EQ(y[o * inner + i], m);
        }
}

TEST(Layout, BlockCopiesAreAdjoint) {
    // take_block(copy_block(x)) == x, and the _add variants add: checked against index arithmetic.
    int64_t outer = 2, m = 7, at = 2, n = 3, inner = 4;
    auto x = randomVector(outer * n * inner, 10);
    std::vector<float> big(outer * m * inner, 0.0f), back(outer * n * inner, 0.0f);
    sk_copy_block(big.data(), m, at, x.data(), outer, n, inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < m; k++)
            for (int64_t i = 0; i < inner; i++) {
                float expected = (k >= at && k < at + n) ? x[(o * n + k - at) * inner + i] : 0.0f;
                ASSERT_EQ(big[(o * m + k) * inner + i], expected);
            }
    sk_take_block(back.data(), big.data(), m, at, outer, n, inner);
    expectClose(back, x, 0, 0);
    sk_take_block_add(back.data(), big.data(), m, at, outer, n, inner);
    for (size_t i = 0; i < x.size(); i++) ASSERT_EQ(back[i], 2 * x[i]);
    sk_copy_block_add(big.data(), m, at, x.data(), outer, n, inner);
    for (int64_t o = 0; o < outer; o++) ASSERT_EQ(big[(o * m + at) * inner], 2 * x[o * n * inner]);
}

TEST(Layout, IndexSelectBackwardIsTheAdjoint) {
    // <index_select(x), g> == <x, index_select_backward(g)> for random x, g, repeated indices.
    int64_t outer = 2, n = 5, inner = 3, k = 4;
    int64_t idx[4] = {4, 0, 4, 2};
    auto x = randomVector(outer * n * inner, 11), g = randomVector(outer * k * inner, 12);
    std::vector<float> y(outer * k * inner), gx(outer * n * inner, 0.0f);
    ASSERT_EQ(sk_index_select_forward(y.data(), x.data(), idx, k, outer, n, inner), SK_OK);
    sk_index_select_backward(gx.data(), g.data(), idx, k, outer, n, inner);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < y.size(); i++) lhs += (double)y[i] * g[i];
    for (size_t i = 0; i < x.size(); i++) rhs += (double)x[i] * gx[i];
    EXPECT_NEAR(lhs, rhs, 1e-5);
}

TEST(Elementwise, AffineAccumulateFill) {
    std::vector<float> x = {1, -2, 3}, y(3), acc = {1, 1, 1};
    sk_affine_scalar(y.data(), x.data(), 3, 2.0f, 0.5f);
    expectClose(y, {2.5f, -3.5f, 6.5f}, 0, 0);
    sk_accumulate(acc.data(), x.data(), 3);
    expectClose(acc, {2, -1, 4}, 0, 0);
    sk_fill(acc.data(), 3, 7.0f);
    expectClose(acc, {7, 7, 7}, 0, 0);
    EXPECT_DOUBLE_EQ(sk_sum_all(x.data(), 3), 2.0);
    EXPECT_DOUBLE_EQ(sk_sum_squares(x.data(), 3), 14.0);
}
