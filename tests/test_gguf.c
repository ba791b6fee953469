/* test_gguf.c - the GGUF reader and model loader against hostile input.
 *
 * Every case goes through the memory twin (pl_model_open_memory) on a
 * buffer of exactly the tested length, so a sanitizer build catches any
 * read past the end. Each must fail with a message, never crash or hang:
 * the reference model truncated at every offset of its header, metadata
 * and tensor table and at many offsets in the data; hand-built files with
 * bad magic, versions, counts, lengths, types, shapes, offsets; and the real
 * model with inconsistent hyper-parameters, missing or misshapen tensors. */
#include <stdint.h>

#include "gguf.h"
#include "harness.h"
#include "picolm.h"
#include "quant.h"

/* Open a copy of buf[0..len) of exactly that size; returns the status. */
static int try_open(const void *buf, size_t len, char *err, size_t errlen) {
    void *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    pl_model *m = NULL;
    err[0] = 0;
    int rc = pl_model_open_memory(&m, copy, len, err, errlen);
    pl_model_close(m);
    free(copy);
    return rc;
}

static void expect_fail(const void *buf, size_t len, const char *want, const char *what) {
    char err[512];
    int rc = try_open(buf, len, err, sizeof err);
    CHECK(rc != 0, "%s: accepted", what);
    CHECK(rc == 0 || (err[0] && !strchr(err, '\n')), "%s: no one-line message", what);
    if (want) CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
}

/* ---- a tiny GGUF writer for hand-built files ---- */
typedef struct { uint8_t *p; size_t n, cap; } wbuf;
static void put(wbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void u64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void str(wbuf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void header(wbuf *b, uint32_t ver, uint64_t nt, uint64_t nkv) {
    put(b, "GGUF", 4);
    u32(b, ver);
    u64(b, nt);
    u64(b, nkv);
}
static void kv_str(wbuf *b, const char *k, const char *v) { str(b, k); u32(b, GGUF_STRING); str(b, v); }
static void tensor(wbuf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name);
    u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad(wbuf *b, size_t align, size_t extra) {
    while (b->n % align) put(b, "", 1);
    for (size_t i = 0; i < extra; i++) put(b, "", 1);
}

static void test_handmade(void) {
    wbuf b = {0};
    expect_fail("GGU", 3, "too small", "3 bytes");
    expect_fail("", 0, NULL, "empty");
    header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    expect_fail(b.p, b.n, "bad magic", "bad magic");
    b.n = 0; header(&b, 1, 0, 0);
    expect_fail(b.p, b.n, "version 1", "version 1");
    b.n = 0; header(&b, 4, 0, 0);
    expect_fail(b.p, b.n, "unsupported GGUF version", "version 4");
    b.n = 0; header(&b, 3, 0, 0xFFFFFFFFFFFFull);
    expect_fail(b.p, b.n, "metadata count", "huge kv count");
    b.n = 0; header(&b, 3, 1ull << 60, 0);
    expect_fail(b.p, b.n, "tensor count", "huge tensor count");
    b.n = 0; header(&b, 3, 0, 1); u64(&b, 1ull << 62);
    expect_fail(b.p, b.n, "exceeds the file", "huge key length");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "a"); u32(&b, 99); u32(&b, 0);
    expect_fail(b.p, b.n, "unknown metadata type", "bad value type");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "a"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_UINT32); u64(&b, 1ull << 61);
    expect_fail(b.p, b.n, "exceeds the file", "huge array");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "a"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_STRING); u64(&b, 3); str(&b, "x");
    expect_fail(b.p, b.n, "exceeds the file", "short string array");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "a"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_ARRAY); u64(&b, 1);
    u32(&b, GGUF_ARRAY); u64(&b, 1); u32(&b, GGUF_UINT8); u64(&b, 0);
    expect_fail(b.p, b.n, "nested too deep", "nested arrays");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "a"); u32(&b, GGUF_BOOL); put(&b, "\x05", 1);
    expect_fail(b.p, b.n, "bool", "bool value 5");
    b.n = 0; header(&b, 3, 0, 2); kv_str(&b, "a", "x"); kv_str(&b, "a", "y");
    expect_fail(b.p, b.n, "duplicate metadata key", "duplicate key");
    b.n = 0; header(&b, 3, 0, 1); str(&b, "general.alignment"); u32(&b, GGUF_UINT32); u32(&b, 3);
    expect_fail(b.p, b.n, "alignment", "alignment 3");

    /* tensor table */
    uint64_t ne2[2] = {32, 2}, ne5[5] = {1, 1, 1, 1, 1}, ne0[2] = {0, 2}, big[4] = {1ull << 40, 1ull << 40, 1, 1},
             odd[2] = {33, 1};
    struct { uint32_t nd; const uint64_t *ne; uint32_t type; uint64_t off; const char *want; } bad[] = {
        {0, ne2, 0, 0, "dimensions"},
        {5, ne5, 0, 0, "dimensions"},
        {2, ne0, 0, 0, "bad dimension"},
        {4, big, 0, 0, "absurdly large"},
        {2, ne2, 99, 0, "unsupported type"},
        {2, ne2, 16, 0, "unsupported type"}, /* IQ2_XXS: known to ggml, not here */
        {2, odd, PL_TYPE_Q4_0, 0, "multiple"},
        {2, ne2, 0, 7, "aligned"},
        {2, ne2, 0, 1 << 20, "past the end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b.n = 0;
        header(&b, 3, 1, 0);
        tensor(&b, "w", bad[i].nd, bad[i].ne, bad[i].type, bad[i].off);
        pad(&b, 32, 256);
        char what[64];
        snprintf(what, sizeof what, "bad tensor %zu", i);
        expect_fail(b.p, b.n, bad[i].want, what);
    }
    b.n = 0; header(&b, 3, 2, 0);
    tensor(&b, "w", 2, ne2, 0, 0); tensor(&b, "w", 2, ne2, 0, 256);
    pad(&b, 32, 512);
    expect_fail(b.p, b.n, "duplicate tensor", "duplicate tensor");

    /* a well-formed file whose tokenizer the engine does not run (WordPiece),
     * and a gpt2 (byte-level BPE) one without the merges it needs */
    b.n = 0; header(&b, 3, 0, 2);
    kv_str(&b, "tokenizer.ggml.model", "bert");
    str(&b, "tokenizer.ggml.tokens"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_STRING); u64(&b, 1); str(&b, "a");
    expect_fail(b.p, b.n, "unsupported tokenizer", "bert tokenizer");
    b.n = 0; header(&b, 3, 0, 2);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    str(&b, "tokenizer.ggml.tokens"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_STRING); u64(&b, 1); str(&b, "a");
    expect_fail(b.p, b.n, "missing tokenizer.ggml.merges", "gpt2 tokenizer without merges");
    /* chat templates: the family detected from tokenizer.chat_template */
    static const struct { const char *jinja, *family; } chats[] = {
        {"{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>{% endfor %}", "chatml"},
        {"{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>\n' + m['content'] + eos_token }}"
         "{% endif %}{% endfor %}", "zephyr"},
        {"{{ bos_token }}{% for m in messages %}[INST] <<SYS>>\n{{ m['content'] }} [/INST]{% endfor %}", "llama2"},
        {"{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}", "mistral"},
        {"<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>", "llama3"},
        {"{{'<|user|>\n' + m['content'] + '<|end|>\n'}}", "phi3"},
        {"<start_of_turn>{{ role }}\n{{ m['content'] }}<end_of_turn>", "gemma"},
        {"nothing known here", NULL},
    };
    for (size_t i = 0; i < sizeof chats / sizeof *chats; i++) {
        b.n = 0; header(&b, 3, 0, 3);
        kv_str(&b, "tokenizer.ggml.model", "llama");
        str(&b, "tokenizer.ggml.tokens"); u32(&b, GGUF_ARRAY); u32(&b, GGUF_STRING); u64(&b, 3);
        str(&b, "<unk>"); str(&b, "<s>"); str(&b, "</s>");
        kv_str(&b, "tokenizer.chat_template", chats[i].jinja);
        char e[256];
        pl_model *cm = NULL;
        CHECK(pl_model_open_memory(&cm, b.p, b.n, e, sizeof e) == 0, "chat vocab: %s", e);
        if (!cm) continue;
        const char *fam = pl_chat_template_detect(cm);
        CHECK(chats[i].family ? fam && !strcmp(fam, chats[i].family) : fam == NULL, "template %zu detected as %s",
              i, fam ? fam : "none");
        pl_model_close(cm);
    }
    char out[256];
    size_t nsys;
    int n = pl_chat_format("chatml", "S", "U", out, sizeof out, &nsys);
    CHECK(n > 0 && !strcmp(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n") &&
              nsys == strlen("<|im_start|>system\nS<|im_end|>\n"),
          "chatml format: %s", out);
    n = pl_chat_format("llama2", "S", "U", out, sizeof out, &nsys);
    CHECK(n > 0 && !strcmp(out, "[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]"), "llama2 format: %s", out);
    n = pl_chat_format("zephyr", NULL, "U", out, sizeof out, &nsys);
    CHECK(n > 0 && !strcmp(out, "<|user|>\nU</s>\n<|assistant|>\n") && nsys == 0, "zephyr without system: %s", out);
    CHECK(pl_chat_format("nope", "S", "U", out, sizeof out, &nsys) == -1, "unknown template");
    /* ... and v2 files parse like v3 ones */
    gguf_file g;
    char err[256];
    b.n = 0; header(&b, 2, 0, 1); kv_str(&b, "k", "v");
    CHECK(gguf_parse(&g, b.p, b.n, err, sizeof err) == 0, "v2 file: %s", err);
    gguf_str s;
    CHECK(gguf_get_str(&g, "k", &s) == 0 && gguf_str_eq(s, "v"), "v2 string value");
    gguf_free(&g);
    free(b.p);
}

/* The real model, each refusal provoked by one edit of a copy. */
static uint8_t *model_buf;
static size_t model_len;
static gguf_file model_g;

static size_t off_of(const void *p) { return (size_t)((const uint8_t *)p - model_g.base); }

static void with_u32(const char *key, uint32_t v, const char *want) {
    const gguf_kv *kv = gguf_find(&model_g, key);
    CHECK(kv && kv->type == GGUF_UINT32, "%s is a uint32 key", key);
    if (!kv || kv->type != GGUF_UINT32) return;
    uint8_t *copy = malloc(model_len);
    memcpy(copy, model_buf, model_len);
    memcpy(copy + off_of(kv->data), &v, 4);
    expect_fail(copy, model_len, want, key);
    free(copy);
}

static void with_tensor_edit(const char *name, int field, uint64_t v, const char *want) {
    const gguf_tensor *t = gguf_find_tensor(&model_g, name);
    CHECK(t != NULL, "tensor %s", name);
    if (!t) return;
    uint8_t *copy = malloc(model_len);
    memcpy(copy, model_buf, model_len);
    size_t name_off = off_of(t->name.ptr);
    if (field == 0) copy[name_off + t->name.len - 1] ^= 0x20; /* rename: "weight" -> "weighT" */
    else { /* field 1: first dimension */
        size_t dim_off = name_off + t->name.len + 4;
        memcpy(copy + dim_off, &v, 8);
    }
    char what[128];
    snprintf(what, sizeof what, "%s edit %d", name, field);
    expect_fail(copy, model_len, want, what);
    free(copy);
}

static void test_model_edits(void) {
    model_buf = t_read_file(t_path("models/tiny512-Q4_K_M.gguf"), &model_len);
    CHECK(model_buf != NULL, "missing tiny512-Q4_K_M.gguf (set PICOLM_TESTDATA)");
    if (!model_buf) return;
    char err[256];
    CHECK(gguf_parse(&model_g, model_buf, model_len, err, sizeof err) == 0, "parse: %s", err);
    CHECK(try_open(model_buf, model_len, err, sizeof err) == 0, "the untouched model opens: %s", err);

    with_u32("llama.attention.head_count", 7, "divisible");
    with_u32("llama.attention.head_count_kv", 3, "divisible");
    with_u32("llama.attention.head_count_kv", 16, "out of range");
    with_u32("llama.embedding_length", 512, "shape");
    with_u32("llama.embedding_length", 0, "out of range");
    with_u32("llama.block_count", 3, "missing tensor blk.2");
    with_u32("llama.block_count", 0xFFFFFFF0u, "out of range");
    with_u32("llama.feed_forward_length", 512, "shape");
    with_u32("llama.rope.dimension_count", 33, NULL);
    with_tensor_edit("blk.1.ffn_up.weight", 0, 0, "missing tensor blk.1.ffn_up");
    with_tensor_edit("token_embd.weight", 0, 0, "missing tensor token_embd");
    with_tensor_edit("output_norm.weight", 0, 0, "missing tensor output_norm");
    with_tensor_edit("blk.0.attn_k.weight", 1, 512, NULL);
    with_tensor_edit("blk.0.attn_k.weight", 1, 1ull << 45, "bad dimension");

    /* Truncation at every offset through the tensor table, then at 400
     * offsets spread over the data. */
    size_t table_end = (size_t)model_g.data_offset, n = 0;
    for (size_t cut = 0; cut < table_end; cut += 1, n++) {
        char e[512];
        int rc = try_open(model_buf, cut, e, sizeof e);
        if (rc == 0 || !e[0]) {
            CHECK(0, "truncated at %zu: %s", cut, rc == 0 ? "accepted" : "no message");
            break;
        }
    }
    for (int i = 0; i < 400; i++, n++) {
        size_t cut = table_end + (model_len - table_end) / 400 * i + (size_t)i % 7;
        char e[512];
        int rc = try_open(model_buf, cut, e, sizeof e);
        if (rc == 0) {
            CHECK(0, "truncated at %zu accepted", cut);
            break;
        }
        CHECK(strstr(e, "truncated") != NULL, "cut at %zu: '%s'", cut, e);
    }
    printf("  %zu truncated copies refused\n", n);

    /* Random byte corruption of the header, metadata and tensor table:
     * either a clean refusal or a model that loads; never a crash. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    uint8_t *copy = malloc(model_len);
    int refused = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, model_buf, model_len);
        for (int k = 0; k < 1 + i % 4; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            copy[(x >> 8) % table_end] = (uint8_t)x;
        }
        char e[512];
        pl_model *m = NULL;
        if (pl_model_open_memory(&m, copy, model_len, e, sizeof e)) refused++;
        pl_model_close(m);
    }
    free(copy);
    printf("  3000 corrupted copies: %d refused, the rest loaded\n", refused);
    gguf_free(&model_g);
    free(model_buf);
}

static void test_reference_files(void) {
    static const char *files[] = {"models/tiny512-F32.gguf", "models/tiny512-Q2_K.gguf", "models/tiny32k-Q4_K_M.gguf",
                                  "vocab/ggml-vocab-llama-spm.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        size_t len;
        void *buf = t_read_file(t_path(files[i]), &len);
        CHECK(buf != NULL, "missing %s", files[i]);
        if (!buf) continue;
        gguf_file g;
        char err[256];
        CHECK(gguf_parse(&g, buf, len, err, sizeof err) == 0, "%s: %s", files[i], err);
        CHECK(g.version == 3, "%s version", files[i]);
        uint32_t ctx;
        if (g.n_tensors) CHECK(gguf_get_u32(&g, "llama.context_length", &ctx) == 0 && ctx == 2048, "context_length");
        const gguf_kv *tok = gguf_find(&g, "tokenizer.ggml.tokens");
        CHECK(tok && tok->type == GGUF_ARRAY && tok->arr_type == GGUF_STRING, "%s: token array", files[i]);
        gguf_free(&g);
        free(buf);
    }
}

int main(void) {
    /* the handmade hostile headers need no files; the reference files and
     * the edits of a real model do (one skip line without them) */
    test_handmade();
    if (!t_skip_without_data("test_gguf (reference files, model edits)")) {
        test_reference_files();
        test_model_edits();
    }
    return t_summary("test_gguf");
}
