// Shared helpers for the kernel tests: seeded random data, finite differences, closeness checks.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>
#include <gtest/gtest.h>

extern "C" {
#include "ckernels.h"
}

inline std::vector<float> randomVector(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = dist(gen);
    return v;
}

// Expects |a - b| <= atol + rtol * |b| everywhere; reports the first offending index.
inline void expectClose(const std::vector<float> &a, const std::vector<float> &b, float rtol, float atol) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) {
        ASSERT_LE(std::fabs(a[i] - b[i]), atol + rtol * std::fabs(b[i])) << "at index " << i << ": " << a[i] << " vs " << b[i];
    }
}

// Central finite difference of the scalar loss(x) = sum(f(x) * w) with respect to x[i], in double.
// `f` maps the input vector to the output vector.
inline double finiteDifference(std::vector<float> &x, size_t i, const std::vector<float> &w,
                               const std::function<std::vector<float>(const std::vector<float> &)> &f, float eps) {
    float old = x[i];
    auto lossAt = [&](float v) {
        x[i] = v;
        auto y = f(x);
        double s = 0.0;
        for (size_t k = 0; k < y.size(); k++) s += (double)y[k] * (double)w[k];
        return s;
    };
    double lp = lossAt(old + eps), lm = lossAt(old - eps);
    x[i] = old;
    return (lp - lm) / (2.0 * (double)eps);
}

// Every instruction-set level this machine runs (baseline, then AVX2, then AVX-512 where present).
inline std::vector<int> isaLevels() {
    std::vector<int> levels;
    for (int l = SK_ISA_BASELINE; l <= sk_isa_supported(); l++) levels.push_back(l);
    return levels;
}

// Puts the kernels back on the best level when a test that forces levels ends (even on failure).
struct IsaRestore { ~IsaRestore() { sk_set_isa_level(sk_isa_supported()); } };
