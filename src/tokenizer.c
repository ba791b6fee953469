/* tokenizer.c - the vocabulary shared by both encoders (pieces, types, the
 * special-token partition, the end-of-generation set) and the
 * SentencePiece encoder (tokenizer.ggml.model "llama"), matching llama.cpp
 * token for token; byte-level BPE ("gpt2") is in tok_bpe.c.
 *
 * SPM encoding: special tokens written in the text are cut out first (longest
 * piece first, as llama.cpp's tokenizer_st_partition does), each remaining
 * text fragment gets a space prefix when it starts the text or follows a
 * special token, spaces become U+2581, and UTF-8 characters are merged pair
 * by pair, best score first, through a binary heap of candidate bigrams.
 * Whatever is not a piece in the end falls back to <0xNN> byte tokens.
 * Pieces are found through a hash table built at load. Bytes are compared
 * as unsigned everywhere. Nothing here prints; encode allocates its scratch
 * per call and frees it before returning. */
#include "tokenizer.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picolm.h"
#include "tok_impl.h"
#include "unicode.h"

#define MAX_VOCAB (1 << 26)  /* far above any real vocabulary; keeps ids and sizes in int range */

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- piece lookup ---- */

static uint32_t hash_bytes(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The token whose piece is exactly p[0..n), or NO_TOKEN. */
int32_t pl_tok_lookup(const pl_tokenizer *t, const void *p, size_t n) {
    if (n > t->max_len) return NO_TOKEN;
    uint32_t i = hash_bytes(p, n) & t->hash_mask;
    for (;; i = (i + 1) & t->hash_mask) {
        int32_t id = t->slots[i];
        if (id == NO_TOKEN) return NO_TOKEN;
        const tok_entry *e = &t->tok[id];
        if (e->len == n && memcmp(t->text + e->off, p, n) == 0) return id;
    }
}
#define lookup pl_tok_lookup

/* Later ids win over earlier ones with the same text, as in llama.cpp's
 * token_to_id map (which is assigned in id order). */
static void insert(pl_tokenizer *t, int32_t id) {
    const tok_entry *e = &t->tok[id];
    const char *p = t->text + e->off;
    uint32_t i = hash_bytes((const uint8_t *)p, e->len) & t->hash_mask;
    for (;; i = (i + 1) & t->hash_mask) {
        int32_t o = t->slots[i];
        if (o == NO_TOKEN || (t->tok[o].len == e->len && memcmp(t->text + t->tok[o].off, p, e->len) == 0)) {
            t->slots[i] = id;
            return;
        }
    }
}

/* ---- loading ---- */

static int hexval(unsigned c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    return -1;
}

/* The byte of a "<0xNN>" piece, or -1. */
static int parse_byte_piece(const char *s, size_t n) {
    const uint8_t *u = (const uint8_t *)s;
    if (n != 6 || u[0] != '<' || u[1] != '0' || u[2] != 'x' || u[5] != '>') return -1;
    int hi = hexval(u[3]), lo = hexval(u[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* A token id key: absent -> def; 0xFFFFFFFF -> NO_TOKEN; else must be < n. */
static int read_id(const gguf_file *g, const char *key, int32_t def, int n, int32_t *out, char *err,
                   size_t errlen) {
    uint32_t v;
    int rc = gguf_get_u32(g, key, &v);
    if (rc == 1) { *out = def < n ? def : NO_TOKEN; return 0; }
    if (rc < 0) return set_err(err, errlen, PL_ERR_FORMAT, "%s is not an unsigned integer", key);
    if (v == 0xFFFFFFFFu) { *out = NO_TOKEN; return 0; }
    if (v >= (uint32_t)n)
        return set_err(err, errlen, PL_ERR_FORMAT, "%s = %u is out of range (vocabulary of %d)", key, v, n);
    *out = (int32_t)v;
    return 0;
}

static int read_flag(const gguf_file *g, const char *key, int def, int *out, char *err, size_t errlen) {
    int rc = gguf_get_bool(g, key, out);
    if (rc == 1) *out = def;
    else if (rc < 0) return set_err(err, errlen, PL_ERR_FORMAT, "%s is not a boolean", key);
    return 0;
}

typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

/* Longest text first; equal lengths by id (llama.cpp's std::sort leaves
 * their order unspecified; it matters only for equal-length overlapping
 * special pieces). */
static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Token texts llama.cpp treats as end-of-turn markers: it forces them to
 * CONTROL type (so they are special tokens even when a converter wrote them
 * as user-defined or normal) and, for the first group, adds them to the
 * end-of-generation set (llama-vocab.cpp, "auto-detect special tokens by
 * text" and special_eog_ids; the FIM pad/repo/file-separator tokens end
 * generation there too). */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>",
    ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), /* DeepSeek's <｜end▁of▁sentence｜> */
    "<|fim_pad|>", "<fim-pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<|file_sep|>"};
static const char *const control_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<PRE>", "<|fim_suffix|>", "<fim-suffix>", "<SUF>", "<|fim_middle|>",
    "<fim-middle>", "<MID>",
    ("<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>"), ("<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>"),
    ("<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>")};

static int has_sub_ci(gguf_str s, const char *sub) {
    size_t m = strlen(sub);
    for (size_t i = 0; i + m <= s.len; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)s.ptr[i + j]) == sub[j]) j++;
        if (j == m) return 1;
    }
    return 0;
}

/* EOS, eot_token_id, eom_token_id and the marker texts above; the type
 * overrides llama.cpp makes; phi-3's rstrip rule. */
static int mark_eog(pl_tokenizer *t, const gguf_file *g, char *err, size_t errlen) {
    int32_t eot, eom;
    int rc;
    if ((rc = read_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, t->n_vocab, &eot, err, errlen))) return rc;
    if ((rc = read_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, t->n_vocab, &eom, err, errlen))) return rc;
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int32_t id = lookup(t, eog_texts[i], strlen(eog_texts[i]));
        if (id == NO_TOKEN) continue;
        t->tok[id].flags |= TF_EOG;
        t->tok[id].type = TT_CONTROL;
    }
    for (size_t i = 0; i < sizeof control_texts / sizeof control_texts[0]; i++) {
        int32_t id = lookup(t, control_texts[i], strlen(control_texts[i]));
        if (id != NO_TOKEN) t->tok[id].type = TT_CONTROL;
    }
    int32_t s = lookup(t, "</s>", 4); /* SentencePiece's EOS text, when it is a special piece */
    if (s != NO_TOKEN && (t->tok[s].type == TT_CONTROL || t->tok[s].type == TT_USER_DEFINED)) t->tok[s].flags |= TF_EOG;
    if (t->eos != NO_TOKEN) t->tok[t->eos].flags |= TF_EOG;
    if (eot != NO_TOKEN) t->tok[eot].flags |= TF_EOG;
    if (eom != NO_TOKEN) t->tok[eom].flags |= TF_EOG;

    /* llama.cpp: in a model whose general.name contains "phi-3" or "phi3"
     * every special piece (and </s>) but <unk>, <s>, <|endoftext|> eats the
     * whitespace after it when cut out of the text */
    gguf_str name;
    if (gguf_get_str(g, "general.name", &name) == 0 && (has_sub_ci(name, "phi-3") || has_sub_ci(name, "phi3"))) {
        for (int i = 0; i < t->n_vocab; i++) {
            uint8_t ty = t->tok[i].type;
            if (ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN) t->tok[i].flags |= TF_RSTRIP;
        }
        if (s != NO_TOKEN) t->tok[s].flags |= TF_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++) {
            int32_t id = lookup(t, keep[i], strlen(keep[i]));
            if (id != NO_TOKEN) t->tok[id].flags &= (uint8_t)~TF_RSTRIP;
        }
    }
    return 0;
}

int pl_tokenizer_load(pl_tokenizer **out, const gguf_file *g, char *err, size_t errlen) {
    pl_tokenizer *t = NULL;
    gguf_str *pieces = NULL;
    int rc;
    if (!out || !g) return set_err(err, errlen, PL_ERR_ARG, "pl_tokenizer_load: NULL argument");
    *out = NULL;

    gguf_str model;
    rc = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (rc == 1) return set_err(err, errlen, PL_ERR_FORMAT, "missing tokenizer.ggml.model");
    if (rc < 0) return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.model is not a string");
    int kind;
    if (gguf_str_eq(model, "llama")) kind = TOK_SPM;
    else if (gguf_str_eq(model, "gpt2")) kind = TOK_BPE;
    else
        return set_err(err, errlen, PL_ERR_UNSUPPORTED, "unsupported tokenizer '%.*s'",
                       (int)(model.len < 64 ? model.len : 64), model.ptr);

    /* the pre-tokenizer: only byte-level BPE has one (llama.cpp ignores the
     * key for SPM); absent means "default" */
    gguf_str pre = {"default", 7};
    rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (rc < 0) return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.pre is not a string");
    if (rc == 1 || pre.len == 0) pre = (gguf_str){"default", 7}; /* llama.cpp: missing or empty */
    int pre_id = -1;
    if (kind == TOK_BPE) {
        pre_id = pl_bpe_pre_find(pre.ptr, (size_t)pre.len);
        if (pre_id < 0)
            return set_err(err, errlen, PL_ERR_UNSUPPORTED, "unsupported pre-tokenizer '%.*s'",
                           (int)(pre.len < 64 ? pre.len : 64), pre.ptr);
    }

    const gguf_kv *kt = gguf_find(g, "tokenizer.ggml.tokens");
    if (!kt) return set_err(err, errlen, PL_ERR_FORMAT, "missing tokenizer.ggml.tokens");
    if (kt->type != GGUF_ARRAY || kt->arr_type != GGUF_STRING)
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.tokens is not a string array");
    if (kt->arr_n == 0) return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.tokens is empty");
    if (kt->arr_n > MAX_VOCAB)
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries (max %d)",
                       (unsigned long long)kt->arr_n, MAX_VOCAB);
    const int n = (int)kt->arr_n;

    const gguf_kv *ks = gguf_find(g, "tokenizer.ggml.scores");
    if (ks && (ks->type != GGUF_ARRAY || ks->arr_type != GGUF_FLOAT32))
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.scores is not a float32 array");
    if (ks && ks->arr_n != kt->arr_n)
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.scores has %llu entries, tokens %d",
                       (unsigned long long)ks->arr_n, n);
    const gguf_kv *ky = gguf_find(g, "tokenizer.ggml.token_type");
    if (ky && (ky->type != GGUF_ARRAY || ky->arr_type != GGUF_INT32))
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.token_type is not an int32 array");
    if (ky && ky->arr_n != kt->arr_n)
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries, tokens %d",
                       (unsigned long long)ky->arr_n, n);

    t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->kind = kind;
    t->n_vocab = n;
    snprintf(t->pre, sizeof t->pre, "%.*s", (int)(pre.len < 63 ? pre.len : 63), pre.ptr);
    if (kind == TOK_SPM) snprintf(t->pre, sizeof t->pre, "default");
    /* llama.cpp's defaults: SPM BOS 1, EOS 2, unk 0, BOS added, space
     * prefix; BPE BOS = EOS = 11, no unk, BOS added only for the
     * pre-tokenizers that say so (llama3, tekken), no space prefix */
    int bpe_bos_default = 0;
    if (kind == TOK_BPE && (rc = pl_bpe_pre_init(t, pre_id, &bpe_bos_default, err, errlen))) goto fail;
    if ((rc = read_id(g, "tokenizer.ggml.bos_token_id", kind == TOK_SPM ? 1 : 11, n, &t->bos, err, errlen))) goto fail;
    if ((rc = read_id(g, "tokenizer.ggml.eos_token_id", kind == TOK_SPM ? 2 : 11, n, &t->eos, err, errlen))) goto fail;
    if ((rc = read_id(g, "tokenizer.ggml.unknown_token_id", kind == TOK_SPM ? 0 : n, n, &t->unk, err, errlen)))
        goto fail;
    if ((rc = read_flag(g, "tokenizer.ggml.add_bos_token", kind == TOK_SPM ? 1 : bpe_bos_default, &t->add_bos, err,
                        errlen)))
        goto fail;
    if ((rc = read_flag(g, "tokenizer.ggml.add_space_prefix", 1, &t->add_space_prefix, err, errlen))) goto fail;
    if (kind == TOK_BPE) t->add_space_prefix = 0; /* llama.cpp's BPE path never adds one */

    pieces = malloc((size_t)n * sizeof *pieces);
    t->tok = calloc((size_t)n, sizeof *t->tok);
    if (!pieces || !t->tok) goto nomem;
    gguf_arr_strings(kt, pieces);

    /* Text arena. An empty piece becomes "[EMPTY_<id>]" as in llama.cpp, so
     * no piece is empty (an empty special piece would match everywhere). */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = pieces[i].len ? (size_t)pieces[i].len : 24;
        if (len > UINT32_MAX - total - 1) {
            rc = set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.tokens is too large");
            goto fail;
        }
        total += len + 1;
    }
    t->text = malloc(total);
    if (!t->text) goto nomem;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        tok_entry *e = &t->tok[i];
        e->off = (uint32_t)off;
        if (pieces[i].len) {
            memcpy(t->text + off, pieces[i].ptr, (size_t)pieces[i].len);
            e->len = (uint32_t)pieces[i].len;
        } else {
            e->len = (uint32_t)snprintf(t->text + off, 24, "[EMPTY_%d]", i);
        }
        t->text[off + e->len] = 0;
        off += e->len + 1;
        if (e->len > t->max_len) t->max_len = e->len;
        e->score = ks ? (float)gguf_arr_num(ks, (uint64_t)i) : 0.0f;
        int32_t ty = ky ? (int32_t)gguf_arr_num(ky, (uint64_t)i) : TT_NORMAL;
        e->type = (uint8_t)(ty >= TT_UNDEFINED && ty <= TT_BYTE ? ty : TT_UNDEFINED);
        /* A malformed BYTE piece is kept and decodes as its text rather than
         * failing the whole model. */
        e->byte = (int16_t)(e->type == TT_BYTE ? parse_byte_piece(t->text + e->off, e->len) : -1);
    }
    free(pieces);
    pieces = NULL;

    /* Hash table at most 3/4 full. */
    uint32_t cap = 16;
    while (cap / 4 * 3 < (uint32_t)n) cap <<= 1;
    t->slots = malloc((size_t)cap * sizeof *t->slots);
    if (!t->slots) goto nomem;
    for (uint32_t i = 0; i < cap; i++) t->slots[i] = NO_TOKEN;
    t->hash_mask = cap - 1;
    for (int i = 0; i < n; i++) insert(t, i);

    /* llama.cpp's byte_to_token for SPM: "<0xNN>" (upper-case hex), else the
     * one-byte piece. llama.cpp throws when neither exists; we use <unk>. */
    for (int b = 0; b < 256; b++) {
        static const char hex[] = "0123456789ABCDEF";
        char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        uint8_t one = (uint8_t)b;
        int32_t id = lookup(t, name, 6);
        if (id == NO_TOKEN) id = lookup(t, &one, 1);
        t->byte_tok[b] = id != NO_TOKEN ? id : t->unk;
    }

    /* before the special list: it may turn pieces into control pieces */
    if ((rc = mark_eog(t, g, err, errlen))) goto fail;
    if (kind == TOK_BPE && (rc = pl_bpe_load(t, g, err, errlen))) goto fail;

    int ns = 0;
    for (int i = 0; i < n; i++) {
        uint8_t ty = t->tok[i].type;
        ns += ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN;
    }
    if (ns) {
        special_key *keys = malloc((size_t)ns * sizeof *keys);
        t->special = malloc((size_t)ns * sizeof *t->special);
        if (!keys || !t->special) {
            free(keys);
            goto nomem;
        }
        for (int i = 0; i < n; i++) {
            uint8_t ty = t->tok[i].type;
            if (ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN)
                keys[t->n_special++] = (special_key){t->tok[i].len, i};
        }
        qsort(keys, (size_t)ns, sizeof *keys, cmp_special);
        for (int i = 0; i < ns; i++) t->special[i] = keys[i].id;
        free(keys);
    }

    *out = t;
    return 0;

nomem:
    rc = set_err(err, errlen, PL_ERR_NOMEM, "out of memory loading the tokenizer");
fail:
    free(pieces);
    pl_tokenizer_free(t);
    return rc;
}

void pl_tokenizer_free(pl_tokenizer *t) {
    if (!t) return;
    pl_bpe_free(t);
    free(t->tok);
    free(t->text);
    free(t->slots);
    free(t->special);
    free(t);
}

int pl_tokenizer_n_vocab(const pl_tokenizer *t) { return t->n_vocab; }
int32_t pl_tokenizer_bos(const pl_tokenizer *t) { return t->bos; }
int32_t pl_tokenizer_eos(const pl_tokenizer *t) { return t->eos; }
int pl_tokenizer_add_bos(const pl_tokenizer *t) { return t->add_bos; }

const char *pl_tokenizer_piece(const pl_tokenizer *t, int32_t token) {
    if (!t || token < 0 || token >= t->n_vocab) return NULL;
    return t->text + t->tok[token].off;
}

/* ---- encoding ---- */

typedef tok_sink sink;
#define emit tok_emit

/* Raw text inside a caller's plain range: never searched for special pieces. */
#define PLAIN_TEXT (-2)

/* A piece of the input: raw text (tok == NO_TOKEN or PLAIN_TEXT) or a special token. */
typedef struct frag {
    int32_t tok;
    size_t off, len;
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, int32_t tok, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        frag *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (frag){tok, off, len};
    return 0;
}

/* First occurrence of needle[0..m) in hay[0..n), or NULL. */
static const uint8_t *find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    if (m == 0 || m > n) return NULL;
    const uint8_t *end = hay + (n - m) + 1;
    for (const uint8_t *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, needle, m) == 0) return p;
    }
    return NULL;
}

/* llama.cpp's tokenizer_st_partition: for each special piece, longest first,
 * cut every occurrence out of every raw fragment left so far. Control and
 * unknown pieces only when parse_special; user-defined pieces always (as
 * llama.cpp does, following HF tokenizers). Swaps *cur and *tmp as it goes. */
static int partition(const pl_tokenizer *t, const uint8_t *text, int parse_special, frag_list *cur,
                     frag_list *tmp) {
    for (int si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        const tok_entry *e = &t->tok[id];
        if (!parse_special && e->type != TT_USER_DEFINED) continue;
        const uint8_t *pc = (const uint8_t *)t->text + e->off;
        size_t m = e->len;
        /* Most pieces occur nowhere: only rebuild the list when one does. */
        size_t first = 0;
        const uint8_t *hit = NULL;
        for (; first < cur->n && !hit; first++) {
            const frag *f = &cur->v[first];
            if (f->tok == NO_TOKEN) hit = find(text + f->off, f->len, pc, m);
        }
        if (!hit) continue;
        first--;
        tmp->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->v[i];
            if (f.tok != NO_TOKEN || i < first) {
                if (frag_push(tmp, f.tok, f.off, f.len)) return -1;
                continue;
            }
            size_t pos = f.off, end = f.off + f.len;
            while (pos < end) {
                const uint8_t *p = find(text + pos, end - pos, pc, m);
                if (!p) {
                    if (frag_push(tmp, NO_TOKEN, pos, end - pos)) return -1;
                    break;
                }
                size_t at = (size_t)(p - text);
                if (at > pos && frag_push(tmp, NO_TOKEN, pos, at - pos)) return -1;
                if (frag_push(tmp, id, at, m)) return -1;
                pos = at + m;
            }
        }
        frag_list sw = *cur;
        *cur = *tmp;
        *tmp = sw;
    }
    return 0;
}

/* A symbol is a run of the fragment's bytes; merged symbols absorb their
 * right neighbour (n of the absorbed one becomes 0). */
typedef struct sym {
    int prev, next;
    uint32_t off, n;
} sym;

typedef struct bigram {
    int left, right;
    float score;
    uint32_t size; /* bytes of left + right when queued: stale if it changed */
} bigram;

typedef struct work {
    uint8_t *buf; /* escaped fragment */
    sym *syms;
    bigram *heap;
    size_t heap_n, heap_cap;
} work;

/* Heap order of llama.cpp's llm_bigram_spm comparator: higher score first,
 * then the leftmost. */
static int before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(work *w, bigram b) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bigram *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return -1;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return 0;
}

static bigram heap_pop(work *w) {
    bigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int try_bigram(const pl_tokenizer *t, work *w, int left, int right) {
    if (left < 0 || right < 0) return 0;
    const sym *l = &w->syms[left], *r = &w->syms[right];
    uint32_t size = l->n + r->n; /* right's bytes follow left's in buf */
    int32_t id = lookup(t, w->buf + l->off, size);
    if (id == NO_TOKEN) return 0;
    return heap_push(w, (bigram){left, right, t->tok[id].score, size});
}

/* Length of the UTF-8 sequence a lead byte announces (llama.cpp's
 * unicode_len_utf8: continuation and invalid bytes count as 1). */
static uint32_t utf8_len(uint8_t c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

/* llm_tokenizer_spm_session::tokenize on w->buf[0..n). */
static int spm(const pl_tokenizer *t, work *w, uint32_t n, sink *s) {
    int ns = 0;
    for (uint32_t off = 0; off < n; ns++) {
        uint32_t len = utf8_len(w->buf[off]);
        if (len > n - off) len = n - off;
        w->syms[ns] = (sym){ns - 1, off + len == n ? -1 : ns + 1, off, len};
        off += len;
    }
    w->heap_n = 0;
    for (int i = 1; i < ns; i++)
        if (try_bigram(t, w, i - 1, i)) return -1;
    while (w->heap_n) {
        bigram b = heap_pop(w);
        sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (try_bigram(t, w, l->prev, b.left) || try_bigram(t, w, b.left, l->next)) return -1;
    }
    /* llama.cpp's resegment: a merged symbol is always a piece (it was looked
     * up when queued), and an unmerged one is a single UTF-8 character that
     * no bigram's text can equal, so its rev_merge lookup never succeeds:
     * what is not a piece goes out as bytes. */
    for (int i = 0; i != -1; i = w->syms[i].next) {
        const sym *y = &w->syms[i];
        int32_t id = lookup(t, w->buf + y->off, y->n);
        if (id != NO_TOKEN) {
            emit(s, id);
            continue;
        }
        for (uint32_t j = 0; j < y->n; j++) {
            int32_t b = t->byte_tok[w->buf[y->off + j]];
            if (b != NO_TOKEN) emit(s, b);
        }
    }
    return 0;
}

/* The fragments of text[0..len): specials cut out where allowed, then every
 * run of adjacent raw fragments joined again (a plain range's edges must not
 * change how the text around them is tokenized). */
static int fragments(const pl_tokenizer *t, const uint8_t *u, size_t len, int parse_special, const size_t *plain,
                     int n_plain, frag_list *cur, frag_list *tmp) {
    size_t pos = 0;
    for (int i = 0; i < n_plain; i++) {
        size_t a = plain[2 * i], b = plain[2 * i + 1];
        if (a > pos && frag_push(cur, NO_TOKEN, pos, a - pos)) return -1;
        if (b > a && frag_push(cur, PLAIN_TEXT, a, b - a)) return -1;
        pos = b;
    }
    if (len > pos && frag_push(cur, NO_TOKEN, pos, len - pos)) return -1;
    if (partition(t, u, parse_special, cur, tmp)) return -1;
    size_t k = 0;
    for (size_t i = 0; i < cur->n; i++) {
        frag f = cur->v[i];
        int raw = f.tok == NO_TOKEN || f.tok == PLAIN_TEXT;
        if (raw && k > 0 && cur->v[k - 1].tok == NO_TOKEN && cur->v[k - 1].off + cur->v[k - 1].len == f.off) {
            cur->v[k - 1].len += f.len;
            continue;
        }
        if (raw) f.tok = NO_TOKEN;
        cur->v[k++] = f;
    }
    cur->n = k;
    /* llama.cpp's RSTRIP (phi-3): the whitespace (isspace, ASCII) after such
     * a piece goes. llama.cpp strips it as it cuts the piece out; doing it
     * once the raw runs are joined again strips a plain range's leading
     * whitespace as encode would, and differs only for special pieces made
     * of whitespace, which no rstrip vocabulary has. */
    k = 0;
    for (size_t i = 0; i < cur->n; i++) {
        frag f = cur->v[i];
        if (f.tok == NO_TOKEN && k > 0 && cur->v[k - 1].tok != NO_TOKEN && (t->tok[cur->v[k - 1].tok].flags & TF_RSTRIP)) {
            while (f.len > 0 && ((u[f.off] >= 9 && u[f.off] <= 13) || u[f.off] == ' ')) f.off++, f.len--;
            if (f.len == 0) continue;
        }
        cur->v[k++] = f;
    }
    cur->n = k;
    return 0;
}

static int encode_impl(const pl_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                       const size_t *plain, int n_plain, int32_t *out, int max_out) {
    if (!t || (!text && len) || max_out < 0 || (max_out > 0 && !out) || n_plain < 0 || (n_plain > 0 && !plain))
        return PL_ERR_ARG;
    /* Escaping triples spaces; symbols are indexed by int. */
    if (len > (size_t)(INT_MAX / 4)) return PL_ERR_ARG;
    for (int i = 0; i < n_plain; i++) /* sorted, non-overlapping, inside the text */
        if (plain[2 * i] > plain[2 * i + 1] || plain[2 * i + 1] > len || (i > 0 && plain[2 * i] < plain[2 * i - 1]))
            return PL_ERR_ARG;
    sink s = {out, max_out, 0};
    if (add_bos && t->bos != NO_TOKEN) emit(&s, t->bos);
    if (len == 0) return s.n; /* llama.cpp: "" gives no fragment at all */

    const uint8_t *u = (const uint8_t *)text;
    frag_list cur = {0}, tmp = {0};
    work w = {0};
    int rc = PL_ERR_NOMEM;
    if (fragments(t, u, len, parse_special, plain, n_plain, &cur, &tmp)) goto done;

    if (t->kind == TOK_BPE) {
        for (size_t i = 0; i < cur.n; i++) {
            const frag *f = &cur.v[i];
            if (f->tok != NO_TOKEN) emit(&s, f->tok);
            else if ((rc = pl_bpe_encode(t, u + f->off, f->len, &s)) < 0) goto done;
        }
        rc = s.n;
        goto done;
    }

    size_t longest = 0;
    for (size_t i = 0; i < cur.n; i++)
        if (cur.v[i].tok == NO_TOKEN && cur.v[i].len > longest) longest = cur.v[i].len;
    size_t cap = 3 * (longest + 1); /* space prefix + every space as 3 bytes */
    w.buf = malloc(cap);
    w.syms = malloc(cap * sizeof *w.syms);
    if (!w.buf || !w.syms) goto done;

    int prev_special = 1; /* the first fragment gets the space prefix too */
    for (size_t i = 0; i < cur.n; i++) {
        const frag *f = &cur.v[i];
        if (f->tok != NO_TOKEN) {
            emit(&s, f->tok);
            prev_special = 1;
            continue;
        }
        uint32_t n = 0;
        if (t->add_space_prefix && prev_special) {
            memcpy(w.buf, "\xE2\x96\x81", 3);
            n = 3;
        }
        for (size_t j = 0; j < f->len; j++) {
            uint8_t c = u[f->off + j];
            if (c == ' ') {
                memcpy(w.buf + n, "\xE2\x96\x81", 3); /* U+2581 LOWER ONE EIGHTH BLOCK */
                n += 3;
            } else {
                w.buf[n++] = c;
            }
        }
        if (spm(t, &w, n, &s)) goto done;
        prev_special = 0;
    }
    rc = s.n;
done:
    free(cur.v);
    free(tmp.v);
    free(w.buf);
    free(w.syms);
    free(w.heap);
    return rc;
}

int pl_tokenizer_encode(const pl_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                        int32_t *out, int max_out) {
    return encode_impl(t, text, len, add_bos, parse_special, NULL, 0, out, max_out);
}

int pl_tokenizer_encode_spans(const pl_tokenizer *t, const char *text, size_t len, int add_bos, const size_t *plain,
                              int n_plain, int32_t *out, int max_out) {
    return encode_impl(t, text, len, add_bos, 1, plain, n_plain, out, max_out);
}

/* ---- queries ---- */

int pl_tokenizer_is_eog(const pl_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && (t->tok[id].flags & TF_EOG) != 0;
}

int32_t pl_tokenizer_find(const pl_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return NO_TOKEN;
    return lookup(t, text, len);
}

const char *pl_tokenizer_kind(const pl_tokenizer *t) { return t && t->kind == TOK_BPE ? "bpe" : "spm"; }
const char *pl_tokenizer_pre(const pl_tokenizer *t) { return t ? t->pre : "default"; }

/* ---- decoding ---- */

typedef struct writer {
    char *buf;
    size_t cap, n;
    int strip; /* drop one leading space */
} writer;

static void put(writer *wr, char c) {
    if (wr->strip) {
        wr->strip = 0;
        if (c == ' ') return;
    }
    if (wr->n < wr->cap) wr->buf[wr->n] = c;
    wr->n++;
}

int pl_tokenizer_decode(const pl_tokenizer *t, int32_t prev, int32_t token, char *buf, size_t cap) {
    if (!t || token < 0 || token >= t->n_vocab) return 0;
    if (!buf) cap = 0;
    const tok_entry *e = &t->tok[token];
    const uint8_t *p = (const uint8_t *)t->text + e->off;
    /* llama.cpp's detokenize drops the space the encoder added in front of
     * the first piece; we do it for the piece right after BOS. */
    writer wr = {buf, cap, 0, t->add_space_prefix && t->bos != NO_TOKEN && prev == t->bos};
    if (t->kind == TOK_BPE) {
        /* llama.cpp's token_to_piece for BPE: normal pieces through the
         * inverse byte mapping (checked at load), user-defined ones as
         * their text, the rest nothing */
        if (e->type == TT_NORMAL) {
            for (size_t i = 0; i < e->len;) {
                uint32_t cp = pl_utf8_next(p, e->len, &i);
                if (cp < 324 && t->unmap[cp] >= 0) put(&wr, (char)(uint8_t)t->unmap[cp]);
            }
        } else if (e->type == TT_USER_DEFINED) {
            for (uint32_t i = 0; i < e->len; i++) put(&wr, (char)p[i]);
        }
        return wr.n > INT_MAX ? INT_MAX : (int)wr.n;
    }
    switch (e->type) {
    case TT_NORMAL:
        for (uint32_t i = 0; i < e->len; i++) {
            if (i + 2 < e->len && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
                put(&wr, ' ');
                i += 2;
            } else {
                put(&wr, (char)p[i]);
            }
        }
        break;
    case TT_BYTE:
    case TT_USER_DEFINED:
        if (e->byte >= 0) {
            put(&wr, (char)(uint8_t)e->byte);
            break;
        }
        /* user-defined and malformed byte pieces show as their text */
        for (uint32_t i = 0; i < e->len; i++) put(&wr, (char)p[i]);
        break;
    default: /* control, unknown, unused, undefined: nothing, as llama.cpp without special */
        break;
    }
    return wr.n > INT_MAX ? INT_MAX : (int)wr.n;
}
