/* fuzz_tokenizer.c - libFuzzer target for both encoders.
 *
 * Loads a SentencePiece vocabulary and three byte-level BPE ones (a
 * hand-written splitter, the regex engine on collapsed categories, the
 * regex engine on code points) from the test data once (PICOLM_TESTDATA or
 * ../shared/testdata; without them every input is a no-op), then encodes
 * each input with and without special tokens and through encode_spans with
 * ranges the input picks, decodes the ids, and checks what must hold: the
 * count is the same with a short buffer, ids are in range, and for valid
 * UTF-8 without special-token parsing decode(encode(x)) gives x back (BPE)
 * or " " + x (SPM's space prefix). Build (see the Makefile's fuzz rule):
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc tests/fuzz_tokenizer.c src/... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

typedef struct vocab {
    const char *file;
    void *buf;
    gguf_file g;
    pl_tokenizer *t;
} vocab;

static vocab vocabs[] = {
    {"vocab/ggml-vocab-llama-spm.gguf", NULL, {0}, NULL},
    {"vocab/vocab-llama3.gguf", NULL, {0}, NULL},
    {"vocab/vocab-qwen3.gguf", NULL, {0}, NULL},
    {"vocab/ggml-vocab-deepseek-llm.gguf", NULL, {0}, NULL},
};
#define N_VOCAB (sizeof vocabs / sizeof vocabs[0])

static void *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = len > 0 ? malloc((size_t)len) : NULL;
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void load_once(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *dir = getenv("PICOLM_TESTDATA");
    if (!dir || !*dir) dir = "../shared/testdata";
    for (size_t i = 0; i < N_VOCAB; i++) {
        char path[4096], err[256];
        snprintf(path, sizeof path, "%s/%s", dir, vocabs[i].file);
        size_t n = 0;
        vocabs[i].buf = read_all(path, &n);
        if (!vocabs[i].buf) continue;
        if (gguf_parse(&vocabs[i].g, vocabs[i].buf, n, err, sizeof err) ||
            pl_tokenizer_load(&vocabs[i].t, &vocabs[i].g, err, sizeof err)) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", vocabs[i].file, err);
            abort(); /* the reference vocabularies must load */
        }
    }
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        uint32_t cp = k == 1 ? c : (uint32_t)(c & (0x7F >> k));
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k;
    }
    return 1;
}

static int has_lower_block(const uint8_t *s, size_t n) {
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return 1;
    return 0;
}

/* Encode into a fresh buffer of exactly the reported size. */
static int32_t *enc(const pl_tokenizer *t, const char *s, size_t n, int bos, int special, const size_t *plain,
                    int n_plain, int *count) {
    int k = plain ? pl_tokenizer_encode_spans(t, s, n, bos, plain, n_plain, NULL, 0)
                  : pl_tokenizer_encode(t, s, n, bos, special, NULL, 0);
    if (k < 0) abort(); /* only out of memory may fail here */
    int32_t *v = malloc(((size_t)k + 1) * sizeof *v);
    if (!v) abort();
    int k2 = plain ? pl_tokenizer_encode_spans(t, s, n, bos, plain, n_plain, v, k)
                   : pl_tokenizer_encode(t, s, n, bos, special, v, k);
    if (k2 != k) abort();
    for (int i = 0; i < k; i++)
        if (v[i] < 0 || v[i] >= pl_tokenizer_n_vocab(t)) abort();
    *count = k;
    return v;
}

static char *dec(const pl_tokenizer *t, const int32_t *ids, int n, size_t *len) {
    size_t cap = 64, m = 0;
    char *s = malloc(cap);
    int32_t prev = -1;
    for (int i = 0; i < n; i++) {
        int k = pl_tokenizer_decode(t, prev, ids[i], NULL, 0);
        if (m + (size_t)k + 1 > cap) {
            cap = (m + (size_t)k + 1) * 2;
            s = realloc(s, cap);
        }
        if (pl_tokenizer_decode(t, prev, ids[i], s + m, cap - m) != k) abort();
        m += (size_t)k;
        prev = ids[i];
    }
    *len = m;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    if (size > 1 << 16) return 0;
    const char *s = (const char *)data;
    int valid = valid_utf8(data, size);
    for (size_t v = 0; v < N_VOCAB; v++) {
        const pl_tokenizer *t = vocabs[v].t;
        if (!t) continue;
        int bpe = !strcmp(pl_tokenizer_kind(t), "bpe");
        int n;
        int32_t *ids = enc(t, s, size, 0, 0, NULL, 0, &n);
        size_t dl;
        char *d = dec(t, ids, n, &dl);
        if (valid && size > 0) {
            /* SPM adds a space in front (and a U+2581 written in the text
             * comes back as a space); BPE gives the bytes back */
            if (bpe && (dl != size || memcmp(d, s, size) != 0)) abort();
            if (!bpe && !has_lower_block(data, size) &&
                (dl != size + 1 || d[0] != ' ' || memcmp(d + 1, s, size) != 0))
                abort();
        }
        free(d);
        free(ids);

        ids = enc(t, s, size, 1, 1, NULL, 0, &n);
        int32_t *sp = NULL;
        int ns;
        /* encode_spans without ranges is encode with parse_special */
        size_t none = 0;
        sp = enc(t, s, size, 1, 1, &none, 0, &ns);
        if (ns != n || (n && memcmp(sp, ids, (size_t)n * sizeof *ids) != 0)) abort();
        free(sp);
        /* ranges picked by the first bytes: whatever they cover, no crash */
        if (size >= 4) {
            size_t plain[4] = {data[0] % (size + 1), 0, 0, 0};
            plain[1] = plain[0] + data[1] % (size + 1 - plain[0]);
            plain[2] = plain[1] + data[2] % (size + 1 - plain[1]);
            plain[3] = plain[2] + data[3] % (size + 1 - plain[2]);
            sp = enc(t, s, size, 0, 1, plain, 2, &ns);
            free(sp);
        }
        d = dec(t, ids, n, &dl);
        free(d);
        free(ids);
    }
    return 0;
}
