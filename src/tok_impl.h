/* tok_impl.h - the tokenizer's internals shared by the vocabulary and
 * SentencePiece code (tokenizer.c) and the byte-level BPE encoder
 * (tok_bpe.c). Not a public interface. */
#ifndef PICOLM_TOK_IMPL_H
#define PICOLM_TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum { TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3,
       TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

#define NO_TOKEN (-1)
enum { TOK_SPM = 0, TOK_BPE = 1 };

typedef struct tok_entry {
    uint32_t off;  /* piece text at t->text + off, NUL-terminated */
    uint32_t len;  /* bytes, not counting the NUL */
    float score;   /* SPM merge priority: higher merges first */
    uint8_t type;  /* TT_* */
    uint8_t flags; /* TF_* */
    int16_t byte;  /* the byte of a well-formed <0xNN> BYTE token, else -1 */
} tok_entry;

enum {
    TF_EOG = 1,   /* ends generation */
    TF_RSTRIP = 2 /* eats the whitespace after it when cut out (llama.cpp's phi-3 rule) */
};

typedef struct bpe_prog bpe_prog; /* a compiled pre-tokenizer regex (tok_bpe.c) */

#define BPE_MAX_REGEX 8

struct pl_tokenizer {
    int kind;              /* TOK_SPM or TOK_BPE */
    int n_vocab;
    tok_entry *tok;        /* [n_vocab] */
    char *text;            /* every piece, NUL-terminated, back to back */
    int32_t *slots;        /* [hash_mask + 1] open-addressing table of ids, NO_TOKEN = empty */
    uint32_t hash_mask;
    uint32_t max_len;      /* longest piece: longer candidates are not looked up */
    int32_t byte_tok[256]; /* SPM: token for a raw byte (<0xNN>, else the 1-byte piece, else unk) */
    int32_t *special;      /* [n_special] control/user-defined/unknown ids, longest text first */
    int n_special;
    int32_t bos, eos, unk; /* NO_TOKEN when the file says none (0xFFFFFFFF) */
    int add_bos, add_space_prefix;
    char pre[64];          /* tokenizer.ggml.pre, or "default" */

    /* byte-level BPE */
    int pre_id;                    /* row of the pre-tokenizer table */
    int ignore_merges;             /* a word that is a piece is taken whole (llama3, tekken) */
    int n_regex;
    bpe_prog *regex[BPE_MAX_REGEX];
    uint8_t map_utf8[256][2];      /* GPT-2's code point for each byte, as UTF-8 */
    uint8_t map_len[256];
    int32_t map_tok[256];          /* the piece of that one code point, or NO_TOKEN */
    int32_t single_tok[256];       /* the piece that is exactly that one raw byte, or NO_TOKEN */
    int16_t unmap[324];            /* code point -> byte, -1 for none (decoding) */
    int32_t *merge_slot;           /* [merge_mask + 1] open addressing: a rank, or -1 = empty */
    uint64_t *merge_pair;          /* [n_merges]: left id << 32 | right id of the merge of that rank */
    uint32_t merge_mask;
    int n_merges;
};

int32_t pl_tok_lookup(const pl_tokenizer *t, const void *p, size_t n);

/* tok_bpe.c */
/* The pre-tokenizer row for tokenizer.ggml.pre (len bytes), or -1. */
int pl_bpe_pre_find(const char *name, size_t len);
/* Fill t->regex, t->n_regex, ignore_merges and the default add_bos for row id;
 * 0 or PL_ERR_NOMEM. */
int pl_bpe_pre_init(pl_tokenizer *t, int id, int *add_bos_default, char *err, size_t errlen);
void pl_bpe_pre_free(pl_tokenizer *t);
/* Load tokenizer.ggml.merges and the byte tables (after the pieces). */
struct gguf_file;
int pl_bpe_load(pl_tokenizer *t, const struct gguf_file *g, char *err, size_t errlen);
void pl_bpe_free(pl_tokenizer *t);

typedef struct tok_sink {
    int32_t *out;
    int max, n;
} tok_sink;

static inline void tok_emit(tok_sink *s, int32_t id) {
    if (s->n < s->max) s->out[s->n] = id;
    s->n++;
}

/* Encode one raw text fragment (no special tokens in it); 0 or PL_ERR_NOMEM. */
int pl_bpe_encode(const pl_tokenizer *t, const uint8_t *text, size_t len, tok_sink *s);
/* The pre-tokenizer's word lengths in code points of cps[0..n): for tests
 * and benchmarks; returns the count (lens may be NULL) or negative. */
int pl_bpe_split_cps(const pl_tokenizer *t, const uint32_t *cps, size_t n, size_t *lens, size_t cap);
/* The same for one regex alone (which: 1 gpt2, 2 llama3, 3 qwen2), through
 * its hand-written splitter (engine = 0) or the regex engine (1): tests
 * compare the two. */
int pl_bpe_split_regex(int which, int engine, const uint32_t *cps, size_t n, size_t *lens, size_t cap);

#endif
