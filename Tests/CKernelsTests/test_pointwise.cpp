// The fused pointwise stage (pixel shuffle, CELU/ELU, group/batch norm, in either order) against its
// naive twin, forward and backward, on every instruction set this CPU has; and the backward against
// finite differences of the naive forward.
#include "support.h"
#include <string>

namespace {

struct Case {
    int64_t N, C, H, W, r;
    int act;
    float alpha;
    int norm;
    int64_t groups;
    int actFirst, training;
};

sk_pw_desc descOf(const Case &c) {
    sk_pw_desc d{};
    d.N = c.N; d.C = c.C; d.H = c.H; d.W = c.W; d.r = c.r;
    d.act = c.act; d.alpha = c.alpha; d.norm = c.norm; d.groups = c.groups;
    d.act_first = c.actFirst; d.training = c.training; d.eps = 1e-5f; d.momentum = 0.1f;
    return d;
}

std::string name(const Case &c) {
    char buf[160];
    snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld r%ld act%d(%.2f) norm%d g%ld first%d train%d", (long)c.N, (long)c.C, (long)c.H,
             (long)c.W, (long)c.r, c.act, c.alpha, c.norm, (long)c.groups, c.actFirst, c.training);
    return buf;
}

const Case kCases[] = {
    {3, 16, 5, 4, 1, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 4, 1, 1},     // SPACE's CELU -> GroupNorm
    {2, 32, 3, 3, 2, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 8, 1, 1},     // with a pixel shuffle by 2
    {2, 16, 2, 3, 4, SK_ACT_CELU, 0.7f, SK_NORM_GROUP, 16, 1, 1},    // shuffle by 4, one channel per group, CELU alpha
    {4, 32, 4, 5, 1, SK_ACT_ELU, 1.0f, SK_NORM_BATCH, 0, 0, 1},      // BatchNorm -> ELU, training
    {4, 32, 4, 5, 1, SK_ACT_ELU, 0.5f, SK_NORM_BATCH, 0, 0, 0},      // the same, running statistics
    {3, 48, 3, 2, 1, SK_ACT_ELU, 1.0f, SK_NORM_BATCH, 0, 1, 1},      // ELU -> BatchNorm
    {2, 32, 3, 3, 1, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 2, 0, 1},     // GroupNorm -> CELU
    {2, 16, 3, 3, 2, SK_ACT_NONE, 1.0f, SK_NORM_GROUP, 4, 1, 1},     // norm only
    {2, 16, 3, 3, 1, SK_ACT_CELU, 1.0f, SK_NORM_NONE, 0, 1, 1},      // activation only
    {1, 16, 1, 1, 1, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 1, 1, 1},     // one pixel, one group
    {5, 16, 7, 9, 1, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 4, 1, 1},     // odd sizes, several units per thread
};

// Forward of the fast path: statistics, finish, apply. Returns y; updates running stats in rm/rv.
std::vector<float> fastForward(const sk_pw_desc &d, const std::vector<float> &z, const std::vector<float> &gamma,
                               const std::vector<float> &beta, std::vector<float> &rm, std::vector<float> &rv,
                               std::vector<float> &mean, std::vector<float> &rstd, std::vector<float> &scale,
                               std::vector<float> &shift) {
    size_t nc = (size_t)(d.N * d.C);
    std::vector<double> sum(nc), sq(nc);
    mean.assign(nc, 0); rstd.assign(nc, 0); scale.assign(nc, 0); shift.assign(nc, 0);
    EXPECT_EQ(sk_pw_stats(&d, sum.data(), sq.data(), z.data()), SK_OK);
    EXPECT_EQ(sk_pw_finish(&d, mean.data(), rstd.data(), scale.data(), shift.data(), sum.data(), sq.data(), gamma.data(),
                           beta.data(), rm.data(), rv.data()), SK_OK);
    std::vector<float> y((size_t)(d.N * d.C * d.H * d.W * d.r * d.r), -7.0f);
    EXPECT_EQ(sk_pw_apply(&d, y.data(), z.data(), scale.data(), shift.data()), SK_OK);
    return y;
}

}  // namespace

TEST(Pointwise, ForwardAndBackwardMatchNaiveOnEveryIsa) {
    IsaRestore restore;
    uint32_t seed = 500;
    for (const auto &c : kCases) {
        sk_pw_desc d = descOf(c);
        size_t nz = (size_t)(c.N * c.C * c.r * c.r * c.H * c.W);
        auto z = randomVector(nz, seed++, -2.0f, 2.0f);
        auto gamma = randomVector((size_t)c.C, seed++, 0.5f, 1.5f), beta = randomVector((size_t)c.C, seed++);
        auto dy = randomVector(nz, seed++);
        auto rm0 = randomVector((size_t)c.C, seed++), rv0 = randomVector((size_t)c.C, seed++, 0.5f, 2.0f);
        // Naive references.
        auto nrm = rm0, nrv = rv0;
        std::vector<float> yRef(nz, -7.0f);
        ASSERT_EQ(sk_naive_pw_forward(&d, yRef.data(), z.data(), gamma.data(), beta.data(), nrm.data(), nrv.data()), SK_OK);
        std::vector<float> dzRef(nz, -7.0f), dgRef((size_t)c.C, 0.25f), dbRef((size_t)c.C, -0.5f);
        ASSERT_EQ(sk_naive_pw_backward(&d, dzRef.data(), dgRef.data(), dbRef.data(), dy.data(), z.data(), gamma.data(),
                                       beta.data(), rm0.data(), rv0.data()), SK_OK);
        for (int level : isaLevels()) {
            SCOPED_TRACE(name(c) + " isa " + sk_isa_name(level));
            sk_set_isa_level(level);
            auto rm = rm0, rv = rv0;
            std::vector<float> mean, rstd, scale, shift;
            auto y = fastForward(d, z, gamma, beta, rm, rv, mean, rstd, scale, shift);
            expectClose(y, yRef, 2e-5f, 2e-5f);
            expectClose(rm, nrm, 1e-5f, 1e-6f);
            expectClose(rv, nrv, 1e-5f, 1e-6f);
            // Backward: sums, finish (adds into dgamma/dbeta), apply.
            size_t nc = (size_t)(c.N * c.C);
            std::vector<double> s1(nc), s2(nc);
            ASSERT_EQ(sk_pw_backward_sums(&d, s1.data(), s2.data(), dy.data(), z.data(), mean.data(), rstd.data(), scale.data(),
                                          shift.data()), SK_OK);
            std::vector<float> dg((size_t)c.C, 0.25f), db((size_t)c.C, -0.5f), k1(nc), k2(nc), k3(nc);
            ASSERT_EQ(sk_pw_backward_finish(&d, dg.data(), db.data(), k1.data(), k2.data(), k3.data(), s1.data(), s2.data(),
                                            rstd.data(), gamma.data()), SK_OK);
            std::vector<float> dz(nz, -7.0f);
            ASSERT_EQ(sk_pw_backward_apply(&d, dz.data(), dy.data(), z.data(), mean.data(), rstd.data(), scale.data(),
                                           shift.data(), k1.data(), k2.data(), k3.data()), SK_OK);
            expectClose(dz, dzRef, 2e-4f, 2e-5f);
            if (c.r == 1) {
                // In place: dz written over a copy of dy gives the same values.
                std::vector<float> inPlace = dy;
                ASSERT_EQ(sk_pw_backward_apply(&d, inPlace.data(), inPlace.data(), z.data(), mean.data(), rstd.data(), scale.data(),
                                               shift.data(), k1.data(), k2.data(), k3.data()), SK_OK);
                expectClose(inPlace, dz, 0, 0);
            }
            if (c.norm != SK_NORM_NONE) {
                expectClose(dg, dgRef, 1e-4f, 1e-4f);
                expectClose(db, dbRef, 1e-4f, 1e-4f);
            }
        }
    }
}

TEST(Pointwise, NaiveBackwardMatchesFiniteDifferences) {
    // sum(y * w) through the naive forward (double inside): its gradient in z, gamma and beta.
    const Case cases[] = {
        {2, 16, 2, 3, 2, SK_ACT_CELU, 1.0f, SK_NORM_GROUP, 4, 1, 1},
        {3, 16, 2, 2, 1, SK_ACT_ELU, 0.8f, SK_NORM_BATCH, 0, 0, 1},
    };
    for (const auto &c : cases) {
        SCOPED_TRACE(name(c));
        sk_pw_desc d = descOf(c);
        size_t nz = (size_t)(c.N * c.C * c.r * c.r * c.H * c.W);
        auto z = randomVector(nz, 700, -1.5f, 1.5f), w = randomVector(nz, 701);
        auto gamma = randomVector((size_t)c.C, 702, 0.5f, 1.5f), beta = randomVector((size_t)c.C, 703);
        std::vector<float> rm((size_t)c.C, 0.0f), rv((size_t)c.C, 1.0f);
        std::vector<float> dz(nz), dg((size_t)c.C, 0.0f), db((size_t)c.C, 0.0f);
        ASSERT_EQ(sk_naive_pw_backward(&d, dz.data(), dg.data(), db.data(), w.data(), z.data(), gamma.data(), beta.data(),
                                       rm.data(), rv.data()), SK_OK);
        auto viaZ = [&](const std::vector<float> &v) {
            std::vector<float> y(nz), a = rm, b = rv;
            sk_naive_pw_forward(&d, y.data(), v.data(), gamma.data(), beta.data(), a.data(), b.data());
            return y;
        };
        auto viaGamma = [&](const std::vector<float> &g) {
            std::vector<float> y(nz), a = rm, b = rv;
            sk_naive_pw_forward(&d, y.data(), z.data(), g.data(), beta.data(), a.data(), b.data());
            return y;
        };
        for (size_t i = 0; i < nz; i += 3) ASSERT_NEAR(dz[i], finiteDifference(z, i, w, viaZ, 1e-3f), 2e-3) << "z " << i;
        for (size_t i = 0; i < gamma.size(); i++) ASSERT_NEAR(dg[i], finiteDifference(gamma, i, w, viaGamma, 1e-3f), 2e-3) << "gamma " << i;
    }
}

TEST(Pointwise, RejectsBadDescriptions) {
    Case c = kCases[0];
    sk_pw_desc d = descOf(c);
    EXPECT_EQ(sk_pw_check(&d), SK_OK);
    d.C = 24; EXPECT_EQ(sk_pw_check(&d), SK_ERR_SHAPE);          // not blocks of 16
    d = descOf(c); d.groups = 3; EXPECT_EQ(sk_pw_check(&d), SK_ERR_SHAPE);  // groups must divide C
    d = descOf(c); d.alpha = 0; EXPECT_EQ(sk_pw_check(&d), SK_ERR_ARG);
    d = descOf(c); d.r = 0; EXPECT_EQ(sk_pw_check(&d), SK_ERR_SHAPE);
    d = descOf(c); d.norm = 7; EXPECT_EQ(sk_pw_check(&d), SK_ERR_ARG);
    d = descOf(c); d.eps = 0; EXPECT_EQ(sk_pw_check(&d), SK_ERR_ARG);
    // Batch norm in evaluation needs its running statistics.
    Case e = kCases[4];
    d = descOf(e);
    size_t nc = (size_t)(e.N * e.C);
    std::vector<float> m(nc), r(nc), a(nc), b(nc);
    EXPECT_EQ(sk_pw_finish(&d, m.data(), r.data(), a.data(), b.data(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
              SK_ERR_ARG);
}
