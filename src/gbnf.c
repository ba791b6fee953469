/* gbnf.c - GBNF text -> the compiled program the recognizer runs (gprog,
 * grammar_impl.h). Each rule becomes alternatives of byte-level elements:
 * character classes are rewritten into alternatives of UTF-8 byte ranges,
 * groups and repetitions into generated rules, and every element learns
 * the length of the shortest way to finish its alternative. Undefined
 * rules, left recursion and rules that can never finish are refused with
 * a line:column message. The compiled size has a budget (G_MAX_ELEMENTS,
 * G_MAX_RULES: "a"{1000}{1000}{1000} would be 10^9 elements) and every
 * pass is linear or n log n in it, so hostile text fails fast by name.
 * Not here: the recognizer, masking, the JSON mode (grammar.c), JSON
 * Schema (json_schema.c). */
#include "grammar_impl.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G_MAX_ELEMENTS (1 << 20) /* elements of all rules after expanding repetitions */
#define G_MAX_RULES (1 << 18)    /* rules, named and generated */

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
    long n_el;           /* elements emitted so far (G_MAX_ELEMENTS) */
    int32_t *rht, *bht;  /* open-addressing hash tables: named rule ids, byte set ids (-1 empty) */
    int rhtcap, bhtcap;  /* powers of two, kept at most half full */
    int n_named;
} gparser;

static uint32_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

/* Slot of key in table ht (cap a power of two): where eq(id) holds, or
 * the empty slot where it would go. */
typedef int (*ht_eq)(const struct gparser *P, int32_t id, const void *key, size_t n);
static int32_t *ht_slot(const struct gparser *P, int32_t *ht, int cap, uint32_t h, ht_eq eq, const void *key,
                        size_t n) {
    for (uint32_t k = h & (uint32_t)(cap - 1);; k = (k + 1) & (uint32_t)(cap - 1))
        if (ht[k] < 0 || eq(P, ht[k], key, n)) return &ht[k];
}

/* Make room for one more entry (rehashing with hash_of); 0 or -1. */
static int ht_reserve(struct gparser *P, int32_t **ht, int *cap, int count, uint32_t (*hash_of)(const struct gparser *, int32_t)) {
    if ((count + 1) * 2 <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    int32_t *t = malloc((size_t)nc * sizeof *t);
    if (!t) return -1;
    memset(t, 0xFF, (size_t)nc * sizeof *t);
    for (int i = 0; i < *cap; i++) {
        if ((*ht)[i] < 0) continue;
        uint32_t k = hash_of(P, (*ht)[i]) & (uint32_t)(nc - 1);
        while (t[k] >= 0) k = (k + 1) & (uint32_t)(nc - 1);
        t[k] = (*ht)[i];
    }
    free(*ht);
    *ht = t;
    *cap = nc;
    return 0;
}

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

static int rule_eq(const gparser *P, int32_t id, const void *name, size_t nlen) {
    return P->r[id].nlen == (int)nlen && !memcmp(P->r[id].name, name, nlen);
}

static uint32_t rule_hash(const gparser *P, int32_t id) { return hash_bytes(P->r[id].name, (size_t)P->r[id].nlen); }

static int rule_new(gparser *P, const char *name, int nlen, size_t at) {
    if (P->nr >= G_MAX_RULES) {
        perr(P, at, "grammar too large: more than %d rules (named and generated)", G_MAX_RULES);
        return -1;
    }
    if (name && ht_reserve(P, &P->rht, &P->rhtcap, P->n_named, rule_hash)) {
        perr(P, at, "out of memory");
        return -1;
    }
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
    if (name) {
        *ht_slot(P, P->rht, P->rhtcap, hash_bytes(name, (size_t)nlen), rule_eq, name, (size_t)nlen) = P->nr;
        P->n_named++;
    }
    return P->nr++;
}

static int rule_find(gparser *P, const char *name, int nlen) {
    if (!P->rhtcap) return -1;
    return *ht_slot(P, P->rht, P->rhtcap, hash_bytes(name, (size_t)nlen), rule_eq, name, (size_t)nlen);
}

static void emit(gparser *P, int rid, int kind, int val) {
    if (P->failed) return;
    if (++P->n_el > G_MAX_ELEMENTS) {
        perr(P, P->pos, "grammar too large: more than %d elements after expanding repetitions", G_MAX_ELEMENTS);
        return;
    }
    brule *r = &P->r[rid];
    if (grow((void **)&r->el, &r->cap, r->n + 1, sizeof *r->el)) {
        perr(P, P->pos, "out of memory");
        return;
    }
    r->el[r->n].kind = kind;
    r->el[r->n].val = val;
    r->n++;
}

static int bset_eq(const gparser *P, int32_t id, const void *w, size_t n) { return !memcmp(P->bset[id], w, n); }

static uint32_t bset_hash(const gparser *P, int32_t id) { return hash_bytes(P->bset[id], sizeof P->bset[id]); }

static int bset_id(gparser *P, const uint32_t w[8]) {
    const size_t n = sizeof(uint32_t) * 8;
    if (ht_reserve(P, &P->bht, &P->bhtcap, P->nbset, bset_hash) ||
        grow((void **)&P->bset, &P->bsetcap, P->nbset + 1, sizeof *P->bset)) {
        perr(P, P->pos, "out of memory");
        return 0;
    }
    int32_t *slot = ht_slot(P, P->bht, P->bhtcap, hash_bytes(w, n), bset_eq, w, n);
    if (*slot >= 0) return *slot;
    memcpy(P->bset[P->nbset], w, n);
    *slot = P->nbset;
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
    /* the budget before the copies: {1000}{1000}{1000} must fail at once */
    long long grow_by = (long long)n * (min - 1) + (max < 0 ? n + 2 : (long long)(max - min) * (n + 2));
    if (P->n_el + grow_by > G_MAX_ELEMENTS) {
        perr(P, at, "grammar too large: more than %d elements after expanding repetitions", G_MAX_ELEMENTS);
        return;
    }
    gel *item = malloc((size_t)n * sizeof *item);
    if (!item) {
        perr(P, at, "out of memory");
        return;
    }
    memcpy(item, P->r[rid].el + start, (size_t)n * sizeof *item);
    P->r[rid].n = start;
    P->n_el -= n; /* the item is re-emitted below */
    for (int k = 0; k < min && !P->failed; k++)
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

/* Shortest expansion (bytes) of every rule into rmin, G_INF when a rule
 * can never finish. Knuth's generalisation of Dijkstra to grammars: an
 * alternative's length is known once all the rules it refers to are, and
 * the smallest known candidate of all is final, so each rule is settled
 * once (a fixpoint iteration could take a pass per rule: quadratic).
 * 0, or -1 when out of memory. */
static int shortest(const gprog *g, int *rmin) {
    int R = g->n_rules, A = g->n_alt, rc = -1;
    long *sum = malloc((size_t)A * sizeof *sum + 1);
    int *left = malloc((size_t)A * sizeof *left + 1), *owner = malloc((size_t)A * sizeof *owner + 1);
    int *uoff = calloc((size_t)R + 1, sizeof *uoff), *use = malloc((size_t)g->n_el * sizeof *use + 1);
    int *fill = malloc(((size_t)R + 1) * sizeof *fill);
    uint8_t *done = calloc((size_t)R + 1, 1);
    struct hent { long v; int r; } *heap = malloc(((size_t)A + 1) * sizeof *heap);
    int nh = 0;
    if (!sum || !left || !owner || !uoff || !use || !fill || !done || !heap) goto out;
    /* use[uoff[r] .. uoff[r+1]): the alternatives referring to r, once per reference */
    for (int k = 0; k < A; k++)
        for (int p = g->alt[k]; g->el[p].kind >= GE_BYTES; p++)
            if (g->el[p].kind == GE_REF) uoff[g->el[p].val + 1]++;
    for (int r = 0; r < R; r++) uoff[r + 1] += uoff[r];
    memcpy(fill, uoff, (size_t)R * sizeof *fill);
    for (int r = 0; r < R; r++) {
        rmin[r] = G_INF;
        for (int k = g->rule_alt[r]; k < g->rule_alt[r + 1]; k++) {
            owner[k] = r;
            sum[k] = 0;
            left[k] = 0;
            for (int p = g->alt[k]; g->el[p].kind >= GE_BYTES; p++) {
                if (g->el[p].kind == GE_BYTES) {
                    sum[k]++;
                } else {
                    use[fill[g->el[p].val]++] = k;
                    left[k]++;
                }
            }
        }
    }
#define HEAP_PUSH(V, RR)                                                         \
    do {                                                                         \
        int i_ = nh++;                                                           \
        while (i_ > 0 && heap[(i_ - 1) / 2].v > (V)) {                           \
            heap[i_] = heap[(i_ - 1) / 2];                                       \
            i_ = (i_ - 1) / 2;                                                   \
        }                                                                        \
        heap[i_].v = (V);                                                        \
        heap[i_].r = (RR);                                                       \
    } while (0)
    for (int k = 0; k < A; k++)
        if (!left[k]) HEAP_PUSH(sum[k], owner[k]);
    while (nh) {
        struct hent top = heap[0], last = heap[--nh];
        int i = 0;
        for (;;) { /* sift the last entry down from the root */
            int c = 2 * i + 1;
            if (c >= nh) break;
            if (c + 1 < nh && heap[c + 1].v < heap[c].v) c++;
            if (heap[c].v >= last.v) break;
            heap[i] = heap[c];
            i = c;
        }
        if (nh) heap[i] = last;
        if (done[top.r]) continue;
        done[top.r] = 1;
        rmin[top.r] = top.v >= G_INF ? G_INF : (int32_t)top.v;
        for (int u = uoff[top.r]; u < uoff[top.r + 1]; u++) {
            int k = use[u];
            sum[k] += rmin[top.r];
            if (sum[k] > G_INF) sum[k] = G_INF;
            if (--left[k] == 0) HEAP_PUSH(sum[k], owner[k]);
        }
    }
#undef HEAP_PUSH
    rc = 0;
out:
    free(sum);
    free(left);
    free(owner);
    free(uoff);
    free(use);
    free(fill);
    free(done);
    free(heap);
    return rc;
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
    if (P->nbset) memcpy(g->bset, P->bset, (size_t)P->nbset * sizeof *g->bset); /* P->bset NULL when none */
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
    if (shortest(g, rmin)) {
        perr(P, 0, "out of memory");
        goto fail;
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
    pl_grammar_prog_free(g);
    return -1;
}

/* ======================================================================
 * Entry (grammar_impl.h)
 * ====================================================================== */

int pl_grammar_gbnf_compile(gprog *out, const char *text, size_t len, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
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
    int rc = -1;
    if (!P.failed && compile(&P, out) == 0) rc = 0;
    for (int i = 0; i < P.nr; i++) free(P.r[i].el);
    free(P.r);
    free(P.bset);
    free(P.rht);
    free(P.bht);
    return rc;
}
