/* model.c - LLaMA hyper-parameters, weight binding, the KV cache and the
 * forward pass.
 *
 * Weights are used in place from the mapped GGUF file (never copied); only
 * norm vectors stored in a non-F32 type are converted at load. The forward
 * pass runs one position at a time: RMSNorm, Q/K/V, RoPE (llama.cpp's
 * "normal" mode: adjacent pairs), grouped-query attention over an FP16 KV
 * cache with a single-pass online softmax, SwiGLU, final norm, logits.
 * Matrix-vector products are split by rows over the context's thread pool. */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model_impl.h"

#define MAX_LAYERS 1024
#define MAX_EMBD 65536
#define MAX_FF (1 << 20)
#define MAX_CTX (1 << 20)
/* Batch positions one attention call takes for a KV head: with the
 * group's query heads, 16 queries share each K block's conversion (32
 * measured no faster and takes twice the scratch). */
#define ATTN_POS(group) ((group) >= 16 ? 1 : 16 / (group))

int pl_set_err(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

#define set_err pl_set_err

/* ---- loading ---------------------------------------------------------- */

static int get_u32(const pl_model *m, const char *key, int required, uint32_t def, uint32_t lo, uint32_t hi,
                   uint32_t *out, char *err, size_t errlen) {
    int rc = gguf_get_u32(&m->gguf, key, out);
    if (rc == 1) {
        if (required) return set_err(err, errlen, PL_ERR_FORMAT, "missing metadata key %s", key);
        *out = def;
        return 0;
    }
    if (rc < 0) return set_err(err, errlen, PL_ERR_FORMAT, "metadata key %s has a bad type or value", key);
    if (*out < lo || *out > hi)
        return set_err(err, errlen, PL_ERR_FORMAT, "%s = %u is out of range [%u, %u]", key, *out, lo, hi);
    return 0;
}

static int get_f32(const pl_model *m, const char *key, float def, float lo, float hi, float *out, char *err,
                   size_t errlen) {
    int rc = gguf_get_f32(&m->gguf, key, out);
    if (rc == 1) {
        *out = def;
        return 0;
    }
    if (rc < 0 || !(*out >= lo && *out <= hi))
        return set_err(err, errlen, PL_ERR_FORMAT, "metadata key %s has a bad type or value", key);
    return 0;
}

/* Bind tensor `name` as a [cols] -> [rows] matrix (rows = 0: a vector). */
static int bind(pl_model *m, pl_weight *w, const char *name, int64_t cols, int64_t rows, int optional, char *err,
                size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(&m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (optional) return 0;
        return set_err(err, errlen, PL_ERR_FORMAT, "missing tensor %s", name);
    }
    int64_t want_rows = rows ? rows : 1;
    if (t->ne[0] != cols || t->ne[1] != want_rows || t->ne[2] != 1 || t->ne[3] != 1)
        return set_err(err, errlen, PL_ERR_FORMAT, "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)cols, (long long)want_rows);
    w->tr = pl_type_traits_get(t->type);
    w->type = t->type;
    w->data = t->data;
    w->rows = want_rows;
    w->cols = cols;
    w->row_bytes = pl_row_size(t->type, cols);
    return 0;
}

/* A norm vector as float: in place when F32, else converted. */
static int bind_norm(pl_model *m, const float **out, float **slot, const char *name, int n, char *err, size_t errlen) {
    pl_weight w;
    int rc = bind(m, &w, name, n, 0, 0, err, errlen);
    if (rc) return rc;
    if (w.type == PL_TYPE_F32 && ((uintptr_t)w.data % sizeof(float)) == 0) {
        *out = w.data;
        return 0;
    }
    w.tr->to_float(w.data, *slot, n);
    *out = *slot;
    *slot += n;
    return 0;
}

static int load(pl_model *m, char *err, size_t errlen) {
    int rc;
    gguf_str arch;
    if (gguf_get_str(&m->gguf, "general.architecture", &arch) == 0 && !gguf_str_eq(arch, "llama"))
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "unsupported architecture '%.*s' (only llama)",
                       (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    if ((rc = pl_tokenizer_load(&m->tok, &m->gguf, err, errlen))) return rc;
    pl_model_info *in = &m->info;
    in->n_vocab = pl_tokenizer_n_vocab(m->tok);
    if (m->gguf.n_tensors == 0) return 0; /* vocab-only: tokenization works */
    in->has_weights = 1;

    uint32_t n_embd, n_layer, n_ff, n_head, n_head_kv, n_rot, n_ctx;
    if ((rc = get_u32(m, "llama.embedding_length", 1, 0, 1, MAX_EMBD, &n_embd, err, errlen)) ||
        (rc = get_u32(m, "llama.block_count", 1, 0, 1, MAX_LAYERS, &n_layer, err, errlen)) ||
        (rc = get_u32(m, "llama.feed_forward_length", 1, 0, 1, MAX_FF, &n_ff, err, errlen)) ||
        (rc = get_u32(m, "llama.attention.head_count", 1, 0, 1, n_embd, &n_head, err, errlen)) ||
        (rc = get_u32(m, "llama.attention.head_count_kv", 0, n_head, 1, n_head, &n_head_kv, err, errlen)) ||
        (rc = get_u32(m, "llama.context_length", 0, 2048, 1, 0xffffffffu, &n_ctx, err, errlen)))
        return rc;
    if (n_embd % n_head)
        return set_err(err, errlen, PL_ERR_FORMAT, "embedding_length %u is not divisible by head_count %u", n_embd,
                       n_head);
    if (n_head % n_head_kv)
        return set_err(err, errlen, PL_ERR_FORMAT, "head_count %u is not divisible by head_count_kv %u", n_head,
                       n_head_kv);
    uint32_t head_dim = n_embd / n_head;
    if (head_dim > PL_MAX_HEAD_DIM)
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "head dimension %u is larger than %d", head_dim,
                       PL_MAX_HEAD_DIM);
    if ((rc = get_u32(m, "llama.rope.dimension_count", 0, head_dim, 2, head_dim, &n_rot, err, errlen))) return rc;
    if (n_rot % 2) return set_err(err, errlen, PL_ERR_FORMAT, "rope.dimension_count %u is odd", n_rot);
    if ((rc = get_f32(m, "llama.attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f, &in->rms_eps, err, errlen)) ||
        (rc = get_f32(m, "llama.rope.freq_base", 10000.0f, 1e-3f, 1e12f, &in->rope_base, err, errlen)))
        return rc;
    in->n_embd = (int)n_embd;
    in->n_layer = (int)n_layer;
    in->n_ff = (int)n_ff;
    in->n_head = (int)n_head;
    in->n_head_kv = (int)n_head_kv;
    in->n_rot = (int)n_rot;
    in->n_ctx_train = n_ctx > MAX_CTX ? MAX_CTX : (int)n_ctx;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) in->weight_bytes += m->gguf.tensors[i].nbytes;

    int64_t kv_dim = (int64_t)head_dim * n_head_kv;
    m->layers = calloc(n_layer, sizeof *m->layers);
    m->owned_norms = malloc(((size_t)n_layer * 2 + 1) * n_embd * sizeof(float));
    if (!m->layers || !m->owned_norms) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    float *slot = m->owned_norms;

    if ((rc = bind(m, &m->tok_embd, "token_embd.weight", n_embd, in->n_vocab, 0, err, errlen)) ||
        (rc = bind_norm(m, &m->output_norm, &slot, "output_norm.weight", (int)n_embd, err, errlen)) ||
        (rc = bind(m, &m->output, "output.weight", n_embd, in->n_vocab, 1, err, errlen)))
        return rc;
    if (!m->output.data) {
        m->output = m->tok_embd;
        in->tied_output = 1;
    }
    for (uint32_t l = 0; l < n_layer; l++) {
        pl_layer *L = &m->layers[l];
        char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%u.%s", l, s), name)
        if ((rc = bind_norm(m, &L->attn_norm, &slot, NAME("attn_norm.weight"), (int)n_embd, err, errlen)) ||
            (rc = bind(m, &L->wq, NAME("attn_q.weight"), n_embd, n_embd, 0, err, errlen)) ||
            (rc = bind(m, &L->wk, NAME("attn_k.weight"), n_embd, kv_dim, 0, err, errlen)) ||
            (rc = bind(m, &L->wv, NAME("attn_v.weight"), n_embd, kv_dim, 0, err, errlen)) ||
            (rc = bind(m, &L->wo, NAME("attn_output.weight"), n_embd, n_embd, 0, err, errlen)) ||
            (rc = bind_norm(m, &L->ffn_norm, &slot, NAME("ffn_norm.weight"), (int)n_embd, err, errlen)) ||
            (rc = bind(m, &L->w_gate, NAME("ffn_gate.weight"), n_embd, n_ff, 0, err, errlen)) ||
            (rc = bind(m, &L->w_up, NAME("ffn_up.weight"), n_embd, n_ff, 0, err, errlen)) ||
            (rc = bind(m, &L->w_down, NAME("ffn_down.weight"), n_ff, n_embd, 0, err, errlen)))
            return rc;
#undef NAME
    }
    in->ftype = m->layers[0].wq.tr->name;

    /* each layer's byte span in the file, for paging hints */
    m->layer_off = calloc(n_layer, sizeof *m->layer_off);
    m->layer_len = calloc(n_layer, sizeof *m->layer_len);
    if (!m->layer_off || !m->layer_len) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < n_layer; l++) {
        const pl_layer *L = &m->layers[l];
        const pl_weight *ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        size_t lo = (size_t)-1, hi = 0;
        for (int i = 0; i < 7; i++) {
            size_t o = (size_t)((const uint8_t *)ws[i]->data - m->gguf.base), e = o + ws[i]->row_bytes * ws[i]->rows;
            if (o < lo) lo = o;
            if (e > hi) hi = e;
        }
        m->layer_off[l] = lo;
        m->layer_len[l] = hi - lo;
    }
    return 0;
}

static int open_common(pl_model **out, pl_model *m, const void *buf, size_t len, char *err, size_t errlen) {
    int rc;
    *out = NULL;
    if (gguf_parse(&m->gguf, buf, len, err, errlen)) {
        rc = PL_ERR_FORMAT;
        goto fail;
    }
    if ((rc = load(m, err, errlen))) goto fail;
    *out = m;
    return 0;
fail:
    pl_model_close(m);
    return rc;
}

int pl_model_open(pl_model **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    pl_model *m = calloc(1, sizeof *m);
    if (!m) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    if (pl_map_file(&m->map, path, err, errlen)) {
        free(m);
        return PL_ERR_IO;
    }
    return open_common(out, m, m->map.addr, m->map.size, err, errlen);
}

int pl_model_open_memory(pl_model **out, const void *buf, size_t len, char *err, size_t errlen) {
    *out = NULL;
    pl_model *m = calloc(1, sizeof *m);
    if (!m) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    m->map.fd = -1;
    return open_common(out, m, buf, len, err, errlen);
}

void pl_model_close(pl_model *m) {
    if (!m) return;
    pl_tokenizer_free(m->tok);
    gguf_free(&m->gguf);
    free(m->layers);
    free(m->owned_norms);
    free(m->layer_off);
    free(m->layer_len);
    pl_unmap_file(&m->map);
    free(m);
}

const pl_model_info *pl_model_get_info(const pl_model *m) { return &m->info; }

int pl_tokenize(const pl_model *m, const char *text, size_t len, int add_bos, int parse_special, int32_t *out,
                int max_out) {
    return pl_tokenizer_encode(m->tok, text, len, add_bos, parse_special, out, max_out);
}
int pl_add_bos(const pl_model *m) { return pl_tokenizer_add_bos(m->tok); }
int32_t pl_token_bos(const pl_model *m) { return pl_tokenizer_bos(m->tok); }
int32_t pl_token_eos(const pl_model *m) { return pl_tokenizer_eos(m->tok); }
int pl_token_to_text(const pl_model *m, int32_t prev, int32_t token, char *buf, size_t cap) {
    return pl_tokenizer_decode(m->tok, prev, token, buf, cap);
}

size_t pl_utf8_complete(const char *s, size_t n) {
    /* look at most 3 bytes back for a lead byte whose sequence is cut */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte */
        size_t need = c >= 0xF0 && c <= 0xF7 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (c >= 0xF8) need = 1;
        return need > back ? n - back : n;
    }
    return n;
}

/* ---- context ----------------------------------------------------------- */

static void *xalloc(size_t n, size_t *acct) {
    void *p = calloc(1, n ? n : 1);
    if (p) *acct += n;
    return p;
}

/* How many layers fit in `budget` bytes of model pages: all of them when
 * the whole file does; otherwise the output matrix and the first layers that
 * fit beside the window of streamed weights (one product's, see
 * drop_streamed). */
static size_t wbytes(const pl_weight *w) { return w->row_bytes * (size_t)w->rows; }

static int layers_within(const pl_model *m, size_t budget) {
    int L = m->info.n_layer, k = 0;
    size_t window = 0, sum = 0;
    if (m->map.size <= budget) return L;
    /* a streamed layer's weights leave right after their product (forward):
     * the window is the biggest product's weights, plus read-ahead slack */
    for (int l = 0; l < L; l++) {
        const pl_layer *y = &m->layers[l];
        size_t g[4] = {wbytes(&y->wq) + wbytes(&y->wk) + wbytes(&y->wv), wbytes(&y->wo),
                       wbytes(&y->w_gate) + wbytes(&y->w_up), wbytes(&y->w_down)};
        for (int i = 0; i < 4; i++)
            if (g[i] > window) window = g[i];
    }
    size_t fixed = wbytes(&m->output) + window + ((size_t)2 << 20);
    while (k < L && fixed + sum + m->layer_len[k] <= budget) sum += m->layer_len[k++];
    return k;
}

/* KV cache bytes touched once positions [0, n) are written: each (layer,
 * head) block of K and of V is touched from its start, page by page. */
static size_t kv_touched(const pl_context *c, int n) {
    const size_t pg = 4096, blocks = (size_t)2 * c->m->info.n_layer * c->m->info.n_head_kv;
    size_t b = blocks * (((size_t)n * c->kv_row + pg - 1) / pg * pg + pg);
    return b < c->kv_bytes ? b : c->kv_bytes;
}

/* Before positions [0, n) are used: with the default budget, give up the
 * resident layers the grown KV cache now needs the room of. */
static void track_residency(pl_context *c, int n) {
    if (!c->budget_tracks_kv || n <= c->kv_high) return;
    c->kv_high = n;
    size_t kv = kv_touched(c, n);
    int k = layers_within(c->m, c->page_budget > kv ? c->page_budget - kv : 0);
    if (k < c->n_resident) c->n_resident = k;
}

/* The residency plan: --mem-budget MB of model pages as given, or by
 * default what is available (cgroup limits included) minus our buffers, a
 * margin for the rest of the process, and the KV cache as it fills. */
static void plan_residency(pl_context *c, int budget_mb) {
    const pl_model *m = c->m;
    c->n_resident = m->info.n_layer;
    if (budget_mb < 0 || !m->map.addr) return; /* plain mmap, or a memory buffer */
    if (budget_mb > 0) {
        c->page_budget = (size_t)budget_mb << 20;
    } else {
        size_t avail = pl_mem_available();
        if (avail == 0) return;
        size_t reserve = c->state_bytes + ((size_t)16 << 20);
        c->page_budget = avail > reserve ? avail - reserve : 0;
        c->budget_tracks_kv = 1;
    }
    c->n_resident = layers_within(m, c->page_budget);
    track_residency(c, 1);
}

static size_t xq_row_size(const pl_weight *w) {
    uint32_t act = w->tr->vec_dot_type;
    return act == PL_TYPE_F32 ? 0 : (pl_row_size(act, w->cols) + 63) / 64 * 64;
}

int pl_context_new(pl_context **out, pl_model *m, const pl_context_params *p, char *err, size_t errlen) {
    *out = NULL;
    const pl_model_info *in = &m->info;
    if (!in->has_weights) return set_err(err, errlen, PL_ERR_ARG, "the model file has no weights (vocab only)");
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (in->n_ctx_train < 2048 ? in->n_ctx_train : 2048);
    if (n_ctx > MAX_CTX) return set_err(err, errlen, PL_ERR_ARG, "context length %d is too large", n_ctx);
    int n_threads = p && p->n_threads > 0 ? p->n_threads : pl_num_cores();
    pl_context *c = calloc(1, sizeof *c);
    if (!c) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = PL_BATCH;
    c->head_dim = in->n_embd / in->n_head;
    c->kv_dim = c->head_dim * in->n_head_kv;
    size_t *sb = &c->state_bytes, B = (size_t)c->n_batch;
    size_t E = (size_t)in->n_embd * sizeof(float) * B;
    c->x = xalloc(E, sb);
    c->xb = xalloc(E, sb);
    c->q = xalloc(E, sb);
    c->k = xalloc((size_t)c->kv_dim * sizeof(float) * B, sb);
    c->v = xalloc((size_t)c->kv_dim * sizeof(float) * B, sb);
    c->hb = xalloc((size_t)in->n_ff * sizeof(float) * B, sb);
    c->hb2 = xalloc((size_t)in->n_ff * sizeof(float) * B, sb);
    /* quantized activations: the widest row any weight's vec_dot_type needs
     * (F32 activations are read in place, never copied) */
    c->xq_size = 64;
    for (int l = 0; l < in->n_layer; l++) {
        const pl_layer *L = &m->layers[l];
        const pl_weight *ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            size_t r = xq_row_size(ws[i]);
            if (r > c->xq_size) c->xq_size = r;
        }
    }
    if (xq_row_size(&m->output) > c->xq_size) c->xq_size = xq_row_size(&m->output);
    for (int i = 0; i < 3; i++) c->xq[i] = xalloc(c->xq_size * B, sb);
    c->scores_per_thread = (size_t)(in->n_head / in->n_head_kv) * ATTN_POS(in->n_head / in->n_head_kv) * n_ctx;
    c->scores = xalloc((size_t)n_threads * c->scores_per_thread * sizeof(float), sb);
    size_t half_rot = (size_t)in->n_rot / 2;
    c->rope_cos = xalloc(B * half_rot * sizeof(float), sb);
    c->rope_sin = xalloc(B * half_rot * sizeof(float), sb);
    c->kv_type = p && p->kv_q8 ? PL_TYPE_Q8_0 : PL_TYPE_F16;
    if (c->kv_type == PL_TYPE_Q8_0 && c->head_dim % QK8_0) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "an 8-bit KV cache needs a head dimension that is a multiple of 32");
    }
    c->kv_row = pl_row_size(c->kv_type, c->head_dim);
    /* n_layer <= 1024, n_ctx <= 2^20, kv_dim <= 65536: fits in 64 bits */
    uint64_t kv = (uint64_t)in->n_layer * (uint64_t)n_ctx * (uint64_t)in->n_head_kv * c->kv_row;
    if (kv > (size_t)-1 / 4) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM, "KV cache of %llu bytes does not fit", (unsigned long long)kv * 2);
    }
    c->kcache = xalloc((size_t)kv, &c->kv_bytes);
    c->vcache = xalloc((size_t)kv, &c->kv_bytes);
    if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->hb || !c->hb2 || !c->xq[0] || !c->xq[1] ||
        !c->xq[2] || !c->scores || !c->rope_cos || !c->rope_sin || !c->kcache || !c->vcache) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory for a %d-token context (KV cache %.1f MB)", n_ctx,
                       (double)kv * 2 / 1e6);
    }
    (void)pl_kernels(); /* pick the kernel level before any worker runs */
    c->pool = pl_pool_new(n_threads);
    if (!c->pool) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM, "cannot start %d threads", n_threads);
    }
    plan_residency(c, p ? p->mem_budget_mb : 0);
    /* explicit read-ahead (MADV_WILLNEED) of the next streamed layer only
     * with PICOLM_READAHEAD=1: measured under a 256 MB cgroup it halved the
     * throughput of the disk against the kernel's own fault-driven
     * read-ahead (bench/memtest.sh) */
    const char *ra = getenv("PICOLM_READAHEAD");
    c->readahead = ra && ra[0] == '1';
    c->theta_scale = powf(in->rope_base, -2.0f / (float)in->n_rot);
    *out = c;
    return 0;
}

void pl_context_free(pl_context *c) {
    if (!c) return;
    pl_pool_free(c->pool);
    free(c->x); free(c->xb); free(c->q); free(c->k); free(c->v);
    free(c->hb); free(c->hb2); free(c->scores); free(c->rope_cos); free(c->rope_sin);
    for (int i = 0; i < 3; i++) free(c->xq[i]);
    free(c->kcache); free(c->vcache);
    free(c);
}

int pl_context_n_ctx(const pl_context *c) { return c->n_ctx; }

void pl_context_mem(pl_context *c, pl_mem_stats *out) {
    out->state_bytes = c->state_bytes;
    out->kv_bytes = c->kv_bytes;
    pl_rss_split(&out->rss_anon, &out->rss_file);
    out->peak_rss = pl_peak_rss();
    if (out->rss_anon > c->peak_anon) c->peak_anon = out->rss_anon;
    out->peak_anon = c->peak_anon;
}

/* One head vector into the cache in its type. */
static void store_kv(const pl_context *c, const float *x, uint8_t *dst) {
    if (c->kv_type == PL_TYPE_F16) pl_kernels()->f32_to_f16(x, (pl_half *)dst, c->head_dim);
    else pl_type_traits_get(c->kv_type)->from_float_act(x, dst, c->head_dim);
}

int pl_context_resident_layers(const pl_context *c) { return c->n_resident; }

/* RoPE's cos and sin for one position, computed the way ggml does:
 * theta_i = pos * base^(-2i/n_rot), advanced by repeated multiplication in
 * float (a row per position of the batch, rather than a table of the whole
 * context: 512 KB less at 2048). */
static void rope_row(const pl_context *c, int pos, float *cs, float *sn) {
    float theta = (float)pos;
    for (int i = 0; i < c->m->info.n_rot / 2; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= c->theta_scale;
    }
}

int pl_context_shift(pl_context *c, int n_keep, int n_discard, int n_past) {
    const pl_model_info *in = &c->m->info;
    if (n_keep < 0 || n_discard <= 0 || n_past > c->n_ctx || n_keep + n_discard > n_past) return PL_ERR_ARG;
    int hd = c->head_dim, half = in->n_rot / 2, n_move = n_past - n_keep - n_discard;
    /* rotating by -d: cos(d), -sin(d) */
    float cs[PL_MAX_HEAD_DIM / 2], sn[PL_MAX_HEAD_DIM / 2];
    rope_row(c, n_discard, cs, sn);
    float buf[PL_MAX_HEAD_DIM];
    const pl_type_traits *kt_tr = pl_type_traits_get(c->kv_type);
    size_t row = c->kv_row;
    for (int l = 0; l < in->n_layer; l++)
        for (int h = 0; h < in->n_head_kv; h++) {
            size_t base = (((size_t)l * in->n_head_kv + h) * c->n_ctx) * row;
            uint8_t *k = c->kcache + base, *v = c->vcache + base;
            memmove(k + (size_t)n_keep * row, k + (size_t)(n_keep + n_discard) * row, (size_t)n_move * row);
            memmove(v + (size_t)n_keep * row, v + (size_t)(n_keep + n_discard) * row, (size_t)n_move * row);
            for (int t = n_keep; t < n_keep + n_move; t++) {
                uint8_t *kt = k + (size_t)t * row;
                kt_tr->to_float(kt, buf, hd);
                for (int i = 0; i < half; i++) {
                    float a = buf[2 * i], b = buf[2 * i + 1];
                    buf[2 * i] = a * cs[i] + b * sn[i];
                    buf[2 * i + 1] = -a * sn[i] + b * cs[i];
                }
                store_kv(c, buf, kt);
            }
        }
    return 0;
}

/* ---- forward pass ------------------------------------------------------ */

/* Up to three independent products W x over the same nb activation columns
 * in one pool dispatch. Their rows are cut into chunks (whole 12-row groups,
 * so kernels can block rows by 3 or 4), which the threads claim from a
 * counter: a thread that runs slower (the memory bus is shared, the OS runs
 * something else) takes fewer chunks instead of holding everyone at the
 * barrier. About 8 chunks a thread for one token; 2 for a batch, whose
 * kernels prepare the activations once per call (8 measured 132-136 tok/s
 * for a 128-token prompt on 2 threads, 2 measured 142). */
#define MM_CHUNKS_PER_THREAD 8
#ifndef MM_CHUNKS_BATCH
#define MM_CHUNKS_BATCH 2
#endif
typedef struct {
    int n, nb;
    const pl_weight *w[3];
    const void *xq[3];
    size_t xq_stride[3];
    float *y[3];
    size_t y_stride[3];
    int64_t chunk_rows[3];
    int first_chunk[4]; /* matrix k's chunks are first_chunk[k] .. first_chunk[k+1]-1 */
    atomic_int next;    /* next unclaimed chunk */
} matmul_job;

static void matmul_task(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    const pl_kernels_t *K = pl_kernels();
    (void)ith, (void)nth;
    int k = 0;
    for (int c; (c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->first_chunk[j->n];) {
        while (c >= j->first_chunk[k + 1]) k++;
        const pl_weight *w = j->w[k];
        int64_t r0 = (c - j->first_chunk[k]) * j->chunk_rows[k];
        int64_t r1 = r0 + j->chunk_rows[k] < w->rows ? r0 + j->chunk_rows[k] : w->rows;
        K->matmul(w->type, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes, (int)(r1 - r0),
                  (int)w->cols, j->xq[k], j->xq_stride[k], j->nb, j->y[k] + r0, j->y_stride[k]);
    }
}

/* Thread ith's contiguous share [*i0, *i1) of n items. */
static void share(size_t n, int ith, int nth, size_t *i0, size_t *i1) {
    size_t per = (n + (size_t)nth - 1) / (size_t)nth;
    *i0 = per * (size_t)ith < n ? per * (size_t)ith : n;
    *i1 = *i0 + per < n ? *i0 + per : n;
}

/* Activation columns quantized to a weight's vec_dot_type, split by column. */
typedef struct {
    uint32_t act;
    int cols, nb;
    const float *x;
    size_t x_stride;
    void *xq;
    size_t xq_size;
} quant_job;

static void quant_task(void *arg, int ith, int nth) {
    const quant_job *q = arg;
    const pl_kernels_t *K = pl_kernels();
    for (int b = ith; b < q->nb; b += nth)
        K->quantize(q->act, q->x + (size_t)b * q->x_stride, (uint8_t *)q->xq + (size_t)b * q->xq_size, q->cols);
}

/* SwiGLU in place over n values, split into a range per thread. */
typedef struct {
    float *g;
    const float *u;
    size_t n;
} silu_job;

static void silu_task(void *arg, int ith, int nth) {
    const silu_job *s = arg;
    size_t i0, i1;
    share(s->n, ith, nth, &i0, &i1);
    pl_kernels()->swiglu(s->g + i0, s->u + i0, (int)(i1 - i0));
}

/* y_i[b][:] = W_i x_i[b][:] for i < n and b < nb, x_i rows x_stride floats
 * apart. Activations are quantized once per distinct (input, format). */
static void matmul(pl_context *c, int n, int nb, const pl_weight *const *w, const float *const *x, size_t x_stride,
                   float *const *y, const size_t *y_stride) {
    matmul_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.nb = nb;
    for (int i = 0; i < n; i++) {
        uint32_t act = w[i]->tr->vec_dot_type;
        j.w[i] = w[i];
        j.y[i] = y[i];
        j.y_stride[i] = y_stride[i];
        int shared = -1;
        for (int k = 0; k < i; k++)
            if (x[k] == x[i] && w[k]->tr->vec_dot_type == act && w[k]->cols == w[i]->cols) shared = k;
        if (shared >= 0) {
            j.xq[i] = j.xq[shared];
            j.xq_stride[i] = j.xq_stride[shared];
        } else if (act == PL_TYPE_F32) {
            j.xq[i] = x[i];
            j.xq_stride[i] = x_stride * sizeof(float);
        } else {
            quant_job q = {act, (int)w[i]->cols, nb, x[i], x_stride, c->xq[i], c->xq_size};
            if (nb > 1)
                pl_pool_run(c->pool, quant_task, &q); /* a column per thread at a time */
            else
                quant_task(&q, 0, 1);
            j.xq[i] = c->xq[i];
            j.xq_stride[i] = c->xq_size;
        }
    }
    const int nth = pl_pool_size(c->pool);
    const int64_t want = nth > 1 ? (int64_t)(nb > 1 ? MM_CHUNKS_BATCH : MM_CHUNKS_PER_THREAD) * nth : 1;
    j.first_chunk[0] = 0;
    for (int i = 0; i < n; i++) {
        int64_t groups = (w[i]->rows + 11) / 12, per = (groups + want - 1) / want;
        j.chunk_rows[i] = per * 12;
        j.first_chunk[i + 1] = j.first_chunk[i] + (int)((w[i]->rows + j.chunk_rows[i] - 1) / j.chunk_rows[i]);
    }
    atomic_init(&j.next, 0);
    pl_pool_run(c->pool, matmul_task, &j);
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* Rotate adjacent pairs (x[2i], x[2i+1]) of the first n_rot dims of each head. */
static void rope(float *x, int n_heads, int head_dim, int n_rot, const float *cs, const float *sn) {
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < n_rot / 2; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * cs[i] - b * sn[i];
            v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
    }
}

typedef struct {
    pl_context *c;
    int layer, pos0, nb;
} attn_job;

/* Each (position, query head) pair against positions 0..pos of its KV head:
 * causal attention over the cache, which already holds this batch. */
static void attn_task(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    pl_context *c = j->c;
    const pl_model_info *in = &c->m->info;
    int hd = c->head_dim, group = in->n_head / in->n_head_kv, E = in->n_embd;
    float scale = 1.0f / sqrtf((float)hd);
    const pl_kernels_t *K = pl_kernels();
    /* a contiguous run of (KV head, position) pairs per thread, positions
     * inner: the head's keys and values stay in cache from one to the next */
    size_t i0, i1;
    share((size_t)j->nb * in->n_head_kv, ith, nth, &i0, &i1);
    float *scores = c->scores + (size_t)ith * c->scores_per_thread;
    for (size_t idx = i0; idx < i1;) {
        int kvh = (int)(idx / (size_t)j->nb), b = (int)(idx % (size_t)j->nb), n = j->pos0 + b + 1;
        int np = j->nb - b; /* positions b .. b + np - 1 of this head, at most ATTN_POS */
        if ((size_t)np > i1 - idx) np = (int)(i1 - idx);
        if (np > ATTN_POS(group)) np = ATTN_POS(group);
        idx += (size_t)np;
        size_t base = (((size_t)j->layer * in->n_head_kv + kvh) * c->n_ctx) * c->kv_row;
        size_t off = (size_t)b * E + (size_t)kvh * group * hd; /* the group's query heads are adjacent */
        if (c->kv_type == PL_TYPE_F16) {
            K->attn(c->q + off, group, np, (size_t)E, (const pl_half *)(c->kcache + base),
                    (const pl_half *)(c->vcache + base), n, hd, scale, c->xb + off, scores);
            continue;
        }
        for (int p = 0; p < np; p++)
            for (int g = 0; g < group; g++) {
                size_t o = off + (size_t)p * E + (size_t)g * hd;
                pl_attn_head_q8_0(c->q + o, c->kcache + base, c->vcache + base, n + p, hd, scale, c->xb + o, scores);
            }
    }
}

/* A streamed layer's weights leave the page cache right after their
 * product, so the window of streamed weights stays one product wide. */
static void drop_streamed(const pl_context *c, int l, const pl_weight *const *w, int n) {
    if (l < c->n_resident) return;
    const pl_mapping *map = &c->m->map;
    for (int i = 0; i < n; i++)
        pl_advise(map, (size_t)((const uint8_t *)w[i]->data - (const uint8_t *)map->addr), wbytes(w[i]),
                  PL_ADV_DONTNEED);
}

/* nb tokens at positions pos0.. through every layer; logits (n_vocab per
 * position) for the positions from `first_logit` on, if logits is set. */
static void forward(pl_context *c, const int32_t *tokens, int nb, int pos0, float *logits, int first_logit) {
    const pl_model *m = c->m;
    const pl_model_info *in = &m->info;
    int E = in->n_embd, F = in->n_ff, hd = c->head_dim, kvd = c->kv_dim, half = in->n_rot / 2;

    for (int b = 0; b < nb; b++)
        m->tok_embd.tr->to_float((const uint8_t *)m->tok_embd.data + (size_t)tokens[b] * m->tok_embd.row_bytes,
                                 c->x + (size_t)b * E, E);

    for (int b = 0; b < nb; b++)
        rope_row(c, pos0 + b, c->rope_cos + (size_t)b * half, c->rope_sin + (size_t)b * half);

    for (int l = 0; l < in->n_layer; l++) {
        const pl_layer *L = &m->layers[l];
        /* streaming: read the next streamed layer ahead while this one runs */
        int next = l + 1 < in->n_layer ? l + 1 : c->n_resident;
        if (c->n_resident < in->n_layer && next >= c->n_resident)
            if (c->readahead) pl_advise(&m->map, m->layer_off[next], m->layer_len[next], PL_ADV_WILLNEED);
        for (int b = 0; b < nb; b++) rmsnorm(c->xb + (size_t)b * E, c->x + (size_t)b * E, L->attn_norm, E, in->rms_eps);
        {
            const pl_weight *w[3] = {&L->wq, &L->wk, &L->wv};
            const float *x[3] = {c->xb, c->xb, c->xb};
            float *y[3] = {c->q, c->k, c->v};
            size_t ys[3] = {(size_t)E, (size_t)kvd, (size_t)kvd};
            matmul(c, 3, nb, w, x, (size_t)E, y, ys);
            drop_streamed(c, l, w, 3);
        }
        for (int b = 0; b < nb; b++) {
            int pos = pos0 + b;
            const float *cs = c->rope_cos + (size_t)b * half, *sn = c->rope_sin + (size_t)b * half;
            rope(c->q + (size_t)b * E, in->n_head, hd, in->n_rot, cs, sn);
            rope(c->k + (size_t)b * kvd, in->n_head_kv, hd, in->n_rot, cs, sn);
            for (int h = 0; h < in->n_head_kv; h++) {
                size_t off = ((((size_t)l * in->n_head_kv + h) * c->n_ctx) + pos) * c->kv_row;
                store_kv(c, c->k + (size_t)b * kvd + (size_t)h * hd, c->kcache + off);
                store_kv(c, c->v + (size_t)b * kvd + (size_t)h * hd, c->vcache + off);
            }
        }
        attn_job aj = {c, l, pos0, nb};
        pl_pool_run(c->pool, attn_task, &aj);
        {
            const pl_weight *w[1] = {&L->wo};
            const float *x[1] = {c->xb};
            float *y[1] = {c->q};
            size_t ys[1] = {(size_t)E};
            matmul(c, 1, nb, w, x, (size_t)E, y, ys);
            drop_streamed(c, l, w, 1);
        }
        for (size_t i = 0; i < (size_t)nb * E; i++) c->x[i] += c->q[i];

        for (int b = 0; b < nb; b++) rmsnorm(c->xb + (size_t)b * E, c->x + (size_t)b * E, L->ffn_norm, E, in->rms_eps);
        {
            const pl_weight *w[2] = {&L->w_gate, &L->w_up};
            const float *x[2] = {c->xb, c->xb};
            float *y[2] = {c->hb, c->hb2};
            size_t ys[2] = {(size_t)F, (size_t)F};
            matmul(c, 2, nb, w, x, (size_t)E, y, ys);
            drop_streamed(c, l, w, 2);
        }
        silu_job sj = {c->hb, c->hb2, (size_t)nb * F};
        pl_pool_run(c->pool, silu_task, &sj);
        {
            const pl_weight *w[1] = {&L->w_down};
            const float *x[1] = {c->hb};
            float *y[1] = {c->xb};
            size_t ys[1] = {(size_t)E};
            matmul(c, 1, nb, w, x, (size_t)F, y, ys);
            drop_streamed(c, l, w, 1);
        }
        for (size_t i = 0; i < (size_t)nb * E; i++) c->x[i] += c->xb[i];
        /* what drop_streamed left of a streamed layer (its norms, the
         * pages its tensors share at their edges) leaves too, so LRU never
         * evicts the resident ones in its place */
        if (l >= c->n_resident) pl_advise(&m->map, m->layer_off[l], m->layer_len[l], PL_ADV_DONTNEED);
    }
    if (!logits || first_logit >= nb) return;
    int nl = nb - first_logit;
    float *xl = c->x + (size_t)first_logit * E;
    for (int b = 0; b < nl; b++) rmsnorm(xl + (size_t)b * E, xl + (size_t)b * E, m->output_norm, E, in->rms_eps);
    const pl_weight *w[1] = {&m->output};
    const float *x[1] = {xl};
    float *y[1] = {logits};
    size_t ys[1] = {(size_t)in->n_vocab};
    matmul(c, 1, nl, w, x, (size_t)E, y, ys);
}

int pl_eval(pl_context *c, const int32_t *tokens, int n, int pos, float *logits, int all_logits) {
    const pl_model_info *in = &c->m->info;
    if (n < 0 || pos < 0) return PL_ERR_ARG;
    if (n > c->n_ctx - pos) return PL_ERR_CTX_FULL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= in->n_vocab) return PL_ERR_ARG;
    track_residency(c, pos + n);
    /* equal chunks of at most n_batch: none of one token when n >= 2 (a
     * lone token would run the generation kernels, see picolm.h) */
    int chunks = (n + c->n_batch - 1) / c->n_batch;
    for (int i = 0, k = 0; i < n; k++) {
        int nb = n / chunks + (k < n % chunks);
        int last = i + nb == n;
        if (logits && all_logits) forward(c, tokens + i, nb, pos + i, logits + (size_t)i * in->n_vocab, 0);
        else forward(c, tokens + i, nb, pos + i, last ? logits : NULL, nb - 1);
        i += nb;
    }
    return 0;
}
