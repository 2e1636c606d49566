// Tensor memory: an arena for large buffers, so that a training step reuses the same resident pages
// every time instead of mapping fresh ones (which the kernel must zero) or caching one buffer per size
// (which keeps memory of every size ever freed).
//
// Buffers of at least SK_ARENA_MIN_BYTES come from a large reserved address range, managed best-fit
// with neighbouring free blocks merged; the resident memory it adds is its high-water mark. Smaller
// buffers come from malloc. Every buffer is 64-byte aligned. Thread-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SK_ARENA_MIN_BYTES ((size_t)1 << 18)

// NULL if out of memory.
void *sk_mem_alloc(size_t bytes);
// `bytes` must be what was passed to sk_mem_alloc.
void sk_mem_free(void *p, size_t bytes);

// Scratch that lives only within one kernel call or fused op: placed at the arena's high end (tensors
// fill it from the low end), so short-lived buffers leave few holes between long-lived tensors.
void *sk_mem_alloc_scratch(size_t bytes);
void sk_mem_free_scratch(void *p, size_t bytes);

typedef struct {
    int64_t live_bytes;         // in tensors now
    int64_t peak_live_bytes;    // most live at once since the last sk_mem_reset_peak
    int64_t arena_bytes;        // the arena's high-water mark (resident once touched)
    int64_t arena_free_bytes;   // free blocks below the high-water mark
    int64_t arena_blocks;       // blocks (used and free) in the arena
    int64_t scratch_bytes;      // most scratch live at once since the last sk_mem_reset_peak
} sk_mem_stats;

void sk_mem_get_stats(sk_mem_stats *stats);
void sk_mem_reset_peak(void);
