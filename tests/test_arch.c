/* test_arch.c - the architecture loader against hostile files.
 *
 * Each case edits one real set-2 model in memory (a key's value, a tensor's
 * name or shape, a string, a tensor's data) and opens it through the
 * memory twin: a clear one-line error naming what is wrong, never a crash
 * or a model that loads and answers wrongly. Every untouched model opens. */
#include <math.h>
#include <stdint.h>

#include "gguf.h"
#include "harness.h"
#include "picolm.h"

static uint8_t *buf;
static size_t len;
static gguf_file g;

static int load_model(const char *name) {
    char rel[128], err[256];
    snprintf(rel, sizeof rel, "arch/models/%s.gguf", name);
    free(buf);
    gguf_free(&g);
    buf = t_read_file(t_path(rel), &len);
    CHECK(buf != NULL, "missing %s", rel);
    if (!buf) return 0;
    CHECK(gguf_parse(&g, buf, len, err, sizeof err) == 0, "parse %s: %s", rel, err);
    return 1;
}

static size_t off_of(const void *p) { return (size_t)((const uint8_t *)p - g.base); }

/* Open an edited copy; the error must be one line holding `want`. */
static void expect(const uint8_t *copy, const char *want, const char *what) {
    char err[512] = "";
    pl_model *m = NULL;
    int rc = pl_model_open_memory(&m, copy, len, err, sizeof err);
    pl_model_close(m);
    CHECK(rc != 0, "%s: accepted", what);
    CHECK(rc == 0 || (err[0] && !strchr(err, '\n')), "%s: no one-line message", what);
    if (want) CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
}

static void with_u32(const char *key, uint32_t v, const char *want) {
    const gguf_kv *kv = gguf_find(&g, key);
    CHECK(kv && kv->type == GGUF_UINT32, "%s is a uint32 key", key);
    if (!kv || kv->type != GGUF_UINT32) return;
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    memcpy(copy + off_of(kv->data), &v, 4);
    expect(copy, want, key);
    free(copy);
}

/* Overwrite a string value with another of the same length. */
static void with_str(const char *key, const char *v, const char *want) {
    const gguf_kv *kv = gguf_find(&g, key);
    uint64_t n = 0;
    if (kv) memcpy(&n, kv->data, 8);
    CHECK(kv && kv->type == GGUF_STRING && n == strlen(v), "%s is a string of %zu bytes", key, strlen(v));
    if (!kv || kv->type != GGUF_STRING || n != strlen(v)) return;
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    memcpy(copy + off_of(kv->data) + 8, v, n);
    expect(copy, want, key);
    free(copy);
}

/* field 0: rename (last letter upper-cased); 1, 2: set dimension 0 or 1. */
static void with_tensor(const char *name, int field, uint64_t v, const char *want) {
    const gguf_tensor *t = gguf_find_tensor(&g, name);
    CHECK(t != NULL, "tensor %s", name);
    if (!t) return;
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    size_t name_off = off_of(t->name.ptr);
    if (field == 0) copy[name_off + t->name.len - 1] ^= 0x20;
    else memcpy(copy + name_off + t->name.len + 4 + 8 * (size_t)(field - 1), &v, 8);
    char what[160];
    snprintf(what, sizeof what, "%s edit %d", name, field);
    expect(copy, want, what);
    free(copy);
}

/* Set float i of an F32 tensor's data. */
static void with_data(const char *name, int i, float v, const char *want) {
    const gguf_tensor *t = gguf_find_tensor(&g, name);
    CHECK(t && t->type == 0, "F32 tensor %s", name);
    if (!t || t->type != 0) return;
    uint8_t *copy = malloc(len);
    memcpy(copy, buf, len);
    memcpy(copy + off_of(t->data) + 4 * (size_t)i, &v, 4);
    expect(copy, want, name);
    free(copy);
}

static void test_untouched(void) {
    static const char *names[] = {"qwen2-F32", "qwen3-F32", "llama-bpe-F32", "gemma2-Q4_K_M", "gemma3-Q8_0",
                                  "phi3-F32",  "phi2-F32",  "smollm3-Q8_0"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!load_model(names[i])) continue;
        char err[256];
        pl_model *m = NULL;
        CHECK(pl_model_open_memory(&m, buf, len, err, sizeof err) == 0, "%s opens: %s", names[i], err);
        if (m) {
            const pl_model_info *in = pl_model_get_info(m);
            CHECK(in->arch && in->head_dim > 0, "%s: arch and head_dim in the info", names[i]);
        }
        pl_model_close(m);
    }
}

static void test_edits(void) {
    if (load_model("qwen3-F32")) {
        with_u32("qwen3.attention.key_length", 0, "out of range");
        with_u32("qwen3.attention.key_length", 48, "differs from value_length");
        with_u32("qwen3.attention.key_length", 100000, "out of range");
        with_u32("qwen3.attention.value_length", 32, "differs from value_length");
        with_u32("qwen3.attention.head_count_kv", 3, "divisible");
        with_u32("qwen3.rope.dimension_count", 65, "out of range");
        with_tensor("blk.0.attn_q_norm.weight", 0, 0, "missing tensor blk.0.attn_q_norm.weight");
        with_tensor("blk.1.attn_k_norm.weight", 1, 32, "shape");
        with_str("general.architecture", "qwen9", "unsupported architecture 'qwen9'");
    }
    if (load_model("qwen2-F32")) {
        with_tensor("blk.0.attn_q.bias", 0, 0, "tensor blk.0.attn_q.biaS is not used by architecture qwen2");
        with_tensor("blk.1.attn_v.bias", 1, 63, "shape");
        with_u32("qwen2.embedding_length", 255, NULL);
    }
    if (load_model("gemma2-Q4_K_M")) {
        with_u32("gemma2.attention.sliding_window", 4096, "larger than context_length");
        with_tensor("blk.3.post_ffw_norm.weight", 0, 0, "missing tensor blk.3.post_ffw_norm.weight");
    }
    if (load_model("gemma3-Q8_0")) {
        with_str("gemma3.rope.scaling.type", "lineaR", "rope scaling type 'lineaR' is not supported");
        with_u32("gemma3.attention.sliding_window", 0, "sliding_window");
    }
    if (load_model("llama-bpe-F32")) {
        with_tensor("rope_freqs.weight", 1, 15, "rope_freqs.weight has shape");
        with_data("rope_freqs.weight", 3, NAN, "rope_freqs.weight[3]");
        with_data("rope_freqs.weight", 0, -1.0f, "rope_freqs.weight[0]");
        with_data("rope_freqs.weight", 15, 0.0f, "rope_freqs.weight[15]");
    }
    if (load_model("phi3-F32")) {
        with_tensor("blk.0.attn_qkv.weight", 2, 511, "attn_qkv.weight has shape");
        with_tensor("blk.1.ffn_up.weight", 2, 768, "ffn_up.weight has shape");
        with_tensor("blk.1.attn_qkv.weight", 0, 0, "missing tensor blk.1.attn_q.weight");
        with_u32("phi3.attention.sliding_window", 5000, "larger than context_length");
    }
    if (load_model("phi2-F32")) {
        with_tensor("blk.0.attn_norm.bias", 0, 0, "missing tensor blk.0.attn_norm.bias");
        with_tensor("output.bias", 1, 511, "shape");
    }
    free(buf);
    buf = NULL;
    gguf_free(&g);
}

int main(void) {
    if (t_skip_without_data("test_arch")) return 0;
    test_untouched();
    test_edits();
    return t_summary("test_arch");
}
