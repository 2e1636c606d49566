// Convolutions on oneDNN (see sk_dnn.h).
//
// Each cached convolution holds its primitives (made on first use of each pass), described with
// format "any" so that oneDNN picks the layouts its fastest implementation wants, and, for every
// tensor whose format differs from the one picked, a "bridge": a buffer in the primitive's format and
// the reorder into or out of it. The engine keeps activations in the formats the primitives pick
// (channel blocks of 16), so their bridges are usually empty; weights always cross one (PyTorch's
// OIHW to oneDNN's blocked weight formats), a fraction of a millisecond per call.
//
// Inference convolutions (forward only, for a pass that records no gradient) may run oneDNN's
// inference Winograd, whose weights are pre-transformed into its own format; the transformed weights
// are kept across calls, with a copy of the weights they came from, and redone whenever the weights
// passed differ from that copy (compared byte by byte at each call: an optimizer step, a loaded
// checkpoint or any other write is seen, whatever wrote the memory).
#include "ckernels.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static _Thread_local dnnl_stream_t stream;  // one in-order stream per calling thread
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_status_t engine_status = dnnl_success;
static _Thread_local char last_error[320];

const char *sk_dnn_last_error(void) { return last_error; }

static const char *status_text(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for this description";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown error";
    }
}

static int fail(const char *what, dnnl_status_t s) {
    snprintf(last_error, sizeof last_error, "oneDNN %s: %s", what, status_text(s));
    return SK_ERR_DNN;
}

#define TRY(call, what) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) return fail(what, s_); } while (0)

static void make_engine(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

static int ensure_engine(void) {
    pthread_once(&engine_once, make_engine);
    if (engine_status != dnnl_success) return fail("engine", engine_status);
    if (!stream) TRY(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream");
    return SK_OK;
}

const char *sk_dnn_version(void) {
    static char text[160];
    const dnnl_version_t *v = dnnl_version();
    const char *rt = v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB"
                   : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential" : "threadpool";
    snprintf(text, sizeof text, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch, rt);
    return text;
}

static dnnl_format_tag_t tag_of(int format) {
    switch (format) {
    case SK_FMT_NCHW: return dnnl_nchw;
    case SK_FMT_NHWC: return dnnl_nhwc;
    case SK_FMT_BLOCK16: return dnnl_nChw16c;
    default: return dnnl_format_tag_undef;
    }
}

// ------------------------------------------------------------------------------------------------
// Bridges between a user buffer (our format) and a primitive's memory (its format).

typedef struct {
    dnnl_memory_t user;        // our format; its handle is set at each call
    dnnl_memory_t prim;        // the primitive's format: `user` itself when the formats agree
    dnnl_primitive_t reorder;  // user -> prim for inputs, prim -> user for outputs; NULL when they agree
    size_t prim_bytes;         // the primitive-format buffer, borrowed from the arena for one call
    void *buffer;
} bridge;

static int bridge_make(bridge *b, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md, int input) {
    memset(b, 0, sizeof *b);
    TRY(dnnl_memory_create(&b->user, user_md, engine, DNNL_MEMORY_NONE), "memory");
    if (dnnl_memory_desc_equal(user_md, prim_md)) { b->prim = b->user; return SK_OK; }
    TRY(dnnl_memory_create(&b->prim, prim_md, engine, DNNL_MEMORY_NONE), "memory");
    b->prim_bytes = dnnl_memory_desc_get_size(prim_md);
    dnnl_primitive_desc_t pd;
    if (input) TRY(dnnl_reorder_primitive_desc_create(&pd, user_md, engine, prim_md, engine, NULL), "reorder");
    else TRY(dnnl_reorder_primitive_desc_create(&pd, prim_md, engine, user_md, engine, NULL), "reorder");
    dnnl_status_t s = dnnl_primitive_create(&b->reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    TRY(s, "reorder");
    return SK_OK;
}

// Borrows the primitive-format buffer (when the formats differ) for this call.
static int bridge_acquire(bridge *b) {
    if (!b->reorder || b->buffer) return SK_OK;
    b->buffer = sk_mem_alloc_scratch(b->prim_bytes);
    if (!b->buffer) return fail("bridge buffer", dnnl_out_of_memory);
    TRY(dnnl_memory_set_data_handle(b->prim, b->buffer), "memory");
    return SK_OK;
}

static void bridge_release(bridge *b) {
    if (b->buffer) { sk_mem_free_scratch(b->buffer, b->prim_bytes); b->buffer = NULL; }
}

// Points the bridge at `data` and, for an input, moves it into the primitive's format.
static int bridge_in(bridge *b, const void *data) {
    TRY(dnnl_memory_set_data_handle(b->user, (void *)data), "memory");
    if (!b->reorder) return SK_OK;
    int st = bridge_acquire(b);
    if (st != SK_OK) return st;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b->user}, {DNNL_ARG_TO, b->prim}};
    TRY(dnnl_primitive_execute(b->reorder, stream, 2, args), "reorder");
    return SK_OK;
}

// After a primitive wrote the bridge's memory: moves it into the user buffer and returns the buffer.
static int bridge_out(bridge *b) {
    if (!b->reorder) return SK_OK;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b->prim}, {DNNL_ARG_TO, b->user}};
    dnnl_status_t s = dnnl_primitive_execute(b->reorder, stream, 2, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
    bridge_release(b);
    TRY(s, "reorder");
    return SK_OK;
}

// ------------------------------------------------------------------------------------------------
// Cached convolutions.

// Weight sets an inference convolution keeps (distinct layers of one shape), least recently used evicted.
#define SK_DNN_KEPT 4

typedef struct {
    int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw;
    int src_format, dst_format, has_bias, algorithm, inference;
} conv_key;

struct sk_dnn_conv {
    conv_key key;
    int alg;                          // the algorithm chosen: SK_DNN_DIRECT or SK_DNN_WINOGRAD
    pthread_mutex_t lock;             // the bridges' handles are set per call
    dnnl_memory_desc_t src_md, dst_md, wei_md, bias_md;  // user formats
    dnnl_memory_desc_t any_src, any_dst;                 // the primitives pick their activation formats
    dnnl_convolution_desc_t fwd_desc;
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    bridge f_src, f_wei, f_bias, f_dst;           // forward
    bridge d_dsrc, d_wei, d_ddst;                 // backward data
    bridge w_src, w_ddst, w_dwei, w_dbias;        // backward weights
    float *gw_tmp, *gb_tmp;                       // weight and bias gradients in OIHW / (O), before adding
    char impl[3][64];
    // Scratch memory the primitives need, per pass: taken from the tensor arena for the duration of a
    // call (oneDNN's own scratchpad would keep the largest one resident for the life of the process).
    dnnl_memory_t scratch[3];
    size_t scratch_bytes[3];
    // Inference: weights in the primitive's format kept across calls, each with the OIHW weights it was
    // made from and where those were last passed (layers of the same shape share one convolution).
    struct kept_weights { const float *at; float *source; void *weights; uint64_t used; } kept[SK_DNN_KEPT];
    uint64_t kept_clock;
};

static dnnl_primitive_attr_t scratch_attr;
static pthread_once_t scratch_attr_once = PTHREAD_ONCE_INIT;
static void make_scratch_attr(void) {
    if (dnnl_primitive_attr_create(&scratch_attr) != dnnl_success) { scratch_attr = NULL; return; }
    if (dnnl_primitive_attr_set_scratchpad_mode(scratch_attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(scratch_attr);
        scratch_attr = NULL;
    }
}
static const_dnnl_primitive_attr_t user_scratchpad_attr(void) {
    pthread_once(&scratch_attr_once, make_scratch_attr);
    return scratch_attr;
}

// Records the scratch a pass's primitive descriptor asks for.
static int prepare_scratch(sk_dnn_conv *c, int pass, const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    c->scratch_bytes[pass] = md ? dnnl_memory_desc_get_size(md) : 0;
    if (c->scratch_bytes[pass] == 0) return SK_OK;
    TRY(dnnl_memory_create(&c->scratch[pass], md, engine, DNNL_MEMORY_NONE), "scratchpad");
    return SK_OK;
}

// Runs a primitive with its scratch borrowed from the arena.
static dnnl_status_t execute_with_scratch(sk_dnn_conv *c, int pass, dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args) {
    void *buffer = NULL;
    if (c->scratch_bytes[pass] > 0) {
        buffer = sk_mem_alloc_scratch(c->scratch_bytes[pass]);
        if (!buffer) return dnnl_out_of_memory;
        dnnl_memory_set_data_handle(c->scratch[pass], buffer);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = c->scratch[pass];
        nargs++;
    }
    dnnl_status_t s = dnnl_primitive_execute(p, stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
    if (buffer) sk_mem_free_scratch(buffer, c->scratch_bytes[pass]);
    return s;
}

static struct {
    pthread_mutex_t lock;
    sk_dnn_conv **items;
    int count, capacity;
} cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static int key_equal(const conv_key *a, const conv_key *b) { return memcmp(a, b, sizeof *a) == 0; }

static void record_impl(sk_dnn_conv *c, int pass, const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
        snprintf(c->impl[pass], sizeof c->impl[pass], "%s", s);
}

static int make_forward(sk_dnn_conv *c, dnnl_alg_kind_t alg, dnnl_prop_kind_t prop) {
    const conv_key *k = &c->key;
    int64_t ho = (k->H + 2 * k->ph - k->kh) / k->sh + 1, wo = (k->W + 2 * k->pw - k->kw) / k->sw + 1;
    dnnl_dims_t strides = {k->sh, k->sw}, pl = {k->ph, k->pw};
    dnnl_dims_t pr = {(ho - 1) * k->sh + k->kh - k->H - k->ph, (wo - 1) * k->sw + k->kw - k->W - k->pw};
    dnnl_memory_desc_t any_w, any_b;
    dnnl_dims_t wd = {k->O, k->C, k->kh, k->kw}, bd = {k->O};
    TRY(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights");
    TRY(dnnl_memory_desc_init_by_tag(&any_b, 1, bd, dnnl_f32, dnnl_format_tag_any), "bias");
    TRY(dnnl_convolution_forward_desc_init(&c->fwd_desc, prop, alg, &c->any_src, &any_w,
                                           k->has_bias ? &any_b : NULL, &c->any_dst, strides, pl, pr), "convolution");
    TRY(dnnl_primitive_desc_create(&c->fwd_pd, &c->fwd_desc, user_scratchpad_attr(), engine, NULL), "convolution");
    return SK_OK;
}

static sk_dnn_conv *conv_create(const conv_key *k, int *status) {
    sk_dnn_conv *c = calloc(1, sizeof *c);
    if (!c) { *status = fail("convolution", dnnl_out_of_memory); return NULL; }
    c->key = *k;
    pthread_mutex_init(&c->lock, NULL);
    int64_t ho = (k->H + 2 * k->ph - k->kh) / k->sh + 1, wo = (k->W + 2 * k->pw - k->kw) / k->sw + 1;
    dnnl_dims_t sd = {k->N, k->C, k->H, k->W}, dd = {k->N, k->O, ho, wo}, wd = {k->O, k->C, k->kh, k->kw}, bd = {k->O};
    int st = SK_OK;
    if (dnnl_memory_desc_init_by_tag(&c->src_md, 4, sd, dnnl_f32, tag_of(k->src_format)) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c->dst_md, 4, dd, dnnl_f32, tag_of(k->dst_format)) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c->wei_md, 4, wd, dnnl_f32, dnnl_oihw) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c->bias_md, 1, bd, dnnl_f32, dnnl_a) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c->any_src, 4, sd, dnnl_f32, dnnl_format_tag_any) != dnnl_success
        || dnnl_memory_desc_init_by_tag(&c->any_dst, 4, dd, dnnl_f32, dnnl_format_tag_any) != dnnl_success) {
        *status = fail("memory descriptor", dnnl_invalid_arguments);
        free(c);
        return NULL;
    }
    // Inference Winograd takes pre-transformed weights, so it pays off from a single image on.
    const int blocked3x3 = k->kh == 3 && k->kw == 3 && k->sh == 1 && k->sw == 1 && k->src_format == SK_FMT_BLOCK16
                        && k->dst_format == SK_FMT_BLOCK16 && k->C >= 16 && k->O >= 16 && ho * wo >= 16;
    int wino = k->algorithm == SK_DNN_WINOGRAD
            || (k->algorithm == SK_DNN_AUTO && blocked3x3 && (k->inference || k->N * ho * wo >= 8192));
    // Direct convolutions keep the training primitive (the inference one may pick other activation formats).
    const dnnl_prop_kind_t prop = k->inference ? dnnl_forward_inference : dnnl_forward_training;
    st = wino ? make_forward(c, dnnl_convolution_winograd, prop) : !SK_OK;
    if (st == SK_OK) c->alg = SK_DNN_WINOGRAD;
    else if (k->algorithm == SK_DNN_WINOGRAD) { *status = st; free(c); return NULL; }
    else {
        st = make_forward(c, dnnl_convolution_direct, dnnl_forward_training);
        c->alg = SK_DNN_DIRECT;
    }
    if (st != SK_OK) { *status = st; free(c); return NULL; }
    *status = SK_OK;
    return c;
}

static sk_dnn_conv *conv_get(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                             int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                             int src_format, int dst_format, int has_bias, int algorithm, int inference, int *status) {
    int dummy;
    if (!status) status = &dummy;
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0) { *status = SK_ERR_ARG; return NULL; }
    if (N < 1 || C < 1 || H < 1 || W < 1 || O < 1 || kh < 1 || kw < 1 || H + 2 * ph < kh || W + 2 * pw < kw) {
        *status = SK_ERR_SHAPE;
        return NULL;
    }
    if (tag_of(src_format) == dnnl_format_tag_undef || tag_of(dst_format) == dnnl_format_tag_undef
        || (src_format == SK_FMT_BLOCK16 && C % 16 != 0) || (dst_format == SK_FMT_BLOCK16 && O % 16 != 0)
        || algorithm < SK_DNN_AUTO || algorithm > SK_DNN_WINOGRAD) {
        *status = SK_ERR_ARG;
        return NULL;
    }
    if ((*status = ensure_engine()) != SK_OK) return NULL;
    conv_key k;
    memset(&k, 0, sizeof k);
    k.N = N; k.C = C; k.H = H; k.W = W; k.O = O; k.kh = kh; k.kw = kw; k.sh = sh; k.sw = sw; k.ph = ph; k.pw = pw;
    k.src_format = src_format; k.dst_format = dst_format; k.has_bias = has_bias ? 1 : 0; k.algorithm = algorithm;
    k.inference = inference ? 1 : 0;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.count; i++)
        if (key_equal(&cache.items[i]->key, &k)) {
            sk_dnn_conv *hit = cache.items[i];
            pthread_mutex_unlock(&cache.lock);
            *status = SK_OK;
            return hit;
        }
    sk_dnn_conv *c = conv_create(&k, status);
    if (c) {
        if (cache.count == cache.capacity) {
            int cap = cache.capacity ? 2 * cache.capacity : 64;
            sk_dnn_conv **items = realloc(cache.items, sizeof *items * (size_t)cap);
            if (!items) { pthread_mutex_unlock(&cache.lock); *status = fail("cache", dnnl_out_of_memory); return NULL; }
            cache.items = items; cache.capacity = cap;
        }
        cache.items[cache.count++] = c;
    }
    pthread_mutex_unlock(&cache.lock);
    return c;
}

sk_dnn_conv *sk_dnn_conv_get(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                             int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                             int src_format, int dst_format, int has_bias, int algorithm, int *status) {
    return conv_get(N, C, H, W, O, kh, kw, sh, sw, ph, pw, src_format, dst_format, has_bias, algorithm, 0, status);
}

sk_dnn_conv *sk_dnn_conv_get_inference(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                                       int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                       int src_format, int dst_format, int has_bias, int algorithm, int *status) {
    return conv_get(N, C, H, W, O, kh, kw, sh, sw, ph, pw, src_format, dst_format, has_bias, algorithm, 1, status);
}

int sk_dnn_conv_is_inference(const sk_dnn_conv *conv) { return conv->key.inference; }

int sk_dnn_conv_algorithm(const sk_dnn_conv *conv) { return conv->alg; }
const char *sk_dnn_conv_impl(const sk_dnn_conv *conv, int pass) { return pass >= 0 && pass < 3 ? conv->impl[pass] : ""; }

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(pd, what, index);
}

static int prepare_forward(sk_dnn_conv *c) {
    if (c->fwd) return SK_OK;
    const_dnnl_primitive_desc_t pd = c->fwd_pd;
    int st;
    if ((st = bridge_make(&c->f_src, &c->src_md, pd_md(pd, dnnl_query_src_md, 0), 1)) != SK_OK) return st;
    if ((st = bridge_make(&c->f_wei, &c->wei_md, pd_md(pd, dnnl_query_weights_md, 0), 1)) != SK_OK) return st;
    if (c->key.has_bias && (st = bridge_make(&c->f_bias, &c->bias_md, pd_md(pd, dnnl_query_weights_md, 1), 1)) != SK_OK) return st;
    if ((st = bridge_make(&c->f_dst, &c->dst_md, pd_md(pd, dnnl_query_dst_md, 0), 0)) != SK_OK) return st;
    if ((st = prepare_scratch(c, 0, pd)) != SK_OK) return st;
    TRY(dnnl_primitive_create(&c->fwd, pd), "convolution forward");
    record_impl(c, 0, pd);
    return SK_OK;
}

// Byte equality of two buffers, compared in parallel on the pool (weights are read from memory, not
// cache, between calls: two cores compare at about twice the rate of one).
typedef struct { const char *a, *b; size_t bytes; int differ[SK_POOL_MAX_THREADS]; } equal_job;

static void equal_part(void *ctx, int part, int parts) {
    equal_job *j = ctx;
    int64_t lo, hi;
    sk_pool_slice((int64_t)j->bytes, part, parts, &lo, &hi);
    j->differ[part] = memcmp(j->a + lo, j->b + lo, (size_t)(hi - lo)) != 0;
}

static int same_bytes(const void *a, const void *b, size_t bytes) {
    equal_job j = {a, b, bytes, {0}};
    int parts = bytes >= ((size_t)1 << 18) ? sk_pool_threads() : 1;
    if (parts > SK_POOL_MAX_THREADS) parts = SK_POOL_MAX_THREADS;
    if (parts <= 1) return memcmp(a, b, bytes) == 0;
    sk_pool_run(parts, equal_part, &j);
    for (int i = 0; i < parts; i++) if (j.differ[i]) return 0;
    return 1;
}

// Inference: points the primitive at kept weights made from `w`: the set last passed at the same
// address if its source still equals `w`, else any set whose source equals `w`, else a set (the one at
// this address, a free one or the least recently used) transformed from `w` now.
static int weights_in_kept(sk_dnn_conv *c, const float *w) {
    bridge *b = &c->f_wei;
    TRY(dnnl_memory_set_data_handle(b->user, (void *)w), "memory");
    if (!b->reorder) return SK_OK;
    const conv_key *k = &c->key;
    const size_t bytes = (size_t)(k->O * k->C * k->kh * k->kw) * sizeof(float);
    struct kept_weights *hit = NULL, *slot = NULL;
    for (int i = 0; i < SK_DNN_KEPT && !hit; i++)
        if (c->kept[i].weights && c->kept[i].at == w && same_bytes(c->kept[i].source, w, bytes)) hit = &c->kept[i];
    for (int i = 0; i < SK_DNN_KEPT && !hit; i++)   // the set at this address was compared above
        if (c->kept[i].weights && c->kept[i].at != w && same_bytes(c->kept[i].source, w, bytes)) hit = &c->kept[i];
    if (!hit) {
        for (int i = 0; i < SK_DNN_KEPT && !slot; i++) if (c->kept[i].weights && c->kept[i].at == w) slot = &c->kept[i];
        for (int i = 0; i < SK_DNN_KEPT && !slot; i++) if (!c->kept[i].weights) slot = &c->kept[i];
        if (!slot) {
            slot = &c->kept[0];
            for (int i = 1; i < SK_DNN_KEPT; i++) if (c->kept[i].used < slot->used) slot = &c->kept[i];
        }
        if (!slot->weights) {
            slot->weights = aligned_alloc(64, (b->prim_bytes + 63) & ~(size_t)63);
            slot->source = malloc(bytes);
            if (!slot->weights || !slot->source) {
                free(slot->weights); free(slot->source);
                memset(slot, 0, sizeof *slot);
                return fail("kept weights", dnnl_out_of_memory);
            }
        }
        TRY(dnnl_memory_set_data_handle(b->prim, slot->weights), "memory");
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b->user}, {DNNL_ARG_TO, b->prim}};
        dnnl_status_t s = dnnl_primitive_execute(b->reorder, stream, 2, args);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
        if (s != dnnl_success) {  // never keep half-made weights
            free(slot->weights); free(slot->source);
            memset(slot, 0, sizeof *slot);
            return fail("reorder", s);
        }
        memcpy(slot->source, w, bytes);
        hit = slot;
    }
    hit->at = w;
    hit->used = ++c->kept_clock;
    TRY(dnnl_memory_set_data_handle(b->prim, hit->weights), "memory");
    return SK_OK;
}

int sk_dnn_conv_forward(sk_dnn_conv *c, float *y, const float *x, const float *w, const float *b) {
    if (c->key.has_bias && !b) return SK_ERR_ARG;
    int st = ensure_engine();
    if (st != SK_OK) return st;
    pthread_mutex_lock(&c->lock);
    st = prepare_forward(c);
    if (st == SK_OK) st = bridge_in(&c->f_src, x);
    if (st == SK_OK) st = c->key.inference ? weights_in_kept(c, w) : bridge_in(&c->f_wei, w);
    if (st == SK_OK && c->key.has_bias) st = bridge_in(&c->f_bias, b);
    if (st == SK_OK) st = bridge_acquire(&c->f_dst);
    if (st == SK_OK) {
        dnnl_memory_set_data_handle(c->f_dst.user, y);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c->f_src.prim}, {DNNL_ARG_WEIGHTS, c->f_wei.prim},
                                   {DNNL_ARG_DST, c->f_dst.prim}, {DNNL_ARG_BIAS, c->key.has_bias ? c->f_bias.prim : NULL}};
        dnnl_status_t s = execute_with_scratch(c, 0, c->fwd, c->key.has_bias ? 4 : 3, args);
        st = s == dnnl_success ? bridge_out(&c->f_dst) : fail("convolution forward", s);
    }
    bridge_release(&c->f_src); bridge_release(&c->f_wei); bridge_release(&c->f_bias); bridge_release(&c->f_dst);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static void conv_geometry(const conv_key *k, dnnl_dims_t strides, dnnl_dims_t pl, dnnl_dims_t pr) {
    int64_t ho = (k->H + 2 * k->ph - k->kh) / k->sh + 1, wo = (k->W + 2 * k->pw - k->kw) / k->sw + 1;
    strides[0] = k->sh; strides[1] = k->sw; pl[0] = k->ph; pl[1] = k->pw;
    pr[0] = (ho - 1) * k->sh + k->kh - k->H - k->ph;
    pr[1] = (wo - 1) * k->sw + k->kw - k->W - k->pw;
}

static int prepare_backward_data(sk_dnn_conv *c) {
    if (c->bwd_data) return SK_OK;
    dnnl_dims_t strides, pl, pr;
    conv_geometry(&c->key, strides, pl, pr);
    dnnl_memory_desc_t any_w;
    dnnl_dims_t wd = {c->key.O, c->key.C, c->key.kh, c->key.kw};
    TRY(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights");
    dnnl_convolution_desc_t d;
    dnnl_alg_kind_t alg = c->alg == SK_DNN_WINOGRAD ? dnnl_convolution_winograd : dnnl_convolution_direct;
    TRY(dnnl_convolution_backward_data_desc_init(&d, alg, &c->any_src, &any_w, &c->any_dst, strides, pl, pr), "convolution backward data");
    dnnl_primitive_desc_t pd;
    TRY(dnnl_primitive_desc_create(&pd, &d, user_scratchpad_attr(), engine, c->fwd_pd), "convolution backward data");
    int st;
    if ((st = bridge_make(&c->d_dsrc, &c->src_md, pd_md(pd, dnnl_query_diff_src_md, 0), 0)) != SK_OK
        || (st = bridge_make(&c->d_wei, &c->wei_md, pd_md(pd, dnnl_query_weights_md, 0), 1)) != SK_OK
        || (st = bridge_make(&c->d_ddst, &c->dst_md, pd_md(pd, dnnl_query_diff_dst_md, 0), 1)) != SK_OK) {
        dnnl_primitive_desc_destroy(pd);
        return st;
    }
    if ((st = prepare_scratch(c, 1, pd)) != SK_OK) { dnnl_primitive_desc_destroy(pd); return st; }
    dnnl_status_t s = dnnl_primitive_create(&c->bwd_data, pd);
    record_impl(c, 1, pd);
    dnnl_primitive_desc_destroy(pd);
    TRY(s, "convolution backward data");
    return SK_OK;
}

int sk_dnn_conv_backward_data(sk_dnn_conv *c, float *gx, const float *gy, const float *w) {
    if (c->key.inference) return SK_ERR_ARG;
    int st = ensure_engine();
    if (st != SK_OK) return st;
    pthread_mutex_lock(&c->lock);
    st = prepare_forward(c);
    if (st == SK_OK) st = prepare_backward_data(c);
    if (st == SK_OK) st = bridge_in(&c->d_ddst, gy);
    if (st == SK_OK) st = bridge_in(&c->d_wei, w);
    if (st == SK_OK) st = bridge_acquire(&c->d_dsrc);
    if (st == SK_OK) {
        dnnl_memory_set_data_handle(c->d_dsrc.user, gx);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, c->d_ddst.prim}, {DNNL_ARG_WEIGHTS, c->d_wei.prim},
                                   {DNNL_ARG_DIFF_SRC, c->d_dsrc.prim}};
        dnnl_status_t s = execute_with_scratch(c, 1, c->bwd_data, 3, args);
        st = s == dnnl_success ? bridge_out(&c->d_dsrc) : fail("convolution backward data", s);
    }
    bridge_release(&c->d_ddst); bridge_release(&c->d_wei); bridge_release(&c->d_dsrc);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static int prepare_backward_weights(sk_dnn_conv *c) {
    if (c->bwd_weights) return SK_OK;
    const conv_key *k = &c->key;
    dnnl_dims_t strides, pl, pr;
    conv_geometry(k, strides, pl, pr);
    dnnl_memory_desc_t any_w, any_b;
    dnnl_dims_t wd = {k->O, k->C, k->kh, k->kw}, bd = {k->O};
    TRY(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, dnnl_f32, dnnl_format_tag_any), "weights");
    TRY(dnnl_memory_desc_init_by_tag(&any_b, 1, bd, dnnl_f32, dnnl_format_tag_any), "bias");
    dnnl_convolution_desc_t d;
    dnnl_alg_kind_t alg = c->alg == SK_DNN_WINOGRAD ? dnnl_convolution_winograd : dnnl_convolution_direct;
    TRY(dnnl_convolution_backward_weights_desc_init(&d, alg, &c->any_src, &any_w, k->has_bias ? &any_b : NULL,
                                                    &c->any_dst, strides, pl, pr), "convolution backward weights");
    dnnl_primitive_desc_t pd;
    TRY(dnnl_primitive_desc_create(&pd, &d, user_scratchpad_attr(), engine, c->fwd_pd), "convolution backward weights");
    int st;
    if ((st = bridge_make(&c->w_src, &c->src_md, pd_md(pd, dnnl_query_src_md, 0), 1)) != SK_OK
        || (st = bridge_make(&c->w_ddst, &c->dst_md, pd_md(pd, dnnl_query_diff_dst_md, 0), 1)) != SK_OK
        || (st = bridge_make(&c->w_dwei, &c->wei_md, pd_md(pd, dnnl_query_diff_weights_md, 0), 0)) != SK_OK
        || (k->has_bias && (st = bridge_make(&c->w_dbias, &c->bias_md, pd_md(pd, dnnl_query_diff_weights_md, 1), 0)) != SK_OK)) {
        dnnl_primitive_desc_destroy(pd);
        return st;
    }
    c->gw_tmp = malloc(sizeof(float) * (size_t)(k->O * k->C * k->kh * k->kw));
    c->gb_tmp = malloc(sizeof(float) * (size_t)k->O);
    if (!c->gw_tmp || !c->gb_tmp) { dnnl_primitive_desc_destroy(pd); return fail("convolution backward weights", dnnl_out_of_memory); }
    if ((st = prepare_scratch(c, 2, pd)) != SK_OK) { dnnl_primitive_desc_destroy(pd); return st; }
    dnnl_status_t s = dnnl_primitive_create(&c->bwd_weights, pd);
    record_impl(c, 2, pd);
    dnnl_primitive_desc_destroy(pd);
    TRY(s, "convolution backward weights");
    return SK_OK;
}

int sk_dnn_conv_backward_weights(sk_dnn_conv *c, float *gw, float *gb, const float *gy, const float *x) {
    if (c->key.inference) return SK_ERR_ARG;
    if (!gw && !gb) return SK_OK;
    int st = ensure_engine();
    if (st != SK_OK) return st;
    pthread_mutex_lock(&c->lock);
    st = prepare_forward(c);
    if (st == SK_OK) st = prepare_backward_weights(c);
    if (st == SK_OK) st = bridge_in(&c->w_src, x);
    if (st == SK_OK) st = bridge_in(&c->w_ddst, gy);
    if (st == SK_OK) st = bridge_acquire(&c->w_dwei);
    if (st == SK_OK) st = bridge_acquire(&c->w_dbias);
    if (st == SK_OK) {
        const conv_key *k = &c->key;
        dnnl_memory_set_data_handle(c->w_dwei.user, c->gw_tmp);
        if (k->has_bias) dnnl_memory_set_data_handle(c->w_dbias.user, c->gb_tmp);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c->w_src.prim}, {DNNL_ARG_DIFF_DST, c->w_ddst.prim},
                                   {DNNL_ARG_DIFF_WEIGHTS, c->w_dwei.prim},
                                   {DNNL_ARG_DIFF_BIAS, k->has_bias ? c->w_dbias.prim : NULL}};
        dnnl_status_t s = execute_with_scratch(c, 2, c->bwd_weights, k->has_bias ? 4 : 3, args);
        st = s == dnnl_success ? bridge_out(&c->w_dwei) : fail("convolution backward weights", s);
        if (st == SK_OK && k->has_bias) st = bridge_out(&c->w_dbias);
        if (st == SK_OK) {
            int64_t nw = k->O * k->C * k->kh * k->kw;
            if (gw) for (int64_t i = 0; i < nw; i++) gw[i] += c->gw_tmp[i];
            if (gb && k->has_bias) for (int64_t i = 0; i < k->O; i++) gb[i] += c->gb_tmp[i];
        }
    }
    bridge_release(&c->w_src); bridge_release(&c->w_ddst); bridge_release(&c->w_dwei); bridge_release(&c->w_dbias);
    pthread_mutex_unlock(&c->lock);
    return st;
}

// ------------------------------------------------------------------------------------------------

// Cached activation reorders, one per (sizes, formats).
typedef struct {
    int64_t N, C, H, W;
    int src_format, dst_format;
    pthread_mutex_t lock;
    dnnl_memory_t src, dst;
    dnnl_primitive_t reorder;
} reorder_entry;

static struct {
    pthread_mutex_t lock;
    reorder_entry **items;
    int count, capacity;
} reorders = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static reorder_entry *reorder_get(int64_t N, int64_t C, int64_t H, int64_t W, int src_format, int dst_format, int *status) {
    pthread_mutex_lock(&reorders.lock);
    for (int i = 0; i < reorders.count; i++) {
        reorder_entry *e = reorders.items[i];
        if (e->N == N && e->C == C && e->H == H && e->W == W && e->src_format == src_format && e->dst_format == dst_format) {
            pthread_mutex_unlock(&reorders.lock);
            return e;
        }
    }
    reorder_entry *e = calloc(1, sizeof *e);
    dnnl_dims_t d = {N, C, H, W};
    dnnl_memory_desc_t smd, dmd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = e ? dnnl_success : dnnl_out_of_memory;
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&smd, 4, d, dnnl_f32, tag_of(src_format));
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&dmd, 4, d, dnnl_f32, tag_of(dst_format));
    if (s == dnnl_success) s = dnnl_memory_create(&e->src, &smd, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&e->dst, &dmd, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&pd, &smd, engine, &dmd, engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&e->reorder, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (s == dnnl_success && reorders.count == reorders.capacity) {
        int cap = reorders.capacity ? 2 * reorders.capacity : 64;
        reorder_entry **items = realloc(reorders.items, sizeof *items * (size_t)cap);
        if (items) { reorders.items = items; reorders.capacity = cap; } else s = dnnl_out_of_memory;
    }
    if (s != dnnl_success) {
        if (e) {
            if (e->reorder) dnnl_primitive_destroy(e->reorder);
            if (e->src) dnnl_memory_destroy(e->src);
            if (e->dst) dnnl_memory_destroy(e->dst);
            free(e);
        }
        pthread_mutex_unlock(&reorders.lock);
        *status = fail("reorder", s);
        return NULL;
    }
    e->N = N; e->C = C; e->H = H; e->W = W; e->src_format = src_format; e->dst_format = dst_format;
    pthread_mutex_init(&e->lock, NULL);
    reorders.items[reorders.count++] = e;
    pthread_mutex_unlock(&reorders.lock);
    return e;
}

int sk_dnn_reorder(float *dst, int dst_format, const float *src, int src_format,
                   int64_t N, int64_t C, int64_t H, int64_t W) {
    if (tag_of(src_format) == dnnl_format_tag_undef || tag_of(dst_format) == dnnl_format_tag_undef) return SK_ERR_ARG;
    if (N < 0 || C < 1 || H < 1 || W < 1) return SK_ERR_SHAPE;
    if (((src_format == SK_FMT_BLOCK16) || (dst_format == SK_FMT_BLOCK16)) && C % 16 != 0) return SK_ERR_ARG;
    if (N == 0) return SK_OK;
    if (src_format == dst_format) { memcpy(dst, src, sizeof(float) * (size_t)(N * C * H * W)); return SK_OK; }
    int st = ensure_engine();
    if (st != SK_OK) return st;
    reorder_entry *e = reorder_get(N, C, H, W, src_format, dst_format, &st);
    if (!e) return st;
    pthread_mutex_lock(&e->lock);
    dnnl_memory_set_data_handle(e->src, (void *)src);
    dnnl_memory_set_data_handle(e->dst, dst);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, e->src}, {DNNL_ARG_TO, e->dst}};
    dnnl_status_t s = dnnl_primitive_execute(e->reorder, stream, 2, args);
    if (s == dnnl_success) s = dnnl_stream_wait(stream);
    pthread_mutex_unlock(&e->lock);
    return s == dnnl_success ? SK_OK : fail("reorder", s);
}
