/* model.c - LLaMA hyper-parameters, weight binding, the KV cache and the
 * forward pass.
 *
 * Weights are used in place from the mapped GGUF file (never copied); only
 * norm vectors stored in a non-F32 type are converted at load. The forward
 * pass runs one position at a time: RMSNorm, Q/K/V, RoPE (llama.cpp's
 * "normal" mode: adjacent pairs), grouped-query attention over an FP16 KV
 * cache with a single-pass online softmax, SwiGLU, final norm, logits.
 * Matrix-vector products are split by rows over the thread pool (one per
 * size, shared by the process's contexts: pool.h). */
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
#define MAX_SEQ 4096
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

/* "{arch}.suffix" in a static-size buffer. */
static const char *akey(const pl_model *m, char *buf, size_t cap, const char *suffix) {
    snprintf(buf, cap, "%s.%s", m->hp.arch->name, suffix);
    return buf;
}

static int get_u32(const pl_model *m, const char *suffix, int required, uint32_t def, uint32_t lo, uint32_t hi,
                   uint32_t *out, char *err, size_t errlen) {
    char key[96];
    akey(m, key, sizeof key, suffix);
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

/* A float key in [lo, hi]; *present says whether the file has it. */
static int get_f32(const pl_model *m, const char *suffix, float def, float lo, float hi, float *out, int *present,
                   char *err, size_t errlen) {
    char key[96];
    akey(m, key, sizeof key, suffix);
    int rc = gguf_get_f32(&m->gguf, key, out);
    if (present) *present = rc == 0;
    if (rc == 1) {
        *out = def;
        return 0;
    }
    if (rc < 0 || !(*out >= lo && *out <= hi))
        return set_err(err, errlen, PL_ERR_FORMAT, "metadata key %s has a bad type or value", key);
    return 0;
}

/* Which tensors a model used: every tensor in the file must be bound by
 * the tensor table below, or the file is refused by that tensor's name
 * (an unknown bias or scale would otherwise be silently ignored). */
static void mark_used(pl_model *m, const gguf_tensor *t, uint8_t *used) { used[t - m->gguf.tensors] = 1; }

static int shape_err(const gguf_tensor *t, int64_t cols, int64_t rows, char *err, size_t errlen) {
    return set_err(err, errlen, PL_ERR_FORMAT, "tensor %.*s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                   (int)t->name.len, t->name.ptr, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                   (long long)t->ne[3], (long long)cols, (long long)rows);
}

/* Bind tensor `name` as a [cols] -> [rows] matrix (rows = 0: a vector). */
static int bind(pl_model *m, uint8_t *used, pl_weight *w, const char *name, int64_t cols, int64_t rows, int optional,
                char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(&m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (optional) return 0;
        return set_err(err, errlen, PL_ERR_FORMAT, "missing tensor %s", name);
    }
    mark_used(m, t, used);
    int64_t want_rows = rows ? rows : 1;
    if (t->ne[0] != cols || t->ne[1] != want_rows || t->ne[2] != 1 || t->ne[3] != 1)
        return shape_err(t, cols, want_rows, err, errlen);
    w->tr = pl_type_traits_get(t->type);
    w->type = t->type;
    w->data = t->data;
    w->rows = want_rows;
    w->cols = cols;
    w->row_bytes = pl_row_size(t->type, cols);
    return 0;
}

/* Rows [r0, r0 + n) of a bound matrix, as a matrix of its own (no copy). */
static pl_weight row_view(const pl_weight *w, int64_t r0, int64_t n) {
    pl_weight v = *w;
    v.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    v.rows = n;
    return v;
}

/* A vector of n floats: in place when F32 and aligned, else converted into
 * the model's owned buffer. Optional ones are NULL when absent. */
static int bind_vec(pl_model *m, uint8_t *used, const float **out, const char *name, int n, int optional, char *err,
                    size_t errlen) {
    pl_weight w;
    *out = NULL;
    int rc = bind(m, used, &w, name, n, 0, optional, err, errlen);
    if (rc || !w.data) return rc;
    if (w.type == PL_TYPE_F32 && ((uintptr_t)w.data % sizeof(float)) == 0) {
        *out = w.data;
        return 0;
    }
    if (m->owned_used + (size_t)n > m->owned_cap) /* reserved for every vector of the table at load */
        return set_err(err, errlen, PL_ERR_FORMAT, "too many converted vectors (%s)", name);
    float *dst = m->owned_norms + m->owned_used;
    w.tr->to_float(w.data, dst, n);
    m->owned_used += (size_t)n;
    *out = dst;
    return 0;
}

/* The hyper-parameters of m->hp.arch through its "{arch}." keys. */
static int load_hparams(pl_model *m, char *err, size_t errlen) {
    pl_hparams *hp = &m->hp;
    const pl_arch *a = hp->arch;
    pl_model_info *in = &m->info;
    int rc, have;
    uint32_t n_embd, n_layer, n_ff, n_head, n_head_kv, n_rot, n_ctx, klen, vlen, swa;
    if ((rc = get_u32(m, "embedding_length", 1, 0, 1, MAX_EMBD, &n_embd, err, errlen)) ||
        (rc = get_u32(m, "block_count", 1, 0, 1, MAX_LAYERS, &n_layer, err, errlen)) ||
        (rc = get_u32(m, "feed_forward_length", 1, 0, 1, MAX_FF, &n_ff, err, errlen)) ||
        (rc = get_u32(m, "attention.head_count", 1, 0, 1, MAX_EMBD, &n_head, err, errlen)) ||
        (rc = get_u32(m, "attention.head_count_kv", 0, n_head, 1, n_head, &n_head_kv, err, errlen)) ||
        (rc = get_u32(m, "context_length", 0, 2048, 1, 0xffffffffu, &n_ctx, err, errlen)))
        return rc;
    if (n_head % n_head_kv)
        return set_err(err, errlen, PL_ERR_FORMAT, "head_count %u is not divisible by head_count_kv %u", n_head,
                       n_head_kv);
    /* head_dim: attention.key_length when given (qwen3, gemma: not
     * n_embd / n_head), else n_embd / n_head */
    uint32_t def_hd = n_embd % n_head ? 0 : n_embd / n_head;
    if ((rc = get_u32(m, "attention.key_length", 0, def_hd, 1, PL_MAX_HEAD_DIM, &klen, err, errlen)) ||
        (rc = get_u32(m, "attention.value_length", 0, klen, 1, PL_MAX_HEAD_DIM, &vlen, err, errlen)))
        return rc;
    if (klen == 0)
        return set_err(err, errlen, PL_ERR_FORMAT, "embedding_length %u is not divisible by head_count %u", n_embd,
                       n_head);
    if (klen != vlen)
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "key_length %u differs from value_length %u", klen, vlen);
    if (klen > PL_MAX_HEAD_DIM)
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "head dimension %u is larger than %d", klen, PL_MAX_HEAD_DIM);
    if ((uint64_t)n_head * klen > MAX_EMBD)
        return set_err(err, errlen, PL_ERR_FORMAT, "head_count x key_length = %llu is too large",
                       (unsigned long long)n_head * klen);
    if ((rc = get_u32(m, "rope.dimension_count", 0, klen, 2, klen, &n_rot, err, errlen))) return rc;
    if (n_rot % 2) return set_err(err, errlen, PL_ERR_FORMAT, "rope.dimension_count %u is odd", n_rot);
    hp->n_embd = (int)n_embd;
    hp->n_layer = (int)n_layer;
    hp->n_ff = (int)n_ff;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->head_dim = (int)klen;
    hp->n_rot = (int)n_rot;
    hp->n_q = (int)(n_head * klen);
    hp->n_kv = (int)(n_head_kv * klen);
    if ((rc = get_f32(m, a->norm == PL_NORM_LAYER ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon",
                      1e-5f, 0.0f, 1.0f, &hp->norm_eps, NULL, err, errlen)))
        return rc;

    /* RoPE: base, scaling (none / linear; Llama 3's rope_freqs tensor is
     * bound with the tensors), and gemma3's sliding layers on base 10000 */
    float base, factor = 1.0f, scale_linear;
    if ((rc = get_f32(m, "rope.freq_base", 10000.0f, 1e-3f, 1e12f, &base, NULL, err, errlen))) return rc;
    gguf_str st;
    char key[96];
    if (gguf_get_str(&m->gguf, akey(m, key, sizeof key, "rope.scaling.type"), &st) == 0 && !gguf_str_eq(st, "none")) {
        if (!gguf_str_eq(st, "linear"))
            return set_err(err, errlen, PL_ERR_UNSUPPORTED, "rope scaling type '%.*s' is not supported (none, linear)",
                           (int)(st.len > 32 ? 32 : st.len), st.ptr);
        if ((rc = get_f32(m, "rope.scaling.factor", 1.0f, 1e-3f, 1e6f, &factor, NULL, err, errlen))) return rc;
    }
    if ((rc = get_f32(m, "rope.scale_linear", 1.0f, 1e-3f, 1e6f, &scale_linear, &have, err, errlen))) return rc;
    if (have && factor == 1.0f) factor = scale_linear;
    uint32_t orig;
    if ((rc = get_u32(m, "rope.scaling.original_context_length", 0, n_ctx, 1, 0xffffffffu, &orig, err, errlen)) ||
        (rc = get_f32(m, "rope.scaling.attn_factor", 1.0f, 1e-3f, 1e3f, &hp->rope_attn_factor, NULL, err, errlen)))
        return rc;
    hp->n_ctx_orig = orig > MAX_CTX ? MAX_CTX : (int)orig;
    hp->n_rope_class = 1;
    hp->rope_base[0] = base;
    hp->rope_freq_scale[0] = 1.0f / factor;
    if (a->swa_rope_base) {
        hp->n_rope_class = 2;
        hp->rope_base[1] = 10000.0f;
        hp->rope_freq_scale[1] = 1.0f;
    }

    if ((rc = get_u32(m, "attention.sliding_window", 0, 0, 0, 0xffffffffu, &swa, err, errlen))) return rc;
    if (swa > n_ctx)
        return set_err(err, errlen, PL_ERR_FORMAT, "attention.sliding_window %u is larger than context_length %u", swa,
                       n_ctx);
    if ((a->swa || a->swa_even) && swa == 0 && a->swa != 1)
        return set_err(err, errlen, PL_ERR_FORMAT, "missing metadata key %s.attention.sliding_window", a->name);
    hp->n_swa = (a->swa || a->swa_even) ? (int)swa : 0;
    if (!hp->n_swa && swa)
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "%s.attention.sliding_window is not used by architecture %s",
                       a->name, a->name);
    if (a->softcaps) {
        if ((rc = get_f32(m, "attn_logit_softcapping", 0.0f, 0.0f, 1e6f, &hp->attn_softcap, NULL, err, errlen)) ||
            (rc = get_f32(m, "final_logit_softcapping", 0.0f, 0.0f, 1e6f, &hp->final_softcap, NULL, err, errlen)))
            return rc;
    }
    hp->embd_scale = a->embd_scale ? sqrtf((float)n_embd) : 1.0f;
    /* llama.cpp scales the 27B gemmas' queries by 1/sqrt(n_embd / n_head)
     * (their query_pre_attn_scalar), every other model by 1/sqrt(head_dim) */
    int big_gemma = a->q_scale_rule && ((!strcmp(a->name, "gemma2") && n_layer == 46) ||
                                        (!strcmp(a->name, "gemma3") && n_layer == 62));
    hp->attn_scale = 1.0f / sqrtf(big_gemma ? (float)n_embd / (float)n_head : (float)klen);

    in->n_embd = hp->n_embd;
    in->n_layer = hp->n_layer;
    in->n_ff = hp->n_ff;
    in->n_head = hp->n_head;
    in->n_head_kv = hp->n_head_kv;
    in->n_rot = hp->n_rot;
    in->n_ctx_train = n_ctx > MAX_CTX ? MAX_CTX : (int)n_ctx;
    in->rms_eps = hp->norm_eps;
    in->rope_base = base;
    in->arch = a->name;
    in->head_dim = hp->head_dim;
    return 0;
}

/* The tensor table: every tensor an architecture may have, with its shape
 * in the model's dimensions; what a flag of the row requires is required,
 * what the file may or may not have (biases, a fused projection) is
 * optional, and anything else in the file is refused. */
static int load_tensors(pl_model *m, uint8_t *used, char *err, size_t errlen) {
    const pl_hparams *hp = &m->hp;
    const pl_arch *a = hp->arch;
    pl_model_info *in = &m->info;
    int rc;
    const int E = hp->n_embd, Q = hp->n_q, KV = hp->n_kv, F = hp->n_ff, V = in->n_vocab, HD = hp->head_dim;
    const int ln = a->norm == PL_NORM_LAYER;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");

    if ((rc = bind(m, used, &m->tok_embd, "token_embd.weight", E, V, 0, err, errlen)) ||
        (rc = bind_vec(m, used, &m->output_norm, "output_norm.weight", E, 0, err, errlen)) ||
        (rc = bind_vec(m, used, &m->output_norm_b, "output_norm.bias", E, !ln, err, errlen)) ||
        (rc = bind(m, used, &m->output, "output.weight", E, V, 1, err, errlen)) ||
        (rc = bind_vec(m, used, &m->output_b, "output.bias", V, 1, err, errlen)))
        return rc;
    if (!m->output.data) {
        m->output = m->tok_embd;
        in->tied_output = 1;
    }
    /* Llama 3's rope scaling: one frequency factor per rotated pair */
    if ((rc = bind_vec(m, used, &m->hp.rope_freqs, "rope_freqs.weight", hp->n_rot / 2, 1, err, errlen))) return rc;
    if ((rc = bind_vec(m, used, &m->hp.rope_long, "rope_factors_long.weight", hp->n_rot / 2, 1, err, errlen)) ||
        (rc = bind_vec(m, used, &m->hp.rope_short, "rope_factors_short.weight", hp->n_rot / 2, 1, err, errlen)))
        return rc;
    if (!m->hp.rope_long != !m->hp.rope_short)
        return set_err(err, errlen, PL_ERR_FORMAT, "rope_factors_long.weight and rope_factors_short.weight come in pairs");
    if (m->hp.rope_freqs && m->hp.rope_long)
        return set_err(err, errlen, PL_ERR_FORMAT, "both rope_freqs.weight and rope_factors_*.weight");
    const float *factors[3] = {m->hp.rope_freqs, m->hp.rope_long, m->hp.rope_short};
    static const char *fnames[3] = {"rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"};
    for (int f = 0; f < 3; f++)
        for (int i = 0; factors[f] && i < hp->n_rot / 2; i++)
            if (!(factors[f][i] > 0.0f && factors[f][i] < 1e30f))
                return set_err(err, errlen, PL_ERR_FORMAT, "%s[%d] = %g is not a positive number", fnames[f], i,
                               (double)factors[f][i]);

    for (int l = 0; l < hp->n_layer; l++) {
        pl_layer *L = &m->layers[l];
        char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
        if ((rc = bind_vec(m, used, &L->attn_norm, NAME("attn_norm.weight"), E, 0, err, errlen)) ||
            (rc = bind_vec(m, used, &L->attn_norm_b, NAME("attn_norm.bias"), E, !ln, err, errlen)))
            return rc;
        if (gguf_find_tensor(&m->gguf, NAME("attn_qkv.weight"))) {
            pl_weight qkv;
            const float *b = NULL;
            if ((rc = bind(m, used, &qkv, name, E, (int64_t)Q + 2 * KV, 0, err, errlen)) ||
                (rc = bind_vec(m, used, &b, NAME("attn_qkv.bias"), Q + 2 * KV, 1, err, errlen)))
                return rc;
            L->wq = row_view(&qkv, 0, Q);
            L->wk = row_view(&qkv, Q, KV);
            L->wv = row_view(&qkv, (int64_t)Q + KV, KV);
            if (b) L->bq = b, L->bk = b + Q, L->bv = b + Q + KV;
        } else if ((rc = bind(m, used, &L->wq, NAME("attn_q.weight"), E, Q, 0, err, errlen)) ||
                   (rc = bind(m, used, &L->wk, NAME("attn_k.weight"), E, KV, 0, err, errlen)) ||
                   (rc = bind(m, used, &L->wv, NAME("attn_v.weight"), E, KV, 0, err, errlen)) ||
                   (rc = bind_vec(m, used, &L->bq, NAME("attn_q.bias"), Q, 1, err, errlen)) ||
                   (rc = bind_vec(m, used, &L->bk, NAME("attn_k.bias"), KV, 1, err, errlen)) ||
                   (rc = bind_vec(m, used, &L->bv, NAME("attn_v.bias"), KV, 1, err, errlen)))
            return rc;
        if (a->qk_norm && ((rc = bind_vec(m, used, &L->q_norm, NAME("attn_q_norm.weight"), HD, 0, err, errlen)) ||
                           (rc = bind_vec(m, used, &L->k_norm, NAME("attn_k_norm.weight"), HD, 0, err, errlen))))
            return rc;
        if ((rc = bind(m, used, &L->wo, NAME("attn_output.weight"), Q, E, 0, err, errlen)) ||
            (rc = bind_vec(m, used, &L->bo, NAME("attn_output.bias"), E, 1, err, errlen)))
            return rc;
        if (a->post_norms &&
            ((rc = bind_vec(m, used, &L->attn_post_norm, NAME("post_attention_norm.weight"), E, 0, err, errlen)) ||
             (rc = bind_vec(m, used, &L->ffn_post_norm, NAME("post_ffw_norm.weight"), E, 0, err, errlen))))
            return rc;
        if (!a->parallel && ((rc = bind_vec(m, used, &L->ffn_norm, NAME("ffn_norm.weight"), E, 0, err, errlen)) ||
                             (rc = bind_vec(m, used, &L->ffn_norm_b, NAME("ffn_norm.bias"), E, !ln, err, errlen))))
            return rc;
        if (a->ffn == PL_FFN_GELU) {
            if ((rc = bind(m, used, &L->w_up, NAME("ffn_up.weight"), E, F, 0, err, errlen))) return rc;
        } else if (gguf_find_tensor(&m->gguf, NAME("ffn_gate.weight"))) {
            if ((rc = bind(m, used, &L->w_gate, name, E, F, 0, err, errlen)) ||
                (rc = bind(m, used, &L->w_up, NAME("ffn_up.weight"), E, F, 0, err, errlen)))
                return rc;
        } else { /* gate and up in one tensor, gate first (phi3) */
            pl_weight gu;
            if ((rc = bind(m, used, &gu, NAME("ffn_up.weight"), E, 2 * (int64_t)F, 0, err, errlen))) return rc;
            L->w_gate = row_view(&gu, 0, F);
            L->w_up = row_view(&gu, F, F);
        }
        if ((rc = bind_vec(m, used, &L->b_up, NAME("ffn_up.bias"), F, 1, err, errlen)) ||
            (rc = bind(m, used, &L->w_down, NAME("ffn_down.weight"), F, E, 0, err, errlen)) ||
            (rc = bind_vec(m, used, &L->b_down, NAME("ffn_down.bias"), E, 1, err, errlen)))
            return rc;
#undef NAME
        L->swa = hp->n_swa && (a->swa == 1 || (a->swa > 1 && l % a->swa < a->swa - 1) || (a->swa_even && l % 2 == 0));
        L->nope = a->nope_step && (l + 1) % a->nope_step == 0;
        L->rope_class = a->swa_rope_base && L->swa ? 1 : 0;
    }
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++)
        if (!used[i])
            return set_err(err, errlen, PL_ERR_UNSUPPORTED, "tensor %.*s is not used by architecture %s",
                           (int)(m->gguf.tensors[i].name.len > 96 ? 96 : m->gguf.tensors[i].name.len),
                           m->gguf.tensors[i].name.ptr, a->name);
    return 0;
}

/* The matrices of layer l, for spans, streaming and scratch sizing. */
static int layer_weights(const pl_layer *L, const pl_weight **ws) {
    const pl_weight *all[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    int n = 0;
    for (int i = 0; i < 7; i++)
        if (all[i]->data) ws[n++] = all[i];
    return n;
}

static int load(pl_model *m, char *err, size_t errlen) {
    int rc;
    gguf_str arch = {"llama", 5};
    if (gguf_get_str(&m->gguf, "general.architecture", &arch) < 0)
        return set_err(err, errlen, PL_ERR_FORMAT, "general.architecture is not a string");
    m->hp.arch = pl_arch_find(arch.ptr, (size_t)arch.len);
    if ((rc = pl_tokenizer_load(&m->tok, &m->gguf, err, errlen))) return rc;
    pl_model_info *in = &m->info;
    in->n_vocab = pl_tokenizer_n_vocab(m->tok);
    if (m->gguf.n_tensors == 0) return 0; /* vocab-only: tokenization works, whatever the architecture */
    if (!m->hp.arch)
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "unsupported architecture '%.*s' (picolm runs %s)",
                       (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, pl_arch_list());
    in->has_weights = 1;
    if ((rc = load_hparams(m, err, errlen))) return rc;
    for (uint64_t i = 0; i < m->gguf.n_tensors; i++) in->weight_bytes += m->gguf.tensors[i].nbytes;

    /* converted vectors: reserve for every norm and bias so the buffer
     * never moves while pointers into it are handed out */
    const pl_hparams *hp = &m->hp;
    m->owned_cap = (size_t)hp->n_layer * (6 * (size_t)hp->n_embd + 2 * (size_t)hp->n_q + 4 * (size_t)hp->n_kv +
                                          (size_t)hp->n_ff + 2 * (size_t)hp->head_dim) +
                   2 * (size_t)hp->n_embd + (size_t)in->n_vocab + 2 * (size_t)hp->n_rot;
    m->owned_norms = malloc(m->owned_cap * sizeof(float));
    uint8_t *used = calloc(m->gguf.n_tensors, 1);
    if (!m->owned_norms || !used) {
        free(used);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    }
    rc = load_tensors(m, used, err, errlen);
    free(used);
    if (rc) return rc;
    in->ftype = m->layers[0].wq.tr->name;

    /* each layer's byte span in the file, for paging hints */
    m->layer_off = calloc((size_t)hp->n_layer, sizeof *m->layer_off);
    m->layer_len = calloc((size_t)hp->n_layer, sizeof *m->layer_len);
    if (!m->layer_off || !m->layer_len) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    for (int l = 0; l < hp->n_layer; l++) {
        const pl_weight *ws[7];
        int n = layer_weights(&m->layers[l], ws);
        size_t lo = (size_t)-1, hi = 0;
        for (int i = 0; i < n; i++) {
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
int pl_token_is_eog(const pl_model *m, int32_t token) { return pl_tokenizer_is_eog(m->tok, token); }
int32_t pl_token_find(const pl_model *m, const char *text, size_t len) { return pl_tokenizer_find(m->tok, text, len); }
const char *pl_vocab_kind(const pl_model *m) { return pl_tokenizer_kind(m->tok); }
const char *pl_vocab_pre(const pl_model *m) { return pl_tokenizer_pre(m->tok); }
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

/* KV cache bytes touched once a sequence's positions [0, n) are written:
 * each (layer, head) block of K and of V is touched from its start, page by
 * page. */
static size_t kv_touched(const pl_context *c, int n) {
    const size_t pg = 4096, blocks = (size_t)2 * c->m->info.n_layer * c->m->info.n_head_kv;
    return blocks * (((size_t)n * c->kv_row + pg - 1) / pg * pg + pg);
}

/* Before sequence seq uses positions [0, n): with the default budget, give
 * up the resident layers the grown KV cache now needs the room of. */
static void track_residency(pl_context *c, int seq, int n) {
    if (!c->budget_tracks_kv || n <= c->seq_high[seq]) return;
    c->seq_high[seq] = n;
    size_t kv = 0;
    for (int s = 0; s < c->n_seq; s++)
        if (c->seq_high[s]) kv += kv_touched(c, c->seq_high[s]);
    if (kv > c->kv_bytes) kv = c->kv_bytes;
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
    track_residency(c, 0, 1);
}

static size_t xq_row_size(const pl_weight *w) {
    uint32_t act = w->tr->vec_dot_type;
    return act == PL_TYPE_F32 ? 0 : (pl_row_size(act, w->cols) + 63) / 64 * 64;
}

pl_context_params pl_context_default_params(void) {
    pl_context_params p;
    memset(&p, 0, sizeof p);
    return p;
}

int pl_context_new(pl_context **out, pl_model *m, const pl_context_params *p, char *err, size_t errlen) {
    *out = NULL;
    const pl_model_info *in = &m->info;
    if (!in->has_weights) return set_err(err, errlen, PL_ERR_ARG, "the model file has no weights (vocab only)");
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (in->n_ctx_train < 2048 ? in->n_ctx_train : 2048);
    if (n_ctx > MAX_CTX) return set_err(err, errlen, PL_ERR_ARG, "context length %d is too large", n_ctx);
    if (p && (p->n_seq < 0 || p->n_seq > MAX_SEQ))
        return set_err(err, errlen, PL_ERR_ARG, "n_seq %d is out of range [0, %d]", p->n_seq, MAX_SEQ);
    if (p && (p->n_batch < 0 || p->n_batch > PL_BATCH_MAX))
        return set_err(err, errlen, PL_ERR_ARG, "n_batch %d is out of range [0, %d]", p->n_batch, PL_BATCH_MAX);
    const size_t avail = pl_mem_available();
    int n_batch = p ? p->n_batch : 0;
    if (!n_batch) { /* where the weights stream, the smaller state leaves room for more of them */
        size_t room = p && p->mem_budget_mb > 0 ? (size_t)p->mem_budget_mb << 20 : avail;
        n_batch = room && room < in->weight_bytes + ((size_t)128 << 20) ? PL_BATCH_SMALL : PL_BATCH;
    }
    int n_threads = p && p->n_threads > 0 ? p->n_threads : pl_num_cores();
    pl_context *c = calloc(1, sizeof *c);
    if (!c) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    const pl_hparams *hp = &m->hp;
    c->head_dim = hp->head_dim;
    c->kv_dim = hp->n_kv;
    c->q_dim = hp->n_q;
    c->wide = hp->n_q > hp->n_embd ? hp->n_q : hp->n_embd;
    size_t *sb = &c->state_bytes, B = (size_t)c->n_batch;
    size_t E = (size_t)in->n_embd * sizeof(float) * B, Wd = (size_t)c->wide * sizeof(float) * B;
    c->x = xalloc(E, sb);
    c->xb = xalloc(Wd, sb);
    c->q = xalloc(Wd, sb);
    c->k = xalloc((size_t)c->kv_dim * sizeof(float) * B, sb);
    c->v = xalloc((size_t)c->kv_dim * sizeof(float) * B, sb);
    c->hb = xalloc((size_t)in->n_ff * sizeof(float) * B, sb);
    c->hb2 = xalloc((size_t)(in->n_ff > in->n_embd ? in->n_ff : in->n_embd) * sizeof(float) * B, sb);
    /* quantized activations: the widest row any weight's vec_dot_type needs
     * (F32 activations are read in place, never copied) */
    c->xq_size = 64;
    for (int l = 0; l < in->n_layer; l++) {
        const pl_weight *ws[7];
        int nw = layer_weights(&m->layers[l], ws);
        for (int i = 0; i < nw; i++) {
            size_t r = xq_row_size(ws[i]);
            if (r > c->xq_size) c->xq_size = r;
        }
    }
    if (xq_row_size(&m->output) > c->xq_size) c->xq_size = xq_row_size(&m->output);
    for (int i = 0; i < 3; i++) c->xq[i] = xalloc(c->xq_size * B, sb);
    /* attention scores: a buffer per thread (n_threads x group x ATTN_POS x
     * n_ctx floats: with -j 1024 -c 1048576 that is 64 GB, not the KV) */
    const int group = in->n_head / in->n_head_kv;
    uint64_t spt = (uint64_t)group * ATTN_POS(group) * (uint64_t)n_ctx;
    uint64_t score_bytes = (uint64_t)n_threads * spt * sizeof(float);
    /* more than the memory there is would only fail later (or, under a
     * sanitizer, abort): refuse it here with the same message */
    if (score_bytes > (size_t)-1 / 4 || (avail && score_bytes > avail)) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM,
                       "attention scores of %d threads at a %d-token context (%.1f MB) do not fit (lower -j or -c)",
                       n_threads, n_ctx, (double)score_bytes / 1e6);
    }
    c->scores_per_thread = (size_t)spt;
    c->scores = xalloc((size_t)score_bytes, sb);
    size_t half_rot = (size_t)in->n_rot / 2;
    c->rope_cos = xalloc((size_t)hp->n_rope_class * B * half_rot * sizeof(float), sb);
    c->rope_sin = xalloc((size_t)hp->n_rope_class * B * half_rot * sizeof(float), sb);
    c->rope_factors = hp->rope_freqs ? hp->rope_freqs : n_ctx > hp->n_ctx_orig ? hp->rope_long : hp->rope_short;
    c->kv_type = p && p->kv_q8 ? PL_TYPE_Q8_0 : PL_TYPE_F16;
    if (c->kv_type == PL_TYPE_Q8_0 && c->head_dim % QK8_0) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "an 8-bit KV cache needs a head dimension that is a multiple of 32");
    }
    c->kv_row = pl_row_size(c->kv_type, c->head_dim);
    c->n_seq = p && p->n_seq > 1 ? p->n_seq : 1;
    /* n_layer <= 1024, n_ctx <= 2^20, kv_dim <= 65536, n_seq <= 4096: fits in 64 bits */
    uint64_t kv = (uint64_t)c->n_seq * (uint64_t)in->n_layer * (uint64_t)n_ctx * (uint64_t)in->n_head_kv * c->kv_row;
    if (kv > (size_t)-1 / 4) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM, "KV cache of %llu bytes does not fit", (unsigned long long)kv * 2);
    }
    c->kcache = xalloc((size_t)kv, &c->kv_bytes);
    c->vcache = xalloc((size_t)kv, &c->kv_bytes);
    c->seq_tok = xalloc((size_t)c->n_seq * (size_t)n_ctx * sizeof *c->seq_tok, sb);
    c->seq_len = xalloc((size_t)c->n_seq * sizeof *c->seq_len, sb);
    c->seq_high = xalloc((size_t)c->n_seq * sizeof *c->seq_high, sb);
    c->b_pos = xalloc(B * sizeof *c->b_pos, sb);
    c->b_seq = xalloc(B * sizeof *c->b_seq, sb);
    c->b_out = xalloc(B * sizeof *c->b_out, sb);
    c->seq_next = xalloc((size_t)c->n_seq * sizeof *c->seq_next, sb);
    c->b_want = xalloc((size_t)c->n_seq * (size_t)n_ctx, sb);
    if (!c->scores) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM,
                       "out of memory for the attention scores of %d threads at a %d-token context (%.1f MB; lower -j or -c)",
                       n_threads, n_ctx, (double)score_bytes / 1e6);
    }
    if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->hb || !c->hb2 || !c->xq[0] || !c->xq[1] ||
        !c->xq[2] || !c->rope_cos || !c->rope_sin || !c->kcache || !c->vcache || !c->seq_tok ||
        !c->seq_len || !c->seq_high || !c->b_pos || !c->b_seq || !c->b_out || !c->seq_next || !c->b_want) {
        pl_context_free(c);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory for a %d-token context (KV cache %.1f MB)", n_ctx,
                       (double)kv * 2 / 1e6);
    }
    (void)pl_kernels(); /* pick the kernel level before any worker runs */
    c->pool = pl_pool_acquire(n_threads); /* shared with the other contexts of n_threads */
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
    *out = c;
    return 0;
}

void pl_context_free(pl_context *c) {
    if (!c) return;
    pl_pool_release(c->pool);
    free(c->x); free(c->xb); free(c->q); free(c->k); free(c->v);
    free(c->hb); free(c->hb2); free(c->scores); free(c->rope_cos); free(c->rope_sin);
    for (int i = 0; i < 3; i++) free(c->xq[i]);
    free(c->kcache); free(c->vcache);
    free(c->seq_tok); free(c->seq_len); free(c->seq_high); free(c->b_pos); free(c->b_seq); free(c->b_out);
    free(c->seq_next); free(c->b_want);
    free(c);
}

int pl_context_n_ctx(const pl_context *c) { return c->n_ctx; }

void pl_context_set_abort(pl_context *c, int (*cb)(void *user), void *user) {
    c->abort_cb = cb;
    c->abort_user = user;
}

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

/* RoPE's cos and sin for one position in rope class k, computed the way
 * ggml does: theta_i = freq_scale * pos * base^(-2i/n_rot) / factor_i,
 * advanced by repeated multiplication in float (a row per position of the
 * batch, rather than a table of the whole context: 512 KB less at 2048). */
static void rope_row(const pl_context *c, int k, int pos, float *cs, float *sn) {
    const pl_hparams *hp = &c->m->hp;
    const float *ff = k == 0 ? c->rope_factors : NULL, fs = hp->rope_freq_scale[k], mscale = hp->rope_attn_factor;
    const float theta_scale = powf(hp->rope_base[k], -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int i = 0; i < hp->n_rot / 2; i++) {
        float t = fs * (ff ? theta / ff[i] : theta);
        cs[i] = cosf(t) * mscale;
        sn[i] = sinf(t) * mscale;
        theta *= theta_scale;
    }
}

/* Rotate the first n_rot dims of each head: adjacent pairs (x[2i],
 * x[2i+1]), or NEOX halves (x[i], x[i + n_rot/2]); dims past n_rot pass. */
static void rope(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs, const float *sn) {
    const int half = n_rot / 2, step = neox ? 1 : 2, other = neox ? half : 1;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float *p = v + (size_t)i * step, a = p[0], b = p[other];
            p[0] = a * cs[i] - b * sn[i];
            p[other] = a * sn[i] + b * cs[i];
        }
    }
}

/* Byte offset of (sequence, layer, KV head, position) in the K or V cache:
 * the one place that knows the layout. */
size_t pl_kv_off(const pl_context *c, int seq, int l, int h, int pos) {
    const pl_hparams *hp = &c->m->hp;
    size_t blk = (((size_t)seq * (size_t)hp->n_layer + (size_t)l) * (size_t)hp->n_head_kv + (size_t)h);
    return (blk * (size_t)c->n_ctx + (size_t)pos) * c->kv_row;
}

/* Sequence seq's positions [n_keep + n_discard, n_past) move down by
 * n_discard, their keys re-rotated for the new positions. */
static int shift_seq(pl_context *c, int seq, int n_keep, int n_discard, int n_past) {
    const pl_hparams *hp = &c->m->hp;
    if (seq < 0 || seq >= c->n_seq || n_keep < 0 || n_discard <= 0 || n_past > c->n_ctx || n_keep + n_discard > n_past)
        return PL_ERR_ARG;
    int hd = c->head_dim, half = hp->n_rot / 2, n_move = n_past - n_keep - n_discard;
    /* rotating by -d: cos(d), -sin(d), per rope class */
    float cs[2][PL_MAX_HEAD_DIM / 2], sn[2][PL_MAX_HEAD_DIM / 2];
    for (int k = 0; k < hp->n_rope_class; k++) {
        rope_row(c, k, n_discard, cs[k], sn[k]);
        /* a pure rotation: without LongRoPE's attention factor, which the
         * keys already carry from their first rotation */
        const float inv = 1.0f / hp->rope_attn_factor;
        for (int i = 0; i < half; i++) cs[k][i] *= inv, sn[k][i] = -sn[k][i] * inv;
    }
    float buf[PL_MAX_HEAD_DIM];
    const pl_type_traits *kt_tr = pl_type_traits_get(c->kv_type);
    size_t row = c->kv_row;
    for (int l = 0; l < hp->n_layer; l++) {
        const pl_layer *L = &c->m->layers[l];
        for (int h = 0; h < hp->n_head_kv; h++) {
            uint8_t *k = c->kcache + pl_kv_off(c, seq, l, h, 0), *v = c->vcache + pl_kv_off(c, seq, l, h, 0);
            memmove(k + (size_t)n_keep * row, k + (size_t)(n_keep + n_discard) * row, (size_t)n_move * row);
            memmove(v + (size_t)n_keep * row, v + (size_t)(n_keep + n_discard) * row, (size_t)n_move * row);
            if (L->nope) continue;
            for (int t = n_keep; t < n_keep + n_move; t++) {
                uint8_t *kt = k + (size_t)t * row;
                kt_tr->to_float(kt, buf, hd);
                rope(buf, 1, hd, hp->n_rot, hp->arch->rope_neox, cs[L->rope_class], sn[L->rope_class]);
                store_kv(c, buf, kt);
            }
        }
    }
    int32_t *tk = c->seq_tok + (size_t)seq * c->n_ctx;
    memmove(tk + n_keep, tk + n_keep + n_discard, (size_t)n_move * sizeof *tk);
    c->seq_len[seq] = n_past - n_discard;
    return 0;
}

int pl_context_shift(pl_context *c, int n_keep, int n_discard, int n_past) {
    return shift_seq(c, 0, n_keep, n_discard, n_past);
}

int pl_seq_shift(pl_context *c, int seq, int n_keep, int n_discard) {
    if (seq < 0 || seq >= c->n_seq) return PL_ERR_ARG;
    return shift_seq(c, seq, n_keep, n_discard, c->seq_len[seq]);
}

int pl_seq_len(const pl_context *c, int seq) { return seq >= 0 && seq < c->n_seq ? c->seq_len[seq] : -1; }

const int32_t *pl_seq_tokens(const pl_context *c, int seq) {
    return seq >= 0 && seq < c->n_seq ? c->seq_tok + (size_t)seq * c->n_ctx : NULL;
}

int pl_context_n_seq(const pl_context *c) { return c->n_seq; }

int pl_seq_truncate(pl_context *c, int seq, int n) {
    if (seq < 0 || seq >= c->n_seq || n < 0) return PL_ERR_ARG;
    if (n < c->seq_len[seq]) c->seq_len[seq] = n;
    return 0;
}

int pl_seq_copy(pl_context *c, int dst, int src, int n) {
    if (dst < 0 || dst >= c->n_seq || src < 0 || src >= c->n_seq || n < 0 || n > c->seq_len[src]) return PL_ERR_ARG;
    if (dst == src) return pl_seq_truncate(c, dst, n);
    track_residency(c, dst, n);
    const pl_hparams *hp = &c->m->hp;
    for (int l = 0; l < hp->n_layer; l++)
        for (int h = 0; h < hp->n_head_kv; h++) {
            memcpy(c->kcache + pl_kv_off(c, dst, l, h, 0), c->kcache + pl_kv_off(c, src, l, h, 0), (size_t)n * c->kv_row);
            memcpy(c->vcache + pl_kv_off(c, dst, l, h, 0), c->vcache + pl_kv_off(c, src, l, h, 0), (size_t)n * c->kv_row);
        }
    memcpy(c->seq_tok + (size_t)dst * c->n_ctx, c->seq_tok + (size_t)src * c->n_ctx, (size_t)n * sizeof *c->seq_tok);
    c->seq_len[dst] = n;
    return 0;
}

int pl_seq_common_prefix(const pl_context *c, int seq, const int32_t *tokens, int n) {
    if (seq < 0 || seq >= c->n_seq || n < 0 || (n && !tokens)) return PL_ERR_ARG;
    const int32_t *tk = c->seq_tok + (size_t)seq * c->n_ctx;
    int i = 0, lim = n < c->seq_len[seq] ? n : c->seq_len[seq];
    while (i < lim && tk[i] == tokens[i] && tk[i] >= 0) i++;
    return i;
}

void pl_seq_set_tokens(pl_context *c, int seq, const int32_t *tokens, int n) {
    if (seq < 0 || seq >= c->n_seq || n < 0 || n > c->n_ctx) return;
    memcpy(c->seq_tok + (size_t)seq * c->n_ctx, tokens, (size_t)n * sizeof *tokens);
    c->seq_len[seq] = n;
    track_residency(c, seq, n);
}

/* ---- forward pass ------------------------------------------------------ */

/* Up to three independent products W x over the same nb activation columns
 * in one pool dispatch. Their rows are cut into chunks (whole 12-row groups,
 * so kernels can block rows by 3 or 4), which the threads claim from a
 * counter: a thread that runs slower (the memory bus is shared, the OS runs
 * something else) takes fewer chunks instead of holding everyone at the
 * barrier. About 8 chunks a thread for one token and for a few columns
 * (up to MM_FEW: the few-column kernels read each weight once, so nothing
 * is gained by a chunk that stays in L2; at 4 chunks the wait at the end of
 * a 4-stream server step's products was 12% of it, at 8 ~4%); 4 for a
 * larger batch, whose kernels prepare the activations once per call, one
 * thread included: the prefill kernels read a chunk's weights once per 32
 * columns, and a smaller chunk stays in L2 between them (Zen 4, TinyLlama
 * shape, 512 tokens on 1 thread: 1 chunk ~90 tok/s, 4 ~98; 2 threads: 2
 * and 4 the same, 8 slower). */
#define MM_CHUNKS_PER_THREAD 8
#ifndef MM_FEW
#define MM_FEW 16
#endif
#ifndef MM_CHUNKS_BATCH
#define MM_CHUNKS_BATCH 4
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
    const int64_t want = nb > MM_FEW     ? (int64_t)MM_CHUNKS_BATCH * nth
                         : nth > 1       ? (int64_t)MM_CHUNKS_PER_THREAD * nth
                                         : 1;
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

/* LayerNorm with weight and bias (phi2), as ggml_norm then mul and add. */
static void layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    float mean = (float)(sum / n);
    for (int i = 0; i < n; i++) ss += (double)(x[i] - mean) * (x[i] - mean);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] - mean) * scale * w[i] + b[i];
}

typedef struct {
    const pl_hparams *hp;
    float *out;
    size_t os, xs;
    const float *x, *w, *b;
    int n, nb;
} norm_job;

static void norm_task(void *arg, int ith, int nth) {
    const norm_job *j = arg;
    size_t r0, r1;
    share((size_t)j->nb, ith, nth, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        float *o = j->out + r * j->os;
        const float *x = j->x + r * j->xs;
        if (j->hp->arch->norm == PL_NORM_LAYER) layernorm(o, x, j->w, j->b, j->n, j->hp->norm_eps);
        else rmsnorm(o, x, j->w, j->n, j->hp->norm_eps);
    }
}

/* nb rows of n values, `stride` floats apart, through the arch's norm: rows
 * split among the pool's threads once there are a few per thread (each row
 * as one thread would compute it, so the same bits) */
static void norm_rows(pl_context *c, float *out, size_t os, const float *x, size_t xs, const float *w, const float *b,
                      int n, int nb) {
    norm_job j = {&c->m->hp, out, os, xs, x, w, b, n, nb};
    if (nb >= 4 * pl_pool_size(c->pool) && pl_pool_size(c->pool) > 1) pl_pool_run(c->pool, norm_task, &j);
    else norm_task(&j, 0, 1);
}

static void add_bias(float *y, size_t stride, const float *bias, int n, int nb) {
    if (!bias) return;
    for (int r = 0; r < nb; r++)
        for (int i = 0; i < n; i++) y[(size_t)r * stride + i] += bias[i];
}

/* ggml's GELU (tanh form) as its CPU backend evaluates it: the input
 * rounded to FP16, the result an FP16 table entry; 0 below -10, x above 10. */
static float gelu(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    float h = pl_half_to_float(pl_float_to_half(x));
    float y = 0.5f * h * (1.0f + tanhf(0.79788456080286535587989211986876f * h * (1.0f + 0.044715f * h * h)));
    return pl_half_to_float(pl_float_to_half(y));
}

/* The FFN's activation in place over n values per thread range:
 * silu(g) * u, gelu(g) * u, or gelu(g) (u NULL). */
typedef struct {
    float *g;
    const float *u;
    size_t n;
    int kind;
} act_job;

static void act_task(void *arg, int ith, int nth) {
    const act_job *s = arg;
    size_t i0, i1;
    share(s->n, ith, nth, &i0, &i1);
    if (s->kind == PL_FFN_SWIGLU) {
        pl_kernels()->swiglu(s->g + i0, s->u + i0, (int)(i1 - i0));
        return;
    }
    for (size_t i = i0; i < i1; i++) s->g[i] = s->u ? gelu(s->g[i]) * s->u[i] : gelu(s->g[i]);
}

/* The G query heads of a GQA group (hd floats apart) against cached
 * positions [0, n), with a soft-capped score (gemma2): cap * tanh(s / cap)
 * between the scale and the softmax, in the roundings of the FP16 kernels
 * (q and the probabilities to FP16). Each K and V row is converted once for
 * the group; scores holds G * n floats. */
static void attn_capped(const pl_context *c, const float *q, int G, const uint8_t *k, const uint8_t *v, int n,
                        float *out, float *scores) {
    enum { GMAX = 16 };
    const int hd = c->head_dim;
    const float cap = c->m->hp.attn_softcap, scale = c->m->hp.attn_scale;
    const pl_type_traits *tr = pl_type_traits_get(c->kv_type);
    const int f16 = c->kv_type == PL_TYPE_F16;
    float qh[GMAX][PL_MAX_HEAD_DIM], row[PL_MAX_HEAD_DIM], mx[GMAX], inv[GMAX];
    for (int g0 = 0; g0 < G; g0 += GMAX) { /* groups wider than GMAX in parts */
        const int gn = G - g0 < GMAX ? G - g0 : GMAX;
        for (int g = 0; g < gn; g++) {
            for (int i = 0; i < hd; i++) {
                float x = q[(size_t)(g0 + g) * hd + i];
                qh[g][i] = f16 ? pl_half_to_float(pl_float_to_half(x)) : x;
            }
            mx[g] = -INFINITY;
        }
        for (int t = 0; t < n; t++) {
            tr->to_float(k + (size_t)t * c->kv_row, row, hd);
            for (int g = 0; g < gn; g++) {
                float sdot = 0.0f;
                for (int i = 0; i < hd; i++) sdot += qh[g][i] * row[i];
                sdot = cap * tanhf(sdot * scale / cap);
                scores[(size_t)g * n + t] = sdot;
                if (sdot > mx[g]) mx[g] = sdot;
            }
        }
        for (int g = 0; g < gn; g++) {
            inv[g] = pl_softmax_exp(scores + (size_t)g * n, n, mx[g]);
            float *o = out + (size_t)(g0 + g) * hd;
            for (int i = 0; i < hd; i++) o[i] = 0.0f;
        }
        for (int t = 0; t < n; t++) {
            tr->to_float(v + (size_t)t * c->kv_row, row, hd);
            for (int g = 0; g < gn; g++) {
                float p = scores[(size_t)g * n + t] * inv[g];
                if (f16) p = pl_half_to_float(pl_float_to_half(p));
                if (p == 0.0f) continue;
                float *o = out + (size_t)(g0 + g) * hd;
                for (int i = 0; i < hd; i++) o[i] += p * row[i];
            }
        }
    }
}

typedef struct {
    pl_context *c;
    int layer, nb;
} attn_job;

/* Each (token, query head) pair of the batch against the cached positions
 * of its sequence its KV head lets it see: 0..pos (causal), or with a
 * sliding window of n_swa only pos - n_swa < k <= pos. The cache already
 * holds this batch. */
static void attn_task(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    pl_context *c = j->c;
    const pl_hparams *hp = &c->m->hp;
    const pl_layer *L = &c->m->layers[j->layer];
    int hd = c->head_dim, group = hp->n_head / hp->n_head_kv, W = c->wide;
    const float scale = hp->attn_scale;
    const int swa = L->swa ? hp->n_swa : 0, capped = hp->attn_softcap > 0.0f;
    const int32_t *bp = c->b_pos, *bs = c->b_seq;
    const pl_kernels_t *K = pl_kernels();
    /* a contiguous run of (KV head, token) pairs per thread, tokens inner:
     * the head's keys and values stay in cache from one to the next */
    size_t i0, i1;
    share((size_t)j->nb * hp->n_head_kv, ith, nth, &i0, &i1);
    float *scores = c->scores + (size_t)ith * c->scores_per_thread;
    for (size_t idx = i0; idx < i1;) {
        int kvh = (int)(idx / (size_t)j->nb), b = (int)(idx % (size_t)j->nb), n = bp[b] + 1;
        /* consecutive positions of one sequence share a call (up to
         * ATTN_POS), unless a window moves the first visible key with each
         * position or the scores are soft-capped: then one a call */
        int np = 1, max_np = (swa && n - 1 + 1 > swa) || capped ? 1 : ATTN_POS(group);
        while (np < max_np && (size_t)np < i1 - idx && b + np < j->nb && bs[b + np] == bs[b] &&
               bp[b + np] == bp[b] + np && !(swa && bp[b + np] + 1 > swa))
            np++;
        idx += (size_t)np;
        int lo = swa && n > swa ? n - swa : 0; /* first visible key */
        size_t base = pl_kv_off(c, bs[b], j->layer, kvh, lo);
        size_t off = (size_t)b * W + (size_t)kvh * group * hd; /* the group's query heads are adjacent */
        if (capped) {
            attn_capped(c, c->q + off, group, c->kcache + base, c->vcache + base, n - lo, c->xb + off, scores);
            continue;
        }
        if (c->kv_type == PL_TYPE_F16) {
            K->attn(c->q + off, group, np, (size_t)W, (const pl_half *)(c->kcache + base),
                    (const pl_half *)(c->vcache + base), n - lo, hd, scale, c->xb + off, scores);
            continue;
        }
        for (int p = 0; p < np; p++)
            for (int g = 0; g < group; g++) {
                size_t o = off + (size_t)p * W + (size_t)g * hd;
                pl_attn_head_q8_0(c->q + o, c->kcache + base, c->vcache + base, n - lo + p, hd, scale, c->xb + o,
                                  scores);
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

/* One product y = W x over nb columns, then dropped when streamed. */
static void product(pl_context *c, int l, int nb, const pl_weight *w, const float *x, size_t xs, float *y, size_t ys) {
    const pl_weight *ws[1] = {w};
    const float *xx[1] = {x};
    float *yy[1] = {y};
    matmul(c, 1, nb, ws, xx, xs, yy, &ys);
    drop_streamed(c, l, ws, 1);
}

/* nb tokens through every layer, token b at position c->b_pos[b] of
 * sequence c->b_seq[b]; logits (n_vocab each, in order) for the n_out
 * tokens listed in c->b_out. One pass for every architecture: each
 * difference is an `if` on the architecture's row (arch.h) or a tensor the
 * file has. */
static int forward(pl_context *c, const int32_t *tokens, int nb, float *logits, int n_out) {
    const pl_model *m = c->m;
    const pl_hparams *hp = &m->hp;
    const pl_arch *a = hp->arch;
    const int E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim, kvd = hp->n_kv, QD = hp->n_q, W = c->wide;
    const int half = hp->n_rot / 2;
    const size_t cls = (size_t)c->n_batch * half; /* floats per rope class */

    for (int b = 0; b < nb; b++) {
        float *xr = c->x + (size_t)b * E;
        m->tok_embd.tr->to_float((const uint8_t *)m->tok_embd.data + (size_t)tokens[b] * m->tok_embd.row_bytes, xr, E);
        if (a->embd_scale)
            for (int i = 0; i < E; i++) xr[i] *= hp->embd_scale;
    }
    for (int k = 0; k < hp->n_rope_class; k++)
        for (int b = 0; b < nb; b++)
            rope_row(c, k, c->b_pos[b], c->rope_cos + k * cls + (size_t)b * half, c->rope_sin + k * cls + (size_t)b * half);

    for (int l = 0; l < hp->n_layer; l++) {
        if (c->abort_cb && c->abort_cb(c->abort_user)) return PL_ERR_ABORTED;
        const pl_layer *L = &m->layers[l];
        /* streaming: read the next streamed layer ahead while this one runs */
        int next = l + 1 < hp->n_layer ? l + 1 : c->n_resident;
        if (c->n_resident < hp->n_layer && next >= c->n_resident)
            if (c->readahead) pl_advise(&m->map, m->layer_off[next], m->layer_len[next], PL_ADV_WILLNEED);
        norm_rows(c, c->xb, (size_t)W, c->x, (size_t)E, L->attn_norm, L->attn_norm_b, E, nb);
        {
            const pl_weight *w[3] = {&L->wq, &L->wk, &L->wv};
            const float *x[3] = {c->xb, c->xb, c->xb};
            float *y[3] = {c->q, c->k, c->v};
            size_t ys[3] = {(size_t)W, (size_t)kvd, (size_t)kvd};
            matmul(c, 3, nb, w, x, (size_t)W, y, ys);
            drop_streamed(c, l, w, 3);
        }
        add_bias(c->q, (size_t)W, L->bq, QD, nb);
        add_bias(c->k, (size_t)kvd, L->bk, kvd, nb);
        add_bias(c->v, (size_t)kvd, L->bv, kvd, nb);
        if (a->parallel) { /* the FFN reads the same normed input, which attention overwrites */
            product(c, l, nb, &L->w_up, c->xb, (size_t)W, c->hb, (size_t)F);
            add_bias(c->hb, (size_t)F, L->b_up, F, nb);
        }
        for (int b = 0; b < nb; b++) {
            int pos = c->b_pos[b], seq = c->b_seq[b];
            float *qb = c->q + (size_t)b * W, *kb = c->k + (size_t)b * kvd;
            if (L->q_norm) {
                for (int h = 0; h < hp->n_head; h++) rmsnorm(qb + h * hd, qb + h * hd, L->q_norm, hd, hp->norm_eps);
                for (int h = 0; h < hp->n_head_kv; h++) rmsnorm(kb + h * hd, kb + h * hd, L->k_norm, hd, hp->norm_eps);
            }
            if (!L->nope) {
                const float *cs = c->rope_cos + L->rope_class * cls + (size_t)b * half;
                const float *sn = c->rope_sin + L->rope_class * cls + (size_t)b * half;
                rope(qb, hp->n_head, hd, hp->n_rot, a->rope_neox, cs, sn);
                rope(kb, hp->n_head_kv, hd, hp->n_rot, a->rope_neox, cs, sn);
            }
            for (int h = 0; h < hp->n_head_kv; h++) {
                store_kv(c, kb + (size_t)h * hd, c->kcache + pl_kv_off(c, seq, l, h, pos));
                store_kv(c, c->v + (size_t)b * kvd + (size_t)h * hd, c->vcache + pl_kv_off(c, seq, l, h, pos));
            }
        }
        attn_job aj = {c, l, nb};
        pl_pool_run(c->pool, attn_task, &aj);
        product(c, l, nb, &L->wo, c->xb, (size_t)W, c->q, (size_t)W); /* attention output in q */
        add_bias(c->q, (size_t)W, L->bo, E, nb);
        if (L->attn_post_norm) norm_rows(c, c->q, (size_t)W, c->q, (size_t)W, L->attn_post_norm, NULL, E, nb);

        if (a->parallel) { /* x += attention + FFN of the same input */
            act_job sj = {c->hb, NULL, (size_t)nb * F, a->ffn};
            pl_pool_run(c->pool, act_task, &sj);
            product(c, l, nb, &L->w_down, c->hb, (size_t)F, c->hb2, (size_t)E);
            add_bias(c->hb2, (size_t)E, L->b_down, E, nb);
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < E; i++)
                    c->x[(size_t)b * E + i] += c->q[(size_t)b * W + i] + c->hb2[(size_t)b * E + i];
        } else {
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < E; i++) c->x[(size_t)b * E + i] += c->q[(size_t)b * W + i];
            norm_rows(c, c->xb, (size_t)W, c->x, (size_t)E, L->ffn_norm, L->ffn_norm_b, E, nb);
            if (L->w_gate.data) {
                const pl_weight *w[2] = {&L->w_gate, &L->w_up};
                const float *x[2] = {c->xb, c->xb};
                float *y[2] = {c->hb, c->hb2};
                size_t ys[2] = {(size_t)F, (size_t)F};
                matmul(c, 2, nb, w, x, (size_t)W, y, ys);
                drop_streamed(c, l, w, 2);
            } else {
                product(c, l, nb, &L->w_up, c->xb, (size_t)W, c->hb, (size_t)F);
            }
            add_bias(c->hb2, (size_t)F, L->w_gate.data ? L->b_up : NULL, F, nb);
            if (!L->w_gate.data) add_bias(c->hb, (size_t)F, L->b_up, F, nb);
            act_job sj = {c->hb, L->w_gate.data ? c->hb2 : NULL, (size_t)nb * F, a->ffn};
            pl_pool_run(c->pool, act_task, &sj);
            product(c, l, nb, &L->w_down, c->hb, (size_t)F, c->xb, (size_t)W);
            add_bias(c->xb, (size_t)W, L->b_down, E, nb);
            if (L->ffn_post_norm) norm_rows(c, c->xb, (size_t)W, c->xb, (size_t)W, L->ffn_post_norm, NULL, E, nb);
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < E; i++) c->x[(size_t)b * E + i] += c->xb[(size_t)b * W + i];
        }
        /* what drop_streamed left of a streamed layer (its norms, the
         * pages its tensors share at their edges) leaves too, so LRU never
         * evicts the resident ones in its place */
        if (l >= c->n_resident) pl_advise(&m->map, m->layer_off[l], m->layer_len[l], PL_ADV_DONTNEED);
    }
    if (!logits || n_out <= 0) return 0;
    /* the wanted rows, gathered in order at the front of x */
    for (int i = 0; i < n_out; i++)
        if (c->b_out[i] != i) memcpy(c->x + (size_t)i * E, c->x + (size_t)c->b_out[i] * E, (size_t)E * sizeof(float));
    int nl = n_out;
    float *xl = c->x;
    norm_rows(c, xl, (size_t)E, xl, (size_t)E, m->output_norm, m->output_norm_b, E, nl);
    const int V = m->info.n_vocab;
    product(c, -1, nl, &m->output, xl, (size_t)E, logits, (size_t)V); /* never dropped */
    add_bias(logits, (size_t)V, m->output_b, V, nl);
    if (hp->final_softcap > 0.0f) {
        const float cap = hp->final_softcap;
        for (size_t i = 0; i < (size_t)nl * V; i++) logits[i] = cap * tanhf(logits[i] / cap);
    }
    return 0;
}

/* Runs tokens [0, n) of a validated batch in chunks of at most n_batch
 * (equal ones, which share the work best; any split gives the same bits:
 * every kernel computes a column as it would alone). Token i sits at
 * position pos ? pos[i] : pos0 + i of sequence seq ? seq[i] : 0; its
 * logits go out (in order, n_vocab each) when want says so: want[i], or
 * with want NULL every token (all) or the last one. */
static int run_batch(pl_context *c, const int32_t *tokens, int n, const int32_t *pos, int pos0, const int32_t *seq,
                      const int8_t *want, int all, float *logits) {
    const int V = c->m->info.n_vocab;
    int chunks = (n + c->n_batch - 1) / c->n_batch;
    for (int i = 0, k = 0; i < n; k++) {
        int nb = n / chunks + (k < n % chunks), n_out = 0;
        for (int b = 0; b < nb; b++) {
            int t = i + b, p = pos ? pos[t] : pos0 + t, s = seq ? seq[t] : 0;
            c->b_pos[b] = p;
            c->b_seq[b] = s;
            if (logits && (want ? want[t] : all || t == n - 1)) c->b_out[n_out++] = b;
            c->seq_tok[(size_t)s * c->n_ctx + p] = tokens[t];
            if (p + 1 > c->seq_len[s]) c->seq_len[s] = p + 1;
        }
        if (forward(c, tokens + i, nb, logits, n_out)) return PL_ERR_ABORTED;
        if (logits) logits += (size_t)n_out * V;
        i += nb;
    }
    return 0;
}

int pl_eval(pl_context *c, const int32_t *tokens, int n, int pos, float *logits, int all_logits) {
    const pl_model_info *in = &c->m->info;
    if (n < 0 || pos < 0 || (n && !tokens)) return PL_ERR_ARG;
    if (n > c->n_ctx - pos) return PL_ERR_CTX_FULL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= in->n_vocab) return PL_ERR_ARG;
    if (n == 0) return 0;
    track_residency(c, 0, pos + n);
    /* the caller says where sequence 0 continues (the prompt cache may
     * have restored its first positions) */
    if (c->seq_len[0] > pos) c->seq_len[0] = pos;
    int len0 = c->seq_len[0];
    for (int i = c->seq_len[0]; i < pos; i++) c->seq_tok[i] = -1; /* not known here */
    if (run_batch(c, tokens, n, NULL, pos, NULL, NULL, all_logits, logits)) {
        c->seq_len[0] = len0; /* aborted: the positions it added are gone */
        return PL_ERR_ABORTED;
    }
    return 0;
}

int pl_decode(pl_context *c, const pl_batch *b, float *logits) {
    const pl_model_info *in = &c->m->info;
    if (!b || b->n_tokens < 0 || (b->n_tokens && (!b->token || !b->pos || !b->seq_id))) return PL_ERR_ARG;
    const int n = b->n_tokens;
    if (n == 0) return 0;
    if ((int64_t)n > (int64_t)c->n_seq * c->n_ctx) return PL_ERR_CTX_FULL;
    /* every token continues its sequence: position = what the sequence
     * holds plus its tokens earlier in this batch */
    int *next = c->seq_next;
    memcpy(next, c->seq_len, (size_t)c->n_seq * sizeof *next);
    for (int i = 0; i < n; i++) {
        int s = b->seq_id[i];
        if (b->token[i] < 0 || b->token[i] >= in->n_vocab || s < 0 || s >= c->n_seq || b->pos[i] != next[s])
            return PL_ERR_ARG;
        if (b->pos[i] >= c->n_ctx) return PL_ERR_CTX_FULL;
        next[s]++;
    }
    for (int s = 0; s < c->n_seq; s++)
        if (next[s] > c->seq_len[s]) track_residency(c, s, next[s]);
    int rc;
    if (b->logits) {
        rc = run_batch(c, b->token, n, b->pos, 0, b->seq_id, b->logits, 0, logits);
        goto done;
    }
    /* by default the last token of each sequence: run each sequence's
     * last token flagged through a want list in the context's scratch */
    int8_t *want = c->b_want;
    for (int i = 0; i < n; i++) want[i] = 0;
    for (int i = n - 1; i >= 0; i--)
        if (next[b->seq_id[i]] >= 0) want[i] = 1, next[b->seq_id[i]] = -1;
    rc = run_batch(c, b->token, n, b->pos, 0, b->seq_id, want, 0, logits);
done:
    /* aborted: each sequence back to its first position in the batch */
    for (int i = 0; rc && i < n; i++)
        if (b->pos[i] < c->seq_len[b->seq_id[i]]) c->seq_len[b->seq_id[i]] = b->pos[i];
    return rc;
}
