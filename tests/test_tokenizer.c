/* test_tokenizer.c - the SPM tokenizer against llama.cpp's answers.
 *
 * The 46 vectors of llama.cpp's test-tokenizer-0 for the Llama-2 vocab (no
 * BOS, special tokens not parsed, as that test calls common_tokenize), the
 * prompt ids of every case of the tiny32k greedy references (BOS added,
 * special tokens parsed) and "Once upon a time" on the 512-piece vocab (byte
 * fallback); then decode round trips, buffer-size semantics, special-token
 * partition order on a hand-built vocab, and refusals of bad metadata. */
#include <stdint.h>

#include "gguf.h"
#include "harness.h"
#include "picolm.h"
#include "tok_impl.h"
#include "tokenizer.h"

/* ---- helpers ---- */

typedef struct loaded {
    void *buf;
    gguf_file g;
    pl_tokenizer *t;
} loaded;

static int load_file(loaded *l, const char *rel) {
    char err[256] = "";
    size_t n = 0;
    memset(l, 0, sizeof *l);
    l->buf = t_read_file(t_path(rel), &n);
    CHECK(l->buf != NULL, "cannot read %s", t_path(rel));
    if (!l->buf) return -1;
    int rc = gguf_parse(&l->g, l->buf, n, err, sizeof err);
    CHECK(rc == 0, "%s: gguf_parse: %s", rel, err);
    if (rc) return -1;
    rc = pl_tokenizer_load(&l->t, &l->g, err, sizeof err);
    CHECK(rc == 0, "%s: pl_tokenizer_load: %s", rel, err);
    return rc ? -1 : 0;
}

static void unload(loaded *l) {
    pl_tokenizer_free(l->t);
    gguf_free(&l->g);
    free(l->buf);
}

/* Encode into a malloc'd array (retrying with the size the first call
 * reports); *n = count, NULL on error. */
static int32_t *encode(const pl_tokenizer *t, const char *s, size_t len, int bos, int special, int *n) {
    int32_t small[4];
    int k = pl_tokenizer_encode(t, s, len, bos, special, small, 4);
    *n = k;
    if (k < 0) return NULL;
    int32_t *v = malloc(((size_t)k + 1) * sizeof *v);
    int k2 = pl_tokenizer_encode(t, s, len, bos, special, v, k);
    CHECK(k2 == k, "second encode gave %d, first %d", k2, k);
    return v;
}

/* Decode a sequence token by token, as a streaming caller would. */
static char *decode_all(const pl_tokenizer *t, const int32_t *ids, int n, size_t *outlen) {
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    int32_t prev = -1;
    for (int i = 0; i < n; i++) {
        int k = pl_tokenizer_decode(t, prev, ids[i], s + len, cap - len);
        if (len + (size_t)k > cap) {
            cap = (len + (size_t)k) * 2;
            s = realloc(s, cap);
            int k2 = pl_tokenizer_decode(t, prev, ids[i], s + len, cap - len);
            CHECK(k2 == k, "decode length changed %d -> %d", k, k2);
        }
        len += (size_t)k;
        prev = ids[i];
    }
    *outlen = len;
    return s;
}

/* Parse a line of space-separated ids; returns the count. */
static int parse_ids(const char *s, const char *end, int32_t *v, int cap) {
    int n = 0;
    while (s < end) {
        char *e;
        long x = strtol(s, &e, 10);
        if (e == s) break;
        if (n < cap) v[n] = (int32_t)x;
        n++;
        s = e;
    }
    return n;
}

static int ids_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void show_ids(const char *what, const int32_t *v, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", v[i]);
    fputc('\n', stderr);
}

/* ---- 1. llama.cpp's vocab vectors ---- */

typedef struct vcase {
    const char *s;
    size_t len;
} vcase;

/* Split .inp the way test-tokenizer-0 does: by "\n__ggml_vocab_test__\n";
 * the file ends with one, so no empty case follows the last. */
static int split_inp(char *inp, size_t n, vcase *cases, int cap) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t m = sizeof sep - 1;
    size_t pos = 0;
    int k = 0;
    while (pos < n) {
        char *hit = NULL;
        for (size_t i = pos; i + m <= n; i++)
            if (memcmp(inp + i, sep, m) == 0) { hit = inp + i; break; }
        size_t end = hit ? (size_t)(hit - inp) : n;
        if (k < cap) cases[k] = (vcase){inp + pos, end - pos};
        k++;
        if (!hit) break;
        pos = end + m;
    }
    return k;
}

static void test_vocab_vectors(loaded *l) {
    size_t ni = 0, no = 0;
    char *inp = t_read_file(t_path("vocab/ggml-vocab-llama-spm.gguf.inp"), &ni);
    char *outs = t_read_file(t_path("vocab/ggml-vocab-llama-spm.gguf.out"), &no);
    CHECK(inp && outs, "cannot read the .inp/.out vectors");
    if (!inp || !outs) { free(inp); free(outs); return; }
    vcase cases[64];
    int nc = split_inp(inp, ni, cases, 64);
    CHECK(nc == 46, "expected 46 cases, found %d", nc);
    const char *line = outs;
    int32_t want[1024];
    int ok = 0;
    for (int c = 0; c < nc && c < 64; c++) {
        const char *eol = memchr(line, '\n', (size_t)(outs + no - line));
        if (!eol) eol = outs + no;
        int nw = parse_ids(line, eol, want, 1024);
        line = eol < outs + no ? eol + 1 : eol;
        int n;
        int32_t *got = encode(l->t, cases[c].s, cases[c].len, 0, 0, &n);
        int same = got && ids_equal(got, n, want, nw);
        CHECK(same, "vocab case %d ('%.*s') differs", c, (int)cases[c].len, cases[c].s);
        if (!same && got) { show_ids("want", want, nw); show_ids("got ", got, n); }
        ok += same;

        /* 3. round trips: with BOS the added space is dropped, without it
         * it is kept */
        if (got) {
            size_t dl;
            char *d = decode_all(l->t, got, n, &dl);
            /* "" gives no token at all, so no space either */
            int rt = cases[c].len == 0 ? dl == 0
                                       : dl == cases[c].len + 1 && d[0] == ' ' &&
                                             memcmp(d + 1, cases[c].s, cases[c].len) == 0;
            CHECK(rt, "vocab case %d: decode without BOS is '%.*s'", c, (int)dl, d);
            free(d);
        }
        free(got);
        got = encode(l->t, cases[c].s, cases[c].len, 1, 1, &n);
        if (got) {
            CHECK(n >= 1 && got[0] == 1, "vocab case %d: no BOS", c);
            size_t dl;
            char *d = decode_all(l->t, got, n, &dl);
            CHECK(dl == cases[c].len && memcmp(d, cases[c].s, dl) == 0, "vocab case %d: decode after BOS is '%.*s'",
                  c, (int)dl, d);
            free(d);
        }
        free(got);
    }
    CHECK(ok == 46, "%d of 46 vocab cases match", ok);
    free(inp);
    free(outs);
}

/* ---- 2. tiny32k greedy references: prompt ids ---- */

static int unhex(const char *s, const char *end, char *out) {
    int n = 0;
    for (; s + 1 < end; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) return -1;
        out[n++] = (char)v;
    }
    return n;
}

static void test_greedy_prompts(void) {
    loaded l;
    if (load_file(&l, "models/tiny32k-Q4_K_M.gguf")) { unload(&l); return; }
    CHECK(pl_tokenizer_add_bos(l.t) == 1, "tiny32k: add_bos");
    size_t n = 0;
    char *tsv = t_read_file(t_path("refs/tiny32k-Q4_K_M.greedy.tsv"), &n);
    CHECK(tsv != NULL, "cannot read the tsv");
    int cases = 0, ok = 0;
    for (char *line = tsv; tsv && line < tsv + n;) {
        char *eol = memchr(line, '\n', (size_t)(tsv + n - line));
        if (!eol) eol = tsv + n;
        char *tab1 = memchr(line, '\t', (size_t)(eol - line));
        char *tab2 = tab1 ? memchr(tab1 + 1, '\t', (size_t)(eol - tab1 - 1)) : NULL;
        if (line[0] != '#' && tab1 && tab2) {
            char *text = malloc((size_t)(tab1 - line) / 2 + 1);
            int tl = unhex(line, tab1, text);
            int32_t want[2048];
            int nw = parse_ids(tab1 + 1, tab2, want, 2048);
            int got_n;
            int32_t *got = tl >= 0 ? encode(l.t, text, (size_t)tl, 1, 1, &got_n) : NULL;
            int same = got && ids_equal(got, got_n, want, nw);
            CHECK(same, "tiny32k prompt %d ('%.*s') differs", cases, tl, text);
            if (!same && got) { show_ids("want", want, nw); show_ids("got ", got, got_n); }
            ok += same;
            cases++;
            free(got);
            free(text);
        }
        line = eol + 1;
    }
    CHECK(cases >= 5 && ok == cases, "tiny32k: %d of %d prompts match", ok, cases);
    free(tsv);
    unload(&l);
}

/* ---- byte fallback on the 512-piece vocab ---- */

static void test_tiny512(void) {
    loaded l;
    if (load_file(&l, "models/tiny512-F32.gguf")) { unload(&l); return; }
    static const int32_t want[] = {1, 438, 113, 346, 318, 115, 265, 263, 260, 326, 104};
    int n;
    int32_t *got = encode(l.t, "Once upon a time", 16, 1, 1, &n);
    int same = got && ids_equal(got, n, want, 11);
    CHECK(same, "tiny512: 'Once upon a time' differs");
    if (!same && got) { show_ids("want", want, 11); show_ids("got ", got, n); }
    size_t dl;
    char *d = got ? decode_all(l.t, got, n, &dl) : NULL;
    CHECK(d && dl == 16 && memcmp(d, "Once upon a time", 16) == 0, "tiny512: round trip");
    free(d);
    free(got);
    unload(&l);
}

/* ---- 3. byte fallback, NUL bytes, buffer sizes ---- */

static void test_bytes(loaded *l) {
    const pl_tokenizer *t = l->t;
    /* invalid UTF-8, a truncated sequence at the end, an emoji without a
     * piece, a NUL byte */
    static const char s[] = "\xff\xfex\x80y \xf0\x9f\xa6\x99 a\0b \xe2\x96";
    const size_t len = sizeof s - 1;
    int n;
    int32_t *ids = encode(t, s, len, 1, 0, &n);
    CHECK(ids != NULL && n > 0, "bytes: encode failed");
    if (!ids) return;
    int bytes = 0;
    for (int i = 0; i < n; i++) {
        const char *p = pl_tokenizer_piece(t, ids[i]);
        bytes += p && strncmp(p, "<0x", 3) == 0;
    }
    CHECK(bytes >= 10, "bytes: only %d byte tokens", bytes);
    /* 0xFF is <0xFF> = id 3 + 255 in the Llama-2 vocab */
    CHECK(n > 2 && ids[1] == 29871 && ids[2] == 3 + 0xff, "bytes: ids %d %d", n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1);
    size_t dl;
    char *d = decode_all(t, ids, n, &dl);
    CHECK(dl == len && memcmp(d, s, len) == 0, "bytes: round trip gives %zu bytes", dl);
    free(d);

    /* llama.cpp quirk kept on purpose: a lead byte 0xF8-0xFF claims 4 bytes,
     * swallowing the U+2581 an escaped space became, so that space decodes
     * as "\xe2\x96\x81" rather than " " */
    int32_t q[8];
    int nq = pl_tokenizer_encode(t, "\xff x", 3, 0, 0, q, 8);
    CHECK(nq == 6 && q[0] == 29871 && q[1] == 3 + 0xff && q[2] == 3 + 0xe2 && q[3] == 3 + 0x96 && q[4] == 3 + 0x81 &&
              q[5] == 29916,
          "0xFF lead byte: %d ids", nq);

    /* the count is the full one even when the buffer is short; only
     * max_out entries are written */
    int32_t buf[4] = {-7, -7, -7, -7};
    int k = pl_tokenizer_encode(t, s, len, 1, 0, buf, 2);
    CHECK(k == n, "short buffer: %d, want %d", k, n);
    CHECK(buf[0] == ids[0] && buf[1] == ids[1] && buf[2] == -7 && buf[3] == -7, "short buffer overwritten");
    CHECK(pl_tokenizer_encode(t, s, len, 1, 0, NULL, 0) == n, "NULL buffer with max_out 0");
    CHECK(pl_tokenizer_encode(t, "", 0, 1, 0, NULL, 0) == 1, "empty text with BOS");
    CHECK(pl_tokenizer_encode(t, "", 0, 0, 0, NULL, 0) == 0, "empty text without BOS");
    CHECK(pl_tokenizer_encode(t, NULL, 3, 0, 0, NULL, 0) < 0, "NULL text accepted");

    /* decode: a short buffer gets a prefix, the length is the full one */
    char small[2] = {'#', '#'};
    int32_t hello = 15043; /* "▁Hello" */
    CHECK(pl_tokenizer_decode(t, -1, hello, small, 1) == 6 && small[0] == ' ' && small[1] == '#',
          "decode into a short buffer");
    CHECK(pl_tokenizer_decode(t, 1, hello, NULL, 0) == 5, "decode after BOS strips the space");
    CHECK(pl_tokenizer_decode(t, 2, hello, NULL, 0) == 6, "decode after EOS keeps the space");
    CHECK(pl_tokenizer_decode(t, -1, 1, small, 2) == 0, "BOS decodes to nothing");
    CHECK(pl_tokenizer_decode(t, -1, 0, NULL, 0) == 0, "<unk> decodes to nothing, as llama.cpp without special");
    CHECK(pl_tokenizer_decode(t, -1, 32000, NULL, 0) == 0 && pl_tokenizer_decode(t, -1, -1, NULL, 0) == 0,
          "out-of-range ids decode to nothing");
    CHECK(pl_tokenizer_piece(t, 32000) == NULL && pl_tokenizer_piece(t, 2) && !strcmp(pl_tokenizer_piece(t, 2), "</s>"),
          "piece");
    free(ids);

    /* special tokens: parsed only when asked; the text after one gets the
     * space prefix again */
    static const char chat[] = "a</s>b";
    int32_t *sp = encode(t, chat, 6, 0, 1, &n);
    CHECK(sp && n == 3 && sp[0] == 263 && sp[1] == 2 && sp[2] == 289, "special parsed: %d ids", n);
    free(sp);
    sp = encode(t, chat, 6, 0, 0, &n);
    int has_eos = 0;
    for (int i = 0; sp && i < n; i++) has_eos |= sp[i] == 2;
    CHECK(sp && !has_eos, "special not parsed yet gives </s>");
    free(sp);
}

/* A 100 KB prompt: must not be quadratic (no timing assertion: it would
 * just take minutes if it were). */
static void test_long(loaded *l) {
    static const char chunk[] = "The quick brown fox, 12345 jumps over   the lazy dog. \xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe "
                                "\xf0\x9f\x98\x81\n\t</s> ";
    size_t cl = sizeof chunk - 1, len = 0, cap = 100 * 1024;
    char *s = malloc(cap);
    while (len + cl <= cap) { memcpy(s + len, chunk, cl); len += cl; }
    size_t spaces = 100 * 1024;
    char *sp = malloc(spaces);
    memset(sp, ' ', spaces);
    int n;
    int32_t *ids = encode(l->t, s, len, 1, 1, &n);
    CHECK(ids && n > (int)(len / 8), "long: %d ids", n);
    free(ids);
    ids = encode(l->t, sp, spaces, 0, 0, &n);
    CHECK(ids && n > 0, "long spaces: %d ids", n);
    size_t dl;
    char *d = ids ? decode_all(l->t, ids, n, &dl) : NULL;
    CHECK(d && dl == spaces + 1, "long spaces: round trip %zu bytes", d ? dl : 0);
    free(d);
    free(ids);
    free(sp);
    free(s);
}

/* ---- 4. hand-built vocabularies ---- */

typedef struct { uint8_t *p; size_t n, cap; } wbuf;
static void put(wbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void w32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void w64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void wstr(wbuf *b, const char *s) { w64(b, strlen(s)); put(b, s, strlen(s)); }

typedef struct vocab_spec {
    const char *model;
    int n;
    const char **pieces;
    const float *scores; /* NULL: no key */
    int n_scores;
    const int32_t *types; /* NULL: no key */
    int n_types;
    int64_t bos; /* -1: no key */
    uint32_t types_type;
} vocab_spec;

static wbuf build(const vocab_spec *v) {
    wbuf b = {0};
    uint64_t nkv = 2 + (v->scores != NULL) + (v->types != NULL) + (v->bos >= 0);
    put(&b, "GGUF", 4);
    w32(&b, 3);
    w64(&b, 0);
    w64(&b, nkv);
    wstr(&b, "tokenizer.ggml.model");
    w32(&b, 8);
    wstr(&b, v->model);
    wstr(&b, "tokenizer.ggml.tokens");
    w32(&b, 9);
    w32(&b, 8);
    w64(&b, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) wstr(&b, v->pieces[i]);
    if (v->scores) {
        wstr(&b, "tokenizer.ggml.scores");
        w32(&b, 9);
        w32(&b, 6);
        w64(&b, (uint64_t)v->n_scores);
        put(&b, v->scores, (size_t)v->n_scores * 4);
    }
    if (v->types) {
        wstr(&b, "tokenizer.ggml.token_type");
        w32(&b, 9);
        w32(&b, v->types_type ? v->types_type : 5);
        w64(&b, (uint64_t)v->n_types);
        put(&b, v->types, (size_t)v->n_types * 4);
    }
    if (v->bos >= 0) {
        wstr(&b, "tokenizer.ggml.bos_token_id");
        w32(&b, 4);
        w32(&b, (uint32_t)v->bos);
    }
    while (b.n % 32) put(&b, "", 1);
    return b;
}

/* Load the hand-built file; returns the status, the tokenizer in *t. */
static int load_spec(const vocab_spec *v, wbuf *b, gguf_file *g, pl_tokenizer **t, char *err, size_t errlen) {
    *b = build(v);
    *t = NULL;
    err[0] = 0;
    int rc = gguf_parse(g, b->p, b->n, err, errlen);
    CHECK(rc == 0, "hand-built gguf rejected by gguf_parse: %s", err);
    if (rc) return 0;
    return pl_tokenizer_load(t, g, err, errlen);
}

static void expect_refused(const vocab_spec *v, const char *want, const char *what) {
    wbuf b;
    gguf_file g;
    pl_tokenizer *t;
    char err[256];
    int rc = load_spec(v, &b, &g, &t, err, sizeof err);
    CHECK(rc < 0 && t == NULL, "%s: accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);
}

static void test_handmade(void) {
    /* 0 <unk>, 1 <s>, 2 </s>, 3 <0x41>, pieces, specials "xyz" (control)
     * and "wx" (user-defined), "<|x|>" control */
    static const char *pieces[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "w", "x", "y", "z",
                                   "xyz", "wx", "ab", "a", "b", ("\xe2\x96\x81" "ab"), "", "<|x|>"};
    static const float scores[] = {0, 0, 0, 0, -1, -2, -2, -2, -2, 0, 0, -3, -4, -4, -1, -9, 0};
    static const int32_t types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 3, 4, 1, 1, 1, 1, 1, 3};
    vocab_spec v = {"llama", 17, pieces, scores, 17, types, 17, -1, 0};
    wbuf b;
    gguf_file g;
    pl_tokenizer *t;
    char err[256];
    int rc = load_spec(&v, &b, &g, &t, err, sizeof err);
    CHECK(rc == 0, "hand-built vocab: %s", err);
    if (!rc) {
        CHECK(pl_tokenizer_n_vocab(t) == 17 && pl_tokenizer_bos(t) == 1 && pl_tokenizer_eos(t) == 2 &&
                  pl_tokenizer_add_bos(t) == 1,
              "hand-built defaults");
        CHECK(!strcmp(pl_tokenizer_piece(t, 15), "[EMPTY_15]"), "empty piece renamed: %s", pl_tokenizer_piece(t, 15));
        int32_t out[16];
        /* "wxyz": the longer special "xyz" is cut out first, so "wx" never
         * matches (llama.cpp's order, not leftmost-longest) */
        int n = pl_tokenizer_encode(t, "wxyz", 4, 0, 1, out, 16);
        CHECK(n == 3 && out[0] == 4 && out[1] == 5 && out[2] == 9, "partition order: n=%d", n);
        /* not parsing special: control "xyz" stays text, user-defined "wx"
         * is still cut out, and the text after it gets a space prefix */
        n = pl_tokenizer_encode(t, "wxyz", 4, 0, 0, out, 16);
        CHECK(n == 4 && out[0] == 10 && out[1] == 4 && out[2] == 7 && out[3] == 8, "user-defined: n=%d", n);
        /* merges by score: ▁ab beats a+b; "A" falls back to <0x41>, "C"
         * has no byte piece and becomes <unk> */
        n = pl_tokenizer_encode(t, "abAC", 4, 1, 0, out, 16);
        CHECK(n == 4 && out[0] == 1 && out[1] == 14 && out[2] == 3 && out[3] == 0, "merges: n=%d", n);
        char s[16];
        CHECK(pl_tokenizer_decode(t, -1, 3, s, 16) == 1 && s[0] == 'A', "byte decode");
        CHECK(pl_tokenizer_decode(t, -1, 10, s, 16) == 2 && !memcmp(s, "wx", 2), "user-defined decode");
        CHECK(pl_tokenizer_decode(t, -1, 16, s, 16) == 0, "control decode");
    }
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);

    vocab_spec bad = v;
    bad.model = "t5";
    expect_refused(&bad, "unsupported tokenizer 't5'", "t5");
    bad.model = "gpt2"; /* SentencePiece pieces are not byte-level text, and there are no merges */
    expect_refused(&bad, "is not byte-level BPE text", "gpt2 with SPM pieces");
    bad = v;
    bad.n_scores = 16;
    expect_refused(&bad, "tokenizer.ggml.scores has 16", "short scores");
    bad = v;
    bad.n_types = 3;
    expect_refused(&bad, "tokenizer.ggml.token_type has 3", "short types");
    bad = v;
    bad.types_type = 4; /* uint32 */
    expect_refused(&bad, "token_type is not an int32 array", "uint32 types");
    bad = v;
    bad.bos = 17;
    expect_refused(&bad, "bos_token_id = 17 is out of range", "bos out of range");
    bad = v;
    bad.n = 0;
    bad.scores = NULL;
    bad.types = NULL;
    expect_refused(&bad, "tokenizer.ggml.tokens is empty", "no tokens");

    /* 0xFFFFFFFF means none; scores and types are optional */
    vocab_spec ok = {"llama", 3, pieces, NULL, 0, NULL, 0, 0xFFFFFFFFll, 0};
    rc = load_spec(&ok, &b, &g, &t, err, sizeof err);
    CHECK(rc == 0, "minimal vocab: %s", err);
    if (!rc) {
        CHECK(pl_tokenizer_bos(t) == -1, "bos none");
        int32_t out[4];
        CHECK(pl_tokenizer_encode(t, "", 0, 1, 1, out, 4) == 0, "no BOS to add");
    }
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);
}

/* ---- 5. byte-level BPE and the other vocabularies ---- */

typedef struct vocab_file {
    const char *file; /* under vocab/ */
    const char *tsv;  /* refs/tok-<tsv>.shared.tsv, or NULL */
    const char *kind, *pre;
    int add_bos;
} vocab_file;

static const vocab_file vocab_files[] = {
    {"ggml-vocab-llama-spm", NULL, "spm", "default", 1},
    {"ggml-vocab-phi-3", NULL, "spm", "default", 1},
    {"vocab-llama3", "llama3", "bpe", "llama-bpe", 1},
    {"vocab-qwen3", "qwen3", "bpe", "qwen2", 0},
    {"ggml-vocab-gpt-2", "gpt-2", "bpe", "gpt-2", 0},
    {"ggml-vocab-deepseek-llm", "deepseek-llm", "bpe", "deepseek-llm", 1},
    {"ggml-vocab-deepseek-coder", NULL, "bpe", "deepseek-coder", 1},
    {"ggml-vocab-starcoder", "starcoder", "bpe", "starcoder", 0},
    {"ggml-vocab-falcon", "falcon", "bpe", "falcon", 0},
};

/* Valid UTF-8 (strict: no overlongs, surrogates or values past U+10FFFF):
 * what a byte-level round trip must give back unchanged. */
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

/* The .inp/.out vectors (no BOS, special not parsed); for BPE also the
 * decode round trip of each. Returns the number that match. */
static int vocab_vectors(const vocab_file *vf, const pl_tokenizer *t, int *n_cases, int *n_rt) {
    char p[256];
    size_t ni = 0, no = 0;
    snprintf(p, sizeof p, "vocab/%s.gguf.inp", vf->file);
    char *inp = t_read_file(t_path(p), &ni);
    snprintf(p, sizeof p, "vocab/%s.gguf.out", vf->file);
    char *outs = t_read_file(t_path(p), &no);
    CHECK(inp && outs, "%s: cannot read the .inp/.out vectors", vf->file);
    *n_cases = *n_rt = 0;
    if (!inp || !outs) { free(inp); free(outs); return 0; }
    vcase cases[64];
    int nc = split_inp(inp, ni, cases, 64);
    CHECK(nc == 46, "%s: expected 46 cases, found %d", vf->file, nc);
    const char *line = outs;
    int32_t want[1024];
    int ok = 0;
    for (int c = 0; c < nc && c < 64; c++) {
        const char *eol = memchr(line, '\n', (size_t)(outs + no - line));
        if (!eol) eol = outs + no;
        int nw = parse_ids(line, eol, want, 1024);
        line = eol < outs + no ? eol + 1 : eol;
        int n;
        int32_t *got = encode(t, cases[c].s, cases[c].len, 0, 0, &n);
        int same = got && ids_equal(got, n, want, nw);
        CHECK(same, "%s case %d ('%.*s') differs", vf->file, c, (int)cases[c].len, cases[c].s);
        if (!same && got) { show_ids("want", want, nw); show_ids("got ", got, n); }
        ok += same;
        if (got && !strcmp(vf->kind, "bpe") && valid_utf8((const uint8_t *)cases[c].s, cases[c].len)) {
            size_t dl;
            char *d = decode_all(t, got, n, &dl);
            int rt = dl == cases[c].len && memcmp(d, cases[c].s, dl) == 0;
            CHECK(rt, "%s case %d: decode gives '%.*s'", vf->file, c, (int)dl, d);
            *n_rt += rt;
            free(d);
        }
        free(got);
    }
    *n_cases = nc;
    free(inp);
    free(outs);
    return ok;
}

/* refs/tok-<v>.shared.tsv: add_special and parse_special, as llama_tokenize
 * with both true (BOS when the vocab adds it). */
static int shared_tsv(const vocab_file *vf, const pl_tokenizer *t, int *n_cases, int *n_rt) {
    char p[256];
    size_t n = 0;
    snprintf(p, sizeof p, "refs/tok-%s.shared.tsv", vf->tsv);
    char *tsv = t_read_file(t_path(p), &n);
    CHECK(tsv != NULL, "cannot read %s", p);
    int cases = 0, ok = 0;
    *n_rt = 0;
    for (char *line = tsv; tsv && line < tsv + n;) {
        char *eol = memchr(line, '\n', (size_t)(tsv + n - line));
        if (!eol) eol = tsv + n;
        char *tab = memchr(line, '\t', (size_t)(eol - line));
        if (line[0] != '#' && tab) {
            char *text = malloc((size_t)(tab - line) / 2 + 1);
            int tl = unhex(line, tab, text);
            int32_t *want = malloc(8192 * sizeof *want);
            int nw = parse_ids(tab + 1, eol, want, 8192);
            int got_n;
            int32_t *got = tl >= 0 ? encode(t, text, (size_t)tl, pl_tokenizer_add_bos(t), 1, &got_n) : NULL;
            int same = got && ids_equal(got, got_n, want, nw);
            CHECK(same, "%s shared case %d ('%.*s') differs", vf->tsv, cases, tl > 60 ? 60 : tl, text);
            if (!same && got) { show_ids("want", want, nw); show_ids("got ", got, got_n); }
            ok += same;
            /* the same ids through encode_spans with no plain range, and
             * with the whole text plain when it has no special token */
            if (got) {
                int32_t *sp = malloc(((size_t)got_n + 1) * sizeof *sp);
                int k = pl_tokenizer_encode_spans(t, text, (size_t)tl, pl_tokenizer_add_bos(t), NULL, 0, sp, got_n);
                CHECK(k == got_n && ids_equal(sp, k, got, got_n), "%s shared case %d: encode_spans differs", vf->tsv,
                      cases);
                free(sp);
            }
            /* decode(encode(x)) == x, BOS and control tokens aside */
            if (got && valid_utf8((const uint8_t *)text, (size_t)tl)) {
                int32_t *plain = encode(t, text, (size_t)tl, 0, 0, &got_n);
                size_t dl;
                char *d = plain ? decode_all(t, plain, got_n, &dl) : NULL;
                int rt = d && dl == (size_t)tl && memcmp(d, text, dl) == 0;
                CHECK(rt, "%s shared case %d: round trip", vf->tsv, cases);
                *n_rt += rt;
                free(d);
                free(plain);
            }
            cases++;
            free(got);
            free(want);
            free(text);
        }
        line = eol + 1;
    }
    CHECK(cases == 20, "%s: %d shared cases, want 20", vf->tsv, cases);
    *n_cases = cases;
    free(tsv);
    return ok;
}

static int id_of(const pl_tokenizer *t, const char *s) { return pl_tokenizer_find(t, s, strlen(s)); }

/* What each vocabulary must say about its end-of-generation tokens. */
static void eog_checks(const vocab_file *vf, const pl_tokenizer *t) {
    CHECK(pl_tokenizer_is_eog(t, pl_tokenizer_eos(t)), "%s: EOS is not end-of-generation", vf->file);
    CHECK(!pl_tokenizer_is_eog(t, -1) && !pl_tokenizer_is_eog(t, pl_tokenizer_n_vocab(t)), "%s: is_eog range",
          vf->file);
    if (!strcmp(vf->file, "vocab-llama3")) {
        CHECK(id_of(t, "<|eot_id|>") == 128009 && pl_tokenizer_is_eog(t, 128009), "llama3: <|eot_id|>");
        CHECK(pl_tokenizer_is_eog(t, 128001) && id_of(t, "<|end_of_text|>") == 128001, "llama3: <|end_of_text|>");
        CHECK(id_of(t, "<|eom_id|>") == -1 && !pl_tokenizer_is_eog(t, 128008), "llama3 (3.0): no <|eom_id|>");
        CHECK(!pl_tokenizer_is_eog(t, 128000) && !pl_tokenizer_is_eog(t, id_of(t, "<|start_header_id|>")),
              "llama3: BOS / header are not eog");
    } else if (!strcmp(vf->file, "vocab-qwen3")) {
        CHECK(pl_tokenizer_is_eog(t, id_of(t, "<|im_end|>")) && pl_tokenizer_is_eog(t, id_of(t, "<|endoftext|>")),
              "qwen3: <|im_end|> / <|endoftext|>");
        CHECK(!pl_tokenizer_is_eog(t, id_of(t, "<|im_start|>")), "qwen3: <|im_start|> is not eog");
    } else if (!strcmp(vf->file, "ggml-vocab-phi-3")) {
        CHECK(pl_tokenizer_is_eog(t, id_of(t, "<|end|>")) && pl_tokenizer_is_eog(t, 32000) &&
                  pl_tokenizer_is_eog(t, id_of(t, "</s>")),
              "phi-3: <|end|> <|endoftext|> </s>");
        CHECK(!pl_tokenizer_is_eog(t, id_of(t, "<|user|>")), "phi-3: <|user|> is not eog");
        /* llama.cpp's phi-3 rule: special pieces eat the whitespace after them */
        int n1, n2;
        int32_t *a = encode(t, "<|user|>\n Hi</s>\n", 16, 0, 1, &n1);
        int32_t *b = encode(t, "<|user|>Hi</s>", 14, 0, 1, &n2);
        CHECK(a && b && ids_equal(a, n1, b, n2) && n1 == 3, "phi-3: rstrip after special pieces");
        /* and a plain range right after one loses its leading whitespace as encode would */
        static const char chat[] = "<|user|>\n Hi <|end|>\n<|assistant|>";
        size_t plain[2] = {8, 13};
        int32_t sp[16];
        int ns = pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, plain, 1, sp, 16);
        free(a);
        a = encode(t, chat, sizeof chat - 1, 0, 1, &n1);
        CHECK(a && ns == n1 && ids_equal(sp, ns, a, n1), "phi-3: rstrip into a plain range");
        free(a);
        free(b);
    } else if (!strcmp(vf->file, "ggml-vocab-deepseek-llm")) {
        int32_t e = id_of(t, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        CHECK(e == pl_tokenizer_eos(t) && pl_tokenizer_is_eog(t, e), "deepseek-llm: <\xef\xbd\x9c" "end of sentence> %d", e);
    } else if (!strcmp(vf->file, "ggml-vocab-llama-spm")) {
        CHECK(pl_tokenizer_is_eog(t, 2) && !pl_tokenizer_is_eog(t, 1) && !pl_tokenizer_is_eog(t, 0), "llama-spm eog");
    }
    CHECK(id_of(t, "") == -1 && pl_tokenizer_find(t, "\xff\xfe\xfd", 3) == -1, "%s: find of absent text", vf->file);
}

static void test_vocabs(void) {
    for (size_t i = 0; i < sizeof vocab_files / sizeof vocab_files[0]; i++) {
        const vocab_file *vf = &vocab_files[i];
        char rel[256];
        snprintf(rel, sizeof rel, "vocab/%s.gguf", vf->file);
        loaded l;
        if (load_file(&l, rel)) { unload(&l); continue; }
        const pl_tokenizer *t = l.t;
        CHECK(!strcmp(pl_tokenizer_kind(t), vf->kind) && !strcmp(pl_tokenizer_pre(t), vf->pre),
              "%s: kind %s pre %s", vf->file, pl_tokenizer_kind(t), pl_tokenizer_pre(t));
        CHECK(pl_tokenizer_add_bos(t) == vf->add_bos, "%s: add_bos %d", vf->file, pl_tokenizer_add_bos(t));
        int nc, nrt, ns = 0, nsrt = 0;
        int ok = vocab_vectors(vf, t, &nc, &nrt);
        int sok = vf->tsv ? shared_tsv(vf, t, &ns, &nsrt) : 0;
        eog_checks(vf, t);
        printf("  %-26s %s %-14s vectors %d/%d, shared %d/%d, round trips %d\n", vf->file, vf->kind, vf->pre, ok, nc,
               sok, ns, nrt + nsrt);
        unload(&l);
    }
}

/* ---- 6. hand-built byte-level BPE vocabularies and hostile variants ---- */

typedef struct bpe_spec {
    int n;
    const char **pieces;
    const int32_t *types; /* NULL: no key */
    int n_merges;
    const char **merges; /* NULL with n_merges < 0: no key */
    int merges_int;      /* merges written as an int32 array */
    const char *pre;     /* NULL: no key */
} bpe_spec;

static wbuf build_bpe(const bpe_spec *v) {
    wbuf b = {0};
    uint64_t nkv = 2 + (v->types != NULL) + (v->n_merges >= 0) + (v->pre != NULL);
    put(&b, "GGUF", 4);
    w32(&b, 3);
    w64(&b, 0);
    w64(&b, nkv);
    wstr(&b, "tokenizer.ggml.model");
    w32(&b, 8);
    wstr(&b, "gpt2");
    wstr(&b, "tokenizer.ggml.tokens");
    w32(&b, 9);
    w32(&b, 8);
    w64(&b, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) wstr(&b, v->pieces[i]);
    if (v->types) {
        wstr(&b, "tokenizer.ggml.token_type");
        w32(&b, 9);
        w32(&b, 5);
        w64(&b, (uint64_t)v->n);
        put(&b, v->types, (size_t)v->n * 4);
    }
    if (v->n_merges >= 0) {
        wstr(&b, "tokenizer.ggml.merges");
        w32(&b, 9);
        w32(&b, v->merges_int ? 5 : 8);
        w64(&b, (uint64_t)v->n_merges);
        for (int i = 0; i < v->n_merges; i++) {
            if (v->merges_int) w32(&b, (uint32_t)i);
            else wstr(&b, v->merges[i]);
        }
    }
    if (v->pre) {
        wstr(&b, "tokenizer.ggml.pre");
        w32(&b, 8);
        wstr(&b, v->pre);
    }
    while (b.n % 32) put(&b, "", 1);
    return b;
}

static int load_bpe(const bpe_spec *v, wbuf *b, gguf_file *g, pl_tokenizer **t, char *err, size_t errlen) {
    *b = build_bpe(v);
    *t = NULL;
    err[0] = 0;
    int rc = gguf_parse(g, b->p, b->n, err, errlen);
    CHECK(rc == 0, "hand-built bpe gguf rejected by gguf_parse: %s", err);
    if (rc) return 0;
    return pl_tokenizer_load(t, g, err, errlen);
}

static void expect_bpe_refused(const bpe_spec *v, const char *want, const char *what) {
    wbuf b;
    gguf_file g;
    pl_tokenizer *t;
    char err[256];
    int rc = load_bpe(v, &b, &g, &t, err, sizeof err);
    CHECK(rc < 0 && t == NULL, "%s: accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);
}

#define G "\xc4\xa0" /* U+0120, GPT-2's code point for ' ' */
#define NL "\xc4\x8a" /* U+010A for '\n' */

static void test_bpe_handmade(void) {
    /* 0 a, 1 b, 2 c, 3 Ġ, 4 ab, 5 abc, 6 Ġa, 7 <|end|> (control), 8 <|im_end|> (written as normal),
     * 9 Ċ, 10 <x> (user-defined), 11 x, 12 ab again (a later id with the same text) */
    static const char *pieces[] = {"a", "b", "c", G, "ab", "abc", G "a", "<|end|>", "<|im_end|>", NL, "<x>", "x",
                                   "ab"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 4, 1, 1};
    static const char *merges[] = {"a b", "ab c", G " a", "a b"};
    bpe_spec v = {13, pieces, types, 4, merges, 0, "gpt-2"};
    wbuf b;
    gguf_file g;
    pl_tokenizer *t;
    char err[256];
    int rc = load_bpe(&v, &b, &g, &t, err, sizeof err);
    CHECK(rc == 0, "hand-built bpe vocab: %s", err);
    if (!rc) {
        CHECK(!strcmp(pl_tokenizer_kind(t), "bpe") && !strcmp(pl_tokenizer_pre(t), "gpt-2"), "bpe kind/pre");
        /* llama.cpp's BPE defaults: BOS = EOS = 11, no BOS added */
        CHECK(pl_tokenizer_bos(t) == 11 && pl_tokenizer_eos(t) == 11 && pl_tokenizer_add_bos(t) == 0, "bpe defaults");
        int32_t out[16];
        /* "abc" -> a b -> ab (rank 0, the later "ab" id), ab c -> abc; " ab": a b first, then Ġ ab has no merge */
        int n = pl_tokenizer_encode(t, "abc ab", 6, 0, 0, out, 16);
        CHECK(n == 3 && out[0] == 5 && out[1] == 3 && out[2] == 12, "bpe merges: n=%d %d %d %d", n, out[0], out[1],
              out[2]);
        n = pl_tokenizer_encode(t, " a", 2, 0, 0, out, 16);
        CHECK(n == 1 && out[0] == 6, "bpe: Ġ a merges: n=%d", n);
        /* a byte with no piece ('d') is dropped, as llama.cpp does */
        n = pl_tokenizer_encode(t, "d\n", 2, 0, 0, out, 16);
        CHECK(n == 1 && out[0] == 9, "bpe: unknown byte dropped: n=%d", n);
        /* <|im_end|> was written as normal text: llama.cpp makes it a control, end-of-generation token */
        CHECK(pl_tokenizer_is_eog(t, 8) && pl_tokenizer_is_eog(t, 7) && pl_tokenizer_is_eog(t, 11) &&
                  !pl_tokenizer_is_eog(t, 5),
              "bpe eog");
        n = pl_tokenizer_encode(t, "a<|im_end|>", 11, 0, 1, out, 16);
        CHECK(n == 2 && out[0] == 0 && out[1] == 8, "bpe: <|im_end|> parsed: n=%d", n);
        n = pl_tokenizer_encode(t, "a<|im_end|>", 11, 0, 0, out, 16);
        int has8 = 0;
        for (int i = 0; i < n && i < 16; i++) has8 |= out[i] == 8;
        CHECK(n >= 1 && out[0] == 0 && !has8, "bpe: <|im_end|> not parsed without parse_special: n=%d", n);
        /* user-defined pieces are cut out even without parse_special and decode as their text */
        n = pl_tokenizer_encode(t, "x<x>x", 5, 0, 0, out, 16);
        CHECK(n == 3 && out[0] == 11 && out[1] == 10 && out[2] == 11, "bpe: user-defined: n=%d", n);
        char s[32];
        CHECK(pl_tokenizer_decode(t, -1, 10, s, 32) == 3 && !memcmp(s, "<x>", 3), "bpe: user-defined decode");
        CHECK(pl_tokenizer_decode(t, -1, 7, s, 32) == 0 && pl_tokenizer_decode(t, -1, 8, s, 32) == 0,
              "bpe: control decodes to nothing");
        CHECK(pl_tokenizer_decode(t, -1, 6, s, 32) == 2 && !memcmp(s, " a", 2), "bpe: Ġa decodes to ' a'");
        CHECK(pl_tokenizer_decode(t, 5, 3, s, 32) == 1 && s[0] == ' ', "bpe: no space stripping after any token");
        CHECK(pl_tokenizer_find(t, "ab", 2) == 12 && pl_tokenizer_find(t, "<x>", 3) == 10, "bpe: find");

        /* encode_spans: a special piece inside a plain range is text */
        static const char chat[] = "<|end|>a<|end|>b<|end|>";
        size_t plain[2] = {8, 16}; /* "<|end|>b" */
        int32_t ref[16];
        int nr = pl_tokenizer_encode(t, chat, sizeof chat - 1, 0, 1, ref, 16);
        CHECK(nr == 5 && ref[0] == 7 && ref[2] == 7 && ref[4] == 7, "bpe: specials parsed: n=%d", nr);
        n = pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, plain, 1, out, 16);
        int specials = 0;
        for (int i = 0; i < n && i < 16; i++) specials += out[i] == 7;
        CHECK(n == 4 && specials == 2 && out[0] == 7 && out[1] == 0 && out[2] == 1 && out[3] == 7,
              "bpe: spans: n=%d, %d specials", n, specials);
        /* a range cutting a special piece in two stops it too */
        size_t cut[2] = {2, 4};
        n = pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, cut, 1, out, 16);
        CHECK(n > 0 && out[0] != 7, "bpe: spans: straddled special still cut out");
        /* ranges with no special text in them change nothing */
        size_t quiet[4] = {7, 8, 15, 16};
        n = pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, quiet, 2, out, 16);
        CHECK(n == nr && ids_equal(out, n, ref, nr), "bpe: spans without specials inside = encode");
        size_t bad1[4] = {8, 16, 10, 12}, bad2[2] = {4, 2}, bad3[2] = {0, 99};
        CHECK(pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, bad1, 2, out, 16) == PL_ERR_ARG &&
                  pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, bad2, 1, out, 16) == PL_ERR_ARG &&
                  pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, bad3, 1, out, 16) == PL_ERR_ARG &&
                  pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, NULL, 1, out, 16) == PL_ERR_ARG &&
                  pl_tokenizer_encode_spans(t, chat, sizeof chat - 1, 0, plain, -1, out, 16) == PL_ERR_ARG,
              "bpe: bad spans refused");
    }
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);

    /* no pre key: "default" */
    bpe_spec ok = v;
    ok.pre = NULL;
    rc = load_bpe(&ok, &b, &g, &t, err, sizeof err);
    CHECK(rc == 0 && !strcmp(pl_tokenizer_pre(t), "default"), "bpe: no pre key: %s", err);
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);
    ok.pre = ""; /* llama.cpp: an empty name is "default" too */
    rc = load_bpe(&ok, &b, &g, &t, err, sizeof err);
    CHECK(rc == 0 && !strcmp(pl_tokenizer_pre(t), "default"), "bpe: empty pre: %s", err);
    pl_tokenizer_free(t);
    gguf_free(&g);
    free(b.p);
    /* every pre-tokenizer of the table loads and splits a hostile string */
    static const char *pres[] = {"default", "llama3", "llama-bpe", "dbrx", "smaug-bpe", "deepseek-llm",
                                 "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "smollm", "gpt-2",
                                 "olmo", "jais", "qwen2", "stablelm2", "poro-chat", "bloom", "viking", "tekken",
                                 "gpt-4o", "chatglm-bpe", "command-r", "mpt", "qwen35", "seed-coder", "bailingmoe",
                                 "deepseek-r1-qwen", "llama4", "falcon-h1"};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        ok.pre = pres[i];
        rc = load_bpe(&ok, &b, &g, &t, err, sizeof err);
        CHECK(rc == 0 && !strcmp(pl_tokenizer_pre(t), pres[i]), "bpe: pre '%s': %s", pres[i], err);
        if (!rc) {
            static const char hostile[] = "ab\xff\xfe \xf0\x9f\x98\x81 \xe2\x80\x83\xe3\x80\x80 123456 x'S 'll\r\n\n"
                                          " \t  <|end|> \xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xf7\xbf\xbf\xbf ";
            int32_t out[256];
            int n = pl_tokenizer_encode(t, hostile, sizeof hostile - 1, 1, 1, out, 256);
            CHECK(n > 0 && n < 256, "bpe: pre '%s' on hostile text: %d", pres[i], n);
        }
        pl_tokenizer_free(t);
        gguf_free(&g);
        free(b.p);
    }

    bpe_spec bad = v;
    bad.pre = "xyz";
    expect_bpe_refused(&bad, "unsupported pre-tokenizer 'xyz'", "unknown pre");
    bad = v;
    bad.n_merges = -1;
    expect_bpe_refused(&bad, "missing tokenizer.ggml.merges", "no merges");
    bad = v;
    bad.merges_int = 1;
    expect_bpe_refused(&bad, "tokenizer.ggml.merges is not a string array", "int merges");
    static const char *m_unknown[] = {"a b", "a zz"};
    bad = v;
    bad.merges = m_unknown;
    bad.n_merges = 2;
    expect_bpe_refused(&bad, "tokenizer.ggml.merges[1] ('a zz') names an unknown token", "merge of an unknown token");
    static const char *m_nospace[] = {"ab"};
    bad.merges = m_nospace;
    bad.n_merges = 1;
    expect_bpe_refused(&bad, "tokenizer.ggml.merges[0] ('ab') is not \"left right\"", "merge without a space");
    static const char *m_lead[] = {" ab"}; /* llama.cpp looks for the space after the first byte */
    bad.merges = m_lead;
    expect_bpe_refused(&bad, "is not \"left right\"", "merge with only a leading space");
    static const char *p_raw[] = {"a", "b", " "}; /* a raw space is not a byte-level code point */
    bad = v;
    bad.n = 3;
    bad.pieces = p_raw;
    bad.types = NULL;
    bad.n_merges = 1;
    expect_bpe_refused(&bad, "token 2 (' ') is not byte-level BPE text", "raw space piece");
    static const char *p_bad8[] = {"a", "b", "\xff"};
    bad.pieces = p_bad8;
    expect_bpe_refused(&bad, "token 2", "invalid UTF-8 piece");
    static const char *p_over[] = {"a", "b", "\xc1\x81"}; /* overlong 'A' */
    bad.pieces = p_over;
    expect_bpe_refused(&bad, "is not byte-level BPE text", "overlong piece");
}

/* Long and pathological inputs through every BPE vocab: they must finish
 * (the regex engine is linear; there is no timing assertion, a quadratic
 * one would just take minutes). */
static void test_bpe_long(void) {
    static const char *files[] = {"vocab-qwen3", "ggml-vocab-deepseek-llm", "ggml-vocab-falcon", "vocab-llama3"};
    size_t len = 200 * 1024;
    char *s = malloc(len);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vocab/%s.gguf", files[f]);
        loaded l;
        if (load_file(&l, rel)) { unload(&l); continue; }
        for (int kind = 0; kind < 5; kind++) {
            for (size_t i = 0; i < len; i++) {
                switch (kind) {
                case 0: s[i] = ' '; break;                                   /* spaces, then one letter */
                case 1: s[i] = (char)('0' + i % 10); break;                  /* digits */
                case 2: s[i] = i % 7 == 6 ? '\n' : ' '; break;               /* spaces and newlines */
                case 3: s[i] = (char)("ab,'S\t"[i % 6]); break;              /* punctuation mix */
                default: s[i] = (char)(0x80 + (i * 7919) % 128); break;      /* continuation bytes */
                }
            }
            if (kind == 0) s[len - 1] = 'x';
            int n;
            int32_t *ids = encode(l.t, s, len, 0, 1, &n);
            CHECK(ids && n > 0, "%s: long input %d gives %d", files[f], kind, n);
            free(ids);
        }
        unload(&l);
    }
    free(s);
}

/* The arch/ models' 512-token byte-level vocabularies (merges trimmed to the kept tokens). */
static void test_arch_vocabs(void) {
    static const struct { const char *file, *pre; int32_t eog; } m[] = {
        {"arch/models/qwen2-F32.gguf", "qwen2", 511},
        {"arch/models/llama-bpe-F32.gguf", "llama-bpe", 511},
        {"arch/models/phi2-F32.gguf", "gpt-2", 511},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        loaded l;
        if (load_file(&l, m[i].file)) { unload(&l); continue; }
        CHECK(!strcmp(pl_tokenizer_kind(l.t), "bpe") && !strcmp(pl_tokenizer_pre(l.t), m[i].pre), "%s: %s/%s",
              m[i].file, pl_tokenizer_kind(l.t), pl_tokenizer_pre(l.t));
        CHECK(pl_tokenizer_is_eog(l.t, m[i].eog), "%s: %d is not eog", m[i].file, m[i].eog);
        int n;
        int32_t *ids = encode(l.t, "Hello world, 123!", 17, 1, 1, &n);
        size_t dl;
        char *d = ids ? decode_all(l.t, ids, n, &dl) : NULL;
        CHECK(d && dl == 17 && !memcmp(d, "Hello world, 123!", 17), "%s: round trip", m[i].file);
        free(d);
        free(ids);
        unload(&l);
    }
}

/* ---- 7. the regex engine against llama.cpp's hand-written splitters ---- */

/* The gpt2 and llama3 regexes run through hand-written splitters in
 * llama.cpp (and here; qwen2's too, here only); every other regex through
 * the engine. Both paths must cut the same words: random strings over an alphabet of the cases
 * that matter (contractions in both cases, \r \n, Unicode spaces, letters,
 * digits, marks, symbols, U+FFFD, C0 and C1 controls). */
static void test_regex_engine(void) {
    static const uint32_t alpha[] = {' ', '\n', '\r', '\t', 'a', 'A', 'z', '1', '\'', 's', 'S', 'l', 'L', 'e', 'r',
                                     'v', 'm', 'd', 't', ',', '.', 0xE9, 0x4E2D, 0x3000, 0xA0, 0x1F600, 0x301, 0x85,
                                     0x2028, 0x0B, 0xFFFD, 0x660, 0x1C, 0xB2, 0x110000};
    const int na = (int)(sizeof alpha / sizeof alpha[0]);
    uint32_t seed = 12345;
    int same[4] = {0, 0, 0, 0}, cases = 20000;
    for (int it = 0; it < cases; it++) {
        uint32_t cps[16];
        int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 14;
        for (int i = 0; i < n; i++) cps[i] = alpha[((seed = seed * 1103515245u + 12345u) >> 16) % (uint32_t)na];
        for (int r = 1; r <= 3; r++) {
            size_t a[32], b[32];
            int x = pl_bpe_split_regex(r, 0, cps, (size_t)n, a, 32), y = pl_bpe_split_regex(r, 1, cps, (size_t)n, b, 32);
            same[r] += x == y && x > 0 && memcmp(a, b, (size_t)x * sizeof *a) == 0;
        }
    }
    CHECK(same[1] == cases && same[2] == cases && same[3] == cases,
          "regex engine vs hand-written: gpt2 %d, llama3 %d, qwen2 %d of %d", same[1], same[2], same[3], cases);
}

int main(void) {
    test_handmade();
    test_bpe_handmade();
    test_regex_engine();
    if (!t_have_data()) {
        printf("test_tokenizer: reference vectors skipped: no reference data at %s (set PICOLM_TESTDATA)\n",
               t_datadir());
        return t_summary("test_tokenizer");
    }
    loaded l;
    if (load_file(&l, "vocab/ggml-vocab-llama-spm.gguf") == 0) {
        CHECK(l.g.n_tensors == 0, "vocab-only file has tensors");
        CHECK(pl_tokenizer_n_vocab(l.t) == 32000, "n_vocab %d", pl_tokenizer_n_vocab(l.t));
        CHECK(pl_tokenizer_bos(l.t) == 1 && pl_tokenizer_eos(l.t) == 2, "bos/eos");
        test_vocab_vectors(&l);
        test_bytes(&l);
        test_long(&l);
    }
    unload(&l);
    test_greedy_prompts();
    test_tiny512();
    test_vocabs();
    test_bpe_long();
    test_arch_vocabs();
    return t_summary("test_tokenizer");
}
