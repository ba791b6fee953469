/* json_schema.c - JSON Schema -> GBNF, the compiler behind --json-schema.
 *
 * A small JSON reader builds a DOM of the schema (object keys in order),
 * then a generator emits one GBNF rule per schema node; the primitive rules
 * (string, number, value ...) are the built-in JSON grammar's and the text
 * is compiled by pl_grammar_new_gbnf. Supports type, properties, required,
 * enum, const and items; refuses $ref and anyOf/oneOf/allOf and ignores
 * other keywords (no formats, patterns, bounds or additionalProperties).
 * Hostile schemas fail by name: nesting deeper than S_MAX_DEPTH, more than
 * S_MAX_PROPS properties in an object, a grammar over S_MAX_TEXT bytes;
 * every schema node is compiled once (a type list naming "array" twice
 * compiles its items once: no 2^depth), so the work is linear.
 * Not here: the GBNF parser (gbnf.c), the recognizer, masking (grammar.c). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "grammar_impl.h"

#define S_MAX_DEPTH 64          /* nesting of the schema's JSON and of schemas */
#define S_MAX_PROPS 4096        /* properties of one object (required is checked against each) */
#define S_MAX_TEXT (1u << 20)   /* bytes of generated GBNF (about the compiler's element budget) */

enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

typedef struct jv {
    int type;
    char *s;         /* JV_STR: decoded bytes; JV_NUM: the source text */
    size_t slen;
    struct jv *kid;  /* [n] array items / object values */
    char **key;      /* [n] object keys (decoded) */
    size_t *klen;
    int n;
} jv;

static void jv_free(jv *v) {
    if (!v) return;
    free(v->s);
    for (int i = 0; i < v->n; i++) {
        jv_free(&v->kid[i]);
        if (v->key) free(v->key[i]);
    }
    free(v->kid);
    free(v->key);
    free(v->klen);
    memset(v, 0, sizeof *v);
}

typedef struct jreader {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    int failed, depth;
} jreader;

static void jr_err(jreader *R, const char *msg) {
    if (R->failed) return;
    R->failed = 1;
    int line = 1, col = 1;
    for (size_t i = 0; i < R->pos && i < R->len; i++) {
        if (R->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)R->s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    pl_grammar_set_err(R->err, R->errlen, "schema:%d:%d: %s", line, col, msg);
}

static void jr_ws(jreader *R) {
    while (R->pos < R->len && j_is_ws((unsigned char)R->s[R->pos])) R->pos++;
}

static int jr_hex4(jreader *R, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = R->pos < R->len ? hexval((unsigned char)R->s[R->pos]) : -1;
        if (h < 0) {
            jr_err(R, "expected 4 hex digits after \\u");
            return 0;
        }
        *v = *v * 16 + (uint32_t)h;
        R->pos++;
    }
    return 1;
}

static int jr_string(jreader *R, char **out, size_t *olen) {
    size_t cap = 16, n = 0;
    char *b = malloc(cap);
    if (!b) {
        jr_err(R, "out of memory");
        return 0;
    }
    R->pos++; /* the quote */
    for (;;) {
        if (R->pos >= R->len) {
            jr_err(R, "unterminated string");
            break;
        }
        unsigned c = (unsigned char)R->s[R->pos];
        unsigned char tmp[4];
        int k = 1;
        if (c == '"') {
            R->pos++;
            b[n] = 0;
            *out = b;
            *olen = n;
            return 1;
        }
        if (c < 0x20) {
            jr_err(R, "control character in string");
            break;
        }
        if (c == '\\') {
            R->pos++;
            char e = R->pos < R->len ? R->s[R->pos++] : 0;
            const char *esc = "\"\\/bfnrt", *rep = "\"\\/\b\f\n\r\t";
            const char *q = e ? strchr(esc, e) : NULL;
            if (q) {
                tmp[0] = (unsigned char)rep[q - esc];
            } else if (e == 'u') {
                uint32_t v, w;
                if (!jr_hex4(R, &v)) break;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (R->pos + 1 < R->len && R->s[R->pos] == '\\' && R->s[R->pos + 1] == 'u') {
                        R->pos += 2;
                        if (!jr_hex4(R, &w)) break;
                        if (w < 0xDC00 || w > 0xDFFF) {
                            jr_err(R, "bad surrogate pair");
                            break;
                        }
                        v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
                    } else {
                        jr_err(R, "lone surrogate");
                        break;
                    }
                } else if (v >= 0xDC00 && v <= 0xDFFF) {
                    jr_err(R, "lone surrogate");
                    break;
                }
                k = utf8_encode(v, tmp);
            } else {
                R->pos--;
                jr_err(R, "bad escape");
                break;
            }
        } else {
            tmp[0] = (unsigned char)c;
            R->pos++;
        }
        if (n + 5 > cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                jr_err(R, "out of memory");
                break;
            }
            b = nb;
            cap *= 2;
        }
        memcpy(b + n, tmp, (size_t)k);
        n += (size_t)k;
    }
    free(b);
    return 0;
}

static int jr_value(jreader *R, jv *v) {
    memset(v, 0, sizeof *v);
    jr_ws(R);
    if (R->pos >= R->len) {
        jr_err(R, "unexpected end of input");
        return 0;
    }
    char c = R->s[R->pos];
    if (c == '{' || c == '[') {
        if (++R->depth > S_MAX_DEPTH) {
            jr_err(R, "nested too deeply: more than 64 levels of arrays and objects");
            return 0;
        }
        int obj = c == '{', cap = 0;
        v->type = obj ? JV_OBJ : JV_ARR;
        R->pos++;
        jr_ws(R);
        if (R->pos < R->len && R->s[R->pos] == (obj ? '}' : ']')) {
            R->pos++;
            R->depth--;
            return 1;
        }
        for (;;) {
            if (v->n == cap) { /* kid, key and klen share one capacity */
                int nc = cap ? cap * 2 : 4;
                jv *nk = realloc(v->kid, (size_t)nc * sizeof *nk);
                if (nk) v->kid = nk;
                char **ky = nk && obj ? realloc(v->key, (size_t)nc * sizeof *ky) : NULL;
                if (ky) v->key = ky;
                size_t *kl = ky ? realloc(v->klen, (size_t)nc * sizeof *kl) : NULL;
                if (kl) v->klen = kl;
                if (!nk || (obj && (!ky || !kl))) {
                    jr_err(R, "out of memory");
                    return 0;
                }
                cap = nc;
            }
            memset(&v->kid[v->n], 0, sizeof(jv));
            if (obj) {
                v->key[v->n] = NULL;
                jr_ws(R);
                if (R->pos >= R->len || R->s[R->pos] != '"') {
                    jr_err(R, "expected a string key");
                    return 0;
                }
                v->n++;
                if (!jr_string(R, &v->key[v->n - 1], &v->klen[v->n - 1])) return 0;
                jr_ws(R);
                if (R->pos >= R->len || R->s[R->pos] != ':') {
                    jr_err(R, "expected ':'");
                    return 0;
                }
                R->pos++;
            } else {
                v->n++;
            }
            if (!jr_value(R, &v->kid[v->n - 1])) return 0;
            jr_ws(R);
            if (R->pos < R->len && R->s[R->pos] == ',') {
                R->pos++;
                continue;
            }
            if (R->pos < R->len && R->s[R->pos] == (obj ? '}' : ']')) {
                R->pos++;
                R->depth--;
                return 1;
            }
            jr_err(R, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            return 0;
        }
    }
    if (c == '"') {
        v->type = JV_STR;
        return jr_string(R, &v->s, &v->slen);
    }
    static const char *const lit[3] = {"null", "false", "true"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lit[i]);
        if (R->len - R->pos >= l && !memcmp(R->s + R->pos, lit[i], l)) {
            R->pos += l;
            v->type = JV_NULL + i;
            return 1;
        }
    }
    /* a number, checked with the JSON machine's number states */
    size_t b = R->pos;
    int complete;
    R->pos += pl_grammar_json_number(R->s + R->pos, R->len - R->pos, &complete);
    if (R->pos == b || !complete) {
        jr_err(R, "expected a JSON value");
        return 0;
    }
    v->type = JV_NUM;
    v->slen = R->pos - b;
    v->s = malloc(v->slen + 1);
    if (!v->s) {
        jr_err(R, "out of memory");
        return 0;
    }
    memcpy(v->s, R->s + b, v->slen);
    v->s[v->slen] = 0;
    return 1;
}

static const jv *jv_get(const jv *o, const char *key) {
    if (!o || o->type != JV_OBJ) return NULL;
    size_t l = strlen(key);
    for (int i = 0; i < o->n; i++)
        if (o->klen[i] == l && !memcmp(o->key[i], key, l)) return &o->kid[i];
    return NULL;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) sb_add(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* JSON text of a string value */
static void sb_json_str(sbuf *b, const char *s, size_t n) {
    sb_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') sb_puts(b, "\\\"");
        else if (c == '\\') sb_puts(b, "\\\\");
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_add(b, (const char *)&c, 1);
    }
    sb_puts(b, "\"");
}

/* compact JSON text of a value */
static void sb_json(sbuf *b, const jv *v) {
    switch (v->type) {
    case JV_NULL: sb_puts(b, "null"); break;
    case JV_FALSE: sb_puts(b, "false"); break;
    case JV_TRUE: sb_puts(b, "true"); break;
    case JV_NUM: sb_add(b, v->s, v->slen); break;
    case JV_STR: sb_json_str(b, v->s, v->slen); break;
    default:
        sb_puts(b, v->type == JV_OBJ ? "{" : "[");
        for (int i = 0; i < v->n; i++) {
            if (i) sb_puts(b, ",");
            if (v->type == JV_OBJ) {
                sb_json_str(b, v->key[i], v->klen[i]);
                sb_puts(b, ":");
            }
            sb_json(b, &v->kid[i]);
        }
        sb_puts(b, v->type == JV_OBJ ? "}" : "]");
    }
}

/* GBNF string literal matching exactly the bytes s[0..n) */
static void sb_gbnf_lit(sbuf *b, const char *s, size_t n) {
    sb_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') sb_puts(b, "\\\"");
        else if (c == '\\') sb_puts(b, "\\\\");
        else if (c < 0x20 || c == 0x7F) sb_printf(b, "\\x%02X", c);
        else sb_add(b, (const char *)&c, 1);
    }
    sb_puts(b, "\"");
}

static void sb_gbnf_json_lit(sbuf *b, const jv *v) {
    sbuf t = {0};
    sb_json(&t, v);
    if (t.oom) b->oom = 1;
    else sb_gbnf_lit(b, t.p, t.n);
    free(t.p);
}

typedef struct sgen {
    sbuf rules;
    int next;
    char *err;
    size_t errlen;
    int failed;
} sgen;

static void sg_err(sgen *G, const char *fmt, const char *what) {
    if (G->failed) return;
    G->failed = 1;
    pl_grammar_set_err(G->err, G->errlen, fmt, what);
}

/* Emit the rule for schema s; its name (s<N> or a primitive) into name. */
static void sg_schema(sgen *G, const jv *s, char *name, size_t cap, int depth);

static void sg_type(sgen *G, sbuf *body, const jv *s, const char *t, int depth) {
    if (!strcmp(t, "string")) sb_puts(body, "string");
    else if (!strcmp(t, "number")) sb_puts(body, "number");
    else if (!strcmp(t, "integer")) sb_puts(body, "integer");
    else if (!strcmp(t, "boolean")) sb_puts(body, "( \"true\" | \"false\" )");
    else if (!strcmp(t, "null")) sb_puts(body, "\"null\"");
    else if (!strcmp(t, "array")) {
        const jv *it = jv_get(s, "items");
        if (!it) {
            sb_puts(body, "array");
            return;
        }
        char in[32];
        sg_schema(G, it, in, sizeof in, depth + 1);
        sb_printf(body, "\"[\" ws ( %s ws ( \",\" ws %s ws )* )? \"]\"", in, in);
    } else if (!strcmp(t, "object")) {
        const jv *props = jv_get(s, "properties"), *req = jv_get(s, "required");
        if (!props || props->type != JV_OBJ || props->n == 0) {
            sb_puts(body, "object");
            return;
        }
        /* F_i: properties i.. with none written yet; T_i: after one was
         * (so each starts with a comma). Linear in the property count. */
        int base = G->next++, n = props->n;
        if (n > S_MAX_PROPS || (req && req->type == JV_ARR && req->n > S_MAX_PROPS)) {
            sg_err(G, "schema too large: %s", "more than 4096 properties or required names in an object");
            return;
        }
        for (int i = 0; i <= n && !G->failed; i++) {
            if (i == n) {
                sb_printf(&G->rules, "s%d-f%d ::= \"\"\ns%d-t%d ::= \"\"\n", base, i, base, i);
                break;
            }
            int required = 0;
            char vn[32] = "";
            for (int k = 0; req && req->type == JV_ARR && k < req->n; k++) {
                const jv *r = &req->kid[k];
                if (r->type == JV_STR && r->slen == props->klen[i] && !memcmp(r->s, props->key[i], r->slen))
                    required = 1;
            }
            sg_schema(G, &props->kid[i], vn, sizeof vn, depth + 1);
            sbuf key = {0}, kv = {0};
            sb_json_str(&key, props->key[i], props->klen[i]);
            if (key.oom) kv.oom = 1;
            else sb_gbnf_lit(&kv, key.p, key.n);
            free(key.p);
            sb_printf(&kv, " ws \":\" ws %s ws", vn);
            if (kv.oom) G->rules.oom = 1;
            sb_printf(&G->rules, "s%d-f%d ::= ", base, i);
            sb_add(&G->rules, kv.p ? kv.p : "", kv.n);
            sb_printf(&G->rules, " s%d-t%d", base, i + 1);
            if (!required) sb_printf(&G->rules, " | s%d-f%d", base, i + 1);
            sb_printf(&G->rules, "\ns%d-t%d ::= \",\" ws ", base, i);
            sb_add(&G->rules, kv.p ? kv.p : "", kv.n);
            sb_printf(&G->rules, " s%d-t%d", base, i + 1);
            if (!required) sb_printf(&G->rules, " | s%d-t%d", base, i + 1);
            sb_puts(&G->rules, "\n");
            free(kv.p);
        }
        sb_printf(body, "\"{\" ws s%d-f0 \"}\"", base);
    } else {
        sg_err(G, "schema: unsupported type '%s'", t);
    }
}

static void sg_schema(sgen *G, const jv *s, char *name, size_t cap, int depth) {
    snprintf(name, cap, "value");
    if (G->failed) return;
    if (depth > S_MAX_DEPTH) {
        sg_err(G, "schema: %s", "nested too deeply: more than 64 levels of schemas");
        return;
    }
    if (G->rules.n > S_MAX_TEXT) {
        sg_err(G, "schema too large: %s", "more than 1048576 bytes of grammar");
        return;
    }
    if (s->type == JV_TRUE) return;
    if (s->type != JV_OBJ) {
        sg_err(G, "schema: %s", "a schema must be an object or true");
        return;
    }
    if (jv_get(s, "$ref") || jv_get(s, "anyOf") || jv_get(s, "oneOf") || jv_get(s, "allOf")) {
        sg_err(G, "schema: %s is not supported", jv_get(s, "$ref") ? "$ref" : "anyOf/oneOf/allOf");
        return;
    }
    const jv *en = jv_get(s, "enum"), *cn = jv_get(s, "const"), *ty = jv_get(s, "type");
    sbuf body = {0};
    if (cn) {
        sb_gbnf_json_lit(&body, cn);
    } else if (en) {
        if (en->type != JV_ARR || en->n == 0) {
            sg_err(G, "schema: %s", "enum must be a non-empty array");
            free(body.p);
            return;
        }
        for (int i = 0; i < en->n; i++) {
            if (i) sb_puts(&body, " | ");
            sb_gbnf_json_lit(&body, &en->kid[i]);
        }
    } else if (ty && ty->type == JV_STR) {
        sg_type(G, &body, s, ty->s, depth);
    } else if (ty && ty->type == JV_ARR && ty->n > 0) {
        const char *seen[8]; /* a repeated type would compile its subschemas again */
        int nseen = 0;
        for (int i = 0; i < ty->n && !G->failed; i++) {
            if (ty->kid[i].type != JV_STR) {
                sg_err(G, "schema: %s", "type list entries must be strings");
                break;
            }
            int dup = 0;
            for (int k = 0; k < nseen && !dup; k++) dup = !strcmp(seen[k], ty->kid[i].s);
            if (dup) continue;
            if (nseen < 8) seen[nseen++] = ty->kid[i].s; /* only 7 valid names: more is an error below */
            if (nseen > 1) sb_puts(&body, " | ");
            sb_puts(&body, "( ");
            sg_type(G, &body, s, ty->kid[i].s, depth);
            sb_puts(&body, " )");
        }
    } else if (ty) {
        sg_err(G, "schema: %s", "type must be a string or a list of strings");
    } else if (jv_get(s, "properties")) {
        sg_type(G, &body, s, "object", depth);
    } else if (jv_get(s, "items")) {
        sg_type(G, &body, s, "array", depth);
    } else {
        free(body.p);
        return; /* anything: value */
    }
    if (body.oom) G->rules.oom = 1;
    if (!G->failed) {
        snprintf(name, cap, "s%d", G->next++);
        sb_printf(&G->rules, "%s ::= ", name);
        sb_add(&G->rules, body.p ? body.p : "", body.n);
        sb_puts(&G->rules, "\n");
    }
    free(body.p);
}

/* Schema text -> GBNF text (malloc'd) or NULL with err set. */
static char *schema_to_gbnf(const char *schema, size_t len, size_t *outlen, int *rc, char *err, size_t errlen) {
    jreader R;
    memset(&R, 0, sizeof R);
    R.s = schema;
    R.len = len;
    R.err = err;
    R.errlen = errlen;
    jv root;
    *rc = PL_GRAMMAR_ERR_SYNTAX;
    if (!jr_value(&R, &root)) {
        jv_free(&root);
        return NULL;
    }
    jr_ws(&R);
    if (R.pos != R.len) {
        jr_err(&R, "trailing characters after the schema");
        jv_free(&root);
        return NULL;
    }
    sgen G;
    memset(&G, 0, sizeof G);
    G.err = err;
    G.errlen = errlen;
    char top[32];
    sg_schema(&G, &root, top, sizeof top, 0);
    jv_free(&root);
    if (!G.failed && G.rules.n > S_MAX_TEXT) sg_err(&G, "schema too large: %s", "more than 1048576 bytes of grammar");
    if (G.failed) {
        free(G.rules.p);
        return NULL;
    }
    sbuf out = {0};
    sb_printf(&out, "root ::= ws %s\n", top);
    sb_add(&out, G.rules.p ? G.rules.p : "", G.rules.n);
    const char *json = pl_grammar_json_gbnf();
    sb_puts(&out, strchr(json, '\n') + 1); /* the primitives, without their root */
    free(G.rules.p);
    if (out.oom || G.rules.oom) {
        free(out.p);
        pl_grammar_set_err(err, errlen, "schema: out of memory");
        *rc = PL_ERR_NOMEM;
        return NULL;
    }
    *outlen = out.n;
    *rc = PL_OK;
    return out.p;
}

int pl_json_schema_to_gbnf(const char *schema, size_t len, char *buf, size_t cap, char *err, size_t errlen) {
    if (!schema) return PL_ERR_ARG;
    size_t n = 0;
    int rc;
    char *t = schema_to_gbnf(schema, len, &n, &rc, err, errlen);
    if (!t) return rc;
    if (buf && cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, t, k);
        buf[k] = 0;
    }
    free(t);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int pl_grammar_new_json_schema(pl_grammar **out, const char *schema, size_t len, char *err, size_t errlen) {
    *out = NULL;
    if (!schema) return PL_ERR_ARG;
    size_t n = 0;
    int rc;
    char *t = schema_to_gbnf(schema, len, &n, &rc, err, errlen);
    if (!t) return rc;
    rc = pl_grammar_new_gbnf(out, t, n, err, errlen);
    free(t);
    return rc;
}
