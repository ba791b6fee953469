/* grammar.c - grammar-constrained sampling.
 *
 * GBNF arrives compiled (gbnf.c) into rules of byte-level elements, every
 * character class already rewritten into alternatives of UTF-8 byte
 * ranges, so the runtime is a pushdown recognizer over bytes (llama.cpp's
 * stacks, here linked lists with shared tails in a bump arena) and a token
 * that ends mid-character needs no special case. The JSON mode is a
 * hand-written state machine behind the same handle. Masking walks a
 * preorder trie of the vocabulary once per step and skips a subtree as soon
 * as its prefix is rejected; for GBNF, steps from the current state are
 * memoised per byte and a state equal to the current one reuses them, so a
 * string body costs O(1) per trie node. Every state knows the length of its
 * shortest completion ("need", bytes), which drives budget steering.
 * Stack nodes are hash-consed so that equal stacks are one node (an
 * ambiguous grammar's duplicate derivations collapse), and each mask or
 * token has budgets (parse states per step, parse work, arena sizes) that
 * end it with a "grammar too ..." error naming the limit instead of
 * running for seconds or growing without bound.
 * Not here: the GBNF parser and compiler (gbnf.c), the JSON Schema
 * compiler (json_schema.c), sampling, detokenisation, the CLI. */
#include "grammar.h"
#include "grammar_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G_MARGIN 3        /* steering: tighten when tokens_left-1 < need + margin */
#define G_MIN_DEPTH 64    /* scratch depth before binding (accept_bytes chunk) */
#define G_NODE_CAP 65536  /* stack nodes in the arena */
#define G_SET_CAP 65536   /* stack references in all sets */
#define G_NORM_STACK 32768 /* pending expansions of a step (an explicit stack: no recursion) */
#define G_MAX_STACKS 4096 /* parse stacks in one state */
#define G_WORK_MAX 20000000 /* parse steps (stacks added, rules expanded) per mask or token */
#define G_HC_SIZE (2 * G_NODE_CAP) /* hash-consing slots for stack nodes */
#define G_VIS_SIZE 16384  /* rule expansions memoised per step */
#define J_WS_MAX 20       /* consecutive whitespace bytes in JSON mode */
#define G_CACHE 8         /* states whose masks are kept */
#define G_KEY_MAX 512     /* longest state key (ints) that is cached */

void pl_grammar_set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#define set_err pl_grammar_set_err

/* ======================================================================
 * Compiled program (grammar_impl.h): freeing and copying.
 * ====================================================================== */

void pl_grammar_prog_free(gprog *p) {
    free(p->el);
    free(p->min_rest);
    free(p->alt);
    free(p->rule_alt);
    free(p->bset);
    memset(p, 0, sizeof *p);
}

static int prog_copy(gprog *d, const gprog *s) {
    memset(d, 0, sizeof *d);
    *d = *s;
    d->el = malloc((size_t)s->n_el * sizeof *d->el);
    d->min_rest = malloc((size_t)s->n_el * sizeof *d->min_rest);
    d->alt = malloc((size_t)s->n_alt * sizeof *d->alt + 1);
    d->rule_alt = malloc((size_t)(s->n_rules + 1) * sizeof *d->rule_alt);
    d->bset = malloc((size_t)s->n_bset * sizeof *d->bset + 1);
    if (!d->el || !d->min_rest || !d->alt || !d->rule_alt || !d->bset) {
        pl_grammar_prog_free(d);
        return -1;
    }
    memcpy(d->el, s->el, (size_t)s->n_el * sizeof *d->el);
    memcpy(d->min_rest, s->min_rest, (size_t)s->n_el * sizeof *d->min_rest);
    memcpy(d->alt, s->alt, (size_t)s->n_alt * sizeof *d->alt);
    memcpy(d->rule_alt, s->rule_alt, (size_t)(s->n_rules + 1) * sizeof *d->rule_alt);
    memcpy(d->bset, s->bset, (size_t)s->n_bset * sizeof *d->bset);
    return 0;
}

/* ======================================================================
 * JSON state machine (the built-in JSON mode)
 * ====================================================================== */

enum {
    J_VALUE,     /* a value must start (whitespace allowed) */
    J_ARR_FIRST, /* after '[': a value or ']' */
    J_OBJ_FIRST, /* after '{': a key or '}' */
    J_OBJ_KEY,   /* after ',' in an object: a key */
    J_COLON,     /* after a key */
    J_AFTER,     /* after a value: ',' or a closer (at depth 0: nothing) */
    J_STR, J_ESC, J_HEX, J_UTF,
    J_MINUS, J_ZERO, J_INT, J_DOT, J_FRAC, J_E, J_ESIGN, J_EXP,
    J_LIT
};

typedef struct jstate {
    uint64_t stack; /* bit d: 1 = object at nesting level d */
    uint8_t depth, mode;
    uint8_t key;    /* the string being read is an object key */
    uint8_t aux;    /* J_HEX: digits read; J_UTF: continuation bytes left; J_LIT: literal */
    uint8_t lo, hi; /* J_UTF: range of the next byte */
    uint8_t ws;     /* consecutive whitespace bytes */
    uint8_t idx;    /* J_LIT: bytes of the literal read */
} jstate;

static const char *const j_lits[3] = {"true", "false", "null"};

/* clear the fields the next mode does not use, so equal states compare
 * equal (they key the mask cache) */
static void j_end_value(jstate *s) {
    s->mode = J_AFTER;
    s->key = s->aux = s->idx = s->lo = s->hi = 0;
}

static int j_value_start(jstate *s, int c, int maxd) {
    switch (c) {
    case '{':
    case '[':
        if (s->depth >= maxd) return 0;
        if (c == '{') s->stack |= 1ull << s->depth;
        else s->stack &= ~(1ull << s->depth);
        s->depth++;
        s->mode = c == '{' ? J_OBJ_FIRST : J_ARR_FIRST;
        return 1;
    case '"': s->mode = J_STR; s->key = 0; return 1;
    case '-': s->mode = J_MINUS; return 1;
    case '0': s->mode = J_ZERO; return 1;
    case 't': case 'f': case 'n':
        s->mode = J_LIT;
        s->aux = c == 't' ? 0 : c == 'f' ? 1 : 2;
        s->idx = 1;
        return 1;
    default:
        if (c >= '1' && c <= '9') {
            s->mode = J_INT;
            return 1;
        }
        return 0;
    }
}

static int j_top_is_obj(const jstate *s) { return (int)((s->stack >> (s->depth - 1)) & 1); }

/* Advance by one byte; 0 when the byte cannot follow. */
static int j_step(jstate *s, int c, int maxd) {
    switch (s->mode) {
    case J_VALUE:
    case J_ARR_FIRST:
    case J_OBJ_FIRST:
    case J_OBJ_KEY:
    case J_COLON:
    case J_AFTER:
        if (j_is_ws(c)) {
            if (s->ws >= J_WS_MAX || (s->mode == J_AFTER && s->depth == 0)) return 0;
            s->ws++;
            return 1;
        }
        s->ws = 0;
        switch (s->mode) {
        case J_ARR_FIRST:
            if (c == ']') {
                s->depth--;
                j_end_value(s);
                return 1;
            }
            /* fall through */
        case J_VALUE:
            return j_value_start(s, c, maxd);
        case J_OBJ_FIRST:
            if (c == '}') {
                s->depth--;
                j_end_value(s);
                return 1;
            }
            /* fall through */
        case J_OBJ_KEY:
            if (c != '"') return 0;
            s->mode = J_STR;
            s->key = 1;
            return 1;
        case J_COLON:
            if (c != ':') return 0;
            s->mode = J_VALUE;
            return 1;
        default: /* J_AFTER */
            if (s->depth == 0) return 0;
            if (c == ',') {
                s->mode = j_top_is_obj(s) ? J_OBJ_KEY : J_VALUE;
                return 1;
            }
            if (c == (j_top_is_obj(s) ? '}' : ']')) {
                s->depth--;
                return 1;
            }
            return 0;
        }
    case J_STR:
        if (c == '"') {
            if (s->key) {
                s->mode = J_COLON;
                s->key = 0;
            } else {
                j_end_value(s);
            }
            return 1;
        }
        if (c == '\\') {
            s->mode = J_ESC;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c < 0x80) return 1;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) s->aux = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            s->aux = 2;
            if (c == 0xE0) s->lo = 0xA0;
            if (c == 0xED) s->hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            s->aux = 3;
            if (c == 0xF0) s->lo = 0x90;
            if (c == 0xF4) s->hi = 0x8F;
        } else {
            return 0;
        }
        s->mode = J_UTF;
        return 1;
    case J_UTF:
        if (c < s->lo || c > s->hi) return 0;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (--s->aux == 0) {
            s->mode = J_STR;
            s->lo = s->hi = 0;
        }
        return 1;
    case J_ESC:
        if (c == 'u') {
            s->mode = J_HEX;
            s->aux = 0;
            return 1;
        }
        if (!strchr("\"\\/bfnrt", c) || !c) return 0;
        s->mode = J_STR;
        return 1;
    case J_HEX:
        if (hexval(c) < 0) return 0;
        if (++s->aux == 4) {
            s->mode = J_STR;
            s->aux = 0;
        }
        return 1;
    case J_LIT:
        if (c != j_lits[s->aux][s->idx]) return 0;
        if (!j_lits[s->aux][++s->idx]) j_end_value(s);
        return 1;
    case J_MINUS:
        if (c == '0') s->mode = J_ZERO;
        else if (c >= '1' && c <= '9') s->mode = J_INT;
        else return 0;
        return 1;
    case J_DOT:
        if (c < '0' || c > '9') return 0;
        s->mode = J_FRAC;
        return 1;
    case J_E:
        if (c == '+' || c == '-') {
            s->mode = J_ESIGN;
            return 1;
        }
        /* fall through */
    case J_ESIGN:
        if (c < '0' || c > '9') return 0;
        s->mode = J_EXP;
        return 1;
    default: /* J_ZERO J_INT J_FRAC J_EXP: a complete number that may go on */
        if (c >= '0' && c <= '9' && s->mode != J_ZERO) return 1;
        if (c == '.' && (s->mode == J_ZERO || s->mode == J_INT)) {
            s->mode = J_DOT;
            return 1;
        }
        if ((c == 'e' || c == 'E') && s->mode != J_EXP) {
            s->mode = J_E;
            return 1;
        }
        j_end_value(s);
        return j_step(s, c, maxd);
    }
}

/* Bytes of the shortest completion. */
static int j_need(const jstate *s) {
    int n = s->depth, k = s->key ? 2 : 0; /* a key still needs ':' and a value */
    switch (s->mode) {
    case J_VALUE: return n + 1;
    case J_OBJ_KEY: return n + 4; /* "":0 */
    case J_COLON: return n + 2;
    case J_STR: return n + 1 + k;
    case J_ESC: return n + 2 + k;
    case J_HEX: return n + (4 - s->aux) + 1 + k;
    case J_UTF: return n + s->aux + 1 + k;
    case J_MINUS: case J_DOT: case J_E: case J_ESIGN: return n + 1;
    case J_LIT: return n + (int)strlen(j_lits[s->aux]) - s->idx;
    default: return n; /* J_ARR_FIRST J_OBJ_FIRST J_AFTER and complete numbers */
    }
}

static int j_complete(const jstate *s) {
    return s->depth == 0 && (s->mode == J_AFTER || s->mode == J_ZERO || s->mode == J_INT ||
                             s->mode == J_FRAC || s->mode == J_EXP);
}

/* json_schema.c's number check (grammar_impl.h), on the states above. */
size_t pl_grammar_json_number(const char *s, size_t n, int *complete) {
    jstate st;
    memset(&st, 0, sizeof st);
    st.mode = J_VALUE;
    size_t i = 0;
    while (i < n && s[i] && strchr("0123456789+-.eE", s[i])) {
        if (!j_step(&st, (unsigned char)s[i], 1)) break;
        i++;
    }
    *complete = j_complete(&st);
    return i;
}

const char *pl_grammar_json_gbnf(void) {
    return "root    ::= ws value\n"
           "value   ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"
           "object  ::= \"{\" ws ( member ws ( \",\" ws member ws )* )? \"}\"\n"
           "member  ::= string ws \":\" ws value\n"
           "array   ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"
           "string  ::= \"\\\"\" char* \"\\\"\"\n"
           "char    ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
           "number  ::= integer ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?\n"
           "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]* )\n"
           "ws      ::= [ \\t\\n\\r]{0,20}\n";
}

/* ======================================================================
 * Vocabulary: token bytes and a preorder trie
 * ====================================================================== */

struct pl_grammar_vocab {
    int n_vocab, max_len, n_nodes;
    int32_t eos;
    char *text;        /* all token bytes */
    uint32_t *off;     /* [n_vocab] */
    int32_t *len;      /* [n_vocab] */
    /* trie nodes in preorder: node i is the prefix of length depth[i]
     * ending in byte[i]; its subtree is [i+1, skip[i]); the tokens whose
     * bytes are exactly that prefix are tok[tok_off[i] .. tok_off[i+1]) */
    uint8_t *byte;     /* [n_nodes] */
    uint16_t *depth;   /* [n_nodes] */
    uint32_t *skip;    /* [n_nodes] */
    uint32_t *tok_off; /* [n_nodes+1] */
    int32_t *tok;      /* token ids with at least one byte */
};

void pl_grammar_vocab_free(pl_grammar_vocab *v) {
    if (!v) return;
    free(v->text);
    free(v->off);
    free(v->len);
    free(v->byte);
    free(v->depth);
    free(v->skip);
    free(v->tok_off);
    free(v->tok);
    free(v);
}

int pl_grammar_vocab_n_nodes(const pl_grammar_vocab *v) { return v ? v->n_nodes : 0; }

static int tok_cmp(const pl_grammar_vocab *v, int32_t a, int32_t b) {
    int la = v->len[a], lb = v->len[b];
    int c = memcmp(v->text + v->off[a], v->text + v->off[b], (size_t)(la < lb ? la : lb));
    if (c) return c;
    return la != lb ? (la < lb ? -1 : 1) : (a < b ? -1 : a > b);
}

/* Bottom-up merge sort of token ids by bytes (qsort has no context). */
static void sort_tokens(const pl_grammar_vocab *v, int32_t *a, int32_t *tmp, int n) {
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = tok_cmp(v, a[i], a[j]) <= 0 ? a[i++] : a[j++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

int pl_grammar_vocab_new(pl_grammar_vocab **out, const char *const *tokens, const int32_t *len, int n_vocab,
                         int32_t eos, char *err, size_t errlen) {
    *out = NULL;
    if (n_vocab <= 0 || !tokens || !len || eos >= n_vocab) {
        set_err(err, errlen, "grammar vocab: bad arguments");
        return PL_ERR_ARG;
    }
    pl_grammar_vocab *v = calloc(1, sizeof *v);
    int32_t *tmp = NULL, *path = NULL;
    if (!v) goto nomem;
    v->n_vocab = n_vocab;
    v->eos = eos < 0 ? -1 : eos;
    size_t total = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (len[i] < 0 || len[i] > 65535 || (len[i] && !tokens[i])) {
            set_err(err, errlen, "grammar vocab: token %d has a bad length %d", i, (int)len[i]);
            pl_grammar_vocab_free(v);
            return PL_ERR_ARG;
        }
        total += (size_t)len[i];
        if (len[i] > v->max_len) v->max_len = len[i];
    }
    if (total > 0x7fffffff) {
        set_err(err, errlen, "grammar vocab: token bytes too large");
        pl_grammar_vocab_free(v);
        return PL_ERR_ARG;
    }
    v->text = malloc(total + 1);
    v->off = malloc((size_t)n_vocab * sizeof *v->off);
    v->len = malloc((size_t)n_vocab * sizeof *v->len);
    v->tok = malloc((size_t)n_vocab * sizeof *v->tok);
    tmp = malloc((size_t)n_vocab * sizeof *tmp);
    v->byte = malloc(total + 1);
    v->depth = malloc((total + 1) * sizeof *v->depth);
    v->skip = malloc((total + 1) * sizeof *v->skip);
    v->tok_off = malloc((total + 2) * sizeof *v->tok_off);
    path = malloc(((size_t)v->max_len + 2) * sizeof *path);
    if (!v->text || !v->off || !v->len || !v->tok || !tmp || !v->byte || !v->depth || !v->skip || !v->tok_off ||
        !path)
        goto nomem;
    size_t o = 0;
    int nt = 0;
    for (int i = 0; i < n_vocab; i++) {
        v->off[i] = (uint32_t)o;
        v->len[i] = len[i];
        if (len[i]) memcpy(v->text + o, tokens[i], (size_t)len[i]);
        o += (size_t)len[i];
        if (len[i]) v->tok[nt++] = i;
    }
    sort_tokens(v, v->tok, tmp, nt);
    /* Build the preorder trie from the sorted list: token i adds the nodes
     * for its bytes past the common prefix with token i-1. open nodes at
     * depth >= d end (skip) where a new node at depth d starts. */
    int nn = 0, open_depth = 0, prev = -1;
    for (int i = 0; i < nt; i++) {
        int t = v->tok[i], L = v->len[t], lcp = 0;
        const uint8_t *s = (const uint8_t *)v->text + v->off[t];
        if (prev >= 0) {
            const uint8_t *q = (const uint8_t *)v->text + v->off[prev];
            int m = v->len[prev] < L ? v->len[prev] : L;
            while (lcp < m && q[lcp] == s[lcp]) lcp++;
        }
        for (int d = lcp + 1; d <= L; d++) {
            for (int dd = d; dd <= open_depth; dd++) v->skip[path[dd]] = (uint32_t)nn;
            open_depth = d;
            path[d] = nn;
            v->byte[nn] = s[d - 1];
            v->depth[nn] = (uint16_t)d;
            nn++;
        }
        tmp[i] = path[L]; /* token i ends at this node; nodes are non-decreasing in i */
        prev = t;
    }
    for (int dd = 1; dd <= open_depth; dd++) v->skip[path[dd]] = (uint32_t)nn;
    v->n_nodes = nn;
    for (int k = 0, ti = 0; k <= nn; k++) {
        v->tok_off[k] = (uint32_t)ti;
        while (ti < nt && tmp[ti] == k) ti++;
    }
    free(tmp);
    free(path);
    *out = v;
    return PL_OK;
nomem:
    free(tmp);
    free(path);
    pl_grammar_vocab_free(v);
    set_err(err, errlen, "grammar vocab: out of memory");
    return PL_ERR_NOMEM;
}

int pl_grammar_vocab_from_model(pl_grammar_vocab **out, const pl_model *m, char *err, size_t errlen) {
    *out = NULL;
    const pl_model_info *mi = m ? pl_model_get_info(m) : NULL;
    if (!mi || mi->n_vocab <= 0) {
        set_err(err, errlen, "grammar vocab: no model");
        return PL_ERR_ARG;
    }
    int n = mi->n_vocab, rc = PL_ERR_NOMEM;
    char **tok = calloc((size_t)n, sizeof *tok);
    int32_t *len = calloc((size_t)n, sizeof *len);
    char buf[256];
    if (!tok || !len) goto done;
    for (int i = 0; i < n; i++) {
        int k = pl_token_to_text(m, -1, i, buf, sizeof buf);
        if (k < 0) k = 0;
        tok[i] = malloc((size_t)k + 1);
        if (!tok[i]) goto done;
        if (k > (int)sizeof buf) pl_token_to_text(m, -1, i, tok[i], (size_t)k + 1);
        else memcpy(tok[i], buf, (size_t)k);
        len[i] = k;
    }
    rc = pl_grammar_vocab_new(out, (const char *const *)tok, len, n, pl_token_eos(m), err, errlen);
done:
    if (rc == PL_ERR_NOMEM && !*out) set_err(err, errlen, "grammar vocab: out of memory");
    if (tok)
        for (int i = 0; i < n; i++) free(tok[i]);
    free(tok);
    free(len);
    return rc;
}

/* ======================================================================
 * The grammar handle and the GBNF runtime
 * ====================================================================== */

enum { GK_GBNF, GK_JSON };

typedef struct gnode {
    int32_t pos;    /* element to match next (a byte set) or to resume at */
    int32_t parent; /* node below, -1 for none */
    int32_t need;   /* bytes to finish this stack: min_rest[pos] + parent's need */
} gnode;

struct pl_grammar {
    int kind, max_depth;
    gprog p;
    const pl_grammar_vocab *v;
    char last_err[160];
    int cap_depth;   /* states per trie depth: 0 is the current state */
    /* mask cache, after bind: the need after every token (0xFFFF: the
     * token is rejected) is a pure function of the state, so it is kept
     * for the last G_CACHE states, keyed by their exact content */
    uint16_t *cneed; /* [G_CACHE][n_vocab] */
    int32_t *ckey;   /* [G_CACHE][G_KEY_MAX] */
    int ckeylen[G_CACHE];
    uint64_t cuse[G_CACHE], tick;
    int32_t key[G_KEY_MAX];
    uint64_t hits, misses;
    /* JSON */
    jstate *js;      /* [cap_depth+1] */
    /* GBNF: a bump arena of stack nodes and of stack-reference sets. The
     * set of state d is set[soff[d] .. +slen[d]) (-1 = the empty stack:
     * accepted); the arena tops after computing state d are atop_n/atop_s. */
    gnode *node;     /* [G_NODE_CAP] */
    int32_t *set;    /* [G_SET_CAP] */
    int32_t *soff, *slen, *sneed, *atop_n, *atop_s; /* [cap_depth+1] */
    uint8_t *sroot;  /* [cap_depth+1] state d equals state 0 */
    int32_t *mark;   /* [G_NODE_CAP] compaction ranks */
    int32_t m_off[256], m_len[256], m_need[256]; /* steps from state 0 by each byte */
    uint8_t m_root[256];
    /* Stack nodes are hash-consed (one node per (pos, parent), found
     * through hc[]), so equal stacks are the same node id and a set is
     * deduplicated in O(1) by stamping the ids it holds (stamp[id] == gen).
     * Without it two derivations of the same stack stay apart and their
     * descendants multiply at every byte (2^n stacks for ( [a-z]+ " "? )+).
     * A direct-mapped miss only costs a duplicate, never a wrong answer. */
    int32_t *hc;     /* [G_HC_SIZE] node ids (stale when >= the arena top or not matching) */
    uint32_t *stamp; /* [G_NODE_CAP] */
    uint32_t gen, acc_gen; /* acc_gen: the accepting (empty) stack is in the set */
    struct gvis { int32_t rule, cont; uint32_t gen; } *vis; /* [G_VIS_SIZE] rules expanded this step */
    struct gpend { int32_t pos, parent; } *pend;           /* [G_NORM_STACK] g_norm's work stack */
    int n_vis;
    long work;       /* parse steps since the mask or token began (G_WORK_MAX) */
    int overflow;    /* a limit was hit: G_OV_* */
};

/* Limits the runtime enforces, each with its own message (g_limit_msg). */
enum { G_OV_NONE, G_OV_NODES, G_OV_SETS, G_OV_STACKS, G_OV_DEPTH, G_OV_WORK };

static void g_limit_msg(pl_grammar *g, const char *what) {
    switch (g->overflow) {
    case G_OV_NODES:
        set_err(g->last_err, sizeof g->last_err,
                "grammar state too large: more than %d stack nodes (nesting too deep or grammar too ambiguous)",
                G_NODE_CAP);
        break;
    case G_OV_SETS:
        set_err(g->last_err, sizeof g->last_err, "grammar too ambiguous: more than %d parse states along a token",
                G_SET_CAP);
        break;
    case G_OV_STACKS:
        set_err(g->last_err, sizeof g->last_err, "grammar too ambiguous: more than %d parse states at a step",
                G_MAX_STACKS);
        break;
    case G_OV_DEPTH:
        set_err(g->last_err, sizeof g->last_err,
                "grammar too deep: more than %d rule alternatives pending at a step", G_NORM_STACK);
        break;
    default:
        set_err(g->last_err, sizeof g->last_err, "grammar too ambiguous: more than %d parse steps for %s",
                G_WORK_MAX, what);
        break;
    }
}

/* Start a new set under construction (a step): nothing is stamped yet. */
static void g_new_gen(pl_grammar *g) {
    if (++g->gen == 0) { /* wrapped: old stamps could collide */
        memset(g->stamp, 0, G_NODE_CAP * sizeof *g->stamp);
        for (int i = 0; i < G_VIS_SIZE; i++) g->vis[i].gen = 0;
        g->acc_gen = 0;
        g->gen = 1;
    }
    g->n_vis = 0;
}

static uint32_t g_hash(int32_t a, int32_t b) {
    uint32_t h = (uint32_t)a * 0x9E3779B1u ^ ((uint32_t)b + 0x7F4A7C15u) * 0x85EBCA77u;
    return h ^ h >> 15;
}

static gnode g_mk(const pl_grammar *g, int32_t pos, int32_t parent) {
    gnode n;
    n.pos = pos;
    n.parent = parent;
    n.need = g->p.min_rest[pos] + (parent >= 0 ? g->node[parent].need : 0);
    return n;
}

/* The node for stack (pos, parent), shared when it already exists below
 * the arena top *ntop, else made there; -1 when the arena is full. */
static int32_t g_node(pl_grammar *g, int32_t pos, int32_t parent, int *ntop) {
    uint32_t h = g_hash(pos, parent), free_slot = UINT32_MAX;
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t k = (h + i) & (G_HC_SIZE - 1);
        int32_t id = g->hc[k];
        if (id >= 0 && id < *ntop) {
            if (g->node[id].pos == pos && g->node[id].parent == parent) return id;
        } else if (free_slot == UINT32_MAX) {
            free_slot = k;
        }
    }
    if (*ntop >= G_NODE_CAP) {
        g->overflow = G_OV_NODES;
        return -1;
    }
    int32_t id = (*ntop)++;
    g->node[id] = g_mk(g, pos, parent);
    g->hc[free_slot != UINT32_MAX ? free_slot : (h & (G_HC_SIZE - 1))] = id;
    return id;
}

/* Make nodes [0, n) findable again (after they moved or were copied). */
static void g_hc_rebuild(pl_grammar *g, int n) {
    for (int i = 0; i < n; i++) g->hc[g_hash(g->node[i].pos, g->node[i].parent) & (G_HC_SIZE - 1)] = i;
}

/* Add stack (pos, parent) to the set under construction at set[so ..
 * so+*sl), using node `have` (>= 0) when it already is that stack. */
static void g_add(pl_grammar *g, int32_t pos, int32_t parent, int32_t have, int so, int *sl, int *ntop) {
    int32_t id = -1;
    if (pos < 0) {
        if (g->acc_gen == g->gen) return;
        g->acc_gen = g->gen;
    } else {
        id = have >= 0 ? have : g_node(g, pos, parent, ntop);
        if (id < 0 || g->stamp[id] == g->gen) return;
        g->stamp[id] = g->gen;
    }
    if (*sl >= G_MAX_STACKS) {
        g->overflow = G_OV_STACKS;
        return;
    }
    if (so + *sl >= G_SET_CAP) {
        g->overflow = G_OV_SETS;
        return;
    }
    g->set[so + (*sl)++] = id;
}

/* 1 the first time rule r is expanded on top of stack cont in this step
 * (a second expansion would add the same stacks again: diamonds such as
 * x ::= y | y, y ::= z | z ... would otherwise cost 2^depth). */
static int g_first_visit(pl_grammar *g, int32_t r, int32_t cont) {
    if (g->n_vis >= G_VIS_SIZE / 2) return 1; /* full: no memo, the work limit still holds */
    for (uint32_t k = g_hash(r, cont) & (G_VIS_SIZE - 1);; k = (k + 1) & (G_VIS_SIZE - 1)) {
        struct gvis *e = &g->vis[k];
        if (e->gen != g->gen) {
            e->gen = g->gen;
            e->rule = r;
            e->cont = cont;
            g->n_vis++;
            return 1;
        }
        if (e->rule == r && e->cont == cont) return 0;
    }
}

/* Expand (pos, parent) until every stack has a byte set on top: a depth-
 * first walk on an explicit stack (alternatives pushed in reverse, so the
 * order is the recursive one), since a chain of nullable items (a schema's
 * hundreds of optional properties, ("a"?){600}) is as deep as it is long. */
static void g_norm(pl_grammar *g, int32_t pos, int32_t parent, int so, int *sl, int *ntop) {
    struct gpend *st = g->pend;
    int sp = 0;
    st[sp].pos = pos;
    st[sp++].parent = parent;
    while (sp && !g->overflow) {
        sp--;
        pos = st[sp].pos;
        parent = st[sp].parent;
        if (++g->work > G_WORK_MAX) {
            g->overflow = G_OV_WORK;
            return;
        }
        const gel *e = &g->p.el[pos];
        if (e->kind == GE_BYTES) {
            g_add(g, pos, parent, -1, so, sl, ntop);
        } else if (e->kind == GE_REF) {
            int32_t cont = parent;
            if (g->p.el[pos + 1].kind >= GE_BYTES) { /* not the last element: remember where to resume */
                cont = g_node(g, pos + 1, parent, ntop);
                if (cont < 0) return;
            }
            if (!g_first_visit(g, e->val, cont)) continue;
            const gprog *p = &g->p;
            int a0 = p->rule_alt[e->val], a1 = p->rule_alt[e->val + 1];
            if (sp + (a1 - a0) > G_NORM_STACK) {
                g->overflow = G_OV_DEPTH;
                return;
            }
            for (int k = a1 - 1; k >= a0; k--) {
                st[sp].pos = p->alt[k];
                st[sp++].parent = cont;
            }
        } else if (parent < 0) { /* end of the root alternative */
            g_add(g, -1, -1, -1, so, sl, ntop);
        } else { /* pop */
            gnode pn = g->node[parent];
            if (g->p.el[pn.pos].kind == GE_BYTES) {
                g_add(g, pn.pos, pn.parent, parent, so, sl, ntop);
            } else {
                st[sp].pos = pn.pos; /* room: this entry was just popped */
                st[sp++].parent = pn.parent;
            }
        }
    }
}

static int g_set_need(const pl_grammar *g, int so, int sl) {
    int n = G_INF;
    for (int i = 0; i < sl; i++) {
        int32_t s = g->set[so + i];
        int k = s < 0 ? 0 : g->node[s].need;
        if (k < n) n = k;
    }
    return n;
}

/* State d from state d-1 by byte c; returns the set length (0: rejected). */
static int g_step(pl_grammar *g, int d, int c) {
    int so = g->atop_s[d - 1], sl = 0, ntop = g->atop_n[d - 1];
    const int32_t *in = g->set + g->soff[d - 1];
    int n_in = g->slen[d - 1];
    g_new_gen(g);
    g->work += n_in;
    for (int i = 0; i < n_in && !g->overflow; i++) {
        int32_t s = in[i];
        if (s < 0) continue;
        gnode nd = g->node[s];
        const uint32_t *w = g->p.bset[g->p.el[nd.pos].val];
        if (w[c >> 5] >> (c & 31) & 1) g_norm(g, nd.pos + 1, nd.parent, so, &sl, &ntop);
    }
    g->soff[d] = so;
    g->slen[d] = sl;
    g->atop_s[d] = so + sl;
    g->atop_n[d] = ntop;
    if (g->overflow) sl = 0;
    g->sneed[d] = sl ? g_set_need(g, so, sl) : G_INF;
    return sl;
}

static int g_stack_eq(const pl_grammar *g, int32_t a, int32_t b) {
    while (a != b) {
        if (a < 0 || b < 0 || g->node[a].pos != g->node[b].pos) return 0;
        a = g->node[a].parent;
        b = g->node[b].parent;
    }
    return 1;
}

/* Does the set at (so, sl) equal state 0, stack by stack in order? */
static int g_same_as_root(pl_grammar *g, int so, int sl) {
    if (sl != g->slen[0]) return 0;
    g->work += sl;
    for (int i = 0; i < sl; i++)
        if (!g_stack_eq(g, g->set[so + i], g->set[g->soff[0] + i])) return 0;
    return 1;
}

/* Make state d the new state 0: keep only the nodes it reaches, moved to
 * the bottom of the arena in order (a parent always precedes its child). */
static void g_commit(pl_grammar *g, int d) {
    int top = g->atop_n[d], so = g->soff[d], sl = g->slen[d];
    int32_t *rank = g->mark; /* -1: unreachable, else the new index */
    for (int i = 0; i < top; i++) rank[i] = -1;
    for (int i = 0; i < sl; i++)
        for (int32_t s = g->set[so + i]; s >= 0 && rank[s] < 0; s = g->node[s].parent) rank[s] = 0;
    int j = 0;
    for (int i = 0; i < top; i++) {
        if (rank[i] < 0) continue;
        gnode n = g->node[i];
        rank[i] = j;
        if (n.parent >= 0) n.parent = rank[n.parent];
        g->node[j++] = n;
    }
    for (int i = 0; i < sl; i++) {
        int32_t s = g->set[so + i];
        g->set[i] = s < 0 ? -1 : rank[s];
    }
    g->soff[0] = 0;
    g->slen[0] = sl;
    g->atop_s[0] = sl;
    g->atop_n[0] = j;
    g->sneed[0] = g->sneed[d];
    g->sroot[0] = 1;
    g_hc_rebuild(g, j);
}

static void g_reset_state(pl_grammar *g) {
    g->overflow = 0;
    if (g->kind == GK_JSON) {
        memset(&g->js[0], 0, sizeof g->js[0]);
        g->js[0].mode = J_VALUE;
        return;
    }
    int sl = 0, ntop = 0;
    const gprog *p = &g->p;
    g->work = 0;
    g_new_gen(g);
    for (int k = p->rule_alt[p->root]; k < p->rule_alt[p->root + 1]; k++)
        g_norm(g, p->alt[k], -1, 0, &sl, &ntop);
    g->soff[0] = 0;
    g->slen[0] = sl;
    g->atop_s[0] = sl;
    g->atop_n[0] = ntop;
    g->sneed[0] = g_set_need(g, 0, sl);
}

static int state_need(const pl_grammar *g) { return g->kind == GK_JSON ? j_need(&g->js[0]) : g->sneed[0]; }

int pl_grammar_is_complete(const pl_grammar *g) {
    if (!g) return 0;
    if (g->kind == GK_JSON) return j_complete(&g->js[0]);
    for (int i = 0; i < g->slen[0]; i++)
        if (g->set[g->soff[0] + i] < 0) return 1;
    return 0;
}

int pl_grammar_is_done(const pl_grammar *g) {
    if (!g) return 0;
    if (g->kind == GK_JSON) return g->js[0].depth == 0 && g->js[0].mode == J_AFTER;
    return g->slen[0] == 1 && g->set[g->soff[0]] < 0;
}

int pl_grammar_need(const pl_grammar *g) { return g ? state_need(g) : 0; }

const char *pl_grammar_last_error(const pl_grammar *g) { return g ? g->last_err : "no grammar"; }

/* ---- creation ---- */

static void g_free_scratch(pl_grammar *g) {
    free(g->js);
    free(g->soff);
    free(g->slen);
    free(g->sneed);
    free(g->atop_n);
    free(g->atop_s);
    free(g->sroot);
    g->js = NULL;
    g->soff = g->slen = g->sneed = g->atop_n = g->atop_s = NULL;
    g->sroot = NULL;
}

/* (Re)size the per-depth arrays to hold depths 0..cap, keeping state 0. */
static int g_alloc_depth(pl_grammar *g, int cap) {
    size_t n = (size_t)cap + 1;
    pl_grammar t = *g;
    t.js = calloc(n, sizeof *t.js);
    t.soff = calloc(n, sizeof(int32_t));
    t.slen = calloc(n, sizeof(int32_t));
    t.sneed = calloc(n, sizeof(int32_t));
    t.atop_n = calloc(n, sizeof(int32_t));
    t.atop_s = calloc(n, sizeof(int32_t));
    t.sroot = calloc(n, 1);
    if (!t.js || !t.soff || !t.slen || !t.sneed || !t.atop_n || !t.atop_s || !t.sroot) {
        g_free_scratch(&t);
        return -1;
    }
    if (g->js) { /* keep state 0 */
        t.js[0] = g->js[0];
        t.soff[0] = g->soff[0];
        t.slen[0] = g->slen[0];
        t.sneed[0] = g->sneed[0];
        t.atop_n[0] = g->atop_n[0];
        t.atop_s[0] = g->atop_s[0];
    }
    g_free_scratch(g);
    g->js = t.js;
    g->soff = t.soff;
    g->slen = t.slen;
    g->sneed = t.sneed;
    g->atop_n = t.atop_n;
    g->atop_s = t.atop_s;
    g->sroot = t.sroot;
    g->cap_depth = cap;
    return 0;
}

void pl_grammar_free(pl_grammar *g) {
    if (!g) return;
    pl_grammar_prog_free(&g->p);
    g_free_scratch(g);
    free(g->node);
    free(g->set);
    free(g->mark);
    free(g->hc);
    free(g->stamp);
    free(g->vis);
    free(g->pend);
    free(g->cneed);
    free(g->ckey);
    free(g);
}

/* The GBNF runtime's arenas and tables (hc all stale, stamps all old). */
static int g_alloc_gbnf(pl_grammar *g) {
    g->node = malloc(G_NODE_CAP * sizeof *g->node);
    g->set = malloc(G_SET_CAP * sizeof *g->set);
    g->mark = malloc(G_NODE_CAP * sizeof *g->mark);
    g->hc = malloc(G_HC_SIZE * sizeof *g->hc);
    g->stamp = calloc(G_NODE_CAP, sizeof *g->stamp);
    g->vis = calloc(G_VIS_SIZE, sizeof *g->vis);
    g->pend = malloc(G_NORM_STACK * sizeof *g->pend);
    if (!g->node || !g->set || !g->mark || !g->hc || !g->stamp || !g->vis || !g->pend) return -1;
    memset(g->hc, 0xFF, G_HC_SIZE * sizeof *g->hc);
    g->gen = 1;
    return 0;
}

static int g_new(pl_grammar **out, int kind, gprog *p, int max_depth, char *err, size_t errlen) {
    pl_grammar *g = calloc(1, sizeof *g);
    if (!g) goto nomem;
    g->kind = kind;
    g->max_depth = max_depth;
    if (p) {
        g->p = *p;
        memset(p, 0, sizeof *p);
        if (g_alloc_gbnf(g)) goto nomem;
    }
    if (g_alloc_depth(g, G_MIN_DEPTH)) goto nomem;
    g_reset_state(g);
    if (g->overflow) {
        g_limit_msg(g, "the start state");
        set_err(err, errlen, "%s", g->last_err);
        pl_grammar_free(g);
        return PL_GRAMMAR_ERR_LIMIT;
    }
    *out = g;
    return PL_OK;
nomem:
    if (p) pl_grammar_prog_free(p);
    pl_grammar_free(g);
    set_err(err, errlen, "grammar: out of memory");
    return PL_ERR_NOMEM;
}

int pl_grammar_new_gbnf(pl_grammar **out, const char *text, size_t len, char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    if (!text) {
        set_err(err, errlen, "grammar: no text");
        return PL_ERR_ARG;
    }
    gprog prog;
    if (pl_grammar_gbnf_compile(&prog, text, len, err, errlen)) return PL_GRAMMAR_ERR_SYNTAX;
    return g_new(out, GK_GBNF, &prog, 0, err, errlen);
}

int pl_grammar_new_json(pl_grammar **out, int max_depth, char *err, size_t errlen) {
    *out = NULL;
    if (max_depth == 0) max_depth = 32;
    if (max_depth < 1 || max_depth > 64) {
        set_err(err, errlen, "grammar: JSON depth %d is not in 1..64", max_depth);
        return PL_ERR_ARG;
    }
    return g_new(out, GK_JSON, NULL, max_depth, err, errlen);
}

static int g_alloc_cache(pl_grammar *g, const pl_grammar_vocab *v) {
    uint16_t *cn = malloc((size_t)G_CACHE * (size_t)v->n_vocab * sizeof *cn);
    int32_t *ck = malloc((size_t)G_CACHE * G_KEY_MAX * sizeof *ck);
    if (!cn || !ck) {
        free(cn);
        free(ck);
        return -1;
    }
    free(g->cneed);
    free(g->ckey);
    g->cneed = cn;
    g->ckey = ck;
    for (int i = 0; i < G_CACHE; i++) {
        g->ckeylen[i] = -1;
        g->cuse[i] = 0;
    }
    return 0;
}

int pl_grammar_bind(pl_grammar *g, const pl_grammar_vocab *v) {
    if (!g || !v) return PL_ERR_ARG;
    if ((v->max_len > g->cap_depth && g_alloc_depth(g, v->max_len)) || g_alloc_cache(g, v)) {
        set_err(g->last_err, sizeof g->last_err, "grammar: out of memory");
        return PL_ERR_NOMEM;
    }
    g->v = v;
    return PL_OK;
}

int pl_grammar_clone(pl_grammar **out, const pl_grammar *s) {
    *out = NULL;
    if (!s) return PL_ERR_ARG;
    pl_grammar *g = calloc(1, sizeof *g);
    if (!g) return PL_ERR_NOMEM;
    g->kind = s->kind;
    g->max_depth = s->max_depth;
    g->v = s->v;
    if (s->kind == GK_GBNF) {
        if (g_alloc_gbnf(g) || prog_copy(&g->p, &s->p)) goto fail;
    }
    if (g_alloc_depth(g, s->cap_depth)) goto fail;
    if (s->v && g_alloc_cache(g, s->v)) goto fail;
    g->js[0] = s->js[0];
    if (s->kind == GK_GBNF) {
        /* state 0 lives at the bottom of the arena after a commit, but the
         * first state may sit anywhere below its tops: copy through them */
        memcpy(g->node, s->node, (size_t)s->atop_n[0] * sizeof *g->node);
        memcpy(g->set, s->set, (size_t)s->atop_s[0] * sizeof *g->set);
        g->soff[0] = s->soff[0];
        g->slen[0] = s->slen[0];
        g->sneed[0] = s->sneed[0];
        g->atop_n[0] = s->atop_n[0];
        g->atop_s[0] = s->atop_s[0];
        g_hc_rebuild(g, s->atop_n[0]);
    }
    *out = g;
    return PL_OK;
fail:
    pl_grammar_free(g);
    return PL_ERR_NOMEM;
}

void pl_grammar_reset(pl_grammar *g) {
    if (g) g_reset_state(g);
}

/* ---- advancing ---- */

/* Run bytes s[0..n) (n <= cap_depth) from state 0 into states 1..n;
 * returns 1 if all were accepted. */
static int run_bytes(pl_grammar *g, const uint8_t *s, int n) {
    for (int d = 1; d <= n; d++) {
        if (g->kind == GK_JSON) {
            g->js[d] = g->js[d - 1];
            if (!j_step(&g->js[d], s[d - 1], g->max_depth)) return 0;
        } else if (!g_step(g, d, s[d - 1])) {
            return 0;
        }
    }
    return 1;
}

static void commit(pl_grammar *g, int n) {
    if (n == 0) return;
    if (g->kind == GK_JSON) g->js[0] = g->js[n];
    else g_commit(g, n);
}

int pl_grammar_accept_bytes(pl_grammar *g, const char *s, size_t n) {
    if (!g || (n && !s)) return PL_ERR_ARG;
    g->work = 0;
    while (n) {
        int k = n > (size_t)g->cap_depth ? g->cap_depth : (int)n;
        g->work = 0; /* per chunk: long input is not one token */
        if (!run_bytes(g, (const uint8_t *)s, k)) {
            if (g->overflow) {
                g_limit_msg(g, "one token");
                g->overflow = 0;
                return PL_GRAMMAR_ERR_LIMIT;
            }
            set_err(g->last_err, sizeof g->last_err, "grammar: input rejected");
            return PL_GRAMMAR_ERR_REJECT;
        }
        commit(g, k);
        s += k;
        n -= (size_t)k;
    }
    return PL_OK;
}

int pl_grammar_accept(pl_grammar *g, int32_t token) {
    if (!g || !g->v || token < 0 || token >= g->v->n_vocab) return PL_ERR_ARG;
    const pl_grammar_vocab *v = g->v;
    if (token == v->eos) {
        if (pl_grammar_is_complete(g)) return PL_OK;
        set_err(g->last_err, sizeof g->last_err, "grammar: end of text before the document is complete");
        return PL_GRAMMAR_ERR_REJECT;
    }
    if (v->len[token] == 0) {
        set_err(g->last_err, sizeof g->last_err, "grammar: token %d has no text", (int)token);
        return PL_GRAMMAR_ERR_REJECT;
    }
    return pl_grammar_accept_bytes(g, v->text + v->off[token], (size_t)v->len[token]);
}

/* ---- masking ---- */

/* Memoise the GBNF steps from state 0 by every byte (placed above state
 * 0 in the arena); the scan then starts above them. */
static void g_memo(pl_grammar *g) {
    g->sroot[0] = 1;
    for (int c = 0; c < 256; c++) {
        int sl = g_step(g, 1, c);
        g->m_off[c] = g->soff[1];
        g->m_len[c] = sl;
        g->m_need[c] = g->sneed[1];
        g->m_root[c] = sl && g_same_as_root(g, g->soff[1], sl);
        g->atop_n[0] = g->atop_n[1]; /* keep it */
        g->atop_s[0] = g->atop_s[1];
    }
}

/* Key of state 0: the JSON state, or every GBNF stack's positions from
 * the top down; -1 when too long to cache. */
static int state_key(pl_grammar *g) {
    if (g->kind == GK_JSON) {
        memcpy(g->key, &g->js[0], sizeof g->js[0]);
        return (int)(sizeof g->js[0] / sizeof(int32_t));
    }
    int n = 0;
    for (int i = 0; i < g->slen[0]; i++) {
        for (int32_t s = g->set[g->soff[0] + i]; s >= 0; s = g->node[s].parent) {
            if (n >= G_KEY_MAX - 1) return -1;
            g->key[n++] = g->node[s].pos;
        }
        g->key[n++] = -1;
    }
    return n;
}

/* One pass over the trie: nd[token] = the need after each token that
 * keeps the document valid (saturated at 0xFFFE); others stay 0xFFFF. */
static int scan(pl_grammar *g, uint16_t *nd) {
    const pl_grammar_vocab *v = g->v;
    const int nn = v->n_nodes;
    for (int i = 0; i < nn;) {
        int d = v->depth[i], c = v->byte[i], need;
        if (g->kind == GK_JSON) {
            jstate *s = &g->js[d];
            *s = g->js[d - 1];
            if (!j_step(s, c, g->max_depth)) {
                i = (int)v->skip[i];
                continue;
            }
            need = v->tok_off[i + 1] > v->tok_off[i] ? j_need(s) : 0;
        } else {
            if (g->sroot[d - 1]) { /* state d-1 equals state 0: memoised */
                if (!g->m_len[c]) {
                    i = (int)v->skip[i];
                    continue;
                }
                g->soff[d] = g->m_off[c];
                g->slen[d] = g->m_len[c];
                g->sneed[d] = g->m_need[c];
                g->sroot[d] = g->m_root[c];
                g->atop_n[d] = g->atop_n[d - 1];
                g->atop_s[d] = g->atop_s[d - 1];
            } else {
                int sl = g_step(g, d, c);
                if (g->overflow) return PL_GRAMMAR_ERR_LIMIT;
                if (!sl) {
                    i = (int)v->skip[i];
                    continue;
                }
                g->sroot[d] = g_same_as_root(g, g->soff[d], sl);
            }
            need = g->sneed[d];
        }
        uint16_t n16 = (uint16_t)(need < 0xFFFE ? need : 0xFFFE);
        for (uint32_t k = v->tok_off[i]; k < v->tok_off[i + 1]; k++) nd[v->tok[k]] = n16;
        i++;
    }
    return 0;
}

int pl_grammar_steer(pl_grammar *g, float *logits, int tokens_left) {
    if (!g || !logits) return PL_ERR_ARG;
    if (!g->v) {
        set_err(g->last_err, sizeof g->last_err, "grammar: not bound to a vocabulary");
        return PL_ERR_ARG;
    }
    const pl_grammar_vocab *v = g->v;
    const int nv = v->n_vocab;
    /* the cached masks of this state, or a fresh scan into the LRU slot */
    int kl = state_key(g), e = -1;
    for (int i = 0; i < G_CACHE && kl >= 0; i++)
        if (g->ckeylen[i] == kl && !memcmp(g->ckey + (size_t)i * G_KEY_MAX, g->key, (size_t)kl * sizeof *g->key)) {
            e = i;
            break;
        }
    if (e >= 0) {
        g->hits++;
    } else {
        g->misses++;
        e = 0;
        for (int i = 1; i < G_CACHE; i++)
            if (g->cuse[i] < g->cuse[e]) e = i;
        uint16_t *nd = g->cneed + (size_t)e * nv;
        memset(nd, 0xFF, (size_t)nv * sizeof *nd);
        g->ckeylen[e] = -1;
        int rc = 0;
        if (g->kind == GK_GBNF) {
            int top_n = g->atop_n[0], top_s = g->atop_s[0];
            g->overflow = 0;
            g->work = 0;
            g_memo(g);
            rc = g->overflow ? PL_GRAMMAR_ERR_LIMIT : scan(g, nd);
            g->atop_n[0] = top_n; /* drop the memo */
            g->atop_s[0] = top_s;
            if (rc < 0) g_limit_msg(g, "one token mask");
            g->overflow = 0;
        } else {
            rc = scan(g, nd);
        }
        if (rc < 0) return rc;
        if (kl >= 0) {
            memcpy(g->ckey + (size_t)e * G_KEY_MAX, g->key, (size_t)kl * sizeof *g->key);
            g->ckeylen[e] = kl;
        }
    }
    g->cuse[e] = ++g->tick;
    const uint16_t *nd = g->cneed + (size_t)e * nv;

    int need = state_need(g), limit = 0xFFFE, complete = pl_grammar_is_complete(g);
    if (tokens_left > 0 && tokens_left <= 0xFFFE) {
        limit = tokens_left - 1;
        if (tokens_left - 1 < need + G_MARGIN && need - 1 < limit) limit = need - 1;
    }
    int count = 0, mn = 0xFFFF;
    for (int i = 0; i < nv; i++) {
        count += nd[i] <= limit;
        if (nd[i] < mn) mn = nd[i];
    }
    if (count == 0 && mn < 0xFFFF && tokens_left > 0 && !complete)
        limit = mn; /* the budget cannot be met (too small from the start, or
                       no single-byte closer): the shortest-need tokens then */
    float eos_logit = v->eos >= 0 ? logits[v->eos] : 0.0f;
    count = 0;
    for (int i = 0; i < nv; i++) {
        if (nd[i] <= limit) count++;
        else logits[i] = -INFINITY;
    }
    if (v->eos >= 0) {
        if (nd[v->eos] <= limit) count--;
        if (complete) {
            count++;
            logits[v->eos] = eos_logit;
        } else {
            logits[v->eos] = -INFINITY;
        }
    }
    if (count == 0) {
        set_err(g->last_err, sizeof g->last_err,
                "grammar: no token of the vocabulary can continue the document");
        return PL_GRAMMAR_ERR_DEAD_END;
    }
    return count;
}

int pl_grammar_apply(pl_grammar *g, float *logits) { return pl_grammar_steer(g, logits, 0); }

void pl_grammar_stats(const pl_grammar *g, uint64_t *cache_hits, uint64_t *cache_misses) {
    *cache_hits = g ? g->hits : 0;
    *cache_misses = g ? g->misses : 0;
}
