// Vectorisable float math shared by the kernels (internal header, not part of the API).
#pragma once
#include <stdint.h>

// Marks a hot loop to be compiled for AVX-512, AVX2 + FMA and the baseline, with the best version
// picked when the program loads (GNU ifunc). Kernels whose every ISA must be testable use
// sk_multiversion.h instead.
#if defined(__x86_64__) && defined(__ELF__) && !defined(SK_NO_CLONES)
#define SK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SK_CLONES
#endif

// exp(x) for float32 without libm calls, so loops over it vectorise (AVX2): Cody-Waite range
// reduction x = n ln2 + r, a degree-6 polynomial for e^r on |r| <= ln2/2, and 2^n built in the
// exponent bits. Within ~2 ulp of expf over [-87.3, 88.7]; saturates to 0 / +inf outside.
static inline float sk_fast_expf(float x) {
    float xc = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    float y = p * scale.f;
    y = x < -87.3f ? 0.0f : y;
    return x > 88.7f ? __builtin_inff() : y;
}

// expm1(x) for x <= 0 (what CELU/ELU need): a Taylor polynomial near 0, where e^x - 1 would lose
// relative precision, and e^x - 1 elsewhere. Absolute error below ~1e-7, relative below ~3e-7.
static inline float sk_fast_expm1_nonpos(float x) {
    float t = x * (1.0f + x * (0.5f + x * (1.0f / 6 + x * (1.0f / 24 + x * (1.0f / 120 + x * (1.0f / 720 + x * (1.0f / 5040)))))));
    float e = sk_fast_expf(x) - 1.0f;
    return x > -0.25f ? t : e;
}


// The logistic function without libm calls: e = exp(-|x|), then 1 / (1 + e) or e / (1 + e).
static inline float sk_fast_sigmoidf(float x) {
    float e = sk_fast_expf(x < 0.0f ? x : -x);
    float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}
