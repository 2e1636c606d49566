// Tensor memory (see sk_memory.h): a best-fit arena over one reserved address range.
//
// The blocks (used and free) are kept in an array sorted by offset; the arena holds a few hundred of
// them in a SPACE step, so linear scans cost nothing next to the tensors' own use. Sizes are rounded to
// 64 KB: fewer, page-aligned blocks. The range is reserved without backing (MAP_NORESERVE) and advised
// for transparent huge pages: pages become resident when first written and then stay, so a step that
// frees and re-allocates the same tensors touches no new memory.
#include "ckernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SK_ARENA_GRAIN ((size_t)1 << 16)

typedef struct { size_t offset, size; int free; } arena_block;

static struct {
    pthread_mutex_t lock;
    char *base;             // NULL until reserved (or if reserving failed)
    size_t reserved, top;   // top: end of the highest block ever placed
    arena_block *blocks;
    int count, capacity;
    int tried;
    int64_t live, peak, free_bytes;
} arena = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0, 0, 0, 0, 0, 0};

static void reserve(void) {
    arena.tried = 1;
    // Twice the physical memory, at least 8 GB: address space only.
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t want = pages > 0 && page > 0 ? (size_t)pages * (size_t)page * 2 : ((size_t)1 << 34);
    if (want < ((size_t)1 << 33)) want = (size_t)1 << 33;
    void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
#ifdef MADV_HUGEPAGE
    madvise(p, want, MADV_HUGEPAGE);
#endif
    arena.base = p;
    arena.reserved = want;
}

static int insert_block(int at, arena_block b) {
    if (arena.count == arena.capacity) {
        int cap = arena.capacity ? 2 * arena.capacity : 256;
        arena_block *nb = realloc(arena.blocks, sizeof *nb * (size_t)cap);
        if (!nb) return 0;
        arena.blocks = nb; arena.capacity = cap;
    }
    memmove(arena.blocks + at + 1, arena.blocks + at, sizeof *arena.blocks * (size_t)(arena.count - at));
    arena.blocks[at] = b;
    arena.count++;
    return 1;
}

static void remove_block(int at) {
    memmove(arena.blocks + at, arena.blocks + at + 1, sizeof *arena.blocks * (size_t)(arena.count - at - 1));
    arena.count--;
}

static void *arena_alloc(size_t bytes) {
    size_t size = (bytes + SK_ARENA_GRAIN - 1) & ~(SK_ARENA_GRAIN - 1);
    // Best fit among the free blocks.
    int best = -1;
    for (int i = 0; i < arena.count; i++)
        if (arena.blocks[i].free && arena.blocks[i].size >= size && (best < 0 || arena.blocks[i].size < arena.blocks[best].size))
            best = i;
    if (best >= 0) {
        arena_block *b = &arena.blocks[best];
        size_t offset = b->offset;
        if (b->size > size) {
            arena_block rest = {offset + size, b->size - size, 1};
            b->size = size; b->free = 0;
            if (!insert_block(best + 1, rest)) { b->size += rest.size; }  // keep the whole block on failure
        } else {
            b->free = 0;
        }
        arena.free_bytes -= (int64_t)arena.blocks[best].size;
        return arena.base + offset;
    }
    // Grow at the top, taking a free block that ends there.
    size_t offset = arena.top;
    if (arena.count > 0 && arena.blocks[arena.count - 1].free) {
        arena_block *last = &arena.blocks[arena.count - 1];
        offset = last->offset;
        if (offset + size > arena.reserved) return NULL;
        arena.free_bytes -= (int64_t)last->size;
        last->size = size; last->free = 0;
        arena.top = offset + size;
        return arena.base + offset;
    }
    if (offset + size > arena.reserved) return NULL;
    arena_block b = {offset, size, 0};
    if (!insert_block(arena.count, b)) return NULL;
    arena.top = offset + size;
    return arena.base + offset;
}

static void arena_free(void *p) {
    size_t offset = (size_t)((char *)p - arena.base);
    int lo = 0, hi = arena.count - 1, at = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (arena.blocks[mid].offset == offset) { at = mid; break; }
        if (arena.blocks[mid].offset < offset) lo = mid + 1; else hi = mid - 1;
    }
    if (at < 0 || arena.blocks[at].free) abort();  // not an arena block: memory corruption upstream
    arena.blocks[at].free = 1;
    arena.free_bytes += (int64_t)arena.blocks[at].size;
    if (at + 1 < arena.count && arena.blocks[at + 1].free) {
        arena.blocks[at].size += arena.blocks[at + 1].size;
        remove_block(at + 1);
    }
    if (at > 0 && arena.blocks[at - 1].free) {
        arena.blocks[at - 1].size += arena.blocks[at].size;
        remove_block(at);
    }
}

void *sk_mem_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = NULL;
    if (bytes >= SK_ARENA_MIN_BYTES) {
        pthread_mutex_lock(&arena.lock);
        if (!arena.tried) reserve();
        if (arena.base) p = arena_alloc(bytes);
        if (p) {
            arena.live += (int64_t)bytes;
            if (arena.live > arena.peak) arena.peak = arena.live;
        }
        pthread_mutex_unlock(&arena.lock);
        if (p) return p;
    }
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    pthread_mutex_lock(&arena.lock);
    arena.live += (int64_t)bytes;
    if (arena.live > arena.peak) arena.peak = arena.live;
    pthread_mutex_unlock(&arena.lock);
    return p;
}

void sk_mem_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes == 0) bytes = 1;
    pthread_mutex_lock(&arena.lock);
    arena.live -= (int64_t)bytes;
    int inside = arena.base && (char *)p >= arena.base && (char *)p < arena.base + arena.reserved;
    if (inside) arena_free(p);
    pthread_mutex_unlock(&arena.lock);
    if (!inside) free(p);
}

void sk_mem_get_stats(sk_mem_stats *s) {
    pthread_mutex_lock(&arena.lock);
    s->live_bytes = arena.live;
    s->peak_live_bytes = arena.peak;
    s->arena_bytes = (int64_t)arena.top;
    s->arena_free_bytes = arena.free_bytes;
    s->arena_blocks = arena.count;
    pthread_mutex_unlock(&arena.lock);
}

void sk_mem_reset_peak(void) {
    pthread_mutex_lock(&arena.lock);
    arena.peak = arena.live;
    pthread_mutex_unlock(&arena.lock);
}

