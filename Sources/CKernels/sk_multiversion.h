// Compiling one kernel body for several instruction sets (internal header).
//
// A file defines its ISA-specific functions in a body header that names them with SK_VERSIONED(f),
// then includes it three times:
//
//     #define SK_BODY "fused_body.h"
//     #include "sk_multiversion.h"
//
// which yields f_avx512, f_avx2 and f_baseline (the first two only on x86-64). The compiler
// vectorises the same C loops for each target; sk_isa_level() picks one at run time.
#ifndef SK_BODY
#error "define SK_BODY before including sk_multiversion.h"
#endif

#define SK_PASTE2(a, b) a##b
#define SK_PASTE(a, b) SK_PASTE2(a, b)

#if defined(__x86_64__)
#  define SK_VERSIONED(f) SK_PASTE(f, _avx512)
#  if defined(__clang__)
#    pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2,f16c"))), apply_to = function)
#  else
#    pragma GCC push_options
#    pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2,f16c")
#  endif
#  include SK_BODY
#  if defined(__clang__)
#    pragma clang attribute pop
#  else
#    pragma GCC pop_options
#  endif
#  undef SK_VERSIONED

#  define SK_VERSIONED(f) SK_PASTE(f, _avx2)
#  if defined(__clang__)
#    pragma clang attribute push(__attribute__((target("avx2,fma,bmi2,f16c"))), apply_to = function)
#  else
#    pragma GCC push_options
#    pragma GCC target("avx2,fma,bmi2,f16c")
#  endif
#  include SK_BODY
#  if defined(__clang__)
#    pragma clang attribute pop
#  else
#    pragma GCC pop_options
#  endif
#  undef SK_VERSIONED
#endif

#define SK_VERSIONED(f) SK_PASTE(f, _baseline)
#include SK_BODY
#undef SK_VERSIONED

// Calls f_<level> for the current ISA level with the given arguments.
#if defined(__x86_64__)
#  define SK_DISPATCH(f, ...)                                            \
    do {                                                                 \
        switch (sk_isa_level()) {                                        \
        case SK_ISA_AVX512: SK_PASTE(f, _avx512)(__VA_ARGS__); break;    \
        case SK_ISA_AVX2: SK_PASTE(f, _avx2)(__VA_ARGS__); break;        \
        default: SK_PASTE(f, _baseline)(__VA_ARGS__); break;             \
        }                                                                \
    } while (0)
#else
#  define SK_DISPATCH(f, ...) SK_PASTE(f, _baseline)(__VA_ARGS__)
#endif
