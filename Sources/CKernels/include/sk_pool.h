// The kernels' thread pool: one set of worker threads shared by every kernel and by oneDNN (the
// OpenMP runtime's team), parked between calls.
//
// A parallel region runs fn(ctx, t, nt) for t = 0..nt-1, the calling thread taking t = 0, and returns
// when every part has finished. Parts are handed out statically (part t always runs the same slice of
// the work), so kernels that reduce into per-part buffers give the same bits from run to run for a
// given part count. Workers spin for a short while after a region (the next kernel usually follows
// within microseconds) and then sleep: nothing spins while the process idles. A region started from
// inside a region runs its parts one after another on the calling thread (same results).
#pragma once
#include <stdint.h>

typedef void (*sk_pool_fn)(void *ctx, int part, int parts);

// Threads a region uses by default: sk_pool_set_threads(n) if called, else the SPACE_THREADS
// environment variable, else the OpenMP default (OMP_NUM_THREADS, or the online CPUs).
int sk_pool_threads(void);
// Sets the thread count for later regions, ours and oneDNN's (1 = everything on the calling thread).
// Clamped to [1, SK_POOL_MAX_THREADS].
void sk_pool_set_threads(int n);
#define SK_POOL_MAX_THREADS 64

// Runs fn over `parts` parts and waits for all of them: min(parts, sk_pool_threads()) threads, each
// taking the parts congruent to its number.
void sk_pool_run(int parts, sk_pool_fn fn, void *ctx);

// The slice [*lo, *hi) of [0, n) that part `part` of `parts` takes: contiguous and balanced.
static inline void sk_pool_slice(int64_t n, int part, int parts, int64_t *lo, int64_t *hi) {
    *lo = n * part / parts;
    *hi = n * (part + 1) / parts;
}

// How many parts to split `items` independent items of `work` floats of memory traffic (or
// arithmetic) in all into: one per thread, but none below ~32k floats per part, where the hand-off
// costs more than it saves.
int sk_pool_parts(int64_t items, int64_t work);
