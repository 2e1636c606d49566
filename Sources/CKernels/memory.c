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

typedef struct {
    char *base;             // NULL until reserved (or if reserving failed)
    size_t reserved, top;   // top: end of the highest block ever placed
    arena_block *blocks;
    int count, capacity;
    int tried;
    int64_t free_bytes;
} arena_t;

static arena_t tensors_arena;
static arena_t *current;  // the arena the helpers below work on (set under the lock)
#define arena (*current)

static struct {
    pthread_mutex_t lock;
    int64_t live, peak, scratch_live, scratch_peak;
} mem = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

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

// Tensors take the lowest-addressed free block that fits, from its start; scratch takes the
// highest-addressed one, from its end. Long-lived tensors pack at the bottom and short-lived scratch
// stays above them, in the same pages (one high-water mark), with few holes left between tensors.
static void *arena_alloc(size_t bytes, int high) {
    size_t size = (bytes + SK_ARENA_GRAIN - 1) & ~(SK_ARENA_GRAIN - 1);
    int pick = -1;
    if (!high) {
        for (int i = 0; i < arena.count; i++)
            if (arena.blocks[i].free && arena.blocks[i].size >= size) { pick = i; break; }
    } else {
        for (int i = arena.count - 1; i >= 0; i--)
            if (arena.blocks[i].free && arena.blocks[i].size >= size) { pick = i; break; }
    }
    if (pick >= 0) {
        arena_block *b = &arena.blocks[pick];
        size_t offset;
        if (b->size == size) {
            b->free = 0;
            offset = b->offset;
        } else if (!high) {
            offset = b->offset;
            arena_block rest = {offset + size, b->size - size, 1};
            b->size = size; b->free = 0;
            if (!insert_block(pick + 1, rest)) { b->size += rest.size; size = b->size; }
        } else {
            offset = b->offset + b->size - size;
            arena_block used = {offset, size, 0};
            if (insert_block(pick + 1, used)) {
                arena.blocks[pick].size -= size;
            } else {
                arena.blocks[pick].free = 0;  // keep the whole block on failure
                offset = arena.blocks[pick].offset;
                size = arena.blocks[pick].size;
            }
        }
        arena.free_bytes -= (int64_t)size;
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

static void *alloc_in(arena_t *a, size_t bytes, int high) {
    void *p = NULL;
    if (bytes >= SK_ARENA_MIN_BYTES) {
        pthread_mutex_lock(&mem.lock);
        current = a;
        if (!arena.tried) reserve();
        if (arena.base) p = arena_alloc(bytes, high);
        if (p) {
            mem.live += (int64_t)bytes;
            if (mem.live > mem.peak) mem.peak = mem.live;
        }
        pthread_mutex_unlock(&mem.lock);
        if (p) return p;
    }
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    pthread_mutex_lock(&mem.lock);
    mem.live += (int64_t)bytes;
    if (mem.live > mem.peak) mem.peak = mem.live;
    pthread_mutex_unlock(&mem.lock);
    return p;
}

static void free_in(arena_t *a, void *p, size_t bytes) {
    pthread_mutex_lock(&mem.lock);
    mem.live -= (int64_t)bytes;
    current = a;
    int inside = arena.base && (char *)p >= arena.base && (char *)p < arena.base + arena.reserved;
    if (inside) arena_free(p);
    pthread_mutex_unlock(&mem.lock);
    if (!inside) free(p);
}

void *sk_mem_alloc(size_t bytes) { return alloc_in(&tensors_arena, bytes ? bytes : 1, 0); }
void sk_mem_free(void *p, size_t bytes) { if (p) free_in(&tensors_arena, p, bytes ? bytes : 1); }
void *sk_mem_alloc_scratch(size_t bytes) {
    void *p = alloc_in(&tensors_arena, bytes ? bytes : 1, 1);
    if (p) {
        pthread_mutex_lock(&mem.lock);
        mem.scratch_live += (int64_t)(bytes ? bytes : 1);
        if (mem.scratch_live > mem.scratch_peak) mem.scratch_peak = mem.scratch_live;
        pthread_mutex_unlock(&mem.lock);
    }
    return p;
}
void sk_mem_free_scratch(void *p, size_t bytes) {
    if (!p) return;
    pthread_mutex_lock(&mem.lock);
    mem.scratch_live -= (int64_t)(bytes ? bytes : 1);
    pthread_mutex_unlock(&mem.lock);
    free_in(&tensors_arena, p, bytes ? bytes : 1);
}

void sk_mem_get_stats(sk_mem_stats *s) {
    pthread_mutex_lock(&mem.lock);
    s->live_bytes = mem.live;
    s->peak_live_bytes = mem.peak;
    s->arena_bytes = (int64_t)tensors_arena.top;
    s->arena_free_bytes = tensors_arena.free_bytes;
    s->arena_blocks = tensors_arena.count;
    s->scratch_bytes = mem.scratch_peak;
    pthread_mutex_unlock(&mem.lock);
}

void sk_mem_reset_peak(void) {
    pthread_mutex_lock(&mem.lock);
    mem.peak = mem.live;
    mem.scratch_peak = mem.scratch_live;
    pthread_mutex_unlock(&mem.lock);
}
