// Optimizer update kernels against straightforward double-precision transcriptions of torch.optim's rules.
#include "support.h"

TEST(Optim, RMSpropMatchesReference) {
    auto p = randomVector(257, 21), g = randomVector(257, 22), v = randomVector(257, 23, 0.0f, 0.1f);
    std::vector<double> pd(p.begin(), p.end()), vd(v.begin(), v.end());
    const double lr = 1e-3, alpha = 0.99, eps = 1e-8;
    for (int step = 0; step < 3; step++) {
        sk_rmsprop_step(p.data(), v.data(), g.data(), (int64_t)p.size(), (float)lr, (float)alpha, (float)eps);
        for (size_t i = 0; i < pd.size(); i++) {
            vd[i] = alpha * vd[i] + (1 - alpha) * g[i] * g[i];
            pd[i] -= lr * g[i] / (std::sqrt(vd[i]) + eps);
        }
    }
    for (size_t i = 0; i < p.size(); i++) ASSERT_NEAR(p[i], pd[i], 1e-6) << i;
}

TEST(Optim, AdamMatchesReference) {
    auto p = randomVector(257, 24), g = randomVector(257, 25);
    std::vector<float> m(p.size(), 0.0f), v(p.size(), 0.0f);
    std::vector<double> pd(p.begin(), p.end()), md(p.size(), 0.0), vd(p.size(), 0.0);
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int step = 1; step <= 3; step++) {
        sk_adam_step(p.data(), m.data(), v.data(), g.data(), (int64_t)p.size(), (float)lr, (float)b1, (float)b2, (float)eps, step);
        for (size_t i = 0; i < pd.size(); i++) {
            md[i] = b1 * md[i] + (1 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * g[i] * g[i];
            double mhat = md[i] / (1 - std::pow(b1, step)), vhat = vd[i] / (1 - std::pow(b2, step));
            pd[i] -= lr * mhat / (std::sqrt(vhat) + eps);
        }
    }
    for (size_t i = 0; i < p.size(); i++) ASSERT_NEAR(p[i], pd[i], 1e-6) << i;
}

TEST(Optim, FirstStepsAreSignSteps) {
    // Fresh state: Adam's first step is lr * sign(g); RMSprop's is 10 * lr * sign(g) (sqrt(0.01) = 0.1).
    std::vector<float> p = {0.0f, 0.0f}, g = {0.3f, -2.0f}, m(2, 0.0f), v(2, 0.0f), s(2, 0.0f);
    sk_adam_step(p.data(), m.data(), v.data(), g.data(), 2, 0.01f, 0.9f, 0.999f, 1e-8f, 1);
    EXPECT_NEAR(p[0], -0.01f, 1e-7); EXPECT_NEAR(p[1], 0.01f, 1e-7);
    std::vector<float> q = {0.0f, 0.0f};
    sk_rmsprop_step(q.data(), s.data(), g.data(), 2, 0.01f, 0.99f, 1e-8f);
    EXPECT_NEAR(q[0], -0.1f, 1e-6); EXPECT_NEAR(q[1], 0.1f, 1e-6);
}
