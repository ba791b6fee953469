/* json.c - the strict RFC 8259 reader (one-allocation DOM) and the writer.
 *
 * The reader runs the same recursive-descent code twice: a counting pass
 * validates the text and measures the DOM (values, string bytes, the
 * deepest stack of pending children, the largest object), then one block is
 * allocated and a building pass fills it. While a container is open its
 * children wait on a stack inside the block; when it closes they move, as
 * one contiguous run, to the final area (so kids[] is an array) and the
 * earlier members of duplicate keys are dropped there (a hash table in the
 * block for large objects). Work and memory are linear in the input.
 * Numbers are converted by strtod on their validated text; the integer
 * getter instead reads the text exactly (no double rounding). */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEF_BYTES ((size_t)16 << 20)
#define JSON_DEF_DEPTH 64
#define JSON_DEF_NODES ((size_t)1 << 20)
#define JSON_SMALL_OBJ 8 /* objects up to this many members dedupe by pairwise compare */

/* ---- UTF-8 ---- */

/* Length (1-4) of the well-formed UTF-8 sequence at s[0..n) (Unicode table
 * 3-7: no overlongs, no surrogates, nothing past U+10FFFF), or 0 with
 * *bad = the bytes of its maximal ill-formed subpart (at least 1), which is
 * what one U+FFFD replaces. */
static int utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
    unsigned c = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (int k = 1; k <= need; k++) {
        unsigned b = (size_t)k < n ? s[k] : 0x100;
        if (b < lo || b > hi) {
            *bad = (size_t)k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

static int put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63));
    o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The C locale's '.' may be another character under setlocale(LC_NUMERIC);
 * strtod and printf follow it, JSON does not. */
static char locale_point(void) {
    const char *d = localeconv()->decimal_point;
    return d && d[0] && !d[1] ? d[0] : '.';
}

/* ---- reader ---- */

typedef struct jp {
    const unsigned char *s;
    size_t n, pos;
    int build;        /* 0: counting pass, 1: building pass */
    int max_depth;
    size_t max_nodes;
    size_t nodes;     /* values so far */
    size_t bytes;     /* string bytes so far, NULs included */
    size_t sp, max_sp;/* pending children (the stack's height) */
    size_t max_members;
    json_value *fin;  /* [nodes] final area: fin[0] is the root */
    size_t fp;
    json_value *stk;  /* [max_sp] pending children */
    uint32_t *hash;   /* [nhash] dedupe table for objects over JSON_SMALL_OBJ members */
    size_t nhash;
    char *sb;         /* [bytes] string bytes */
    char point;
    char *err;
    size_t errlen, errpos;
    int failed;
} jp;

static int jp_fail(jp *P, size_t at, const char *fmt, ...) {
    if (P->failed) return -1;
    P->failed = 1;
    P->errpos = at;
    if (P->err && P->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err, P->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int jp_unexpected(jp *P) {
    if (P->pos >= P->n) return jp_fail(P, P->pos, "json: unexpected end of input at offset %zu", P->pos);
    unsigned c = P->s[P->pos];
    if (c > 0x20 && c < 0x7F) return jp_fail(P, P->pos, "json: unexpected '%c' at offset %zu", (int)c, P->pos);
    return jp_fail(P, P->pos, "json: unexpected byte 0x%02x at offset %zu", c, P->pos);
}

static void jp_ws(jp *P) {
    while (P->pos < P->n) {
        unsigned c = P->s[P->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        P->pos++;
    }
}

/* Room for len string bytes + NUL: the counting pass counts them, the
 * building pass gets where they go. */
static char *jp_bytes(jp *P, size_t len) {
    char *p = P->build ? P->sb + P->bytes : NULL;
    P->bytes += len + 1;
    return p;
}

static int jp_hex4(jp *P, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = P->pos < P->n ? hexval(P->s[P->pos]) : -1;
        if (h < 0) {
            if (P->pos >= P->n) return jp_unexpected(P);
            return jp_fail(P, P->pos, "json: expected 4 hex digits after \\u at offset %zu", P->pos);
        }
        *v = *v << 4 | (uint32_t)h;
        P->pos++;
    }
    return 0;
}

/* A string at P->pos (the opening quote). Unescaped bytes go to the string
 * area in the building pass; the counting pass measures them. */
static int jp_string(jp *P, const char **out, size_t *outlen) {
    size_t q = ++P->pos, len = 0;
    char *d = P->build ? P->sb + P->bytes : NULL;
    for (;;) {
        if (P->pos >= P->n) return jp_fail(P, q - 1, "json: unterminated string starting at offset %zu", q - 1);
        unsigned c = P->s[P->pos];
        if (c == '"') {
            P->pos++;
            break;
        }
        if (c < 0x20)
            return jp_fail(P, P->pos, "json: control character 0x%02x in string at offset %zu", c, P->pos);
        if (c == '\\') {
            size_t at = P->pos++;
            if (P->pos >= P->n) return jp_unexpected(P);
            unsigned e = P->s[P->pos++];
            char one;
            switch (e) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': {
                uint32_t v, w;
                if (jp_hex4(P, &v)) return -1;
                if (v >= 0xDC00 && v <= 0xDFFF)
                    return jp_fail(P, at, "json: lone surrogate \\u%04X at offset %zu", (unsigned)v, at);
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (P->pos + 1 >= P->n || P->s[P->pos] != '\\' || P->s[P->pos + 1] != 'u')
                        return jp_fail(P, at, "json: lone surrogate \\u%04X at offset %zu", (unsigned)v, at);
                    P->pos += 2;
                    if (jp_hex4(P, &w)) return -1;
                    if (w < 0xDC00 || w > 0xDFFF)
                        return jp_fail(P, at, "json: lone surrogate \\u%04X at offset %zu", (unsigned)v, at);
                    v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
                }
                char u[4];
                int k = put_utf8(v, u);
                if (d) memcpy(d + len, u, (size_t)k);
                len += (size_t)k;
                continue;
            }
            default:
                P->pos = at;
                if (e > 0x20 && e < 0x7F)
                    return jp_fail(P, at, "json: invalid escape '\\%c' at offset %zu", (int)e, at);
                return jp_fail(P, at, "json: invalid escape at offset %zu", at);
            }
            if (d) d[len] = one;
            len++;
            continue;
        }
        size_t k = 1, bad;
        if (c >= 0x80 && !(k = (size_t)utf8_seq(P->s + P->pos, P->n - P->pos, &bad)))
            return jp_fail(P, P->pos, "json: invalid UTF-8 at offset %zu", P->pos);
        if (d) memcpy(d + len, P->s + P->pos, k);
        len += k;
        P->pos += k;
    }
    jp_bytes(P, len);
    if (d) {
        d[len] = 0;
        *out = d;
        *outlen = len;
    }
    return 0;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static int jp_number(jp *P, json_value *v) {
    size_t b = P->pos;
    const unsigned char *s = P->s;
    if (P->pos < P->n && s[P->pos] == '-') P->pos++;
    if (P->pos >= P->n || !is_digit(s[P->pos])) {
        if (P->pos >= P->n) return jp_fail(P, P->pos, "json: expected a digit at offset %zu (end of input)", P->pos);
        return jp_unexpected(P);
    }
    if (s[P->pos] == '0') {
        P->pos++;
        if (P->pos < P->n && is_digit(s[P->pos]))
            return jp_fail(P, P->pos - 1, "json: leading zero in number at offset %zu", P->pos - 1);
    } else {
        while (P->pos < P->n && is_digit(s[P->pos])) P->pos++;
    }
    if (P->pos < P->n && s[P->pos] == '.') {
        P->pos++;
        if (P->pos >= P->n || !is_digit(s[P->pos])) return jp_unexpected(P);
        while (P->pos < P->n && is_digit(s[P->pos])) P->pos++;
    }
    if (P->pos < P->n && (s[P->pos] == 'e' || s[P->pos] == 'E')) {
        P->pos++;
        if (P->pos < P->n && (s[P->pos] == '+' || s[P->pos] == '-')) P->pos++;
        if (P->pos >= P->n || !is_digit(s[P->pos])) return jp_unexpected(P);
        while (P->pos < P->n && is_digit(s[P->pos])) P->pos++;
    }
    size_t len = P->pos - b;
    char *d = jp_bytes(P, len);
    if (d) {
        memcpy(d, s + b, len);
        d[len] = 0;
        char *dot = P->point != '.' ? memchr(d, '.', len) : NULL;
        if (dot) *dot = P->point;
        v->num = strtod(d, NULL);
        if (dot) *dot = '.';
        v->str = d;
        v->len = len;
    }
    return 0;
}

static int jp_value(jp *P, json_value *v, int depth);

static int same_key(const json_value *a, const json_value *b) {
    return a->keylen == b->keylen && !memcmp(a->key, b->key, a->keylen);
}

static uint32_t key_hash(const char *k, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

/* The members m[0..k) of an object, all pending: mark (type = -1) every one
 * that a later member with the same key overrides. */
static void jp_dedupe(jp *P, json_value *m, size_t k) {
    if (k <= JSON_SMALL_OBJ) {
        for (size_t i = k - 1; i-- > 0;)
            for (size_t j = i + 1; j < k; j++)
                if (m[j].type >= 0 && same_key(&m[i], &m[j])) {
                    m[i].type = -1;
                    break;
                }
        return;
    }
    size_t h = 1;
    while (h < 2 * k) h *= 2; /* h <= nhash: sized for the largest object */
    memset(P->hash, 0, h * sizeof *P->hash);
    for (size_t i = k; i-- > 0;) {
        size_t at = key_hash(m[i].key, m[i].keylen) & (h - 1);
        for (;;) {
            uint32_t e = P->hash[at];
            if (!e) {
                P->hash[at] = (uint32_t)(i + 1);
                break;
            }
            if (same_key(&m[i], &m[e - 1])) {
                m[i].type = -1;
                break;
            }
            at = (at + 1) & (h - 1);
        }
    }
}

static int jp_container(jp *P, json_value *v, int depth) {
    int obj = P->s[P->pos] == '{';
    char close = obj ? '}' : ']';
    if (depth >= P->max_depth) return jp_fail(P, P->pos, "json: nesting deeper than %d at offset %zu", P->max_depth, P->pos);
    P->pos++;
    size_t base = P->sp;
    jp_ws(P);
    if (P->pos < P->n && P->s[P->pos] == close) {
        P->pos++;
    } else {
        for (;;) {
            json_value kid;
            memset(&kid, 0, sizeof kid);
            if (obj) {
                jp_ws(P);
                if (P->pos >= P->n || P->s[P->pos] != '"') return jp_unexpected(P);
                if (jp_string(P, &kid.key, &kid.keylen)) return -1;
                jp_ws(P);
                if (P->pos >= P->n || P->s[P->pos] != ':') return jp_unexpected(P);
                P->pos++;
            }
            const char *key = kid.key;
            size_t keylen = kid.keylen;
            if (jp_value(P, &kid, depth + 1)) return -1;
            kid.key = key;
            kid.keylen = keylen;
            if (P->build) P->stk[P->sp] = kid;
            if (++P->sp > P->max_sp) P->max_sp = P->sp;
            jp_ws(P);
            if (P->pos < P->n && P->s[P->pos] == ',') {
                P->pos++;
                jp_ws(P);
                if (P->pos < P->n && P->s[P->pos] == close)
                    return jp_fail(P, P->pos, "json: trailing comma before '%c' at offset %zu", close, P->pos);
                continue;
            }
            if (P->pos < P->n && P->s[P->pos] == close) {
                P->pos++;
                break;
            }
            return jp_unexpected(P);
        }
    }
    size_t k = P->sp - base;
    if (obj && k > P->max_members) P->max_members = k;
    if (P->build) {
        json_value *m = P->stk + base;
        if (obj && k > 1) jp_dedupe(P, m, k);
        v->kids = P->fin + P->fp;
        v->len = 0;
        for (size_t i = 0; i < k; i++)
            if (m[i].type >= 0) P->fin[P->fp + v->len++] = m[i];
        P->fp += v->len;
    }
    P->sp = base;
    v->type = obj ? JSON_OBJECT : JSON_ARRAY;
    return 0;
}

static int jp_value(jp *P, json_value *v, int depth) {
    jp_ws(P);
    if (++P->nodes > P->max_nodes)
        return jp_fail(P, P->pos, "json: more than %zu values at offset %zu", P->max_nodes, P->pos);
    if (P->pos >= P->n) return jp_unexpected(P);
    unsigned c = P->s[P->pos];
    static const char *const lit[3] = {"null", "false", "true"};
    switch (c) {
    case '{':
    case '[': return jp_container(P, v, depth);
    case '"': v->type = JSON_STRING; return jp_string(P, &v->str, &v->len);
    case 'n':
    case 'f':
    case 't': {
        int i = c == 'n' ? 0 : c == 'f' ? 1 : 2;
        size_t l = strlen(lit[i]);
        for (size_t j = 0; j < l; j++, P->pos++)
            if (P->pos >= P->n || P->s[P->pos] != (unsigned char)lit[i][j]) return jp_unexpected(P);
        v->type = i ? JSON_BOOL : JSON_NULL;
        v->num = i == 2;
        return 0;
    }
    default:
        if (c == '-' || is_digit(c)) {
            v->type = JSON_NUMBER;
            return jp_number(P, v);
        }
        return jp_unexpected(P);
    }
}

static int jp_document(jp *P, json_value *root) {
    P->pos = 0;
    if (P->n >= 3 && P->s[0] == 0xEF && P->s[1] == 0xBB && P->s[2] == 0xBF)
        return jp_fail(P, 0, "json: byte order mark at offset 0 (not allowed)");
    jp_ws(P);
    if (P->pos >= P->n) return jp_fail(P, P->pos, "json: no value (empty document)");
    if (jp_value(P, root, 0)) return -1;
    jp_ws(P);
    if (P->pos < P->n) {
        jp_unexpected(P);
        size_t l = strlen(P->err ? P->err : "");
        if (P->err && l + 20 < P->errlen) snprintf(P->err + l, P->errlen - l, " after the value");
        return -1;
    }
    return 0;
}

static int parse(jp *P, json_value **out, const char *s, size_t n, const json_limits *lim, char *err,
                 size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    json_limits L = lim ? *lim : (json_limits){0, 0, 0};
    if (!L.max_bytes) L.max_bytes = JSON_DEF_BYTES;
    if (L.max_depth <= 0) L.max_depth = JSON_DEF_DEPTH;
    if (L.max_depth > JSON_DEPTH_CAP) L.max_depth = JSON_DEPTH_CAP;
    if (!L.max_nodes) L.max_nodes = JSON_DEF_NODES;
    P->err = err;
    P->errlen = errlen;
    if (n > L.max_bytes) return jp_fail(P, L.max_bytes, "json: document of %zu bytes is over the limit of %zu", n, L.max_bytes);
    if (!s && n) return jp_fail(P, P->pos, "json: no input");
    P->s = (const unsigned char *)(s ? s : "");
    P->n = n;
    P->max_depth = L.max_depth;
    P->max_nodes = L.max_nodes;
    json_value scratch;
    memset(&scratch, 0, sizeof scratch);
    if (jp_document(P, &scratch)) return -1;

    /* one block: final nodes | pending stack | dedupe table | string bytes */
    size_t nodes = P->nodes, max_sp = P->max_sp, bytes = P->bytes, nhash = 0;
    if (P->max_members > JSON_SMALL_OBJ)
        for (nhash = 1; nhash < 2 * P->max_members; nhash *= 2) {}
    size_t vs = sizeof(json_value), total = 0;
    if (P->max_members >= UINT32_MAX / 2) return jp_fail(P, P->pos, "json: object too large");
    if (nodes > SIZE_MAX / vs / 2 - max_sp || nhash > SIZE_MAX / 8 || bytes > SIZE_MAX / 2)
        return jp_fail(P, P->pos, "json: document too large");
    total = (nodes + max_sp) * vs + nhash * sizeof(uint32_t);
    if (total > SIZE_MAX - bytes) return jp_fail(P, P->pos, "json: document too large");
    total += bytes;
    char *block = malloc(total ? total : 1);
    if (!block) return jp_fail(P, P->pos, "json: out of memory (%zu bytes for the document)", total);
    P->fin = (json_value *)block;
    P->stk = P->fin + nodes;
    P->hash = (uint32_t *)(void *)(P->stk + max_sp);
    P->nhash = nhash;
    P->sb = (char *)(P->hash + nhash);
    P->build = 1;
    P->nodes = P->bytes = P->sp = P->max_sp = P->max_members = 0;
    P->fp = 1; /* fin[0] is the root */
    P->point = locale_point();
    memset(P->fin, 0, vs);
    if (jp_document(P, P->fin)) { /* cannot happen: the same text passed */
        free(block);
        return -1;
    }
    *out = P->fin;
    return 0;
}

int json_parse_ex(json_value **out, const char *s, size_t n, const json_limits *lim, char *err,
                  size_t errlen, size_t *err_offset) {
    jp P;
    memset(&P, 0, sizeof P);
    int rc = parse(&P, out, s, n, lim, err, errlen);
    if (err_offset) *err_offset = rc ? P.errpos : 0;
    return rc;
}

int json_parse(json_value **out, const char *s, size_t n, const json_limits *lim, char *err,
               size_t errlen) {
    return json_parse_ex(out, s, n, lim, err, errlen, NULL);
}

void json_free(json_value *root) { free(root); }

const char *json_type_name(int type) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return type >= 0 && type <= JSON_OBJECT ? names[type] : "?";
}

const json_value *json_getn(const json_value *obj, const char *key, size_t keylen) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->len; i++) {
        const json_value *m = &obj->kids[i];
        if (m->keylen == keylen && !memcmp(m->key, key, keylen)) return m;
    }
    return NULL;
}

const json_value *json_get(const json_value *obj, const char *key) {
    return key ? json_getn(obj, key, strlen(key)) : NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->len) return NULL;
    return &arr->kids[i];
}

int json_as_bool(const json_value *v, int *out) {
    if (!v || v->type != JSON_BOOL) return JSON_ETYPE;
    *out = v->num != 0;
    return JSON_OK;
}

int json_as_num(const json_value *v, double *out) {
    if (!v || v->type != JSON_NUMBER) return JSON_ETYPE;
    if (!isfinite(v->num)) return JSON_ERANGE;
    *out = v->num;
    return JSON_OK;
}

/* The exact value of the number text t as an int64. The text is already
 * valid JSON: -?int(.frac)?([eE][+-]?exp)?. Its digits D (int and frac
 * together) times 10^E are the value; leading zeros are dropped, trailing
 * ones move into E, and what remains decides. */
int json_as_int(const json_value *v, int64_t *out) {
    if (!v || v->type != JSON_NUMBER) return JSON_ETYPE;
    const char *p = v->str, *end = v->str + v->len;
    int neg = *p == '-';
    p += neg;
    const char *ib = p;
    while (p < end && is_digit((unsigned char)*p)) p++;
    size_t ni = (size_t)(p - ib), nf = 0;
    const char *fb = p;
    if (p < end && *p == '.') {
        fb = ++p;
        while (p < end && is_digit((unsigned char)*p)) p++;
        nf = (size_t)(p - fb);
    }
    int64_t e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = *p == '-';
        if (*p == '+' || *p == '-') p++;
        for (; p < end; p++)
            if (e < (int64_t)1 << 50) e = e * 10 + (*p - '0'); /* saturates far beyond any input */
        if (eneg) e = -e;
    }
#define DIG(k) ((k) < ni ? ib[k] : fb[(k) - ni])
    size_t nd = ni + nf, first = 0, last;
    while (first < nd && DIG(first) == '0') first++;
    if (first == nd) {
        *out = 0;
        return JSON_OK;
    }
    last = nd - 1;
    while (DIG(last) == '0') last--;
    int64_t E = e - (int64_t)nf + (int64_t)(nd - 1 - last);
    if (E < 0) return JSON_ENOTINT;
    size_t sig = last - first + 1;
    if (sig > 19 || E > 19 - (int64_t)sig) return JSON_ERANGE; /* >= 10^19 */
    uint64_t u = 0;
    for (size_t k = first; k <= last; k++) u = u * 10 + (uint64_t)(DIG(k) - '0');
    for (int64_t k = 0; k < E; k++) u *= 10; /* at most 19 digits: fits in uint64 */
#undef DIG
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX) return JSON_ERANGE;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return JSON_OK;
}

int json_as_str(const json_value *v, const char **out, size_t *len) {
    if (!v || v->type != JSON_STRING) return JSON_ETYPE;
    *out = v->str;
    if (len) *len = v->len;
    return JSON_OK;
}

/* The member, or NULL for absent / null. */
static const json_value *member(const json_value *obj, const char *key) {
    const json_value *v = json_get(obj, key);
    return v && v->type != JSON_NULL ? v : NULL;
}

int json_get_bool(const json_value *obj, const char *key, int def, int *out) {
    const json_value *v = member(obj, key);
    if (!v) {
        *out = def;
        return JSON_ABSENT;
    }
    return json_as_bool(v, out);
}

int json_get_num(const json_value *obj, const char *key, double def, double *out) {
    const json_value *v = member(obj, key);
    if (!v) {
        *out = def;
        return JSON_ABSENT;
    }
    return json_as_num(v, out);
}

int json_get_int(const json_value *obj, const char *key, int64_t def, int64_t *out) {
    const json_value *v = member(obj, key);
    if (!v) {
        *out = def;
        return JSON_ABSENT;
    }
    return json_as_int(v, out);
}

int json_get_str(const json_value *obj, const char *key, const char *def, const char **out,
                 size_t *len) {
    const json_value *v = member(obj, key);
    if (!v) {
        *out = def;
        if (len) *len = def ? strlen(def) : 0;
        return JSON_ABSENT;
    }
    return json_as_str(v, out, len);
}

int json_equal(const json_value *a, const json_value *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return (a->num != 0) == (b->num != 0);
    case JSON_NUMBER:
        if (isfinite(a->num) && isfinite(b->num)) return a->num == b->num;
        return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_ARRAY:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(&a->kids[i], &b->kids[i])) return 0;
        return 1;
    default:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(&a->kids[i], json_getn(b, a->kids[i].key, a->kids[i].keylen))) return 0;
        return 1;
    }
}

/* ---- writer ---- */

void jw_init(jw *w) {
    memset(w, 0, sizeof *w);
    w->growable = 1;
    w->buf = "";
}

void jw_init_fixed(jw *w, char *buf, size_t cap) {
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    if (cap) buf[0] = 0;
    else w->status = JW_ETRUNC;
}

void jw_reset(jw *w) {
    w->len = 0;
    w->depth = 0;
    w->after_key = 0;
    w->status = !w->growable && !w->cap ? JW_ETRUNC : JW_OK;
    if (w->cap) w->buf[0] = 0;
}

void jw_free(jw *w) {
    if (w->growable && w->cap) free(w->buf);
    jw_init(w);
}

int jw_status(const jw *w) { return w->status; }
int jw_done(const jw *w) { return w->status == JW_OK && w->depth == 0 && !w->after_key; }

static void put(jw *w, const char *s, size_t n) {
    if (w->status == JW_ENOMEM || w->status == JW_ESTATE || !n) return;
    if (w->growable) {
        if (n > SIZE_MAX / 4 - w->len) {
            w->status = JW_ENOMEM;
            return;
        }
        if (w->len + n + 1 > w->cap) {
            size_t nc = w->cap ? w->cap : 256;
            while (nc < w->len + n + 1) nc *= 2;
            char *q = realloc(w->cap ? w->buf : NULL, nc);
            if (!q) {
                w->status = JW_ENOMEM;
                return;
            }
            w->buf = q;
            w->cap = nc;
        }
        memcpy(w->buf + w->len, s, n);
        w->len += n;
        w->buf[w->len] = 0;
        return;
    }
    /* fixed: keep what fits, count the rest */
    if (w->cap && w->len < w->cap - 1) {
        size_t room = w->cap - 1 - w->len, k = n < room ? n : room;
        memcpy(w->buf + w->len, s, k);
        w->buf[w->len + k] = 0;
    }
    if ((!w->cap || w->len + n > w->cap - 1) && w->status == JW_OK) w->status = JW_ETRUNC;
    w->len += n;
}

void jw_raw(jw *w, const char *s, size_t n) { put(w, s, n); }

static int bit(const uint8_t *b, int d) { return b[d >> 3] >> (d & 7) & 1; }
static void setbit(uint8_t *b, int d, int on) {
    if (on) b[d >> 3] |= (uint8_t)(1u << (d & 7));
    else b[d >> 3] &= (uint8_t)~(1u << (d & 7));
}

static void misuse(jw *w) {
    if (w->status == JW_OK || w->status == JW_ETRUNC) w->status = JW_ESTATE;
}

/* Before a value: inside an object a key must have come; inside an array a
 * comma separates it from the previous item. 0: misuse. */
static int before_value(jw *w) {
    if (w->status == JW_ESTATE) return 0;
    if (w->depth == 0) return 1;
    int d = w->depth - 1;
    if (bit(w->isobj, d)) {
        if (!w->after_key) {
            misuse(w);
            return 0;
        }
        w->after_key = 0;
        return 1;
    }
    if (!bit(w->first, d)) put(w, ",", 1);
    setbit(w->first, d, 0);
    return 1;
}

static void open_container(jw *w, int obj) {
    if (!before_value(w)) return;
    if (w->depth >= JW_MAX_DEPTH) {
        misuse(w);
        return;
    }
    put(w, obj ? "{" : "[", 1);
    setbit(w->first, w->depth, 1);
    setbit(w->isobj, w->depth, obj);
    w->depth++;
}

static void close_container(jw *w, int obj) {
    if (w->status == JW_ESTATE) return;
    if (w->depth == 0 || bit(w->isobj, w->depth - 1) != obj || w->after_key) {
        misuse(w);
        return;
    }
    w->depth--;
    put(w, obj ? "}" : "]", 1);
}

void jw_obj(jw *w) { open_container(w, 1); }
void jw_obj_end(jw *w) { close_container(w, 1); }
void jw_arr(jw *w) { open_container(w, 0); }
void jw_arr_end(jw *w) { close_container(w, 0); }

void jw_escape(jw *w, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes that go out as they are */
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        char esc[8];
        const char *rep = NULL;
        size_t rl = 0, adv = 1, bad;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c == '"') rep = "\\\"", rl = 2;
        else if (c == '\\') rep = "\\\\", rl = 2;
        else if (c == '\n') rep = "\\n", rl = 2;
        else if (c == '\r') rep = "\\r", rl = 2;
        else if (c == '\t') rep = "\\t", rl = 2;
        else if (c == '\b') rep = "\\b", rl = 2;
        else if (c == '\f') rep = "\\f", rl = 2;
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rep = esc;
            rl = 6;
        } else {
            int k = utf8_seq(u + i, n - i, &bad);
            if (!k) {
                rep = "\xEF\xBF\xBD", rl = 3, adv = bad; /* U+FFFD for the maximal ill-formed subpart */
            } else if (k == 3 && c == 0xE2 && u[i + 1] == 0x80 && (u[i + 2] == 0xA8 || u[i + 2] == 0xA9)) {
                /* U+2028/U+2029 are valid JSON but end a line in JavaScript */
                rep = u[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", rl = 6, adv = 3;
            } else {
                i += (size_t)k;
                continue;
            }
        }
        put(w, s + run, i - run);
        put(w, rep, rl);
        i += adv;
        run = i;
    }
    put(w, s + run, n - run);
}

static void put_string(jw *w, const char *s, size_t n) {
    put(w, "\"", 1);
    jw_escape(w, s, n);
    put(w, "\"", 1);
}

void jw_keyn(jw *w, const char *key, size_t n) {
    if (w->status == JW_ESTATE) return;
    int d = w->depth - 1;
    if (w->depth == 0 || !bit(w->isobj, d) || w->after_key || !key) {
        misuse(w);
        return;
    }
    if (!bit(w->first, d)) put(w, ",", 1);
    setbit(w->first, d, 0);
    put_string(w, key, n);
    put(w, ":", 1);
    w->after_key = 1;
}

void jw_key(jw *w, const char *key) { jw_keyn(w, key, key ? strlen(key) : 0); }

void jw_strn(jw *w, const char *s, size_t n) {
    if (!s) {
        jw_null(w);
        return;
    }
    if (before_value(w)) put_string(w, s, n);
}

void jw_str(jw *w, const char *s) { jw_strn(w, s, s ? strlen(s) : 0); }

void jw_num(jw *w, double x) {
    if (!isfinite(x)) {
        jw_null(w);
        return;
    }
    if (!before_value(w)) return;
    char t[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, x);
        if (strtod(t, NULL) == x) break; /* the shortest of these that reads back */
    }
    char pt = locale_point();
    if (pt != '.') {
        char *p = strchr(t, pt);
        if (p) *p = '.';
    }
    put(w, t, strlen(t));
}

void jw_int(jw *w, int64_t x) {
    if (!before_value(w)) return;
    char t[24];
    int k = snprintf(t, sizeof t, "%lld", (long long)x);
    put(w, t, (size_t)k);
}

void jw_bool(jw *w, int b) {
    if (before_value(w)) put(w, b ? "true" : "false", b ? 4 : 5);
}

void jw_null(jw *w) {
    if (before_value(w)) put(w, "null", 4);
}

void jw_value(jw *w, const json_value *v) {
    if (!v) {
        jw_null(w);
        return;
    }
    switch (v->type) {
    case JSON_NULL: jw_null(w); break;
    case JSON_BOOL: jw_bool(w, v->num != 0); break;
    case JSON_NUMBER:
        if (before_value(w)) put(w, v->str, v->len);
        break;
    case JSON_STRING: jw_strn(w, v->str, v->len); break;
    case JSON_ARRAY:
        jw_arr(w);
        for (size_t i = 0; i < v->len; i++) jw_value(w, &v->kids[i]);
        jw_arr_end(w);
        break;
    case JSON_OBJECT:
        jw_obj(w);
        for (size_t i = 0; i < v->len; i++) {
            jw_keyn(w, v->kids[i].key, v->kids[i].keylen);
            jw_value(w, &v->kids[i]);
        }
        jw_obj_end(w);
        break;
    default: misuse(w);
    }
}
