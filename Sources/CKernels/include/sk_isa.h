// Instruction sets the kernels pick at run time.
//
// Kernels with an ISA-specific body are compiled three times, for x86-64 with AVX-512 (F, BW, DQ,
// VL), with AVX2 + FMA, and for the baseline target (SSE2 on x86-64, NEON on arm64), and dispatch on
// the level detected at first use. Tests force each level the machine has to compare it with the
// naive twins.
#pragma once

#define SK_ISA_BASELINE 0
#define SK_ISA_AVX2 1
#define SK_ISA_AVX512 2

// The level the kernels run at: the best the CPU has, unless lowered by sk_set_isa_level or by the
// SPACE_ISA environment variable (baseline, avx2 or avx512).
int sk_isa_level(void);
// The best level this CPU supports.
int sk_isa_supported(void);
// Runs later kernels at min(level, sk_isa_supported()); returns the level set.
int sk_set_isa_level(int level);
// "avx512", "avx2" or "baseline".
const char *sk_isa_name(int level);
