// The kernels' thread pool (see sk_pool.h), on the OpenMP runtime's team of threads (GNU libgomp).
//
// oneDNN, which runs the convolutions, is built on libgomp: its worker threads spin for a short while
// after every parallel region and then sleep. A second pool of our own would spin at the same moments
// and fight it for the cores; handing our regions to the same team through GOMP_parallel (the entry
// point `#pragma omp parallel` compiles to in GCC) leaves exactly one set of threads in the process.
#include "ckernels.h"
#include <stdlib.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);
extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int n);

extern void openblas_set_num_threads(int n);

static int configured;  // 0 until the thread count is first decided

int sk_pool_threads(void) {
    if (!__atomic_load_n(&configured, __ATOMIC_ACQUIRE)) {
        const char *env = getenv("SPACE_THREADS");
        int n = env && *env ? atoi(env) : 0;
        if (n >= 1) omp_set_num_threads(n > SK_POOL_MAX_THREADS ? SK_POOL_MAX_THREADS : n);
        // OpenBLAS keeps only the small products (see matmul.c): single-threaded, so that its own
        // worker threads do not spin beside the team's.
        openblas_set_num_threads(1);
        __atomic_store_n(&configured, 1, __ATOMIC_RELEASE);
    }
    int t = omp_get_max_threads();
    if (t < 1) t = 1;
    return t > SK_POOL_MAX_THREADS ? SK_POOL_MAX_THREADS : t;
}

void sk_pool_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > SK_POOL_MAX_THREADS) n = SK_POOL_MAX_THREADS;
    omp_set_num_threads(n);
    __atomic_store_n(&configured, 1, __ATOMIC_RELEASE);
}

int sk_pool_parts(int64_t items, int64_t work) {
    int64_t t = sk_pool_threads();
    if (t > items) t = items;
    int64_t by_work = work / ((int64_t)1 << 15);
    if (t > by_work) t = by_work;
    return t < 1 ? 1 : (int)t;
}

typedef struct {
    sk_pool_fn fn;
    void *ctx;
    int parts;
} pool_job;

// Each team member runs the parts congruent to its number; a team smaller than asked for (the runtime
// may give fewer threads, e.g. inside another region) still runs every part, with the same slices.
static void run_parts(void *arg) {
    const pool_job *job = (const pool_job *)arg;
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (nt < 1) nt = 1;
    for (int p = t; p < job->parts; p += nt) job->fn(job->ctx, p, job->parts);
}

void sk_pool_run(int parts, sk_pool_fn fn, void *ctx) {
    if (parts < 1) return;
    if (parts == 1) { fn(ctx, 0, 1); return; }
    int threads = sk_pool_threads();
    pool_job job = {fn, ctx, parts};
    GOMP_parallel(run_parts, &job, (unsigned)(parts < threads ? parts : threads), 0);
}
