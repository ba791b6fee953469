/* test_grammar.c - grammar-constrained sampling.
 *
 * JSON mode and the GBNF JSON grammar against lists of valid and invalid
 * documents fed byte by byte (both must agree, also on the shortest
 * completion); GBNF test grammars (arithmetic, lists, key=value lines,
 * Unicode classes) and parse errors with line:column; JSON Schema grammars;
 * steering on a toy vocabulary and the dead-end error; then a simulation on
 * the real 32k vocabulary of tiny32k-Q4_K_M.gguf: random allowed tokens for
 * 200 seeds with budgets 8..256, every output checked by the strict JSON
 * parser below (written independently of src/grammar.c) and, for schemas,
 * against the schema. Prints the per-step masking cost. Then the budgets:
 * grammars and schemas that blew up (2^depth schemas, chained repetitions,
 * ambiguous grammars, deep nesting) fail fast by name or run fast. The
 * parts on the 32k vocabulary skip when the test data is absent. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include "grammar.h"
#include "harness.h"
#include "picolm.h"

/* ---- an independent strict JSON parser (RFC 8259) with a tiny DOM ---- */

typedef struct tv {
    char type;       /* o a s n t f z */
    char *s;         /* strings: raw bytes between the quotes; numbers: text */
    int slen;
    struct tv *kid;
    char **key;      /* raw key bytes (escapes kept) */
    int *klen;
    int n;
} tv;

static void tv_free(tv *v) {
    for (int i = 0; i < v->n; i++) {
        tv_free(&v->kid[i]);
        if (v->key) free(v->key[i]);
    }
    free(v->kid);
    free(v->key);
    free(v->klen);
    free(v->s);
    memset(v, 0, sizeof *v);
}

typedef struct { const unsigned char *p, *e; } tp;

static void tp_ws(tp *q) {
    while (q->p < q->e && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r')) q->p++;
}

static int is_hex(int c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* a string at q->p (on the quote); raw bytes out */
static int tp_string(tp *q, char **out, int *olen) {
    const unsigned char *b = ++q->p;
    while (q->p < q->e && *q->p != '"') {
        unsigned c = *q->p;
        if (c < 0x20) return 0;
        if (c == '\\') {
            q->p++;
            if (q->p >= q->e) return 0;
            if (*q->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (q->p + i >= q->e || !is_hex(q->p[i])) return 0;
                q->p += 5;
            } else if (strchr("\"\\/bfnrt", *q->p) && *q->p) {
                q->p++;
            } else {
                return 0;
            }
            continue;
        }
        if (c < 0x80) {
            q->p++;
            continue;
        }
        /* strict UTF-8: shortest form, no surrogates, <= U+10FFFF */
        int n = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (n < 0 || q->e - q->p <= n) return 0;
        uint32_t cp = c & (n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07);
        for (int i = 1; i <= n; i++) {
            if ((q->p[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (q->p[i] & 63);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        q->p += n + 1;
    }
    if (q->p >= q->e) return 0;
    *olen = (int)(q->p - b);
    *out = malloc((size_t)*olen + 1);
    memcpy(*out, b, (size_t)*olen);
    (*out)[*olen] = 0;
    q->p++;
    return 1;
}

static int tp_value(tp *q, tv *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > 200) return 0;
    tp_ws(q);
    if (q->p >= q->e) return 0;
    unsigned c = *q->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v->type = obj ? 'o' : 'a';
        q->p++;
        tp_ws(q);
        if (q->p < q->e && *q->p == (obj ? '}' : ']')) {
            q->p++;
            return 1;
        }
        for (;;) {
            v->kid = realloc(v->kid, (size_t)(v->n + 1) * sizeof *v->kid);
            memset(&v->kid[v->n], 0, sizeof *v->kid);
            if (obj) {
                v->key = realloc(v->key, (size_t)(v->n + 1) * sizeof *v->key);
                v->klen = realloc(v->klen, (size_t)(v->n + 1) * sizeof *v->klen);
                v->key[v->n] = NULL;
                tp_ws(q);
                v->n++;
                if (q->p >= q->e || *q->p != '"' || !tp_string(q, &v->key[v->n - 1], &v->klen[v->n - 1])) return 0;
                tp_ws(q);
                if (q->p >= q->e || *q->p != ':') return 0;
                q->p++;
            } else {
                v->n++;
            }
            if (!tp_value(q, &v->kid[v->n - 1], depth + 1)) return 0;
            tp_ws(q);
            if (q->p < q->e && *q->p == ',') {
                q->p++;
                continue;
            }
            if (q->p < q->e && *q->p == (obj ? '}' : ']')) {
                q->p++;
                return 1;
            }
            return 0;
        }
    }
    if (c == '"') {
        v->type = 's';
        return tp_string(q, &v->s, &v->slen);
    }
    const char *lits[3] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(q->e - q->p) >= l && !memcmp(q->p, lits[i], l)) {
            q->p += l;
            v->type = "tfz"[i];
            return 1;
        }
    }
    const unsigned char *b = q->p;
    if (q->p < q->e && *q->p == '-') q->p++;
    if (q->p < q->e && *q->p == '0') {
        q->p++;
    } else if (q->p < q->e && *q->p >= '1' && *q->p <= '9') {
        while (q->p < q->e && *q->p >= '0' && *q->p <= '9') q->p++;
    } else {
        return 0;
    }
    if (q->p < q->e && *q->p == '.') {
        q->p++;
        if (q->p >= q->e || *q->p < '0' || *q->p > '9') return 0;
        while (q->p < q->e && *q->p >= '0' && *q->p <= '9') q->p++;
    }
    if (q->p < q->e && (*q->p == 'e' || *q->p == 'E')) {
        q->p++;
        if (q->p < q->e && (*q->p == '+' || *q->p == '-')) q->p++;
        if (q->p >= q->e || *q->p < '0' || *q->p > '9') return 0;
        while (q->p < q->e && *q->p >= '0' && *q->p <= '9') q->p++;
    }
    v->type = 'n';
    v->slen = (int)(q->p - b);
    v->s = malloc((size_t)v->slen + 1);
    memcpy(v->s, b, (size_t)v->slen);
    v->s[v->slen] = 0;
    return 1;
}

/* Whole text is one JSON value (surrounding whitespace allowed). */
static int json_parse(const char *s, size_t n, tv *out) {
    tp q = {(const unsigned char *)s, (const unsigned char *)s + n};
    if (!tp_value(&q, out, 0)) {
        tv_free(out);
        return 0;
    }
    tp_ws(&q);
    if (q.p != q.e) {
        tv_free(out);
        return 0;
    }
    return 1;
}

static int json_valid(const char *s, size_t n) {
    tv v;
    int ok = json_parse(s, n, &v);
    if (ok) tv_free(&v);
    return ok;
}

static const tv *tv_get(const tv *o, const char *k) {
    for (int i = 0; o && o->type == 'o' && i < o->n; i++)
        if (o->klen[i] == (int)strlen(k) && !memcmp(o->key[i], k, (size_t)o->klen[i])) return &o->kid[i];
    return NULL;
}

static int tv_equal(const tv *a, const tv *b) {
    if (a->type != b->type || a->n != b->n || a->slen != b->slen) return 0;
    if (a->s && memcmp(a->s, b->s, (size_t)a->slen)) return 0;
    for (int i = 0; i < a->n; i++) {
        if (a->key && (a->klen[i] != b->klen[i] || memcmp(a->key[i], b->key[i], (size_t)a->klen[i]))) return 0;
        if (!tv_equal(&a->kid[i], &b->kid[i])) return 0;
    }
    return 1;
}

static int type_ok(const tv *v, const char *t) {
    if (!strcmp(t, "string")) return v->type == 's';
    if (!strcmp(t, "number")) return v->type == 'n';
    if (!strcmp(t, "integer")) return v->type == 'n' && !strpbrk(v->s, ".eE");
    if (!strcmp(t, "boolean")) return v->type == 't' || v->type == 'f';
    if (!strcmp(t, "null")) return v->type == 'z';
    if (!strcmp(t, "object")) return v->type == 'o';
    if (!strcmp(t, "array")) return v->type == 'a';
    return 0;
}

/* v conforms to schema s (the subset the compiler supports; properties
 * must appear in schema order, no others). */
static int conforms(const tv *s, const tv *v) {
    const tv *en = tv_get(s, "enum"), *ty = tv_get(s, "type"), *pr = tv_get(s, "properties");
    if (en) {
        for (int i = 0; i < en->n; i++)
            if (tv_equal(&en->kid[i], v)) return 1;
        return 0;
    }
    if (ty && ty->type == 's') {
        char t[32];
        snprintf(t, sizeof t, "%.*s", ty->slen, ty->s);
        if (!type_ok(v, t)) return 0;
    }
    if (v->type == 'o' && pr && pr->n) {
        const tv *req = tv_get(s, "required");
        int at = 0;
        for (int i = 0; i < v->n; i++) {
            while (at < pr->n && (pr->klen[at] != v->klen[i] || memcmp(pr->key[at], v->key[i], (size_t)v->klen[i])))
                at++;
            if (at == pr->n) return 0; /* unknown or out of order */
            if (!conforms(&pr->kid[at], &v->kid[i])) return 0;
            at++;
        }
        for (int k = 0; req && k < req->n; k++) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", req->kid[k].slen, req->kid[k].s);
            if (!tv_get(v, name)) return 0;
        }
    }
    const tv *it = tv_get(s, "items");
    if (v->type == 'a' && it)
        for (int i = 0; i < v->n; i++)
            if (!conforms(it, &v->kid[i])) return 0;
    return 1;
}

/* ---- helpers ---- */

/* Feed text byte by byte; 1 if every byte was accepted. */
static int feed(pl_grammar *g, const char *s) {
    pl_grammar_reset(g);
    for (size_t i = 0; s[i]; i++)
        if (pl_grammar_accept_bytes(g, s + i, 1) != PL_OK) return 0;
    return 1;
}

static int accepts(pl_grammar *g, const char *s) { return feed(g, s) && pl_grammar_is_complete(g); }

static pl_grammar *gbnf(const char *text) {
    char err[256] = "";
    pl_grammar *g = NULL;
    int rc = pl_grammar_new_gbnf(&g, text, strlen(text), err, sizeof err);
    CHECK(rc == PL_OK, "gbnf: %s", err);
    return g;
}

static const char *VALID[] = {
    "{}", "[]", "0", "-0", "12", "-3.25e+10", "1E5", "0.5", "true", "false", "null", "\"\"",
    "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"", "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "{\"a\":1}", "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}", " [ 1 , 2 ]", "[\n  {\"k\": true},\n  []\n]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* 32 deep */
    "{\"\":\"\"}", "[-1.0e-0,0e0,1.5E+3]", "\"\x7f\"",
};
static const char *INVALID[] = {
    "{aa1x}", "{\"a\":[1}]", "{\"a\" 1}", "[1,]", "[,1]", "{,}", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1",
    "tru", "True", "nul", "\"abc", "\"\\x\"", "\"\\u12g4\"", "\"a\nb\"", "[1 2]", "{\"a\":1 \"b\":2}",
    "\"\xc3\x28\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xf5\x80\x80\x80\"", "1 ", "{} ", "[1]]", "{}{}", "'a'",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* 33 deep */
    "[                     1]", /* 21 spaces in a row */
    "",
};

static void test_json_docs(void) {
    char err[256];
    pl_grammar *j = NULL, *gj = gbnf(pl_grammar_json_gbnf());
    CHECK(pl_grammar_new_json(&j, 32, err, sizeof err) == PL_OK, "json: %s", err);
    if (!j || !gj) return;
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) {
        const char *d = VALID[i];
        CHECK(json_valid(d, strlen(d)), "test parser rejects valid %s", d);
        CHECK(accepts(j, d), "json mode rejects valid %s", d);
        CHECK(accepts(gj, d), "json gbnf rejects valid %s", d);
        /* same shortest completion at every prefix */
        pl_grammar_reset(j);
        pl_grammar_reset(gj);
        for (size_t k = 0; d[k]; k++) {
            pl_grammar_accept_bytes(j, d + k, 1);
            pl_grammar_accept_bytes(gj, d + k, 1);
            CHECK(pl_grammar_need(j) == pl_grammar_need(gj), "need differs after %.*s: %d vs %d", (int)k + 1, d,
                  pl_grammar_need(j), pl_grammar_need(gj));
        }
    }
    for (size_t i = 0; i < sizeof INVALID / sizeof *INVALID; i++) {
        const char *d = INVALID[i];
        int deep = strlen(d) > 60 && d[0] == '[';
        CHECK(!json_valid(d, strlen(d)) || deep || strchr(d, ' ') || d[0] == 0 || !strcmp(d, "{} "),
              "test parser accepts invalid %s", d);
        CHECK(!accepts(j, d), "json mode accepts invalid %s", d);
        if (!deep) CHECK(!accepts(gj, d), "json gbnf accepts invalid %s", d);
    }
    /* done vs complete: a top-level number may go on, an object may not */
    CHECK(feed(j, "12") && pl_grammar_is_complete(j) && !pl_grammar_is_done(j), "12: complete, not done");
    CHECK(feed(j, "{\"a\":1}") && pl_grammar_is_done(j), "object: done");
    CHECK(feed(gj, "{\"a\":1}") && pl_grammar_is_done(gj), "object (gbnf): done");
    /* a rejected chunk leaves the state unchanged */
    feed(j, "[1");
    CHECK(pl_grammar_accept_bytes(j, ",}", 2) == PL_GRAMMAR_ERR_REJECT, "reject ,}");
    CHECK(pl_grammar_accept_bytes(j, "]", 1) == PL_OK && pl_grammar_is_done(j), "state kept after reject");
    feed(gj, "[1");
    CHECK(pl_grammar_accept_bytes(gj, ",}", 2) == PL_GRAMMAR_ERR_REJECT, "gbnf reject ,}");
    CHECK(pl_grammar_accept_bytes(gj, "]", 1) == PL_OK && pl_grammar_is_done(gj), "gbnf state kept after reject");
    /* clone */
    pl_grammar *c = NULL;
    feed(gj, "{\"k\":[tr");
    CHECK(pl_grammar_clone(&c, gj) == PL_OK, "clone");
    if (c) {
        CHECK(pl_grammar_accept_bytes(c, "ue]}", 4) == PL_OK && pl_grammar_is_done(c), "clone continues");
        CHECK(pl_grammar_need(gj) == 4, "original untouched: need %d", pl_grammar_need(gj));
        pl_grammar_free(c);
    }
    CHECK(pl_grammar_new_json(&c, 65, err, sizeof err) == PL_ERR_ARG, "depth 65 refused");
    pl_grammar_free(j);
    pl_grammar_free(gj);
}

static void test_gbnf(void) {
    pl_grammar *g = gbnf("# arithmetic\n"
                         "root   ::= expr\n"
                         "expr   ::= term ((\"+\" | \"-\") term)*\n"
                         "term   ::= factor ((\"*\" | \"/\") factor)*\n"
                         "factor ::= num | \"(\" ws expr ws \")\"   # parenthesised\n"
                         "num    ::= [0-9]+\n"
                         "ws     ::= \" \"?\n");
    if (g) {
        const char *ok[] = {"1", "1+2*(3-4)", "((7))", "( 1+2 )/3", "10*20*30-4"};
        const char *bad[] = {"", "1+", "(1", "1++2", "a", "()", "1 +2", "(1))"};
        for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) CHECK(accepts(g, ok[i]), "arith rejects %s", ok[i]);
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(!accepts(g, bad[i]), "arith accepts %s", bad[i]);
        CHECK(feed(g, "(1+") && pl_grammar_need(g) == 2, "need after (1+ is %d", pl_grammar_need(g));
        pl_grammar_free(g);
    }
    g = gbnf("root ::= \"[\" ( item ( \",\" item )* )? \"]\"\nitem ::= [a-z]+ | root\n");
    if (g) {
        CHECK(accepts(g, "[]") && accepts(g, "[a,bc,[d,[]]]"), "lists");
        CHECK(!accepts(g, "[a,]") && !accepts(g, "[,]") && !accepts(g, "[a b]") && !accepts(g, "[[]"), "bad lists");
        pl_grammar_free(g);
    }
    g = gbnf("root  ::= line+\n"
             "line  ::= key \"=\" value \"\\n\"\n"
             "key   ::= [a-zA-Z_] [a-zA-Z0-9_]*\n"
             "value ::= [^\\n]*\n");
    if (g) {
        CHECK(accepts(g, "a=1\nname=h\xc3\xa9llo w\xc3\xb6rld\n_x=\n"), "key=value");
        CHECK(!accepts(g, "a=1") && !accepts(g, "1a=2\n") && !accepts(g, "=x\n") && !accepts(g, "a=\xc3\n"),
              "bad key=value");
        pl_grammar_free(g);
    }
    /* Unicode classes, escapes, repetition counts, any character */
    g = gbnf("root ::= [\\u03B1-\\u03C9]{2,3} \"\\x41\\u00e9\\t\" [^a-z\\u0100-\\U0010FFFF]? . [\xe2\x82\xac$]\n");
    if (g) {
        CHECK(accepts(g, "\xce\xb1\xce\xb2" "A\xc3\xa9\t" "\xc3\xbf" "z$"), "unicode 1");
        CHECK(accepts(g, "\xce\xb1\xce\xb2\xcf\x89" "A\xc3\xa9\t" "\xf0\x9f\x98\x80" "\xe2\x82\xac"), "unicode 2");
        CHECK(!accepts(g, "\xce\xb1" "A\xc3\xa9\tzz$"), "one greek letter is too few");
        CHECK(!accepts(g, "\xce\xb1\xce\xb2\xce\xb3\xce\xb4" "A\xc3\xa9\tzz$"), "four is too many");
        CHECK(!accepts(g, "\xce\xb1\xce\xb2" "A\xc3\xa9\t" "a" "z$"), "negated class");
        CHECK(!accepts(g, "\xce\xb1\xce\xb2" "A\xc3\xa9\t" "\xc4\x80" "z$"), "negated class, U+0100");
        CHECK(!accepts(g, "\xce\xb1\xce\xb2" "A\xc3\xa9\t" "z" "\xe2\x82\xad"), "euro only");
        CHECK(feed(g, "\xce") && pl_grammar_need(g) == 1 + 1 + 5 + 1 + 1, "mid-character need %d",
              pl_grammar_need(g));
        pl_grammar_free(g);
    }
    g = gbnf("root ::= (\"ab\" | \"a\" \"c\")* \"!\"\n");
    if (g) {
        CHECK(accepts(g, "abacab!") && accepts(g, "!") && !accepts(g, "aa!"), "ambiguous prefixes");
        pl_grammar_free(g);
    }
    g = gbnf("root ::= \"\"\n"); /* no byte sets at all (once a memcpy from NULL) */
    if (g) {
        CHECK(accepts(g, "") && !accepts(g, "a"), "the empty grammar");
        pl_grammar_free(g);
    }
    /* parse errors: "grammar:LINE:COL: message" */
    static const struct { const char *text, *want; } errs[] = {
        {"root ::= foo\n", "grammar:1:10: undefined rule 'foo'"},
        {"root ::= \"a\"\nx ::= (\"b\"\n", "grammar:3:1: expected ')'"},
        {"root ::= \"abc\n", "grammar:1:10: unterminated string literal"},
        {"root ::= \"a\" )\n", "grammar:1:14: unmatched ')'"},
        {"root ::= x\nx ::= x \"a\"\n", "grammar:2:1: left recursion in rule 'x'"},
        {"root ::= y\ny ::= \"b\"? x\nx ::= y \"a\" | \"c\"\n", "grammar:"},
        {"rot ::= \"a\"\n", "grammar:1:1: no 'root' rule"},
        {"root ::= \"\\q\"\n", "grammar:1:11: unknown escape '\\q'"},
        {"root ::= a\na ::= \"x\" a\n", "grammar:2:1: rule 'a' can never finish"},
        {"root := \"a\"\n", "grammar:1:6: expected '::=' after rule name"},
        {"root ::= \"a\"\nroot ::= \"b\"\n", "grammar:2:1: rule 'root' is defined twice"},
        {"root ::= [z-a]\n", "grammar:1:11: character range is out of order"},
        {"root ::= \"a\"\n\n  # c\nx ::= [ab\n", "grammar:4:7: unterminated character class"},
        {"root ::= *\n", "grammar:1:10: expected newline or end of input, found '*'"},
        {"root ::= \"a\"{3,1}\n", "grammar:1:13: bad repetition bounds {3,1}"},
        {"root ::= \"\xc3\xa9\" ]\n", "grammar:1:14: expected newline or end of input, found ']'"},
    };
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
        char err[256] = "";
        pl_grammar *b = NULL;
        int rc = pl_grammar_new_gbnf(&b, errs[i].text, strlen(errs[i].text), err, sizeof err);
        CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && !b, "error case %zu: rc %d", i, rc);
        CHECK(!strncmp(err, errs[i].want, strlen(errs[i].want)), "error case %zu: got \"%s\", want \"%s\"", i, err,
              errs[i].want);
        pl_grammar_free(b);
    }
}

static const char *SCHEMA1 =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},"
    "\"age\":{\"type\":\"integer\"},"
    "\"score\":{\"type\":\"number\"},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"kind\":{\"enum\":[\"cat\",\"dog\",null,3]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"addr\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"zip\":{\"type\":\"null\"}},"
    "\"required\":[\"city\"]}},"
    "\"required\":[\"name\",\"age\",\"kind\"]}";

static const char *SCHEMA2 =
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"integer\"},\"v\":{\"type\":[\"number\",\"null\"]},\"any\":{}},"
    "\"required\":[\"id\"]}}";

/* an agent's tool call: nested objects, enums, arrays of objects */
static const char *SCHEMA3 =
    "{\"type\":\"object\",\"properties\":{"
    "\"tool\":{\"enum\":[\"search\",\"read_file\",\"write_file\",\"run\"]},"
    "\"arguments\":{\"type\":\"object\",\"properties\":{"
    "\"path\":{\"type\":\"string\"},\"query\":{\"type\":\"string\"},"
    "\"mode\":{\"enum\":[\"fast\",\"exact\",null]},\"limit\":{\"type\":\"integer\"},"
    "\"filters\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"field\":{\"type\":\"string\"},\"op\":{\"enum\":[\"eq\",\"lt\",\"gt\"]},"
    "\"value\":{\"type\":[\"string\",\"number\",\"boolean\"]}},\"required\":[\"field\",\"op\",\"value\"]}}},"
    "\"required\":[\"path\"]},"
    "\"reason\":{\"type\":\"string\"}},\"required\":[\"tool\",\"arguments\"]}";

static void test_schema(void) {
    char err[256] = "";
    pl_grammar *g = NULL;
    int rc = pl_grammar_new_json_schema(&g, SCHEMA1, strlen(SCHEMA1), err, sizeof err);
    CHECK(rc == PL_OK, "schema1: %s", err);
    if (g) {
        const char *ok[] = {"{\"name\":\"x\",\"age\":3,\"kind\":\"cat\"}",
                            " { \"name\" : \"\\u00e9\" , \"age\" : -12 , \"score\" : 1.5e3 , \"ok\" : true , "
                            "\"kind\" : null , \"tags\" : [ \"a\" , \"b\" ] , \"addr\" : { \"city\" : \"P\" , "
                            "\"zip\" : null } }",
                            "{\"name\":\"\",\"age\":0,\"kind\":3,\"addr\":{\"city\":\"\"}}"};
        const char *bad[] = {"{\"age\":3,\"name\":\"x\",\"kind\":\"cat\"}", /* order */
                             "{\"name\":\"x\",\"kind\":\"cat\"}",           /* missing required */
                             "{\"name\":\"x\",\"age\":3.5,\"kind\":\"cat\"}", "{\"name\":\"x\",\"age\":3,\"kind\":\"cow\"}",
                             "{\"name\":\"x\",\"age\":3,\"kind\":\"cat\",\"other\":1}",
                             "{\"name\":\"x\",\"age\":3,\"kind\":\"cat\",\"addr\":{}}", "[]"};
        for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) CHECK(accepts(g, ok[i]), "schema1 rejects %s", ok[i]);
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(!accepts(g, bad[i]), "schema1 accepts %s", bad[i]);
        pl_grammar_free(g);
    }
    rc = pl_grammar_new_json_schema(&g, SCHEMA2, strlen(SCHEMA2), err, sizeof err);
    CHECK(rc == PL_OK, "schema2: %s", err);
    if (g) {
        CHECK(accepts(g, "[{\"id\":1,\"v\":null,\"any\":{\"x\":[1,{}]}},{\"id\":2,\"v\":0.5}]"), "schema2 ok");
        CHECK(!accepts(g, "[{\"v\":1}]") && !accepts(g, "[{\"id\":1,\"v\":\"s\"}]"), "schema2 bad");
        pl_grammar_free(g);
    }
    char buf[64];
    rc = pl_json_schema_to_gbnf("{\"type\":\"string\"}", 17, buf, sizeof buf, err, sizeof err);
    CHECK(rc > 0 && !strncmp(buf, "root ::= ws s0\ns0 ::= string\n", 29), "schema text: %d %s", rc, buf);
    rc = pl_json_schema_to_gbnf("{\"type\":\"strin\"}", 16, NULL, 0, err, sizeof err);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "strin"), "bad type: %s", err);
    rc = pl_json_schema_to_gbnf("{\"type\":\n \"string\",}", 21, NULL, 0, err, sizeof err);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && !strncmp(err, "schema:2:11:", 12), "bad json: %s", err);
}

/* A toy vocabulary: steering closes within the budget; a vocabulary
 * without closers gives the dead-end error. */
static void test_steer_toy(void) {
    const char *toks[] = {"<eos>", "{", "}", "[", "]", "\"", ":", ",", "0", "1", "a", "\"a\":", "[[[[", "{\"", " ", "\\"};
    int n = (int)(sizeof toks / sizeof *toks);
    int32_t len[32];
    for (int i = 0; i < n; i++) len[i] = i == 0 ? 0 : (int32_t)strlen(toks[i]);
    char err[256];
    pl_grammar_vocab *v = NULL;
    CHECK(pl_grammar_vocab_new(&v, toks, len, n, 0, err, sizeof err) == PL_OK, "toy vocab: %s", err);
    if (!v) return;
    pl_grammar *g = NULL;
    pl_grammar_new_json(&g, 0, err, sizeof err);
    pl_grammar_bind(g, v);
    float lg[32];
    uint64_t seed = 1;
    int bad = 0;
    for (int run = 0; run < 500; run++) {
        pl_grammar_reset(g);
        int budget = 1 + run % 40;
        char out[512];
        int on = 0;
        for (int step = 0; step < budget && !pl_grammar_is_done(g); step++) {
            for (int i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                lg[i] = (float)(seed >> 40);
            }
            int rc = pl_grammar_steer(g, lg, budget - step);
            if (rc <= 0) {
                bad++;
                break;
            }
            int best = 0;
            for (int i = 1; i < n; i++)
                if (lg[i] > lg[best]) best = i;
            if (best == 0) break;
            if (pl_grammar_accept(g, best) != PL_OK) bad++;
            memcpy(out + on, toks[best], (size_t)len[best]);
            on += len[best];
        }
        if (!pl_grammar_is_complete(g) || !json_valid(out, (size_t)on)) {
            bad++;
            if (bad < 5) fprintf(stderr, "toy run %d budget %d: %.*s\n", run, budget, on, out);
        }
    }
    CHECK(bad == 0, "toy steering: %d bad runs", bad);
    pl_grammar_free(g);
    pl_grammar_vocab_free(v);
    /* no closers: after "[" nothing can follow */
    const char *t2[] = {"[", "a"};
    int32_t l2[] = {1, 1};
    CHECK(pl_grammar_vocab_new(&v, t2, l2, 2, -1, err, sizeof err) == PL_OK, "vocab2");
    pl_grammar_new_json(&g, 0, err, sizeof err);
    pl_grammar_bind(g, v);
    lg[0] = lg[1] = 0;
    CHECK(pl_grammar_steer(g, lg, 10) == 1 && isinf(lg[1]) && !isinf(lg[0]), "only [ at start");
    pl_grammar_accept(g, 0);
    for (int d = 1; d < 32; d++) pl_grammar_accept(g, 0);
    CHECK(pl_grammar_steer(g, lg, 100) == PL_GRAMMAR_ERR_DEAD_END, "dead end reported");
    CHECK(strstr(pl_grammar_last_error(g), "no token") != NULL, "dead end message: %s", pl_grammar_last_error(g));
    pl_grammar_free(g);
    pl_grammar_vocab_free(v);
}

/* A growable text for the generated grammars and schemas below. */
typedef struct { char *p; size_t n, cap; } tbuf;

static void tb_add(tbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + (size_t)k + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) return;
        b->p = q;
        b->cap = nc;
    }
}

static double now_s(void);

/* Compiles text as GBNF (schema != 0: JSON schema); returns the status,
 * the message in err, the CPU time in *sec. */
static int timed_new(pl_grammar **g, const char *text, size_t n, int schema, char *err, size_t errlen, double *sec) {
    double t0 = now_s();
    int rc = schema ? pl_grammar_new_json_schema(g, text, n, err, errlen) : pl_grammar_new_gbnf(g, text, n, err, errlen);
    *sec = now_s() - t0;
    return rc;
}

/* Blow-ups found by an attacker, each bounded now. Before the budgets:
 * "a"{1000}{1000}{1000} took 7.8 GB, the type-list schema 2^depth time and
 * memory, the reversed 100k-rule chain minutes (a fixpoint pass per rule),
 * ( [a-z]+ " "? )+ "." was refused after 2^n duplicate stacks, and the
 * wide grammar took seconds per mask. Limits are CPU-time checked at a
 * generous 3 s (sanitizer builds are slower). */
static void test_limits(void) {
    char err[256];
    pl_grammar *g = NULL;
    double sec;
    int rc;
    /* chained repetitions: refused by the element budget, at once */
    const char *rep = "root ::= \"a\"{1000}{1000}{1000}";
    rc = timed_new(&g, rep, strlen(rep), 0, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "grammar too large: more than 1048576 elements after expanding repetitions"),
          "chained repetitions: %d %s", rc, err);
    CHECK(sec < 3, "chained repetitions took %.2f s", sec);
    pl_grammar_free(g);
    g = NULL;
    const char *rep_ok = "root ::= (\"ab\"{0,100} [0-9]){100}";
    rc = timed_new(&g, rep_ok, strlen(rep_ok), 0, err, sizeof err, &sec);
    char doc[512];
    int dn = 0;
    for (int i = 0; i < 100; i++) dn += snprintf(doc + dn, sizeof doc - (size_t)dn, "%s%d", i % 7 ? "" : "abab", i % 10);
    CHECK(rc == PL_OK && g && accepts(g, doc) && (pl_grammar_reset(g), !accepts(g, "ab1")), "repetitions under the budget: %s", err);
    pl_grammar_free(g);
    g = NULL;
    /* a type list at every level: compiled once per node, linear */
    tbuf b = {0};
    tb_add(&b, "%s", "{\"type\":\"string\"}");
    for (int d = 0; d < 40; d++) {
        tbuf t = {0};
        tb_add(&t, "{\"type\":[\"array\",\"array\",\"object\",\"null\"],\"items\":%s,\"properties\":{\"k\":{\"type\":\"integer\"}}}", b.p);
        free(b.p);
        b = t;
    }
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    int glen = pl_json_schema_to_gbnf(b.p, b.n, NULL, 0, err, sizeof err);
    CHECK(rc == PL_OK && glen > 0 && glen < 100000, "type lists: %d, %d bytes of GBNF: %s", rc, glen, err);
    CHECK(sec < 3, "type lists took %.2f s", sec);
    CHECK(g && accepts(g, "[[[{\"k\":1}]],null]"), "type lists: a nested document");
    pl_grammar_free(g);
    g = NULL;
    free(b.p);
    /* too many bytes of grammar / properties: refused by name */
    b = (tbuf){0};
    tb_add(&b, "%s", "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 5000; i++) tb_add(&b, "%s\"p%d\":{\"type\":\"string\"}", i ? "," : "", i);
    tb_add(&b, "%s", "}}");
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "schema too large: more than 4096 properties"), "5000 properties: %s", err);
    free(b.p);
    b = (tbuf){0};
    tb_add(&b, "%s", "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 3000; i++) {
        tb_add(&b, "%s\"p%d\":{\"enum\":[", i ? "," : "", i);
        for (int j = 0; j < 100; j++) tb_add(&b, "%s\"value number %d\"", j ? "," : "", j);
        tb_add(&b, "%s", "]}");
    }
    tb_add(&b, "%s", "}}");
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "schema too large: more than 1048576 bytes of grammar"), "big schema: %s", err);
    CHECK(sec < 3, "big schema took %.2f s", sec);
    free(b.p);
    /* deep nesting: refused by name, no recursion through the depth */
    b = (tbuf){0};
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", "[");
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", "]");
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "nested too deeply: more than 64 levels"), "deep schema: %s", err);
    free(b.p);
    b = (tbuf){0};
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", "{\"items\":");
    tb_add(&b, "%s", "{}");
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", "}");
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "nested too deeply"), "deep items: %s", err);
    free(b.p);
    b = (tbuf){0};
    tb_add(&b, "%s", "root ::= ");
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", "(");
    tb_add(&b, "%s", "\"a\"");
    for (int i = 0; i < 100000; i++) tb_add(&b, "%s", ")");
    rc = timed_new(&g, b.p, b.n, 0, err, sizeof err, &sec);
    CHECK(rc == PL_GRAMMAR_ERR_SYNTAX && strstr(err, "groups nested too deeply"), "deep groups: %s", err);
    free(b.p);
    /* long chains of nullable items: expanded on an explicit stack, as
     * deep as they are long (refused at 512 levels before) */
    b = (tbuf){0};
    tb_add(&b, "%s", "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 1000; i++) tb_add(&b, "%s\"p%d\":{\"type\":\"integer\"}", i ? "," : "", i);
    tb_add(&b, "%s", "}}");
    rc = timed_new(&g, b.p, b.n, 1, err, sizeof err, &sec);
    CHECK(rc == PL_OK && g && accepts(g, "{\"p999\":1}") && accepts(g, "{\"p0\":1,\"p500\":-2,\"p999\":3}") &&
              accepts(g, "{}") && !accepts(g, "{\"p500\":1,\"p0\":2}"),
          "1000 optional properties: %d %s", rc, rc ? err : g ? pl_grammar_last_error(g) : "");
    pl_grammar_free(g);
    g = NULL;
    free(b.p);
    g = gbnf("root ::= (\"a\"?){600} \"b\"\n");
    CHECK(g && accepts(g, "b") && accepts(g, "aaab") && !accepts(g, "c"), "(\"a\"?){600}: %s", g ? pl_grammar_last_error(g) : "");
    pl_grammar_free(g);
    g = NULL;
    /* 100k rules defined in reverse order of use: linear */
    b = (tbuf){0};
    tb_add(&b, "%s", "root ::= r1\n");
    for (int i = 99999; i > 0; i--) tb_add(&b, i < 99999 ? "r%d ::= \"a\" r%d | [b-z]\n" : "r%d ::= \"z\"\n", i, i + 1);
    rc = timed_new(&g, b.p, b.n, 0, err, sizeof err, &sec);
    CHECK(rc == PL_OK && sec < 3, "reversed chain: %d in %.2f s: %s", rc, sec, err);
    CHECK(g && accepts(g, "aaab") && !accepts(g, "aaa"), "reversed chain: language");
    pl_grammar_free(g);
    g = NULL;
    free(b.p);
    /* many distinct classes: byte sets are hashed, not searched */
    b = (tbuf){0};
    tb_add(&b, "%s", "root ::= ");
    for (int lo = 1; lo < 255; lo++)
        for (int hi = lo; hi < 255; hi += 3) tb_add(&b, "[\\x%02x-\\x%02x]", lo, hi);
    rc = timed_new(&g, b.p, b.n, 0, err, sizeof err, &sec);
    CHECK(rc == PL_OK && sec < 3, "10k classes: %d in %.2f s: %s", rc, sec, err);
    pl_grammar_free(g);
    g = NULL;
    free(b.p);
    /* ambiguity that only duplicated stacks: equal stacks are one node now */
    g = gbnf("root ::= ( [a-z]+ \" \"? )+ \".\"\n");
    CHECK(g && accepts(g, "the quick brown fox jumps over the lazy dog and keeps on running."), "words grammar");
    pl_grammar_free(g);
    g = gbnf("root ::= x0\nx0 ::= x1 | x1\nx1 ::= x2 | x2\nx2 ::= x3 | x3\nx3 ::= x4 | x4\nx4 ::= x5 | x5\n"
             "x5 ::= x6 | x6\nx6 ::= x7 | x7\nx7 ::= x8 | x8\nx8 ::= x9 | x9\nx9 ::= xa | xa\nxa ::= xb | xb\n"
             "xb ::= xc | xc\nxc ::= xd | xd\nxd ::= xe | xe\nxe ::= xf | xf\nxf ::= xg | xg\nxg ::= xh | xh\n"
             "xh ::= xi | xi\nxi ::= xj | xj\nxj ::= xk | xk\nxk ::= xl | xl\nxl ::= xm | xm\nxm ::= ( \"a\" | \"b\" )+\n");
    double t0 = now_s();
    CHECK(g && accepts(g, "abababababababababababab"), "diamond grammar");
    CHECK(now_s() - t0 < 3, "diamond grammar: %.2f s", now_s() - t0);
    pl_grammar_free(g);
    /* truly ambiguous: 2^n different stacks after n bytes */
    g = gbnf("root ::= x\nx ::= \"a\" x \"b\" | \"a\" x \"c\" | \"d\"\n");
    CHECK(g && pl_grammar_accept_bytes(g, "aaaaaaaaaa", 10) == PL_OK, "2^10 stacks are fine");
    rc = g ? pl_grammar_accept_bytes(g, "aaa", 3) : 0;
    CHECK(rc == PL_GRAMMAR_ERR_LIMIT && strstr(pl_grammar_last_error(g), "grammar too ambiguous: more than 4096 parse states at a step"),
          "2^13 stacks: %d %s", rc, g ? pl_grammar_last_error(g) : "");
    CHECK(g && pl_grammar_accept_bytes(g, "d", 1) == PL_OK, "the state is kept after the limit");
    pl_grammar_free(g);
    /* nesting at run time: the node arena is the limit, no recursion */
    g = gbnf(pl_grammar_json_gbnf());
    b = (tbuf){0};
    for (int i = 0; i < 40000; i++) tb_add(&b, "%s", "[");
    rc = g ? pl_grammar_accept_bytes(g, b.p, b.n) : 0;
    CHECK(rc == PL_GRAMMAR_ERR_LIMIT && strstr(pl_grammar_last_error(g), "more than 65536 stack nodes"), "40000 '[': %d %s", rc,
          g ? pl_grammar_last_error(g) : "");
    free(b.p);
    pl_grammar_free(g);
    /* work per mask: 3000 words of ten letters, on every 1-4 letter token
     * over a 10-letter alphabet, would take seconds a mask */
    b = (tbuf){0};
    tb_add(&b, "%s", "root ::= w0");
    for (int i = 1; i < 3000; i++) tb_add(&b, " | w%d", i);
    tb_add(&b, "%s", "\n");
    for (int i = 0; i < 3000; i++) tb_add(&b, "w%d ::= [a-j] [a-j] [a-j] [a-j] [a-j] [a-j] [a-j] [a-j] [a-j] [a-j] \"%d\"\n", i, i);
    rc = pl_grammar_new_gbnf(&g, b.p, b.n, err, sizeof err);
    CHECK(rc == PL_OK, "wide grammar: %s", err);
    free(b.p);
    int nt = 10 + 100 + 1000 + 10000;
    char (*tk)[4] = malloc((size_t)nt * sizeof *tk);
    const char **tptr = malloc((size_t)nt * sizeof *tptr);
    int32_t *tl = malloc((size_t)nt * sizeof *tl);
    float *lg = malloc((size_t)nt * sizeof *lg);
    pl_grammar_vocab *v = NULL;
    if (g && tk && tptr && tl && lg) {
        for (int i = 0, k = 0; k < 4; k++)
            for (int x = 0, m = k == 0 ? 10 : k == 1 ? 100 : k == 2 ? 1000 : 10000; x < m; x++, i++) {
                for (int j = 0, y = x; j <= k; j++, y /= 10) tk[i][j] = (char)('a' + y % 10);
                tptr[i] = tk[i];
                tl[i] = k + 1;
            }
        CHECK(pl_grammar_vocab_new(&v, tptr, tl, nt, -1, err, sizeof err) == PL_OK, "letter vocab: %s", err);
        pl_grammar_bind(g, v);
        memset(lg, 0, (size_t)nt * sizeof *lg);
        t0 = now_s();
        rc = pl_grammar_steer(g, lg, 0);
        sec = now_s() - t0;
        CHECK(rc == PL_GRAMMAR_ERR_LIMIT && strstr(pl_grammar_last_error(g), "grammar too ambiguous: more than 20000000 parse steps for one token mask"),
              "wide mask: %d %s", rc, pl_grammar_last_error(g));
        CHECK(sec < 3, "wide mask took %.2f s", sec);
    }
    pl_grammar_free(g);
    pl_grammar_vocab_free(v);
    free(tk);
    free(tptr);
    free(tl);
    free(lg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random allowed tokens on the real vocabulary for `seeds` seeds with
 * budgets 8..256; returns failures. schema: NULL for JSON mode. */
static int simulate(const pl_model *m, const pl_grammar_vocab *v, const char *schema, int seeds, const char *label,
                    double *ms_per_step) {
    char err[256] = "";
    pl_grammar *g = NULL;
    int is_gbnf = schema && !strncmp(schema, "gbnf:", 5);
    int rc = is_gbnf  ? pl_grammar_new_gbnf(&g, schema + 5, strlen(schema + 5), err, sizeof err)
             : schema ? pl_grammar_new_json_schema(&g, schema, strlen(schema), err, sizeof err)
                      : pl_grammar_new_json(&g, 32, err, sizeof err);
    if (is_gbnf) schema = NULL;
    CHECK(rc == PL_OK, "%s: %s", label, err);
    if (!g) return 1;
    pl_grammar_bind(g, v);
    tv sch;
    memset(&sch, 0, sizeof sch);
    if (schema) CHECK(json_parse(schema, strlen(schema), &sch), "test parser: schema");
    int n_vocab = pl_model_get_info(m)->n_vocab, fails = 0, steps = 0, min_budget = pl_grammar_need(g);
    int32_t eos = pl_token_eos(m);
    float *lg = malloc((size_t)n_vocab * sizeof *lg);
    size_t cap = 1 << 16;
    char *out = malloc(cap);
    double t = 0, t_hit = 0, t_miss = 0;
    int n_miss = 0;
    float *table = malloc(2 * (size_t)n_vocab * sizeof *table);
    for (int seed = 0; seed < seeds; seed++) {
        uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1) + (uint64_t)(schema ? strlen(schema) : 0);
        int budget = 8 + (seed * 97) % 249; /* 8..256 */
        /* a schema's shortest document can be longer than 8 bytes; the
         * guarantee holds for budgets >= that many tokens */
        if (budget < min_budget) budget = min_budget;
        for (int i = 0; i < 2 * n_vocab; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            table[i] = (float)(x >> 40) * (1.0f / 16777216.0f);
        }
        size_t on = 0;
        pl_grammar_reset(g);
        int step, err_rc = 0;
        for (step = 0; step < budget && !pl_grammar_is_done(g); step++) {
            /* fresh random logits: a random rotation of the seed's table
             * (cheaper than n_vocab draws); the argmax of random logits
             * is a uniformly random allowed token */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(lg, table + x % (uint64_t)n_vocab, (size_t)n_vocab * sizeof *lg);
            uint64_t h0, m0, h1, m1;
            pl_grammar_stats(g, &h0, &m0);
            double t0 = now_s();
            rc = pl_grammar_steer(g, lg, budget - step);
            double dt = now_s() - t0;
            pl_grammar_stats(g, &h1, &m1);
            if (m1 > m0) {
                t_miss += dt;
                n_miss++;
            } else {
                t_hit += dt;
            }
            t += dt;
            steps++;
            if (rc <= 0) {
                err_rc = rc;
                break;
            }
            int best = 0;
            for (int i = 1; i < n_vocab; i++)
                if (lg[i] > lg[best]) best = i;
            if (best == eos) break;
            char piece[256];
            int k = pl_token_to_text(m, -1, best, piece, sizeof piece);
            if (pl_grammar_accept(g, best) != PL_OK) {
                err_rc = -100;
                break;
            }
            if (k > 0 && on + (size_t)k < cap) {
                memcpy(out + on, piece, (size_t)k);
                on += (size_t)k;
            }
        }
        tv doc;
        int ok = !err_rc && pl_grammar_is_complete(g) && json_parse(out, on, &doc);
        if (ok && schema) {
            ok = conforms(&sch, &doc);
            if (!ok) fprintf(stderr, "%s seed %d: does not conform\n", label, seed);
        }
        if (ok) tv_free(&doc);
        if (!ok) {
            fails++;
            if (fails <= 3)
                fprintf(stderr, "%s seed %d budget %d steps %d rc %d: %.*s\n", label, seed, budget, step, err_rc,
                        (int)on, out);
        }
    }
    *ms_per_step = 1000.0 * t / (steps ? steps : 1);
    uint64_t hits, misses;
    pl_grammar_stats(g, &hits, &misses);
    printf("%s: %d runs (min budget %d), %d steps, %d failures; ms per masking step: %.3f mean, %.3f on a cache miss "
           "(%.0f%% of steps), %.3f on a hit\n",
           label, seeds, min_budget, steps, fails, *ms_per_step, 1000.0 * t_miss / (n_miss ? n_miss : 1),
           100.0 * n_miss / (steps ? steps : 1), 1000.0 * t_hit / (steps - n_miss ? steps - n_miss : 1));
    if (schema) tv_free(&sch);
    free(lg);
    free(table);
    free(out);
    pl_grammar_free(g);
    return fails;
}

static void test_real_vocab(void) {
    char err[256] = "";
    pl_model *m = NULL;
    if (pl_model_open(&m, t_path("models/tiny32k-Q4_K_M.gguf"), err, sizeof err)) {
        CHECK(0, "open tiny32k: %s", err);
        return;
    }
    pl_grammar_vocab *v = NULL;
    double t0 = now_s();
    int rc = pl_grammar_vocab_from_model(&v, m, err, sizeof err);
    double tv_ms = 1000 * (now_s() - t0);
    CHECK(rc == PL_OK, "vocab: %s", err);
    if (!v) {
        pl_model_close(m);
        return;
    }
    printf("vocab: %d tokens, trie of %d nodes built in %.1f ms\n", pl_model_get_info(m)->n_vocab,
           pl_grammar_vocab_n_nodes(v), tv_ms);
    double ms;
    CHECK(simulate(m, v, NULL, 200, "json", &ms) == 0, "json simulation failures");
    CHECK(simulate(m, v, SCHEMA1, 200, "schema1", &ms) == 0, "schema1 simulation failures");
    CHECK(simulate(m, v, SCHEMA2, 200, "schema2", &ms) == 0, "schema2 simulation failures");
    CHECK(simulate(m, v, SCHEMA3, 50, "tool-call schema", &ms) == 0, "tool-call schema simulation failures");
    static char jg[1024];
    snprintf(jg, sizeof jg, "gbnf:%s", pl_grammar_json_gbnf());
    CHECK(simulate(m, v, jg, 100, "json-gbnf", &ms) == 0, "json gbnf simulation failures");
    /* cold masks (empty cache; bind clears it) inside a string, the state
     * where the fewest tokens are rejected: the worst case per step */
    const char *names[3] = {"json mode", "json gbnf", "schema1"};
    for (int k = 0; k < 3; k++) {
        pl_grammar *g = NULL;
        if (k == 0) pl_grammar_new_json(&g, 32, err, sizeof err);
        if (k == 1) pl_grammar_new_gbnf(&g, jg + 5, strlen(jg + 5), err, sizeof err);
        if (k == 2) pl_grammar_new_json_schema(&g, SCHEMA1, strlen(SCHEMA1), err, sizeof err);
        if (!g) continue;
        const char *pre = k == 2 ? "{\"name\":\"ab" : "{\"a\":[\"ab";
        CHECK(pl_grammar_accept_bytes(g, pre, strlen(pre)) == PL_OK, "prefix %s", pre);
        int n_vocab = pl_model_get_info(m)->n_vocab, reps = 20, allowed = 0;
        float *lg = calloc((size_t)n_vocab, sizeof *lg);
        double tc = 0;
        for (int r = 0; r < reps; r++) {
            pl_grammar_bind(g, v);
            double t1 = now_s();
            allowed = pl_grammar_steer(g, lg, 0);
            tc += now_s() - t1;
        }
        printf("cold mask in a string, %s: %.3f ms (%d of %d tokens allowed)\n", names[k], 1000 * tc / reps,
               allowed, n_vocab);
        free(lg);
        pl_grammar_free(g);
    }
    pl_grammar_vocab_free(v);
    pl_model_close(m);
}

int main(void) {
    test_json_docs();
    test_gbnf();
    test_schema();
    test_steer_toy();
    test_limits();
    if (t_have_data()) test_real_vocab();
    else printf("test_grammar: the 32k-vocabulary parts skipped: no reference data at %s\n", t_datadir());
    return t_summary("test_grammar");
}
