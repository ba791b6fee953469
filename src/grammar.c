/* grammar.c - grammar-constrained sampling.
 *
 * GBNF text is parsed into rules of byte-level elements: every character
 * class is rewritten at compile time into alternatives of UTF-8 byte
 * ranges, so the runtime is a pushdown recognizer over bytes (llama.cpp's
 * stacks, here linked lists with shared tails in a bump arena) and a token
 * that ends mid-character needs no special case. The JSON mode is a
 * hand-written state machine behind the same handle. Masking walks a
 * preorder trie of the vocabulary once per step and skips a subtree as soon
 * as its prefix is rejected; for GBNF, steps from the current state are
 * memoised per byte and a state equal to the current one reuses them, so a
 * string body costs O(1) per trie node. Every state knows the length of its
 * shortest completion ("need", bytes), which drives budget steering.
 * Not here: the JSON Schema compiler (json_schema.c), sampling,
 * detokenisation, the CLI. */
#include "grammar.h"
#include "grammar_impl.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G_INF 0x3fffffff
#define G_MARGIN 3        /* steering: tighten when tokens_left-1 < need + margin */
#define G_MIN_DEPTH 64    /* scratch depth before binding (accept_bytes chunk) */
#define G_NODE_CAP 65536  /* stack nodes in the arena */
#define G_SET_CAP 65536   /* stack references in all sets */
#define G_NORM_DEPTH 512  /* epsilon-expansion recursion guard */
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

/* Grow *p (elements of size es) so it holds at least need; 0 or -1. */
static int grow(void **p, int *cap, int need, size_t es) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > INT_MAX / 2) return -1;
        nc *= 2;
    }
    void *q = realloc(*p, (size_t)nc * es);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ======================================================================
 * Compiled program: rules of elements over bytes.
 * ====================================================================== */

enum { GE_END, GE_ALT, GE_BYTES, GE_REF };
typedef struct { int32_t kind, val; } gel;

typedef struct gprog {
    gel *el;            /* [n_el] every rule's alternatives, ALT-separated, END-terminated */
    int32_t *min_rest;  /* [n_el] bytes to finish the alternative from this element */
    int32_t *alt;       /* [n_alt] start element of each alternative, grouped by rule */
    int32_t *rule_alt;  /* [n_rules+1] rule r's alternatives: alt[rule_alt[r] .. rule_alt[r+1]) */
    uint32_t (*bset)[8];/* [n_bset] 256-bit byte sets */
    int n_el, n_alt, n_rules, n_bset, root;
} gprog;

static void prog_free(gprog *p) {
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
        prog_free(d);
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
 * GBNF parser
 * ====================================================================== */

typedef struct brule {
    const char *name; /* points into the source (NULL: generated) */
    int nlen;
    gel *el;
    int n, cap;
    int defined;
    size_t def_at, ref_at; /* source offsets for messages */
} brule;

typedef struct gparser {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    int failed;
    brule *r;
    int nr, rcap;
    uint32_t (*bset)[8];
    int nbset, bsetcap;
    int nest;
} gparser;

static void perr(gparser *P, size_t at, const char *fmt, ...) {
    if (P->failed) return;
    P->failed = 1;
    if (!P->err || !P->errlen) return;
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < P->len; i++) {
        unsigned char c = (unsigned char)P->s[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            col++; /* columns count characters, not UTF-8 bytes */
        }
    }
    int k = snprintf(P->err, P->errlen, "grammar:%d:%d: ", line, col);
    if (k < 0 || (size_t)k >= P->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err + k, P->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static int rule_new(gparser *P, const char *name, int nlen, size_t at) {
    if (grow((void **)&P->r, &P->rcap, P->nr + 1, sizeof *P->r)) {
        perr(P, at, "out of memory");
        return -1;
    }
    brule *r = &P->r[P->nr];
    memset(r, 0, sizeof *r);
    r->name = name;
    r->nlen = nlen;
    r->def_at = r->ref_at = at;
    r->defined = name == NULL;
    return P->nr++;
}

static int rule_find(gparser *P, const char *name, int nlen) {
    for (int i = 0; i < P->nr; i++)
        if (P->r[i].name && P->r[i].nlen == nlen && !memcmp(P->r[i].name, name, (size_t)nlen)) return i;
    return -1;
}

static void emit(gparser *P, int rid, int kind, int val) {
    if (P->failed) return;
    brule *r = &P->r[rid];
    if (grow((void **)&r->el, &r->cap, r->n + 1, sizeof *r->el)) {
        perr(P, P->pos, "out of memory");
        return;
    }
    r->el[r->n].kind = kind;
    r->el[r->n].val = val;
    r->n++;
}

static int bset_id(gparser *P, const uint32_t w[8]) {
    for (int i = 0; i < P->nbset; i++)
        if (!memcmp(P->bset[i], w, sizeof(uint32_t) * 8)) return i;
    if (grow((void **)&P->bset, &P->bsetcap, P->nbset + 1, sizeof *P->bset)) {
        perr(P, P->pos, "out of memory");
        return 0;
    }
    memcpy(P->bset[P->nbset], w, sizeof(uint32_t) * 8);
    return P->nbset++;
}

static void emit_range(gparser *P, int rid, unsigned lo, unsigned hi) {
    uint32_t w[8] = {0};
    for (unsigned b = lo; b <= hi; b++) w[b >> 5] |= 1u << (b & 31);
    emit(P, rid, GE_BYTES, bset_id(P, w));
}

/* Emit the code point range [lo, hi] (>= 0x80) into rule g as alternatives
 * of byte-range sequences (the utf8-ranges split of regex engines: cut at
 * encoded-length boundaries and until every continuation byte spans a full
 * or aligned range), skipping surrogates. */
static void utf8_split(gparser *P, int g, uint32_t lo, uint32_t hi) {
    if (lo > hi || P->failed) return;
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800) utf8_split(P, g, lo, 0xD7FF);
        if (hi > 0xDFFF) utf8_split(P, g, 0xE000, hi);
        return;
    }
    static const uint32_t maxv[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= maxv[i] && hi > maxv[i]) {
            utf8_split(P, g, lo, maxv[i]);
            utf8_split(P, g, maxv[i] + 1, hi);
            return;
        }
    unsigned char a[4], b[4];
    int n = utf8_encode(lo, a);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                utf8_split(P, g, lo, lo | m);
                utf8_split(P, g, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                utf8_split(P, g, lo, (hi & ~m) - 1);
                utf8_split(P, g, hi & ~m, hi);
                return;
            }
        }
    }
    utf8_encode(hi, b);
    if (P->r[g].n) emit(P, g, GE_ALT, 0);
    for (int i = 0; i < n; i++) emit_range(P, g, a[i], b[i]);
}

typedef struct { uint32_t lo, hi; } cprange;

static int cmp_range(const void *a, const void *b) {
    const cprange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Emit a set of code-point ranges as one element of rule rid: a byte set
 * when it is ASCII only, else a reference to a generated rule. */
static void emit_class(gparser *P, int rid, cprange *rg, int n, int negate, size_t at) {
    if (P->failed) return;
    qsort(rg, (size_t)n, sizeof *rg, cmp_range);
    int m = 0; /* merge */
    for (int i = 0; i < n; i++) {
        if (m && rg[i].lo <= rg[m - 1].hi + 1) {
            if (rg[i].hi > rg[m - 1].hi) rg[m - 1].hi = rg[i].hi;
        } else {
            rg[m++] = rg[i];
        }
    }
    n = m;
    if (negate) { /* complement in place: at most n+1 ranges (the caller left room) */
        cprange tmp[1];
        uint32_t next = 0;
        int k = 0;
        for (int i = 0; i < n; i++) {
            cprange cur = rg[i];
            if (cur.lo > next) {
                tmp[0].lo = next;
                tmp[0].hi = cur.lo - 1;
                rg[k++] = tmp[0];
            }
            next = cur.hi + 1;
        }
        if (next <= 0x10FFFF) {
            rg[k].lo = next;
            rg[k].hi = 0x10FFFF;
            k++;
        }
        n = k;
    }
    if (n == 0) {
        perr(P, at, "empty character class");
        return;
    }
    uint32_t ascii[8] = {0};
    int has_ascii = 0, has_multi = 0;
    for (int i = 0; i < n; i++) {
        for (uint32_t c = rg[i].lo; c <= rg[i].hi && c < 0x80; c++) {
            ascii[c >> 5] |= 1u << (c & 31);
            has_ascii = 1;
        }
        if (rg[i].hi >= 0x80) has_multi = 1;
    }
    if (!has_multi) {
        emit(P, rid, GE_BYTES, bset_id(P, ascii));
        return;
    }
    int g = rule_new(P, NULL, 0, at);
    if (g < 0) return;
    if (has_ascii) emit(P, g, GE_BYTES, bset_id(P, ascii));
    for (int i = 0; i < n; i++)
        if (rg[i].hi >= 0x80) utf8_split(P, g, rg[i].lo < 0x80 ? 0x80 : rg[i].lo, rg[i].hi);
    emit(P, rid, GE_REF, g);
}

static void parse_space(gparser *P, int newline_ok) {
    while (P->pos < P->len) {
        char c = P->s[P->pos];
        if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && newline_ok)) {
            P->pos++;
        } else if (c == '#') {
            while (P->pos < P->len && P->s[P->pos] != '\n') P->pos++;
        } else {
            break;
        }
    }
}

static int is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* One character of a literal or class (escape or raw UTF-8) -> code point. */
static uint32_t parse_char(gparser *P) {
    size_t at = P->pos;
    const unsigned char *s = (const unsigned char *)P->s;
    if (P->pos >= P->len) {
        perr(P, at, "unexpected end of input");
        return 0;
    }
    unsigned c = s[P->pos++];
    if (c == '\\') {
        if (P->pos >= P->len) {
            perr(P, at, "unexpected end of input after '\\'");
            return 0;
        }
        unsigned e = s[P->pos++];
        int nd = 0;
        switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '0': return 0;
        case '\\': case '"': case '\'': case '[': case ']': case '-': case '/': case '^': return e;
        case 'x': nd = 2; break;
        case 'u': nd = 4; break;
        case 'U': nd = 8; break;
        default:
            perr(P, at, "unknown escape '\\%c'", e >= 32 && e < 127 ? (char)e : '?');
            return 0;
        }
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            int h = P->pos < P->len ? hexval(s[P->pos]) : -1;
            if (h < 0) {
                perr(P, P->pos, "expected %d hex digits in escape", nd);
                return 0;
            }
            v = v * 16 + (uint32_t)h;
            P->pos++;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
            perr(P, at, "escape is not a Unicode scalar value");
            return 0;
        }
        return v;
    }
    if (c < 0x80) return c;
    int n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (c >= 0xF5) n = 0;
    uint32_t v = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < n; i++) {
        if (P->pos >= P->len || (s[P->pos] & 0xC0) != 0x80) {
            n = 0;
            break;
        }
        v = v << 6 | (s[P->pos++] & 63);
    }
    if (!n || (n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        perr(P, at, "invalid UTF-8 in grammar");
        return 0;
    }
    return v;
}

/* Replace the item el[start..n) of rule rid by item{min,max} (max -1: no bound). */
static void repeat(gparser *P, int rid, int start, int min, int max, size_t at) {
    if (P->failed) return;
    int n = P->r[rid].n - start;
    if (n <= 0) {
        perr(P, at, "expected an item before the repetition");
        return;
    }
    gel *item = malloc((size_t)n * sizeof *item);
    if (!item) {
        perr(P, at, "out of memory");
        return;
    }
    memcpy(item, P->r[rid].el + start, (size_t)n * sizeof *item);
    P->r[rid].n = start;
    for (int k = 0; k < min; k++)
        for (int i = 0; i < n; i++) emit(P, rid, item[i].kind, item[i].val);
    if (max < 0) { /* R ::= item R | (empty) */
        int R = rule_new(P, NULL, 0, at);
        if (R >= 0) {
            for (int i = 0; i < n; i++) emit(P, R, item[i].kind, item[i].val);
            emit(P, R, GE_REF, R);
            emit(P, R, GE_ALT, 0);
            emit(P, rid, GE_REF, R);
        }
    } else if (max > min) { /* R_k ::= item R_{k-1} | (empty) */
        int last = -1;
        for (int k = 0; k < max - min && !P->failed; k++) {
            int R = rule_new(P, NULL, 0, at);
            if (R < 0) break;
            for (int i = 0; i < n; i++) emit(P, R, item[i].kind, item[i].val);
            if (last >= 0) emit(P, R, GE_REF, last);
            emit(P, R, GE_ALT, 0);
            last = R;
        }
        if (last >= 0) emit(P, rid, GE_REF, last);
    }
    free(item);
}

static int parse_int(gparser *P, int *v) {
    if (P->pos >= P->len || P->s[P->pos] < '0' || P->s[P->pos] > '9') return 0;
    long x = 0;
    while (P->pos < P->len && P->s[P->pos] >= '0' && P->s[P->pos] <= '9') {
        x = x * 10 + (P->s[P->pos++] - '0');
        if (x > 100000) x = 100000;
    }
    *v = (int)x;
    return 1;
}

static void parse_alternates(gparser *P, int rid, int nested);

static void parse_sequence(gparser *P, int rid, int nested) {
    cprange *rg = NULL;
    int nrg = 0, rgcap = 0;
    while (P->pos < P->len && !P->failed) {
        char c = P->s[P->pos];
        size_t at = P->pos;
        int start = P->r[rid].n;
        if (c == '"') {
            P->pos++;
            while (!P->failed) {
                if (P->pos >= P->len) {
                    perr(P, at, "unterminated string literal");
                    break;
                }
                if (P->s[P->pos] == '"') {
                    P->pos++;
                    break;
                }
                uint32_t cp = parse_char(P);
                unsigned char b[4];
                int k = utf8_encode(cp, b);
                for (int i = 0; i < k; i++) emit_range(P, rid, b[i], b[i]);
            }
        } else if (c == '[' || c == '.') {
            int negate = 0;
            nrg = 0;
            P->pos++;
            if (c == '.') {
                negate = 1; /* any character: the complement of nothing */
            } else {
                if (P->pos < P->len && P->s[P->pos] == '^') {
                    negate = 1;
                    P->pos++;
                }
                while (!P->failed) {
                    if (P->pos >= P->len) {
                        perr(P, at, "unterminated character class");
                        break;
                    }
                    if (P->s[P->pos] == ']') {
                        P->pos++;
                        break;
                    }
                    size_t cat = P->pos;
                    uint32_t lo = parse_char(P), hi = lo;
                    if (P->pos + 1 < P->len && P->s[P->pos] == '-' && P->s[P->pos + 1] != ']') {
                        P->pos++;
                        hi = parse_char(P);
                        if (hi < lo) perr(P, cat, "character range is out of order");
                    }
                    if (grow((void **)&rg, &rgcap, nrg + 2, sizeof *rg)) {
                        perr(P, cat, "out of memory");
                        break;
                    }
                    rg[nrg].lo = lo;
                    rg[nrg].hi = hi;
                    nrg++;
                }
            }
            if (grow((void **)&rg, &rgcap, nrg + 2, sizeof *rg)) perr(P, at, "out of memory");
            if (!P->failed) emit_class(P, rid, rg, nrg, negate, at);
        } else if (is_name_char(c)) {
            size_t b = P->pos;
            while (P->pos < P->len && is_name_char(P->s[P->pos])) P->pos++;
            int nlen = (int)(P->pos - b);
            int id = rule_find(P, P->s + b, nlen);
            if (id < 0) {
                id = rule_new(P, P->s + b, nlen, b);
                if (id >= 0) P->r[id].defined = 0;
            }
            if (id >= 0) emit(P, rid, GE_REF, id);
        } else if (c == '(') {
            P->pos++;
            if (++P->nest > 200) {
                perr(P, at, "groups nested too deeply");
                break;
            }
            parse_space(P, 1);
            int g = rule_new(P, NULL, 0, at);
            if (g < 0) break;
            parse_alternates(P, g, 1);
            P->nest--;
            if (P->failed) break;
            if (P->pos >= P->len || P->s[P->pos] != ')') {
                perr(P, P->pos, "expected ')'");
                break;
            }
            P->pos++;
            emit(P, rid, GE_REF, g);
        } else {
            break;
        }
        parse_space(P, nested);
        /* postfix repetition operators */
        while (P->pos < P->len && !P->failed) {
            char o = P->s[P->pos];
            size_t oat = P->pos;
            if (o == '*' || o == '+' || o == '?') {
                P->pos++;
                repeat(P, rid, start, o == '+', o == '?' ? 1 : -1, oat);
            } else if (o == '{') {
                int mn = 0, mx = -1;
                P->pos++;
                parse_space(P, nested);
                if (!parse_int(P, &mn)) {
                    perr(P, P->pos, "expected a number after '{'");
                    break;
                }
                parse_space(P, nested);
                if (P->pos < P->len && P->s[P->pos] == ',') {
                    P->pos++;
                    parse_space(P, nested);
                    if (!parse_int(P, &mx)) mx = -1;
                } else {
                    mx = mn;
                }
                parse_space(P, nested);
                if (P->pos >= P->len || P->s[P->pos] != '}') {
                    perr(P, P->pos, "expected '}' to close the repetition");
                    break;
                }
                P->pos++;
                if (mn > 1000 || mx > 1000 || (mx >= 0 && mx < mn)) {
                    perr(P, oat, "bad repetition bounds {%d,%d}", mn, mx);
                    break;
                }
                repeat(P, rid, start, mn, mx, oat);
            } else {
                break;
            }
            parse_space(P, nested);
        }
    }
    free(rg);
}

static void parse_alternates(gparser *P, int rid, int nested) {
    parse_sequence(P, rid, nested);
    while (!P->failed && P->pos < P->len && P->s[P->pos] == '|') {
        P->pos++;
        emit(P, rid, GE_ALT, 0);
        parse_space(P, 1);
        parse_sequence(P, rid, nested);
    }
}

static void parse_rule(gparser *P) {
    size_t at = P->pos;
    while (P->pos < P->len && is_name_char(P->s[P->pos])) P->pos++;
    int nlen = (int)(P->pos - at);
    if (nlen == 0) {
        perr(P, at, "expected a rule name");
        return;
    }
    parse_space(P, 0);
    if (P->len - P->pos < 3 || memcmp(P->s + P->pos, "::=", 3)) {
        perr(P, P->pos, "expected '::=' after rule name");
        return;
    }
    P->pos += 3;
    int id = rule_find(P, P->s + at, nlen);
    if (id >= 0 && P->r[id].defined) {
        perr(P, at, "rule '%.*s' is defined twice", nlen, P->s + at);
        return;
    }
    if (id < 0) id = rule_new(P, P->s + at, nlen, at);
    if (id < 0) return;
    P->r[id].defined = 1;
    P->r[id].def_at = at;
    parse_space(P, 1);
    parse_alternates(P, id, 0);
    if (P->failed) return;
    if (P->pos < P->len && P->s[P->pos] != '\n') {
        char c = P->s[P->pos];
        if (c == ')')
            perr(P, P->pos, "unmatched ')'");
        else
            perr(P, P->pos, "expected newline or end of input, found '%c'", c >= 32 && c < 127 ? c : '?');
    }
}

/* Flatten the parsed rules, check them, compute the shortest lengths. */
static int compile(gparser *P, gprog *g) {
    memset(g, 0, sizeof *g);
    int *rstart = NULL, *rmin = NULL, *color = NULL, *stk = NULL;
    for (int r = 0; r < P->nr; r++)
        if (!P->r[r].defined) {
            perr(P, P->r[r].ref_at, "undefined rule '%.*s'", P->r[r].nlen, P->r[r].name);
            return -1;
        }
    g->root = rule_find(P, "root", 4);
    if (g->root < 0) {
        perr(P, 0, "no 'root' rule");
        return -1;
    }
    g->n_rules = P->nr;
    for (int r = 0; r < P->nr; r++) {
        g->n_el += P->r[r].n + 1;
        g->n_alt += 1;
        for (int i = 0; i < P->r[r].n; i++) g->n_alt += P->r[r].el[i].kind == GE_ALT;
    }
    g->el = malloc((size_t)g->n_el * sizeof *g->el);
    g->min_rest = malloc((size_t)g->n_el * sizeof *g->min_rest);
    g->alt = malloc((size_t)g->n_alt * sizeof *g->alt);
    g->rule_alt = malloc((size_t)(g->n_rules + 1) * sizeof *g->rule_alt);
    g->bset = malloc((size_t)P->nbset * sizeof *g->bset + 1);
    rstart = malloc((size_t)P->nr * sizeof *rstart);
    rmin = malloc((size_t)P->nr * sizeof *rmin);
    color = calloc((size_t)P->nr, sizeof *color);
    stk = malloc((size_t)P->nr * 2 * sizeof *stk + 1);
    if (!g->el || !g->min_rest || !g->alt || !g->rule_alt || !g->bset || !rstart || !rmin || !color || !stk) {
        perr(P, 0, "out of memory");
        goto fail;
    }
    g->n_bset = P->nbset;
    memcpy(g->bset, P->bset, (size_t)P->nbset * sizeof *g->bset);
    int e = 0, a = 0;
    for (int r = 0; r < P->nr; r++) {
        rstart[r] = e;
        g->rule_alt[r] = a;
        g->alt[a++] = e;
        for (int i = 0; i < P->r[r].n; i++) {
            g->el[e++] = P->r[r].el[i];
            if (P->r[r].el[i].kind == GE_ALT) g->alt[a++] = e;
        }
        g->el[e].kind = GE_END;
        g->el[e++].val = 0;
    }
    g->rule_alt[P->nr] = a;
    /* shortest expansion of every rule: fixpoint from "infinite" */
    for (int r = 0; r < P->nr; r++) rmin[r] = G_INF;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int r = 0; r < P->nr; r++)
            for (int k = g->rule_alt[r]; k < g->rule_alt[r + 1]; k++) {
                long sum = 0;
                for (int p = g->alt[k]; g->el[p].kind >= GE_BYTES; p++) {
                    sum += g->el[p].kind == GE_BYTES ? 1 : rmin[g->el[p].val];
                    if (sum >= G_INF) break;
                }
                if (sum < rmin[r]) {
                    rmin[r] = (int)sum;
                    changed = 1;
                }
            }
    }
    for (int r = 0; r < P->nr; r++)
        for (int k = g->rule_alt[r]; k < g->rule_alt[r + 1]; k++) {
            int p = g->alt[k], q = p;
            while (g->el[q].kind >= GE_BYTES) q++;
            g->min_rest[q] = 0;
            for (int i = q - 1; i >= p; i--)
            {
                long m = (long)g->min_rest[i + 1] + (g->el[i].kind == GE_BYTES ? 1 : rmin[g->el[i].val]);
                g->min_rest[i] = m > G_INF ? G_INF : (int32_t)m;
            }
        }
    /* left recursion: a cycle through references in first position
     * (past nullable ones) would expand forever. Edges first, then an
     * iterative DFS; rstart[] is reused as the edge offsets. */
    {
        int ne = 0;
        int *edge = malloc((size_t)g->n_el * sizeof *edge + 1), *eoff = malloc((size_t)(P->nr + 1) * sizeof *eoff);
        if (!edge || !eoff) {
            free(edge);
            free(eoff);
            perr(P, 0, "out of memory");
            goto fail;
        }
        for (int r = 0; r < P->nr; r++) {
            eoff[r] = ne;
            for (int k = g->rule_alt[r]; k < g->rule_alt[r + 1]; k++)
                for (int p = g->alt[k]; g->el[p].kind == GE_REF; p++) {
                    edge[ne++] = g->el[p].val;
                    if (rmin[g->el[p].val] > 0) break;
                }
        }
        eoff[P->nr] = ne;
        int bad = -1;
        for (int r0 = 0; r0 < P->nr && bad < 0; r0++) {
            if (color[r0]) continue;
            int sp = 0;
            stk[sp++] = r0;
            stk[sp++] = eoff[r0];
            color[r0] = 1;
            while (sp && bad < 0) {
                int r = stk[sp - 2], k = stk[sp - 1];
                if (k >= eoff[r + 1]) {
                    color[r] = 2;
                    sp -= 2;
                    continue;
                }
                stk[sp - 1]++;
                int t = edge[k];
                if (color[t] == 1) {
                    bad = t;
                    /* name the innermost named rule on the cycle */
                    for (int q = sp - 2; q >= 0 && !P->r[bad].name; q -= 2)
                        if (P->r[stk[q]].name) bad = stk[q];
                } else if (!color[t]) {
                    color[t] = 1;
                    stk[sp++] = t;
                    stk[sp++] = eoff[t];
                }
            }
        }
        free(edge);
        free(eoff);
        if (bad >= 0) {
            if (P->r[bad].name)
                perr(P, P->r[bad].def_at, "left recursion in rule '%.*s'", P->r[bad].nlen, P->r[bad].name);
            else
                perr(P, P->r[bad].def_at, "left recursion through this group");
            goto fail;
        }
    }
    /* a rule that can never finish: name one that refers to itself (the
     * cause) rather than the rules that merely use it */
    {
        int bad = -1;
        for (int r = 0; r < P->nr; r++) {
            if (rmin[r] < G_INF) continue;
            int self = 0;
            for (int p = rstart[r]; g->el[p].kind != GE_END; p++) self |= g->el[p].kind == GE_REF && g->el[p].val == r;
            if (bad < 0 || (self && P->r[r].name && !(P->r[bad].name && bad != g->root))) bad = r;
            if (self && P->r[r].name) break;
        }
        if (bad >= 0) {
            if (P->r[bad].name)
                perr(P, P->r[bad].def_at, "rule '%.*s' can never finish", P->r[bad].nlen, P->r[bad].name);
            else
                perr(P, P->r[bad].def_at, "this group can never finish");
            goto fail;
        }
    }
    free(rstart);
    free(rmin);
    free(color);
    free(stk);
    return 0;
fail:
    free(rstart);
    free(rmin);
    free(color);
    free(stk);
    prog_free(g);
    return -1;
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
    int overflow;
};

static gnode g_mk(const pl_grammar *g, int32_t pos, int32_t parent) {
    gnode n;
    n.pos = pos;
    n.parent = parent;
    n.need = g->p.min_rest[pos] + (parent >= 0 ? g->node[parent].need : 0);
    return n;
}

/* Add stack (pos, parent) to the set under construction at set[so ..
 * so+*sl), reusing node `have` (>= 0) when it already is that stack. */
static void g_add(pl_grammar *g, int32_t pos, int32_t parent, int32_t have, int so, int *sl, int *ntop) {
    for (int i = 0; i < *sl; i++) {
        int32_t s = g->set[so + i];
        if (pos < 0 ? s < 0 : (s >= 0 && g->node[s].pos == pos && g->node[s].parent == parent)) return;
    }
    if (so + *sl >= G_SET_CAP) {
        g->overflow = 1;
        return;
    }
    int32_t id = -1;
    if (pos >= 0) {
        id = have;
        if (id < 0) {
            if (*ntop >= G_NODE_CAP) {
                g->overflow = 1;
                return;
            }
            id = (*ntop)++;
            g->node[id] = g_mk(g, pos, parent);
        }
    }
    g->set[so + (*sl)++] = id;
}

/* Expand (pos, parent) until every stack has a byte set on top. */
static void g_norm(pl_grammar *g, int32_t pos, int32_t parent, int so, int *sl, int *ntop, int lvl) {
    if (lvl > G_NORM_DEPTH) {
        g->overflow = 1;
        return;
    }
    const gel *e = &g->p.el[pos];
    if (e->kind == GE_BYTES) {
        g_add(g, pos, parent, -1, so, sl, ntop);
    } else if (e->kind == GE_REF) {
        int32_t cont = parent;
        if (g->p.el[pos + 1].kind >= GE_BYTES) { /* not the last element: remember where to resume */
            if (*ntop >= G_NODE_CAP) {
                g->overflow = 1;
                return;
            }
            cont = (*ntop)++;
            g->node[cont] = g_mk(g, pos + 1, parent);
        }
        const gprog *p = &g->p;
        for (int k = p->rule_alt[e->val]; k < p->rule_alt[e->val + 1]; k++)
            g_norm(g, p->alt[k], cont, so, sl, ntop, lvl + 1);
    } else if (parent < 0) { /* end of the root alternative */
        g_add(g, -1, -1, -1, so, sl, ntop);
    } else { /* pop */
        gnode pn = g->node[parent];
        if (g->p.el[pn.pos].kind == GE_BYTES) g_add(g, pn.pos, pn.parent, parent, so, sl, ntop);
        else g_norm(g, pn.pos, pn.parent, so, sl, ntop, lvl + 1);
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
    for (int i = 0; i < n_in; i++) {
        int32_t s = in[i];
        if (s < 0) continue;
        gnode nd = g->node[s];
        const uint32_t *w = g->p.bset[g->p.el[nd.pos].val];
        if (w[c >> 5] >> (c & 31) & 1) g_norm(g, nd.pos + 1, nd.parent, so, &sl, &ntop, 0);
    }
    g->soff[d] = so;
    g->slen[d] = sl;
    g->atop_s[d] = so + sl;
    g->atop_n[d] = ntop;
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
static int g_same_as_root(const pl_grammar *g, int so, int sl) {
    if (sl != g->slen[0]) return 0;
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
    for (int k = p->rule_alt[p->root]; k < p->rule_alt[p->root + 1]; k++)
        g_norm(g, p->alt[k], -1, 0, &sl, &ntop, 0);
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
    prog_free(&g->p);
    g_free_scratch(g);
    free(g->node);
    free(g->set);
    free(g->mark);
    free(g->cneed);
    free(g->ckey);
    free(g);
}

static int g_new(pl_grammar **out, int kind, gprog *p, int max_depth, char *err, size_t errlen) {
    pl_grammar *g = calloc(1, sizeof *g);
    if (!g) goto nomem;
    g->kind = kind;
    g->max_depth = max_depth;
    if (p) {
        g->p = *p;
        memset(p, 0, sizeof *p);
        g->node = malloc(G_NODE_CAP * sizeof *g->node);
        g->set = malloc(G_SET_CAP * sizeof *g->set);
        g->mark = malloc(G_NODE_CAP * sizeof *g->mark);
        if (!g->node || !g->set || !g->mark) goto nomem;
    }
    if (g_alloc_depth(g, G_MIN_DEPTH)) goto nomem;
    g_reset_state(g);
    if (g->overflow) {
        set_err(err, errlen, "grammar: the start state is too large");
        pl_grammar_free(g);
        return PL_GRAMMAR_ERR_LIMIT;
    }
    *out = g;
    return PL_OK;
nomem:
    if (p) prog_free(p);
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
    gparser P;
    memset(&P, 0, sizeof P);
    P.s = text;
    P.len = len;
    P.err = err;
    P.errlen = errlen;
    parse_space(&P, 1);
    while (P.pos < P.len && !P.failed) {
        parse_rule(&P);
        parse_space(&P, 1);
    }
    gprog prog;
    int rc = PL_GRAMMAR_ERR_SYNTAX;
    if (!P.failed && compile(&P, &prog) == 0) rc = g_new(out, GK_GBNF, &prog, 0, err, errlen);
    for (int i = 0; i < P.nr; i++) free(P.r[i].el);
    free(P.r);
    free(P.bset);
    return rc;
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
        g->node = malloc(G_NODE_CAP * sizeof *g->node);
        g->set = malloc(G_SET_CAP * sizeof *g->set);
        g->mark = malloc(G_NODE_CAP * sizeof *g->mark);
        if (!g->node || !g->set || !g->mark || prog_copy(&g->p, &s->p)) goto fail;
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
    while (n) {
        int k = n > (size_t)g->cap_depth ? g->cap_depth : (int)n;
        if (!run_bytes(g, (const uint8_t *)s, k)) {
            if (g->overflow) {
                set_err(g->last_err, sizeof g->last_err, "grammar: state too large (ambiguous grammar?)");
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
            g_memo(g);
            rc = g->overflow ? PL_GRAMMAR_ERR_LIMIT : scan(g, nd);
            g->atop_n[0] = top_n; /* drop the memo */
            g->atop_s[0] = top_s;
            g->overflow = 0;
        } else {
            rc = scan(g, nd);
        }
        if (rc < 0) {
            set_err(g->last_err, sizeof g->last_err, "grammar: state too large (ambiguous grammar?)");
            return rc;
        }
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
