/* tok_bpe.c - byte-level BPE (tokenizer.ggml.model "gpt2") as llama.cpp
 * does it: the text is cut into words by the pre-tokenizer regexes that
 * tokenizer.ggml.pre names, each word's bytes become GPT-2's byte-level code
 * points, and tokenizer.ggml.merges are applied lowest rank first.
 *
 * Pre-tokenizers follow llama.cpp's unicode_regex_split exactly. The gpt2
 * and llama3 regexes run as hand-written splitters (the code paths llama.cpp
 * takes for them; qwen2's too, here only, tested equal to the engine). Every
 * other regex goes through a small backtracking regex engine with
 * ECMAScript (std::regex) semantics over llama.cpp's "collapsed" text, where
 * a code point above U+007F stands for its category (\p{L} letter, \p{N}
 * number...) or, when it is White_Space, for \v; regexes without \p{..}
 * run over the code points. A memo of the (branch, position) states that
 * failed keeps every regex linear in the segment length. Merges live in a
 * hash table keyed by the ids of their two pieces. Nothing here prints. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "picolm.h"
#include "tok_impl.h"
#include "unicode.h"

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- the pre-tokenizers (llama.cpp's llm_tokenizer_bpe regex_exprs) ---- */

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3                                                                                                    \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "         \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2                                                                                                     \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "              \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN35                                                                                                    \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "  \
    "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_SEED_CODER                                                                                                \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| "        \
    "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_BAILING                                                                                                   \
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                          \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RX_PORO " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"
#define RX_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+" /* [一-龥ࠀ-一가-퟿]+ */

/* deepseek-llm's cased-letter class (UTF-8; the Greek Extended, Ohm and Kelvin
 * code points are the ones its tokenizer.json has, not their NFC forms) */
#define RX_DS_LETTERS \
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7" \
    "\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86" \
    "\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf" \
    "\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1" \
    "\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7" \
    "\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd" \
    "\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1" \
    "\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-" \
    "\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf" \
    "\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2" \
    "\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8" \
    "\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85" \
    "\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2" \
    "\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-" \
    "\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad" \
    "\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef" \
    "\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90" \
    "\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0" \
    "\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
/* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
#define RX_DS_PUNCT                                                                                                  \
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80" \
    "\x82]+"

#define RX_TEKKEN                                                                                                    \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))" \
    "+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_GPT4O                                                                                                     \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL]" \
    "[lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV]"   \
    "[eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_DEEPSEEK3                                                                                                 \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "             \
    "?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct pre_row {
    const char *names;                  /* NUL-separated, ends with an empty name */
    const char *regex[BPE_MAX_REGEX];   /* NULL-terminated */
    int ignore_merges, add_bos;
} pre_row;

/* One row per regex set; llama.cpp's names for each (src/llama-vocab.cpp,
 * LLAMA_VOCAB_PRE_TYPE_*). add_bos is the default when the file has no
 * tokenizer.ggml.add_bos_token. */
static const pre_row pre_rows[] = {
    {"default\0", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RX_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0, 0},
    {"llama3\0llama-v3\0llama-bpe\0falcon3\0falcon-h1\0pixtral\0midm-2.0\0lfm2\0", {RX_LLAMA3}, 1, 1},
    {"dbrx\0smaug-bpe\0chatglm-bpe\0glm4\0", {RX_LLAMA3}, 0, 0},
    {"deepseek-llm\0", {"[\r\n]", RX_DS_LETTERS, RX_DS_PUNCT, "\\s+$", RX_CJK, "\\p{N}+"}, 0, 0},
    {"deepseek-coder\0", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RX_CJK, "\\p{N}"}, 0, 0},
    {"deepseek-v3\0hunyuan-dense\0joyai-llm\0", {"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
                       RX_DEEPSEEK3}, 0, 0},
    {"falcon\0", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]"}, 0, 0},
    {"starcoder\0refact\0command-r\0smollm\0codeshell\0exaone\0minerva-7b\0mellum2\0", {"\\p{N}", RX_GPT2}, 0, 0},
    {"gpt-2\0phi-2\0jina-es\0jina-de\0gigachat\0jina-v1-en\0jina-v2-es\0jina-v2-de\0jina-v2-code\0roberta-bpe\0"
     "mpt\0olmo\0jais\0exaone4\0trillion\0a.x-4.0\0mellum\0granite-docling\0",
     {RX_GPT2}, 0, 0},
    {"qwen2\0stablelm2\0megrez\0hunyuan\0deepseek-r1-qwen\0kormo\0f2llmv2\0solar-open\0grok-2\0", {RX_QWEN2}, 0, 0},
    {"qwen35\0", {RX_QWEN35}, 0, 0},
    {"seed-coder\0", {RX_SEED_CODER}, 0, 0},
    {"bailingmoe\0bailingmoe2\0llada-moe\0", {RX_BAILING}, 0, 0},
    {"poro-chat\0bloom\0gpt3-finnish\0", {RX_PORO}, 0, 0},
    {"viking\0", {RX_PORO, "\\p{N}"}, 0, 0},
    {"tekken\0", {RX_TEKKEN}, 1, 1},
    {"gpt-4o\0llama4\0kanana2\0minimax-m2\0", {RX_GPT4O}, 0, 0},
};
#define N_PRE ((int)(sizeof pre_rows / sizeof pre_rows[0]))

int pl_bpe_pre_find(const char *name, size_t len) {
    for (int r = 0; r < N_PRE; r++)
        for (const char *s = pre_rows[r].names; *s; s += strlen(s) + 1)
            if (strlen(s) == len && memcmp(s, name, len) == 0) return r;
    return -1;
}

/* ---- a small backtracking regex engine (the std::regex subset llama.cpp's
 * regexes use: | () (?:) (?=) (?!) [] [^] \s \S \d \w \r \n, escapes,
 * ? * + {n,m} and their lazy forms, ^ $ .) ---- */

typedef struct rx_range {
    uint32_t lo, hi;
} rx_range;

typedef struct rx_class {
    int neg, s, S, d, D, w, W; /* escapes inside the class */
    int first, n;              /* ranges [first, first + n) of the program's range pool */
} rx_class;

enum { I_CHAR, I_CLASS, I_ANY, I_SPLIT, I_JMP, I_MATCH, I_BOL, I_EOL, I_LOOK };

typedef struct rx_inst {
    uint8_t op, neg;
    int32_t x, y; /* SPLIT: prefer x, then y; JMP: x; LOOK: sub-program at pc+1, continue at x */
    uint32_t c;   /* CHAR: the symbol; CLASS: the class index */
    int32_t memo; /* SPLIT in the main program: its memo row, else -1 */
} rx_inst;

/* AST */
enum { N_CHAR, N_CLASS, N_ANY, N_BOL, N_EOL, N_CAT, N_ALT, N_REP, N_LOOK, N_EMPTY };
typedef struct rx_node {
    int type;
    uint32_t c;
    int a, b;          /* CAT/ALT: children a, b; REP/LOOK: child a */
    int min, max, greedy, neg;
} rx_node;

struct bpe_prog {
    int collapsed; /* symbols are llama.cpp's collapsed bytes, else code points */
    int custom;    /* 1 gpt2, 2 llama3, 3 qwen2: a hand-written splitter, no program */
    rx_inst *code;
    int n_code, cap_code;
    rx_class *cls;
    int n_cls, cap_cls;
    rx_range *rng;
    int n_rng, cap_rng;
    int n_memo;
};

typedef struct rx_parser {
    const uint32_t *p; /* pattern symbols */
    size_t n, i;
    rx_node *nodes;
    int n_nodes, cap_nodes;
    bpe_prog *prog;
    int bad;
} rx_parser;

static int grow(void **v, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *nv = realloc(*v, (size_t)c * elem);
    if (!nv) return -1;
    *v = nv;
    *cap = c;
    return 0;
}

static int node(rx_parser *ps, rx_node nd) {
    if (grow((void **)&ps->nodes, &ps->cap_nodes, ps->n_nodes + 1, sizeof nd)) { ps->bad = 1; return 0; }
    ps->nodes[ps->n_nodes] = nd;
    return ps->n_nodes++;
}

static int peek(rx_parser *ps) { return ps->i < ps->n ? (int)ps->p[ps->i] : -1; }

static int add_range(rx_parser *ps, uint32_t lo, uint32_t hi) {
    bpe_prog *g = ps->prog;
    if (grow((void **)&g->rng, &g->cap_rng, g->n_rng + 1, sizeof *g->rng)) { ps->bad = 1; return -1; }
    g->rng[g->n_rng++] = (rx_range){lo, hi};
    return 0;
}

static int cmp_range(const void *a, const void *b) {
    const rx_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Sort a class's ranges and merge the overlapping ones (membership is a
 * union, so order does not matter): a binary search then finds a code
 * point among deepseek's ~150 letter ranges. Returns the new count. */
static int sort_ranges(rx_range *r, int n) {
    if (n < 2) return n;
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    int k = 0;
    for (int i = 1; i < n; i++) {
        if (r[i].lo <= r[k].hi + 1) {
            if (r[i].hi > r[k].hi) r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

static uint32_t esc_char(uint32_t c) {
    switch (c) {
    case 'r': return '\r';
    case 'n': return '\n';
    case 't': return '\t';
    case 'v': return '\v';
    case 'f': return '\f';
    case '0': return 0;
    default: return c; /* identity escape */
    }
}

static int parse_alt(rx_parser *ps);

static int parse_class(rx_parser *ps) {
    bpe_prog *g = ps->prog;
    rx_class k;
    memset(&k, 0, sizeof k);
    k.first = g->n_rng;
    if (peek(ps) == '^') { k.neg = 1; ps->i++; }
    while (ps->i < ps->n && peek(ps) != ']') {
        uint32_t c = ps->p[ps->i++];
        if (c == '\\' && ps->i < ps->n) {
            uint32_t e = ps->p[ps->i++];
            switch (e) {
            case 's': k.s = 1; continue;
            case 'S': k.S = 1; continue;
            case 'd': k.d = 1; continue;
            case 'D': k.D = 1; continue;
            case 'w': k.w = 1; continue;
            case 'W': k.W = 1; continue;
            default: c = esc_char(e);
            }
        }
        uint32_t hi = c;
        if (peek(ps) == '-' && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
            ps->i++;
            hi = ps->p[ps->i++];
            if (hi == '\\' && ps->i < ps->n) hi = esc_char(ps->p[ps->i++]);
            if (hi < c) { ps->bad = 1; return 0; }
        }
        add_range(ps, c, hi);
    }
    if (peek(ps) != ']') { ps->bad = 1; return 0; }
    ps->i++;
    k.n = sort_ranges(g->rng + k.first, g->n_rng - k.first);
    g->n_rng = k.first + k.n;
    if (grow((void **)&g->cls, &g->cap_cls, g->n_cls + 1, sizeof k)) { ps->bad = 1; return 0; }
    g->cls[g->n_cls] = k;
    return node(ps, (rx_node){N_CLASS, (uint32_t)g->n_cls++, 0, 0, 0, 0, 0, 0});
}

static int escape_class(rx_parser *ps, uint32_t e) {
    /* \s \S \d \D \w \W outside brackets: a one-escape class */
    bpe_prog *g = ps->prog;
    rx_class k;
    memset(&k, 0, sizeof k);
    k.first = g->n_rng;
    k.s = e == 's'; k.S = e == 'S'; k.d = e == 'd'; k.D = e == 'D'; k.w = e == 'w'; k.W = e == 'W';
    if (grow((void **)&g->cls, &g->cap_cls, g->n_cls + 1, sizeof k)) { ps->bad = 1; return 0; }
    g->cls[g->n_cls] = k;
    return node(ps, (rx_node){N_CLASS, (uint32_t)g->n_cls++, 0, 0, 0, 0, 0, 0});
}

static int parse_atom(rx_parser *ps) {
    uint32_t c = ps->p[ps->i++];
    switch (c) {
    case '(': {
        int look = 0, neg = 0;
        if (peek(ps) == '?') {
            ps->i++;
            int k = peek(ps);
            ps->i++;
            if (k == '=') look = 1;
            else if (k == '!') look = 1, neg = 1;
            else if (k != ':') { ps->bad = 1; return 0; }
        }
        int a = parse_alt(ps);
        if (peek(ps) != ')') { ps->bad = 1; return 0; }
        ps->i++;
        if (look) return node(ps, (rx_node){N_LOOK, 0, a, 0, 0, 0, 0, neg});
        return a;
    }
    case '[': return parse_class(ps);
    case '.': return node(ps, (rx_node){N_ANY, 0, 0, 0, 0, 0, 0, 0});
    case '^': return node(ps, (rx_node){N_BOL, 0, 0, 0, 0, 0, 0, 0});
    case '$': return node(ps, (rx_node){N_EOL, 0, 0, 0, 0, 0, 0, 0});
    case '\\': {
        if (ps->i >= ps->n) { ps->bad = 1; return 0; }
        uint32_t e = ps->p[ps->i++];
        if (e == 's' || e == 'S' || e == 'd' || e == 'D' || e == 'w' || e == 'W') return escape_class(ps, e);
        return node(ps, (rx_node){N_CHAR, esc_char(e), 0, 0, 0, 0, 0, 0});
    }
    default: return node(ps, (rx_node){N_CHAR, c, 0, 0, 0, 0, 0, 0});
    }
}

static int parse_number(rx_parser *ps, int *v) {
    int n = 0, any = 0;
    while (peek(ps) >= '0' && peek(ps) <= '9' && n < 100000) { n = n * 10 + (peek(ps) - '0'); ps->i++; any = 1; }
    *v = n;
    return any;
}

static int parse_repeat(rx_parser *ps) {
    int a = parse_atom(ps);
    for (;;) {
        int k = peek(ps), mn, mx;
        if (k == '?') mn = 0, mx = 1;
        else if (k == '*') mn = 0, mx = -1;
        else if (k == '+') mn = 1, mx = -1;
        else if (k == '{') {
            size_t save = ps->i++;
            if (!parse_number(ps, &mn)) { ps->i = save; return a; }
            mx = mn;
            if (peek(ps) == ',') {
                ps->i++;
                if (!parse_number(ps, &mx)) mx = -1;
            }
            if (peek(ps) != '}' || (mx >= 0 && mx < mn) || mn > 1000 || mx > 1000) { ps->bad = 1; return a; }
        } else {
            return a;
        }
        ps->i++;
        int greedy = 1;
        if (peek(ps) == '?') { greedy = 0; ps->i++; }
        a = node(ps, (rx_node){N_REP, 0, a, 0, mn, mx, greedy, 0});
    }
}

static int parse_cat(rx_parser *ps) {
    int a = -1;
    while (ps->i < ps->n && peek(ps) != '|' && peek(ps) != ')' && !ps->bad) {
        int b = parse_repeat(ps);
        a = a < 0 ? b : node(ps, (rx_node){N_CAT, 0, a, b, 0, 0, 0, 0});
    }
    return a < 0 ? node(ps, (rx_node){N_EMPTY, 0, 0, 0, 0, 0, 0, 0}) : a;
}

static int parse_alt(rx_parser *ps) {
    int a = parse_cat(ps);
    while (peek(ps) == '|' && !ps->bad) {
        ps->i++;
        int b = parse_cat(ps);
        a = node(ps, (rx_node){N_ALT, 0, a, b, 0, 0, 0, 0});
    }
    return a;
}

static int emit(bpe_prog *g, rx_inst in) {
    if (grow((void **)&g->code, &g->cap_code, g->n_code + 1, sizeof in)) return -1;
    g->code[g->n_code] = in;
    return g->n_code++;
}

/* Code for node k; in_look: inside a lookahead (its SPLITs get no memo). */
static int gen(bpe_prog *g, const rx_node *nd, int k, int in_look) {
    const rx_node *n = &nd[k];
    int pc;
    switch (n->type) {
    case N_EMPTY: return 0;
    case N_CHAR: return emit(g, (rx_inst){I_CHAR, 0, 0, 0, n->c, -1}) < 0 ? -1 : 0;
    case N_CLASS: return emit(g, (rx_inst){I_CLASS, 0, 0, 0, n->c, -1}) < 0 ? -1 : 0;
    case N_ANY: return emit(g, (rx_inst){I_ANY, 0, 0, 0, 0, -1}) < 0 ? -1 : 0;
    case N_BOL: return emit(g, (rx_inst){I_BOL, 0, 0, 0, 0, -1}) < 0 ? -1 : 0;
    case N_EOL: return emit(g, (rx_inst){I_EOL, 0, 0, 0, 0, -1}) < 0 ? -1 : 0;
    case N_CAT: return gen(g, nd, n->a, in_look) || gen(g, nd, n->b, in_look) ? -1 : 0;
    case N_ALT: {
        int sp = emit(g, (rx_inst){I_SPLIT, 0, 0, 0, 0, in_look ? -1 : g->n_memo++});
        if (sp < 0) return -1;
        g->code[sp].x = g->n_code;
        if (gen(g, nd, n->a, in_look)) return -1;
        int j = emit(g, (rx_inst){I_JMP, 0, 0, 0, 0, -1});
        if (j < 0) return -1;
        g->code[sp].y = g->n_code;
        if (gen(g, nd, n->b, in_look)) return -1;
        g->code[j].x = g->n_code;
        return 0;
    }
    case N_LOOK: {
        pc = emit(g, (rx_inst){I_LOOK, (uint8_t)n->neg, 0, 0, 0, -1});
        if (pc < 0 || gen(g, nd, n->a, 1) || emit(g, (rx_inst){I_MATCH, 0, 0, 0, 0, -1}) < 0) return -1;
        g->code[pc].x = g->n_code;
        return 0;
    }
    case N_REP: {
        for (int i = 0; i < n->min; i++)
            if (gen(g, nd, n->a, in_look)) return -1;
        if (n->max < 0) { /* L: SPLIT body, out; body; JMP L */
            int L = emit(g, (rx_inst){I_SPLIT, 0, 0, 0, 0, in_look ? -1 : g->n_memo++});
            if (L < 0 || gen(g, nd, n->a, in_look) || emit(g, (rx_inst){I_JMP, 0, L, 0, 0, -1}) < 0) return -1;
            g->code[L].x = n->greedy ? L + 1 : g->n_code;
            g->code[L].y = n->greedy ? g->n_code : L + 1;
            return 0;
        }
        /* up to max - min optional copies, nested: (a(a)?)? */
        int opt = n->max - n->min, splits[1000];
        for (int i = 0; i < opt; i++) {
            splits[i] = emit(g, (rx_inst){I_SPLIT, 0, 0, 0, 0, in_look ? -1 : g->n_memo++});
            if (splits[i] < 0 || gen(g, nd, n->a, in_look)) return -1;
        }
        for (int i = 0; i < opt; i++) {
            rx_inst *s = &g->code[splits[i]];
            s->x = n->greedy ? splits[i] + 1 : g->n_code;
            s->y = n->greedy ? g->n_code : splits[i] + 1;
        }
        return 0;
    }
    }
    return -1;
}

/* llama.cpp's k_ucat_map: the ASCII members of each category, as regex text */
static const char *ucat_ascii(int cat) {
    switch (cat) {
    case PL_UC_NUMBER: return "0-9";
    case PL_UC_LETTER: return "A-Za-z";
    case PL_UC_PUNCT: return "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
    case PL_UC_MARK: return "";
    case PL_UC_SYMBOL: return "\\$\\+<-\\>\\^`\\|";
    default: return "";
    }
}

/* The collapsed byte a category stands for (llama.cpp's k_ucat_cpt). */
static uint32_t ucat_byte(int cat) {
    switch (cat) {
    case PL_UC_NUMBER: return 0xD1;
    case PL_UC_LETTER: return 0xD2;
    case PL_UC_PUNCT: return 0xD3;
    case PL_UC_MARK: return 0xD4;
    case PL_UC_SYMBOL: return 0xD5;
    default: return 0xD0;
    }
}

static int ucat_of_name(const char *p, size_t n) {
    static const struct { const char *s; int cat; } names[] = {
        {"\\p{N}", PL_UC_NUMBER}, {"\\p{L}", PL_UC_LETTER}, {"\\p{P}", PL_UC_PUNCT}, {"\\p{M}", PL_UC_MARK},
        {"\\p{S}", PL_UC_SYMBOL}, {"\\p{Lu}", PL_UC_LETTER}, {"\\p{Ll}", PL_UC_LETTER}, {"\\p{Lt}", PL_UC_LETTER},
        {"\\p{Lm}", PL_UC_LETTER}, {"\\p{Lo}", PL_UC_LETTER}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].s) == n && memcmp(names[i].s, p, n) == 0) return names[i].cat;
    return -1;
}

static void prog_free(bpe_prog *g) {
    if (!g) return;
    free(g->code);
    free(g->cls);
    free(g->rng);
    free(g);
}

/* Compile one of the table's regexes; NULL when out of memory (or, a bug,
 * when the table holds a regex this parser does not take). custom: the
 * gpt2 and llama3 regexes become their hand-written splitters, as in
 * llama.cpp (0: through the engine, for tests). */
static bpe_prog *prog_compile(const char *re, int custom) {
    bpe_prog *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    if (custom && !strcmp(re, RX_GPT2)) { g->custom = 1; return g; }
    if (custom && !strcmp(re, RX_LLAMA3)) { g->custom = 2; return g; }
    /* not in llama.cpp, which runs qwen2's regex through std::regex: the
     * llama3 splitter with one digit a word cuts the same words (tested
     * against the engine) four times faster */
    if (custom && !strcmp(re, RX_QWEN2)) { g->custom = 3; return g; }
    size_t len = strlen(re);
    int collapsed = strstr(re, "\\p{") != NULL;
    g->collapsed = collapsed;
    /* symbols of the pattern: bytes with each \p{X} replaced as llama.cpp
     * does it (the category byte plus the ASCII members, bracketed when
     * outside a class), or code points */
    uint32_t *sy = malloc((len * 8 + 16) * sizeof *sy);
    rx_parser ps;
    memset(&ps, 0, sizeof ps);
    if (!sy) goto fail;
    size_t n = 0;
    if (collapsed) {
        int inside = 0;
        for (size_t i = 0; i < len; i++) {
            if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) { sy[n++] = '['; inside = 1; continue; }
            if (inside && re[i] == ']' && re[i - 1] != '\\') { sy[n++] = ']'; inside = 0; continue; }
            if (re[i] == '\\' && i + 3 < len && re[i + 1] == 'p' && re[i + 2] == '{') {
                const char *close = strchr(re + i + 3, '}');
                int cat = close ? ucat_of_name(re + i, (size_t)(close - (re + i)) + 1) : -1;
                if (cat >= 0) {
                    if (!inside) sy[n++] = '[';
                    sy[n++] = ucat_byte(cat);
                    for (const char *a = ucat_ascii(cat); *a; a++) sy[n++] = (uint8_t)*a;
                    if (!inside) sy[n++] = ']';
                    i = (size_t)(close - re);
                    continue;
                }
            }
            sy[n++] = (uint8_t)re[i];
        }
    } else {
        for (size_t i = 0; i < len;) sy[n++] = pl_utf8_next((const uint8_t *)re, len, &i);
    }
    ps.p = sy;
    ps.n = n;
    ps.prog = g;
    int root = parse_alt(&ps);
    if (ps.bad || ps.i != ps.n) goto fail;
    if (gen(g, ps.nodes, root, 0) || emit(g, (rx_inst){I_MATCH, 0, 0, 0, 0, -1}) < 0) goto fail;
    free(ps.nodes);
    free(sy);
    return g;
fail:
    free(ps.nodes);
    free(sy);
    prog_free(g);
    return NULL;
}

static int sym_space(uint32_t c) { return (c >= 9 && c <= 13) || c == 32; }
static int sym_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int sym_word(uint32_t c) {
    return sym_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int class_has(const bpe_prog *g, const rx_class *k, uint32_t c) {
    int in = (k->s && sym_space(c)) || (k->S && !sym_space(c)) || (k->d && sym_digit(c)) || (k->D && !sym_digit(c)) ||
             (k->w && sym_word(c)) || (k->W && !sym_word(c));
    if (!in && k->n) { /* ranges sorted and disjoint: the last one starting at or below c */
        const rx_range *r = g->rng + k->first;
        int lo = 0, hi = k->n - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (r[mid].lo <= c) lo = mid;
            else hi = mid - 1;
        }
        in = c >= r[lo].lo && c <= r[lo].hi;
    }
    return in != k->neg;
}

typedef struct rx_frame {
    int32_t pc;
    uint32_t sp;
} rx_frame;

typedef struct rx_run {
    rx_frame *st;
    size_t n_st, cap_st;
    uint8_t *memo;   /* [n_memo][n + 1] bits: a SPLIT state that was tried from this position */
    size_t memo_row; /* bits per row */
    int nomem;
} rx_run;

static int push(rx_run *r, int32_t pc, uint32_t sp) {
    if (r->n_st == r->cap_st) {
        size_t cap = r->cap_st ? r->cap_st * 2 : 256;
        rx_frame *st = realloc(r->st, cap * sizeof *st);
        if (!st) { r->nomem = 1; return -1; }
        r->st = st;
        r->cap_st = cap;
    }
    r->st[r->n_st++] = (rx_frame){pc, sp};
    return 0;
}

/* The end of the first match (by ECMAScript priority) of the code at pc
 * against s[pos..n), or -1. memo: use the failure memo (main program). */
static long rx_exec(const bpe_prog *g, int32_t pc, const uint32_t *s, uint32_t n, uint32_t sp, rx_run *r, int memo) {
    size_t base = r->n_st;
    for (;;) {
        const rx_inst *in = &g->code[pc];
        int ok;
        switch (in->op) {
        case I_CHAR: ok = sp < n && s[sp] == in->c; if (ok) { pc++; sp++; continue; } break;
        case I_CLASS:
            ok = sp < n && class_has(g, &g->cls[in->c], s[sp]);
            if (ok) { pc++; sp++; continue; }
            break;
        case I_ANY: ok = sp < n && s[sp] != '\n' && s[sp] != '\r'; if (ok) { pc++; sp++; continue; } break;
        case I_BOL: ok = sp == 0; if (ok) { pc++; continue; } break;
        case I_EOL: ok = sp == n; if (ok) { pc++; continue; } break;
        case I_JMP: pc = in->x; continue;
        case I_SPLIT:
            if (memo && in->memo >= 0 && r->memo) {
                size_t bit = (size_t)in->memo * r->memo_row + sp;
                if (r->memo[bit >> 3] & (1u << (bit & 7))) break; /* tried from here before: it failed */
                r->memo[bit >> 3] |= (uint8_t)(1u << (bit & 7));
            }
            if (push(r, in->y, sp)) return -1;
            pc = in->x;
            continue;
        case I_LOOK: {
            long m = rx_exec(g, pc + 1, s, n, sp, r, 0);
            if (r->nomem) return -1;
            ok = (m >= 0) != in->neg;
            if (ok) { pc = in->x; continue; }
            break;
        }
        case I_MATCH: r->n_st = base; return sp;
        }
        if (r->n_st == base) return -1;
        r->n_st--;
        pc = r->st[r->n_st].pc;
        sp = r->st[r->n_st].sp;
    }
}

/* ---- splitting ---- */

typedef struct seglist {
    size_t *v;
    size_t n, cap;
} seglist;

static int seg_push(seglist *l, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = len;
    return 0;
}

/* per code point: its class in the low 3 bits, White_Space in bit 3 */
#define F_WS 8
static uint8_t cp_flags(uint32_t cp) {
    static const uint8_t ascii[128] = {
        7, 7, 7, 7, 7, 7, 7, 7, 7, 15, 15, 15, 15, 15, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        11, 5, 5, 5, 6, 5, 5, 5, 5, 5, 5, 6, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 6, 6, 6, 5,
        5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 6, 5,
        6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 6, 5, 6, 7,
    };
    if (cp < 128) return ascii[cp];
    return (uint8_t)(pl_ucat(cp) | (pl_uspace(cp) ? F_WS : 0));
}

typedef struct split_ctx {
    const uint32_t *cps;
    const uint8_t *fl; /* cp_flags of each */
    uint32_t *sym;     /* scratch: symbols for the regex engine */
    rx_run run;
} split_ctx;

#define CAT(f) ((f) & 7)
#define OUT_OF_RANGE 0xFFFFFFFFu

/* llama.cpp's unicode_regex_split_custom_gpt2 / _llama3 over one segment
 * [a, b) of the code points. Flags outside the segment are 0 ("no flags"),
 * which is what its _get_flags returns there. */
typedef struct cust {
    const uint32_t *cps;
    const uint8_t *fl;
    size_t a, b, prev;
    seglist *out;
    int nomem;
} cust;

static uint32_t c_cpt(const cust *c, size_t p) { return p >= c->a && p < c->b ? c->cps[p] : OUT_OF_RANGE; }
static unsigned c_fl(const cust *c, size_t p) { return p >= c->a && p < c->b ? (unsigned)c->fl[p] | 0x100u : 0u; }
#define IS_LETTER(f) ((f) && CAT(f) == PL_UC_LETTER)
#define IS_NUMBER(f) ((f) && CAT(f) == PL_UC_NUMBER)
#define IS_WS(f) (((f) & F_WS) != 0)
static size_t c_add(cust *c, size_t end) {
    size_t len = end - c->prev;
    if (len > 0 && seg_push(c->out, len)) c->nomem = 1;
    c->prev = end;
    return len;
}

static void split_gpt2(cust *c) {
    for (size_t pos = c->a; pos < c->b;) {
        uint32_t cpt = c_cpt(c, pos);
        unsigned flags = c_fl(c, pos);
        if (cpt == '\'' && pos + 1 < c->b) {
            uint32_t nx = c_cpt(c, pos + 1);
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') { pos += c_add(c, pos + 2); continue; }
            if (pos + 2 < c->b) {
                uint32_t nn = c_cpt(c, pos + 2);
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) {
                    pos += c_add(c, pos + 3);
                    continue;
                }
            }
        }
        unsigned f2 = cpt == ' ' ? c_fl(c, pos + 1) : flags;
        if (IS_LETTER(f2)) {
            pos += cpt == ' ';
            while (IS_LETTER(f2)) f2 = c_fl(c, ++pos);
            c_add(c, pos);
            continue;
        }
        if (IS_NUMBER(f2)) {
            pos += cpt == ' ';
            while (IS_NUMBER(f2)) f2 = c_fl(c, ++pos);
            c_add(c, pos);
            continue;
        }
        if (!(IS_WS(f2) || IS_LETTER(f2) || IS_NUMBER(f2)) && f2) {
            pos += cpt == ' ';
            while (!(IS_WS(f2) || IS_LETTER(f2) || IS_NUMBER(f2)) && f2) f2 = c_fl(c, ++pos);
            c_add(c, pos);
            continue;
        }
        size_t nws = 0;
        while (IS_WS(c_fl(c, pos + nws))) nws++;
        if (nws > 1 && c_cpt(c, pos + nws) != OUT_OF_RANGE) {
            pos += nws - 1;
            c_add(c, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            c_add(c, pos);
            continue;
        }
        c_add(c, ++pos);
    }
}

static void split_llama3(cust *c, size_t max_digits) {
    for (size_t pos = c->a; pos < c->b;) {
        uint32_t cpt = c_cpt(c, pos);
        unsigned flags = c_fl(c, pos);
        if (cpt == '\'' && pos + 1 < c->b) {
            uint32_t nx = pl_ulower_ascii(c_cpt(c, pos + 1));
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') { pos += c_add(c, pos + 2); continue; }
            if (pos + 2 < c->b) {
                uint32_t nn = pl_ulower_ascii(c_cpt(c, pos + 2));
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) {
                    pos += c_add(c, pos + 3);
                    continue;
                }
            }
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(cpt == '\r' || cpt == '\n' || IS_NUMBER(flags))) {
            if (IS_LETTER(flags) || IS_LETTER(c_fl(c, pos + 1))) {
                pos++;
                while (IS_LETTER(c_fl(c, pos))) pos++;
                c_add(c, pos);
                continue;
            }
        }
        /* \p{N}{1,3} (qwen2: \p{N}) */
        if (IS_NUMBER(flags)) {
            size_t ini = pos;
            while (IS_NUMBER(c_fl(c, pos))) {
                if (++pos - ini >= max_digits) {
                    c_add(c, pos);
                    ini = pos;
                }
            }
            c_add(c, pos);
            continue;
        }
        /* <space>?[^\s\p{L}\p{N}]+[\r\n]* (the first test reads flags, not
         * f2, as llama.cpp does) */
        unsigned f2 = cpt == ' ' ? c_fl(c, pos + 1) : flags;
        if (!(IS_WS(f2) || IS_LETTER(f2) || IS_NUMBER(f2)) && flags) {
            pos += cpt == ' ';
            while (!(IS_WS(f2) || IS_LETTER(f2) || IS_NUMBER(f2)) && f2) f2 = c_fl(c, ++pos);
            uint32_t c2 = c_cpt(c, pos);
            while (c2 == '\r' || c2 == '\n') c2 = c_cpt(c, ++pos);
            c_add(c, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (IS_WS(c_fl(c, pos + nws))) {
            uint32_t c2 = c_cpt(c, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            c_add(c, pos);
            continue;
        }
        if (nws > 1 && c_cpt(c, pos + nws) != OUT_OF_RANGE) {
            pos += nws - 1;
            c_add(c, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            c_add(c, pos);
            continue;
        }
        c_add(c, ++pos);
    }
}

/* One regex over every segment of in; the words go to out (gaps between
 * matches are words too, as in llama.cpp's unicode_regex_split_stl). */
static int split_one(const bpe_prog *g, split_ctx *x, size_t total, const seglist *in, seglist *out) {
    out->n = 0;
    if (g->custom) {
        size_t start = 0;
        for (size_t i = 0; i < in->n; i++) {
            cust c = {x->cps, x->fl, start, start + in->v[i], start, out, 0};
            if (g->custom == 1) split_gpt2(&c);
            else split_llama3(&c, g->custom == 2 ? 3 : 1);
            if (c.nomem) return -1;
            start += in->v[i];
        }
        return 0;
    }
    /* symbols: collapsed bytes or code points, non-ASCII White_Space as \v */
    for (size_t i = 0; i < total; i++) {
        uint32_t cp = x->cps[i];
        uint8_t f = x->fl[i];
        if (cp < 128) x->sym[i] = cp;
        else if (f & F_WS) x->sym[i] = 0x0B;
        else x->sym[i] = g->collapsed ? ucat_byte(CAT(f)) : cp;
    }
    /* one memo buffer for the longest segment, cleared per segment */
    size_t longest = 0;
    for (size_t i = 0; i < in->n; i++)
        if (in->v[i] > longest) longest = in->v[i];
    rx_run *r = &x->run;
    free(r->memo);
    r->memo = NULL;
    if (g->n_memo) {
        r->memo = malloc(((size_t)g->n_memo * (longest + 1) + 7) / 8);
        if (!r->memo) return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t n = (uint32_t)in->v[i];
        const uint32_t *s = x->sym + start;
        r->memo_row = (size_t)n + 1;
        if (r->memo) memset(r->memo, 0, ((size_t)g->n_memo * r->memo_row + 7) / 8);
        uint32_t last = 0;
        for (uint32_t p = 0; p < n;) {
            long e = rx_exec(g, 0, s, n, p, r, 1);
            if (r->nomem) return -1;
            if (e > (long)p) {
                if (p > last && seg_push(out, p - last)) return -1;
                if (seg_push(out, (size_t)e - p)) return -1;
                last = p = (uint32_t)e;
                /* states at the match's end may lie on its own path: forget them */
                for (int m = 0; m < g->n_memo && r->memo; m++) {
                    size_t bit = (size_t)m * r->memo_row + p;
                    r->memo[bit >> 3] &= (uint8_t)~(1u << (bit & 7));
                }
            } else {
                p++;
            }
        }
        if (last < n && seg_push(out, n - last)) return -1;
        start += n;
    }
    return 0;
}

/* Words of cps[0..n) (with their flags) as code point counts in *words. */
static int split_all(const pl_tokenizer *t, const uint32_t *cps, const uint8_t *fl, size_t n, seglist *words) {
    seglist a = {0}, b = {0};
    split_ctx x;
    memset(&x, 0, sizeof x);
    x.cps = cps;
    x.fl = fl;
    int rc = -1;
    x.sym = malloc((n ? n : 1) * sizeof *x.sym);
    if (!x.sym || seg_push(&a, n)) goto done;
    for (int i = 0; i < t->n_regex; i++) {
        if (split_one(t->regex[i], &x, n, &a, &b)) goto done;
        seglist sw = a;
        a = b;
        b = sw;
    }
    *words = a;
    a.v = NULL;
    rc = 0;
done:
    free(a.v);
    free(b.v);
    free(x.sym);
    free(x.run.st);
    free(x.run.memo);
    return rc;
}

int pl_bpe_split_cps(const pl_tokenizer *t, const uint32_t *cps, size_t n, size_t *lens, size_t cap) {
    uint8_t *fl = malloc(n ? n : 1);
    if (!fl) return PL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) fl[i] = cp_flags(cps[i]);
    seglist w = {0};
    int rc = split_all(t, cps, fl, n, &w);
    free(fl);
    if (rc) return PL_ERR_NOMEM;
    for (size_t i = 0; i < w.n && i < cap && lens; i++) lens[i] = w.v[i];
    rc = w.n > INT_MAX ? INT_MAX : (int)w.n;
    free(w.v);
    return rc;
}

int pl_bpe_split_regex(int which, int engine, const uint32_t *cps, size_t n, size_t *lens, size_t cap) {
    pl_tokenizer t;
    memset(&t, 0, sizeof t);
    t.regex[0] = prog_compile(which == 1 ? RX_GPT2 : which == 2 ? RX_LLAMA3 : RX_QWEN2, !engine);
    if (!t.regex[0]) return PL_ERR_NOMEM;
    t.n_regex = 1;
    uint8_t *fl = malloc(n ? n : 1);
    if (!fl) { prog_free(t.regex[0]); return PL_ERR_NOMEM; }
    for (size_t i = 0; i < n; i++) fl[i] = cp_flags(cps[i]);
    seglist w = {0};
    int rc = split_all(&t, cps, fl, n, &w);
    free(fl);
    prog_free(t.regex[0]);
    if (rc) return PL_ERR_NOMEM;
    for (size_t i = 0; i < w.n && i < cap && lens; i++) lens[i] = w.v[i];
    rc = w.n > INT_MAX ? INT_MAX : (int)w.n;
    free(w.v);
    return rc;
}

/* ---- loading ---- */

int pl_bpe_pre_init(pl_tokenizer *t, int id, int *add_bos_default, char *err, size_t errlen) {
    const pre_row *row = &pre_rows[id];
    t->pre_id = id;
    t->ignore_merges = row->ignore_merges;
    *add_bos_default = row->add_bos;
    t->n_regex = 0;
    for (int i = 0; i < BPE_MAX_REGEX && row->regex[i]; i++) {
        bpe_prog *g = prog_compile(row->regex[i], 1);
        if (!g) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory compiling the pre-tokenizer '%s'", t->pre);
        t->regex[t->n_regex++] = g;
    }
    return 0;
}

void pl_bpe_pre_free(pl_tokenizer *t) {
    for (int i = 0; i < t->n_regex; i++) prog_free(t->regex[i]);
    t->n_regex = 0;
}

static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (uint32_t)k;
}

/* The rank of the merge of pieces l, r, or -1. */
static int32_t merge_find(const pl_tokenizer *t, int32_t l, int32_t r) {
    if (!t->merge_slot) return -1;
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint32_t i = hash_pair(k) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        int32_t rank = t->merge_slot[i];
        if (rank < 0 || t->merge_pair[rank] == k) return rank;
    }
}

int pl_bpe_load(pl_tokenizer *t, const gguf_file *g, char *err, size_t errlen) {
    /* the byte tables */
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        int n = pl_utf8_put(pl_byte_to_cp((uint8_t)b), u);
        t->map_len[b] = (uint8_t)n;
        memcpy(t->map_utf8[b], u, (size_t)n);
        t->map_tok[b] = pl_tok_lookup(t, u, (size_t)n);
        uint8_t one = (uint8_t)b;
        t->single_tok[b] = pl_tok_lookup(t, &one, 1);
    }
    for (uint32_t cp = 0; cp < 324; cp++) t->unmap[cp] = (int16_t)pl_cp_to_byte(cp);
    /* a normal piece must be byte-level text: GPT-2 code points only */
    for (int i = 0; i < t->n_vocab; i++) {
        const tok_entry *e = &t->tok[i];
        if (e->type != TT_NORMAL) continue;
        const uint8_t *p = (const uint8_t *)t->text + e->off;
        for (size_t j = 0; j < e->len;) {
            size_t k = j;
            uint32_t cp = pl_utf8_next(p, e->len, &j);
            uint8_t u[4];
            int n = pl_utf8_put(cp, u);
            if (cp >= 324 || t->unmap[cp] < 0 || (size_t)n != j - k || memcmp(u, p + k, (size_t)n) != 0)
                return set_err(err, errlen, PL_ERR_FORMAT,
                               "token %d ('%.*s') is not byte-level BPE text (code point U+%04X at byte %zu)", i,
                               (int)(e->len < 40 ? e->len : 40), (const char *)p, (unsigned)cp, k);
        }
    }

    const gguf_kv *km = gguf_find(g, "tokenizer.ggml.merges");
    if (!km) return set_err(err, errlen, PL_ERR_FORMAT, "missing tokenizer.ggml.merges (needed by a gpt2 tokenizer)");
    if (km->type != GGUF_ARRAY || km->arr_type != GGUF_STRING)
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.merges is not a string array");
    if (km->arr_n > (1u << 26))
        return set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.merges has %llu entries (max %d)",
                       (unsigned long long)km->arr_n, 1 << 26);
    int n = (int)km->arr_n;
    gguf_str *m = malloc((n ? (size_t)n : 1) * sizeof *m);
    /* at most 3/4 full; slots hold ranks, the pairs live once per merge
     * (4 MB for Llama 3's 280k merges) */
    uint32_t cap = 16;
    while (cap / 4 * 3 < (uint32_t)n) cap <<= 1;
    t->merge_slot = malloc((size_t)cap * sizeof *t->merge_slot);
    t->merge_pair = malloc((n ? (size_t)n : 1) * sizeof *t->merge_pair);
    if (!m || !t->merge_slot || !t->merge_pair) {
        free(m);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory loading the merges");
    }
    memset(t->merge_slot, 0xFF, (size_t)cap * sizeof *t->merge_slot);
    t->merge_mask = cap - 1;
    gguf_arr_strings(km, m);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const char *s = m[i].ptr;
        size_t len = (size_t)m[i].len;
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            rc = set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.merges[%d] ('%.*s') is not \"left right\"", i,
                         (int)(len < 40 ? len : 40), s);
            break;
        }
        size_t nl = (size_t)(sp - s), nr = len - nl - 1;
        int32_t l = pl_tok_lookup(t, s, nl), r = pl_tok_lookup(t, sp + 1, nr);
        if (l == NO_TOKEN || r == NO_TOKEN) {
            rc = set_err(err, errlen, PL_ERR_FORMAT, "tokenizer.ggml.merges[%d] ('%.*s') names an unknown token", i,
                         (int)(len < 40 ? len : 40), s);
            break;
        }
        uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
        t->merge_pair[i] = k;
        uint32_t j = hash_pair(k) & t->merge_mask;
        while (t->merge_slot[j] >= 0 && t->merge_pair[t->merge_slot[j]] != k) j = (j + 1) & t->merge_mask;
        if (t->merge_slot[j] >= 0) continue; /* the first rank wins (llama.cpp's emplace) */
        t->merge_slot[j] = i;
    }
    t->n_merges = n;
    free(m);
    return rc;
}

void pl_bpe_free(pl_tokenizer *t) {
    free(t->merge_slot);
    free(t->merge_pair);
    t->merge_slot = NULL;
    t->merge_pair = NULL;
    pl_bpe_pre_free(t);
}

/* ---- merging ---- */

typedef struct bsym {
    int prev, next;
    uint32_t off, n; /* bytes of the word */
    int32_t id;      /* its piece, or NO_TOKEN */
} bsym;

typedef struct bbig {
    int left, right;
    int32_t rank;
    uint32_t size;
} bbig;

typedef struct bwork {
    bsym *syms;
    bbig *heap;
    size_t heap_n, heap_cap;
    uint8_t *mapped; /* the word as byte-level text */
    uint32_t *moff;  /* [n + 1]: where byte i's code point starts in mapped */
} bwork;

/* llm_bigram_bpe::comparator: lowest rank first, then the leftmost */
static int bbefore(const bbig *a, const bbig *b) { return a->rank < b->rank || (a->rank == b->rank && a->left < b->left); }

static int bheap_push(bwork *w, bbig b) {
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bbig *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return -1;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bbefore(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return 0;
}

static bbig bheap_pop(bwork *w) {
    bbig top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bbefore(&w->heap[c + 1], &w->heap[c])) c++;
        if (!bbefore(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int add_bigram(const pl_tokenizer *t, bwork *w, int left, int right) {
    if (left < 0 || right < 0) return 0;
    const bsym *l = &w->syms[left], *r = &w->syms[right];
    if (l->id == NO_TOKEN || r->id == NO_TOKEN) return 0;
    int32_t rank = merge_find(t, l->id, r->id);
    if (rank < 0) return 0;
    return bheap_push(w, (bbig){left, right, rank, l->n + r->n});
}

/* One word's bytes w8[0..n): llm_tokenizer_bpe_session::tokenize. */
static int bpe_word(const pl_tokenizer *t, bwork *w, const uint8_t *w8, uint32_t n, tok_sink *s) {
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        w->moff[i] = m;
        memcpy(w->mapped + m, t->map_utf8[w8[i]], t->map_len[w8[i]]);
        m += t->map_len[w8[i]];
    }
    w->moff[n] = m;
    if (t->ignore_merges) {
        int32_t id = pl_tok_lookup(t, w->mapped, m);
        if (id != NO_TOKEN) {
            tok_emit(s, id);
            return 0;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        w->syms[i] = (bsym){(int)i - 1, i + 1 == n ? -1 : (int)i + 1, i, 1, t->map_tok[w8[i]]};
    w->heap_n = 0;
    for (uint32_t i = 1; i < n; i++)
        if (add_bigram(t, w, (int)i - 1, (int)i)) return -1;
    while (w->heap_n) {
        bbig b = bheap_pop(w);
        bsym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
        l->n += r->n;
        /* the merged piece, looked up only now: most merges of the table
         * are never applied, so the load does not resolve them */
        l->id = pl_tok_lookup(t, w->mapped + w->moff[l->off], w->moff[l->off + l->n] - w->moff[l->off]);
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = b.left;
        if (add_bigram(t, w, l->prev, b.left) || add_bigram(t, w, b.left, l->next)) return -1;
    }
    for (int i = 0; i != -1 && n; i = w->syms[i].next) {
        const bsym *y = &w->syms[i];
        if (y->id != NO_TOKEN) {
            tok_emit(s, y->id);
            continue;
        }
        /* not a piece: llama.cpp looks up each byte of its byte-level text */
        for (uint32_t j = 0; j < y->n; j++) {
            uint8_t c = w8[y->off + j];
            for (int k = 0; k < t->map_len[c]; k++) {
                int32_t id = t->single_tok[t->map_utf8[c][k]];
                if (id != NO_TOKEN) tok_emit(s, id);
            }
        }
    }
    return 0;
}

int pl_bpe_encode(const pl_tokenizer *t, const uint8_t *text, size_t len, tok_sink *s) {
    if (len == 0) return 0;
    if (len > (size_t)UINT32_MAX / 8) return PL_ERR_ARG;
    uint32_t *cps = malloc(len * sizeof *cps);
    uint8_t *fl = malloc(len);
    uint8_t *w8 = NULL;
    seglist words = {0};
    bwork w;
    memset(&w, 0, sizeof w);
    int rc = PL_ERR_NOMEM;
    if (!cps || !fl) goto done;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        cps[n] = pl_utf8_next(text, len, &i);
        fl[n] = cp_flags(cps[n]);
        n++;
    }
    if (split_all(t, cps, fl, n, &words)) goto done;
    size_t longest = 0;
    for (size_t i = 0; i < words.n; i++)
        if (words.v[i] > longest) longest = words.v[i];
    w8 = malloc(longest * 4 + 1);
    w.syms = malloc((longest * 4 + 1) * sizeof *w.syms);
    w.mapped = malloc(longest * 8 + 1);
    w.moff = malloc((longest * 4 + 1) * sizeof *w.moff);
    if (!w8 || !w.syms || !w.mapped || !w.moff) goto done;
    size_t at = 0;
    for (size_t i = 0; i < words.n; i++) {
        uint32_t nb = 0;
        for (size_t j = 0; j < words.v[i]; j++) nb += (uint32_t)pl_utf8_put(cps[at + j], w8 + nb);
        at += words.v[i];
        if (bpe_word(t, &w, w8, nb, s)) goto done;
    }
    rc = 0;
done:
    free(cps);
    free(fl);
    free(w8);
    free(words.v);
    free(w.syms);
    free(w.heap);
    free(w.mapped);
    free(w.moff);
    return rc;
}
