// Run-time choice of instruction set (see sk_isa.h).
#include "ckernels.h"
#include <stdlib.h>
#include <string.h>

static int detected = -1;
static int chosen = -1;

int sk_isa_supported(void) {
    int level = __atomic_load_n(&detected, __ATOMIC_ACQUIRE);
    if (level >= 0) return level;
    level = SK_ISA_BASELINE;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = SK_ISA_AVX2;
    if (level == SK_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) level = SK_ISA_AVX512;
#endif
    __atomic_store_n(&detected, level, __ATOMIC_RELEASE);
    return level;
}

int sk_set_isa_level(int level) {
    int best = sk_isa_supported();
    if (level < SK_ISA_BASELINE) level = SK_ISA_BASELINE;
    if (level > best) level = best;
    __atomic_store_n(&chosen, level, __ATOMIC_RELEASE);
    return level;
}

int sk_isa_level(void) {
    int level = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (level >= 0) return level;
    level = sk_isa_supported();
    const char *env = getenv("SPACE_ISA");
    if (env) {
        if (strcmp(env, "baseline") == 0) level = SK_ISA_BASELINE;
        else if (strcmp(env, "avx2") == 0 && level > SK_ISA_AVX2) level = SK_ISA_AVX2;
    }
    __atomic_store_n(&chosen, level, __ATOMIC_RELEASE);
    return level;
}

const char *sk_isa_name(int level) {
    switch (level) {
    case SK_ISA_AVX512: return "avx512";
    case SK_ISA_AVX2: return "avx2";
    default: return "baseline";
    }
}
