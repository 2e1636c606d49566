// The runtime under the kernels: the thread pool (every part runs once, statically assigned, nested
// regions serialise) and the tensor memory arena (no overlap, freed memory reused, neighbours merged).
#include "support.h"
#include <atomic>
#include <cstring>
#include <set>

namespace {

struct PartLog {
    std::atomic<int> count[64];
    std::atomic<int> parts_seen;
};

void recordPart(void *ctx, int part, int parts) {
    auto *log = (PartLog *)ctx;
    log->count[part]++;
    log->parts_seen = parts;
}

void nested(void *ctx, int part, int parts) {
    (void)part; (void)parts;
    // A region inside a region runs all its parts on this thread.
    PartLog inner;
    for (auto &c : inner.count) c = 0;
    sk_pool_run(2, recordPart, &inner);
    if (inner.count[0] == 1 && inner.count[1] == 1) (*(std::atomic<int> *)ctx)++;
}

}  // namespace

TEST(Pool, EveryPartRunsExactlyOnce) {
    int threads = sk_pool_threads();
    ASSERT_GE(threads, 1);
    for (int parts : {1, 2, 3, 7, 64}) {
        PartLog log;
        for (auto &c : log.count) c = 0;
        sk_pool_run(parts, recordPart, &log);
        // Every part runs, even when there are more parts than threads.
        EXPECT_EQ(log.parts_seen.load(), parts);
        for (int p = 0; p < 64; p++) EXPECT_EQ(log.count[p].load(), p < parts ? 1 : 0) << "part " << p << " of " << parts;
    }
    std::atomic<int> ok{0};
    sk_pool_run(2, nested, &ok);
    EXPECT_EQ(ok.load(), 2);
}

TEST(Pool, SlicesCoverTheRangeInOrder) {
    for (int64_t n : {0, 1, 5, 1000}) {
        for (int parts : {1, 2, 3, 8}) {
            int64_t next = 0;
            for (int p = 0; p < parts; p++) {
                int64_t lo, hi;
                sk_pool_slice(n, p, parts, &lo, &hi);
                EXPECT_EQ(lo, next);
                EXPECT_GE(hi, lo);
                next = hi;
            }
            EXPECT_EQ(next, n);
        }
    }
    EXPECT_EQ(sk_pool_parts(1, 1 << 30), 1);        // one item cannot be split
    EXPECT_EQ(sk_pool_parts(1000, 100), 1);         // too little work to hand off
}

TEST(Memory, BuffersAreDisjointAlignedAndKeepTheirData) {
    std::vector<std::pair<float *, size_t>> live;
    const size_t sizes[] = {1 << 10, 1 << 18, (1 << 20) + 12, 3 << 20, 1 << 18, 5 << 20, 17};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        float *p = (float *)sk_mem_alloc(sizes[i]);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ((uintptr_t)p % 64, 0u);
        for (size_t k = 0; k < sizes[i] / sizeof(float); k++) p[k] = (float)(i * 1000003 + k);
        live.push_back({p, sizes[i]});
    }
    for (size_t i = 0; i < live.size(); i++)
        for (size_t k = 0; k < live[i].second / sizeof(float); k += 97) ASSERT_EQ(live[i].first[k], (float)(i * 1000003 + k));
    for (auto &b : live) sk_mem_free(b.first, b.second);
}

TEST(Memory, FreedMemoryIsReusedWithoutGrowing) {
    sk_mem_stats before, after;
    // Warm up: a step's pattern of sizes, freed.
    auto step = [] {
        const size_t sizes[] = {8 << 20, 2 << 20, 16 << 20, 1 << 20, 4 << 20};
        void *p[5];
        for (int i = 0; i < 5; i++) p[i] = sk_mem_alloc(sizes[i]);
        for (int i = 0; i < 5; i += 2) sk_mem_free(p[i], sizes[i]);
        for (int i = 1; i < 5; i += 2) sk_mem_free(p[i], sizes[i]);
    };
    step();
    sk_mem_get_stats(&before);
    for (int k = 0; k < 20; k++) step();
    sk_mem_get_stats(&after);
    EXPECT_EQ(after.arena_bytes, before.arena_bytes);  // the same pages, every step
    EXPECT_EQ(after.live_bytes, before.live_bytes);
    // Merged neighbours serve a larger request: two 8 MB blocks freed side by side hold a 16 MB one.
    void *a = sk_mem_alloc(8 << 20), *b = sk_mem_alloc(8 << 20);
    sk_mem_free(a, 8 << 20);
    sk_mem_free(b, 8 << 20);
    sk_mem_get_stats(&before);
    void *c = sk_mem_alloc(16 << 20);
    sk_mem_get_stats(&after);
    EXPECT_EQ(after.arena_bytes, before.arena_bytes);
    sk_mem_free(c, 16 << 20);
}
